/**
 * The mapping table (metric data point → signal) and the OTLP/HTTP receiver,
 * JSON and protobuf, fed by the real OpenTelemetry exporters over a real
 * node:http server; the `rejected` signal of a sender whose batches are refused.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import { ValueType } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
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
  METRIC_COMPONENT_HEALTHY,
  METRIC_HEALTH_LEVEL,
  METRIC_HTTP_ERROR_RATIO,
  METRIC_INSTANCE_RUNNING,
  METRIC_PROBE_SUCCESS,
  METRIC_ROUTE_REGISTERED,
  METRIC_ROUTER_IMPORT,
  METRIC_STARTUP_CHECK,
  METRIC_STARTUP_SUCCESS,
  METRIC_STARTUP_DURATION,
  promLabel,
  promName,
} from '@vigil/sdk/semconv';
import { OtlpSource } from '../src/config/schema.js';
import { createOtlpReceiver, type OtlpReceiver } from '../src/sources/otlp.js';
import { fromPromLabels, PROM_LABEL_TO_ATTR, PROM_SIGNAL_METRICS, SIGNAL_METRICS, toSignal } from '../src/sources/mapping.js';
import type { Signal } from '../src/signals/types.js';
import { PROTOBUF_TYPE, responseOf, statusOf, toProtobuf } from '../../../test/helpers/otlp.js';

const resource = { service: 'marketedge-api', instance: 'pod-1', environment: 'production' };
const T = 1_700_000_000_000;
type Expected = Pick<Signal, 'kind' | 'component' | 'subject' | 'failing'> & { labels?: Record<string, string> };

const cases: Array<{ name: string; metric: string; value: number; attrs: Record<string, string>; expected: Expected | undefined }> = [
  {
    name: 'router import failed',
    metric: METRIC_ROUTER_IMPORT,
    value: 0,
    attrs: { [ATTR_VIGIL_ROUTER]: 'admin', [ATTR_VIGIL_COMPONENT]: 'admin', [ATTR_VIGIL_OUTCOME]: 'failed', [ATTR_ERROR_TYPE]: 'ERR_MODULE_NOT_FOUND' },
    expected: { kind: 'import', component: 'admin', subject: 'admin', failing: true, labels: { [ATTR_VIGIL_ROUTER]: 'admin', [ATTR_VIGIL_OUTCOME]: 'failed', [ATTR_ERROR_TYPE]: 'ERR_MODULE_NOT_FOUND' } },
  },
  {
    name: 'router import succeeded',
    metric: METRIC_ROUTER_IMPORT,
    value: 1,
    attrs: { [ATTR_VIGIL_ROUTER]: 'auth-routes', [ATTR_VIGIL_COMPONENT]: 'authentication', [ATTR_VIGIL_OUTCOME]: 'success' },
    expected: { kind: 'import', component: 'authentication', subject: 'auth-routes', failing: false, labels: { [ATTR_VIGIL_ROUTER]: 'auth-routes', [ATTR_VIGIL_OUTCOME]: 'success' } },
  },
  {
    name: 'router import with no routes',
    metric: METRIC_ROUTER_IMPORT,
    value: 0,
    attrs: { [ATTR_VIGIL_ROUTER]: 'users', [ATTR_VIGIL_COMPONENT]: 'users', [ATTR_VIGIL_OUTCOME]: 'no_routes' },
    expected: { kind: 'import', component: 'users', subject: 'users', failing: true },
  },
  { name: 'router import without vigil.router', metric: METRIC_ROUTER_IMPORT, value: 0, attrs: { [ATTR_VIGIL_COMPONENT]: 'admin' }, expected: undefined },
  {
    name: 'critical route missing',
    metric: METRIC_ROUTE_REGISTERED,
    value: 0,
    attrs: { [ATTR_HTTP_ROUTE]: '/api/v1/auth/login', [ATTR_HTTP_REQUEST_METHOD]: 'POST', [ATTR_VIGIL_COMPONENT]: 'authentication', [ATTR_VIGIL_CRITICAL]: 'true' },
    expected: { kind: 'route', component: 'authentication', subject: 'POST /api/v1/auth/login', failing: true },
  },
  {
    name: 'critical route registered',
    metric: METRIC_ROUTE_REGISTERED,
    value: 1,
    attrs: { [ATTR_HTTP_ROUTE]: '/api/v1/users/:id', [ATTR_HTTP_REQUEST_METHOD]: 'GET', [ATTR_VIGIL_COMPONENT]: 'users', [ATTR_VIGIL_CRITICAL]: 'true' },
    expected: { kind: 'route', component: 'users', subject: 'GET /api/v1/users/:id', failing: false },
  },
  {
    name: 'non-critical route',
    metric: METRIC_ROUTE_REGISTERED,
    value: 1,
    attrs: { [ATTR_HTTP_ROUTE]: '/health', [ATTR_HTTP_REQUEST_METHOD]: 'GET', [ATTR_VIGIL_CRITICAL]: 'false' },
    expected: undefined,
  },
  { name: 'route without vigil.critical', metric: METRIC_ROUTE_REGISTERED, value: 0, attrs: { [ATTR_HTTP_ROUTE]: '/x', [ATTR_HTTP_REQUEST_METHOD]: 'GET' }, expected: undefined },
  {
    name: 'startup dependency check failed',
    metric: METRIC_STARTUP_CHECK,
    value: 0,
    attrs: { [ATTR_VIGIL_CHECK]: 'postgres', [ATTR_VIGIL_CHECK_TYPE]: 'tcp', [ATTR_VIGIL_COMPONENT]: 'database', [ATTR_VIGIL_POLICY]: 'fail_fast' },
    expected: { kind: 'dependency', component: 'database', subject: 'postgres', failing: true, labels: { [ATTR_VIGIL_CHECK]: 'postgres', [ATTR_VIGIL_CHECK_TYPE]: 'tcp', [ATTR_VIGIL_POLICY]: 'fail_fast' } },
  },
  { name: 'startup refused', metric: METRIC_STARTUP_SUCCESS, value: 0, attrs: {}, expected: { kind: 'startup', component: '', subject: 'startup', failing: true, labels: {} } },
  { name: 'startup ok', metric: METRIC_STARTUP_SUCCESS, value: 1, attrs: {}, expected: { kind: 'startup', component: '', subject: 'startup', failing: false } },
  { name: 'instance stopped cleanly', metric: METRIC_INSTANCE_RUNNING, value: 0, attrs: {}, expected: { kind: 'lifecycle', component: '', subject: 'running', failing: true, labels: {} } },
  { name: 'instance running', metric: METRIC_INSTANCE_RUNNING, value: 1, attrs: {}, expected: { kind: 'lifecycle', component: '', subject: 'running', failing: false } },
  {
    name: 'health: endpoint check',
    metric: METRIC_HEALTH_LEVEL,
    value: 0,
    attrs: { [ATTR_VIGIL_CHECK]: 'endpoint:POST /api/v1/auth/login', [ATTR_VIGIL_LEVEL]: '2', [ATTR_VIGIL_COMPONENT]: 'authentication' },
    expected: { kind: 'probe', component: 'authentication', subject: 'POST /api/v1/auth/login', failing: true, labels: { [ATTR_VIGIL_CHECK]: 'endpoint:POST /api/v1/auth/login', [ATTR_VIGIL_LEVEL]: '2' } },
  },
  {
    name: 'health: flow check',
    metric: METRIC_HEALTH_LEVEL,
    value: 0,
    attrs: { [ATTR_VIGIL_CHECK]: 'flow:admin/admin-panel', [ATTR_VIGIL_LEVEL]: '3', [ATTR_VIGIL_COMPONENT]: 'admin' },
    expected: { kind: 'flow', component: 'admin', subject: 'flow:admin/admin-panel', failing: true },
  },
  {
    name: 'health: dependency check',
    metric: METRIC_HEALTH_LEVEL,
    value: 1,
    attrs: { [ATTR_VIGIL_CHECK]: 'dependency:database/postgres', [ATTR_VIGIL_LEVEL]: '1', [ATTR_VIGIL_COMPONENT]: 'database' },
    expected: { kind: 'dependency', component: 'database', subject: 'dependency:database/postgres', failing: false },
  },
  {
    name: 'health: drift check',
    metric: METRIC_HEALTH_LEVEL,
    value: 0,
    attrs: { [ATTR_VIGIL_CHECK]: 'drift:admin', [ATTR_VIGIL_LEVEL]: '2', [ATTR_VIGIL_COMPONENT]: 'admin' },
    expected: { kind: 'route', component: 'admin', subject: 'drift:admin', failing: true },
  },
  {
    name: 'health: process check (no component)',
    metric: METRIC_HEALTH_LEVEL,
    value: 0,
    attrs: { [ATTR_VIGIL_CHECK]: 'process:event-loop-lag', [ATTR_VIGIL_LEVEL]: '1' },
    expected: { kind: 'process', component: '', subject: 'process:event-loop-lag', failing: true },
  },
  {
    name: 'health: error rate',
    metric: METRIC_HEALTH_LEVEL,
    value: 0,
    attrs: { [ATTR_VIGIL_CHECK]: 'error-rate', [ATTR_VIGIL_LEVEL]: '2' },
    expected: { kind: 'error_rate', component: '', subject: 'error-rate', failing: true },
  },
  {
    name: 'health: integration check',
    metric: METRIC_HEALTH_LEVEL,
    value: 1,
    attrs: { [ATTR_VIGIL_CHECK]: 'integration:cors /x', [ATTR_VIGIL_LEVEL]: '4' },
    expected: { kind: 'integration', component: '', subject: 'integration:cors /x', failing: false },
  },
  {
    name: 'health: integration check with a component',
    metric: METRIC_HEALTH_LEVEL,
    value: 0,
    attrs: { [ATTR_VIGIL_CHECK]: 'integration:jwt', [ATTR_VIGIL_LEVEL]: '4', [ATTR_VIGIL_COMPONENT]: 'authentication' },
    expected: { kind: 'integration', component: 'authentication', subject: 'integration:jwt', failing: true },
  },
  { name: 'health: a check id of no known kind', metric: METRIC_HEALTH_LEVEL, value: 0, attrs: { [ATTR_VIGIL_CHECK]: 'my-own-check', [ATTR_VIGIL_LEVEL]: '2' }, expected: undefined },
  { name: 'health: error-rate is a whole id, not a prefix', metric: METRIC_HEALTH_LEVEL, value: 0, attrs: { [ATTR_VIGIL_CHECK]: 'error-rate-2' }, expected: undefined },
  { name: 'health: no vigil.check', metric: METRIC_HEALTH_LEVEL, value: 0, attrs: { [ATTR_VIGIL_LEVEL]: '2' }, expected: undefined },
  { name: 'not a number', metric: METRIC_STARTUP_SUCCESS, value: NaN, attrs: {}, expected: undefined },
  { name: 'infinite', metric: METRIC_STARTUP_SUCCESS, value: Infinity, attrs: {}, expected: undefined },
  { name: 'component health (not a signal metric)', metric: METRIC_COMPONENT_HEALTHY, value: 0, attrs: { [ATTR_VIGIL_COMPONENT]: 'admin' }, expected: undefined },
  { name: 'probe success (raw, not damped)', metric: METRIC_PROBE_SUCCESS, value: 0, attrs: { [ATTR_HTTP_ROUTE]: '/x', [ATTR_HTTP_REQUEST_METHOD]: 'GET' }, expected: undefined },
  { name: 'error ratio', metric: METRIC_HTTP_ERROR_RATIO, value: 0, attrs: {}, expected: undefined },
  { name: 'startup duration', metric: METRIC_STARTUP_DURATION, value: 0, attrs: {}, expected: undefined },
  { name: 'a Prometheus name is not an OTel name', metric: promName(METRIC_ROUTER_IMPORT), value: 0, attrs: { [ATTR_VIGIL_ROUTER]: 'admin' }, expected: undefined },
];

describe('sources/mapping: toSignal', () => {
  for (const c of cases) {
    it(`${c.name} → ${c.expected ? `${c.expected.kind} ${c.expected.failing ? 'failing' : 'ok'}` : 'no signal'}`, () => {
      const s = toSignal(c.metric, c.value, c.attrs, resource, T);
      if (!c.expected) {
        expect(s).to.equal(undefined);
        return;
      }
      expect(s).to.not.equal(undefined);
      const { labels, ...rest } = c.expected;
      expect(s).to.include({ ...rest, service: 'marketedge-api', instance: 'pod-1', environment: 'production', observedAt: T });
      if (labels) expect(s!.labels).to.deep.equal(labels);
      expect(s!.labels).to.not.have.property(ATTR_VIGIL_COMPONENT);
    });
  }

  it('reads vigil.health.level -1 (a check not run yet) as unknown: neither failing nor passing', () => {
    const s = toSignal(METRIC_HEALTH_LEVEL, -1, { [ATTR_VIGIL_CHECK]: 'endpoint:GET /x', [ATTR_VIGIL_COMPONENT]: 'admin' }, resource, T);
    expect(s).to.include({ kind: 'probe', subject: 'GET /x', failing: false, unknown: true });
    expect(toSignal(METRIC_HEALTH_LEVEL, 1, { [ATTR_VIGIL_CHECK]: 'endpoint:GET /x' }, resource, T)).to.not.have.property('unknown');
  });

  it('leaves environment out when the resource has none', () => {
    const s = toSignal(METRIC_STARTUP_SUCCESS, 1, {}, { service: 's', instance: '' }, T);
    expect(s).to.deep.equal({ kind: 'startup', service: 's', instance: '', component: '', subject: 'startup', failing: false, labels: {}, observedAt: T });
    expect(s).to.not.have.property('environment');
  });

  it('understands exactly the six signal metrics', () => {
    expect([...SIGNAL_METRICS]).to.have.members([METRIC_ROUTER_IMPORT, METRIC_ROUTE_REGISTERED, METRIC_STARTUP_CHECK, METRIC_STARTUP_SUCCESS, METRIC_HEALTH_LEVEL, METRIC_INSTANCE_RUNNING]);
    expect(PROM_SIGNAL_METRICS.map((m) => m.prom)).to.have.members([
      'vigil_router_import',
      'vigil_route_registered',
      'vigil_startup_check',
      'vigil_startup_success',
      'vigil_health_level',
      'vigil_instance_running',
    ]);
  });
});

describe('sources/mapping: Prometheus labels', () => {
  it('maps every Vigil attribute label back to its OTel name', () => {
    for (const attr of [ATTR_VIGIL_ROUTER, ATTR_VIGIL_COMPONENT, ATTR_VIGIL_OUTCOME, ATTR_VIGIL_CHECK, ATTR_VIGIL_CHECK_TYPE, ATTR_VIGIL_POLICY, ATTR_VIGIL_LEVEL, ATTR_VIGIL_CRITICAL, ATTR_ERROR_TYPE, ATTR_HTTP_ROUTE, ATTR_HTTP_REQUEST_METHOD]) {
      expect(PROM_LABEL_TO_ATTR.get(promLabel(attr)), attr).to.equal(attr);
    }
    expect(PROM_LABEL_TO_ATTR.has('service_name')).to.equal(false);
  });

  it('splits a series into attributes and resource, dropping labels of no attribute', () => {
    const out = fromPromLabels({
      __name__: 'vigil_router_import',
      service_name: 'api',
      service_instance_id: 'i-1',
      service_version: '1.2.3',
      deployment_environment_name: 'staging',
      telemetry_sdk_language: 'nodejs',
      job: 'x',
      vigil_router: 'admin',
      vigil_component: 'admin',
      vigil_outcome: 'failed',
      error_type: 'TypeError',
    });
    expect(out.resource).to.deep.equal({ service: 'api', instance: 'i-1', environment: 'staging' });
    expect(out.attrs).to.deep.equal({ 'vigil.router': 'admin', 'vigil.component': 'admin', 'vigil.outcome': 'failed', 'error.type': 'TypeError' });
  });

  it('has no resource without service_name, and an empty instance without service_instance_id', () => {
    expect(fromPromLabels({ vigil_check: 'x' }).resource).to.equal(undefined);
    expect(fromPromLabels({ service_name: 'a' }).resource).to.deep.equal({ service: 'a', instance: '' });
  });
});

// ── The OTLP/HTTP JSON receiver ───────────────────────────────────────────────

interface Received {
  signals: Signal[];
  receivedAt: number;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

/** One request with node:http (no keep-alive), so headers and body are exactly what the test says. */
function request(url: string, o: { method?: string; headers?: Record<string, string>; body?: Buffer | string; chunks?: Buffer[] } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(url, { method: o.method ?? 'POST', headers: o.headers ?? {}, agent: false }, (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let body: any = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* keep the text */
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
      res.on('error', (err) => reject(err));
    });
    // The server may answer (413) and close before an oversized body is all sent: that is not a failure.
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    if (o.chunks) {
      for (const c of o.chunks) req.write(c);
      req.end();
    } else req.end(o.body);
  });
}

