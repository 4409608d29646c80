/**
 * The Prometheus source: against the real rig (SDK OTLP/protobuf exporter → the Collector →
 * Prometheus remote write), and against a fake Prometheus for errors, timeouts,
 * recovery and poll scheduling.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { ValueType } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_ROUTE,
  ATTR_VIGIL_CHECK,
  ATTR_VIGIL_CHECK_TYPE,
  ATTR_VIGIL_COMPONENT,
  ATTR_VIGIL_CRITICAL,
  ATTR_VIGIL_LEVEL,
  ATTR_VIGIL_OUTCOME,
  ATTR_VIGIL_POLICY,
  ATTR_VIGIL_ROUTER,
  METRIC_HEALTH_LEVEL,
  METRIC_ROUTE_REGISTERED,
  METRIC_ROUTER_IMPORT,
  METRIC_STARTUP_CHECK,
  METRIC_STARTUP_SUCCESS,
  METRIC_ROUTE_REMOVAL_INTENDED,
  METRIC_ROUTE_SERVED,
  METRIC_ROUTE_SERVED_OVERFLOW,
} from '@vigil/sdk/semconv';
import type { RouteSetReport } from '../src/releases/tracker.js';
import { PrometheusSource } from '../src/config/schema.js';
import type { Signal } from '../src/signals/types.js';
import { createPrometheusSource, type SourceLogger } from '../src/sources/prometheus.js';
import { startPrometheus, startCollector, type Prometheus, type Collector } from '../../../test/helpers/rig.js';
import { waitFor } from '../../../test/helpers/wait.js';

interface Batch {
  signals: Signal[];
  receivedAt: number;
}

const brief = (s: Signal) => `${s.kind} ${s.component} ${s.subject} ${s.failing ? 'failing' : 'ok'}`;

/** A MeterProvider exporting Vigil's gauges the way the SDK does (observable gauges, OTLP/HTTP protobuf). */
function app(url: string, resource: Record<string, string>, failing: boolean): MeterProvider {
  const provider = new MeterProvider({
    resource: resourceFromAttributes(resource),
    readers: [new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter({ url }), exportIntervalMillis: 60_000 })],
  });
  const meter = provider.getMeter('@vigil/sdk');
  const bit = failing ? 0 : 1;
  meter.createObservableGauge(METRIC_ROUTER_IMPORT).addCallback((r) => {
    r.observe(bit, { [ATTR_VIGIL_ROUTER]: 'admin', [ATTR_VIGIL_COMPONENT]: 'admin', [ATTR_VIGIL_OUTCOME]: failing ? 'failed' : 'success', ...(failing ? { [ATTR_ERROR_TYPE]: 'ERR_MODULE_NOT_FOUND' } : {}) });
  });
  meter.createObservableGauge(METRIC_ROUTE_REGISTERED).addCallback((r) => {
    r.observe(bit, { [ATTR_HTTP_ROUTE]: '/api/v1/admin/panel', [ATTR_HTTP_REQUEST_METHOD]: 'GET', [ATTR_VIGIL_COMPONENT]: 'admin', [ATTR_VIGIL_CRITICAL]: true });
    r.observe(1, { [ATTR_HTTP_ROUTE]: '/health', [ATTR_HTTP_REQUEST_METHOD]: 'GET', [ATTR_VIGIL_CRITICAL]: false });
  });
  meter.createObservableGauge(METRIC_STARTUP_CHECK).addCallback((r) => {
    r.observe(1, { [ATTR_VIGIL_CHECK]: 'postgres', [ATTR_VIGIL_CHECK_TYPE]: 'tcp', [ATTR_VIGIL_COMPONENT]: 'database', [ATTR_VIGIL_POLICY]: 'fail_fast' });
  });
  meter.createObservableGauge(METRIC_STARTUP_SUCCESS, { valueType: ValueType.INT }).addCallback((r) => r.observe(1));
  meter.createObservableGauge(METRIC_HEALTH_LEVEL).addCallback((r) => {
    r.observe(bit, { [ATTR_VIGIL_CHECK]: 'endpoint:POST /api/v1/auth/login', [ATTR_VIGIL_LEVEL]: 2, [ATTR_VIGIL_COMPONENT]: 'authentication' });
    r.observe(bit, { [ATTR_VIGIL_CHECK]: 'flow:admin/admin-panel', [ATTR_VIGIL_LEVEL]: 3, [ATTR_VIGIL_COMPONENT]: 'admin' });
    r.observe(1, { [ATTR_VIGIL_CHECK]: 'process:event-loop-lag', [ATTR_VIGIL_LEVEL]: 1 });
  });
  return provider;
}

