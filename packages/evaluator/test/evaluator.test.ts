/**
 * The evaluator in-process: signals in, status API and its own telemetry out,
 * config errors and the CLI.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { pino } from 'pino';
import { ConfigError } from '@vigil/sdk';
import { loadConfig } from '../src/config/load.js';
import { EvaluatorConfig, type EvaluatorConfigInput } from '../src/config/schema.js';
import { Evaluator } from '../src/evaluator.js';
import type { Signal } from '../src/signals/types.js';
import { freePort, startAlertmanager, startWebhookReceiver, type Alertmanager, type WebhookReceiver } from '../../../test/helpers/rig.js';

const base: EvaluatorConfigInput = {
  server: { host: '127.0.0.1', port: 0 },
  source: { type: 'otlp' },
  rules: [{ name: 'auth', match: { component: 'authentication' }, impact: { level: 'high', priority: 'P1', revenue: { amount: 1000, currency: 'EUR' }, customers: 'everyone' } }],
  policies: {
    critical: { channels: ['pager'] },
    high: { channels: ['chat'] },
    medium: { channels: ['chat'] },
    low: { channels: ['mail'] },
  },
  notifiers: { console: { type: 'console' } },
};

const CLI = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

const signal = (over: Partial<Signal> = {}): Signal => ({ kind: 'import', service: 'api', instance: 'i-1', component: 'authentication', subject: 'auth', failing: true, labels: { 'error.type': 'ERR_MODULE_NOT_FOUND' }, observedAt: Date.now(), ...over });

describe('evaluator: instance lifecycle (stopped, gone, no running instance)', () => {
  const S = 1000;
  const lifecycle = (instance: string, stopped: boolean, at: number): Signal => ({ kind: 'lifecycle', service: 'api', instance, component: '', subject: 'running', failing: stopped, labels: {}, observedAt: at });
  /** An evaluator on a clock of its own; `run(at)` evaluates at that time and returns `status alert-id` of what it sent. */
  function rig(over: Partial<EvaluatorConfigInput> = {}) {
    let t = 0;
    const ev = new Evaluator(EvaluatorConfig.parse({ ...base, silentAfter: '60s', staleAfter: '30s', ...over }), { logger: pino({ level: 'silent' }), now: () => t });
    return {
      ev,
      ingest: (signals: Signal[], at: number) => ev.store.ingest(signals, at),
      run: (at: number) => {
        t = at;
        return ev.evaluate().map((n) => `${n.status} ${n.id}`);
      },
    };
  }

  it('a clean stop resolves the instance\'s firing alert at once, and nothing is paged past silentAfter', () => {
    const r = rig();
    r.ingest([signal({ observedAt: 0 }), lifecycle('i-1', false, 0)], 0);
    expect(r.run(1 * S)).to.deep.equal(['firing api|authentication|0']);
    r.ingest([lifecycle('i-1', true, 2 * S)], 2 * S);
    expect(r.run(3 * S)).to.deep.equal(['resolved api|authentication|0']);
    expect(r.run(600 * S)).to.deep.equal([]);
    expect(r.ev.status().alerts).to.deep.equal([]);
  });

  it('a killed instance: its alert holds until silentAfter, then becomes the one silence alert, which resolves when the service is heard again', () => {
    const r = rig();
    r.ingest([signal({ observedAt: 0 }), lifecycle('i-1', false, 0)], 0);
    expect(r.run(1 * S)).to.deep.equal(['firing api|authentication|0']);
    expect(r.run(45 * S), 'stale, not yet gone').to.deep.equal([]);
    expect(r.run(61 * S).sort()).to.deep.equal(['firing api||0', 'resolved api|authentication|0']);
    expect(r.run(120 * S)).to.deep.equal([]);
    r.ingest([signal({ instance: 'i-2', failing: false, observedAt: 130 * S }), lifecycle('i-2', false, 130 * S)], 130 * S);
    expect(r.run(131 * S)).to.deep.equal(['resolved api||0']);
    expect(r.run(150 * S)).to.deep.equal([]);
  });

  it('alwaysRunning: the last instance stopped cleanly → one no_instance alert with its own summary; resolved when an instance runs again', () => {
    const r = rig({ services: { api: { alwaysRunning: true } } });
    r.ingest([signal({ failing: false, observedAt: 0 }), lifecycle('i-1', false, 0)], 0);
    expect(r.run(1 * S)).to.deep.equal([]);
    r.ingest([lifecycle('i-1', true, 2 * S)], 2 * S);
    expect(r.run(3 * S)).to.deep.equal(['firing api||0']);
    const alert = r.ev.status().alerts[0]!;
    expect(alert.signals.map((s) => `${s.kind} ${s.subject}`)).to.deep.equal(['no_instance running instance']);
    expect(r.run(600 * S)).to.deep.equal([]);
    r.ingest([lifecycle('i-2', false, 601 * S)], 601 * S);
    expect(r.run(602 * S)).to.deep.equal(['resolved api||0']);
  });

  it('a service not configured alwaysRunning is retired quietly', () => {
    const r = rig({ services: { other: { alwaysRunning: true } } });
    r.ingest([lifecycle('i-1', false, 0)], 0);
    r.ingest([lifecycle('i-1', true, 2 * S)], 2 * S);
    expect([r.run(3 * S), r.run(600 * S)]).to.deep.equal([[], []]);
  });
});