const JSON_TYPE = { 'content-type': 'application/json' };
const NS = (ms: number) => `${BigInt(ms) * 1_000_000n}`;

/** A hand-written ExportMetricsServiceRequest: asInt as a string, timeUnixNano as a string, a boolean attribute. */
function exportRequest(o: { service?: string; value?: string | number; time?: number } = {}) {
  const kv = (key: string, value: object) => ({ key, value });
  return {
    resourceMetrics: [
      {
        resource: {
          attributes: [
            ...(o.service === undefined ? [kv('service.name', { stringValue: 'marketedge-api' })] : o.service ? [kv('service.name', { stringValue: o.service })] : []),
            kv('service.instance.id', { stringValue: 'pod-7' }),
            kv('deployment.environment.name', { stringValue: 'staging' }),
          ],
        },
        scopeMetrics: [
          {
            scope: { name: '@vigil/sdk', version: '0.1.0' },
            metrics: [
              {
                name: METRIC_ROUTE_REGISTERED,
                description: 'x',
                unit: '',
                gauge: {
                  dataPoints: [
                    {
                      attributes: [
                        kv(ATTR_HTTP_ROUTE, { stringValue: '/api/v1/auth/login' }),
                        kv(ATTR_HTTP_REQUEST_METHOD, { stringValue: 'POST' }),
                        kv(ATTR_VIGIL_COMPONENT, { stringValue: 'authentication' }),
                        kv(ATTR_VIGIL_CRITICAL, { boolValue: true }),
                      ],
                      startTimeUnixNano: NS(o.time ?? T),
                      timeUnixNano: NS(o.time ?? T),
                      asInt: o.value ?? '0',
                    },
                  ],
                },
              },
            ],
          },
        ],
      },
    ],
  };
}

