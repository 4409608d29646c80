/**
 * The live route table and undocumented routes, on real Express apps listening
 * on port 0: Express 4 and 5, routers as ES modules and as CommonJS (imported by
 * the guard from the manifest), a nested router, a sub-app, a parameter route,
 * an all() route and undeclared routes. Each row is then requested over HTTP:
 * the route it names answers (its handler's x-route), never Express's 404.
 * The undocumented count is read from the SDK's metrics through an in-process
 * reader on the app's meter provider; the policies change what the report and
 * /health/detailed say; /health/routes is as guarded as /health/detailed.
 */
import type { Server } from 'node:http';
import os from 'node:os';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { expect } from 'chai';
import express5 from 'express';
// @ts-expect-error express4 is an npm alias of express@4 with no types of its own
import express4Untyped from 'express4';
import { pino, type Logger } from 'pino';
import { vigil, type VigilGuard } from '../src/index.js';
import { Manifest, type ManifestInput } from '../src/manifest/schema.js';
import { METRIC_ROUTE_UNDOCUMENTED } from '../src/semconv.js';
import { formatReport } from '../src/startup/report.js';
import { findUndocumented, formatRouteTable, routeTable, RouteSnapshot, type RouteRow } from '../src/startup/route-table.js';
import { captureLogs } from './helpers/logs.js';
import { manifestErrorOf } from './helpers/manifest.js';
import { InProcessReader } from './helpers/metrics.js';
import { close } from './helpers/servers.js';

const DIR = new URL('./fixtures/route-table/', import.meta.url);
type AnyExpress = typeof express5;
const MAJORS = [
  [4, express4Untyped as AnyExpress],
  [5, express5],
] as const;
const answer = (route: string) => (_req: unknown, res: { set: (k: string, v: string) => { json: (b: unknown) => void } }) => void res.set('x-route', route).json({ route });

function manifest(major: 4 | 5, ext: 'mjs' | 'cjs', extra: Partial<ManifestInput> = {}): ManifestInput {
  return {
    service: 'route-table',
    version: '2.0.0',
    components: {
      catalog: {
        policy: 'degrade',
        routers: [{ name: 'api', module: `./api.${ext}`, export: `express${major}Router`, mount: '/api' }],
        endpoints: ['GET /api/items', 'GET /api/items/:id', 'GET /api/admin/stats', 'GET /api/sub/ping'].map((e) => ({ method: e.split(' ')[0] as 'GET', route: e.split(' ')[1]!, probe: { enabled: false } })),
      },
      ops: { policy: 'degrade', routers: [{ name: 'ops', module: `./api.${ext}`, export: `express${major}Ops`, mount: '/ops' }] },
    },
    monitor: { enabled: false },
    undocumentedRoutes: { allow: ['GET /internal/*'], internalRouters: ['ops'] },
    ...extra,
  };
}

interface Running {
  guard: VigilGuard;
  app: unknown;
  server: Server;
  base: string;
}

