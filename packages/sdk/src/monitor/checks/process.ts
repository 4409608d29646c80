/**
 * Level 1, process health: event-loop delay, memory, CPU. Each factory returns a
 * check the monitor schedules; a run reads what changed since the previous run,
 * so the checks keep a little state (a histogram, the last CPU sample).
 *
 * Runs never throw: a broken measurement is a `fail` outcome.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import v8 from 'node:v8';
import type { CheckOutcome, MonitorCheck } from '../types.js';

/** Process checks only read counters: a run that takes longer than this is itself a symptom. */
const DEFAULT_TIMEOUT_MS = 1_000;

const MB = 1024 * 1024;

interface Scheduling {
  intervalMs: number;
  /** Defaults to one second: these checks do no I/O. */
  timeoutMs?: number;
}

const round = (value: number, decimals: number): number => {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
};

/** The verdict of one measurement against its warn and fail limits (either may be absent). */
function verdict(value: number, warn: number | undefined, fail: number | undefined): CheckOutcome['status'] {
  if (fail !== undefined && value >= fail) return 'fail';
  if (warn !== undefined && value >= warn) return 'warn';
  return 'pass';
}

const SEVERITY = { unknown: -1, pass: 0, warn: 1, fail: 2 } as const;

function worst(a: CheckOutcome['status'], b: CheckOutcome['status']): CheckOutcome['status'] {
  return SEVERITY[b] > SEVERITY[a] ? b : a;
}

function aborted(): CheckOutcome {
  return { status: 'fail', output: 'aborted before it could measure (timeout or shutdown)' };
}

function errorOutcome(what: string, err: unknown): CheckOutcome {
  const code = (err as { code?: unknown } | null)?.code;
  return { status: 'fail', output: `${what} could not be read: ${typeof code === 'string' ? code : 'error'}` };
}

// ── Event-loop delay ────────────────────────────────────────────────────────

export interface EventLoopLagOptions extends Scheduling {
  warnMs: number;
  failMs: number;
}

const RESOLUTION_MS = 20;

/** A recorded tick interval (ns) as a delay in ms, to 0.1 ms. */
const delayMs = (intervalNs: number): number => round(Math.max(0, intervalNs / 1e6 - RESOLUTION_MS), 1);

/**
 * p99 event-loop delay since the previous run. The histogram samples every 20 ms
 * and keeps running between runs, so a block between two runs is seen even
 * though the check itself only runs once per interval. The first run only
 * starts sampling (Node's first tick after enabling records nothing).
 */
export function eventLoopLagCheck(opts: EventLoopLagOptions): MonitorCheck & { dispose(): void } {
  let histogram: IntervalHistogram | undefined;
  return {
    id: 'process:event-loop-lag',
    level: 1,
    healthKey: 'process:event-loop-lag',
    intervalMs: opts.intervalMs,
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    async run(signal: AbortSignal): Promise<CheckOutcome> {
      if (signal.aborted) return aborted();
      try {
        if (!histogram) {
          // Enabled on first run, not at construction: a check that is never scheduled costs nothing.
          histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
          histogram.enable();
          return { status: 'pass', output: 'baseline' };
        }
        // Node records the time between two of its timer ticks, resolution included:
        // the delay is what exceeds the resolution. No sample yet (two runs within one
        // tick) reads as no delay.
        const samples = histogram.count;
        const p99 = samples > 0 ? delayMs(histogram.percentile(99)) : 0;
        const max = samples > 0 ? delayMs(histogram.max) : 0;
        histogram.reset();
        const status = verdict(p99, opts.warnMs, opts.failMs);
        const limit = status === 'fail' ? opts.failMs : opts.warnMs;
        return {
          status,
          observedValue: p99,
          observedUnit: 'ms',
          ...(status !== 'pass' && { output: `event-loop delay p99 ${p99.toFixed(1)} ms over the ${limit} ms limit` }),
          details: { maxMs: max, samples },
        };
      } catch (err) {
        return errorOutcome('event-loop delay', err);
      }
    },
    dispose(): void {
      histogram?.disable();
      histogram = undefined;
    },
  };
}

// ── Memory ──────────────────────────────────────────────────────────────────

export interface MemorySample {
  heapUsed: number;
  heapLimit: number;
  rss: number;
}

export interface MemoryOptions extends Scheduling {
  heapWarnRatio: number;
  heapFailRatio: number;
  rssWarnMb?: number;
  rssFailMb?: number;
  /** Replaces the real reading (tests). */
  sample?: () => MemorySample;
}

