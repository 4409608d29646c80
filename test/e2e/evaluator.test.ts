/**
 * The evaluator end to end: the example API's telemetry → the evaluator
 * (its own OTLP receiver, or PromQL over Prometheus) → the real Alertmanager →
 * a webhook receiver on 127.0.0.1. A page is proven by what the receiver got.
 */
import { expect } from 'chai';
import { otlpJsonEvery1s, startExample, type ExampleApp } from '../helpers/example.js';
import { exampleEvaluatorConfig, startEvaluator, type RunningEvaluator } from '../helpers/evaluator.js';
import { startAlertmanager, startPrometheus, startCollector, startWebhookReceiver, webhookAlertmanagerConfig, type Alertmanager, type Prometheus, type Collector, type WebhookReceiver } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

interface AmAlert { status: string; labels: Record<string, string>; annotations: Record<string, string>; startsAt: string }
interface AmMessage { status: string; alerts: AmAlert[] }

describe('e2e: business-impact pages through the real Alertmanager', function () {
  this.timeout(120_000);
  let hook: WebhookReceiver;
  let am: Alertmanager;
  const apps: ExampleApp[] = [];
  const evaluators: RunningEvaluator[] = [];

  before(async () => {
    hook = await startWebhookReceiver();
    am = await startAlertmanager({ config: webhookAlertmanagerConfig(`${hook.url}/alerts`) });
  });
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.stop();
    for (const e of evaluators.splice(0)) await e.stop();
    hook.clear();
  });
  after(async () => {
    await am?.stop();
    await hook?.stop();
  });

  const alertsFor = (component: string, status = 'firing') =>
    hook.received.flatMap((r) => (r.body as AmMessage).alerts).filter((a) => a.labels.component === component && a.status === status);

  async function evaluatorWith(overrides: Parameters<typeof exampleEvaluatorConfig>[0] = {}) {
    const e = await startEvaluator(
      await exampleEvaluatorConfig({
        source: { type: 'otlp' },
        silentAfter: '4s',
        staleAfter: '3s',
        // resolveHold 1s: these cases are about what reaches the webhook, not the hold (15 s by default, tested in
        // packages/evaluator/test/notifiers-alertmanager.test.ts), which would add 15 s to every resolve here.
        notifiers: { alertmanager: { type: 'alertmanager', urls: [am.url], resend: '2s', retry: { initial: '200ms', max: '1s' }, resolveHold: '1s' } },
        ...overrides,
      }),
    );
    evaluators.push(e);
    return e;
  }

  async function app(evaluator: RunningEvaluator, env: NodeJS.ProcessEnv) {
    const a = await startExample({ ...otlpJsonEvery1s(evaluator.otlpMetricsUrl), ...env });
    apps.push(a);
    return a;
  }

  it('user_management broken → one page with level, priority, revenue and customers; fixed → resolved', async () => {
    const e = await evaluatorWith();
    const broken = await app(e, { VIGIL_DEMO_BREAK: 'user_management' });
    const [page] = await waitFor(() => (alertsFor('user_management').length ? alertsFor('user_management') : undefined), { timeoutMs: 20_000, intervalMs: 50, what: 'the user_management page at the webhook' });
    console.log(`      router failing at startup → page at the webhook (otlp source): ${((performance.now() - broken.spawnedAt) / 1000).toFixed(2)} s`);
    expect(page!.labels).to.include({ alertname: 'VigilBusinessImpact', service: 'marketedge-api', component: 'user_management', severity: 'high', priority: 'P1', rule: 'user-management', escalation: '0' });
    expect(page!.annotations).to.include({ revenue_at_risk: '£925,000', customers: 'Account admins — user onboarding for Zebra Associates is blocked', impact_level: 'high' });
    expect(page!.annotations.affected).to.contain('import user_management').and.contain('route GET /api/v1/user-management');
    // Exactly one page over a few more evaluations and resends.
    await new Promise((r) => setTimeout(r, 4000));
    expect(alertsFor('user_management')).to.have.length(1);
    expect(hook.received.flatMap((r) => (r.body as AmMessage).alerts).filter((a) => a.status === 'firing').map((a) => a.labels.component)).to.deep.equal(['user_management']);

    // The fix: a healthy instance replaces the broken one.
    await broken.stop();
    await app(e, {});
    const [resolved] = await waitFor(() => (alertsFor('user_management', 'resolved').length ? alertsFor('user_management', 'resolved') : undefined), { timeoutMs: 20_000, intervalMs: 100, what: 'the resolved notification' });
    expect(resolved!.labels.rule).to.equal('user-management');
  });

  it('auth broken → a critical page with the authentication business context', async () => {
    const e = await evaluatorWith();
    const a = await app(e, { VIGIL_DEMO_BREAK: 'auth' });
    expect((await a.exited).code).to.equal(1);
    const [page] = await waitFor(() => (alertsFor('authentication').length ? alertsFor('authentication') : undefined), { timeoutMs: 20_000, intervalMs: 50, what: 'the authentication page' });
    expect(page!.labels).to.include({ severity: 'critical', priority: 'P0', business_context: 'CRITICAL_AUTH', channels: 'pagerduty-critical,slack-emergency' });
    expect(page!.annotations.summary).to.match(/^CRITICAL: complete authentication system failure — marketedge-api: authentication is failing/);
  });

  it('escalation raises the level after its time and adds its channels', async () => {
    const base = await exampleEvaluatorConfig({});
    const e = await evaluatorWith({ contexts: { ...base.contexts, ZEBRA_ADMIN_ACCESS: { ...base.contexts!.ZEBRA_ADMIN_ACCESS!, escalation: [{ after: '3s', channels: ['pagerduty'] }] } } });
    await app(e, { VIGIL_DEMO_BREAK: 'admin' });
    const escalated = await waitFor(() => alertsFor('admin').find((a) => a.labels.escalation === '1'), { timeoutMs: 25_000, intervalMs: 100, what: 'the escalated admin page' });
    expect(escalated.labels).to.include({ severity: 'high', business_context: 'ZEBRA_ADMIN_ACCESS', channels: 'slack-zebra,email-account-owner,pagerduty' });
    expect(alertsFor('admin').find((a) => a.labels.escalation === '0'), 'the first page came before').to.exist;
    await waitFor(() => alertsFor('admin', 'resolved').find((a) => a.labels.escalation === '0'), { timeoutMs: 10_000, intervalMs: 100, what: 'level 0 resolved in favour of level 1' });
  });

  it('a healthy app → no page over a 10 s window', async () => {
    const e = await evaluatorWith();
    const a = await app(e, {});
    await a.serving();
    await new Promise((r) => setTimeout(r, 10_000));
    expect(hook.received).to.deep.equal([]);
    expect((e.evaluator.status().services as Array<{ service: string }>).map((s) => s.service)).to.deep.equal(['marketedge-api']);
  });

  it('the app killed → a "telemetry silent" page', async () => {
    const e = await evaluatorWith();
    // A service name of its own: Alertmanager (shared by these tests, resolve_timeout 5m) may still hold a
    // marketedge-api service-level alert of the same labels from an earlier test (the fail-fast app falls
    // silent after exiting), and would not notify that label set again.
    const a = await app(e, { OTEL_RESOURCE_ATTRIBUTES: 'service.name=killed-api' });
    await a.serving();
    await waitFor(() => (e.evaluator.status().services.length ? true : undefined), { timeoutMs: 10_000, intervalMs: 100, what: 'telemetry from the app' });
    await a.stop(); // SIGKILL: no goodbye
    const [page] = await waitFor(() => (alertsFor('(service)').length ? alertsFor('(service)') : undefined), { timeoutMs: 20_000, intervalMs: 100, what: 'the silent page' });
    expect(page!.labels).to.include({ rule: 'telemetry-silent', severity: 'critical', service: 'killed-api' });
    expect(page!.annotations.summary).to.equal('killed-api has sent no telemetry: it may be down');
  });

  describe('with the prometheus source', () => {
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

    it('two evaluators on the same data → exactly one page', async () => {
      const source = { type: 'prometheus' as const, url: prom.url, interval: '1s', selector: 'deployment_environment_name="e2e-ha"' };
      await evaluatorWith({ source });
      await evaluatorWith({ source });
      const a = await startExample({
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: collector.otlpMetricsUrl,
        OTEL_TRACES_EXPORTER: 'none',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e-ha',
        VIGIL_DEMO_BREAK: 'user_management',
      });
      apps.push(a);
      await waitFor(() => (alertsFor('user_management').length ? true : undefined), { timeoutMs: 30_000, intervalMs: 50, what: 'the page through Prometheus' });
      console.log(`      router failing at startup → page at the webhook (prometheus source): ${((performance.now() - a.spawnedAt) / 1000).toFixed(2)} s`);
      await new Promise((r) => setTimeout(r, 5000));
      expect(alertsFor('user_management')).to.have.length(1);
      // Both evaluators did post it: Alertmanager deduplicated.
      for (const e of evaluators) expect(e.evaluator.status().notifiers[0]!.sent).to.be.greaterThan(0);
    });
  });
});
