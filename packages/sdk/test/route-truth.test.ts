/**
 * Route truth: on every fixture app, Vigil's verdict on each declared endpoint
 * agrees with what Express really answers. Each fixture runs on Express 4 and
 * 5, with its own modules (the app, its routers) loaded as ESM (.mjs) and as
 * CommonJS (.cjs), through the guard (`mountRouters`, `validate`); each row
 * then sends the same request to the app listening on port 0. Fixture handlers name themselves in `x-answered-by`, so
 * "agree" means: Vigil's answering layer is the one that answered (a route of
 * its own for `registered`; the catch-all, the parameter route or the earlier
 * layer otherwise), and `missing` is Express's own 404.
 */
import { createRequire } from 'node:module';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import type { Server } from 'node:http';
import { expect } from 'chai';
import express5 from 'express';
// @ts-expect-error express4 is an npm alias of express@4 with no types of its own
import express4Untyped from 'express4';
import { vigil, type VigilGuard } from '../src/index.js';
import { ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_ROUTE, ATTR_VIGIL_CRITICAL, METRIC_ROUTE_REGISTERED } from '../src/semconv.js';
import { probePath } from '../src/monitor/checks/endpoint.js';
import type { EndpointResult } from '../src/startup/report.js';
import type { RouterResult } from '../src/startup/routers.js';
import { close } from './helpers/servers.js';

type AnyExpress = typeof express5;
type Row = [method: string, route: string, verdict: string, params?: Record<string, string>];
type Load = (name: string) => Promise<Record<string, unknown>>;
interface BuildContext {
  express: AnyExpress;
  major: 4 | 5;
  load: Load;
  mountRouters: (app: unknown) => Promise<unknown>;
}
interface Fixture {
  name: string;
  routers?: Array<{ name: string; module: string; mount: string | string[] }>;
  /** The app's own module, `shapes/<app>` in the flavour under test, exporting `build(ctx)`; or `build` here. */
  app?: string;
  build?(ctx: BuildContext): unknown;
  /** The manifest names each router by its file (`module:`, `export: <name>Router`) in `<flavour>/routers/express<major>`, not `load`. */
  routersByFile?: boolean;
  rows: Row[];
}

const require = createRequire(import.meta.url);
const DIR = new URL('./fixtures/route-truth/', import.meta.url);
const FIXTURES: Fixture[] = [...require('./fixtures/route-truth/shapes.cjs'), ...require('./fixtures/route-truth/layouts.cjs')];
const MAJORS = [
  [4, express4Untyped as AnyExpress],
  [5, express5],
] as const;
const FLAVOURS = {
  esm: { ext: 'mjs', load: (name: string) => import(new URL(`esm/${name}.mjs`, DIR).href) as Promise<Record<string, unknown>> },
  cjs: { ext: 'cjs', load: async (name: string) => require(new URL(`cjs/${name}.cjs`, DIR).pathname) as Record<string, unknown> },
};
type Flavour = keyof typeof FLAVOURS;

/** The file a by-file manifest names for the routers of `flavour` on Express `major`, relative to the fixtures. */
const routerFile = (flavour: Flavour, major: 4 | 5) => `./${flavour}/routers/express${major}.${FLAVOURS[flavour].ext}`;

/** Builds the fixture's app: from its module in `load`'s flavour (a real .mjs or .cjs file), or its own `build`. */
async function buildApp(fx: Fixture, ctx: BuildContext): Promise<unknown> {
  if (!fx.app) return fx.build!(ctx);
  const { build } = await ctx.load(`shapes/${fx.app}`);
  return (build as (c: BuildContext) => unknown)(ctx);
}

/** A guard over one component declaring every row (probe values from the row), the fixture's routers in `flavour`. */
function guardFor(fx: Fixture, express: AnyExpress, major: 4 | 5, flavour: Flavour, telemetry = false): Promise<VigilGuard> {
  const { load } = FLAVOURS[flavour];
  const routers = (fx.routers ?? []).map((r) =>
    fx.routersByFile
      ? { name: r.name, mount: r.mount, module: routerFile(flavour, major), export: `${r.name}Router` } // the SDK imports it
      : { name: r.name, mount: r.mount, load: async () => ({ router: ((await load(r.module)).create as (e: AnyExpress) => unknown)(express) }) },
  );
  const endpoints = fx.rows.map(([method, route, , params]) => ({ method, route, probe: { enabled: false, params: params ?? {} } }));
  return vigil({
    manifest: { service: 'route-truth', components: { app: { policy: 'degrade', routers, endpoints } }, monitor: { enabled: false } } as never,
    baseUrl: DIR,
    env: { VIGIL_LOG_LEVEL: 'silent', OTEL_TRACES_EXPORTER: 'none' },
    telemetry,
  });
}

