/**
 * The shared delivery queue: order, retries with back-off, coalescing, the bound,
 * flush and stop. Timing is injected (a recording timer, fixed jitter) where the
 * exact back-off matters, and kept to a few milliseconds elsewhere.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { pino } from 'pino';
import { backoffDelay, DeliveryQueue, PermanentError, type DeliveryQueueOptions, type SetTimer } from '../src/notifiers/queue.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

function captureLogger() {
  const lines: any[] = [];
  const logger = pino({ level: 'trace' }, new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }));
  return { logger, lines };
}

/** A timer that records each requested delay and fires on the next turn of the event loop. */
function recordingTimer(): { setTimer: SetTimer; delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    setTimer: (fn, ms) => {
      delays.push(ms);
      const t = setImmediate(fn);
      return () => clearImmediate(t);
    },
  };
}

/** A gate that holds a delivery until released. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

interface Item {
  key?: string;
  v: string;
}

function queue(opts: Partial<DeliveryQueueOptions<Item>> & Pick<DeliveryQueueOptions<Item>, 'deliver'>) {
  return new DeliveryQueue<Item>({
    retry: { initial: 5, max: 20 },
    logger: pino({ level: 'silent' }),
    keyOf: (i) => i.key,
    describe: (i) => i.v,
    random: () => 0.5,
    ...opts,
  });
}

describe('notifiers: delivery queue', () => {
  const queues: DeliveryQueue<Item>[] = [];
  afterEach(async () => {
    await Promise.all(queues.splice(0).map((q) => q.stop()));
  });
  const track = <Q extends DeliveryQueue<Item>>(q: Q) => (queues.push(q), q);

  it('delivers in order, one at a time', async () => {
    const delivered: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const q = track(
      queue({
        deliver: async (i) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await new Promise((r) => setTimeout(r, 2));
          delivered.push(i.v);
          inFlight--;
        },
      }),
    );
    for (const v of ['a', 'b', 'c', 'd', 'e']) q.push({ v });
    expect(q.length).to.equal(5);
    await q.flush(5_000);
    expect(delivered).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
    expect(maxInFlight).to.equal(1);
    expect(q.stats()).to.include({ queued: 0, sent: 5, failed: 0, dropped: 0, failing: false });
    expect(q.stats().lastSuccessAt).to.be.instanceOf(Date);
  });

  describe('back-off: initial · 2^(attempt−1), capped at max, jitter ±10%', () => {
    const retry = { initial: 100, max: 1_000 };
    const rows: Array<[attempt: number, random: number, expected: number]> = [
      [1, 0.5, 100],
      [2, 0.5, 200],
      [3, 0.5, 400],
      [4, 0.5, 800],
      [5, 0.5, 1_000], // capped
      [50, 0.5, 1_000], // no overflow
      [1, 0, 90], // −10%
      [1, 0.999_999, 110], // +10%
      [5, 0, 900],
      [5, 0.999_999, 1_100], // jitter applies to the capped value too
    ];
    for (const [attempt, random, expected] of rows) {
      it(`attempt ${attempt}, random ${random} → ${expected} ms`, () => {
        expect(backoffDelay(attempt, retry, () => random)).to.equal(expected);
      });
    }
    it('never 0 ms forever when initial is 0 (no busy loop)', () => {
      expect(backoffDelay(1, { initial: 0, max: 1_000 }, () => 0.5)).to.equal(1);
      expect(backoffDelay(4, { initial: 0, max: 1_000 }, () => 0.5)).to.equal(8);
    });
  });

  it('retries the SAME item with back-off until it succeeds; the next one waits its turn', async () => {
    const attempts: string[] = [];
    let failuresLeft = 4;
    const timer = recordingTimer();
    const q = track(
      queue({
        retry: { initial: 100, max: 500 },
        setTimer: timer.setTimer,
        deliver: async (i) => {
          attempts.push(i.v);
          if (i.v === 'a' && failuresLeft-- > 0) throw new Error(`receiver down (${failuresLeft} left)`);
        },
      }),
    );
    q.push({ v: 'a' });
    q.push({ v: 'b' });
    await q.flush(5_000);
    expect(attempts).to.deep.equal(['a', 'a', 'a', 'a', 'a', 'b']);
    expect(timer.delays).to.deep.equal([100, 200, 400, 500]);
    const stats = q.stats();
    expect(stats).to.include({ queued: 0, sent: 2, failed: 4, dropped: 0, failing: false, lastError: 'receiver down (0 left)' });
    expect(stats.lastErrorAt).to.be.instanceOf(Date);
  });

  it('the back-off starts again from `initial` after a success', async () => {
    let fail = 0;
    const timer = recordingTimer();
    const q = track(
      queue({
        retry: { initial: 10, max: 1_000 },
        setTimer: timer.setTimer,
        deliver: async () => {
          if (fail-- > 0) throw new Error('down');
        },
      }),
    );
    fail = 3;
    q.push({ v: 'a' });
    await q.flush(5_000);
    fail = 2;
    q.push({ v: 'b' });
    await q.flush(5_000);
    expect(timer.delays).to.deep.equal([10, 20, 40, 10, 20]);
  });

  it('health while failing: queued, failed attempts, lastError, failing', async () => {
    const q = track(queue({ retry: { initial: 5, max: 5 }, deliver: async () => Promise.reject(new Error('ECONNREFUSED')) }));
    q.push({ v: 'a' });
    q.push({ v: 'b' });
    await new Promise((r) => setTimeout(r, 60));
    const s = q.stats();
    expect(s.queued).to.equal(2);
    expect(s.sent).to.equal(0);
    expect(s.failed).to.be.greaterThan(2);
    expect(s).to.include({ failing: true, lastError: 'ECONNREFUSED' });
    expect(s.lastSuccessAt).to.equal(undefined);
  });

  describe('coalescing: a newer item replaces a waiting one of the same key', () => {
    // The first push is delivered at once and held at the gate (it is "in flight");
    // everything after it waits, then the gate opens.
    const rows: Array<{ name: string; pushes: Item[]; delivered: string[] }> = [
      {
        name: 'the latest state of a waiting alert is sent once',
        pushes: [{ v: 'head' }, { key: 'a', v: 'a firing 1' }, { key: 'a', v: 'a firing 2' }, { key: 'a', v: 'a firing 3' }],
        delivered: ['head', 'a firing 3'],
      },
      {
        name: 'firing then resolved while waiting: the resolved is sent, not nothing',
        pushes: [{ v: 'head' }, { key: 'a', v: 'a firing' }, { key: 'a', v: 'a resolved' }],
        delivered: ['head', 'a resolved'],
      },
      {
        name: 'an alert replaced in place keeps its turn before later alerts',
        pushes: [{ v: 'head' }, { key: 'a', v: 'a1' }, { key: 'b', v: 'b1' }, { key: 'a', v: 'a2' }],
        delivered: ['head', 'a2', 'b1'],
      },
      {
        name: 'the item being sent is never replaced: the newer one queues behind it',
        pushes: [{ key: 'a', v: 'a firing' }, { key: 'a', v: 'a resolved' }],
        delivered: ['a firing', 'a resolved'],
      },
      {
        name: 'items without a key never coalesce',
        pushes: [{ v: 'head' }, { v: 'x' }, { v: 'x' }],
        delivered: ['head', 'x', 'x'],
      },
      {
        name: 'other keys are left alone',
        pushes: [{ v: 'head' }, { key: 'a', v: 'a1' }, { key: 'b', v: 'b1' }, { key: 'c', v: 'c1' }, { key: 'b', v: 'b2' }],
        delivered: ['head', 'a1', 'b2', 'c1'],
      },
    ];
    for (const row of rows) {
      it(row.name, async () => {
        const g = gate();
        const delivered: string[] = [];
        const q = track(
          queue({
            deliver: async (i) => {
              await g.opened;
              delivered.push(i.v);
            },
          }),
        );
        for (const p of row.pushes) q.push(p);
        expect(q.length).to.equal(row.delivered.length);
        g.open();
        await q.flush(5_000);
        expect(delivered).to.deep.equal(row.delivered);
        expect(q.stats().sent).to.equal(row.delivered.length);
      });
    }

    it('a key whose item was sent is free again: the next push queues anew', async () => {
      const delivered: string[] = [];
      const q = track(queue({ deliver: async (i) => void delivered.push(i.v) }));
      q.push({ key: 'a', v: 'a1' });
      await q.flush(1_000);
      q.push({ key: 'a', v: 'a2' });
      await q.flush(1_000);
      expect(delivered).to.deep.equal(['a1', 'a2']);
    });
  });

  it('bounded: when full, the oldest waiting item is dropped, counted and logged', async () => {
    const g = gate();
    const delivered: string[] = [];
    const { logger, lines } = captureLogger();
    const q = track(
      queue({
        maxLength: 3,
        logger,
        deliver: async (i) => {
          await g.opened;
          delivered.push(i.v);
        },
      }),
    );
    for (const v of ['in-flight', '1', '2', '3', '4', '5']) q.push({ v });
    expect(q.length).to.equal(4); // 3 waiting + the one being sent
    expect(q.stats().dropped).to.equal(2);
    g.open();
    await q.flush(5_000);
    expect(delivered).to.deep.equal(['in-flight', '3', '4', '5']);
    const drops = lines.filter((l) => /queue full/.test(l.msg));
    expect(drops.map((l) => [l.level, l.item])).to.deep.equal([
      [50, '1'],
      [50, '2'],
    ]);
  });

  it('a PermanentError drops the item (counted, logged) instead of blocking the ones behind it', async () => {
    const { logger, lines } = captureLogger();
    const delivered: string[] = [];
    const q = track(
      queue({
        logger,
        deliver: async (i) => {
          if (i.v === 'bad') throw new PermanentError('HTTP 400: start time must be before end time');
          delivered.push(i.v);
        },
      }),
    );
    q.push({ v: 'bad' });
    q.push({ v: 'good' });
    await q.flush(5_000);
    expect(delivered).to.deep.equal(['good']);
    expect(q.stats()).to.include({ sent: 1, failed: 1, dropped: 1, failing: false, lastError: 'HTTP 400: start time must be before end time' });
    expect(lines.some((l) => l.level === 50 && l.item === 'bad' && /dropped/.test(l.msg))).to.equal(true);
  });

  describe('flush', () => {
    it('resolves at once when empty', async () => {
      const q = track(queue({ deliver: async () => undefined }));
      const t0 = Date.now();
      await q.flush(10_000);
      expect(Date.now() - t0).to.be.lessThan(50);
    });

    it('resolves when the queue drains, including after retries', async () => {
      let fails = 2;
      const q = track(
        queue({
          deliver: async () => {
            if (fails-- > 0) throw new Error('down');
          },
        }),
      );
      q.push({ v: 'a' });
      await q.flush(5_000);
      expect(q.length).to.equal(0);
      expect(q.stats().sent).to.equal(1);
    });

    it('resolves when the time is up while the receiver stays down', async () => {
      const q = track(queue({ deliver: async () => Promise.reject(new Error('down')) }));
      q.push({ v: 'a' });
      const t0 = Date.now();
      await q.flush(150);
      const took = Date.now() - t0;
      expect(took).to.be.within(140, 1_000);
      expect(q.length).to.equal(1);
    });
  });

  describe('stop', () => {
    it('ends the back-off timer: no attempt after stop()', async () => {
      let attempts = 0;
      const { logger, lines } = captureLogger();
      const q = track(
        queue({
          logger,
          retry: { initial: 10, max: 10 },
          deliver: async () => {
            attempts++;
            throw new Error('down');
          },
        }),
      );
      q.push({ v: 'a' });
      await new Promise((r) => setTimeout(r, 50));
      await q.stop();
      const after = attempts;
      await new Promise((r) => setTimeout(r, 80));
      expect(attempts).to.equal(after);
      expect(lines.some((l) => /stopped with notifications still queued/.test(l.msg) && l.undelivered === 1)).to.equal(true);
    });

    it('aborts the delivery in flight and resolves a pending flush', async () => {
      let aborted = false;
      const q = track(
        queue({
          deliver: (_i, signal) =>
            new Promise((_resolve, reject) => {
              signal.addEventListener('abort', () => {
                aborted = true;
                reject(new Error('aborted'));
              });
            }),
        }),
      );
      q.push({ v: 'hangs' });
      const flushed = q.flush(60_000);
      const t0 = Date.now();
      await q.stop();
      await flushed;
      expect(aborted).to.equal(true);
      expect(Date.now() - t0).to.be.lessThan(1_000);
      expect(q.stats().failed).to.equal(0); // an abort by stop() is not a failure of the receiver
    });

    it('a push after stop() is refused with a warning, never delivered', async () => {
      const delivered: string[] = [];
      const { logger, lines } = captureLogger();
      const q = track(queue({ logger, deliver: async (i) => void delivered.push(i.v) }));
      await q.stop();
      q.push({ v: 'late' });
      await new Promise((r) => setTimeout(r, 20));
      expect(delivered).to.deep.equal([]);
      expect(lines.some((l) => l.level === 40 && l.item === 'late')).to.equal(true);
    });

    it('its timers are unref\'d: a queue retrying against a dead receiver does not keep the process alive', async function () {
      this.timeout(20_000);
      const queueModule = path.join(HERE, '../src/notifiers/queue.ts');
      const script = [
        `import { DeliveryQueue } from ${JSON.stringify(queueModule)};`,
        `import { pino } from 'pino';`,
        `const q = new DeliveryQueue({ deliver: async () => { throw new Error('down'); }, retry: { initial: 200, max: 1000 }, logger: pino({ level: 'silent' }) });`,
        `q.push('a'); setTimeout(() => console.log(JSON.stringify(q.stats())), 50);`,
      ].join('\n');
      const t0 = Date.now();
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: HERE,
        timeout: 15_000,
      });
      expect(JSON.parse(stdout)).to.include({ queued: 1, failing: true });
      // It exits on its own (exit code 0, well before the 15 s kill) with the item still queued.
      expect(Date.now() - t0).to.be.lessThan(10_000);
    });
  });
});