describe('sources/otlp: the OTLP/HTTP JSON receiver', function () {
  this.timeout(20_000);
  const TOKEN = 'correct horse battery staple';
  let server: http.Server;
  let base: string;
  let open: OtlpReceiver;
  let secured: OtlpReceiver;
  let unset: OtlpReceiver;
  const received: Received[] = [];
  let failStore = false;
  const clock = { t: 5_000_000 };

  before(async () => {
    const onSignals = (signals: Signal[], receivedAt: number) => {
      if (failStore) throw new Error('store is full');
      received.push({ signals, receivedAt });
    };
    // Refusals never add up to a `rejected` signal here: that has tests of its own below.
    const make = (input: object) =>
      createOtlpReceiver({ config: OtlpSource.parse({ type: 'otlp', maxBodyBytes: 64 * 1024, rejectedAfter: 1_000_000, ...input }), env: { VIGIL_INGEST_TOKEN: TOKEN }, onSignals, now: () => clock.t });
    open = make({});
    secured = make({ tokenEnv: 'VIGIL_INGEST_TOKEN' });
    unset = make({ tokenEnv: 'VIGIL_NOT_SET' });
    server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const receiver = path === '/secured/v1/metrics' ? secured : path === '/unset/v1/metrics' ? unset : open;
      receiver.handler(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    received.length = 0;
    failStore = false;
  });

  it('turns what the real OTLP/HTTP JSON exporter sends into signals', async () => {
    const provider = new MeterProvider({
      resource: resourceFromAttributes({ 'service.name': 'marketedge-api', 'service.instance.id': 'pod-1', 'deployment.environment.name': 'production' }),
      readers: [new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter({ url: `${base}/v1/metrics` }), exportIntervalMillis: 60_000 })],
    });
    try {
      const meter = provider.getMeter('@vigil/sdk');
      // An integer gauge: the exporter writes asInt.
      meter.createObservableGauge(METRIC_ROUTER_IMPORT, { valueType: ValueType.INT }).addCallback((r) => {
        r.observe(0, { [ATTR_VIGIL_ROUTER]: 'admin', [ATTR_VIGIL_COMPONENT]: 'admin', [ATTR_VIGIL_OUTCOME]: 'failed', [ATTR_ERROR_TYPE]: 'ERR_MODULE_NOT_FOUND' });
        r.observe(1, { [ATTR_VIGIL_ROUTER]: 'auth-routes', [ATTR_VIGIL_COMPONENT]: 'authentication', [ATTR_VIGIL_OUTCOME]: 'success' });
      });
      // A double gauge (the SDK's default): asDouble; a boolean attribute.
      meter.createObservableGauge(METRIC_ROUTE_REGISTERED).addCallback((r) => {
        r.observe(1, { [ATTR_HTTP_ROUTE]: '/api/v1/auth/login', [ATTR_HTTP_REQUEST_METHOD]: 'POST', [ATTR_VIGIL_COMPONENT]: 'authentication', [ATTR_VIGIL_CRITICAL]: true });
        r.observe(1, { [ATTR_HTTP_ROUTE]: '/health', [ATTR_HTTP_REQUEST_METHOD]: 'GET', [ATTR_VIGIL_CRITICAL]: false });
      });
      meter.createObservableGauge(METRIC_HEALTH_LEVEL).addCallback((r) => {
        r.observe(0, { [ATTR_VIGIL_CHECK]: 'flow:admin/admin-panel', [ATTR_VIGIL_LEVEL]: 3, [ATTR_VIGIL_COMPONENT]: 'admin' });
      });
      // Ignored: a histogram, and a gauge that is not a signal.
      meter.createHistogram(METRIC_STARTUP_DURATION, { unit: 's' }).record(0.2);
      meter.createObservableGauge(METRIC_COMPONENT_HEALTHY).addCallback((r) => r.observe(0, { [ATTR_VIGIL_COMPONENT]: 'admin' }));

      const before = Date.now();
      const requestsBefore = open.stats().requests;
      await provider.forceFlush();
      const after = Date.now();

      expect(received).to.have.length(1);
      const { signals, receivedAt } = received[0]!;
      expect(receivedAt).to.equal(clock.t);
      const byKind = (kind: string, subject: string) => signals.find((s) => s.kind === kind && s.subject === subject);
      expect(signals.map((s) => `${s.kind} ${s.component} ${s.subject} ${s.failing}`).sort()).to.deep.equal([
        'flow admin flow:admin/admin-panel true',
        'import admin admin true',
        'import authentication auth-routes false',
        'route authentication POST /api/v1/auth/login false',
      ]);
      const admin = byKind('import', 'admin')!;
      expect(admin).to.include({ service: 'marketedge-api', instance: 'pod-1', environment: 'production', failing: true });
      expect(admin.labels).to.deep.equal({ [ATTR_VIGIL_ROUTER]: 'admin', [ATTR_VIGIL_OUTCOME]: 'failed', [ATTR_ERROR_TYPE]: 'ERR_MODULE_NOT_FOUND' });
      expect(admin.observedAt).to.be.within(before - 1000, after);
      expect(byKind('flow', 'flow:admin/admin-panel')!.labels).to.deep.equal({ [ATTR_VIGIL_CHECK]: 'flow:admin/admin-panel', [ATTR_VIGIL_LEVEL]: '3' });
      expect(byKind('route', 'POST /api/v1/auth/login')!.labels[ATTR_VIGIL_CRITICAL]).to.equal('true');

      const stats = open.stats();
      expect(stats.requests).to.equal(requestsBefore + 1);
      expect(stats.lastReceivedAt).to.equal(clock.t);
      expect(stats.points).to.be.at.least(6);
    } finally {
      await provider.shutdown();
    }
  });

  it('reads asInt and timeUnixNano given as strings, and answers {}', async () => {
    const t = 1_700_000_123_456;
    const res = await request(`${base}/v1/metrics`, { headers: JSON_TYPE, body: JSON.stringify(exportRequest({ value: '0', time: t })) });
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.match(/^application\/json/);
    expect(res.body).to.deep.equal({});
    expect(received).to.have.length(1);
    expect(received[0]!.signals).to.deep.equal([
      {
        kind: 'route',
        service: 'marketedge-api',
        instance: 'pod-7',
        environment: 'staging',
        component: 'authentication',
        subject: 'POST /api/v1/auth/login',
        failing: true,
        labels: { [ATTR_HTTP_ROUTE]: '/api/v1/auth/login', [ATTR_HTTP_REQUEST_METHOD]: 'POST', [ATTR_VIGIL_CRITICAL]: 'true' },
        observedAt: t,
      },
    ]);
  });

  it('accepts a gzip body and a Content-Type with parameters', async () => {
    const res = await request(`${base}/v1/metrics`, {
      headers: { 'content-type': 'application/json; charset=utf-8', 'content-encoding': 'gzip' },
      body: gzipSync(JSON.stringify(exportRequest({ value: 1 }))),
    });
    expect(res.status).to.equal(200);
    expect(received[0]!.signals[0]).to.include({ kind: 'route', failing: false });
  });

  it('skips points without service.name or without a value, and says so in partialSuccess', async () => {
    const noService = await request(`${base}/v1/metrics`, { headers: JSON_TYPE, body: JSON.stringify(exportRequest({ service: '' })) });
    expect(noService.status).to.equal(200);
    expect(noService.body.partialSuccess.rejectedDataPoints).to.equal('1');
    expect(noService.body.partialSuccess.errorMessage).to.match(/service\.name/);
    const nan = exportRequest();
    const point = nan.resourceMetrics[0]!.scopeMetrics[0]!.metrics[0]!.gauge.dataPoints[0]! as Record<string, unknown>;
    delete point.asInt;
    point.asDouble = 'NaN';
    const noValue = await request(`${base}/v1/metrics`, { headers: JSON_TYPE, body: JSON.stringify(nan) });
    expect(noValue.status).to.equal(200);
    expect(noValue.body.partialSuccess).to.deep.include({ rejectedDataPoints: '1' });
    expect(received).to.have.length(0);
  });

  it('ignores a point flagged "no recorded value", and accepts an empty request', async () => {
    const flagged = exportRequest();
    (flagged.resourceMetrics[0]!.scopeMetrics[0]!.metrics[0]!.gauge.dataPoints[0]! as Record<string, unknown>).flags = 1;
    expect((await request(`${base}/v1/metrics`, { headers: JSON_TYPE, body: JSON.stringify(flagged) })).body).to.deep.equal({});
    expect((await request(`${base}/v1/metrics`, { headers: JSON_TYPE, body: '{}' })).status).to.equal(200);
    expect(received).to.have.length(0);
  });

  const good = () => JSON.stringify(exportRequest());
  const valid = good();
  const bomb = gzipSync(Buffer.concat([Buffer.from('{"resourceMetrics":[]'), Buffer.alloc(20 * 1024 * 1024, ' '), Buffer.from('}')]));
  const wrongType = exportRequest() as any;
  wrongType.resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].asDouble = 'one';

  const bad: Array<{ name: string; path?: string; method?: string; headers?: Record<string, string>; body?: Buffer | string; chunks?: Buffer[]; status: number; error: RegExp }> = [
    { name: 'GET', method: 'GET', status: 405, error: /POST only, not GET/ },
    { name: 'PUT', method: 'PUT', headers: JSON_TYPE, body: valid, status: 405, error: /POST only/ },
    { name: 'text/plain', headers: { 'content-type': 'text/plain' }, body: valid, status: 415, error: /expected Content-Type: application\/x-protobuf \(OTLP\/HTTP protobuf\) or application\/json \(OTLP\/HTTP JSON\), got "text\/plain"/ },
    { name: 'no Content-Type', body: valid, status: 415, error: /application\/json.*got none/ },
    { name: 'an unsupported Content-Encoding', headers: { ...JSON_TYPE, 'content-encoding': 'br' }, body: valid, status: 415, error: /Content-Encoding "br"/ },
    { name: 'malformed JSON', headers: JSON_TYPE, body: '{resourceMetrics: []}', status: 400, error: /^malformed JSON: .+/ },
    { name: 'a truncated body', headers: JSON_TYPE, body: valid.slice(0, valid.length / 2), status: 400, error: /^malformed JSON: .*(end|Unterminated|Expected)/i },
    { name: 'an empty body', headers: JSON_TYPE, body: '', status: 400, error: /^malformed JSON/ },
    { name: 'an array', headers: JSON_TYPE, body: '[]', status: 400, error: /expected an OTLP ExportMetricsServiceRequest in JSON: \(root\): .*expected object/ },
    { name: 'resourceMetrics not an array', headers: JSON_TYPE, body: '{"resourceMetrics":{}}', status: 400, error: /ExportMetricsServiceRequest.*resourceMetrics: .*expected array/ },
    {
      name: 'a value of the wrong type',
      headers: JSON_TYPE,
      body: JSON.stringify(wrongType),
      status: 400,
      error: /resourceMetrics\[0\]\.scopeMetrics\[0\]\.metrics\[0\]\.gauge\.dataPoints\[0\]\.asDouble: /,
    },
    { name: 'an oversized body (Content-Length)', headers: JSON_TYPE, body: Buffer.alloc(200 * 1024, ' '), status: 413, error: /larger than the limit of 65536 bytes/ },
    {
      name: 'an oversized chunked body',
      headers: JSON_TYPE,
      chunks: Array.from({ length: 20 }, () => Buffer.alloc(16 * 1024, ' ')),
      status: 413,
      error: /the request body is larger than the limit of 65536 bytes/,
    },
    { name: 'a gzip bomb', headers: { ...JSON_TYPE, 'content-encoding': 'gzip' }, body: bomb, status: 413, error: /the decompressed request body is larger than the limit/ },
    { name: 'a corrupt gzip body', headers: { ...JSON_TYPE, 'content-encoding': 'gzip' }, body: Buffer.from('not gzip at all'), status: 400, error: /gzip body could not be decompressed/ },
    {
      name: 'a truncated gzip body',
      headers: { ...JSON_TYPE, 'content-encoding': 'gzip' },
      body: gzipSync(valid).subarray(0, 40),
      status: 400,
      error: /gzip body could not be decompressed: unexpected end/,
    },
    { name: 'no token', path: '/secured/v1/metrics', headers: JSON_TYPE, body: valid, status: 401, error: /needs a bearer token/ },
    { name: 'a wrong token', path: '/secured/v1/metrics', headers: { ...JSON_TYPE, authorization: 'Bearer nope' }, body: valid, status: 401, error: /not valid/ },
    { name: 'Basic instead of Bearer', path: '/secured/v1/metrics', headers: { ...JSON_TYPE, authorization: `Basic ${TOKEN}` }, body: valid, status: 401, error: /needs a bearer token/ },
    { name: 'a token variable that is not set', path: '/unset/v1/metrics', headers: { ...JSON_TYPE, authorization: `Bearer ${TOKEN}` }, body: valid, status: 401, error: /VIGIL_NOT_SET is not set/ },
  ];

  for (const c of bad) {
    it(`${c.name} → ${c.status} with the reason, and a good request is accepted afterwards`, async () => {
      const path = c.path ?? '/v1/metrics';
      const receiver = path.startsWith('/secured') ? secured : path.startsWith('/unset') ? unset : open;
      const rejectedBefore = receiver.stats().rejected;
      const res = await request(`${base}${path}`, { method: c.method ?? 'POST', headers: c.headers ?? {}, ...(c.chunks ? { chunks: c.chunks } : { body: c.body ?? '' }) });
      expect(res.status, JSON.stringify(res.body)).to.equal(c.status);
      expect(res.headers['content-type']).to.match(/^application\/json/);
      // A google.rpc.Status in JSON: the gRPC code of the HTTP status, and the reason.
      expect(res.body).to.have.keys('code', 'message');
      expect(res.body.code).to.equal({ 400: 3, 401: 16, 405: 12, 413: 8, 415: 12 }[c.status]);
      expect(res.body.message).to.be.a('string').and.match(c.error);
      expect(receiver.stats().rejected).to.equal(rejectedBefore + 1);
      expect(received).to.have.length(0);
      if (c.status === 405) expect(res.headers.allow).to.equal('POST');
      if (c.status === 401) expect(res.headers['www-authenticate']).to.equal('Bearer');

      const again = await request(`${base}/v1/metrics`, { headers: JSON_TYPE, body: good() });
      expect(again.status).to.equal(200);
      expect(received).to.have.length(1);
    });
  }

  it('accepts the right bearer token', async () => {
    const res = await request(`${base}/secured/v1/metrics`, { headers: { ...JSON_TYPE, authorization: `Bearer ${TOKEN}` }, body: good() });
    expect(res.status).to.equal(200);
    expect(received).to.have.length(1);
  });

  it('survives a client that goes away in the middle of the body', async () => {
    const rejectedBefore = open.stats().rejected;
    await new Promise<void>((resolve) => {
      const req = http.request(`${base}/v1/metrics`, { method: 'POST', headers: { ...JSON_TYPE, 'content-length': '5000' }, agent: false });
      req.on('error', () => resolve());
      req.write('{"resourceMetrics":[');
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 100);
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(open.stats().rejected).to.equal(rejectedBefore + 1);
    expect((await request(`${base}/v1/metrics`, { headers: JSON_TYPE, body: good() })).status).to.equal(200);
  });

  it('answers 500 when the signals cannot be stored, and recovers', async () => {
    failStore = true;
    const res = await request(`${base}/v1/metrics`, { headers: JSON_TYPE, body: good() });
    expect(res.status).to.equal(500);
    expect(res.body).to.deep.equal({ code: 13, message: 'the signals could not be stored: store is full' });
    failStore = false;
    expect((await request(`${base}/v1/metrics`, { headers: JSON_TYPE, body: good() })).status).to.equal(200);
  });
});

