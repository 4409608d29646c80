import { createServer } from 'node:http';
import { expect } from 'chai';
import { send } from '../src/monitor/http.js';
import { close, listen } from './helpers/servers.js';
import { check, statusMeets, valueAt } from '../src/monitor/expect.js';
import { FlapState } from '../src/monitor/flap.js';
import { Scheduler } from '../src/monitor/scheduler.js';
import { fill, fillDeep, fillHeaders, redact, TemplateError, type Scope } from '../src/monitor/template.js';
import type { CheckOutcome, CheckStatus, MonitorCheck } from '../src/monitor/types.js';
import type { HealthStatus } from '../src/startup/report.js';

describe('flap damping', () => {
  // One row per sequence of raw results: the published state after each run (failures 3, successes 2).
  // A check starts unknown: the first pass publishes pass; failures need the full streak, from unknown too.
  const table: Array<[string, CheckStatus[], CheckStatus[]]> = [
    ['steady pass', ['pass', 'pass'], ['pass', 'pass']],
    ['3 failures flip', ['fail', 'fail', 'fail'], ['unknown', 'unknown', 'fail']],
    ['3 failures flip after a pass', ['pass', 'fail', 'fail', 'fail'], ['pass', 'pass', 'pass', 'fail']],
    ['2 failures do not', ['fail', 'fail', 'pass', 'fail', 'fail', 'pass'], ['unknown', 'unknown', 'pass', 'pass', 'pass', 'pass']],
    ['alternating never flips to fail', ['fail', 'pass', 'fail', 'pass', 'fail', 'pass'], ['unknown', ...Array<CheckStatus>(5).fill('pass')]],
    ['warn counts as bad and publishes warn', ['pass', 'warn', 'warn', 'warn'], ['pass', 'pass', 'pass', 'warn']],
    ['mixed bad runs flip to the latest', ['warn', 'fail', 'fail'], ['unknown', 'unknown', 'fail']],
    ['once failing, warn and fail switch at once', ['fail', 'fail', 'fail', 'warn', 'fail'], ['unknown', 'unknown', 'fail', 'warn', 'fail']],
    ['2 successes recover', ['fail', 'fail', 'fail', 'pass', 'pass'], ['unknown', 'unknown', 'fail', 'fail', 'pass']],
    ['a success between does not recover', ['fail', 'fail', 'fail', 'pass', 'fail', 'pass'], ['unknown', 'unknown', 'fail', 'fail', 'fail', 'fail']],
    ['a run that cannot tell is unknown at once', ['pass', 'unknown', 'pass'], ['pass', 'unknown', 'pass']],
    ['unknown is never pass before a pass', ['unknown', 'fail', 'unknown'], ['unknown', 'unknown', 'unknown']],
  ];
  for (const [name, raw, published] of table) {
    it(name, () => {
      const f = new FlapState({ failureThreshold: 3, successThreshold: 2 });
      expect(f.status).to.equal('unknown');
      expect(raw.map((status) => (f.observe({ status }), f.status))).to.deep.equal(published);
    });
  }

  it('reports a change exactly when the published state changes', () => {
    const f = new FlapState({ failureThreshold: 2, successThreshold: 1 });
    expect(['pass', 'fail', 'fail', 'fail', 'pass'].map((s) => f.observe({ status: s as HealthStatus }))).to.deep.equal([true, false, true, false, true]);
  });
});

describe('scheduler', () => {
  const make = (id: string, intervalMs: number, run: MonitorCheck['run'], timeoutMs = 1000): MonitorCheck => ({ id, level: 1, healthKey: id, intervalMs, timeoutMs, run });

  it('never runs more than `concurrency` checks at once, and never one check twice at once', async () => {
    let active = 0;
    let peak = 0;
    const perCheck = new Map<string, number>();
    let overlap = false;
    const outcomes: string[] = [];
    const s = new Scheduler({ concurrency: 2, jitter: 0, onOutcome: (c) => outcomes.push(c.id), onError: () => undefined, random: () => 0 });
    for (const id of ['a', 'b', 'c', 'd']) {
      s.add(
        make(id, 5, async () => {
          active++;
          peak = Math.max(peak, active);
          perCheck.set(id, (perCheck.get(id) ?? 0) + 1);
          if (perCheck.get(id)! > 1) overlap = true;
          await new Promise((r) => setTimeout(r, 30));
          perCheck.set(id, perCheck.get(id)! - 1);
          active--;
          return { status: 'pass' };
        }),
      );
    }
    s.start();
    await new Promise((r) => setTimeout(r, 400));
    s.stop();
    expect(peak).to.equal(2);
    expect(overlap).to.equal(false);
    expect(new Set(outcomes)).to.deep.equal(new Set(['a', 'b', 'c', 'd']));
  });

  it('turns a run that outlives its timeout into a fail and aborts it', async () => {
    let aborted = false;
    const got: CheckOutcome[] = [];
    const s = new Scheduler({ concurrency: 1, jitter: 0, onOutcome: (_c, o) => got.push(o), onError: () => undefined, random: () => 0 });
    s.add(make('hang', 10_000, (signal) => new Promise(() => signal.addEventListener('abort', () => (aborted = true))), 100));
    const outcome = await s.runNow('hang');
    expect(outcome).to.deep.equal({ status: 'fail', output: 'no result within 100ms', observedValue: 100, observedUnit: 'ms' });
    expect(aborted).to.equal(true);
    expect(got).to.have.length(1);
  });

  it('refresh: concurrent callers share one run, a result younger than cacheMs is reused, an older one is not', async () => {
    let runs = 0;
    let release: (() => void) | undefined;
    // random 0.999: the first scheduled run would come after ~1 s, long after this test.
    const s = new Scheduler({ concurrency: 1, jitter: 0, onOutcome: () => undefined, onError: () => undefined, random: () => 0.999 });
    const dep = make('dep', 3_600_000, async () => {
      runs++;
      await new Promise<void>((r) => (release = r));
      return { status: 'pass' };
    });
    s.add({ ...dep, cacheMs: 60_000 });
    s.add({ ...make('uncached', 3_600_000, async () => ({ status: 'pass' })) });
    s.start();
    try {
      const callers = Array.from({ length: 50 }, () => s.refresh('dep'));
      await new Promise((r) => setImmediate(r));
      release!();
      await Promise.all(callers);
      expect(runs).to.equal(1);
      await s.refresh('dep'); // fresh: reused
      expect(runs).to.equal(1);
      s.markRun('dep', Date.now() - 60_001); // as if the last run were older than cacheMs
      const again = s.refresh('dep');
      await new Promise((r) => setImmediate(r));
      release!();
      await again;
      expect(runs).to.equal(2);
    } finally {
      s.stop();
    }
  });

  it('backs off a check whose run throws, and reports it', async () => {
    const errors: number[] = [];
    let runs = 0;
    const s = new Scheduler({ concurrency: 1, jitter: 0, onOutcome: () => undefined, onError: (_c, _e, backoff) => errors.push(backoff), random: () => 0 });
    s.add(make('buggy', 20, async () => {
      runs++;
      throw new Error('bug');
    }));
    s.start();
    await new Promise((r) => setTimeout(r, 300));
    s.stop();
    expect(errors.slice(0, 3)).to.deep.equal([40, 80, 160]);
    // Without the back-off it would have run ~15 times in 300 ms.
    expect(runs).to.be.at.most(4);
  });
});

