/**
 * Release over release with real apps: a small Express 5 app
 * (test/fixtures/release-app.mjs) runs as 1.4.2 with `GET /api/v1/users`,
 * exporting OTLP/HTTP JSON to an evaluator in this process; then as 1.5.0
 * without that route and with the manifest no longer declaring it (its startup
 * is green). The evaluator's webhook (a receiver on 127.0.0.1) gets a page
 * naming "GET /api/v1/users" and "1.4.2"; no page while 1.4.2 starts, and none
 * when 1.5.0 keeps every route. The same with the Express 4 CommonJS variant,
 * and through the production path (the real Collector → Prometheus → the
 * Prometheus source).
 */
import path from 'node:path';
import { expect } from 'chai';
import { otlpJsonEvery1s, spawnNode, type NodeChild } from '../helpers/example.js';
import { startEvaluator, type RunningEvaluator } from '../helpers/evaluator.js';
import { REPO_ROOT, startCollector, startPrometheus, startWebhookReceiver, type Collector, type Prometheus, type WebhookReceiver } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

interface DirectPayload { status: string; alert: { labels: Record<string, string>; annotations: Record<string, string> } }

const FIXTURES = { express5: path.join(REPO_ROOT, 'test/fixtures/release-app.mjs'), express4: path.join(REPO_ROOT, 'test/fixtures/release-app-express4.cjs') };

