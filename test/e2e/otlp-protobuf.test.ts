/**
 * OTLP/HTTP protobuf into the embedded evaluator, end to end:
 *
 * - the example API, its SDK exporting with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
 *   (the exporters' own default), straight to the evaluator's receiver: its
 *   broken router is paged at a webhook;
 * - a sender of garbage: after `rejectedAfter` refused batches a "telemetry
 *   rejected from <sender>" page at the webhook, resolved once that sender's
 *   batches are accepted again.
 */
import http from 'node:http';
import { expect } from 'chai';
import { startExample, type ExampleApp } from '../helpers/example.js';
import { exampleEvaluatorConfig, startEvaluator, type RunningEvaluator } from '../helpers/evaluator.js';
import { PROTOBUF_TYPE, toProtobuf } from '../helpers/otlp.js';
import { startWebhookReceiver, type WebhookReceiver } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

interface HookPayload {
  status: string;
  alert: { labels: Record<string, string>; annotations: Record<string, string> };
}

function post(url: string, headers: Record<string, string>, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('e2e: OTLP/HTTP protobuf into the embedded evaluator', function () {
  this.timeout(90_000);
  let hook: WebhookReceiver;
  const evaluators: RunningEvaluator[] = [];
  const apps: ExampleApp[] = [];

  before(async () => {
    hook = await startWebhookReceiver();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.stop()));
    await Promise.all(evaluators.splice(0).map((e) => e.stop()));
    hook.clear();
  });
  after(async () => {
    await hook?.stop();
  });

  const pages = (status: string, pred: (labels: Record<string, string>) => boolean) =>
    hook.received.map((r) => r.body as HookPayload).filter((p) => p?.status === status && pred(p.alert.labels));

  async function evaluator(overrides: Parameters<typeof exampleEvaluatorConfig>[0] = {}) {
    // The example's rules include telemetry-rejected (critical, P0): a refused sender pages at once.
    const e = await startEvaluator(
      await exampleEvaluatorConfig({
        source: { type: 'otlp', rejectedAfter: 3 },
        silentAfter: '10s',
        staleAfter: '5s',
        notifiers: { hook: { type: 'webhook', url: `${hook.url}/direct`, retry: { initial: '200ms', max: '1s' } } },
        ...overrides,
      }),
    );
    evaluators.push(e);
    return e;
  }

  it('the example exporting http/protobuf: its broken router is paged at the webhook', async () => {
    const e = await evaluator();
    const app = await startExample({
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: e.otlpMetricsUrl,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_METRIC_EXPORT_INTERVAL: '1000',
      OTEL_TRACES_EXPORTER: 'none',
      VIGIL_DEMO_BREAK: 'user_management',
    });
    apps.push(app);
    const [page] = await waitFor(() => {
      const p = pages('firing', (l) => l.component === 'user_management');
      return p.length ? p : undefined;
    }, { timeoutMs: 30_000, intervalMs: 50, what: 'the user_management page at the webhook' });
    console.log(`      router failing at startup, exported as protobuf → page at the webhook: ${((performance.now() - app.spawnedAt) / 1000).toFixed(2)} s`);
    expect(page!.alert.labels).to.include({ service: 'marketedge-api', component: 'user_management', severity: 'high', rule: 'user-management' });
    expect(page!.alert.annotations.affected).to.contain('import user_management');
    const source = e.evaluator.status().source as { requests: number; rejected: number };
    expect(source.rejected, 'no batch of the app was refused').to.equal(0);
    expect(pages('firing', (l) => l.rule === 'telemetry-rejected')).to.deep.equal([]);
  });

  it('a sender of garbage: "telemetry rejected from" page after 3 refused batches; resolved when its batches are accepted', async () => {
    const e = await evaluator();
    const garbage = Buffer.from('this is not an ExportMetricsServiceRequest');
    const started = performance.now();
    for (let i = 0; i < 3; i++) expect(await post(e.otlpMetricsUrl, PROTOBUF_TYPE, garbage)).to.equal(400);
    const [page] = await waitFor(() => {
      const p = pages('firing', (l) => l.rule === 'telemetry-rejected');
      return p.length ? p : undefined;
    }, { timeoutMs: 10_000, intervalMs: 50, what: 'the rejected page' });
    console.log(`      3 refused batches → "rejected" page at the webhook: ${((performance.now() - started) / 1000).toFixed(2)} s`);
    expect(page!.alert.labels).to.include({ service: 'unknown sender 127.0.0.1', component: '(service)', severity: 'critical', priority: 'P0' });
    expect(page!.alert.annotations.summary).to.equal('telemetry rejected from unknown sender 127.0.0.1: the evaluator refuses its batches');
    expect(page!.alert.annotations.affected).to.equal('rejected telemetry');
    // Still refused: the alert holds, no second page.
    expect(await post(e.otlpMetricsUrl, PROTOBUF_TYPE, garbage)).to.equal(400);
    await new Promise((r) => setTimeout(r, 1500));
    expect(pages('firing', (l) => l.rule === 'telemetry-rejected')).to.have.length(1);
    expect(pages('resolved', (l) => l.rule === 'telemetry-rejected')).to.deep.equal([]);

    // The sender fixed: a valid protobuf batch is accepted and the alert resolves.
    const valid = toProtobuf({ resourceMetrics: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'fixed-api' } }] }, scopeMetrics: [] }] });
    expect(await post(e.otlpMetricsUrl, PROTOBUF_TYPE, valid)).to.equal(200);
    await waitFor(() => pages('resolved', (l) => l.rule === 'telemetry-rejected').length > 0 || undefined, { timeoutMs: 10_000, intervalMs: 50, what: 'the rejected alert resolved' });
  });
});
