/**
 * Sharper probe expectations, against a real Express app on port 0: parameter
 * values, "not probed" without them, 2xx/3xx for a public endpoint, 401/403
 * for an auth endpoint probed without credentials, and an answer from a
 * fallback failing even when its status looks fine.
 */
import type { Server } from 'node:http';
import { trace } from '@opentelemetry/api';
import { expect } from 'chai';
import express from 'express';
import { Endpoint, type ManifestInput } from '../src/manifest/schema.js';
import { endpointCheck } from '../src/monitor/checks/endpoint.js';
import type { CheckOutcome } from '../src/monitor/types.js';
import { detailedBody } from '../src/health/health-json.js';
import { FlapState } from '../src/monitor/flap.js';
import { HEALTH_LEVEL_VALUE } from '../src/monitor/monitor.js';
import { decide } from '../src/startup/report.js';
import { parseManifestText } from '../src/manifest/load.js';
import { close } from './helpers/servers.js';

type EndpointInput = NonNullable<ManifestInput['components'][string]['endpoints']>[number];

describe('probe expectations', () => {
  const app = express();
  const paths: string[] = [];
  app.use((req, _res, next) => {
    paths.push(req.path);
    next();
  });
  app.get('/users/:id', (req, res) => void res.json({ id: req.params.id }));
  app.get('/private', (req, res) => void (req.headers.authorization === 'Bearer ok' ? res.json({ ok: true }) : res.status(401).json({ error: 'login' })));
  app.get('/locked', (_req, res) => void res.status(403).json({ error: 'no' }));
  app.get('/moved', (_req, res) => res.redirect(302, '/users/1'));
  app.get('/{*splat}', (_req, res) => void res.type('html').send('<!doctype html><div id="root"></div>'));
  let server: Server;
  let base: string;
  before(async () => {
    server = app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${await new Promise<number>((r) => server.once('listening', () => r((server.address() as { port: number }).port)))}`;
  });
  after(() => close(server));

  async function probe(input: EndpointInput, options: { withApp?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<CheckOutcome> {
    const check = endpointCheck({
      component: 'c',
      endpoint: Endpoint.parse(input),
      baseUrl: () => base,
      env: options.env ?? {},
      tracer: trace.getTracer('test'),
      intervalMs: 1000,
      ...(options.withApp === false ? {} : { app: () => app }),
    });
    return check.run(new AbortController().signal);
  }

  // One row per endpoint as declared: the outcome and what it says.
  const table: Array<[string, EndpointInput, CheckOutcome['status'], RegExp | undefined]> = [
    ['a parameter with a value is probed with it', { method: 'GET', route: '/users/:id', probe: { params: { id: '42' } } }, 'pass', undefined],
    ['an example path is probed as written', { method: 'GET', route: '/users/:id', probe: { path: '/users/7' } }, 'pass', undefined],
    ['a parameter without a value is not probed', { method: 'GET', route: '/users/:id' }, 'unknown', /^not probed: needs a value for :id/],
    ['a public endpoint answering 401 fails', 'GET /private', 'fail', /answered 401: a public endpoint refused the request/],
    ['a public endpoint answering 403 fails', 'GET /locked', 'fail', /answered 403/],
    ['a redirect is a success', 'GET /moved', 'pass', undefined],
    ['an auth endpoint probed without credentials expects 401/403', { method: 'GET', route: '/private', probe: { auth: true } }, 'pass', undefined],
    ['an auth endpoint that answers without credentials fails', { method: 'GET', route: '/users/:id', probe: { auth: true, params: { id: '1' } } }, 'fail', /answered 200, expected 401 or 403/],
    [
      'an auth endpoint probed with credentials expects 2xx',
      { method: 'GET', route: '/private', probe: { auth: true, headers: { authorization: { env: 'TOKEN', prefix: 'Bearer ' } } } },
      'pass',
      undefined,
    ],
    ['a removed endpoint answered by the front end\'s catch-all fails and says so', 'GET /api/orders', 'fail', /answered by a fallback.*catch-all GET \/\{\*splat\}/],
    ['an explicit status list still rules', { method: 'GET', route: '/private', probe: { expect: { status: [401] } } }, 'pass', undefined],
  ];
  for (const [name, input, status, output] of table) {
    it(name, async () => {
      const outcome = await probe(input, { env: { TOKEN: 'ok' } });
      expect(outcome.status, outcome.output).to.equal(status);
      if (output) expect(outcome.output).to.match(output);
    });
  }

  it('sends nothing for an endpoint it cannot probe', async () => {
    paths.length = 0;
    await probe({ method: 'GET', route: '/users/:id' });
    expect(paths).to.deep.equal([]);
  });

  it('fails an HTML page where JSON was asked for, even without the route table', async () => {
    const outcome = await probe('GET /api/orders', { withApp: false });
    expect(outcome.status).to.equal('fail');
    expect(outcome.output).to.contain('answered with an HTML page where JSON was asked for');
    const asked = await probe({ method: 'GET', route: '/', probe: { headers: { accept: 'text/html' } } }, { withApp: false });
    expect(asked.status, asked.output).to.equal('pass');
  });
});

describe('unknown is unknown', () => {
  it('a check that has not run is unknown in the health body and -1 in vigil.health.level, never pass', () => {
    const m = parseManifestText('service: s\ncomponents:\n  c: { policy: degrade, endpoints: ["GET /x"] }\n', 'vigil.yaml');
    const report = decide({ manifest: m, routers: [], endpoints: [{ component: 'c', method: 'GET', route: '/x', registered: true, verdict: 'registered' }], checks: [], routeCount: 1, startedAt: new Date(), durationMs: 1 });
    const state = new FlapState({ failureThreshold: 3, successThreshold: 2 });
    const check = { id: 'endpoint:GET /x', level: 2 as const, component: 'c', healthKey: 'c:endpoint GET /x', intervalMs: 1000, timeoutMs: 1000, run: async () => ({ status: 'pass' as const }) };
    const runtime = { checks: [{ check, state }], componentStatus: () => 'pass' as const };
    const entry = () => detailedBody(report, 'ready', { service: 's' }, undefined, runtime).checks['c:endpoint GET /x']![0]!;
    expect(entry().status).to.equal('unknown');
    expect(entry().output).to.equal('not run yet');
    expect(HEALTH_LEVEL_VALUE[state.status]).to.equal(-1);
    state.observe({ status: 'fail', output: 'answered 404' });
    expect(entry().status).to.equal('unknown'); // one failure is not yet a verdict, and still not a pass
    state.observe({ status: 'pass' });
    expect(entry().status).to.equal('pass');
    expect(HEALTH_LEVEL_VALUE[state.status]).to.equal(1);
  });
});