// ── OTLP/HTTP protobuf, and senders whose batches are refused ──────────────────

/** One POST; the answer's body as bytes. */
function postRaw(url: string, headers: Record<string, string>, body: Buffer | string): Promise<{ status: number; type: string; raw: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), raw: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface Served {
  url: string;
  close(): Promise<void>;
}

/** A receiver on a node:http server of its own on 127.0.0.1; `url` is its `/v1/metrics`. */
async function serve(receiver: OtlpReceiver): Promise<Served> {
  const server = http.createServer((req, res) => receiver.handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/metrics`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('sources/otlp: OTLP/HTTP protobuf', function () {
  this.timeout(20_000);
  let served: Served;
  let url: string;
  const received: Signal[][] = [];

  before(async () => {
    served = await serve(createOtlpReceiver({ config: OtlpSource.parse({ type: 'otlp', maxBodyBytes: 64 * 1024 }), env: {}, onSignals: (s) => received.push(s) }));
    url = served.url;
  });
  after(() => served.close());
  beforeEach(() => {
    received.length = 0;
  });

  for (const compression of ['none', 'gzip'] as const) {
    it(`turns what the real OTLP/HTTP protobuf exporter sends (compression ${compression}) into signals, and answers in protobuf`, async () => {
      const answers: Array<{ status: number; type: string }> = [];
      const sent: http.IncomingHttpHeaders[] = [];
      const spy = http.createServer((req, res) => {
        sent.push(req.headers);
        // In the way, to see the receiver's answer as the exporter gets it.
        const inner = http.request(url, { method: 'POST', headers: req.headers, agent: false }, (r) => {
          answers.push({ status: r.statusCode ?? 0, type: String(r.headers['content-type']) });
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        });
        req.pipe(inner);
      });
      await new Promise<void>((resolve) => spy.listen(0, '127.0.0.1', resolve));
      const provider = new MeterProvider({
        resource: resourceFromAttributes({ 'service.name': 'proto-api', 'service.instance.id': 'pod-9' }),
        readers: [
          new PeriodicExportingMetricReader({
            exporter: new ProtoMetricExporter({ url: `http://127.0.0.1:${(spy.address() as AddressInfo).port}/v1/metrics`, compression: compression as never }),
            exportIntervalMillis: 60_000,
          }),
        ],
      });
      try {
        const meter = provider.getMeter('@vigil/sdk');
        meter.createObservableGauge(METRIC_ROUTER_IMPORT, { valueType: ValueType.INT }).addCallback((r) => {
          r.observe(0, { [ATTR_VIGIL_ROUTER]: 'admin', [ATTR_VIGIL_COMPONENT]: 'admin', [ATTR_VIGIL_OUTCOME]: 'failed', [ATTR_ERROR_TYPE]: 'ERR_MODULE_NOT_FOUND' });
        });
        meter.createObservableGauge(METRIC_ROUTE_REGISTERED).addCallback((r) => {
          r.observe(1, { [ATTR_HTTP_ROUTE]: '/api/v1/auth/login', [ATTR_HTTP_REQUEST_METHOD]: 'POST', [ATTR_VIGIL_COMPONENT]: 'authentication', [ATTR_VIGIL_CRITICAL]: true });
        });
        await provider.forceFlush();
      } finally {
        await provider.shutdown();
        spy.closeAllConnections();
        await new Promise((resolve) => spy.close(resolve));
      }
      expect(sent[0]).to.include({ 'content-type': 'application/x-protobuf' });
      expect(sent[0]!['content-encoding']).to.equal(compression === 'gzip' ? 'gzip' : undefined);
      expect(answers[0]).to.deep.equal({ status: 200, type: 'application/x-protobuf' });
      const signals = received[0]!; // the flush's export (shutdown exports again)
      expect(signals.map((s) => `${s.kind} ${s.component} ${s.subject} ${s.failing}`).sort()).to.deep.equal(['import admin admin true', 'route authentication POST /api/v1/auth/login false']);
      expect(signals.find((s) => s.kind === 'import')).to.deep.include({ service: 'proto-api', instance: 'pod-9', labels: { [ATTR_VIGIL_ROUTER]: 'admin', [ATTR_VIGIL_OUTCOME]: 'failed', [ATTR_ERROR_TYPE]: 'ERR_MODULE_NOT_FOUND' } });
      expect(signals.find((s) => s.kind === 'route')!.labels[ATTR_VIGIL_CRITICAL]).to.equal('true');
    });
  }

  it('answers a partial success in protobuf: an ExportMetricsServiceResponse with partial_success', async () => {
    const res = await postRaw(url, PROTOBUF_TYPE, toProtobuf(exportRequest({ service: '' })));
    expect(res.status).to.equal(200);
    expect(res.type).to.equal('application/x-protobuf');
    expect(responseOf(res.raw)).to.deep.equal({ partialSuccess: { rejectedDataPoints: '1', errorMessage: 'skipped data points of Vigil metrics: 1 without service.name in their resource' } });
  });

  it('answers {} as an empty ExportMetricsServiceResponse, gzip accepted, application/protobuf too', async () => {
    const res = await postRaw(url, { 'content-type': 'application/protobuf', 'content-encoding': 'gzip' }, gzipSync(toProtobuf(exportRequest({ value: '0' }))));
    expect(res.status).to.equal(200);
    expect(res.raw.length).to.equal(0);
    expect(received.flat()[0]).to.include({ kind: 'route', failing: true, service: 'marketedge-api' });
  });

  const refusals: Array<{ name: string; headers: Record<string, string>; body: Buffer; status: number; code: number; message: RegExp }> = [
    { name: 'bytes that are no protobuf', headers: PROTOBUF_TYPE, body: Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), status: 400, code: 3, message: /^malformed protobuf: not an OTLP ExportMetricsServiceRequest: index out of range/ },
    { name: 'JSON sent as protobuf', headers: PROTOBUF_TYPE, body: Buffer.from(JSON.stringify(exportRequest())), status: 400, code: 3, message: /^malformed protobuf: / },
    { name: 'a corrupt gzip body', headers: { ...PROTOBUF_TYPE, 'content-encoding': 'gzip' }, body: Buffer.from('not gzip'), status: 400, code: 3, message: /^the gzip body could not be decompressed/ },
    { name: 'a gzip bomb', headers: { ...PROTOBUF_TYPE, 'content-encoding': 'gzip' }, body: gzipSync(Buffer.alloc(10 * 1024 * 1024)), status: 413, code: 8, message: /^the decompressed request body is larger than the limit of 65536 bytes/ },
    { name: 'an unsupported Content-Encoding', headers: { ...PROTOBUF_TYPE, 'content-encoding': 'br' }, body: toProtobuf(exportRequest()), status: 415, code: 12, message: /Content-Encoding "br"/ },
  ];
  for (const c of refusals) {
    it(`${c.name} → ${c.status} with a google.rpc.Status in protobuf`, async () => {
      const res = await postRaw(url, c.headers, c.body);
      expect(res.status).to.equal(c.status);
      expect(res.type).to.equal('application/x-protobuf');
      const status = statusOf(res.raw);
      expect(status.code).to.equal(c.code);
      expect(status.message).to.match(c.message);
    });
  }

  it('an unsupported Content-Type → 415 in JSON (there is no encoding of the request to answer in)', async () => {
    const res = await postRaw(url, { 'content-type': 'application/grpc' }, toProtobuf(exportRequest()));
    expect(res.status).to.equal(415);
    expect(JSON.parse(res.raw.toString())).to.deep.equal({
      code: 12,
      message: 'expected Content-Type: application/x-protobuf (OTLP/HTTP protobuf) or application/json (OTLP/HTTP JSON), got "application/grpc"',
    });
  });
});

