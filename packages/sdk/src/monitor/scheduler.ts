/**
 * Runs checks on their own intervals, with jitter, at most `concurrency` at a
 * time, never two runs of one check at once, each bounded by its timeout. A
 * check whose `run` throws (a bug, not a failed check) backs off exponentially.
 * Timers are unref'd: the monitor never keeps a process alive.
 */
import type { CheckOutcome, MonitorCheck } from './types.js';

export interface SchedulerOptions {
  concurrency: number;
  /** Fraction of the interval each delay varies by. */
  jitter: number;
  /** Called with every outcome (including timeouts as `fail`). */
  onOutcome: (check: MonitorCheck, outcome: CheckOutcome) => void;
  /** Called when a check's `run` threw; the check backs off. */
  onError: (check: MonitorCheck, err: unknown, backoffMs: number) => void;
  random?: () => number;
}

interface Entry {
  check: MonitorCheck;
  timer?: NodeJS.Timeout;
  /** The run in progress: callers asking meanwhile share it. */
  inflight?: Promise<CheckOutcome | undefined>;
  /** When the last run started (`Date.now()`), for `cacheMs`. */
  lastRunAt?: number;
  errors: number;
}

const MAX_BACKOFF_MS = 10 * 60_000;

export class Scheduler {
  private readonly entries = new Map<string, Entry>();
  private active = 0;
  private readonly queue: Array<() => void> = [];
  private stopped = true;

  constructor(private readonly opts: SchedulerOptions) {}

  add(check: MonitorCheck): void {
    if (this.entries.has(check.id)) throw new Error(`duplicate monitor check id "${check.id}"`);
    const entry: Entry = { check, errors: 0 };
    this.entries.set(check.id, entry);
    if (!this.stopped) this.plan(entry, this.firstDelay(check));
  }

  start(): void {
    this.stopped = false;
    for (const e of this.entries.values()) this.plan(e, this.firstDelay(e.check));
  }

  stop(): void {
    this.stopped = true;
    for (const e of this.entries.values()) clearTimeout(e.timer);
    this.queue.length = 0;
  }

  /** Runs one check now (outside its schedule), e.g. to confirm a recovery. Resolves with the outcome (undefined while a run is in progress). */
  async runNow(id: string): Promise<CheckOutcome | undefined> {
    const e = this.entries.get(id);
    return e ? this.execute(e) : undefined;
  }

  /**
   * Runs a check with a `cacheMs` unless its last run started less than
   * `cacheMs` ago; a run in progress is awaited (one run, however many callers).
   * Scheduled runs keep their interval: the cache only bounds these.
   */
  async refresh(id: string): Promise<void> {
    const e = this.entries.get(id);
    if (!e || e.check.cacheMs === undefined || this.stopped) return;
    if (e.inflight) await e.inflight;
    else if (!this.fresh(e)) await this.execute(e);
  }

  /** Records a run made outside the scheduler (startup validation) so the cache counts it. */
  markRun(id: string, at = Date.now()): void {
    const e = this.entries.get(id);
    if (e) e.lastRunAt = at;
  }

  private fresh(e: Entry): boolean {
    return e.check.cacheMs !== undefined && e.lastRunAt !== undefined && Date.now() - e.lastRunAt < e.check.cacheMs;
  }

  get checks(): MonitorCheck[] {
    return [...this.entries.values()].map((e) => e.check);
  }

  /** Spread the first runs over the first interval so a restart does not fire every check at once. */
  private firstDelay(check: MonitorCheck): number {
    return Math.min(check.intervalMs, 1000) * (this.opts.random ?? Math.random)();
  }

  private jittered(ms: number): number {
    const r = (this.opts.random ?? Math.random)() * 2 - 1;
    return Math.max(10, ms * (1 + this.opts.jitter * r));
  }

  private plan(e: Entry, delay: number): void {
    clearTimeout(e.timer);
    if (this.stopped) return;
    e.timer = setTimeout(() => void this.tick(e), delay);
    e.timer.unref();
  }

  private async tick(e: Entry): Promise<void> {
    if (this.stopped) return;
    if (!e.inflight) await this.execute(e);
    const backoff = e.errors > 0 ? Math.min(MAX_BACKOFF_MS, e.check.intervalMs * 2 ** e.errors) : 0;
    this.plan(e, this.jittered(backoff || e.check.intervalMs));
  }

  private async acquire(): Promise<void> {
    if (this.active < this.opts.concurrency) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.queue.push(resolve));
    this.active++;
  }

  private release(): void {
    this.active--;
    this.queue.shift()?.();
  }

  private async execute(e: Entry): Promise<CheckOutcome | undefined> {
    if (e.inflight) return undefined;
    e.inflight = this.runEntry(e); // cleared by runEntry itself, before its result is seen
    return e.inflight;
  }

  private async runEntry(e: Entry): Promise<CheckOutcome | undefined> {
    await this.acquire();
    e.lastRunAt = Date.now();
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<CheckOutcome>((resolve) => {
        timer = setTimeout(() => {
          ac.abort();
          resolve({ status: 'fail', output: `no result within ${e.check.timeoutMs}ms`, observedValue: e.check.timeoutMs, observedUnit: 'ms' });
        }, e.check.timeoutMs);
      });
      const outcome = await Promise.race([e.check.run(ac.signal), timeout]);
      e.errors = 0;
      this.opts.onOutcome(e.check, outcome);
      return outcome;
    } catch (err) {
      e.errors++;
      this.opts.onError(e.check, err, Math.min(MAX_BACKOFF_MS, e.check.intervalMs * 2 ** e.errors));
      return undefined;
    } finally {
      clearTimeout(timer);
      this.release();
      e.inflight = undefined;
    }
  }
}
