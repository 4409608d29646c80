/**
 * The committed stack end to end, on the real binaries: the example API → OTLP/protobuf → the
 * OpenTelemetry Collector running collector-config.yaml → Prometheus with the committed alert rules
 * and rule interval → the real Alertmanager with the committed routing, inhibition and timings →
 * stand-ins on 127.0.0.1 for Slack, PagerDuty, email and the webhooks (test/helpers/stack.ts).
 *
 * In order, as an incident unfolds:
 *   1. user_management fails to import and no evaluator runs: the Prometheus rules alone page
 *      (the second line of defence) — Slack #alerts and email, through the real routing;
 *   2. the evaluator starts on the Prometheus source: its business-impact page goes out and the
 *      Prometheus rule's duplicate is held back (inhibition by the evaluator's alert);
 *   3. a second instance refuses to start because `auth` fails to import: critical, PagerDuty and
 *      #emergency; the user-management alerts of the same service are held back (auth down);
 *   4. every query of every committed Grafana dashboard returns data from that Prometheus.
 * The times from a process start to the page are printed (the closing note of the stack quotes them).
 */
import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { panelQueries, substituteVariables, variableQueries, EXAMPLE_VARIABLES } from '../../packages/dashboards/src/index.js';
import { startExample, type ExampleApp } from '../helpers/example.js';
import {
  REPO_ROOT,
  startAlertmanager,
  startPrometheus,
  startCollector,
  type Alertmanager,
  type Prometheus,
  type Collector,
  type WebhookRequest,
} from '../helpers/rig.js';
import {
  localAlertmanagerConfig,
  localPrometheusOptions,
  startPrometheusEvaluator,
  startSmtpSink,
  startStandIns,
  type EvaluatorProcess,
  type LocalAlertmanagerConfig,
  type SmtpSink,
  type StandIns,
} from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const EXAMPLE_DIR = path.join(REPO_ROOT, 'examples/marketedge-api');
const SERVICE = 'marketedge-api';

type Labels = Record<string, string>;
interface WebhookAlert {
  status: string;
  labels: Labels;
  annotations: Labels;
}