function readMemory(): MemorySample {
  const { heapUsed, rss } = process.memoryUsage();
  // The limit, not heapTotal: V8 grows the heap up to it, and crashes there.
  return { heapUsed, heapLimit: v8.getHeapStatistics().heap_size_limit, rss };
}

/** Heap used against V8's heap limit, and resident set size against optional limits in MB. */
export function memoryCheck(opts: MemoryOptions): MonitorCheck {
  const sample = opts.sample ?? readMemory;
  return {
    id: 'process:memory',
    level: 1,
    healthKey: 'process:memory',
    intervalMs: opts.intervalMs,
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    async run(signal: AbortSignal): Promise<CheckOutcome> {
      if (signal.aborted) return aborted();
      try {
        const { heapUsed, heapLimit, rss } = sample();
        if (!(heapLimit > 0)) return { status: 'fail', output: 'heap limit could not be read' };
        const ratio = round(heapUsed / heapLimit, 3);
        const heapMb = round(heapUsed / MB, 1);
        const limitMb = round(heapLimit / MB, 1);
        const rssMb = round(rss / MB, 1);

        const heapStatus = verdict(ratio, opts.heapWarnRatio, opts.heapFailRatio);
        const rssStatus = verdict(rssMb, opts.rssWarnMb, opts.rssFailMb);
        const reasons: string[] = [];
        if (heapStatus !== 'pass') {
          const limit = heapStatus === 'fail' ? opts.heapFailRatio : opts.heapWarnRatio;
          reasons.push(`heap ${heapMb} MB of ${limitMb} MB (${ratio}) over the ${heapStatus} limit ${limit}`);
        }
        if (rssStatus !== 'pass') {
          const limit = rssStatus === 'fail' ? opts.rssFailMb : opts.rssWarnMb;
          reasons.push(`rss ${rssMb} MB over the ${rssStatus} limit ${limit} MB`);
        }
        return {
          status: worst(heapStatus, rssStatus),
          observedValue: ratio,
          observedUnit: 'ratio',
          ...(reasons.length > 0 && { output: reasons.join('; ') }),
          details: { heapUsedMb: heapMb, heapLimitMb: limitMb, rssMb },
        };
      } catch (err) {
        return errorOutcome('memory usage', err);
      }
    },
  };
}

// ── CPU ─────────────────────────────────────────────────────────────────────

export interface CpuSample {
  /** User + system CPU time of the process, cumulative, in microseconds. */
  cpuMicros: number;
  /** A monotonic clock in milliseconds. */
  wallMs: number;
}

export interface CpuOptions extends Scheduling {
  warnRatio: number;
  failRatio: number;
  /** Replaces the real reading (tests). */
  sample?: () => CpuSample;
}

function readCpu(): CpuSample {
  const { user, system } = process.cpuUsage();
  return { cpuMicros: user + system, wallMs: performance.now() };
}

/**
 * Fraction of one core the process used since the previous run. Node runs
 * JavaScript on one thread, so near 1 means the event loop is saturated; it can
 * exceed 1 when worker or libuv threads are busy too.
 */
export function cpuCheck(opts: CpuOptions): MonitorCheck {
  const sample = opts.sample ?? readCpu;
  let previous: CpuSample | undefined;
  return {
    id: 'process:cpu',
    level: 1,
    healthKey: 'process:cpu',
    intervalMs: opts.intervalMs,
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    async run(signal: AbortSignal): Promise<CheckOutcome> {
      if (signal.aborted) return aborted();
      try {
        const now = sample();
        const before = previous;
        previous = now;
        // A ratio needs two readings; a clock that did not move gives none either.
        if (!before || now.wallMs <= before.wallMs) return { status: 'pass', observedUnit: 'ratio', output: 'baseline' };
        const ratio = round((now.cpuMicros - before.cpuMicros) / 1000 / (now.wallMs - before.wallMs), 3);
        const status = verdict(ratio, opts.warnRatio, opts.failRatio);
        const limit = status === 'fail' ? opts.failRatio : opts.warnRatio;
        return {
          status,
          observedValue: ratio,
          observedUnit: 'ratio',
          ...(status !== 'pass' && { output: `CPU ${ratio} of one core over the ${limit} limit` }),
        };
      } catch (err) {
        return errorOutcome('CPU usage', err);
      }
    },
  };
}
