/**
 * alertmanager/alertmanager.yml in the real Alertmanager (0.28.1): what reaches PagerDuty,
 * Slack, email and the webhooks, and what the inhibition rules hold back. amtool can test routes
 * (test/unit/stack/alertmanager-config.test.ts) but not inhibition; this posts alerts to a running
 * Alertmanager and records what it delivers.
 *
 * The config is the committed one redirected to stand-ins on 127.0.0.1 with shortened timings
 * (`localAlertmanagerConfig` in test/helpers/stack.ts, `fast: true`); the first test asserts that
 * nothing else differs.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { parse } from 'yaml';
import { startAlertmanager, type Alertmanager } from '../helpers/rig.js';
import {
  ALERTMANAGER_CONFIG,
  localAlertmanagerConfig,
  routingOf,
  SECRETS_MOUNT,
  startSmtpSink,
  startStandIns,
  type SmtpSink,
  type StandIns,
} from '../helpers/stack.js';

type Labels = Record<string, string>;
interface PostAlert {
  labels: Labels;
  annotations?: Labels;
  endsAt?: string;
}

describe('Alertmanager: the committed routing and inhibition, delivered by the real Alertmanager', function () {
  this.timeout(120_000);

  let am: Alertmanager | undefined;
  let hooks: StandIns;
  let smtp: SmtpSink;
  let secretsDir: string;
  let cleanup: (() => Promise<void>) | undefined;
  let committed: any;
  let tested: any;
  const secrets: Record<string, string> = {};

  before(async () => {
    hooks = await startStandIns();
    smtp = await startSmtpSink();
    const local = await localAlertmanagerConfig({ standInsUrl: hooks.url, smtpPort: smtp.port, fast: true });
    cleanup = local.cleanup;
    secretsDir = local.secretsDir;
    Object.assign(secrets, local.secrets);
    const config = local.config;
    committed = parse(await readFile(ALERTMANAGER_CONFIG, 'utf8'));
    tested = parse(config);
    am = await startAlertmanager({ config });
  });

  after(async () => {
    await am?.stop();
    await hooks?.stop();
    await smtp?.stop();
    await cleanup?.();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && am) console.log(`--- alertmanager log ---\n${am.logs(40)}`);
  });

  async function post(...alerts: PostAlert[]): Promise<void> {
    const res = await fetch(`${am!.url}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(alerts),
    });
    expect(res.status, await res.text()).to.equal(200);
  }

  /** Every (request, alert) pair a stand-in got at `reqPath` (webhook and Slack bodies list alerts differently). */
  const at = (reqPath: string) => hooks.received.filter((r) => r.path === reqPath);
  const webhookAlerts = (reqPath: string) => at(reqPath).flatMap((r) => (r.body?.alerts ?? []) as Array<{ status: string; labels: Labels }>);
  const pdEvents = () => at('/pagerduty').map((r) => r.body);
  const firingAt = (reqPath: string, labels: Labels) =>
    webhookAlerts(reqPath).some((a) => a.status === 'firing' && Object.entries(labels).every(([k, v]) => a.labels[k] === v));
  const waitDelivered = (reqPath: string, labels: Labels) =>
    hooks.waitFor(
      (r) =>
        r.path === reqPath && (r.body?.alerts ?? []).some((a: any) => a.status === 'firing' && Object.entries(labels).every(([k, v]) => a.labels[k] === v)),
      10_000,
    );
  /** The alert's status in Alertmanager (GET /api/v2/alerts computes inhibition on the spot). */
  async function statusOf(labels: Labels): Promise<{ state: string; inhibitedBy: string[] }> {
    const alerts = await am!.alerts();
    const hit = alerts.find((a: any) => Object.entries(labels).every(([k, v]) => a.labels[k] === v));
    if (!hit) throw new Error(`Alertmanager does not hold ${JSON.stringify(labels)}`);
    return hit.status;
  }
  /** After the alerts that must go out went out: give the held-back ones the same time again, twice. */
  const GRACE_MS = 2_500;

  it('the test config differs from the committed one only in secrets, URLs and timings', () => {
    expect(tested.inhibit_rules).to.deep.equal(committed.inhibit_rules);
    expect(routingOf(tested.route)).to.deep.equal(routingOf(committed.route));
    const strip = (rs: any[]) => JSON.parse(JSON.stringify(rs).replaceAll(`${secretsDir}/`, SECRETS_MOUNT));
    expect(strip(tested.receivers)).to.deep.equal(committed.receivers);
    const { pagerduty_url: _p, smtp_smarthost: _s, smtp_require_tls: _t, ...globalRest } = tested.global;
    const { pagerduty_url: _cp, smtp_smarthost: _cs, smtp_require_tls: _ct, ...committedRest } = committed.global;
    expect(strip([globalRest])[0]).to.deep.equal(committedRest);
  });

  it('a critical alert: PagerDuty gets an Events API v2 trigger, Slack #emergency a message, on-call an email; resolving resolves the incident', async () => {
    const labels = { alertname: 'VigilBusinessImpact', service: 'svc-crit', component: 'database', severity: 'critical', priority: 'P0', rule: 'data-access', escalation: '0' };
    const annotations = {
      summary: 'svc-crit: database is failing (probe GET /api/v1/data)',
      revenue_at_risk: '£925,000',
      customers: 'All users - no data access',
      runbook_url: 'https://runbooks.example.com/database',
    };
    await post({ labels, annotations });

    // PagerDuty (general service): the body the Events API v2 accepts.
    const pd = await hooks.waitFor((r) => r.path === '/pagerduty' && r.body?.payload?.source === 'svc-crit');
    expect(pd.method).to.equal('POST');
    expect(pd.headers['content-type']).to.match(/application\/json/);
    const ev = pd.body;
    expect(ev.routing_key, 'read from the file, trailing newline trimmed').to.equal(secrets['pagerduty-routing-key']);
    expect(ev.event_action).to.equal('trigger');
    expect(ev.dedup_key).to.be.a('string').and.have.length.greaterThan(0);
    expect(ev.payload.summary).to.equal(annotations.summary);
    expect(ev.payload.severity).to.be.oneOf(['critical', 'error', 'warning', 'info']).and.equal('critical');
    expect(ev.payload.source).to.equal('svc-crit');
    expect(ev.payload.component).to.equal('database');
    expect(ev.payload.class).to.equal('VigilBusinessImpact');
    expect(ev.payload.custom_details).to.include({ revenue_at_risk: '£925,000', customers: annotations.customers, runbook_url: annotations.runbook_url });

    // Slack #emergency: an incoming-webhook message (channel + attachments with title and text).
    const slack = await hooks.waitFor((r) => r.path === '/slack/emergency' && JSON.stringify(r.body).includes('svc-crit'));
    expect(slack.body.channel).to.equal('#emergency');
    const [att] = slack.body.attachments;
    expect(att.title).to.equal(`[FIRING:1] ${annotations.summary}`);
    expect(att.text).to.contain('*VigilBusinessImpact* svc-crit / database');
    expect(att.text).to.contain('(critical, P0)');
    expect(att.text).to.contain('*Revenue at risk:* £925,000');
    expect(att.text).to.contain(`*Customers:* ${annotations.customers}`);
    expect(att.text).to.contain(`*Runbook:* <${annotations.runbook_url}|`);
    expect(att.text).to.not.contain('ESCALATED');
    expect(att.text, 'no template error text').to.not.match(/<no value>|error calling/);

    // Email to on-call, authenticated with the password from its file.
    const mail = await smtp.waitFor((m) => m.to.includes('oncall@example.com') && (m.headers.subject ?? '').includes('svc-crit'));
    expect(mail.auth).to.deep.equal({ user: 'vigil-alerts@example.com', pass: secrets['smtp-password'] });
    expect(mail.from).to.equal('vigil-alerts@example.com');
    expect(mail.headers.subject).to.equal(`[FIRING] ${annotations.summary}`);

    // Incident log: Alertmanager's webhook JSON.
    const log = await waitDelivered('/incident-log', { service: 'svc-crit' });
    expect(log.body).to.include({ version: '4', receiver: 'webhook', status: 'firing' });
    expect(log.body.alerts[0].annotations).to.include(annotations);

    // Resolved: PagerDuty resolves the same incident.
    await post({ labels, annotations, endsAt: new Date().toISOString() });
    const resolve = await hooks.waitFor((r) => r.path === '/pagerduty' && r.body?.event_action === 'resolve' && r.body?.dedup_key === ev.dedup_key);
    expect(resolve.body.routing_key).to.equal(secrets['pagerduty-routing-key']);
  });

  it('CRITICAL_AUTH pages its own PagerDuty service and #emergency, and the escalation the on-call lead', async () => {
    const base = { alertname: 'VigilBusinessImpact', service: 'svc-auth', component: 'authentication', severity: 'critical', priority: 'P0', rule: 'authentication-failure', business_context: 'CRITICAL_AUTH' };
    const annotations = { summary: 'CRITICAL: complete authentication system failure — svc-auth: authentication is failing', revenue_at_risk: '£925,000', customers: 'All users' };
    await post({ labels: { ...base, escalation: '0', channels: 'pagerduty-critical,slack-emergency' }, annotations });
    const pd0 = await hooks.waitFor((r) => r.path === '/pagerduty' && r.body?.payload?.source === 'svc-auth');
    expect(pd0.body.routing_key).to.equal(secrets['pagerduty-critical-routing-key']);
    expect(pd0.body.payload.severity).to.equal('critical');
    await hooks.waitFor((r) => r.path === '/slack/emergency' && JSON.stringify(r.body).includes('svc-auth'));
    await sleep(GRACE_MS);
    expect(pdEvents().filter((e) => e.payload?.source === 'svc-auth').map((e) => e.routing_key), 'no general PagerDuty, no lead yet').to.deep.equal([secrets['pagerduty-critical-routing-key']]);
    expect(smtp.mails.filter((m) => (m.headers.subject ?? '').includes('svc-auth')), 'the context has no email').to.deep.equal([]);

    // The evaluator escalates: resolves the level-0 label set and fires level 1.
    const now = new Date().toISOString();
    await post(
      { labels: { ...base, escalation: '0', channels: 'pagerduty-critical,slack-emergency' }, annotations, endsAt: now },
      { labels: { ...base, escalation: '1', channels: 'pagerduty-critical,slack-emergency,phone-oncall-lead' }, annotations },
    );
    const lead = await hooks.waitFor((r) => r.path === '/pagerduty' && r.body?.routing_key === secrets['pagerduty-oncall-lead-routing-key']);
    expect(lead.body).to.deep.include({ event_action: 'trigger' });
    expect(lead.body.payload).to.include({ severity: 'critical', source: 'svc-auth', summary: annotations.summary });
    expect(lead.body.payload.custom_details.escalation).to.equal('1');
  });

  it('ZEBRA_ADMIN_ACCESS goes to #zebra-associates and the account owner; escalated, to PagerDuty as "error"', async () => {
    const base = { alertname: 'VigilBusinessImpact', service: 'svc-zebra', component: 'admin', severity: 'high', priority: 'P1', rule: 'zebra-admin-access', business_context: 'ZEBRA_ADMIN_ACCESS' };
    const annotations = { summary: 'ZEBRA ALERT: admin access failure - svc-zebra: admin is failing', revenue_at_risk: '£925,000' };
    await post({ labels: { ...base, escalation: '0' }, annotations });
    const slack = await hooks.waitFor((r) => r.path === '/slack/zebra' && JSON.stringify(r.body).includes('svc-zebra'));
    expect(slack.body.channel).to.equal('#zebra-associates');
    await smtp.waitFor((m) => m.to.includes('zebra-account-owner@example.com') && (m.headers.subject ?? '').includes('svc-zebra'));
    await post({ labels: { ...base, escalation: '0' }, annotations, endsAt: new Date().toISOString() }, { labels: { ...base, escalation: '1' }, annotations });
    const pd = await hooks.waitFor((r) => r.path === '/pagerduty' && r.body?.payload?.source === 'svc-zebra');
    expect(pd.body.routing_key).to.equal(secrets['pagerduty-routing-key']);
    expect(pd.body.payload.severity).to.equal('error');
    const escalated = await hooks.waitFor((r) => r.path === '/slack/zebra' && JSON.stringify(r.body).includes('ESCALATED, level 1'));
    expect(escalated.body.attachments[0].text).to.contain('svc-zebra');
  });

  it('inhibition (a): authentication down holds back admin and user_management of the same service, not of another, never the watchdog', async () => {
    const auth = { alertname: 'VigilBusinessImpact', service: 'svc-a', component: 'authentication', severity: 'critical', priority: 'P0', rule: 'authentication-failure', business_context: 'CRITICAL_AUTH', escalation: '0' };
    const admin = { alertname: 'VigilBusinessImpact', service: 'svc-a', component: 'admin', severity: 'high', priority: 'P1', rule: 'zebra-admin-access', business_context: 'ZEBRA_ADMIN_ACCESS', escalation: '0' };
    const users = { alertname: 'VigilRouterImportFailed', source: 'prometheus', service: 'svc-a', component: 'user_management', severity: 'high', router: 'users' };
    const otherAdmin = { ...admin, service: 'svc-a-other' };
    // Contrived: a watchdog carrying the labels of a target; it must still get through.
    const watchdog = { alertname: 'VigilWatchdog', source: 'prometheus', severity: 'none', service: 'svc-a', component: 'admin' };
    await post({ labels: auth }, { labels: admin }, { labels: users }, { labels: otherAdmin }, { labels: watchdog });

    await waitDelivered('/incident-log', { service: 'svc-a', component: 'authentication' });
    await waitDelivered('/incident-log', { service: 'svc-a-other', component: 'admin' });
    await hooks.waitFor((r) => r.path === '/slack/zebra' && JSON.stringify(r.body).includes('svc-a-other'));
    await waitDelivered('/deadmansswitch', { alertname: 'VigilWatchdog', service: 'svc-a' });
    await sleep(GRACE_MS);

    expect(firingAt('/incident-log', { alertname: 'VigilBusinessImpact', service: 'svc-a', component: 'admin' }), 'admin of svc-a').to.equal(false);
    expect(firingAt('/incident-log', { service: 'svc-a', component: 'user_management' }), 'user_management of svc-a').to.equal(false);
    const zebra = at('/slack/zebra').map((r) => JSON.stringify(r.body));
    expect(zebra.some((b) => b.includes('svc-a-other'))).to.equal(true);
    expect(zebra.some((b) => b.includes('svc-a /'))).to.equal(false);
    expect((await statusOf(admin)).state).to.equal('suppressed');
    expect((await statusOf(admin)).inhibitedBy).to.have.length(1);
    expect((await statusOf(users)).state).to.equal('suppressed');
    expect((await statusOf(otherAdmin)).state).to.equal('active');
    expect((await statusOf(watchdog)).state).to.equal('active');
    expect((await statusOf(auth)).state).to.equal('active');
  });

  it('inhibition (b): a silent service holds back its VigilEndpointProbeFailing', async () => {
    const silent = { alertname: 'VigilTelemetrySilent', source: 'prometheus', service: 'svc-b', component: '(service)', severity: 'critical' };
    const probe = { alertname: 'VigilEndpointProbeFailing', source: 'prometheus', service: 'svc-b', component: 'orders', severity: 'critical', route: '/api/v1/orders', method: 'GET' };
    const otherProbe = { ...probe, service: 'svc-b-other' };
    await post({ labels: silent }, { labels: probe }, { labels: otherProbe });
    await waitDelivered('/incident-log', { alertname: 'VigilTelemetrySilent', service: 'svc-b' });
    await waitDelivered('/incident-log', { alertname: 'VigilEndpointProbeFailing', service: 'svc-b-other' });
    await sleep(GRACE_MS);
    expect(firingAt('/incident-log', { alertname: 'VigilEndpointProbeFailing', service: 'svc-b' })).to.equal(false);
    expect(pdEvents().filter((e) => e.payload?.source === 'svc-b').map((e) => e.payload.class)).to.deep.equal(['VigilTelemetrySilent']);
    expect((await statusOf(probe)).state).to.equal('suppressed');
  });

  it('inhibition (c): an evaluator alert holds back the Prometheus rule alerts of the same service and component only', async () => {
    const impact = { alertname: 'VigilBusinessImpact', service: 'svc-c', component: 'database', severity: 'critical', priority: 'P0', rule: 'data-access', escalation: '0' };
    const sameRule = { alertname: 'VigilEndpointProbeFailing', source: 'prometheus', service: 'svc-c', component: 'database', severity: 'critical', route: '/api/v1/data', method: 'GET' };
    const otherComponent = { alertname: 'VigilRouterImportFailed', source: 'prometheus', service: 'svc-c', component: 'cache', severity: 'high', router: 'cache' };
    const otherService = { ...sameRule, service: 'svc-c-other' };
    // Service level: "(service)" on both sides (c), and a rule alert of no component (c').
    const impactService = { alertname: 'VigilBusinessImpact', service: 'svc-c', component: '(service)', severity: 'critical', priority: 'P0', rule: 'telemetry-silent', escalation: '0' };
    const silentRule = { alertname: 'VigilTelemetrySilent', source: 'prometheus', service: 'svc-c', component: '(service)', severity: 'critical' };
    const noComponentRule = { alertname: 'VigilHighErrorRate', source: 'prometheus', service: 'svc-c', severity: 'high' };
    // Contrived: the evaluator reporting on itself must not hold back VigilEvaluatorDown.
    const evalSelf = { alertname: 'VigilBusinessImpact', service: 'vigil-evaluator', component: '(service)', severity: 'high', priority: 'P1', rule: 'x', escalation: '0' };
    const evalDown = { alertname: 'VigilEvaluatorDown', source: 'prometheus', service: 'vigil-evaluator', component: '(service)', severity: 'critical' };
    await post(
      { labels: impact, annotations: { summary: 'svc-c: database is failing' } },
      { labels: sameRule },
      { labels: otherComponent },
      { labels: otherService },
      { labels: impactService },
      { labels: silentRule },
      { labels: noComponentRule },
      { labels: evalSelf },
      { labels: evalDown },
    );
    await waitDelivered('/incident-log', { service: 'svc-c', component: 'database', alertname: 'VigilBusinessImpact' });
    await waitDelivered('/incident-log', { service: 'svc-c', component: 'cache' });
    await waitDelivered('/incident-log', { service: 'svc-c-other' });
    await waitDelivered('/incident-log', { alertname: 'VigilEvaluatorDown' });
    await sleep(GRACE_MS);

    expect(firingAt('/incident-log', { alertname: 'VigilEndpointProbeFailing', service: 'svc-c' }), 'same service and component').to.equal(false);
    expect(firingAt('/incident-log', { alertname: 'VigilTelemetrySilent', service: 'svc-c' }), '(service) on both sides').to.equal(false);
    expect(firingAt('/incident-log', { alertname: 'VigilHighErrorRate', service: 'svc-c' }), 'no component vs (service)').to.equal(false);
    // One page per failure: the evaluator's, not also the rule's.
    const pages = pdEvents().filter((e) => e.payload?.source === 'svc-c' && e.event_action === 'trigger');
    expect(pages.map((e) => `${e.payload.class}/${e.payload.component}`).sort()).to.deep.equal(['VigilBusinessImpact/(service)', 'VigilBusinessImpact/database']);
    for (const l of [sameRule, silentRule, noComponentRule]) expect((await statusOf(l)).state, l.alertname).to.equal('suppressed');
    for (const l of [impact, otherComponent, otherService, impactService, evalDown]) expect((await statusOf(l)).state, `${l.alertname} ${l.service}/${l.component}`).to.equal('active');
  });

  it('no alert inhibits itself: two alerts matching both sides of rule (c) both get through', async () => {
    const a = { alertname: 'VigilBusinessImpact', source: 'prometheus', service: 'svc-self', component: 'x', severity: 'high' };
    const b = { ...a, severity: 'medium' };
    await post({ labels: a }, { labels: b });
    await waitDelivered('/incident-log', { service: 'svc-self', severity: 'high' });
    await waitDelivered('/incident-log', { service: 'svc-self', severity: 'medium' });
    expect((await statusOf(a)).state).to.equal('active');
    expect((await statusOf(b)).state).to.equal('active');
  });

  it('every notification so far was accepted (Alertmanager logged no failed notify)', () => {
    expect(am!.logs(200)).to.not.match(/Notify for alerts failed|level=ERROR/);
  });

  it('an alert no route takes reaches Slack #alerts flagged UNROUTED', async () => {
    await post({ labels: { alertname: 'SomethingOdd', service: 'svc-odd', severity: 'info' }, annotations: { summary: 'odd' } });
    const r = await hooks.waitFor((x) => x.path === '/slack/alerts' && JSON.stringify(x.body).includes('svc-odd'));
    expect(r.body.attachments[0].title).to.match(/^\[UNROUTED\]/);
    expect(r.body.attachments[0].text).to.contain('severity "info"');
  });
});
