import { expect } from 'chai';
import { EvaluatorConfig, type EvaluatorConfigInput } from '../src/config/schema.js';
import { step, escalationLevelAt, type AlertState } from '../src/policies/engine.js';
import { assess, matches } from '../src/rules/impact.js';
import type { Signal } from '../src/signals/types.js';

const config = EvaluatorConfig.parse({
  source: { type: 'otlp' },
  rules: [
    { name: 'silent', match: { signal: 'silent' }, impact: { level: 'critical', priority: 'P0' } },
    { name: 'auth', match: { component: 'authentication' }, impact: { level: 'critical', priority: 'P0', revenue: { amount: 925000, currency: 'GBP' }, customers: 'All users', context: 'CRITICAL_AUTH' } },
    { name: 'admin', match: { component: ['admin'], signal: ['import', 'route', 'probe', 'flow'] }, impact: { level: 'high', priority: 'P1', revenue: { amount: 925000, currency: 'GBP' }, customers: 'Admin users', context: 'ZEBRA' } },
    { name: 'db-timeouts', match: { labels: { 'error.type': '/TIMEOUT$/' } }, impact: { level: 'low', priority: 'P3' } },
  ],
  policies: {
    critical: { channels: ['pagerduty'], for: 0, escalation: [{ after: '2m', channels: ['phone'] }] },
    high: { channels: ['slack-alerts'], for: '30s', escalation: [{ after: '5m' }] },
    medium: { channels: ['slack-alerts', 'email-digest'], for: '1m', reminder: '10m' },
    low: { channels: ['email-digest'], for: '5m', resolve: false },
  },
  contexts: {
    CRITICAL_AUTH: { channels: ['pagerduty-critical', 'slack-emergency'], escalation: [{ after: '120s' }], headline: 'CRITICAL' },
    ZEBRA: { channels: ['slack-zebra'], escalation: [{ after: '300s', channels: ['pagerduty'] }], headline: 'ZEBRA ALERT' },
  },
  notifiers: { console: { type: 'console' } },
} satisfies EvaluatorConfigInput);

const sig = (over: Partial<Signal>): Signal => ({ kind: 'import', service: 'api', instance: 'i1', component: 'users', subject: 'users', failing: true, labels: {}, observedAt: 0, ...over });

describe('impact rules', () => {
  // One row per signal: the rule that decides (first match wins), or default.
  const table: Array<[string, Partial<Signal>, string]> = [
    ['silence beats everything', { kind: 'silent', component: '' }, 'silent'],
    ['any auth failure', { component: 'authentication', kind: 'probe' }, 'auth'],
    ['admin import', { component: 'admin', kind: 'import' }, 'admin'],
    ['admin dependency is not in the admin rule', { component: 'admin', kind: 'dependency', labels: {} }, 'default'],
    ['label regex', { component: 'database', kind: 'dependency', labels: { 'error.type': 'VIGIL_TIMEOUT' } }, 'db-timeouts'],
    ['label regex miss', { component: 'database', kind: 'dependency', labels: { 'error.type': 'ECONNREFUSED' } }, 'default'],
    ['anything else', { component: 'tools' }, 'default'],
  ];
  for (const [name, s, rule] of table) {
    it(`${name} → ${rule}`, () => expect(assess(config.rules, config.defaultImpact, [sig(s)]).rule).to.equal(rule));
  }

  it('a label condition needs the label', () => {
    expect(matches({ labels: { 'error.type': 'X' } }, sig({}))).to.equal(false);
  });
});

