/**
 * The reason travels to the page: the example API with a broken router
 * (VIGIL_DEMO_BREAK=user_management) → its telemetry (vigil.check.reason) →
 * the evaluator (OTLP receiver) → the REAL Alertmanager → a webhook receiver on
 * 127.0.0.1: the page Alertmanager delivers carries the import error's first
 * line in its `description` annotation, and so does the evaluator's own webhook
 * payload. Then the same for a missing environment variable (a small fixture
 * app), and through Prometheus (Collector → Prometheus → the Prometheus source).
 */
import path from 'node:path';
import { expect } from 'chai';
import { otlpJsonEvery1s, spawnNode, startExample, type ExampleApp, type NodeChild } from '../helpers/example.js';
import { exampleEvaluatorConfig, startEvaluator, type RunningEvaluator } from '../helpers/evaluator.js';
import {
  REPO_ROOT,
  startAlertmanager,
  startCollector,
  startPrometheus,
  startWebhookReceiver,
  webhookAlertmanagerConfig,
  type Alertmanager,
  type Collector,
  type Prometheus,
  type WebhookReceiver,
} from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

interface AmAlert { status: string; labels: Record<string, string>; annotations: Record<string, string> }
interface AmMessage { alerts: AmAlert[] }
interface DirectPayload { status: string; alert: { labels: Record<string, string>; annotations: Record<string, string> } }

/** The first line of the import error the example's broken router throws: a module that is not there. */
// A reason is cut at 200 characters ("…"): in a checkout with a long path the "imported from" part may be cut.
const IMPORT_REASON = /Cannot find module '[^']*\/models\/user_management_schema\.js'(?: imported from [^\s;]*\.js|[^;]*…)/;

