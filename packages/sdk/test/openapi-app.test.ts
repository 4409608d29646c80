/**
 * An app that adopted Vigil with the shop's OpenAPI document (3.1, split over
 * files) and a manifest of a few lines, on Express 4 and 5 on port 0. Its
 * routers serve all but one documented operation (the reviews) and one route
 * the document does not have. The startup report finds the missing one, and
 * agrees with what the app answers over HTTP; the generated probes send the
 * example parameter values and expect 401/403 where the document asks for a login.
 */
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { trace } from '@opentelemetry/api';
import { expect } from 'chai';
import express5 from 'express';
// @ts-expect-error express4 is an npm alias of express@4 with no types of its own
import express4Untyped from 'express4';
import { pino } from 'pino';
import { vigil, type VigilGuard } from '../src/guard.js';
import { endpointCheck } from '../src/monitor/checks/endpoint.js';
import { unsafeNotProbed } from '../src/monitor/probe-policy.js';
import type { StartupReport } from '../src/startup/report.js';
import { close } from './helpers/servers.js';

type AnyExpress = typeof express5;
const express4 = express4Untyped as AnyExpress;
const MANIFEST = fileURLToPath(new URL('../../../test/fixtures/openapi/shop/vigil.yaml', import.meta.url));

/** The shop: every documented operation but GET /products/:productId/reviews, plus an undocumented debug route. */
function shopApp(express: AnyExpress, seen: string[]) {
  const app = express();
  app.use((req, _res, next) => {
    seen.push(`${req.method} ${req.path}`);
    next();
  });
  const loggedIn = (req: { headers: Record<string, unknown> }) => req.headers.authorization === 'Bearer ok';
  const catalog = express.Router();
  catalog.get('/products', (_req, res) => void res.json([{ id: 'p-42', name: 'lamp' }]));
  catalog.post('/products', (req, res) => void (loggedIn(req) ? res.status(201).json({}) : res.status(401).json({ error: 'login' })));
  catalog.get('/products/:productId', (req, res) => void res.json({ id: req.params.productId, name: 'lamp' }));
  const orders = express.Router();
  orders.get('/orders/:orderId', (req, res) => void (loggedIn(req) ? res.json({ id: req.params.orderId }) : res.status(401).json({ error: 'login' })));
  orders.delete('/orders/:orderId', (_req, res) => void res.status(204).end());
  orders.get('/internal/debug', (_req, res) => void res.json({ heap: 1 }));
  app.use('/api/v1', catalog);
  app.use('/api/v1', orders);
  return app;
}

for (const [major, express] of [
  ['Express 4', express4],
  ['Express 5', express5],
] as const) {
  describe(`an app described by its OpenAPI document (${major})`, () => {
    const seen: string[] = [];
    const app = shopApp(express, seen);
    let server: Server;
    let base: string;
    let guard: VigilGuard;
    let report: StartupReport;

    before(async () => {
      server = app.listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      guard = await vigil({ manifest: MANIFEST, telemetry: false, onInvalidManifest: 'throw', logger: pino({ level: 'silent' }) });
      report = await guard.validate(app, { throwOnFailure: false, monitor: false });
    });
    after(async () => {
      await guard?.shutdown();
      await close(server);
    });

    it('reports the documented route the routers do not serve as missing, and degrades its component', () => {
      expect(report.missingEndpoints).to.deep.equal(['GET /api/v1/products/:productId/reviews']);
      const catalog = report.components.find((c) => c.name === 'catalog')!;
      expect(catalog.status).to.equal('warn');
      expect(catalog.reasons.join('\n')).to.include('GET /api/v1/products/:productId/reviews');
      expect(report.components.find((c) => c.name === 'orders')!.status).to.equal('pass');
      const registered = report.components.flatMap((c) => c.endpoints.filter((e) => e.registered).map((e) => `${e.method} ${e.route}`));
      expect(registered).to.have.length(5);
    });

    it('agrees with what the app answers over HTTP', async () => {
      // The missing route is really gone; the documented ones answer; the undocumented one is served but declared nowhere.
      expect((await fetch(`${base}/api/v1/products/p-42/reviews`)).status).to.equal(404);
      expect((await fetch(`${base}/api/v1/products/p-42`)).status).to.equal(200);
      expect((await fetch(`${base}/api/v1/internal/debug`)).status).to.equal(200);
      const declared = Object.values(guard.manifest.components).flatMap((c) => c.endpoints.map((e) => e.route));
      expect(declared.some((r) => r.includes('/internal/'))).to.equal(false);
    });

    describe('the probes generated from the document', () => {
      const endpoint = (method: string, route: string) => {
        for (const [component, spec] of Object.entries(guard.manifest.components)) {
          const e = spec.endpoints.find((x) => x.method === method && x.route === route);
          if (e) return { component, endpoint: e };
        }
        throw new Error(`${method} ${route} is not declared`);
      };
      const probe = (method: string, route: string) =>
        endpointCheck({
          ...endpoint(method, route),
          baseUrl: () => base,
          env: {},
          tracer: trace.getTracer('test'),
          intervalMs: 1000,
          app: () => app,
        }).run(new AbortController().signal);

      it('send the parameter examples as path values', async () => {
        seen.length = 0;
        const outcome = await probe('GET', '/api/v1/products/:productId');
        expect(outcome.status, outcome.output).to.equal('pass');
        expect(seen).to.include('GET /api/v1/products/p-42');
      });

      it('expect 401/403 from an operation with a security requirement, probed without credentials', async () => {
        seen.length = 0;
        const outcome = await probe('GET', '/api/v1/orders/:orderId');
        expect(outcome.status, outcome.output).to.equal('pass');
        expect(seen).to.include('GET /api/v1/orders/o-7');
      });

      it('fail on the missing documented route', async () => {
        const outcome = await probe('GET', '/api/v1/products/:productId/reviews');
        expect(outcome.status).to.equal('fail');
      });

      it('do not send a DELETE the document declares (inventoried, not probed without x-vigil-probe.unsafe)', () => {
        const { endpoint: e } = endpoint('DELETE', '/api/v1/orders/:orderId');
        expect(unsafeNotProbed(guard.manifest, e)).to.equal('not probed: DELETE needs probe.unsafe or a flow');
      });
    });
  });
}

