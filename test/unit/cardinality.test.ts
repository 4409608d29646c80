/**
 * Label cardinality: ids in paths never become series. 500 distinct ids on
 * `/api/v1/users/:id` (a router mounted by Vigil), 500 on `/users/:id` (a route
 * of the app itself) and 500 random paths no route matches must give one series
 * per route template plus `(unmatched)` — in the error-rate tracker, in
 * `vigil.http.server.error_ratio` and in every other metric — and no id in any
 * attribute value.
 *
 * 1. In process: `vigil()` on an Express app whose OpenTelemetry SDK is the
 *    test's own (InMemoryMetricExporter, InMemorySpanExporter), so every data
 *    point and span Vigil makes is counted.
 * 2. The example API as users run it, `--import @vigil/sdk/register` (http and
 *    express instrumentation): its server span names and `http.route` are
 *    templates, and its exported metrics carry no id either (OTLP/HTTP JSON to
 *    a capture server).
 *
 * Already covered in packages/sdk/test/monitor-requests.test.ts: two concrete
 * paths under one template, ids as `:id` when the inventory does not know the
 * route, 2,500 distinct mount paths under one series, `maxRoutes` and `(other)`.
 * New here: the counts at this scale through the exported metrics, and the
 * instrumentation's spans and metrics.
 */
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { context, metrics, propagation, trace, type Attributes } from '@opentelemetry/api';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { expect } from 'chai';
import express from 'express';
import { pino } from 'pino';
import { vigil, type VigilGuard } from '../../packages/sdk/src/guard.js';
import { ATTR_HTTP_ROUTE, METRIC_HTTP_ERROR_RATIO } from '../../packages/sdk/src/semconv.js';
import { otlpCapture, type OtlpCapture } from '../../packages/sdk/test/helpers/otlp.js';
import { startExample, type ExampleApp } from '../helpers/example.js';
import { REPO_ROOT } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const IDS = 500;
/** Ids no template, label or name could contain by chance: 7 digits from 4,731,000. */
const id = (i: number) => String(4_731_000 + i);
/** Random path segments: `zq` and 10 hex digits. */
const token = () => `zq${Math.random().toString(16).slice(2, 12).padEnd(10, '0')}`;
/** Matches any id or token this test put in a path. */
const LEAK = /473[01]\d{3}|zq[0-9a-f]{10}/;

/** Runs `n` requests, `parallel` at a time; returns the status codes. */
async function fire(n: number, url: (i: number) => string, init: (i: number) => RequestInit = () => ({}), parallel = 20): Promise<number[]> {
  const statuses: number[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let i = next++; i < n; i = next++) {
        const res = await fetch(url(i), init(i));
        await res.arrayBuffer();
        statuses[i] = res.status;
      }
    }),
  );
  return statuses;
}

const tally = (xs: number[]) => xs.reduce<Record<number, number>>((m, s) => ((m[s] = (m[s] ?? 0) + 1), m), {});

/** Every attribute value of a point, a resource or a span that carries an id or token. */
function leaks(where: string, attrs: Attributes | Record<string, unknown>): string[] {
  return Object.entries(attrs)
    .filter(([, v]) => LEAK.test(String(v)))
    .map(([k, v]) => `${where}: ${k}=${String(v)}`);
}

