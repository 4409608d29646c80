/**
 * `vigil.route.served` (telemetry/served.ts): the routes a real Express app
 * serves, exported through the app's own OpenTelemetry SDK (in memory) — none
 * before validation, every live route after it with the component of a
 * declared endpoint, a route removed at run time gone from the next export, the
 * cap with the overflow counted; and the manifest's intended removals read
 * defensively.
 */
import { createServer, type Server } from 'node:http';
import { metrics, type Attributes } from '@opentelemetry/api';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { expect } from 'chai';
import express from 'express';
import { pino } from 'pino';
import { vigil, type VigilGuard } from '../src/guard.js';
import { METRIC_ROUTE_REMOVAL_INTENDED, METRIC_ROUTE_SERVED, METRIC_ROUTE_SERVED_OVERFLOW, ROUTES_SERVED_MAX } from '../src/semconv.js';
import { intendedRemovals, parseRouteText, servedMax } from '../src/telemetry/served.js';

describe('vigil.route.served: the routes the app really serves', function () {
  this.timeout(30_000);
  const exporter = new InMemoryMetricExporter(AggregationTemporality.DELTA);
  let reader: PeriodicExportingMetricReader;
  const guards: VigilGuard[] = [];
  const servers: Server[] = [];

  // The app's own SDK, one per test: a guard's gauges stay registered on the meter it was given.
  beforeEach(() => {
    reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  });
  afterEach(async () => {
    for (const g of guards.splice(0)) await g.shutdown();
    for (const s of servers.splice(0)) if (s.listening) await new Promise((r) => s.close(r));
    exporter.reset();
    metrics.disable();
  });

  /** The points of `name` in the latest export. */
  async function exported(name: string): Promise<Array<{ attributes: Attributes; value: unknown }>> {
    exporter.reset();
    await reader.forceFlush();
    const last = exporter.getMetrics().at(-1);
    const m = last?.scopeMetrics.flatMap((s) => s.metrics).find((x) => x.descriptor.name === name);
    return m ? m.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value })) : [];
  }
  const routesOf = (points: Array<{ attributes: Attributes }>) => points.map((p) => `${String(p.attributes['http.request.method'])} ${String(p.attributes['http.route'])}`).sort();

  async function start(env: NodeJS.ProcessEnv = {}) {
    const users = express.Router();
    users.get('/', (_req, res) => void res.json([]));
    users.get('/:id', (_req, res) => void res.json({}));
    const guard = await vigil({
      manifest: {
        service: 'served',
        version: '1.4.2',
        components: { accounts: { policy: 'degrade', routers: [{ name: 'users', load: () => ({ router: users }), mount: '/api/v1/users' }], endpoints: ['GET /api/v1/users'] } },
        monitor: { enabled: false },
      },
      env,
      logger: pino({ level: 'silent' }),
    });
    guards.push(guard);
    const app = express();
    await guard.mountRouters(app);
    app.get('/api/v1/orders', (_req, res) => void res.json([]));
    app.post('/api/v1/orders', (_req, res) => void res.json({}));
    const server = createServer(app);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { guard, app, users };
  }

  it('exports nothing before validation, then every live route, with the component of a declared endpoint', async () => {
    const { guard, app } = await start();
    expect(await exported(METRIC_ROUTE_SERVED), 'before validate()').to.deep.equal([]);
    expect(await exported(METRIC_ROUTE_SERVED_OVERFLOW)).to.deep.equal([]);
    await guard.validate(app);
    const points = await exported(METRIC_ROUTE_SERVED);
    expect(routesOf(points)).to.deep.equal(['GET /api/v1/orders', 'GET /api/v1/users', 'GET /api/v1/users/:id', 'POST /api/v1/orders']);
    expect(points.every((p) => p.value === 1)).to.equal(true);
    expect(points.find((p) => p.attributes['http.route'] === '/api/v1/users')!.attributes['vigil.component']).to.equal('accounts');
    expect(points.find((p) => p.attributes['http.route'] === '/api/v1/orders')!.attributes).to.not.have.property('vigil.component');
    expect((await exported(METRIC_ROUTE_SERVED_OVERFLOW)).map((p) => p.value)).to.deep.equal([0]);
  });

  it('drops a route removed at run time from the next export (the periodic inventory re-reads the route table)', async () => {
    const { guard, app, users } = await start();
    await guard.validate(app);
    const stack = (users as unknown as { stack: Array<{ route?: { path: string } }> }).stack;
    stack.splice(stack.findIndex((l) => l.route?.path === '/:id'), 1);
    guard.refreshInventory();
    expect(routesOf(await exported(METRIC_ROUTE_SERVED))).to.not.include('GET /api/v1/users/:id');
  });

  it('exports at most VIGIL_ROUTES_SERVED_MAX routes and counts the rest', async () => {
    const { guard, app } = await start({ VIGIL_ROUTES_SERVED_MAX: '2' });
    await guard.validate(app);
    expect(await exported(METRIC_ROUTE_SERVED)).to.have.length(2);
    expect((await exported(METRIC_ROUTE_SERVED_OVERFLOW)).map((p) => p.value)).to.deep.equal([2]);
    expect(await exported(METRIC_ROUTE_REMOVAL_INTENDED)).to.deep.equal([]);
  });

  it('reads the cap and the intended removals defensively', () => {
    expect(servedMax({})).to.equal(ROUTES_SERVED_MAX);
    expect(servedMax({ VIGIL_ROUTES_SERVED_MAX: 'lots' })).to.equal(ROUTES_SERVED_MAX);
    expect(servedMax({ VIGIL_ROUTES_SERVED_MAX: '0' })).to.equal(ROUTES_SERVED_MAX);
    expect(parseRouteText('get /api/v1/users')).to.deep.equal({ method: 'GET', route: '/api/v1/users' });
    expect(parseRouteText('/api/v1/users')).to.equal(undefined);
    expect(intendedRemovals({}, 10)).to.deep.equal([]);
    expect(intendedRemovals({ removedRoutes: 'GET /x' }, 10)).to.deep.equal([]);
    expect(
      intendedRemovals({ removedRoutes: [{ route: 'GET /api/v1/users', reason: 'replaced by\n/api/v2/users' }, 'DELETE /x', { route: 'nonsense' }, null, 42] }, 10),
    ).to.deep.equal([{ method: 'GET', route: '/api/v1/users', reason: 'replaced by' }, { method: 'DELETE', route: '/x' }]);
    expect(intendedRemovals({ removedRoutes: ['GET /a', 'GET /b', 'GET /c'] }, 2)).to.have.length(2);
  });
});
