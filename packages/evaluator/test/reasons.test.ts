/**
 * The reason travels through the evaluator: `vigil.check.reason` data points
 * (OTLP receiver and Prometheus source) become the `reason` of the failing
 * signal they explain, bounded and stripped of control characters (untrusted);
 * alerts, their Alertmanager `description` and `affected` annotations, the
 * webhook payload, the status API and the state file carry it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { pino } from 'pino';
import {
  ATTR_ERROR_TYPE,
  ATTR_VIGIL_CHECK,
  ATTR_VIGIL_COMPONENT,
  ATTR_VIGIL_LEVEL,
  ATTR_VIGIL_OUTCOME,
  ATTR_VIGIL_REASON,
  ATTR_VIGIL_REASON_METRIC,
  ATTR_VIGIL_ROUTER,
  METRIC_CHECK_REASON,
  METRIC_HEALTH_LEVEL,
  METRIC_ROUTER_IMPORT,
  REASON_MAX_LENGTH,
} from '@vigil/sdk/semconv';
import { EvaluatorConfig, OtlpSource, PrometheusSource, type EvaluatorConfigInput } from '../src/config/schema.js';
import { Evaluator } from '../src/evaluator.js';
import { toNotification, policyFor, type AlertState } from '../src/policies/engine.js';
import type { Signal } from '../src/signals/types.js';
import { attachReasons, toReason } from '../src/sources/mapping.js';
import { createOtlpReceiver } from '../src/sources/otlp.js';
import { createPrometheusSource } from '../src/sources/prometheus.js';
import { parseState, serializeState } from '../src/state/persist.js';

const resource = { service: 'api', instance: 'i-1' };
const T = 1_700_000_000_000;
const IMPORT_ERROR = "Cannot find module '/app/src/routes/users.js' imported from /app/src/app.js";
const routerAttrs = { [ATTR_VIGIL_ROUTER]: 'users', [ATTR_VIGIL_COMPONENT]: 'user_management', [ATTR_VIGIL_OUTCOME]: 'failed', [ATTR_ERROR_TYPE]: 'ERR_MODULE_NOT_FOUND' };
const signal = (over: Partial<Signal> = {}): Signal => ({ kind: 'import', service: 'api', instance: 'i-1', component: 'user_management', subject: 'users', failing: true, labels: {}, observedAt: T, ...over });

describe('reasons: mapping (untrusted input)', () => {
  it('a reason names the signal of its metric and attributes, bounded, one line, no control characters', () => {
    const r = toReason({ ...routerAttrs, [ATTR_VIGIL_REASON_METRIC]: METRIC_ROUTER_IMPORT, [ATTR_VIGIL_REASON]: `\u001b[2J${'x'.repeat(5000)}\nsecond line` }, resource, T)!;
    expect(r.key).to.equal('import|user_management|users');
    expect([...r.reason]).to.have.length(REASON_MAX_LENGTH);
    expect(r.reason).to.match(/^\[2Jx+…$/);
    expect(r.reason).to.not.match(/[\u0000-\u001f\u007f]/);
  });

  it('a reason with no metric, an unknown metric, or nothing to say explains nothing', () => {
    expect(toReason({ ...routerAttrs, [ATTR_VIGIL_REASON]: 'x' }, resource, T)).to.equal(undefined);
    expect(toReason({ ...routerAttrs, [ATTR_VIGIL_REASON_METRIC]: 'vigil.something.else', [ATTR_VIGIL_REASON]: 'x' }, resource, T)).to.equal(undefined);
    expect(toReason({ ...routerAttrs, [ATTR_VIGIL_REASON_METRIC]: METRIC_ROUTER_IMPORT, [ATTR_VIGIL_REASON]: ' \n\t ' }, resource, T)).to.equal(undefined);
  });

  it('goes to the failing signal of the same instance only, the newest reason winning', () => {
    const reason = (text: string, at: number, instance = 'i-1') => toReason({ ...routerAttrs, [ATTR_VIGIL_REASON_METRIC]: METRIC_ROUTER_IMPORT, [ATTR_VIGIL_REASON]: text }, { service: 'api', instance }, at)!;
    const failing = signal();
    const passing = signal({ subject: 'users', instance: 'i-2', failing: false });
    const other = signal({ instance: 'i-3' });
    attachReasons([failing, passing, other], [reason('older', T - 10_000), reason('newest', T), reason('stale reason of i-2', T, 'i-2')]);
    expect(failing.reason).to.equal('newest');
    expect(passing).to.not.have.property('reason');
    expect(other).to.not.have.property('reason');
  });
});

describe('reasons: the OTLP receiver', function () {
  this.timeout(20_000);
  it('what the real OTLP exporter sends: the failing signal gets its reason, cleaned', async () => {
    const received: Signal[] = [];
    const receiver = createOtlpReceiver({ config: OtlpSource.parse({ type: 'otlp' }), env: {}, onSignals: (s) => received.push(...s) });
    const server = http.createServer(receiver.handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const provider = new MeterProvider({
      resource: resourceFromAttributes({ 'service.name': 'api', 'service.instance.id': 'i-1' }),
      readers: [new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/metrics` }), exportIntervalMillis: 60_000 })],
    });
    try {
      const meter = provider.getMeter('@vigil/sdk');
      const flow = { [ATTR_VIGIL_CHECK]: 'flow:user_management/onboard', [ATTR_VIGIL_LEVEL]: 3, [ATTR_VIGIL_COMPONENT]: 'user_management' };
      meter.createObservableGauge(METRIC_ROUTER_IMPORT).addCallback((r) => r.observe(0, routerAttrs));
      meter.createObservableGauge(METRIC_HEALTH_LEVEL).addCallback((r) => r.observe(1, flow));
      meter.createObservableGauge(METRIC_CHECK_REASON).addCallback((r) => {
        r.observe(1, { ...routerAttrs, [ATTR_VIGIL_REASON_METRIC]: METRIC_ROUTER_IMPORT, [ATTR_VIGIL_REASON]: `${IMPORT_ERROR}\u202e\u0007\nRequire stack:\n- /app/src/app.js` });
        // A reason for a series that passes: nothing to explain.
        r.observe(1, { ...flow, [ATTR_VIGIL_REASON_METRIC]: METRIC_HEALTH_LEVEL, [ATTR_VIGIL_REASON]: 'answered 503, expected 2xx' });
      });
      await provider.forceFlush();
      const imp = received.find((s) => s.kind === 'import')!;
      expect(imp.reason).to.equal(IMPORT_ERROR);
      expect(received.find((s) => s.kind === 'flow')).to.not.have.property('reason');
      // The reason is no signal of its own.
      expect(received.map((s) => s.kind).sort()).to.deep.equal(['flow', 'import']);
    } finally {
      await provider.shutdown();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('reasons: the Prometheus source', function () {
  this.timeout(20_000);
  it('reads vigil_check_reason with the signals: the newest reason series of a failing series wins', async () => {
    const labels = { service_name: 'api', service_instance_id: 'i-1', vigil_router: 'users', vigil_component: 'user_management', vigil_outcome: 'failed', error_type: 'ERR_MODULE_NOT_FOUND' };
    const reasonLabels = (reason: string) => ({ ...labels, vigil_reason_metric: METRIC_ROUTER_IMPORT, vigil_reason: reason });
    const answers: Record<string, object[]> = {
      vigil_router_import: [{ metric: { __name__: 'vigil_router_import', ...labels }, value: [1_700_000_100, '0'] }],
      'timestamp(vigil_router_import)': [{ metric: labels, value: [1_700_000_100, '1700000090'] }],
      // A reason of an earlier failure lingers (no staleness markers): older sample, not the one to show.
      vigil_check_reason: [
        { metric: { __name__: 'vigil_check_reason', ...reasonLabels('an earlier reason') }, value: [1_700_000_100, '1'] },
        { metric: { __name__: 'vigil_check_reason', ...reasonLabels(`${IMPORT_ERROR}\u0000`) }, value: [1_700_000_100, '1'] },
      ],
      'timestamp(vigil_check_reason)': [
        { metric: reasonLabels('an earlier reason'), value: [1_700_000_100, '1699999900'] },
        { metric: reasonLabels(`${IMPORT_ERROR}\u0000`), value: [1_700_000_100, '1700000090'] },
      ],
    };
    const server = http.createServer((req, res) => {
      const query = new URL(req.url ?? '/', 'http://x').searchParams.get('query') ?? '';
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: answers[query] ?? [] } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const batches: Array<{ signals: Signal[]; receivedAt: number }> = [];
      const source = createPrometheusSource({
        config: PrometheusSource.parse({ type: 'prometheus', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }),
        onSignals: (signals, receivedAt) => batches.push({ signals, receivedAt }),
      });
      await source.pollOnce();
      expect(batches).to.have.length(1);
      expect(batches[0]!.signals.map((s) => [s.kind, s.subject, s.reason])).to.deep.equal([['import', 'users', IMPORT_ERROR]]);
      // A reason series is no heartbeat: the instance was last seen at its signal's sample.
      expect(batches[0]!.receivedAt).to.equal(1_700_000_090_000);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

const config: EvaluatorConfigInput = {
  server: { host: '127.0.0.1', port: 0 },
  source: { type: 'otlp' },
  rules: [{ name: 'users', match: { component: 'user_management' }, impact: { level: 'high', priority: 'P1' } }],
  policies: { critical: { channels: ['pager'] }, high: { channels: ['chat'] }, medium: { channels: ['chat'] }, low: { channels: ['mail'] } },
  notifiers: { console: { type: 'console' } },
};

describe('reasons: alerts, notifications, status, state file', function () {
  this.timeout(20_000);
  it('the description and affected annotations say why, once per failing fact', () => {
    const cfg = EvaluatorConfig.parse(config);
    const signals = [
      signal({ reason: IMPORT_ERROR }),
      signal({ instance: 'i-2', reason: IMPORT_ERROR }),
      signal({ kind: 'route', subject: 'GET /api/v1/users', reason: `router failed to import: ${IMPORT_ERROR}` }),
      signal({ kind: 'probe', subject: 'GET /api/v1/users/:id' }),
    ];
    const alert: AlertState = { key: 'api|user_management', service: 'api', component: 'user_management', assessment: { rule: 'users', impact: cfg.rules[0]!.impact, signals }, state: 'firing', since: T, firedAt: T, escalationLevel: 0 };
    const n = toNotification(alert, policyFor(cfg, alert.assessment), 'firing', T);
    expect(n.annotations.description).to.equal(
      `Impact high (P1) by rule users. Failing: import users: ${IMPORT_ERROR}; route GET /api/v1/users: router failed to import: ${IMPORT_ERROR}; probe GET /api/v1/users/:id.`,
    );
    expect(n.annotations.affected!.split('\n')).to.deep.equal([`import users: ${IMPORT_ERROR}`, `route GET /api/v1/users: router failed to import: ${IMPORT_ERROR}`, 'probe GET /api/v1/users/:id']);
    // A reason is text for people: never a label (labels are the alert's identity).
    expect(Object.values(n.labels).join(' ')).to.not.contain('Cannot find module');
  });

  it('the webhook payload and the status API carry the reason', async () => {
    const payloads: Array<{ alert: { annotations: Record<string, string> } }> = [];
    const hook = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => {
        payloads.push(JSON.parse(Buffer.concat(chunks).toString()));
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    const ev = new Evaluator(EvaluatorConfig.parse({ ...config, notifiers: { hook: { type: 'webhook', url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook` } } }), { logger: pino({ level: 'silent' }) });
    const { url } = await ev.start();
    try {
      ev.store.ingest([signal({ observedAt: Date.now(), reason: IMPORT_ERROR })], Date.now());
      ev.evaluate();
      const status = (await (await fetch(`${url}/api/v1/status`)).json()) as ReturnType<Evaluator['status']>;
      expect(status.alerts[0]!.signals).to.deep.equal([{ kind: 'import', subject: 'users', reason: IMPORT_ERROR, labels: {} }]);
      expect((status.services[0] as unknown as { components: Record<string, Signal[]> }).components.user_management![0]!.reason).to.equal(IMPORT_ERROR);
      await Promise.all(ev.notifiers.map((n) => n.flush(5000)));
      expect(payloads).to.have.length(1);
      expect(payloads[0]!.alert.annotations.description).to.contain(`import users: ${IMPORT_ERROR}`);
    } finally {
      await ev.stop();
      hook.closeAllConnections();
      await new Promise((resolve) => hook.close(resolve));
    }
  });

  it('the state file keeps a signal\'s reason, and bounds it again on load', () => {
    const long = `${'y'.repeat(1000)}\u0007`;
    const alert = { key: 'api|user_management', service: 'api', component: 'user_management', assessment: { rule: 'users', impact: { level: 'high', priority: 'P1' }, signals: [signal({ reason: long })] }, state: 'firing', since: T, firedAt: T, escalationLevel: 0 };
    const back = parseState(serializeState({ alerts: [alert as never], signals: { services: [{ service: 'api', instances: [{ instance: 'i-1', lastSeen: T, signals: [signal({ reason: long })] }] }] }, outbox: {}, history: [] }, T));
    expect(back.ok, JSON.stringify(back)).to.equal(true);
    if (!back.ok) return;
    const reason = back.state.alerts[0]!.assessment.signals[0]!.reason!;
    expect([...reason]).to.have.length(REASON_MAX_LENGTH);
    expect(reason).to.match(/^y+…$/);
    expect(back.state.signals.services[0]!.instances[0]!.signals[0]!.reason).to.equal(reason);
  });
});