describe('e2e: release over release (a route removed since the previous version pages)', function () {
  this.timeout(120_000);
  let hook: WebhookReceiver;
  const apps: NodeChild[] = [];
  const evaluators: RunningEvaluator[] = [];

  before(async () => (hook = await startWebhookReceiver()));
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
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
  after(async () => hook?.stop());

  async function evaluator(source: Parameters<typeof startEvaluator>[0]['source'] = { type: 'otlp' }): Promise<RunningEvaluator> {
    const e = await startEvaluator({
      source,
      interval: '200ms',
      silentAfter: '20s',
      staleAfter: '3s',
      releases: { settle: '2s' },
      rules: [{ name: 'accounts-api', match: { component: 'accounts' }, impact: { level: 'critical', priority: 'P0', customers: 'everyone with an account' } }],
      policies: { critical: { channels: ['pager'], for: 0 }, high: { channels: ['chat'] }, medium: { channels: ['chat'] }, low: { channels: ['mail'] } },
      notifiers: { direct: { type: 'webhook', url: `${hook.url}/direct`, retry: { initial: '200ms', max: '1s' } } },
    });
    evaluators.push(e);
    return e;
  }

  /** Runs the fixture as `version`; resolves with its URL once it has validated (its startup verdict on the LISTENING line). */
  async function run(e: RunningEvaluator, version: string, dropUsers: boolean, fixture = FIXTURES.express5, exportTo = e.otlpMetricsUrl): Promise<{ app: NodeChild; url: string; verdict: string }> {
    const app = spawnNode(fixture, [], { ...otlpJsonEvery1s(exportTo), OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e-releases', APP_VERSION: version, DROP_USERS: dropUsers ? '1' : '0', VIGIL_LOG_LEVEL: 'warn' });
    apps.push(app);
    const [, port, verdict] = await waitFor(() => /LISTENING (\d+) (\w+)/.exec(app.output()) ?? undefined, { timeoutMs: 30_000, intervalMs: 50, what: `release-app ${version} to listen` });
    return { app, url: `http://127.0.0.1:${port}`, verdict: verdict! };
  }

  /** The version's entry in the evaluator's release status once `counted` instances of it count (reported for the settle time). */
  const counted = (e: RunningEvaluator, version: string) =>
    waitFor(
      () => {
        const svc = e.evaluator.status().releases.find((s) => s.service === 'release-fixture');
        const v = svc?.versions.find((x) => x.version === version);
        return v && v.counted > 0 ? { svc: svc!, v } : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `an instance of ${version} to count in the evaluator` },
    );

  const releasePages = () => hook.received.filter((r) => r.path === '/direct').map((r) => r.body as DirectPayload).filter((p) => p.status === 'firing');
  const firingInHistory = (e: RunningEvaluator) => e.evaluator.status().history.filter((h) => h.status === 'firing');

  for (const [name, fixture] of Object.entries(FIXTURES)) {
    it(`${name}: pages "GET /api/v1/users removed since 1.4.2" when 1.5.0 no longer serves it, and nothing while 1.4.2 starts`, async () => {
      const e = await evaluator();
      const v1 = await run(e, '1.4.2', false, fixture);
      expect(v1.verdict).to.equal('pass');
      expect((await fetch(`${v1.url}/api/v1/users`)).status).to.equal(200);
      const { v } = await counted(e, '1.4.2');
      expect(v.routes).to.be.greaterThan(2);
      // 1.4.2 has started, reported and settled: nothing was sent.
      expect(firingInHistory(e)).to.deep.equal([]);

      v1.app.proc.kill('SIGTERM');
      await v1.app.exited;
      const v2 = await run(e, '1.5.0', true, fixture);
      expect(v2.verdict, 'the manifest was edited along with the removal: startup is green').to.equal('pass');
      expect((await fetch(`${v2.url}/api/v1/users`)).status).to.equal(404);
      expect((await fetch(`${v2.url}/api/v1/profile`)).status).to.equal(200);

      const [page] = await waitFor(() => (releasePages().length ? releasePages() : undefined), { timeoutMs: 30_000, intervalMs: 100, what: 'the release page on the webhook' });
      expect(page!.alert.labels).to.include({ service: 'release-fixture', component: 'accounts', severity: 'critical', rule: 'accounts-api' });
      expect(page!.alert.annotations.summary).to.contain('GET /api/v1/users').and.to.contain('1.4.2');
      expect(page!.alert.annotations.summary).to.equal('release-fixture: GET /api/v1/users removed since 1.4.2 (not served by 1.5.0)');
      // Only the removed route: the routes 1.5.0 still serves are not named.
      expect(page!.alert.annotations.affected).to.not.contain('/api/v1/profile');
    });
  }

  it('sends no page when 1.5.0 keeps every route', async () => {
    const e = await evaluator();
    const v1 = await run(e, '1.4.2', false);
    await counted(e, '1.4.2');
    v1.app.proc.kill('SIGTERM');
    await v1.app.exited;
    const v2 = await run(e, '1.5.0', false);
    expect((await fetch(`${v2.url}/api/v1/users`)).status).to.equal(200);
    const { svc } = await counted(e, '1.5.0');
    // Compared (1.5.0 against 1.4.2, after the settle time), and nothing is missing.
    const compared = await waitFor(() => {
      const s = e.evaluator.status().releases.find((x) => x.service === 'release-fixture');
      return s?.previous === '1.4.2' ? s : undefined;
    }, { timeoutMs: 10_000, intervalMs: 100, what: 'the comparison of 1.5.0 with 1.4.2' });
    expect(svc.versions.map((x) => x.version)).to.deep.equal(['1.4.2', '1.5.0']);
    expect(compared.removed).to.deep.equal([]);
    expect(firingInHistory(e)).to.deep.equal([]);
    expect(releasePages()).to.deep.equal([]);
  });

  describe('through the Collector and Prometheus (the Prometheus source)', () => {
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

    it('pages "GET /api/v1/users removed since 1.4.2" from vigil_route_served in Prometheus', async () => {
      const e = await evaluator({ type: 'prometheus', url: prom.url, interval: '1s', selector: 'deployment_environment_name="e2e-releases"' });
      const v1 = await run(e, '1.4.2', false, FIXTURES.express5, collector.otlpMetricsUrl);
      await counted(e, '1.4.2');
      expect(firingInHistory(e)).to.deep.equal([]);
      v1.app.proc.kill('SIGTERM');
      await v1.app.exited;
      const v2 = await run(e, '1.5.0', true, FIXTURES.express5, collector.otlpMetricsUrl);
      expect((await fetch(`${v2.url}/api/v1/users`)).status).to.equal(404);
      const [page] = await waitFor(() => (releasePages().length ? releasePages() : undefined), { timeoutMs: 60_000, intervalMs: 200, what: 'the release page on the webhook (Prometheus source)' });
      expect(page!.alert.labels).to.include({ service: 'release-fixture', component: 'accounts', environment: 'e2e-releases' });
      expect(page!.alert.annotations.summary).to.equal('release-fixture: GET /api/v1/users removed since 1.4.2 (not served by 1.5.0)');
    });
  });
});