describe('sources/prometheus: against the real OpenTelemetry Collector and Prometheus', function () {
  this.timeout(90_000);
  let prom: Prometheus | undefined;
  let collector: Collector | undefined;
  const providers: MeterProvider[] = [];

  before(async () => {
    prom = await startPrometheus();
    collector = await startCollector({ remoteWriteUrl: prom.remoteWriteUrl });
  });

  after(async () => {
    await Promise.all(providers.map((p) => p.shutdown().catch(() => undefined)));
    await collector?.stop();
    await prom?.stop();
  });

  it('polls the signals with OTel attribute names, service, instance and environment, at the samples’ own time', async () => {
    const failing = app(collector!.otlpMetricsUrl, { 'service.name': 'marketedge-api', 'service.instance.id': 'pod-a', 'deployment.environment.name': 'rig-env' }, true);
    const other = app(collector!.otlpMetricsUrl, { 'service.name': 'marketedge-api', 'service.instance.id': 'pod-z', 'deployment.environment.name': 'elsewhere' }, false);
    providers.push(failing, other);
    const flushedFrom = Date.now();
    await Promise.all([failing.forceFlush(), other.forceFlush()]);
    const flushedTo = Date.now();

    const batches: Batch[] = [];
    const logs: string[] = [];
    const logger: SourceLogger = { info: (_o, m) => logs.push(`info ${m}`), warn: (_o, m) => logs.push(`warn ${m}`), error: (_o, m) => logs.push(`error ${m}`) };
    const source = createPrometheusSource({
      config: PrometheusSource.parse({ type: 'prometheus', url: prom!.url, selector: 'deployment_environment_name="rig-env"', timeout: '5s' }),
      onSignals: (signals, receivedAt) => batches.push({ signals, receivedAt }),
      logger,
    });
    // The Collector batches for 200 ms: wait until every series arrived.
    try {
      await waitFor(
        async () => {
          batches.length = 0;
          await source.pollOnce();
          return batches.length === 1 && batches[0]!.signals.length === 7;
        },
        { timeoutMs: 30_000, intervalMs: 500, what: 'all seven signals of pod-a through Prometheus' },
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\nhealth: ${JSON.stringify(source.health())}\nbatches: ${JSON.stringify(batches)}\n--- collector ---\n${collector!.logs(20)}`);
    }

    const { signals, receivedAt } = batches[0]!;
    expect(signals.map(brief).sort()).to.deep.equal([
      'dependency database postgres ok',
      'flow admin flow:admin/admin-panel failing',
      'import admin admin failing',
      'probe authentication POST /api/v1/auth/login failing',
      'process  process:event-loop-lag ok',
      'route admin GET /api/v1/admin/panel failing',
      'startup  startup ok',
    ]);
    for (const s of signals) expect(s).to.include({ service: 'marketedge-api', instance: 'pod-a', environment: 'rig-env' });
    const get = (kind: string) => signals.find((s) => s.kind === kind)!;
    expect(get('import').labels).to.deep.equal({ [ATTR_VIGIL_ROUTER]: 'admin', [ATTR_VIGIL_OUTCOME]: 'failed', [ATTR_ERROR_TYPE]: 'ERR_MODULE_NOT_FOUND' });
    expect(get('route').labels).to.deep.equal({ [ATTR_HTTP_ROUTE]: '/api/v1/admin/panel', [ATTR_HTTP_REQUEST_METHOD]: 'GET', [ATTR_VIGIL_CRITICAL]: 'true' });
    expect(get('dependency').labels).to.deep.equal({ [ATTR_VIGIL_CHECK]: 'postgres', [ATTR_VIGIL_CHECK_TYPE]: 'tcp', [ATTR_VIGIL_POLICY]: 'fail_fast' });
    expect(get('probe').labels).to.deep.equal({ [ATTR_VIGIL_CHECK]: 'endpoint:POST /api/v1/auth/login', [ATTR_VIGIL_LEVEL]: '2' });
    expect(get('startup').labels).to.deep.equal({});

    // The time of the sample as written, not of the query; the instance was seen at its newest sample.
    for (const s of signals) expect(s.observedAt).to.be.within(flushedFrom - 2000, flushedTo + 2000);
    expect(receivedAt).to.equal(Math.max(...signals.map((s) => s.observedAt)));
    await sleep(2500);
    batches.length = 0;
    await source.pollOnce();
    expect(batches[0]!.signals.map((s) => s.observedAt).sort()).to.deep.equal(signals.map((s) => s.observedAt).sort());
    expect(batches[0]!.receivedAt).to.equal(receivedAt);

    const health = source.health();
    expect(health).to.include({ up: true, consecutiveFailures: 0 });
    expect(health.lastSuccessAt).to.be.a('number');
    expect(health).to.not.have.property('lastError');
    expect(logs).to.deep.equal(['info Prometheus source up']);

    // Without a selector both instances come, each in its own batch.
    const all: Batch[] = [];
    await createPrometheusSource({ config: PrometheusSource.parse({ type: 'prometheus', url: prom!.url }), onSignals: (signals, at) => all.push({ signals, receivedAt: at }) }).pollOnce();
    expect(all.map((b) => `${b.signals[0]!.instance}:${b.signals.length}`).sort()).to.deep.equal(['pod-a:7', 'pod-z:7']);
    expect(all.find((b) => b.signals[0]!.instance === 'pod-z')!.signals.every((s) => !s.failing && s.environment === 'elsewhere')).to.equal(true);
  });

  it('reads each instance’s served route set with its version; a route gone from the export is gone from the set, though its series lingers', async () => {
    let served: Array<[string, string, string?]> = [['GET', '/api/v1/users', 'accounts'], ['GET', '/api/v1/orders']];
    const provider = new MeterProvider({
      resource: resourceFromAttributes({ 'service.name': 'shop', 'service.instance.id': 'pod-r', 'service.version': '1.5.0', 'deployment.environment.name': 'rig-releases' }),
      // Gauges as the SDK exports them (DELTA: a series not observed any more is not re-sent).
      readers: [new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter({ url: collector!.otlpMetricsUrl, temporalityPreference: AggregationTemporality.DELTA }), exportIntervalMillis: 60_000 })],
    });
    providers.push(provider);
    const meter = provider.getMeter('@vigil/sdk');
    const gauges = [METRIC_ROUTE_SERVED, METRIC_ROUTE_SERVED_OVERFLOW, METRIC_ROUTE_REMOVAL_INTENDED].map((n) => meter.createObservableGauge(n));
    meter.addBatchObservableCallback((r) => {
      for (const [method, route, component] of served) r.observe(gauges[0]!, 1, { [ATTR_HTTP_REQUEST_METHOD]: method, [ATTR_HTTP_ROUTE]: route, ...(component ? { [ATTR_VIGIL_COMPONENT]: component } : {}) });
      r.observe(gauges[1]!, 0);
      r.observe(gauges[2]!, 1, { [ATTR_HTTP_REQUEST_METHOD]: 'GET', [ATTR_HTTP_ROUTE]: '/api/v1/legacy' });
    }, gauges);
    const reports: RouteSetReport[] = [];
    const source = createPrometheusSource({
      config: PrometheusSource.parse({ type: 'prometheus', url: prom!.url, selector: 'deployment_environment_name="rig-releases"', timeout: '5s' }),
      onSignals: () => undefined,
      onRoutes: (r) => reports.push(...r),
    });
    const setAfterPolls = (routes: number) =>
      waitFor(
        async () => {
          reports.length = 0;
          await source.pollOnce();
          return reports.length === 1 && reports[0]!.routes.size === routes ? reports[0]! : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 500, what: `a served set of ${routes} routes through Prometheus` },
      );
    await provider.forceFlush();
    const first = await setAfterPolls(2);
    expect(first).to.include({ service: 'shop', instance: 'pod-r', environment: 'rig-releases', version: '1.5.0', overflow: 0 });
    expect([...first.routes].sort()).to.deep.equal([['GET /api/v1/orders', ''], ['GET /api/v1/users', 'accounts']]);
    expect([...first.intended]).to.deep.equal(['GET /api/v1/legacy']);

    // GET /api/v1/users removed at run time: its series still answers in Prometheus (~5 min), with its older sample time.
    await sleep(2500);
    served = [['GET', '/api/v1/orders']];
    await provider.forceFlush();
    const second = await setAfterPolls(1);
    expect([...second.routes.keys()]).to.deep.equal(['GET /api/v1/orders']);
    expect(second.observedAt).to.be.greaterThan(first.observedAt);
  });

  it('goes down with the reason when Prometheus stops, without throwing', async () => {
    const logs: string[] = [];
    const source = createPrometheusSource({
      config: PrometheusSource.parse({ type: 'prometheus', url: prom!.url, timeout: '2s' }),
      onSignals: () => undefined,
      logger: { info: (_o, m) => logs.push(`info ${m}`), warn: (o, m) => logs.push(`warn ${m} ${JSON.stringify(o)}`), error: () => undefined },
    });
    await source.pollOnce();
    expect(source.health().up).to.equal(true);
    await prom!.stop();
    prom = undefined;
    await source.pollOnce();
    await source.pollOnce();
    const health = source.health();
    expect(health.up).to.equal(false);
    expect(health.consecutiveFailures).to.equal(2);
    expect(health.lastError).to.match(/ECONNREFUSED/);
    expect(health.lastSuccessAt).to.be.a('number');
    expect(logs).to.have.length(2); // up, then down once (not once per failed poll)
    expect(logs[1]).to.match(/^warn Prometheus source down .*ECONNREFUSED/);
  });
});

// ── A fake Prometheus: errors, timeouts, recovery, scheduling ────────────────

type Behaviour = (req: http.IncomingMessage, res: http.ServerResponse, query: string) => void;

const vector = (result: object[]) => JSON.stringify({ status: 'success', data: { resultType: 'vector', result } });

describe('sources/prometheus: against a fake Prometheus', function () {
  this.timeout(20_000);
  let server: http.Server;
  let url: string;
  let behaviour: Behaviour;
  const queries: string[] = [];
  let concurrent = 0;
  let maxConcurrent = 0;

  before(async () => {
    server = http.createServer((req, res) => {
      const query = new URL(req.url ?? '/', 'http://x').searchParams.get('query') ?? '';
      queries.push(`${req.method} ${new URL(req.url ?? '/', 'http://x').pathname} ${query}`);
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      res.on('close', () => concurrent--);
      behaviour(req, res, query);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prom/`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    queries.length = 0;
    maxConcurrent = 0;
  });

  const ok: Behaviour = (_req, res, query) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    if (query.startsWith('timestamp(vigil_startup_success')) res.end(vector([{ metric: { service_name: 'api', service_instance_id: 'i-1' }, value: [1_700_000_100, '1700000050.25'] }]));
    else if (query.startsWith('vigil_startup_success')) res.end(vector([{ metric: { __name__: 'vigil_startup_success', service_name: 'api', service_instance_id: 'i-1' }, value: [1_700_000_100, '0'] }]));
    else res.end(vector([]));
  };

  const make = (input: object = {}, onSignals: (s: Signal[], at: number) => void = () => undefined) =>
    createPrometheusSource({ config: PrometheusSource.parse({ type: 'prometheus', url, timeout: 300, ...input }), onSignals, now: () => 42 });

  it('queries each signal metric and its timestamp, with the selector, under the URL path', async () => {
    behaviour = ok;
    const batches: Batch[] = [];
    await make({ selector: '{deployment_environment_name="prod", service_name=~"api|web"}' }, (signals, receivedAt) => batches.push({ signals, receivedAt })).pollOnce();
    expect([...queries].sort()).to.deep.equal(
      ['vigil_check_reason', 'vigil_health_level', 'vigil_instance_running', 'vigil_route_registered', 'vigil_router_import', 'vigil_startup_check', 'vigil_startup_success']
        .flatMap((m) => {
          const v = `${m}{deployment_environment_name="prod", service_name=~"api|web"}`;
          return [`GET /prom/api/v1/query ${v}`, `GET /prom/api/v1/query timestamp(${v})`];
        })
        .sort(),
    );
    expect(batches).to.deep.equal([
      {
        signals: [{ kind: 'startup', service: 'api', instance: 'i-1', component: '', subject: 'startup', failing: true, labels: {}, observedAt: 1_700_000_050_250 }],
        receivedAt: 1_700_000_050_250,
      },
    ]);
  });

  const failures: Array<{ name: string; behaviour: Behaviour; error: RegExp }> = [
    {
      name: 'a PromQL error',
      behaviour: (_q, res) => res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'error', errorType: 'bad_data', error: 'parse error at char 5' })),
      error: /HTTP 400: bad_data: parse error at char 5/,
    },
    { name: 'an answer that is not JSON', behaviour: (_q, res) => res.writeHead(502).end('<html>Bad Gateway</html>'), error: /HTTP 502 with no JSON: <html>Bad Gateway/ },
    { name: 'JSON of another shape', behaviour: (_q, res) => res.writeHead(200).end(JSON.stringify({ status: 'success', data: { resultType: 'matrix', result: [] } })), error: /no instant vector/ },
    { name: 'no answer in time', behaviour: () => undefined, error: /[Tt]imeout/ },
  ];

  for (const f of failures) {
    it(`${f.name} → down with the reason, no throw; up again when Prometheus answers`, async () => {
      const logs: string[] = [];
      const source = createPrometheusSource({
        config: PrometheusSource.parse({ type: 'prometheus', url, timeout: 300 }),
        onSignals: () => undefined,
        now: () => 42,
        logger: { info: (_o, m) => logs.push(`info ${m}`), warn: (_o, m) => logs.push(`warn ${m}`), error: (_o, m) => logs.push(`error ${m}`) },
      });
      expect(source.health()).to.deep.equal({ up: false, consecutiveFailures: 0 });
      behaviour = f.behaviour;
      await source.pollOnce();
      await source.pollOnce();
      expect(source.health()).to.include({ up: false, consecutiveFailures: 2 });
      expect(source.health().lastError).to.match(f.error);
      behaviour = ok;
      await source.pollOnce();
      expect(source.health()).to.deep.equal({ up: true, consecutiveFailures: 0, lastSuccessAt: 42 });
      expect(logs).to.deep.equal(['warn Prometheus source down', 'info Prometheus source up']);
    });
  }

  it('a store that throws is logged; the source stays up', async () => {
    behaviour = ok;
    const errors: string[] = [];
    const source = createPrometheusSource({
      config: PrometheusSource.parse({ type: 'prometheus', url }),
      onSignals: () => {
        throw new Error('boom');
      },
      logger: { info: () => undefined, warn: () => undefined, error: (o, m) => errors.push(`${m} ${JSON.stringify(o)}`) },
    });
    await source.pollOnce();
    expect(source.health().up).to.equal(true);
    expect(errors).to.have.length(1);
    expect(errors[0]).to.match(/boom/);
  });

  it('never overlaps polls: a second pollOnce joins the one in flight, and the timer waits for it', async () => {
    behaviour = (req, res, query) => {
      setTimeout(() => ok(req, res, query), 150);
    };
    const source = make({ interval: 50 });
    const a = source.pollOnce();
    const b = source.pollOnce();
    expect(a).to.equal(b);
    await Promise.all([a, b]);
    expect(queries).to.have.length(14); // one poll: 6 signal metrics and vigil_check_reason × (value, timestamp)
    expect(maxConcurrent).to.be.at.most(14);

    queries.length = 0;
    maxConcurrent = 0;
    const started = Date.now();
    source.start();
    source.start(); // idempotent
    await sleep(700);
    source.pollOnce(); // joins the timer's poll, or runs between two
    await sleep(300);
    source.stop();
    const elapsed = Date.now() - started;
    const polls = queries.length / 14;
    expect(Number.isInteger(polls), `${queries.length} queries`).to.equal(true);
    // ≥ 150 ms each, back to back (the interval, 50 ms, is shorter than a poll): never more than fit in the time.
    expect(polls).to.be.within(2, Math.floor(elapsed / 150) + 1);
    expect(maxConcurrent).to.be.at.most(14);
    await sleep(300);
    const after = queries.length;
    await sleep(300);
    expect(queries.length).to.equal(after); // stopped
  });

  it('stop() aborts a poll in flight at once, without counting a failure', async () => {
    behaviour = () => undefined; // never answers
    const source = make({ timeout: 5000, interval: 10_000 });
    source.start();
    await sleep(100);
    const inFlight = source.pollOnce(); // joins the timer's poll
    const t0 = Date.now();
    source.stop();
    await inFlight;
    expect(Date.now() - t0).to.be.below(1000);
    expect(source.health()).to.deep.equal({ up: false, consecutiveFailures: 0 });
  });
});
