/**
 * The state file (`state.file`) and what a restart keeps: round trip, atomic
 * replacement under SIGKILL, corrupt / unreadable / other-version files set
 * aside, no duplicate page and escalation at the original time after a
 * restart, the warm-up (OTLP and Prometheus), undelivered notifications that
 * survive, and silence judged only over time the evaluator could hear.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { pino } from 'pino';
import { EvaluatorConfig, type EvaluatorConfigInput } from '../src/config/schema.js';
import { Evaluator } from '../src/evaluator.js';
import type { AlertNotification } from '../src/notifiers/types.js';
import { parseState, serializeState, STATE_VERSION, StateFile, type EvaluatorState } from '../src/state/persist.js';
import type { Signal } from '../src/signals/types.js';

const T0 = Date.parse('2030-01-01T10:00:00.000Z');

function captureLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

const signal = (over: Partial<Signal> = {}): Signal => ({
  kind: 'import',
  service: 'api',
  instance: 'i-1',
  component: 'authentication',
  subject: 'auth',
  failing: true,
  labels: { 'error.type': 'ERR_MODULE_NOT_FOUND' },
  observedAt: T0,
  ...over,
});

describe('state file', function () {
  this.timeout(30_000);
  let dir: string;
  let file: string;
  /** Evaluators and servers a test started, stopped even when it fails. */
  const cleanups: Array<() => unknown> = [];
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'vigil-state-'));
    file = path.join(dir, 'state.json');
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await rm(dir, { recursive: true, force: true });
  });
  const listen = async (handler: http.RequestListener) => {
    const server = http.createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  const config = (over: Partial<EvaluatorConfigInput> = {}) =>
    EvaluatorConfig.parse({
      server: { host: '127.0.0.1', port: 0 },
      source: { type: 'otlp' },
      interval: '1h', // the test evaluates by hand (start() evaluates once)
      staleAfter: '5s',
      silentAfter: '10s',
      rules: [
        { name: 'silent', match: { signal: 'silent' }, impact: { level: 'critical', priority: 'P0' } },
        { name: 'auth', match: { component: 'authentication' }, impact: { level: 'critical', priority: 'P0', context: 'AUTH' } },
      ],
      contexts: { AUTH: { channels: ['pager'], escalation: [{ after: '20s', channels: ['phone'] }] } },
      policies: { critical: { channels: ['pager'] }, high: { channels: ['chat'] }, medium: { channels: ['chat'] }, low: { channels: ['mail'] } },
      notifiers: { console: { type: 'console' } },
      state: { file },
      ...over,
    } satisfies EvaluatorConfigInput);

  /** An evaluator on a clock the test moves. */
  function evaluatorAt(clock: { t: number }, over: Partial<EvaluatorConfigInput> = {}, logger = pino({ level: 'silent' })) {
    const ev = new Evaluator(config(over), { logger, now: () => clock.t });
    cleanups.push(() => ev.stop(0).catch(() => undefined));
    return ev;
  }

  const brief = (ns: AlertNotification[]) => ns.map((n) => `${n.status} ${n.id}`);

  describe('the file', () => {
    const state = (): EvaluatorState => ({
      alerts: [
        {
          key: 'api|authentication',
          service: 'api',
          component: 'authentication',
          environment: 'prod',
          assessment: { rule: 'auth', impact: { level: 'critical', priority: 'P0', revenue: { amount: 925_000, currency: 'GBP' }, context: 'AUTH' }, signals: [signal({ environment: 'prod' })] },
          state: 'firing',
          since: T0,
          firedAt: T0 + 1000,
          escalationLevel: 1,
          lastSentAt: T0 + 21_000,
          sentLabels: { alertname: 'VigilBusinessImpact', escalation: '1' },
        },
        { key: 'api|', service: 'api', component: '', assessment: { rule: 'default', impact: { level: 'medium', priority: 'P2' }, signals: [] }, state: 'pending', since: T0, escalationLevel: 0 },
      ],
      signals: { services: [{ service: 'api', instances: [{ instance: 'i-1', lastSeen: T0, environment: 'prod', signals: [signal(), signal({ kind: 'probe', subject: 'GET /x', failing: false, unknown: true })] }] }] },
      outbox: {
        hook: [
          { id: 'api|authentication|1', status: 'firing', labels: { a: 'b' }, annotations: { summary: 's' }, startsAt: new Date(T0 + 1000) },
          { id: 'api|authentication|0', status: 'resolved', labels: { a: 'c' }, annotations: {}, startsAt: new Date(T0 + 1000), endsAt: new Date(T0 + 21_000), generatorURL: 'http://x/y', quiet: true },
        ],
      },
      history: [{ at: new Date(T0).toISOString(), status: 'firing', id: 'api|authentication|0', labels: { a: 'b' }, summary: 's' }],
    });

    it('round trip: what is written is read back the same, dates included', () => {
      const text = serializeState(state(), T0 + 30_000);
      expect(JSON.parse(text)).to.include({ format: 'vigil-evaluator-state', version: STATE_VERSION, savedAt: '2030-01-01T10:00:30.000Z' });
      const back = parseState(text);
      expect(back).to.deep.equal({ ok: true, savedAt: T0 + 30_000, state: state() });
    });

    it('is replaced atomically: SIGKILLed mid-write, the file is always one complete state', async function () {
      this.timeout(180_000); // six cold node + tsx starts; slow on a loaded machine
      // A child process rewrites a ~2 MB state in a loop; it is killed at random moments.
      const persist = fileURLToPath(new URL('../src/state/persist.ts', import.meta.url));
      const script = `
        import { writeFileAtomic } from ${JSON.stringify(persist)};
        const file = process.argv[1];
        for (let i = 0; ; i++) {
          const body = JSON.stringify({ generation: i, pad: 'x'.repeat(2_000_000 + (i % 7) * 1000) });
          writeFileAtomic(file, body);
          if (i === 0) process.stdout.write('ready\\n');
        }`;
      const generations: number[] = [];
      for (let round = 0; round < 6; round++) {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, file], { stdio: ['ignore', 'pipe', 'inherit'] });
        await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 150));
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
        const doc = JSON.parse(readFileSync(file, 'utf8')) as { generation: number; pad: string };
        expect(doc.pad.length, `generation ${doc.generation} is complete`).to.equal(2_000_000 + (doc.generation % 7) * 1000);
        generations.push(doc.generation);
      }
      console.log(`      6 SIGKILLs mid-write: the file held a complete state each time (generations ${generations.join(', ')})`);
      // A writer killed mid-write leaves its temp file: the next load removes it and reads the real one.
      writeFileSync(`${file}.tmp-99999`, '{"partial');
      const { logger } = captureLogger();
      expect(new StateFile(file, logger).load()).to.equal(undefined); // the loop's JSON is no state file…
      expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).to.deep.equal([]);
    });

    const unusable: Array<[string, string, 'corrupt' | 'unsupported', RegExp]> = [
      ['garbage', 'this is not json', 'corrupt', /not valid JSON/],
      ['a truncated file', serializeState(state(), T0).slice(0, 200), 'corrupt', /not valid JSON/],
      ['JSON of another program', '{"alerts": []}', 'corrupt', /not a Vigil evaluator state file/],
      ['a wrong shape inside', serializeState(state(), T0).replace('"state":"firing"', '"state":"burning"'), 'corrupt', /^alerts\.0\.state: /],
      ['another format version', serializeState(state(), T0).replace(`"version":${STATE_VERSION}`, '"version":2'), 'unsupported', /format version 2, this evaluator reads version 1 only/],
    ];
    for (const [what, text, kind, reason] of unusable) {
      it(`${what}: logged with the path and the reason, kept aside as .${kind}-<time>, the evaluator starts empty`, async () => {
        writeFileSync(file, text);
        const { logger, lines } = captureLogger();
        const clock = { t: T0 };
        const ev = evaluatorAt(clock, {}, logger);
        expect(ev.status().alerts).to.deep.equal([]);
        const error = lines.find((l) => l.level === 50)!;
        expect(error, JSON.stringify(lines)).to.exist;
        expect(error.stateFile).to.equal(file);
        expect(error.reason).to.match(reason);
        expect(error.msg).to.contain(file).and.contain('starting with no alerts');
        const aside = readdirSync(dir).filter((n) => n.startsWith(`state.json.${kind}-`));
        expect(aside).to.have.length(1);
        expect(error.keptAs).to.equal(path.join(dir, aside[0]!));
        expect(readFileSync(path.join(dir, aside[0]!), 'utf8')).to.equal(text);
        // It runs on, and its next save is a good file again.
        ev.store.ingest([signal()], clock.t);
        expect(brief(ev.evaluate())).to.deep.equal(['firing api|authentication|0']);
        expect(parseState(readFileSync(file, 'utf8')).ok).to.equal(true);
        await ev.stop();
      });
    }

    it('a path that cannot be read (a directory): logged, set aside, the evaluator starts empty', async () => {
      mkdirSync(file);
      const { logger, lines } = captureLogger();
      const ev = evaluatorAt({ t: T0 }, {}, logger);
      expect(ev.status().alerts).to.deep.equal([]);
      expect(lines.find((l) => l.level === 50)?.reason).to.match(/cannot be read \(EISDIR\)/);
      expect(readdirSync(dir).some((n) => n.startsWith('state.json.corrupt-'))).to.equal(true);
      await ev.stop();
    });

    it('no file yet: starts empty, says so at info, and writes one at the first change', async () => {
      const { logger, lines } = captureLogger();
      const clock = { t: T0 };
      const ev = evaluatorAt(clock, {}, logger);
      expect(lines.find((l) => l.msg === 'no state file yet: starting with no alerts')).to.exist;
      expect(existsSync(file)).to.equal(false);
      ev.store.ingest([signal()], clock.t);
      ev.evaluate();
      const saved = parseState(readFileSync(file, 'utf8'));
      expect(saved.ok && saved.state.alerts.map((a) => `${a.key} ${a.state}`)).to.deep.equal(['api|authentication firing']);
      await ev.stop();
    });
  });

  describe('a restart', () => {
    it('keeps a firing alert: no second page, escalation at firedAt + after (not restart + after), resolve after', async () => {
      const clock = { t: T0 };
      const first = evaluatorAt(clock);
      first.store.ingest([signal()], clock.t);
      expect(brief(first.evaluate())).to.deep.equal(['firing api|authentication|0']);
      clock.t += 8000;
      first.store.ingest([signal({ observedAt: clock.t })], clock.t);
      first.evaluate();
      // SIGKILL: no stop(), nothing saved past this point.

      clock.t += 2000; // restarted 10 s after firing
      const second = evaluatorAt(clock);
      const restored = second.status().alerts[0]!;
      expect(restored).to.deep.include({ key: 'api|authentication', state: 'firing', firedAt: new Date(T0).toISOString(), escalationLevel: 0 });
      const sends: string[] = [];
      for (; clock.t < T0 + 30_000; clock.t += 500) {
        second.store.ingest([signal({ observedAt: clock.t })], clock.t);
        for (const n of second.evaluate()) sends.push(`${((clock.t - T0) / 1000).toFixed(1)}s ${n.status} ${n.id}`);
      }
      // The escalation came 20 s after the original firing; a restart clock would have said 30 s.
      expect(sends).to.deep.equal(['20.0s resolved api|authentication|0', '20.0s firing api|authentication|1']);
      // Fixed: a healthy value from a live instance resolves it, with the labels it last fired with.
      second.store.ingest([signal({ failing: false, observedAt: clock.t })], clock.t);
      const resolved = second.evaluate();
      expect(brief(resolved)).to.deep.equal(['resolved api|authentication|1']);
      expect(resolved[0]!.labels).to.include({ escalation: '1', channels: 'pager,phone' });
      await second.stop();
      await first.stop();
    });

    it('Alertmanager hears the restored alert again with the same labels and startsAt (the same alert to it); a webhook hears nothing', async () => {
      const posts: Array<{ path: string; body: unknown }> = [];
      const base = await listen((req, res) => {
        // At start the Alertmanager notifier asks what Alertmanager holds: nothing here.
        if (req.method === 'GET') return void res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          posts.push({ path: req.url ?? '', body: JSON.parse(body) });
          res.writeHead(200).end('{}');
        });
      });
      const notifiers = {
        am: { type: 'alertmanager' as const, urls: [`${base}/am`], resend: '1h', retry: { initial: '50ms', max: '100ms' } },
        hook: { type: 'webhook' as const, url: `${base}/hook`, retry: { initial: '50ms', max: '100ms' } },
      };
      const clock = { t: T0 };
      const first = evaluatorAt(clock, { notifiers });
      await first.start();
      first.store.ingest([signal()], clock.t);
      first.evaluate();
      await first.notifiers[0]!.flush(2000);
      await first.notifiers[1]!.flush(2000);
      clock.t += 1000;
      first.evaluate(); // the queues are empty now: saved so
      await first.stop();
      expect(posts.map((p) => p.path)).to.deep.equal(['/am/api/v2/alerts', '/hook']);
      const [before] = posts[0]!.body as Array<{ labels: object; startsAt: string }>;

      clock.t += 5000;
      const second = evaluatorAt(clock, { notifiers });
      await second.start();
      await second.notifiers[0]!.flush(2000);
      second.store.ingest([signal({ observedAt: clock.t })], clock.t);
      expect(second.evaluate()).to.deep.equal([]);
      await second.stop();
      expect(posts.map((p) => p.path)).to.deep.equal(['/am/api/v2/alerts', '/hook', '/am/api/v2/alerts']);
      const [after] = posts[2]!.body as Array<{ labels: object; startsAt: string; endsAt?: string }>;
      expect(after!.labels).to.deep.equal(before!.labels);
      expect(after!.startsAt).to.equal(before!.startsAt).and.equal(new Date(T0).toISOString());
      expect(after!.endsAt).to.equal(undefined);
    });

    it('a notification queued for a webhook that was down is delivered after the restart, once', async () => {
      let up = false;
      const got: Array<{ status: string; id: string }> = [];
      const hookUrl = await listen((req, res) => {
        // Decided on arrival: a request aborted by the dying evaluator must not count once `up` flips.
        const accepted = up;
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          if (!accepted) return void res.writeHead(503).end();
          const p = JSON.parse(body) as { status: string; alert: { id: string } };
          got.push({ status: p.status, id: p.alert.id });
          res.writeHead(200).end('{}');
        });
      });
      const notifiers = { hook: { type: 'webhook' as const, url: `${hookUrl}/hook`, retry: { initial: '50ms', max: '100ms' } } };
      const clock = { t: T0 };
      const first = evaluatorAt(clock, { notifiers });
      first.store.ingest([signal()], clock.t);
      first.evaluate();
      await new Promise((r) => setTimeout(r, 300)); // a few failed attempts
      expect(first.status().notifiers[0]).to.deep.include({ queued: 1, sent: 0 });
      // SIGKILL: the process and its queue are gone (its retries end with it), nothing more saved.
      await first.notifiers[0]!.stop();

      up = true;
      clock.t += 3000;
      const second = evaluatorAt(clock, { notifiers });
      await second.start();
      await second.notifiers[0]!.flush(3000);
      second.store.ingest([signal({ observedAt: clock.t })], clock.t);
      second.evaluate();
      await new Promise((r) => setTimeout(r, 200));
      expect(got).to.deep.equal([{ status: 'firing', id: 'api|authentication|0' }]);
      // Delivered: the state file no longer lists it.
      clock.t += 1000;
      second.evaluate();
      const saved = parseState(readFileSync(file, 'utf8'));
      expect(saved.ok && saved.state.outbox).to.deep.equal({});
      await second.stop();
    });

    it('WARM-UP (OTLP): a restored alert with no signal yet is held for staleAfter, then resolves', async () => {
      const clock = { t: T0 };
      const first = evaluatorAt(clock, { retain: '1m', silentAfter: '30s', staleAfter: '5s' });
      first.store.ingest([signal()], clock.t);
      expect(brief(first.evaluate())).to.deep.equal(['firing api|authentication|0']);
      // Down for 2 minutes: longer than retain, so the restored store forgets the evidence.
      clock.t += 120_000;
      const second = evaluatorAt(clock, { retain: '1m', silentAfter: '30s', staleAfter: '5s', contexts: { AUTH: { channels: ['pager'] } } });
      expect(second.status().state).to.deep.include({ warmingUp: true, restored: { alerts: 1, savedAt: new Date(T0).toISOString() } });
      const sends: string[] = [];
      const t0 = clock.t;
      for (; clock.t <= t0 + 6000; clock.t += 250) for (const n of second.evaluate()) sends.push(`+${(clock.t - t0) / 1000}s ${n.status} ${n.id}`);
      expect(sends).to.deep.equal(['+5s resolved api|authentication|0']);
      expect(second.status().state!.warmingUp).to.equal(false);
      await second.stop();
      await first.stop();
    });

    it('WARM-UP (OTLP): fresh evidence during the warm-up is used at once, and the held alert is not paged again', async () => {
      const clock = { t: T0 };
      const first = evaluatorAt(clock);
      first.store.ingest([signal()], clock.t);
      first.evaluate();
      clock.t += 3000;
      const second = evaluatorAt(clock);
      expect(second.evaluate()).to.deep.equal([]); // held: the restored signals, nothing new
      second.store.ingest([signal({ instance: 'i-2', observedAt: clock.t })], clock.t);
      clock.t += 500;
      expect(second.evaluate()).to.deep.equal([]);
      clock.t += 10_000; // past the warm-up: the fresh evidence keeps it firing
      second.store.ingest([signal({ instance: 'i-2', observedAt: clock.t })], clock.t);
      expect(second.evaluate()).to.deep.equal([]);
      expect(second.status().alerts.map((a) => `${a.state} ${a.firedAt}`)).to.deep.equal([`firing ${new Date(T0).toISOString()}`]);
      await second.stop();
      await first.stop();
    });

    it('silence is judged only over time the evaluator could hear: no silence page for the restart, one silentAfter later', async () => {
      const clock = { t: T0 };
      const first = evaluatorAt(clock);
      first.store.ingest([signal({ failing: false })], clock.t);
      first.evaluate();
      await first.stop(); // saved with the service last seen at T0
      clock.t += 120_000; // down for 2 minutes: the service looks silent for 120 s
      const second = evaluatorAt(clock);
      const sends: string[] = [];
      const t0 = clock.t;
      for (; clock.t <= t0 + 12_000; clock.t += 500) for (const n of second.evaluate()) sends.push(`+${(clock.t - t0) / 1000}s ${n.status} ${n.labels.rule}`);
      expect(sends).to.deep.equal(['+10.5s firing silent']); // silentAfter (10 s) after the restart, not at once
      await second.stop();
    });

    it('a restored silence alert stays firing through the restart (no resolve for want of hearing)', async () => {
      const clock = { t: T0 };
      const first = evaluatorAt(clock);
      first.store.ingest([signal({ failing: false })], clock.t);
      clock.t += 11_000;
      expect(first.evaluate().map((n) => `${n.status} ${n.labels.rule}`)).to.deep.equal(['firing silent']);
      clock.t += 30_000;
      const second = evaluatorAt(clock);
      const sends: string[] = [];
      for (const end = clock.t + 15_000; clock.t < end; clock.t += 500) for (const n of second.evaluate()) sends.push(`${n.status} ${n.labels.rule}`);
      expect(sends).to.deep.equal([]);
      expect(second.status().alerts.map((a) => `${a.state} ${a.rule}`)).to.deep.equal(['firing silent']);
      // The service comes back: resolved.
      second.store.ingest([signal({ failing: false, observedAt: clock.t })], clock.t);
      expect(second.evaluate().map((n) => `${n.status} ${n.labels.rule}`)).to.deep.equal(['resolved silent']);
      await second.stop();
      await first.stop();
    });
  });

  describe('with the Prometheus source', () => {
    let server: http.Server;
    let promUrl: string;
    let promUp = false;
    before(async () => {
      server = http.createServer((_req, res) => {
        if (!promUp) return void res.writeHead(503, { 'content-type': 'text/plain' }).end('Service Unavailable');
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [] } }));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      promUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => {
      server.closeAllConnections();
      server.close();
    });

    const promConfig = (over: Partial<EvaluatorConfigInput> = {}): Partial<EvaluatorConfigInput> => ({
      source: { type: 'prometheus', url: promUrl, interval: '100ms', timeout: '500ms' },
      silentAfter: '1500ms',
      staleAfter: '1s',
      retain: '1m',
      ...over,
    });
    const sourceUp = (e: Evaluator) => (e.status().source as { up?: boolean }).up;
    const waitUntil = async (what: string, fn: () => boolean, ms = 5000) => {
      for (const end = Date.now() + ms; !fn(); ) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };

    it('WARM-UP: a restored alert is held while Prometheus has not answered, and follows the signals after its first answer', async () => {
      promUp = false;
      const clock = { t: Date.now() };
      const first = evaluatorAt(clock, promConfig({ retain: '10s', silentAfter: '5s', staleAfter: '1s' }));
      first.store.ingest([signal({ observedAt: clock.t })], clock.t);
      expect(brief(first.evaluate())).to.deep.equal(['firing api|authentication|0']);
      await first.stop();

      const real = { t: Date.now() + 15_000 }; // restarted after retain: the evidence is gone
      const second = new Evaluator(config(promConfig({ retain: '10s', silentAfter: '5s', staleAfter: '1s' })), { logger: pino({ level: 'silent' }), now: () => real.t });
      cleanups.push(() => second.stop(0));
      await second.start();
      try {
        for (let i = 0; i < 5; i++) {
          await new Promise((r) => setTimeout(r, 100));
          expect(second.evaluate(), 'held while Prometheus is down').to.deep.equal([]);
        }
        expect(second.status().state!.warmingUp).to.equal(true);
        expect(second.ready()).to.deep.include({ ready: false });
        promUp = true;
        await waitUntil('a successful poll', () => sourceUp(second) === true);
        expect(brief(second.evaluate())).to.deep.equal(['resolved api|authentication|0']);
      } finally {
        await second.stop();
      }
    });

    it('Prometheus down: a silence alert is not resolved and no new one is raised; back up: silence is judged afresh from then', async () => {
      promUp = true;
      const ev = new Evaluator(config(promConfig({ state: undefined })), { logger: pino({ level: 'silent' }) });
      cleanups.push(() => ev.stop(0));
      await ev.start();
      try {
        await waitUntil('the source up', () => sourceUp(ev) === true);
        ev.store.ingest([signal({ service: 'gone', failing: false, observedAt: Date.now() - 10_000 })], Date.now() - 10_000);
        expect(ev.evaluate().map((n) => `${n.status} ${n.labels.service} ${n.labels.rule}`)).to.deep.equal(['firing gone silent']);

        promUp = false;
        await waitUntil('the source down', () => sourceUp(ev) === false);
        ev.store.ingest([signal({ service: 'alive', failing: false, observedAt: Date.now() })], Date.now());
        const during: string[] = [];
        for (let i = 0; i < 20; i++) {
          await new Promise((r) => setTimeout(r, 100)); // 2 s: longer than silentAfter for "alive" too
          for (const n of ev.evaluate()) during.push(`${n.status} ${n.labels.service}`);
        }
        expect(during, 'nothing resolved or raised by the outage').to.deep.equal([]);
        expect(ev.status().alerts.map((a) => `${a.state} ${a.service}`)).to.deep.equal(['firing gone']);

        promUp = true;
        await waitUntil('the source up again', () => sourceUp(ev) === true);
        const back = Date.now();
        const after: string[] = [];
        while (Date.now() - back < 2500) {
          await new Promise((r) => setTimeout(r, 100));
          for (const n of ev.evaluate()) after.push(`${((Date.now() - back) / 1000).toFixed(1)}s ${n.status} ${n.labels.service}`);
        }
        // "alive" sent nothing since before the outage: it is paged, but only silentAfter (1.5 s) after the
        // recovery — not at once for the time the source could not hear it.
        expect(after).to.have.length(1);
        expect(after[0]).to.match(/^(1\.[5-9]|2\.\d)s firing alive$/);
        expect(ev.status().alerts.map((a) => `${a.state} ${a.service}`).sort()).to.deep.equal(['firing alive', 'firing gone']);
      } finally {
        await ev.stop();
      }
    });
  });
});
