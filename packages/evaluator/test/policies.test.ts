import { expect } from 'chai';
import { EvaluatorConfig, type EvaluatorConfigInput } from '../src/config/schema.js';
import { step, escalationLevelAt, hintsFrom, type AlertState } from '../src/policies/engine.js';
import { SignalStore } from '../src/state/store.js';
import { assess, groupSignals, matches } from '../src/rules/impact.js';
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

  it('the resolve of a label set replaced on escalation says so (`replaced`); the resolve of the end does not', () => {
    const auth = group([sig({ component: 'authentication', kind: 'route', observedAt: 0 })]);
    let r = step(config, new Map(), auth, 0);
    r = step(config, r.alerts, auth, 120_000);
    expect(r.send.map((n) => `${n.status} ${n.id} ${n.replaced ?? false}`)).to.deep.equal(['resolved api|authentication|0 true', 'firing api|authentication|1 false']);
    r = step(config, r.alerts, none, 130_000);
    expect(r.send.map((n) => `${n.status} ${n.id} ${n.replaced ?? false}`)).to.deep.equal(['resolved api|authentication|1 false']);
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
    // The signal's own time (firedAt = since + for), not the evaluation's: replicas agree on it.
    expect(n.startsAt.getTime()).to.equal(5);
    expect(n.generatorURL).to.equal('http://127.0.0.1:9464/api/v1/status#api%7Cauthentication');
  });

  describe('replicas agree (the start comes from the signals\' own times)', () => {
    /** A replica: its own store fed `points`, stepped on its own ticks; returns `t status esc startsAt` per notification. */
    function replica(points: Array<[number, boolean]>, ticks: number[]) {
      const store = new SignalStore({ silentAfter: 600_000, staleAfter: 300_000, retain: 3_600_000, alwaysRunning: () => false }, () => 0);
      let alerts = new Map<string, AlertState>();
      const out: string[] = [];
      let next = 0;
      for (const t of ticks) {
        for (; next < points.length && points[next]![0] <= t; next++) store.ingest([sig({ component: 'admin', kind: 'import', failing: points[next]![1], observedAt: points[next]![0] })], points[next]![0]);
        const current = new Map([...groupSignals(store.active(t))].map(([k, signals]) => [k, { service: 'api', component: signals[0]!.component, assessment: assess(config.rules, config.defaultImpact, signals) }]));
        const r = step(config, alerts, current, t);
        alerts = r.alerts;
        out.push(...r.send.map((n) => `${n.status} esc${n.labels.escalation} startsAt=${n.startsAt.getTime()}`));
      }
      return { out, alerts };
    }
    // admin: high, for 30 s, escalation after 300 s. Failing points every 5 s from 2 s on.
    const points: Array<[number, boolean]> = Array.from({ length: 100 }, (_, i) => [2_000 + i * 5_000, true]);
    const ticksFrom = (first: number, until = 400_000) => Array.from({ length: Math.floor((until - first) / 1000) + 1 }, (_, i) => first + i * 1000);

    it('two replicas on different tick phases, fed the same points, send the same startsAt (first failing point + for)', () => {
      const a = replica(points, ticksFrom(300));
      const b = replica(points, ticksFrom(800));
      expect(a.out).to.deep.equal(['firing esc0 startsAt=32000', 'resolved esc0 startsAt=32000', 'firing esc1 startsAt=32000']);
      expect(b.out).to.deep.equal(a.out);
    });

    it('a replica that saw the failure later but was fed the earlier points too (it keeps when the run began) agrees', () => {
      const late = replica(points, ticksFrom(60_800));
      expect(late.out[0]).to.equal('firing esc0 startsAt=32000');
      expect([...late.alerts.values()][0]!.firedAt).to.equal(32_000);
    });

    it('at the same instant both escalate (level from the shared firedAt)', () => {
      const a = replica(points, [...ticksFrom(300, 100_300), 331_999, 332_000]);
      const b = replica(points, [...ticksFrom(800, 100_800), 331_999, 332_000]);
      expect([a.out.slice(-2), b.out.slice(-2)]).to.deep.equal([
        ['resolved esc0 startsAt=32000', 'firing esc1 startsAt=32000'],
        ['resolved esc0 startsAt=32000', 'firing esc1 startsAt=32000'],
      ]);
    });

    it('a passing point ends the run: the next failure starts from its own first point', () => {
      const flap: Array<[number, boolean]> = [[2_000, true], [7_000, false], [12_000, true], [17_000, true], [22_000, true], [27_000, true], [32_000, true], [37_000, true], [42_000, true], [47_000, true]];
      expect(replica(flap, ticksFrom(300, 50_000)).out).to.deep.equal(['firing esc0 startsAt=42000']);
    });
  });

  describe('hints from Alertmanager', () => {
    const admin = group([sig({ component: 'admin', kind: 'import', observedAt: 100_000 })]);
    const amAlert = (escalation: string, startsAt: number, over: Record<string, string> = {}) => ({ labels: { alertname: 'VigilBusinessImpact', service: 'api', component: 'admin', escalation, ...over }, startsAt });

    it('reduce to one per group: the earliest start, the highest level; malformed ones are skipped', () => {
      const hints = hintsFrom([amAlert('0', 50_000), amAlert('1', 60_000), amAlert('x', 1), { labels: { component: 'admin', escalation: '3' }, startsAt: 1 }, amAlert('2', 70_000, { component: '(service)' })]);
      expect([...hints]).to.deep.equal([
        ['api|admin', [{ service: 'api', component: 'admin', startsAt: 50_000, escalationLevel: 1 }]],
        ['api|', [{ service: 'api', component: '', startsAt: 70_000, escalationLevel: 2 }]],
      ]);
    });

    it('a failing group adopts the hint\'s start and level at once (no level-0 page), and escalates on the others\' schedule', () => {
      const hints = hintsFrom([amAlert('0', 30_000), amAlert('1', 30_000)]);
      let r = step(config, new Map(), admin, 101_000, hints);
      // Fired here at once although this replica's `for` (30 s) has not passed since its own first point.
      expect(r.send.map((n) => `${n.status} esc${n.labels.escalation} ${n.startsAt.getTime()}`)).to.deep.equal(['firing esc1 30000']);
      expect(hints.size, 'a hint is used once').to.equal(0);
      r = step(config, r.alerts, admin, 329_999);
      expect(r.send).to.deep.equal([]);
      r = step(config, r.alerts, admin, 330_000);
      expect(r.send).to.deep.equal([]); // level 1 already: the 300 s escalation is what it had
    });

    it('the hint\'s level wins over this clock\'s lower one; a later escalation step still comes from the hint\'s start', () => {
      const plain = group([sig({ component: 'tools', kind: 'import', observedAt: 100_000 })]);
      const hints = hintsFrom([amAlert('1', 50_000, { component: 'tools' })]);
      const med = EvaluatorConfig.parse({ ...config, policies: { ...config.policies, medium: { channels: ['c'], escalation: [{ after: '60s' }, { after: '120s' }] } } } as EvaluatorConfigInput);
      let r = step(med, new Map(), plain, 101_000, hints);
      expect(r.send.map((n) => n.labels.escalation)).to.deep.equal(['1']);
      r = step(med, r.alerts, plain, 169_999);
      expect(r.send).to.deep.equal([]);
      r = step(med, r.alerts, plain, 170_000);
      expect(r.send.map((n) => `${n.status} ${n.labels.escalation}`)).to.deep.equal(['resolved 1', 'firing 2']);
    });

    it('nothing is sent for a hint whose group is not failing here, nor for another environment\'s', () => {
      const hints = hintsFrom([amAlert('1', 30_000, { component: 'billing' }), amAlert('1', 30_000, { environment: 'staging' })]);
      const r = step(config, new Map(), admin, 101_000, hints);
      // admin (production: no environment) fails here, but the hint is staging's: this replica's own `for` applies.
      expect(r.send).to.deep.equal([]);
      expect([...r.alerts.values()].map((a) => a.state)).to.deep.equal(['pending']);
      expect(hints.size).to.equal(2);
    });

    it('an alert already firing here (restored from the state file) ignores the hint', () => {
      let r = step(config, new Map(), admin, 130_000);
      expect(r.send.map((n) => n.labels.escalation)).to.deep.equal(['0']);
      const hints = hintsFrom([amAlert('1', 10_000)]);
      r = step(config, r.alerts, admin, 131_000, hints);
      expect(r.send).to.deep.equal([]);
      expect(hints.size).to.equal(1);
    });
  });

  it('escalation level is a function of time since firing', () => {
    const steps = [{ after: 120_000, channels: [] }, { after: 300_000, channels: [] }];
    expect([0, 119_999, 120_000, 299_999, 300_000, 1e9].map((t) => escalationLevelAt(steps, 0, t))).to.deep.equal([0, 0, 1, 1, 2, 2]);
  });
});
