import { expect } from 'chai';
import { cpuCheck, eventLoopLagCheck, memoryCheck, type MemorySample } from '../src/monitor/checks/process.js';
import type { MonitorCheck } from '../src/monitor/types.js';

const MB = 1024 * 1024;
const live = () => new AbortController().signal;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Blocks the event loop for `ms` from inside a timer, as a synchronous hot path would. */
function blockLoop(ms: number): Promise<void> {
  return new Promise((resolve) =>
    setTimeout(() => {
      const end = performance.now() + ms;
      while (performance.now() < end) {
        // busy-wait
      }
      resolve();
    }, 10),
  );
}

describe('monitor process checks', () => {
  describe('eventLoopLagCheck', () => {
    const disposables: Array<{ dispose(): void }> = [];
    afterEach(() => disposables.splice(0).forEach((c) => c.dispose()));

    it('describes itself as a level-1 process check', () => {
      const check = eventLoopLagCheck({ warnMs: 100, failMs: 500, intervalMs: 5_000, timeoutMs: 300 });
      disposables.push(check);
      expect(check).to.include({ id: 'process:event-loop-lag', healthKey: 'process:event-loop-lag', level: 1, intervalMs: 5_000, timeoutMs: 300 });
      expect(check.component).to.equal(undefined);
    });

    it('records a baseline on the first run, then passes while the loop is idle', async () => {
      const check = eventLoopLagCheck({ warnMs: 200, failMs: 1_000, intervalMs: 1_000 });
      disposables.push(check);
      expect(await check.run(live())).to.deep.include({ status: 'pass', output: 'baseline' });
      await sleep(120);
      const outcome = await check.run(live());
      expect(outcome.status).to.equal('pass');
      expect(outcome.observedUnit).to.equal('ms');
      expect(outcome.observedValue).to.be.a('number').within(0, 150); // the 20 ms sampling period is not delay
      expect(outcome.output).to.equal(undefined);
    });

    // A 300 ms block between two runs, judged against different limits.
    const table: Array<[string, number, number, 'warn' | 'fail', number]> = [
      ['warns over warnMs', 100, 1_000, 'warn', 100],
      ['fails over failMs', 50, 200, 'fail', 200],
    ];
    for (const [title, warnMs, failMs, expected, limit] of table) {
      it(`${title} after the loop was blocked for 300 ms`, async () => {
        const check = eventLoopLagCheck({ warnMs, failMs, intervalMs: 1_000 });
        disposables.push(check);
        await check.run(live());
        await sleep(50); // Node's first tick after enabling records nothing
        await blockLoop(300);
        await sleep(50); // let the histogram's own timer fire and record the late tick
        const outcome = await check.run(live());
        expect(outcome.status).to.equal(expected);
        expect(outcome.observedValue).to.be.a('number').within(250, 1_000); // 300 ms blocked, less up to one 20 ms sampling period
        expect(outcome.output).to.match(new RegExp(`^event-loop delay p99 \\d+\\.\\d ms over the ${limit} ms limit$`));
      });
    }

    it('reads only what happened since the previous run', async () => {
      const check = eventLoopLagCheck({ warnMs: 100, failMs: 1_000, intervalMs: 1_000 });
      disposables.push(check);
      await check.run(live());
      await sleep(50);
      await blockLoop(300);
      await sleep(50);
      expect((await check.run(live())).status).to.equal('warn');
      await sleep(100);
      expect((await check.run(live())).status).to.equal('pass');
    });

    it('stops sampling on dispose and can be disposed twice', async () => {
      const check = eventLoopLagCheck({ warnMs: 100, failMs: 1_000, intervalMs: 1_000 });
      await check.run(live());
      check.dispose();
      check.dispose();
      // A run after dispose starts over with a baseline rather than throwing.
      expect(await check.run(live())).to.deep.include({ status: 'pass', output: 'baseline' });
      check.dispose();
    });
  });

  describe('memoryCheck', () => {
    const limits = { heapWarnRatio: 0.8, heapFailRatio: 0.9, rssWarnMb: 512, rssFailMb: 1024, intervalMs: 10_000 };
    const sampleOf = (heapUsedMb: number, rssMb: number): MemorySample => ({ heapUsed: heapUsedMb * MB, heapLimit: 1000 * MB, rss: rssMb * MB });

    it('describes itself as a level-1 process check', () => {
      const check = memoryCheck(limits);
      expect(check).to.include({ id: 'process:memory', healthKey: 'process:memory', level: 1, intervalMs: 10_000 });
      expect(check.timeoutMs).to.be.a('number').above(0);
    });

    // heap MB of a 1000 MB limit, rss MB → status, ratio, what the output names.
    const table: Array<[number, number, 'pass' | 'warn' | 'fail', number, string[]]> = [
      [500, 300, 'pass', 0.5, []],
      [800, 300, 'warn', 0.8, ['heap 800 MB of 1000 MB (0.8) over the warn limit 0.8']],
      [950, 300, 'fail', 0.95, ['heap 950 MB of 1000 MB (0.95) over the fail limit 0.9']],
      [500, 600, 'warn', 0.5, ['rss 600 MB over the warn limit 512 MB']],
      [500, 2048, 'fail', 0.5, ['rss 2048 MB over the fail limit 1024 MB']],
      [850, 2048, 'fail', 0.85, ['heap 850 MB', 'warn limit 0.8', 'rss 2048 MB over the fail limit 1024 MB']],
      [123.4567, 0, 'pass', 0.123, []],
    ];
    for (const [heapMb, rssMb, status, ratio, says] of table) {
      it(`is ${status} with heap ${heapMb} MB / 1000 MB and rss ${rssMb} MB`, async () => {
        const outcome = await memoryCheck({ ...limits, sample: () => sampleOf(heapMb, rssMb) }).run(live());
        expect(outcome).to.include({ status, observedValue: ratio, observedUnit: 'ratio' });
        if (says.length === 0) expect(outcome.output).to.equal(undefined);
        for (const s of says) expect(outcome.output).to.include(s);
      });
    }

    it('ignores rss when no rss limit is configured', async () => {
      const check = memoryCheck({ heapWarnRatio: 0.8, heapFailRatio: 0.9, intervalMs: 10_000, sample: () => sampleOf(100, 100_000) });
      expect((await check.run(live())).status).to.equal('pass');
    });

    it('fails, without throwing, when the sample throws or has no heap limit', async () => {
      const throwing = memoryCheck({ ...limits, sample: () => { throw Object.assign(new Error('boom'), { code: 'EBOOM' }); } });
      expect(await throwing.run(live())).to.deep.include({ status: 'fail', output: 'memory usage could not be read: EBOOM' });
      const noLimit = memoryCheck({ ...limits, sample: () => ({ heapUsed: 1, heapLimit: 0, rss: 1 }) });
      expect((await noLimit.run(live())).status).to.equal('fail');
    });

    it('reads the real process with sane numbers', async () => {
      const outcome = await memoryCheck({ heapWarnRatio: 0.95, heapFailRatio: 0.99, intervalMs: 10_000 }).run(live());
      expect(outcome.status).to.equal('pass');
      expect(outcome.observedValue).to.be.a('number').above(0).below(0.95);
      const details = outcome.details as Record<string, number>;
      expect(details.heapUsedMb).to.be.above(1).below(details.heapLimitMb!);
      expect(details.heapLimitMb).to.be.above(100);
      expect(details.rssMb).to.be.above(details.heapUsedMb!);
    });
  });

  describe('cpuCheck', () => {
    it('describes itself as a level-1 process check', () => {
      expect(cpuCheck({ warnRatio: 0.7, failRatio: 0.9, intervalMs: 10_000 })).to.include({ id: 'process:cpu', healthKey: 'process:cpu', level: 1 });
    });

    it('records a baseline first, then judges the fraction of one core used since the previous run', async () => {
      // Cumulative CPU microseconds and wall-clock ms at each run → expected verdict.
      const samples: Array<[number, number]> = [
        [1_000_000, 10_000], // baseline
        [1_500_000, 11_000], // 500 ms CPU in 1000 ms: 0.5
        [2_250_000, 12_000], // 0.75
        [3_200_000, 13_000], // 0.95
        [4_400_000, 14_000], // 1.2: worker threads count too
        [4_400_000, 14_000], // the clock did not move: a new baseline
        [4_450_000, 15_000], // 0.05
      ];
      const expected: Array<[string, number | undefined, string | undefined]> = [
        ['pass', undefined, 'baseline'],
        ['pass', 0.5, undefined],
        ['warn', 0.75, 'CPU 0.75 of one core over the 0.7 limit'],
        ['fail', 0.95, 'CPU 0.95 of one core over the 0.9 limit'],
        ['fail', 1.2, 'CPU 1.2 of one core over the 0.9 limit'],
        ['pass', undefined, 'baseline'],
        ['pass', 0.05, undefined],
      ];
      let i = 0;
      const check = cpuCheck({ warnRatio: 0.7, failRatio: 0.9, intervalMs: 1_000, sample: () => ({ cpuMicros: samples[i]![0], wallMs: samples[i]![1] }) });
      for (; i < samples.length; i++) {
        const outcome = await check.run(live());
        const [status, value, output] = expected[i]!;
        expect(outcome.status, `run ${i}`).to.equal(status);
        expect(outcome.observedValue, `run ${i}`).to.equal(value);
        expect(outcome.observedUnit).to.equal('ratio');
        expect(outcome.output, `run ${i}`).to.equal(output);
      }
    });

    it('measures the real process', async () => {
      const check = cpuCheck({ warnRatio: 50, failRatio: 100, intervalMs: 1_000 });
      expect((await check.run(live())).output).to.equal('baseline');
      await blockLoop(100); // burn some CPU so the ratio is clearly above 0
      const outcome = await check.run(live());
      expect(outcome.status).to.equal('pass');
      expect(outcome.observedValue).to.be.a('number').above(0.1).below(4);
    });
  });

  describe('every process check honours its AbortSignal', () => {
    const lag = eventLoopLagCheck({ warnMs: 100, failMs: 500, intervalMs: 1_000, timeoutMs: 200 });
    after(() => lag.dispose());
    const checks: Array<[string, MonitorCheck]> = [
      ['event-loop lag', lag],
      ['memory', memoryCheck({ heapWarnRatio: 0.8, heapFailRatio: 0.9, intervalMs: 1_000, timeoutMs: 200 })],
      ['cpu', cpuCheck({ warnRatio: 0.8, failRatio: 0.9, intervalMs: 1_000, timeoutMs: 200 })],
    ];
    for (const [name, check] of checks) {
      it(`${name}: an aborted run resolves with fail`, async () => {
        const ac = new AbortController();
        const timer = setTimeout(() => ac.abort(), 200);
        await sleep(220);
        clearTimeout(timer);
        const started = performance.now();
        const outcome = await check.run(ac.signal);
        expect(outcome.status).to.equal('fail');
        expect(outcome.output).to.include('aborted');
        expect(performance.now() - started).to.be.below(100);
      });
    }
  });
});