/** The request's real answer agrees with the verdict and its answering layer. */
function expectAgreement(e: EndpointResult, res: Response): void {
  const by = res.headers.get('x-answered-by');
  const what = `${e.verdict}, answered by ${e.answeredBy?.handler ?? 'nothing'}; Express answered ${res.status} by ${by}`;
  if (e.verdict === 'missing') {
    expect(res.status, what).to.equal(404);
    expect(by, what).to.equal(null);
  } else if (e.answeredBy?.type === 'options') {
    expect(res.status, what).to.equal(200);
    expect(res.headers.get('allow'), what).to.be.a('string');
    expect(by, what).to.equal(null);
  } else {
    expect(by, what).to.equal(e.answeredBy?.handler);
  }
  if (e.verdict === 'registered') expect(res.status, what).to.be.within(200, 299);
}

let rows = 0;
for (const [major, express] of MAJORS) {
  for (const flavour of Object.keys(FLAVOURS) as Flavour[]) {
    const { load } = FLAVOURS[flavour];
    for (const fx of FIXTURES) {
      describe(`route truth on Express ${major} (${flavour}): ${fx.name}`, () => {
        let server: Server;
        let base: string;
        let endpoints: EndpointResult[];
        let routers: RouterResult[];
        before(async () => {
          const guard = await guardFor(fx, express, major, flavour);
          const app = (await buildApp(fx, { express, major, load, mountRouters: (a) => guard.mountRouters(a as never) })) as Parameters<VigilGuard['validate']>[0];
          server = (app as unknown as { listen: (p: number, h: string) => Server }).listen(0, '127.0.0.1');
          await new Promise((r) => server.once('listening', r));
          base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
          const report = await guard.validate(app, { throwOnFailure: false, monitor: false });
          ({ endpoints, routers } = report.components[0]!);
          await guard.shutdown();
        });
        after(() => close(server));

        if (fx.routersByFile) {
          it(`the SDK imported every router itself from ${routerFile(flavour, major)}`, () => {
            expect(routers.map((r) => [r.router, r.module, r.outcome])).to.deep.equal(
              fx.routers!.map((r) => [r.name, routerFile(flavour, major), 'success']),
            );
          });
        }

        for (const [method, route, verdict, params] of fx.rows) {
          rows++;
          it(`${method} ${route}${params ? ` (${Object.values(params).join(', ')})` : ''}: ${verdict}, as Express answers`, async () => {
            const e = endpoints.find((x) => x.method === method && x.route === route)!;
            expect(e.verdict, e.reason).to.equal(verdict);
            expect(e.registered).to.equal(verdict === 'registered');
            if (verdict !== 'registered' && verdict !== 'missing') expect(e.reason).to.be.a('string').and.contain(e.answeredBy!.handler);
            const target = probePath({ route, probe: { params: params ?? {} } } as never);
            const res = await fetch(`${base}${'path' in target ? target.path : route}`, { method });
            expectAgreement(e, res);
          });
        }
      });
    }
  }
}

describe('route truth: the table', () => {
  it('covers every fixture on Express 4 and 5, as ESM and CommonJS', () => {
    expect(FIXTURES.length).to.be.at.least(10);
    expect(rows).to.equal(FIXTURES.reduce((n, f) => n + f.rows.length, 0) * 4);
    console.log(`      route truth: ${rows} rows (${FIXTURES.length} fixtures × Express 4, 5 × ESM, CommonJS)`);
  });
});


/** A router whose routes come late: `ready()` on its handle adds GET /catalogue. */
const LATE: Fixture = { name: 'late', routers: [{ name: 'late', module: 'routers/late', mount: '/shop' }], rows: [['GET', '/shop/catalogue', 'registered']] };