describe('evaluator', () => {
  it('serves its status: services, components, impact, active alerts with escalation, notifiers', async () => {
    const ev = new Evaluator(EvaluatorConfig.parse(base), { logger: pino({ level: 'silent' }) });
    const { url } = await ev.start();
    try {
      expect((await fetch(`${url}/ready`)).status).to.equal(200);
      ev.store.ingest([signal(), signal({ kind: 'route', subject: 'POST /login' })], Date.now());
      ev.evaluate();
      const status = (await (await fetch(`${url}/api/v1/status`)).json()) as ReturnType<Evaluator['status']>;
      expect(status.source.type).to.equal('otlp');
      expect(status.services[0]!.service).to.equal('api');
      expect(status.alerts).to.have.length(1);
      expect(status.alerts[0]).to.deep.include({ service: 'api', component: 'authentication', state: 'firing', escalationLevel: 0, rule: 'auth' });
      expect(status.alerts[0]!.impact).to.deep.include({ level: 'high', priority: 'P1', customers: 'everyone' });
      expect(status.alerts[0]!.signals.map((s) => `${s.kind} ${s.subject}`)).to.deep.equal(['import auth', 'route POST /login']);
      expect(status.history.map((h) => h.status)).to.deep.equal(['firing']);
      expect(status.notifiers[0]).to.deep.include({ name: 'console', type: 'console' });
      expect((await fetch(`${url}/api/v1/status`, { method: 'POST' })).status).to.equal(405);
      expect((await fetch(`${url}/nope`)).status).to.equal(404);
    } finally {
      await ev.stop();
    }
  });

  it('exports its own telemetry: impact level, revenue at risk, notifications, evaluation time, up', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const provider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 })] });
    const ev = new Evaluator(EvaluatorConfig.parse(base), { logger: pino({ level: 'silent' }), meter: provider.getMeter('test') });
    ev.store.ingest([signal()], Date.now());
    ev.evaluate();
    await ev.notifiers[0]!.flush(1000);
    await provider.forceFlush();
    const points = new Map<string, Array<{ value: unknown; attributes: Record<string, unknown> }>>();
    for (const rm of exporter.getMetrics()) for (const sm of rm.scopeMetrics) for (const m of sm.metrics) points.set(m.descriptor.name, m.dataPoints as never);
    expect(points.get('vigil.impact.level')).to.deep.equal([{ ...points.get('vigil.impact.level')![0], value: 3, attributes: { 'vigil.service': 'api', 'vigil.component': 'authentication', 'vigil.rule': 'auth' } }]);
    expect(points.get('vigil.impact.revenue_at_risk')![0]).to.deep.include({ value: 1000, attributes: { 'vigil.service': 'api', 'vigil.component': 'authentication', 'vigil.rule': 'auth', 'vigil.currency': 'EUR' } });
    expect(points.get('vigil.notifications.sent')![0]).to.deep.include({ value: 1, attributes: { 'vigil.notifier': 'console' } });
    expect(points.get('vigil.evaluator.up')![0]!.value).to.equal(1);
    expect((points.get('vigil.evaluation.duration')![0]!.value as { count: number }).count).to.equal(1);
    await ev.stop();
    await provider.shutdown();
  });
});