describe('e2e: the reason of a failure reaches the page (real Alertmanager)', function () {
  this.timeout(120_000);
  let hook: WebhookReceiver;
  let am: Alertmanager;
  const apps: Array<ExampleApp | NodeChild> = [];
  const evaluators: RunningEvaluator[] = [];

  before(async () => {
    hook = await startWebhookReceiver();
    am = await startAlertmanager({ config: webhookAlertmanagerConfig(`${hook.url}/alerts`) });
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      console.log(`--- alertmanager log ---\n${am.logs(30)}`);
      for (const a of apps) console.log(`--- app output ---\n${a.output().slice(-3000)}`);
      for (const e of evaluators) console.log(`--- evaluator status ---\n${JSON.stringify(e.evaluator.status()).slice(0, 4000)}`);
    }
    for (const a of apps.splice(0)) {
      if (a.proc.exitCode === null && a.proc.signalCode === null) a.proc.kill('SIGKILL');
      await a.exited;
    }
    for (const e of evaluators.splice(0)) await e.stop();
    hook.clear();
  });
  after(async () => {
    await am?.stop();
    await hook?.stop();
  });

  /** Firing alerts of `component` that Alertmanager delivered. */
  const paged = (component: string) =>
    hook.received.filter((r) => r.path === '/alerts').flatMap((r) => (r.body as AmMessage).alerts).filter((a) => a.labels.component === component && a.status === 'firing');
  /** Firing alerts of `component` that the evaluator's own webhook notifier posted. */
  const direct = (component: string) =>
    hook.received.filter((r) => r.path === '/direct').map((r) => r.body as DirectPayload).filter((p) => p.alert.labels.component === component && p.status === 'firing');

  async function evaluatorWith(overrides: Parameters<typeof exampleEvaluatorConfig>[0] = {}) {
    const e = await startEvaluator(
      await exampleEvaluatorConfig({
        source: { type: 'otlp' },
        silentAfter: '10s',
        staleAfter: '5s',
        notifiers: {
          alertmanager: { type: 'alertmanager', urls: [am.url], resend: '2s', retry: { initial: '200ms', max: '1s' } },
          direct: { type: 'webhook', url: `${hook.url}/direct`, retry: { initial: '200ms', max: '1s' } },
        },
        ...overrides,
      }),
    );
    evaluators.push(e);
    return e;
  }

  it('a broken router: Alertmanager\'s page and the direct webhook say "Cannot find module …"; status API too', async () => {
    const e = await evaluatorWith();
    apps.push(await startExample({ ...otlpJsonEvery1s(e.otlpMetricsUrl), VIGIL_DEMO_BREAK: 'user_management' }));
    const [page] = await waitFor(() => (paged('user_management').length ? paged('user_management') : undefined), { timeoutMs: 30_000, intervalMs: 100, what: 'the user_management page delivered by Alertmanager' });
    // The import error's first line, in the description Alertmanager delivered (no "Require stack", no second line).
    expect(page!.annotations.description).to.match(/^Impact high \(P1\) by rule user-management\. Failing: /);
    expect(page!.annotations.description).to.match(new RegExp(`import user_management: ${IMPORT_REASON.source}`));
    expect(page!.annotations.description).to.not.contain('\n');
    // The routes it took with it say so too.
    expect(page!.annotations.affected).to.match(new RegExp(`route GET /api/v1/user-management: router failed to import: ${IMPORT_REASON.source}`));

    const [payload] = await waitFor(() => (direct('user_management').length ? direct('user_management') : undefined), { timeoutMs: 10_000, intervalMs: 100, what: 'the direct webhook payload' });
    expect(payload!.alert.annotations.description).to.equal(page!.annotations.description);

    const status = e.evaluator.status();
    const alert = status.alerts.find((a) => a.component === 'user_management')!;
    expect(alert.signals.find((s) => s.kind === 'import')!.reason).to.match(IMPORT_REASON);
  });

  it('a missing environment variable: the page and the direct webhook say "missing environment variable(s): JWT_SECRET"', async () => {
    const e = await evaluatorWith();
    const app = spawnNode(path.join(REPO_ROOT, 'test/fixtures/env-reason-app.mjs'), [], { ...otlpJsonEvery1s(e.otlpMetricsUrl), VIGIL_LOG_LEVEL: 'warn' });
    apps.push(app);
    const [page] = await waitFor(() => (paged('authentication').length ? paged('authentication') : undefined), { timeoutMs: 30_000, intervalMs: 100, what: 'the authentication page delivered by Alertmanager' });
    expect(page!.labels).to.include({ service: 'env-fixture', rule: 'authentication-failure' });
    expect(page!.annotations.description).to.contain('dependency jwt: missing environment variable(s): JWT_SECRET');
    const [payload] = await waitFor(() => (direct('authentication').length ? direct('authentication') : undefined), { timeoutMs: 10_000, intervalMs: 100, what: 'the direct webhook payload' });
    expect(payload!.alert.annotations.description).to.contain('dependency jwt: missing environment variable(s): JWT_SECRET');
  });

  describe('through Prometheus', () => {
    let prom: Prometheus;
    let collector: Collector;
    before(async () => {
      prom = await startPrometheus();
      collector = await startCollector({ remoteWriteUrl: prom.remoteWriteUrl });
    });
    after(async () => {
      await collector?.stop();
      await prom?.stop();
    });

    it('the Prometheus source reads vigil_check_reason: the page through Alertmanager carries the reason', async () => {
      await evaluatorWith({ source: { type: 'prometheus', url: prom.url, interval: '1s', selector: 'deployment_environment_name="e2e-reasons"' } });
      apps.push(
        await startExample({
          OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: collector.otlpMetricsUrl,
          OTEL_METRIC_EXPORT_INTERVAL: '1000',
          OTEL_TRACES_EXPORTER: 'none',
          OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e-reasons',
          VIGIL_DEMO_BREAK: 'user_management',
        }),
      );
      // The evaluator may page before the reason's series is in; Alertmanager then gets the reason with a resend.
      const page = await waitFor(() => paged('user_management').find((a) => IMPORT_REASON.test(a.annotations.description ?? '')), {
        timeoutMs: 40_000,
        intervalMs: 200,
        what: `a user_management page with the reason, through Prometheus; got: ${JSON.stringify(paged('user_management').map((a) => a.annotations.description))}`,
      });
      expect(page.annotations.description).to.match(new RegExp(`import user_management: ${IMPORT_REASON.source}`));
      // In Prometheus: the reason series, with the failing series' labels.
      const res = (await (await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent('vigil_check_reason{deployment_environment_name="e2e-reasons", vigil_reason_metric="vigil.router.import"}')}`)).json()) as {
        data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
      };
      expect(res.data.result.map((r) => [r.metric.vigil_router, r.metric.vigil_outcome, r.value[1]])).to.deep.equal([['user_management', 'failed', '1']]);
      expect(res.data.result[0]!.metric.vigil_reason).to.match(IMPORT_REASON);
    });
  });
});