describe('alert policies', () => {
  const group = (signals: Signal[]) => new Map([[`${signals[0]!.service}|${signals[0]!.component}`, { service: signals[0]!.service, component: signals[0]!.component, assessment: assess(config.rules, config.defaultImpact, signals) }]]);
  const none = new Map();

  /** Runs the engine through `times` (ms), with the given groups at each time; returns what was sent, per time. */
  function run(timeline: Array<[number, ReturnType<typeof group> | typeof none]>) {
    let alerts = new Map<string, AlertState>();
    return timeline.map(([t, current]) => {
      const r = step(config, alerts, current, t);
      alerts = r.alerts;
      return r.send.map((n) => `${n.status}:${n.labels.severity}:esc${n.labels.escalation}:${n.labels.channels}`);
    });
  }

  it('critical fires at once with its context channels and escalates after 120 s to the next level, resolving the old one', () => {
    const auth = group([sig({ component: 'authentication', kind: 'route', observedAt: 0 })]);
    expect(run([[0, auth], [60_000, auth], [120_000, auth], [180_000, auth], [200_000, none]])).to.deep.equal([
      ['firing:critical:esc0:pagerduty-critical,slack-emergency'],
      [],
      ['resolved:critical:esc0:pagerduty-critical,slack-emergency', 'firing:critical:esc1:pagerduty-critical,slack-emergency'],
      [],
      ['resolved:critical:esc1:pagerduty-critical,slack-emergency'],
    ]);
  });

  it('high waits for its `for` (30 s), and a failure that clears before never pages', () => {
    const admin = group([sig({ component: 'admin', kind: 'import', observedAt: 0 })]);
    expect(run([[0, admin], [20_000, admin], [25_000, none], [30_000, none]])).to.deep.equal([[], [], [], []]);
    expect(run([[0, admin], [29_000, admin], [30_000, admin]])).to.deep.equal([[], [], ['firing:high:esc0:slack-zebra']]);
  });

  it('a context escalation adds its channels', () => {
    const admin = group([sig({ component: 'admin', kind: 'import', observedAt: 0 })]);
    const sent = run([[30_000, admin], [330_000, admin]]);
    expect(sent[1]).to.deep.equal(['resolved:high:esc0:slack-zebra', 'firing:high:esc1:slack-zebra,pagerduty']);
  });

  it('medium reminds every 10 minutes while firing', () => {
    const tools = group([sig({ component: 'tools', observedAt: 0 })]);
    const sent = run([[0, tools], [60_000, tools], [300_000, tools], [660_000, tools], [700_000, tools]]);
    expect(sent.map((s) => s.length)).to.deep.equal([0, 1, 0, 1, 0]);
  });

  it('low does not send a resolve when `resolve: false`', () => {
    const db = group([sig({ component: 'database', kind: 'dependency', labels: { 'error.type': 'VIGIL_TIMEOUT' }, observedAt: 0 })]);
    // It still tells Alertmanager the alert ended, quietly: the webhook and console notifiers skip it.
    expect(run([[0, db], [300_000, db], [301_000, none]])).to.deep.equal([[], ['firing:low:esc0:email-digest'], ['resolved:low:esc0:email-digest']]);
    let alerts = new Map<string, AlertState>();
    for (const [t, cur] of [[0, db], [300_000, db]] as const) alerts = step(config, alerts, cur, t).alerts;
    expect(step(config, alerts, none, 301_000).send[0]!.quiet).to.equal(true);
  });

  it('the notification carries impact, revenue, customers and business context', () => {
    const auth = group([sig({ component: 'authentication', kind: 'import', subject: 'auth', observedAt: 5 })]);
    const { send } = step({ ...config, publicUrl: 'http://127.0.0.1:9464' }, new Map(), auth, 1000);
    const n = send[0]!;
    expect(n.labels).to.include({ alertname: 'VigilBusinessImpact', service: 'api', component: 'authentication', severity: 'critical', priority: 'P0', rule: 'auth', business_context: 'CRITICAL_AUTH', escalation: '0' });
    expect(n.annotations).to.include({ revenue_at_risk: '£925,000', customers: 'All users', impact_level: 'critical' });
    expect(n.annotations.summary).to.equal('CRITICAL — api: authentication is failing (import auth)');
    expect(n.startsAt.getTime()).to.equal(1000);
    expect(n.generatorURL).to.equal('http://127.0.0.1:9464/api/v1/status#api%7Cauthentication');
  });

  it('escalation level is a function of time since firing', () => {
    const steps = [{ after: 120_000, channels: [] }, { after: 300_000, channels: [] }];
    expect([0, 119_999, 120_000, 299_999, 300_000, 1e9].map((t) => escalationLevelAt(steps, 0, t))).to.deep.equal([0, 0, 1, 1, 2, 2]);
  });
});