async function start(express: AnyExpress, m: ManifestInput, opts: { telemetry?: boolean; host?: string; env?: NodeJS.ProcessEnv; logger?: Logger } = {}): Promise<Running> {
  const guard = await vigil({ manifest: m, baseUrl: DIR, telemetry: opts.telemetry ?? false, env: { VIGIL_LOG_LEVEL: 'silent', OTEL_TRACES_EXPORTER: 'none', ...opts.env }, logger: opts.logger ?? pino({ level: 'silent' }) });
  const app = express();
  guard.mountHealth(app as never);
  await guard.mountRouters(app as never);
  app.get('/internal/metrics', answer('GET /internal/metrics') as never);
  app.get('/shadow', answer('GET /shadow') as never);
  const server = app.listen(0, opts.host ?? '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const { port } = server.address() as { port: number };
  return { guard, app, server, base: `http://${opts.host ?? '127.0.0.1'}:${port}` };
}

/** [method, path, component, declared (true, or the exemption, or false), source] of every row Express should have. */
const EXPECTED = (ext: string): Array<[string, string, string | undefined, boolean | string, string | undefined]> => [
  ['GET', '/health', undefined, 'health', undefined],
  ['GET', '/ready', undefined, 'health', undefined],
  ['GET', '/health/detailed', undefined, 'health', undefined],
  ['GET', '/health/business-critical', undefined, 'health', undefined],
  ['GET', '/health/routes', undefined, 'health', undefined],
  ['GET', '/api/items', 'catalog', true, `./api.${ext}`],
  ['GET', '/api/items/:id', 'catalog', true, `./api.${ext}`],
  ['POST', '/api/items', 'catalog', false, `./api.${ext}`],
  ['ALL', '/api/any', 'catalog', false, `./api.${ext}`],
  ['GET', '/api/admin/stats', 'catalog', true, `./api.${ext}`],
  ['DELETE', '/api/admin/cache', 'catalog', false, `./api.${ext}`],
  ['GET', '/api/sub/ping', 'catalog', true, `./api.${ext}`],
  ['GET', '/ops/debug', 'ops', 'internal', `./api.${ext}`],
  ['GET', '/internal/metrics', undefined, 'allowed', undefined],
  ['GET', '/shadow', undefined, false, undefined],
];
const UNDOCUMENTED = ['POST /api/items', 'ALL /api/any', 'DELETE /api/admin/cache', 'GET /shadow'];

describe('the live route table', function () {
  this.timeout(20_000);
  let running: Running | undefined;
  afterEach(async () => {
    await running?.guard.shutdown();
    if (running?.server.listening) await close(running.server);
    running = undefined;
  });

  for (const [major, express] of MAJORS) {
    for (const ext of ['mjs', 'cjs'] as const) {
      it(`Express ${major}, routers as ${ext === 'mjs' ? 'ES modules' : 'CommonJS'}: every route with its component, declaration, answering layer and module — and each answers over HTTP`, async () => {
        const s = (running = await start(express, manifest(major, ext)));
        const table = routeTable(s.app, s.guard.manifest);
        const rows = table.routes.map((r) => [r.method, r.path, r.component, r.declared ? true : (r.exempt ?? false), r.source]);
        expect(rows).to.deep.equal(EXPECTED(ext));
        expect(table).to.include({ total: EXPECTED(ext).length, more: 0 });
        expect(table.routes.every((r) => r.verdict === 'registered'), JSON.stringify(table.routes.filter((r) => r.verdict !== 'registered'))).to.equal(true);
        expect(table.routes.find((r) => r.path === '/api/sub/ping')!.answeredBy).to.match(/^GET \/api\/sub\/ping \(handler .*, mounted at \/api\/sub, \.\/api\.(mjs|cjs)\)$/);
        expect(table.routes.find((r) => r.path === '/api/admin/stats')!.router).to.equal('api');
        // Each row, requested: its own handler answers (the health routes have none of ours, but are not 404).
        for (const r of table.routes) {
          const res = await fetch(`${s.base}${r.path.replace(':id', '42')}`, { method: r.method === 'ALL' ? 'PATCH' : r.method });
          expect(res.status, `${r.method} ${r.path}`).to.not.equal(404);
          if (r.exempt !== 'health') expect(res.headers.get('x-route'), `${r.method} ${r.path}`).to.equal(`${r.method} ${r.path}`);
          await res.arrayBuffer();
        }
        // The undocumented ones: neither declared nor exempt.
        expect(findUndocumented(s.app, s.guard.manifest)).to.deep.equal({ policy: 'warn', count: 4, routes: UNDOCUMENTED });
      });
    }
  }

  it('is bounded: past the limit it says how many more', async () => {
    const s = (running = await start(express5, manifest(5, 'mjs')));
    const table = routeTable(s.app, s.guard.manifest, 3);
    expect(table.routes.map((r) => r.path)).to.deep.equal(['/health', '/ready', '/health/detailed']);
    expect(table).to.include({ total: 15, more: 12 });
    const text = formatRouteTable(table, 'Routes');
    expect(text.split('\n')[1]).to.match(/^METHOD {2}PATH {13,}COMPONENT {2}DECLARED {2}VERDICT {5}SOURCE {2}ANSWERED BY$/);
    expect(text.split('\n').at(-1)).to.equal('15 routes, 0 declared, 0 undocumented (12 more not shown: the table stops at 3)');
  });
});

describe('undocumented routes: the finding, the metric, the policy', function () {
  this.timeout(20_000);
  let reader: InProcessReader;
  let running: Running | undefined;
  beforeEach(() => {
    reader = new InProcessReader();
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  });
  afterEach(async () => {
    await running?.guard.shutdown();
    if (running?.server.listening) await close(running.server);
    running = undefined;
    metrics.disable();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  async function undocumentedMetric(): Promise<Array<{ value: number; attributes: Record<string, unknown> }>> {
    const { resourceMetrics } = await reader.collect();
    return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).filter((m) => m.descriptor.name === METRIC_ROUTE_UNDOCUMENTED).flatMap((m) => m.dataPoints as never);
  }

  async function validated(policy: 'ignore' | 'warn' | 'degrade') {
    const logs = captureLogs();
    const s = (running = await start(express5, manifest(5, 'mjs', { undocumentedRoutes: { policy, allow: ['GET /internal/*'], internalRouters: ['ops'] } }), { telemetry: true, logger: logs.logger }));
    const report = await s.guard.validate(s.app as never, { server: s.server, throwOnFailure: false });
    const detailed = (await (await fetch(`${s.base}/health/detailed`)).json()) as { status: string; checks: Record<string, Array<{ status: string; observedValue: number; output: string }>> };
    const warned = logs.lines.map((l) => JSON.parse(l) as { level: number; msg: string; count?: number }).filter((l) => l.level === 40 && l.msg.includes('undocumented'));
    return { s, report, detailed, warned };
  }

  it('warn (the default): reported in the report and /health/detailed, counted in vigil.route.undocumented, the app passes', async () => {
    const { s, report, detailed, warned } = await validated('warn');
    expect(report.status).to.equal('pass');
    expect(warned.map((l) => [l.msg, l.count])).to.deep.equal([[`4 undocumented routes (in Express, not in the manifest): ${UNDOCUMENTED.join(', ')}`, 4]]);
    expect(report.undocumented).to.deep.equal({ policy: 'warn', count: 4, routes: UNDOCUMENTED });
    expect(formatReport(report)).to.contain(`[NOTE] 4 undocumented routes (in Express, not in the manifest): ${UNDOCUMENTED.join(', ')}`);
    expect(detailed.status).to.equal('pass');
    expect(detailed.checks['routes:undocumented']).to.have.length(1);
    expect(detailed.checks['routes:undocumented']![0]).to.include({ status: 'warn', observedValue: 4 });
    expect(detailed.checks['routes:undocumented']![0]!.output).to.contain('DELETE /api/admin/cache');
    expect((await undocumentedMetric()).map((p) => [p.value, p.attributes])).to.deep.equal([[4, {}]]);
    // One more undeclared route, found by the next inventory.
    (s.app as { post: (p: string, h: unknown) => void }).post('/shadow', answer('POST /shadow'));
    expect(s.guard.refreshInventory()!.undocumented!.count).to.equal(5);
    expect((await undocumentedMetric()).map((p) => p.value)).to.deep.equal([5]);
  });

  it('degrade: the app starts degraded (startup report and /health/detailed say warn)', async () => {
    const { report, detailed } = await validated('degrade');
    expect(report.status).to.equal('warn');
    expect(report.ok).to.equal(true);
    expect(formatReport(report)).to.contain('starting DEGRADED');
    expect(formatReport(report)).to.contain('[WARN] 4 undocumented routes');
    expect(detailed.status).to.equal('warn');
    expect((await undocumentedMetric()).map((p) => p.value)).to.deep.equal([4]);
  });

  it('ignore: not reported, no series', async () => {
    const { report, detailed, warned } = await validated('ignore');
    expect(warned).to.deep.equal([]);
    expect(report.status).to.equal('pass');
    expect(report.undocumented).to.equal(undefined);
    expect(formatReport(report)).not.to.contain('undocumented');
    expect(detailed.checks).not.to.have.property('routes:undocumented');
    expect(await undocumentedMetric()).to.deep.equal([]);
  });

  it('everything declared, allowed or internal: 0, and nothing listed', async () => {
    const m = manifest(5, 'mjs', { undocumentedRoutes: { allow: ['* /api/*', 'GET /shadow', 'GET /internal/*'], internalRouters: ['ops'] } });
    const s = (running = await start(express5, m, { telemetry: true }));
    const report = await s.guard.validate(s.app as never, { throwOnFailure: false });
    expect(report.undocumented).to.deep.equal({ policy: 'warn', count: 0, routes: [] });
    expect(formatReport(report)).not.to.contain('undocumented');
    expect((await undocumentedMetric()).map((p) => p.value)).to.deep.equal([0]);
  });
});

describe('/health/routes', function () {
  this.timeout(20_000);
  const TOKEN = 'r0utes-t0ken-0123456789abcdef';
  let running: Running[] = [];
  afterEach(async () => {
    for (const s of running) {
      await s.guard.shutdown();
      if (s.server.listening) await close(s.server);
    }
    running = [];
  });

  it('serves the snapshot to a loopback caller (allowLoopback) and to the token; refuses loopback when it is off', async () => {
    const open = await start(express5, manifest(5, 'mjs'));
    running.push(open);
    const res = await fetch(`${open.base}/health/routes`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.match(/^application\/json/);
    const body = RouteSnapshot.parse(await res.json());
    expect(body).to.include({ vigilRoutes: 1, service: 'route-table', version: '2.0.0', total: 15, more: 0 });
    expect(body.routes.filter((r: RouteRow) => !r.declared && !r.exempt).map((r) => `${r.method} ${r.path}`)).to.deep.equal(UNDOCUMENTED);
    // Built once per 10 s: a route added since is in the table only after that.
    (open.app as { get: (p: string, h: unknown) => void }).get('/later', answer('GET /later'));
    const again = RouteSnapshot.parse(await (await fetch(`${open.base}/health/routes`)).json());
    expect(again).to.deep.equal(body);
    expect(routeTable(open.app, open.guard.manifest).total).to.equal(16);

    const closed = await start(express5, manifest(5, 'mjs', { health: { allowLoopback: false, tokenEnv: 'ROUTES_TOKEN' } }), { env: { ROUTES_TOKEN: TOKEN } });
    running.push(closed);
    const refused = await fetch(`${closed.base}/health/routes`);
    expect(refused.status).to.equal(401);
    expect(await refused.json()).to.deep.equal({ status: 'fail', output: 'detailed health needs a bearer token (Authorization: Bearer <token>)' });
    expect((await fetch(`${closed.base}/health/routes`, { headers: { authorization: 'Bearer wrong' } })).status).to.equal(401);
    expect((await fetch(`${closed.base}/health/routes`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).to.equal(200);
  });

  it('refuses an anonymous caller from a non-loopback address, even with loopback allowed (the default)', async function () {
    const external = Object.values(os.networkInterfaces())
      .flat()
      .find((a) => a && !a.internal && a.family === 'IPv4')?.address;
    if (!external) this.skip(); // no non-loopback IPv4 address on this machine
    const s = await start(express5, manifest(5, 'mjs'), { host: external, env: { VIGIL_HEALTH_TOKEN: TOKEN } });
    running.push(s);
    const res = await fetch(`${s.base}/health/routes`);
    expect(res.status).to.equal(401);
    const text = await res.text();
    expect(text).not.to.contain('/api/');
    expect((await fetch(`${s.base}/health/routes`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).to.equal(200);
  });
});

describe('the manifest: undocumentedRoutes and removedRoutes', () => {
  const BASE = 'service: s\ncomponents:\n  api:\n    policy: degrade\n';
  it('defaults: warn, nothing allowed, nothing internal, nothing removed', () => {
    const m = Manifest.parse({ service: 's', components: { api: { policy: 'degrade' } } });
    expect(m.undocumentedRoutes).to.deep.equal({ policy: 'warn', allow: [], internalRouters: [] });
    expect(m.removedRoutes).to.deep.equal([]);
  });

  it('a removal reads "METHOD /path" (the method upper-cased) with a reason', () => {
    const m = Manifest.parse({ service: 's', components: { api: { policy: 'degrade' } }, removedRoutes: [{ route: 'delete /a/:id', reason: 'gone' }] });
    expect(m.removedRoutes).to.deep.equal([{ route: 'DELETE /a/:id', reason: 'gone' }]);
  });

  for (const [yaml, where, words] of [
    ['undocumentedRoutes:\n  policy: loud\n', 'undocumentedRoutes.policy', /expected one of "ignore"\|"warn"\|"degrade"/],
    ['undocumentedRoutes:\n  allow: ["/internal/*"]\n', 'undocumentedRoutes.allow.0', /expected "METHOD \/path"/],
    ['undocumentedRoutes:\n  internalRouters: [Ops]\n', 'undocumentedRoutes.internalRouters.0', /expected a lowercase name/],
    ['removedRoutes:\n  - route: /api/v1/legacy\n    reason: x\n', 'removedRoutes.0.route', /expected "METHOD \/path", e.g. "GET \/api\/v1\/legacy"/],
    ['removedRoutes:\n  - route: GET /api/v1/legacy\n', 'removedRoutes.0.reason', /expected string/],
  ] as const) {
    it(`${where}: a clear error`, () => {
      const err = manifestErrorOf(BASE + yaml);
      const issue = err.issues.find((i) => i.path === where);
      expect(issue, `an issue at "${where}" in:\n${err.message}`).to.exist;
      expect(issue!.message).to.match(words);
    });
  }
});
