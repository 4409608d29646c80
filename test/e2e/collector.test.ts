/**
 * The path a user deploys, end to end through the real OpenTelemetry Collector
 * (collector/builder-config.yaml, running the repository's collector-config.yaml unchanged but for
 * its address variables):
 *
 *   example API ──OTLP/HTTP protobuf──▶ Collector ─┬─ prometheus_remote_write ─▶ Prometheus (committed rules) ─┐
 *                                                  └─ otlp_http (JSON) ─▶ evaluator (otlp source) ──────────────┴─▶ Alertmanager ─▶ webhook
 *
 * and its faults, measured (the times are printed; docs/stack.md quotes them):
 *   - a startup fault pages through both branches;
 *   - an app SIGKILLed: the evaluator's "telemetry silent" page, after silentAfter;
 *   - the Collector down when the app starts: the fault pages once it is up, and the app never notices;
 *   - the Collector restarted mid-incident: no resolve, no second page, the gap in the series;
 *   - Prometheus down for 60 s: the Collector's queue and retries hold what was sent meanwhile, so the
 *     series has no hole once Prometheus is back; a fault that starts during the outage pages through
 *     the evaluator at once and through the Prometheus rules after the return (about a minute after:
 *     the rule fires as soon as the queued samples land, before Prometheus has found Alertmanager,
 *     and its notifier resends only after --rules.alert.resend-delay, 1 min; printed, not asserted).
 * Each case runs the example under its own service name, so their alerts never mix.
 */
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import { startExample, type ExampleApp } from '../helpers/example.js';
import { exampleEvaluatorConfig, startEvaluator, type RunningEvaluator } from '../helpers/evaluator.js';
import {
  collectorPorts,
  startAlertmanager,
  startCollector,
  startPrometheus,
  startWebhookReceiver,
  webhookAlertmanagerConfig,
  type Alertmanager,
  type Collector,
  type CollectorPorts,
  type Prometheus,
  type WebhookReceiver,
} from '../helpers/rig.js';
import { localPrometheusOptions } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

interface AmAlert { status: string; labels: Record<string, string>; annotations: Record<string, string> }

const SILENT_AFTER_MS = 6_000;
const EXPORT_INTERVAL_MS = 1_000;
const PROM_OUTAGE_MS = 60_000;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