describe('probe templates and redaction', () => {
  const scope = (): Scope => ({ env: { PW: 's3cret-pw', EMPTY: '' }, vars: { token: 'tok-abc123' }, secrets: new Set() });

  it('fills env and captured placeholders and remembers every value as a secret', () => {
    const sc = scope();
    expect(fill('Bearer ${token}', sc)).to.equal('Bearer tok-abc123');
    expect(fillDeep({ a: ['${env:PW}', 1, { b: 'x' }] }, sc)).to.deep.equal({ a: ['s3cret-pw', 1, { b: 'x' }] });
    expect(fillHeaders({ authorization: { env: 'PW', prefix: 'Bearer ' }, x: 'plain' }, sc)).to.deep.equal({ authorization: 'Bearer s3cret-pw', x: 'plain' });
    expect([...sc.secrets].sort()).to.deep.equal(['s3cret-pw', 'tok-abc123']);
    expect(redact('sent s3cret-pw and tok-abc123', sc.secrets)).to.equal('sent [redacted] and [redacted]');
  });

  it('names a missing variable or capture', () => {
    expect(() => fill('${env:NOPE}', scope())).to.throw(TemplateError, 'environment variable NOPE is not set');
    expect(() => fill('${env:EMPTY}', scope())).to.throw(TemplateError, 'environment variable EMPTY is not set');
    expect(() => fill('${missing}', scope())).to.throw(TemplateError, 'no captured value "missing"');
  });
});

describe('answer expectations', () => {
  const table: Array<[number, 'exists' | number[], boolean]> = [
    [200, 'exists', true],
    [401, 'exists', true],
    [400, 'exists', true],
    [404, 'exists', false],
    [405, 'exists', false],
    [500, 'exists', false],
    [503, 'exists', false],
    [401, [400, 401], true],
    [200, [400, 401], false],
  ];
  for (const [status, expected, ok] of table) {
    it(`${status} against ${JSON.stringify(expected)}: ${ok ? 'meets' : 'fails'}`, () => expect(statusMeets(status, expected)).to.equal(ok));
  }

  it('checks body paths and headers without quoting values', () => {
    const answer = { status: 200, body: { data: { items: [{ id: 7 }] }, token: 'secret-token' }, headers: { 'content-type': 'application/json' } };
    expect(valueAt(answer.body, '$.data.items[0].id')).to.equal(7);
    expect(check(answer, { status: [200], body: [{ path: 'data.items[0].id', equals: 7 }, { path: 'token', exists: true }], headers: { 'Content-Type': 'json' } })).to.deep.equal([]);
    const failures = check(answer, { status: [201], body: [{ path: 'token', equals: 'other' }, { path: 'nope', exists: true }, { path: 'token', matches: '^x' }], headers: { 'x-missing': '' } });
    expect(failures).to.deep.equal([
      'answered 200, expected 201',
      'body token does not equal the expected value',
      'body nope is missing',
      'body token does not match /^x/',
      'header x-missing is missing',
    ]);
    expect(failures.join()).not.to.contain('secret-token');
  });
});

describe('synthetic requests', () => {
  it('join the base URL path and the probed path, and carry the synthetic header', async () => {
    const seen: Array<{ url?: string; synthetic?: string | string[] }> = [];
    const server = createServer((req, res) => {
      seen.push({ url: req.url, synthetic: req.headers['x-vigil-synthetic'] });
      res.writeHead(204).end();
    });
    const port = await listen(server);
    try {
      const res = await send({ baseUrl: `http://127.0.0.1:${port}/gateway/`, method: 'GET', path: '/api/x?y=1', timeoutMs: 2000, signal: new AbortController().signal, kind: 'probe' });
      expect(res.status).to.equal(204);
      expect(seen).to.deep.equal([{ url: '/gateway/api/x?y=1', synthetic: 'probe' }]);
    } finally {
      await close(server);
    }
  });
});