describe('label cardinality: ids in paths are never series', function () {
  this.timeout(60_000);

  describe('in process: the request tracker, vigil.http.server.error_ratio and every Vigil metric', () => {
    const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
    const spans = new InMemorySpanExporter();
    let guard: VigilGuard | undefined;
    let server: Server | undefined;

    before(() => {
      // The app's own SDK: Vigil uses it, so the test sees every data point and span.
      metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
      trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
    });
    after(async () => {
      await guard?.shutdown();
      if (server?.listening) await new Promise((r) => server!.close(r));
      metrics.disable();
      trace.disable();
      context.disable();
      propagation.disable();
    });

    it('500 ids on two routes and 500 unmatched paths: 3 series, no id in any attribute', async () => {
      const users = express.Router();
      // Every tenth id fails, so the error ratios are not all 0.
      users.get('/:id', (req, res) => void res.status(Number(req.params.id) % 10 === 0 ? 500 : 200).json({ id: req.params.id }));
      guard = await vigil({
        manifest: {
          service: 'cardinality',
          components: {
            users: {
              policy: 'degrade',
              routers: [{ name: 'users', load: () => ({ router: users }), mount: '/api/v1/users' }],
              endpoints: ['GET /api/v1/users/:id'],
            },
            legacy: { policy: 'degrade', endpoints: ['GET /users/:id'] },
          },
          monitor: { jitter: 0, intervals: { endpoints: '100ms', flows: '1h', drift: '100ms', dependencies: '1h', process: '1h', errorRate: '100ms', integration: '1h' } },
        },
        logger: pino({ level: 'silent' }),
      });
      const app = express();
      guard.mountHealth(app);
      await guard.mountRouters(app);
      app.get('/users/:id', (req, res) => void res.status(Number(req.params.id) % 10 === 0 ? 500 : 200).json({ id: req.params.id }));
      app.use((_req, res) => void res.status(404).json({ error: 'no route' }));
      server = createServer(app);
      await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
      const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      const report = await guard.validate(app, { server });
      expect(report.missingEndpoints).to.deep.equal([]);

      const api = await fire(IDS, (i) => `${base}/api/v1/users/${id(i)}`);
      const legacy = await fire(IDS, (i) => `${base}/users/${id(i)}`);
      const unmatched = await fire(IDS, () => `${base}/${token()}/${token()}?q=${token()}`);
      expect(tally(api)).to.deep.equal({ 200: 450, 500: 50 });
      expect(tally(legacy)).to.deep.equal({ 200: 450, 500: 50 });
      expect(tally(unmatched)).to.deep.equal({ 404: 500 });
      // Let the monitor run its probes and checks with this traffic in the window.
      await new Promise((r) => setTimeout(r, 300));

      await reader.forceFlush();
      const exported: ResourceMetrics = metricExporter.getMetrics().at(-1)!;
      const byMetric = new Map<string, Array<{ attributes: Attributes; value: unknown }>>();
      for (const sm of exported.scopeMetrics) {
        for (const m of sm.metrics) byMetric.set(m.descriptor.name, m.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value })));
      }
      console.log(`      data points per metric after ${3 * IDS} requests: ${[...byMetric].map(([name, points]) => `${name} ${points.length}`).join(', ')}`);

      const ratio = byMetric.get(METRIC_HTTP_ERROR_RATIO)!;
      expect(ratio.map((p) => [p.attributes[ATTR_HTTP_ROUTE], p.value]).sort()).to.deep.equal([
        ['(unmatched)', 0],
        ['/api/v1/users/:id', 0.1],
        ['/users/:id', 0.1],
      ]);
      // No metric grows with the traffic: the largest is bounded by the app's routes and checks.
      for (const [name, points] of byMetric) expect(points.length, `${name} data points`).to.be.at.most(20);
      const found = [
        ...[...byMetric].flatMap(([name, points]) => points.flatMap((p) => leaks(name, p.attributes))),
        ...leaks('resource', exported.resource.attributes),
        ...spans.getFinishedSpans().flatMap((s) => [...leaks(`span ${s.name}`, s.attributes), ...(LEAK.test(s.name) ? [`span name ${s.name}`] : [])]),
      ];
      expect(found, 'attribute values carrying an id').to.deep.equal([]);
      expect(spans.getFinishedSpans().length, 'Vigil made spans (probes, startup)').to.be.greaterThan(0);
      // The health body names templates only.
      const detailed = await (await fetch(`${base}/health/detailed`)).text();
      expect(LEAK.test(detailed), '/health/detailed carries an id').to.equal(false);
    });
  });

  describe('the example API with --import @vigil/sdk/register: http.route templates in spans', () => {
    let otlp: OtlpCapture | undefined;
    let app: ExampleApp | undefined;

    after(async () => {
      await app?.stop();
      await otlp?.stop();
    });

    it('500 ids on /api/v1/users/:id and 500 unmatched paths: span names and http.route are templates, metrics carry no id', async () => {
      otlp = await otlpCapture();
      app = await startExample({
        NODE_OPTIONS: '--import @vigil/sdk/register',
        VIGIL_MANIFEST: path.join(REPO_ROOT, 'examples/marketedge-api/vigil.yaml'),
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_METRIC_EXPORT_INTERVAL: '1000',
        OTEL_BSP_SCHEDULE_DELAY: '200',
        VIGIL_LOG_LEVEL: 'warn',
      });
      await app.serving(20_000);
      const url = app.url;
      const login = await fetch(`${url}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'admin@marketedge.example', password: 'demo-admin' }),
      });
      const { accessToken } = (await login.json()) as { accessToken: string };
      const started = Date.now();
      const users = await fire(IDS, (i) => `${url}/api/v1/users/${id(i)}`, () => ({ headers: { authorization: `Bearer ${accessToken}` } }), 10);
      const unmatched = await fire(IDS, () => `${url}/api/v1/${token()}/${token()}`, () => ({}), 10);
      expect(tally(users)).to.deep.equal({ 200: IDS });
      expect(tally(unmatched)).to.deep.equal({ 404: IDS });
      console.log(`      ${2 * IDS} requests in ${Date.now() - started} ms`);

      // Every request's server span (a root span with an HTTP method), and a metric export after the last request.
      const serverSpans = () => otlp!.spans.filter((s) => s.attributes['http.request.method'] !== undefined && !s.parentSpanId);
      await waitFor(() => serverSpans().length >= 2 * IDS + 1, { timeoutMs: 20_000, what: `${2 * IDS} server spans` });
      const lastPoint = otlp.points.length;
      await waitFor(() => otlp!.points.slice(lastPoint).some((p) => p.metric === METRIC_HTTP_ERROR_RATIO), { timeoutMs: 10_000, what: 'a metric export after the requests' });
      // The latest export only: cumulative points repeat in every export.
      const exportAt = otlp.points.at(-1)!.at;
      const latest = otlp.points.filter((p) => p.at === exportAt);

      const names = new Set(serverSpans().map((s) => s.name));
      const routes = new Set(otlp.spans.map((s) => s.attributes[ATTR_HTTP_ROUTE]).filter((r) => r !== undefined));
      const perMetric = new Map<string, Set<string>>();
      for (const p of latest) {
        if (!perMetric.has(p.metric)) perMetric.set(p.metric, new Set());
        perMetric.get(p.metric)!.add(JSON.stringify(p.attributes));
      }
      console.log(`      server span names: ${[...names].sort().join(', ')}`);
      console.log(`      http.route values in spans: ${[...routes].sort().join(', ')}`);
      console.log(`      series per metric in the last export: ${[...perMetric].map(([m, s]) => `${m} ${s.size}`).join(', ')}`);

      expect([...names].filter((n) => LEAK.test(n)), 'span names carrying an id').to.deep.equal([]);
      expect(names.size, 'distinct server span names').to.be.at.most(10);
      expect(routes.has('/api/v1/users/:id'), 'the users route by its template').to.equal(true);
      expect([...routes].filter((r) => LEAK.test(String(r))), 'http.route values carrying an id').to.deep.equal([]);
      // The instrumentation's own HTTP metrics (http.server.duration / http.server.request.duration) are exported
      // (register.ts hands the instrumentations the meter provider once it exists) and labelled by template.
      const httpMetrics = [...perMetric.keys()].filter((name) => name.startsWith('http.server'));
      expect(httpMetrics, 'the http instrumentation\'s server metrics').to.not.be.empty;
      for (const m of httpMetrics) {
        expect([...perMetric.get(m)!].some((a) => a.includes('/api/v1/users/:id')), `${m} labelled with the users template`).to.equal(true);
      }
      for (const [metric, series] of perMetric) expect(series.size, `${metric} series`).to.be.at.most(40);
      const found = otlp.points.flatMap((p) => [...leaks(p.metric, p.attributes), ...leaks('resource', p.resource)]);
      expect(found, 'metric attribute values carrying an id').to.deep.equal([]);
      const ratio = latest.filter((p) => p.metric === METRIC_HTTP_ERROR_RATIO).map((p) => p.attributes[ATTR_HTTP_ROUTE]);
      expect(ratio).to.include.members(['/api/v1/users/:id', '(unmatched)']);
    });
  });
});