describe('evaluator with its source down', () => {
  it('does not page "telemetry silent" for every service while Prometheus is unreachable', async () => {
    // The same store state with a source that works (the OTLP receiver): a silence page.
    const ev = new Evaluator(EvaluatorConfig.parse({ ...base, silentAfter: '1s', staleAfter: '1s' }), { logger: pino({ level: 'silent' }) });
    ev.store.ingest([signal({ failing: false })], Date.now() - 10_000); // last heard of 10 s ago: silent
    expect(ev.evaluate().map((n) => n.labels.component)).to.deep.equal(['(service)']);
    const ev2 = new Evaluator(EvaluatorConfig.parse({ ...base, source: { type: 'prometheus', url: 'http://127.0.0.1:9', interval: '1h', timeout: '500ms' }, silentAfter: '1s', staleAfter: '1s' }), { logger: pino({ level: 'silent' }) });
    ev2.store.ingest([signal({ failing: false })], Date.now() - 10_000);
    // Nor is an instance unheard of while the source is down taken for gone: its failing evidence stands.
    ev2.store.ingest([signal({ service: 'web', instance: 'w-1', observedAt: Date.now() - 10_000 })], Date.now() - 10_000);
    const { url } = await ev2.start(); // polls once, fails: source down
    try {
      await new Promise((r) => setTimeout(r, 800));
      expect(ev2.evaluate()).to.deep.equal([]);
      expect(ev2.status().alerts.map((a) => `${a.key} ${a.state}`)).to.deep.equal(['web|authentication firing']);
      const ready = await fetch(`${url}/ready`);
      expect(ready.status).to.equal(503);
      expect(((await ready.json()) as { output: string }).output).to.match(/^prometheus source down/);
    } finally {
      await ev2.stop();
      await ev.stop();
    }
  });
});