describe('e2e: the committed stack — rules → Alertmanager routing → receivers, and every dashboard query', function () {
  this.timeout(240_000);

  let hooks: StandIns;
  let smtp: SmtpSink;
  let amConfig: LocalAlertmanagerConfig;
  let am: Alertmanager;
  let prom: Prometheus;
  let collector: Collector;
  const apps: ExampleApp[] = [];
  let evaluator: EvaluatorProcess | undefined;
  // The example's manifest with fast probes, beside it so its module paths still resolve.
  const manifest = path.join(EXAMPLE_DIR, `.vigil.e2e-stack-${process.pid}.yaml`);

  const appEnv = (breakRouter: string) => ({
    VIGIL_MANIFEST: manifest,
    VIGIL_DEMO_BREAK: breakRouter,
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: collector.otlpMetricsUrl,
    OTEL_METRIC_EXPORT_INTERVAL: '2000',
    OTEL_TRACES_EXPORTER: 'none',
  });

  before(async () => {
    hooks = await startStandIns();
    smtp = await startSmtpSink();
    // The committed timings (group_wait 5 s for critical and high): the page times are real.
    amConfig = await localAlertmanagerConfig({ standInsUrl: hooks.url, smtpPort: smtp.port });
    am = await startAlertmanager({ config: amConfig.config });
    prom = await startPrometheus(localPrometheusOptions({ alertmanagerUrl: am.url }));
    collector = await startCollector({ remoteWriteUrl: prom.remoteWriteUrl });
    const text = await readFile(path.join(EXAMPLE_DIR, 'vigil.yaml'), 'utf8');
    await writeFile(manifest, text.replace('endpoints: 30s', 'endpoints: 1s').replace('flows: 60s', 'flows: 2s'));
  });

  after(async () => {
    await evaluator?.stop();
    for (const app of apps) await app.stop();
    await collector?.stop();
    await prom?.stop();
    await am?.stop();
    await hooks?.stop();
    await smtp?.stop();
    await amConfig?.cleanup();
    await rm(manifest, { force: true });
  });

  afterEach(async function () {
    if (this.currentTest?.state !== 'failed') return;
    console.log(`--- ALERTS in Prometheus ---\n${JSON.stringify((await prom.query('ALERTS').catch((e) => String(e))))}`.slice(0, 3000));
    console.log(`--- alerts in Alertmanager ---\n${JSON.stringify((await am.alerts().catch((e) => String(e))))}`.slice(0, 3000));
    console.log(`--- received ---\n${hooks.received.map((r) => `${r.path} ${JSON.stringify(r.body).slice(0, 400)}`).join('\n')}`);
    console.log(`--- alertmanager ---\n${am?.logs(30)}\n--- prometheus ---\n${prom?.logs(300)}`);
    for (const app of apps) console.log(`--- app ---\n${app.output().slice(-3000)}`);
    if (evaluator) console.log(`--- evaluator ---\n${evaluator.output().slice(-3000)}`);
  });

  /** The alerts a webhook-style request carries (Alertmanager's webhook body). */
  const alertsOf = (r: WebhookRequest): WebhookAlert[] => (r.body?.alerts ?? []) as WebhookAlert[];
  const matches = (labels: Labels, want: Labels) => Object.entries(want).every(([k, v]) => labels[k] === v);
  const firingAtIncidentLog = (want: Labels, timeoutMs = 60_000) =>
    hooks.waitFor((r) => r.path === '/incident-log' && alertsOf(r).some((a) => a.status === 'firing' && matches(a.labels, want)), timeoutMs);
  /** The alert as Alertmanager holds it now (GET /api/v2/alerts computes inhibition on the spot). */
  async function amAlert(want: Labels): Promise<{ labels: Labels; status: { state: string; inhibitedBy: string[] }; fingerprint: string } | undefined> {
    const alerts = await am.alerts();
    return alerts.find((a: any) => matches(a.labels, want));
  }

  it('user_management fails to import, no evaluator: the Prometheus rules page Slack #alerts and email through the committed routing', async () => {
    const app = await startExample(appEnv('user_management'));
    apps.push(app);
    await app.serving();
    // Some traffic of the app's own, for the error-rate panels.
    for (const p of ['/api/v1/organisations', '/api/v1/user-management', '/api/v1/nope']) await fetch(`${app.url}${p}`).catch(() => undefined);

    const want = { alertname: 'VigilRouterImportFailed', source: 'prometheus', service: SERVICE, component: 'user_management', severity: 'high' };
    const slack = await hooks.waitFor(
      (r) => r.path === '/slack/alerts' && JSON.stringify(r.body).includes('user_management') && !JSON.stringify(r.body).includes('VigilBusinessImpact'),
      60_000,
    );
    const pageMs = performance.now() - app.spawnedAt; // waitFor polls every 100 ms
    console.log(`      process start → page at Slack #alerts through Prometheus + Alertmanager: ${(pageMs / 1000).toFixed(1)} s`);

    // The Slack stand-in got what Slack's incoming webhooks accept: a channel and attachments with text.
    expect(slack.body.channel).to.equal('#alerts');
    expect(slack.body.attachments).to.be.an('array').that.is.not.empty;
    expect(slack.body.attachments[0].title).to.be.a('string').and.include('FIRING').and.include(SERVICE);
    expect(slack.body.attachments[0].text).to.be.a('string').and.include('user_management');

    const log = await firingAtIncidentLog(want);
    const alert = alertsOf(log).find((a) => matches(a.labels, want))!;
    expect(alert.labels.router).to.be.a('string').and.not.empty;
    expect(alert.annotations.summary).to.include('user_management');
    await smtp.waitFor((m) => m.to.includes('oncall@example.com') && (m.headers.subject ?? '').includes('router user_management'), 30_000);
    // Nothing critical: no PagerDuty for a degraded, non-critical router.
    expect(hooks.received.filter((r) => r.path === '/pagerduty' && JSON.stringify(r.body).includes('user_management'))).to.deep.equal([]);
  });

  it('the evaluator on the Prometheus source: its business-impact page goes out and holds back the rule alert of the same component', async () => {
    evaluator = await startPrometheusEvaluator({
      prometheusUrl: prom.url,
      alertmanagerUrl: am.url,
      otlpMetricsUrl: collector.otlpMetricsUrl,
      pollInterval: '1s',
      exportIntervalMs: 1000,
    });

    const impact = { alertname: 'VigilBusinessImpact', service: SERVICE, component: 'user_management', severity: 'high', priority: 'P1' };
    await firingAtIncidentLog(impact);
    const slack = await hooks.waitFor((r) => r.path === '/slack/alerts' && JSON.stringify(r.body).includes('VigilBusinessImpact'), 30_000);
    expect(JSON.stringify(slack.body)).to.include('925');

    // Alertmanager holds the rule alert back, inhibited by exactly the evaluator's alert.
    const evalAlert = await amAlert(impact);
    const rule = await waitFor(
      async () => {
        const a = await amAlert({ alertname: 'VigilRouterImportFailed', component: 'user_management', service: SERVICE });
        return a?.status.state === 'suppressed' ? a : undefined;
      },
      { timeoutMs: 20_000, what: 'the rule alert VigilRouterImportFailed{component="user_management"} to be suppressed' },
    );
    expect(rule.status.inhibitedBy).to.include(evalAlert!.fingerprint);
    // The evaluator's own metrics reached Prometheus through the same pipeline.
    await waitFor(async () => ((await prom.query('vigil_impact_level')).length ? true : undefined), { timeoutMs: 30_000, what: 'vigil_impact_level in Prometheus' });
  });

  it('auth fails to import: the instance refuses to start, PagerDuty and #emergency are paged, and the user-management alerts are held back', async () => {
    // The first app stops cleanly (SIGTERM: its final export says "stopped"). Left running, it would
    // be a live instance of the service reporting auth imported and a successful start, which ends
    // the refused instance's startup rule alerts at once (docs/stack.md, "What counts now").
    const firing = (selector: string) => prom.query(`ALERTS{alertstate="firing", service_name="${SERVICE}", ${selector}}`);
    const [before] = await firing('alertname="VigilRouterImportFailed", component="user_management"');
    const firstId = before!.metric.service_instance_id!;
    const [first] = apps;
    first!.proc.kill('SIGTERM');
    await first!.exited;
    const stoppedAt = performance.now();
    // Its rule alerts end at the next rule evaluation after the final export, not ~5 minutes later.
    await waitFor(async () => ((await firing(`service_instance_id="${firstId}"`)).length ? undefined : true), {
      timeoutMs: 30_000,
      what: `the rule alerts of the stopped instance ${firstId} to leave ALERTS`,
    });
    console.log(`      SIGTERM exit → the stopped instance's rule alerts gone from Prometheus: ${((performance.now() - stoppedAt) / 1000).toFixed(1)} s`);
    // user_management broken too: the refused instance's own user-management alerts are the ones held back.
    const app = await startExample(appEnv('auth,user_management'));
    apps.push(app);
    const { code } = await app.exited;
    expect(code, app.output()).to.equal(1);

    const pd = await hooks.waitFor(
      (r) => r.path === '/pagerduty' && r.body?.event_action === 'trigger' && JSON.stringify(r.body).includes('authentication'),
      60_000,
    );
    const pageMs = performance.now() - app.spawnedAt;
    console.log(`      process start (auth broken) → PagerDuty trigger: ${(pageMs / 1000).toFixed(1)} s`);
    // An Events API v2 body.
    expect(pd.body.routing_key).to.be.a('string').and.not.empty;
    expect(pd.body.payload.severity).to.equal('critical');
    expect(pd.body.payload.summary).to.be.a('string').and.not.empty;
    expect(pd.body.dedup_key).to.be.a('string').and.not.empty;
    await hooks.waitFor((r) => r.path === '/slack/emergency' && JSON.stringify(r.body).includes('authentication'), 30_000);

    // The Prometheus rules see the refusal too (whether they page or are held back by the evaluator's alert).
    const startup = await waitFor(async () => amAlert({ alertname: 'VigilStartupValidationFailed', service: SERVICE }), {
      timeoutMs: 30_000,
      what: 'VigilStartupValidationFailed in Alertmanager',
    });
    expect(startup.labels.severity).to.equal('critical');
    expect(startup.labels.component).to.equal('authentication');

    // Authentication down holds back the user-management alerts of the same service, from both sources.
    for (const want of [
      { alertname: 'VigilBusinessImpact', component: 'user_management', service: SERVICE },
      { alertname: 'VigilRouterImportFailed', component: 'user_management', service: SERVICE },
    ]) {
      const a = await waitFor(async () => {
        const x = await amAlert(want);
        return x?.status.state === 'suppressed' ? x : undefined;
      }, { timeoutMs: 20_000, what: `${JSON.stringify(want)} suppressed` });
      const by = await Promise.all(a.status.inhibitedBy.map(async (fp) => (await am.alerts()).find((x: any) => x.fingerprint === fp)?.labels));
      expect(by.some((l: Labels | undefined) => l?.component === 'authentication'), JSON.stringify(by)).to.equal(true);
    }

    // The fix deployed (auth imports again; user_management still broken, for the dashboards below):
    // a live instance that started successfully ends the refusal's startup alerts at once.
    const fixed = await startExample(appEnv('user_management'));
    apps.push(fixed);
    await fixed.serving();
    const servingAt = performance.now();
    await waitFor(async () => ((await firing('alertname=~"VigilStartupValidationFailed|VigilCriticalRouteMissing", component="authentication"')).length ? undefined : true), {
      timeoutMs: 30_000,
      what: 'the refused instance\'s authentication alerts to leave ALERTS once a fixed instance reports',
    });
    console.log(`      fixed instance serving → the refusal's authentication rule alerts gone from Prometheus: ${((performance.now() - servingAt) / 1000).toFixed(1)} s`);
  });

  it('the dead man\'s switch outside hears the always-firing watchdog', async () => {
    // Its first evaluation may come before Prometheus discovered Alertmanager (dropped, resent after
    // the 1 min resend delay), so this waits up to 90 s from the start of the suite.
    await hooks.waitFor((r) => r.path === '/deadmansswitch' && alertsOf(r).some((a) => a.labels.alertname === 'VigilWatchdog'), 90_000);
  });

  it('every query of every committed dashboard returns data from this Prometheus', async () => {
    const queries = panelQueries();
    expect(queries.length).to.be.greaterThan(20);
    const empty: string[] = [];
    await waitFor(
      async () => {
        empty.length = 0;
        for (const q of queries) {
          const expr = substituteVariables(q.expr, { ...EXAMPLE_VARIABLES, __range: '1h', __rate_interval: '30s', __interval: '15s' });
          const result = await prom.query(expr);
          if (!result.length) empty.push(`${q.dashboard} / ${q.panel} [${q.refId}]: ${expr}`);
        }
        for (const v of variableQueries()) {
          const result = await prom.query(substituteVariables(v.selector, EXAMPLE_VARIABLES));
          if (!result.some((s) => s.metric[v.label])) empty.push(`${v.dashboard} variable ${v.variable}: ${v.selector} has no ${v.label}`);
        }
        if (empty.length) throw new Error(`no data for:\n  ${empty.join('\n  ')}`);
        return true;
      },
      { timeoutMs: 60_000, intervalMs: 2_000, what: 'every dashboard query to return data' },
    );
    console.log(`      ${queries.length} panel queries and ${variableQueries().length} variables, all with data`);
  });
});

describe('e2e: npm run stack (scripts/stack.ts) — the same pipeline for a user, printing what pages', function () {
  this.timeout(150_000);

  it('with user_management broken, prints the URLs and the page that reaches Slack #alerts, then exits 0 (--once)', async () => {
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'scripts/stack.ts'), '--once'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve(c)));
    expect(code, out).to.equal(0);
    for (const what of ['Prometheus     http://127.0.0.1:', 'Alertmanager   http://127.0.0.1:', 'evaluator      http://127.0.0.1:']) expect(out, out).to.include(what);
    expect(out).to.match(/■ Slack #alerts: \[FIRING:1\] marketedge-api: user_management is failing/);
    expect(out).to.match(/first page [\d.]+ s after the API was started/);
  });
});