describe('sources/otlp: a sender whose batches keep being refused', () => {
  let served: Served;
  let url: string;
  const received: Signal[] = [];

  before(async () => {
    served = await serve(createOtlpReceiver({ config: OtlpSource.parse({ type: 'otlp', rejectedAfter: 2 }), env: {}, onSignals: (s) => received.push(...s) }));
    url = served.url;
  });
  after(() => served.close());
  beforeEach(() => {
    received.length = 0;
  });
  const rejectedOnes = () => received.filter((s) => s.kind === 'rejected').map((s) => ({ service: s.service, failing: s.failing, labels: s.labels }));

  it('garbage from an address: nothing after one refusal, a failing signal from the second (every further one), cleared by its next accepted batch', async () => {
    await postRaw(url, PROTOBUF_TYPE, Buffer.from([0xff]));
    expect(rejectedOnes()).to.deep.equal([]);
    await postRaw(url, PROTOBUF_TYPE, Buffer.from([0xff]));
    await postRaw(url, JSON_TYPE, '{not json');
    expect(rejectedOnes()).to.deep.equal([
      { service: 'unknown sender 127.0.0.1', failing: true, labels: { 'http.response.status_code': '400', 'error.type': 'undecodable_body', 'client.address': '127.0.0.1' } },
      { service: 'unknown sender 127.0.0.1', failing: true, labels: { 'http.response.status_code': '400', 'error.type': 'undecodable_body', 'client.address': '127.0.0.1' } },
    ]);
    received.length = 0;
    expect((await postRaw(url, PROTOBUF_TYPE, toProtobuf(exportRequest()))).status).to.equal(200);
    expect(rejectedOnes()).to.deep.equal([{ service: 'unknown sender 127.0.0.1', failing: false, labels: { 'client.address': '127.0.0.1' } }]);
  });

  it('a body read far enough to name its service counts against that service (bounded), and its accepted batch clears it', async () => {
    const wrong = exportRequest({ service: `shop-api\n${'x'.repeat(500)}` }) as any;
    wrong.resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].asDouble = 'one';
    await postRaw(url, JSON_TYPE, JSON.stringify(wrong));
    await postRaw(url, PROTOBUF_TYPE, Buffer.from(JSON.stringify(wrong)).subarray(0, 0)); // empty protobuf: accepted, clears nothing of shop-api
    await postRaw(url, JSON_TYPE, JSON.stringify(wrong));
    const [first] = rejectedOnes();
    expect(first).to.deep.include({ failing: true, labels: { 'http.response.status_code': '400', 'error.type': 'invalid_request', 'client.address': '127.0.0.1' } });
    expect(first!.service).to.equal(`shop-api ${'x'.repeat(119)}`);
    received.length = 0;
    await postRaw(url, JSON_TYPE, JSON.stringify(exportRequest({ service: first!.service })));
    expect(rejectedOnes()).to.deep.equal([{ service: first!.service, failing: false, labels: { 'client.address': '127.0.0.1' } }]);
  });
});