describe('evaluator config errors', () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(path.join(tmpdir(), 'vigil-evaluator-'))));
  after(() => rm(dir, { recursive: true, force: true }));

  const write = async (name: string, text: string) => {
    const file = path.join(dir, name);
    await writeFile(file, text);
    return file;
  };
  const good = `source: { type: otlp }
rules:
  - name: auth
    match: { component: authentication }
    impact: { level: critical, priority: P0, context: AUTH }
contexts:
  AUTH: { channels: [pager] }
policies:
  critical: { channels: [pager], escalation: [{ after: 2m }] }
  high: { channels: [chat] }
  medium: { channels: [chat] }
  low: { channels: [mail] }
notifiers:
  am: { type: alertmanager, urls: [http://127.0.0.1:9093] }
`;

  // One row per mistake: the path the error must name and words it must say.
  const table: Array<[string, string, string, RegExp]> = [
    ['level typo', good.replace('level: critical', 'level: urgent'), 'rules.0.impact.level', /expected one of "critical"\|"high"\|"medium"\|"low"/],
    ['bad duration', good.replace('after: 2m', 'after: 2 minutes'), 'policies.critical.escalation.0.after', /expected a duration/],
    ['unknown context', good.replace('context: AUTH', 'context: NOPE'), 'rules.0.impact.context', /no context "NOPE" in "contexts"/],
    ['unknown key', good.replace('source: { type: otlp }', 'source: { type: otlp, port: 1 }'), 'source', /unknown key "port"/],
    ['unknown source', good.replace('type: otlp', 'type: kafka'), 'source.type', /Expected 'otlp' \| 'prometheus'/],
    ['missing policy', good.replace('  low: { channels: [mail] }\n', ''), 'policies.low', /expected object/],
    ['no notifiers', good.slice(0, good.indexOf('notifiers:')) + 'notifiers: {}\n', 'notifiers', /at least one notifier/],
    ['bad url', good.replace('http://127.0.0.1:9093', 'not a url'), 'notifiers.am.urls.0', /URL/i],
    ['bad label regex', good.replace('match: { component: authentication }', 'match: { labels: { error.type: "/[TIMEOUT/" } }'), 'rules.0.match.labels.error.type', /valid regular expression/],
    ['unordered escalation', good.replace('escalation: [{ after: 2m }]', 'escalation: [{ after: 2m }, { after: 1m }]'), 'policies.critical.escalation.1.after', /increasing/],
    ['retain too short', good.replace('source: { type: otlp }', 'source: { type: otlp }\nretain: 30s'), 'retain', /retain > silentAfter/],
    ['default context unknown', good.replace('source: { type: otlp }', 'source: { type: otlp }\ndefaultImpact: { level: low, priority: P3, context: GHOST }'), 'defaultImpact.context', /no context "GHOST"/],
    ['duplicate rule', good.replace('rules:\n', 'rules:\n  - name: auth\n    impact: { level: low, priority: P3 }\n'), 'rules.1.name', /used twice/],
  ];
  for (const [name, text, where, words] of table) {
    it(`${name}: names the file, the path and the expectation`, async () => {
      const file = await write(`${name.replace(/\s/g, '-')}.yaml`, text);
      const err = await loadConfig(file).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(ConfigError);
      const issue = (err as ConfigError).issues.find((i) => i.path === where);
      expect(issue, (err as Error).message).to.exist;
      expect(issue!.message).to.match(words);
      expect((err as Error).message).to.contain(`Invalid evaluator config ${file}`);
    });
  }

  it('the example config is valid', async () => {
    const config = await loadConfig(fileURLToPath(new URL('../../../examples/marketedge-api/evaluator.yaml', import.meta.url)));
    expect(config.rules.map((r) => r.name)).to.deep.equal(['telemetry-silent', 'telemetry-rejected', 'no-running-instance', 'authentication-failure', 'zebra-admin-access', 'user-management', 'data-access']);
  });

  describe('vigil-evaluator CLI', function () {
    // Each run starts node + tsx cold; on a loaded 2-core machine that alone can take tens of seconds.
    this.timeout(120_000);
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(process.execPath, ['--import', TSX, CLI, ...args], { timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code) : 0, stdout, stderr })),
      );

    it('--check: 0 for a valid config, 2 with the error for a bad one', async () => {
      const ok = await run(['--config', await write('ok.yaml', good), '--check']);
      expect(ok.code, ok.stderr).to.equal(0);
      expect(ok.stdout).to.match(/valid \(1 rules, 1 notifiers, source otlp\)/);
      const bad = await run(['--config', await write('bad.yaml', good.replace('level: critical', 'level: urgent')), '--check']);
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.match(/bad\.yaml:5:\d+ rules\.0\.impact\.level/);
      expect((await run(['--config', path.join(dir, 'missing.yaml')])).stderr).to.contain('ENOENT');
      expect((await run(['--bogus'])).code).to.equal(2);
    });

    it('runs until SIGTERM, answering on its port, then exits 0', async () => {
      const { spawn } = await import('node:child_process');
      const file = await write('run.yaml', good.replace('notifiers:\n  am: { type: alertmanager, urls: [http://127.0.0.1:9093] }', 'notifiers:\n  console: { type: console }'));
      const child = spawn(process.execPath, ['--import', TSX, CLI, '--config', file, '--port', '0'], { env: { ...process.env, OTEL_SDK_DISABLED: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const url = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no listening line:\n${out}`)), 60_000);
        child.stdout.on('data', () => {
          const m = /listening on (http:\/\/[^" ]+)/.exec(out);
          if (m) {
            clearTimeout(t);
            resolve(m[1]!);
          }
        });
      });
      expect((await fetch(`${url}/health`)).status).to.equal(200);
      child.kill('SIGTERM');
      expect(await exited).to.equal(0);
    });
  });
});

describe('evaluator: a refused sender', () => {
  it('a failing rejected signal is one alert, not also "silent"; no heartbeat; kept across a restart and cleared by the next accepted batch', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vigil-rejected-'));
    const config = EvaluatorConfig.parse({ ...base, silentAfter: '1s', staleAfter: '1s', state: { file: path.join(dir, 'state.json') } });
    const rejected = (failing: boolean): Signal => ({ kind: 'rejected', service: 'api', instance: '', component: '', subject: 'telemetry', failing, labels: {}, observedAt: Date.now() });
    const ev = new Evaluator(config, { logger: pino({ level: 'silent' }) });
    try {
      ev.store.ingest([signal({ failing: false })], Date.now() - 10_000); // heard of 10 s ago: silent…
      ev.store.ingest([rejected(true)], Date.now()); // …because its batches are refused now
      const [page] = ev.evaluate();
      expect(page!.labels).to.include({ service: 'api', component: '(service)', rule: 'default' });
      expect(page!.annotations.summary).to.equal('telemetry rejected from api: the evaluator refuses its batches');
      expect(page!.annotations.affected).to.equal('rejected telemetry');
      expect(ev.store.services()[0]!.lastSeen, 'a refused batch is no heartbeat').to.be.below(Date.now() - 9000);
      await ev.stop();

      // Restarted from the state file: the alert holds; the sender's next accepted batch clears it.
      const again = new Evaluator(config, { logger: pino({ level: 'silent' }) });
      const { url } = await again.start();
      try {
        expect(again.status().alerts.map((a) => `${a.service} ${a.state} ${a.signals.map((s) => s.kind)}`)).to.deep.equal(['api firing rejected']);
        const accepted = await fetch(`${url}/v1/metrics`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ resourceMetrics: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'api' } }] } }] }),
        });
        expect(accepted.status).to.equal(200);
        expect(again.store.active().filter((s) => s.kind === 'rejected')).to.deep.equal([]);
      } finally {
        await again.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('evaluator: hints from the real Alertmanager at start (a replica without a state file)', function () {
  this.timeout(60_000);
  let am: Alertmanager;
  let webhook: WebhookReceiver;
  before(async () => {
    webhook = await startWebhookReceiver();
    am = await startAlertmanager({
      config: ['route:', '  receiver: hook', '  group_wait: 1s', 'receivers:', '  - name: hook', '    webhook_configs:', `      - url: '${webhook.url}/am'`, ''].join('\n'),
    });
  });
  after(async () => {
    await am?.stop();
    await webhook?.stop();
  });

  it('a failing group takes the held start and level; a held alert not failing here gets nothing and expires after the warm-up', async () => {
    const T0 = Math.floor(Date.now() / 1000) * 1000;
    const startedElsewhere = T0 - 100_000;
    // What "another replica" sent: auth at level 1, billing at level 0.
    const post = (component: string, escalation: string) => ({ labels: { alertname: 'VigilBusinessImpact', service: 'api', component, escalation }, annotations: {}, startsAt: new Date(startedElsewhere).toISOString() });
    const res = await fetch(`${am.url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([post('authentication', '1'), post('billing', '0')]) });
    expect(res.status).to.equal(200);

    const clock = { t: T0 };
    const ev = new Evaluator(
      EvaluatorConfig.parse({ ...base, staleAfter: '30s', policies: { ...base.policies, high: { channels: ['chat'], for: '1m', escalation: [{ after: '1m' }, { after: '10m' }] } }, notifiers: { am: { type: 'alertmanager', urls: [am.url], resend: '1h' } } }),
      { logger: pino({ level: 'silent' }), now: () => clock.t },
    );
    await ev.start();
    try {
      expect(ev.status().hints?.map((h) => `${h.component} ${h.escalationLevel} ${h.startsAt}`).sort()).to.deep.equal([
        `authentication 1 ${new Date(startedElsewhere).toISOString()}`,
        `billing 0 ${new Date(startedElsewhere).toISOString()}`,
      ]);
      ev.store.ingest([signal({ observedAt: clock.t })], clock.t);
      clock.t += 1000;
      // Its own `for` (1 m) has not passed, yet it fires: at the held level and start, not level 0.
      const sent = ev.evaluate();
      expect(sent.map((n) => `${n.status} ${n.id} ${n.startsAt.getTime()}`)).to.deep.equal([`firing api|authentication|1 ${startedElsewhere}`]);
      // Warm-up over (OTLP: staleAfter): the billing hint, never failing here, is dropped without a word to anyone.
      clock.t = T0 + 31_000;
      ev.store.ingest([signal({ observedAt: clock.t })], clock.t);
      expect(ev.evaluate()).to.deep.equal([]);
      expect(ev.status().hints).to.equal(undefined);
      // billing fails now: the expired hint no longer applies; it fires on its own (medium, no `for`) from its own start.
      const billingAt = clock.t;
      ev.store.ingest([signal({ component: 'billing', subject: 'billing', observedAt: billingAt })], clock.t);
      clock.t += 1000;
      expect(ev.evaluate().map((n) => `${n.status} ${n.id} ${n.startsAt.getTime()}`)).to.deep.equal([`firing api|billing|0 ${billingAt}`]);
      await ev.notifiers[0]!.flush(5_000);
      const held = await am.alerts();
      expect(held.map((a) => `${a.labels.component} ${a.labels.escalation}`).sort()).to.deep.include.members(['authentication 1', 'billing 0']);
      // Exactly what was posted: the adopted level 1 (no level-0 auth alert re-opened).
      expect(held.filter((a) => a.labels.component === 'authentication' && a.labels.rule === 'auth').map((a) => [a.labels.escalation, Date.parse(a.startsAt)])).to.deep.equal([['1', startedElsewhere]]);
      expect(held.filter((a) => a.labels.component === 'authentication' && a.labels.escalation === '0')).to.deep.equal([]);
    } finally {
      await ev.stop();
    }
  });

  it('an Alertmanager that is down: the evaluator starts anyway, with no hints', async () => {
    const ev = new Evaluator(EvaluatorConfig.parse({ ...base, notifiers: { am: { type: 'alertmanager', urls: [`http://127.0.0.1:${await freePort()}`] } } }), { logger: pino({ level: 'silent' }) });
    await ev.start();
    try {
      expect(ev.status().hints).to.equal(undefined);
      expect(ev.ready()).to.deep.equal({ ready: true });
    } finally {
      await ev.stop(100);
    }
  });
});