describe('e2e: through the real OpenTelemetry Collector — SDK → Collector → Prometheus rules and the evaluator → Alertmanager → webhook', function () {
  this.timeout(300_000);

  let hook: WebhookReceiver;
  let am: Alertmanager;
  let prom: Prometheus;
  let evaluator: RunningEvaluator;
  let collector: Collector;
  const collectors: Collector[] = [];
  const apps: ExampleApp[] = [];

  before(async () => {
    hook = await startWebhookReceiver();
    am = await startAlertmanager({ config: webhookAlertmanagerConfig(`${hook.url}/alerts`) });
    // The committed rules, evaluated every second (the committed 5 s would only add to every wait).
    prom = await startPrometheus(localPrometheusOptions({ alertmanagerUrl: am.url, evaluationInterval: '1s' }));
    evaluator = await startEvaluator(
      await exampleEvaluatorConfig({
        source: { type: 'otlp' },
        silentAfter: `${SILENT_AFTER_MS / 1000}s`,
        staleAfter: '4s',
        notifiers: { alertmanager: { type: 'alertmanager', urls: [am.url], resend: '2s', retry: { initial: '200ms', max: '1s' } } },
      }),
    );
    collector = await startCollector({ remoteWriteUrl: prom.remoteWriteUrl, evaluatorUrl: evaluator.otlpMetricsUrl });
    collectors.push(collector);
  });

  after(async () => {
    for (const a of apps) await a.stop();
    for (const c of collectors) await c.stop();
    await evaluator?.stop();
    await prom?.stop();
    await am?.stop();
    await hook?.stop();
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    console.log(`--- received ---\n${hook.received.map((r) => JSON.stringify(r.body).slice(0, 600)).join('\n')}`);
    console.log(`--- alerts in Alertmanager ---\n${JSON.stringify(await am.alerts().catch((e) => String(e))).slice(0, 3000)}`);
    for (const c of collectors) console.log(`--- collector ---\n${c.logs(40)}`);
    console.log(`--- prometheus ---\n${prom.logs(30)}`);
    for (const a of apps) console.log(`--- app ---\n${a.output().slice(-2000)}`);
  });

  /** The example API under its own service name, exporting OTLP/HTTP protobuf to `otlpMetricsUrl`. */
  async function app(service: string, otlpMetricsUrl: string, env: NodeJS.ProcessEnv = {}): Promise<ExampleApp> {
    const a = await startExample({
      OTEL_SERVICE_NAME: service,
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: otlpMetricsUrl,
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf',
      OTEL_METRIC_EXPORT_INTERVAL: String(EXPORT_INTERVAL_MS),
      OTEL_TRACES_EXPORTER: 'none',
      ...env,
    });
    apps.push(a);
    return a;
  }

  const alerts = (status = 'firing'): AmAlert[] =>
    hook.received.flatMap((r) => ((r.body?.alerts ?? []) as AmAlert[]).filter((a) => a.status === status));
  const matches = (a: AmAlert, want: Record<string, string>) => Object.entries(want).every(([k, v]) => a.labels[k] === v);
  /** Waits for a firing alert with these labels at the webhook; resolves with `performance.now()` of its arrival. */
  async function paged(want: Record<string, string>, timeoutMs = 60_000): Promise<number> {
    await waitFor(() => alerts().some((a) => matches(a, want)), { timeoutMs, intervalMs: 50, what: `a page ${JSON.stringify(want)} at the webhook` });
    return performance.now();
  }
  const ruleAlert = (service: string) => ({ alertname: 'VigilRouterImportFailed', service, component: 'user_management' });
  const impactAlert = (service: string) => ({ alertname: 'VigilBusinessImpact', service, component: 'user_management' });

  /** The times (epoch ms) of the samples of `selector` (one series) Prometheus holds over the last `window`. */
  async function sampleTimes(selector: string, window: string): Promise<number[]> {
    const res = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(`${selector}[${window}]`)}`);
    const body = (await res.json()) as { status: string; data: { resultType: string; result: Array<{ metric: object; values: Array<[number, string]> }> } };
    expect(body.status).to.equal('success');
    expect(body.data.resultType).to.equal('matrix');
    expect(body.data.result.length, `${selector} selects one series: ${JSON.stringify(body.data.result.map((r) => r.metric))}`).to.be.at.most(1);
    return (body.data.result[0]?.values ?? []).map(([t]) => t * 1000);
  }
  /** The longest time between two consecutive samples within [from, to] (epoch ms), and how many there are. */
  function largestGap(times: number[], from: number, to: number): { gapMs: number; count: number } {
    const inside = times.filter((t) => t >= from && t <= to);
    let gapMs = 0;
    for (let i = 1; i < inside.length; i++) gapMs = Math.max(gapMs, inside[i]! - inside[i - 1]!);
    return { gapMs, count: inside.length };
  }

  it('a startup fault pages through both branches: the Prometheus rules and the evaluator', async () => {
    const service = 'otelcol-startup';
    const a = await app(service, collector.otlpMetricsUrl, { VIGIL_DEMO_BREAK: 'user_management' });
    const [ruleAt, impactAt] = await Promise.all([paged(ruleAlert(service)), paged(impactAlert(service))]);
    console.log(
      `      process start → page: ${seconds(impactAt - a.spawnedAt)} through Collector → evaluator → Alertmanager, ` +
        `${seconds(ruleAt - a.spawnedAt)} through Collector → Prometheus rules → Alertmanager`,
    );
    const impact = alerts().find((x) => matches(x, impactAlert(service)))!;
    expect(impact.labels).to.include({ severity: 'high', priority: 'P1', rule: 'user-management' });
    expect(impact.annotations.revenue_at_risk).to.equal('£925,000');
    const rule = alerts().find((x) => matches(x, ruleAlert(service)))!;
    expect(rule.labels).to.include({ source: 'prometheus', severity: 'high' });
    // The resource attributes became labels on the way (collector-config.yaml: resource_constant_labels).
    const failed = await prom.query(`vigil_router_import{service_name="${service}", vigil_component="user_management"} == 0`);
    expect(failed, JSON.stringify(failed)).to.have.length(1);
    const [series] = failed;
    expect(series?.metric).to.include({ service_name: service });
    expect(series?.metric).to.have.property('service_instance_id').that.is.not.empty;
    expect(series?.metric).to.have.property('service_version').that.is.not.empty;
  });

  it('an app SIGKILLed: "telemetry silent" pages through the Collector once silentAfter has passed', async () => {
    const service = 'otelcol-killed';
    const a = await app(service, collector.otlpMetricsUrl);
    await a.serving();
    await waitFor(() => (evaluator.evaluator.status().services as Array<{ service: string }>).some((s) => s.service === service), {
      timeoutMs: 20_000,
      what: `${service} seen by the evaluator through the Collector`,
    });
    await a.stop(); // SIGKILL: no last export, no goodbye
    const killedAt = performance.now();
    const want = { rule: 'telemetry-silent', service, severity: 'critical' };
    const pagedAt = await paged(want, SILENT_AFTER_MS + 30_000);
    console.log(`      SIGKILL → "telemetry silent" page through the Collector: ${seconds(pagedAt - killedAt)} (silentAfter ${seconds(SILENT_AFTER_MS)}, export every ${seconds(EXPORT_INTERVAL_MS)})`);
    // Not before silentAfter: the last export left at most one interval before the kill.
    expect(pagedAt - killedAt).to.be.at.least(SILENT_AFTER_MS - EXPORT_INTERVAL_MS);
    expect(alerts().find((x) => matches(x, want))!.annotations.summary).to.equal(`${service} has sent no telemetry: it may be down`);
  });

  it('the Collector down when the app starts: the app serves and never notices, and its fault pages once the Collector is up', async () => {
    const service = 'otelcol-late';
    const ports: CollectorPorts = await collectorPorts();
    const a = await app(service, `http://127.0.0.1:${ports.otlpHttp}/v1/metrics`, { VIGIL_DEMO_BREAK: 'user_management' });
    await a.serving();
    // Several exports fail meanwhile (connection refused).
    await sleep(5 * EXPORT_INTERVAL_MS);
    expect((await fetch(`${a.url}/health`)).status).to.equal(200);
    expect(a.proc.exitCode).to.equal(null);
    expect(alerts().filter((x) => x.labels.service === service)).to.deep.equal([]);

    const late = await startCollector({ remoteWriteUrl: prom.remoteWriteUrl, evaluatorUrl: evaluator.otlpMetricsUrl, ports });
    collectors.push(late);
    const upAt = performance.now();
    const [ruleAt, impactAt] = await Promise.all([paged(ruleAlert(service)), paged(impactAlert(service))]);
    console.log(
      `      Collector up ${seconds(upAt - a.spawnedAt)} after the app → page ${seconds(impactAt - upAt)} later through the evaluator, ` +
        `${seconds(ruleAt - upAt)} through the Prometheus rules`,
    );
    await late.stop();
  });

  it('the Collector restarted mid-incident: the alert stays firing, no resolve and no second page; the gap in the series is reported', async () => {
    const service = 'otelcol-startup'; // the incident of the first case, still going on
    const want = impactAlert(service);
    await paged(want);
    const firingBefore = alerts().filter((x) => matches(x, want)).length;
    const before = Date.now();

    const ports = collector.ports;
    await collector.stop();
    const downAt = Date.now();
    collector = await startCollector({ remoteWriteUrl: prom.remoteWriteUrl, evaluatorUrl: evaluator.otlpMetricsUrl, ports });
    collectors.push(collector);
    const upAt = Date.now();
    // Data again in Prometheus from the restarted Collector, then longer than silentAfter.
    const selector = `vigil_startup_success{service_name="${service}"}`;
    await waitFor(async () => (await sampleTimes(selector, '1m')).some((t) => t > upAt), { timeoutMs: 20_000, what: 'samples after the restart' });
    await sleep(SILENT_AFTER_MS + 2_000);

    const { gapMs, count } = largestGap(await sampleTimes(selector, '2m'), before, Date.now());
    console.log(
      `      Collector down ${seconds(upAt - downAt)} (SIGTERM, start again): largest gap in ${service}'s series ${seconds(gapMs)} ` +
        `(${count} samples over ${seconds(Date.now() - before)}, one export every ${seconds(EXPORT_INTERVAL_MS)})`,
    );
    expect(count).to.be.greaterThan(0);
    expect(alerts('resolved').filter((x) => x.labels.service === service), 'nothing resolved by the restart').to.deep.equal([]);
    expect(alerts().filter((x) => matches(x, want)).length, 'no second page').to.equal(firingBefore);
    expect(alerts().filter((x) => x.labels.service === service && x.labels.rule === 'telemetry-silent'), 'no silence page').to.deep.equal([]);
  });

  it('Prometheus down for 60 s: the queue holds every sample sent meanwhile; a fault during the outage pages through the evaluator at once and the rules after', async () => {
    const steady = 'otelcol-startup'; // exporting all along
    const selector = `vigil_startup_success{service_name="${steady}"}`;

    await prom.kill();
    const downAt = Date.now();
    const downPerf = performance.now();
    // A new fault while Prometheus is away.
    const service = 'otelcol-during-outage';
    const a = await app(service, collector.otlpMetricsUrl, { VIGIL_DEMO_BREAK: 'user_management' });
    const impactAt = await paged(impactAlert(service), 30_000);
    await sleep(Math.max(0, PROM_OUTAGE_MS - (performance.now() - downPerf)));
    // What the Collector holds for Prometheus at the end of the outage (batches in its queue).
    const queued = await collector.selfMetric('otelcol_exporter_queue_size', { exporter: 'prometheus_remote_write' });

    await prom.restart();
    const upAt = Date.now();
    const upPerf = performance.now();
    // Everything queued has been written once a sample sent after the return is in.
    const caughtUp = waitFor(async () => (await sampleTimes(selector, '3m')).some((t) => t > upAt) && performance.now(), {
      timeoutMs: 120_000,
      intervalMs: 250,
      what: 'samples sent after the return',
    });
    // Where the time to the rule page goes: the sample in Prometheus, the rule firing, Alertmanager.
    const inPrometheus = waitFor(async () => (await prom.query(`vigil_router_import{service_name="${service}"}`)).length > 0 && performance.now(), { timeoutMs: 120_000, intervalMs: 250, what: `${service} in Prometheus` });
    const ruleFiring = waitFor(async () => (await prom.query(`ALERTS{alertname="VigilRouterImportFailed", service_name="${service}", alertstate="firing"}`)).length > 0 && performance.now(), { timeoutMs: 120_000, intervalMs: 250, what: 'the rule firing in Prometheus' });
    const inAlertmanager = waitFor(async () => (await am.alerts()).some((x: AmAlert) => matches(x, ruleAlert(service))) && performance.now(), { timeoutMs: 120_000, intervalMs: 250, what: 'the rule alert in Alertmanager' });
    const ruleAt = await paged(ruleAlert(service), 120_000);
    const caughtUpAt = await caughtUp;
    console.log(
      `      after Prometheus was back: ${service} queryable ${seconds((await inPrometheus) - upPerf)}, rule firing ${seconds((await ruleFiring) - upPerf)}, ` +
        `in Alertmanager ${seconds((await inAlertmanager) - upPerf)}, at the webhook ${seconds(ruleAt - upPerf)}`,
    );

    const { gapMs, count } = largestGap(await sampleTimes(selector, '3m'), downAt - 5_000, upAt);
    console.log(
      `      Prometheus down ${seconds(upAt - downAt)}: ${count} samples of ${selector} from the outage in Prometheus afterwards, largest gap ${seconds(gapMs)} ` +
        `(one export every ${seconds(EXPORT_INTERVAL_MS)}); ${queued} batches queued in the Collector at the return, all written ${seconds(caughtUpAt - upPerf)} after it`,
    );
    console.log(
      `      fault during the outage → page: ${seconds(impactAt - a.spawnedAt)} through the evaluator; ` +
        `through the Prometheus rules ${seconds(ruleAt - upPerf)} after Prometheus was back (${seconds(ruleAt - a.spawnedAt)} after the process start)`,
    );
    // Nothing the queue should hold was lost: a sample for (about) every export of the outage, no hole.
    expect(count).to.be.at.least(Math.floor((upAt - downAt) / EXPORT_INTERVAL_MS / 2));
    expect(gapMs).to.be.below(10 * EXPORT_INTERVAL_MS);
    expect(queued, 'the Collector queued for Prometheus while it was down').to.be.greaterThan(0);
  });
});