describe('route truth: the live route report', () => {
  for (const [major, express] of MAJORS) {
    for (const flavour of Object.keys(FLAVOURS) as Flavour[]) {
      it(`on Express ${major} (${flavour}), a router whose routes come late is mounted, warns, and counts once they appear; a route gone at run time fails`, async () => {
        const guard = await guardFor(LATE, express, major, flavour);
        const app = express();
        const [late] = await guard.mountRouters(app as never);
        const server = await new Promise<Server>((resolve) => {
          const s = app.listen(0, '127.0.0.1', () => resolve(s));
        });
        const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/shop/catalogue`;
        try {
          const report = await guard.validate(app as never, { throwOnFailure: false, monitor: false });
          const c = report.components[0]!;
          expect(late!.outcome).to.equal('no_routes');
          expect(c.status).to.equal('warn');
          expect(c.warnings.join()).to.contain('router late has no routes yet');
          expect(c.endpoints[0]!.verdict).to.equal('missing');
          expect((await fetch(url)).status).to.equal(404);

          (late!.handle as { ready: () => void }).ready(); // the async set-up finishes
          const now = guard.refreshInventory()!;
          expect((await fetch(url)).headers.get('x-answered-by')).to.equal('lateCatalogue'); // mounted all along
          expect(now.components[0]!.endpoints[0]).to.deep.include({ verdict: 'registered', registered: true });
          expect(now.components[0]!.status).to.equal('pass');
          expect(now.components[0]!.routers[0]!.outcome).to.equal('success');
          expect(now.missingEndpoints).to.deep.equal([]);
          expect(guard.report).to.equal(now); // the health bodies and the gauges read this one

          ((late!.handle as { stack: unknown[] }).stack).length = 0; // the route disappears at run time
          const gone = guard.refreshInventory()!;
          expect((await fetch(url)).status).to.equal(404);
          expect(gone.components[0]!.endpoints[0]!.verdict).to.equal('missing');
          expect(gone.missingEndpoints).to.deep.equal(['GET /shop/catalogue']);
        } finally {
          await guard.shutdown();
          await close(server);
        }
      });
    }
  }
});

/** A reader collected on demand, as an app's own exporter would read the gauges. */
class InProcessReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

describe('route truth: the gauges agree with the refreshed route report', () => {
  let reader: InProcessReader;
  beforeEach(() => {
    // The app's own meter provider: Vigil registers its gauges on it.
    reader = new InProcessReader();
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  });
  afterEach(() => {
    metrics.disable();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  /** `vigil.route.registered` of each declared endpoint, as the reader collects it now. */
  async function registeredGauge(): Promise<Record<string, number>> {
    const { resourceMetrics } = await reader.collect();
    const metric = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === METRIC_ROUTE_REGISTERED);
    const points = (metric?.dataPoints ?? []) as Array<{ value: number; attributes: Record<string, unknown> }>;
    return Object.fromEntries(
      points.filter((p) => p.attributes[ATTR_VIGIL_CRITICAL] === true).map((p) => [`${p.attributes[ATTR_HTTP_REQUEST_METHOD]} ${p.attributes[ATTR_HTTP_ROUTE]}`, p.value]),
    );
  }
  /** The same, from the latest report's verdicts. */
  const reported = (guard: VigilGuard) =>
    Object.fromEntries(guard.report!.components.flatMap((c) => c.endpoints).map((e) => [`${e.method} ${e.route}`, e.verdict === 'registered' ? 1 : 0]));

  for (const [major, express] of MAJORS) {
    for (const flavour of Object.keys(FLAVOURS) as Flavour[]) {
      it(`on Express ${major} (${flavour}): 0 while the route is late, 1 once it appears, 0 once it is gone`, async () => {
        const guard = await guardFor(LATE, express, major, flavour, true);
        const app = express();
        try {
          const [late] = await guard.mountRouters(app as never);
          await guard.validate(app as never, { throwOnFailure: false, monitor: false });
          expect(await registeredGauge()).to.deep.equal(reported(guard)).and.deep.equal({ 'GET /shop/catalogue': 0 });

          (late!.handle as { ready: () => void }).ready();
          guard.refreshInventory();
          expect(await registeredGauge()).to.deep.equal(reported(guard)).and.deep.equal({ 'GET /shop/catalogue': 1 });

          (late!.handle as { stack: unknown[] }).stack.length = 0;
          guard.refreshInventory();
          expect(await registeredGauge()).to.deep.equal(reported(guard)).and.deep.equal({ 'GET /shop/catalogue': 0 });
        } finally {
          await guard.shutdown();
        }
      });
    }
  }
});
