/**
 * The delivery queue every remote notifier uses: one per destination, FIFO, one
 * delivery at a time, and a failed delivery is retried — the SAME item, with
 * exponential back-off — until it succeeds, because a page the evaluator gave up
 * on is a page nobody gets. Three things keep "forever" from hurting:
 *
 * - coalescing: a newer item of the same key (the alert) replaces a queued one
 *   not yet being sent, so after an outage each alert's latest state goes out
 *   once instead of every intermediate flap. An item is only ever replaced by a
 *   newer one, never removed for nothing: a `resolved` waiting behind a dead
 *   receiver is still sent, even if the `firing` before it never was (the
 *   receiver may have heard of the alert from an earlier send or another replica);
 * - a bound on the length: when full the oldest waiting item is dropped, counted
 *   and logged, so a receiver that never comes back cannot eat the memory;
 * - {@link PermanentError}: a receiver that refuses this exact payload as invalid
 *   (HTTP 400/422) will refuse it on every retry, and retrying it forever would
 *   block every later alert behind it; such an item is dropped, counted, logged.
 *
 * Timers are unref'd: a queue retrying against a dead receiver never keeps the
 * process alive on its own.
 */
import type { Logger } from 'pino';

/** `retry` of a notifier's config, in milliseconds. */
export interface RetryPolicy {
  /** First retry after this; doubles on every further failure. */
  initial: number;
  /** The back-off never grows past this (before jitter). */
  max: number;
}

/** Thrown by `deliver` when retrying cannot help: the item is dropped instead of blocking the queue. */
export class PermanentError extends Error {
  override readonly name = 'PermanentError';
}

/** Starts a timer; returns its cancel function. Injected by tests to see and shorten the back-off. */
export type SetTimer = (fn: () => void, ms: number) => () => void;

const unrefTimer: SetTimer = (fn, ms) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

export interface DeliveryQueueOptions<T> {
  /** Sends one item; resolves when the receiver accepted it. `signal` aborts when the queue stops. */
  deliver: (item: T, signal: AbortSignal) => Promise<void>;
  retry: RetryPolicy;
  logger: Logger;
  /** Coalescing key (the alert's identity); items without one never replace each other. */
  keyOf?: (item: T) => string | undefined;
  /** Names an item in logs (e.g. the alert id); never anything secret. Default: its key. */
  describe?: (item: T) => string;
  /** Most items waiting (the one being sent not counted); default 10 000. */
  maxLength?: number;
  /** For the ±10% jitter; default Math.random. */
  random?: () => number;
  setTimer?: SetTimer;
  now?: () => number;
}

export interface QueueStats {
  /** Waiting, including the one being sent or retried. */
  queued: number;
  /** Successful deliveries. */
  sent: number;
  /** Failed attempts (a retried item counts once per attempt). */
  failed: number;
  /** Items given up on: pushed out of a full queue, or refused permanently. */
  dropped: number;
  lastError?: string;
  lastErrorAt?: Date;
  lastSuccessAt?: Date;
  /** The last attempt failed: the item is being retried now. */
  failing: boolean;
}

/** The pause before retry number `attempt` (1 = the first retry): initial·2^(attempt−1), capped at max, ±10%. */
export function backoffDelay(attempt: number, retry: RetryPolicy, random: () => number = Math.random): number {
  // A 0 ms initial would double to 0 ms forever: a busy loop against a dead receiver.
  const base = Math.min(Math.max(retry.initial, 1) * 2 ** Math.max(attempt - 1, 0), retry.max);
  // Jitter spreads the retries of many queues (and evaluator replicas) after a shared outage.
  return Math.max(0, Math.round(base * (1 + (random() * 2 - 1) * 0.1)));
}

/** Why a request failed, without its URL or headers (either may carry a credential). */
export function requestFailure(err: unknown): string {
  if (err instanceof PermanentError) return err.message;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ETIMEDOUT') return 'request timed out';
  if (typeof code === 'string' && code !== 'ERR_GOT_REQUEST_ERROR') return `request failed: ${code}`;
  return 'request failed';
}

interface Entry<T> {
  item: T;
  key: string | undefined;
}

export class DeliveryQueue<T> {
  private readonly opts: DeliveryQueueOptions<T>;
  private readonly maxLength: number;
  private readonly setTimer: SetTimer;
  private readonly now: () => number;
  /** Waiting items, oldest first; `current` (being sent or retried) is not among them. */
  private readonly pending: Entry<T>[] = [];
  /** The waiting entry of each key: what a newer item of that key replaces. */
  private readonly byKey = new Map<string, Entry<T>>();
  private current: Entry<T> | undefined;
  /** Set and cleared synchronously, so a push right after the loop ends always starts a new one. */
  private running = false;
  private pumping: Promise<void> | undefined;
  private stopped = false;
  private abort: AbortController | undefined;
  /** Wakes the back-off sleep early (on stop). */
  private cancelSleep: (() => void) | undefined;
  private readonly drainWaiters = new Set<() => void>();
  private sent = 0;
  private failed = 0;
  private dropped = 0;
  private lastError: string | undefined;
  private lastErrorAt: Date | undefined;
  private failing = false;
  private lastSuccessAt: Date | undefined;

  constructor(opts: DeliveryQueueOptions<T>) {
    this.opts = opts;
    this.maxLength = Math.max(1, opts.maxLength ?? 10_000);
    this.setTimer = opts.setTimer ?? unrefTimer;
    this.now = opts.now ?? Date.now;
  }

  /** Items waiting, including the one being sent. */
  get length(): number {
    return this.pending.length + (this.current ? 1 : 0);
  }

  /**
   * The items not delivered yet, oldest first: the one being sent or retried,
   * then the waiting ones. What a restart must deliver again (the evaluator
   * persists it); the one in flight may have arrived already (at least once).
   */
  items(): T[] {
    return [...(this.current ? [this.current.item] : []), ...this.pending.map((e) => e.item)];
  }

  /** Queues an item (or replaces the waiting one of its key) and returns at once. */
  push(item: T): void {
    if (this.stopped) {
      this.opts.logger.warn({ item: this.name(item) }, 'notification after stop: not delivered');
      return;
    }
    const key = this.opts.keyOf?.(item);
    const queued = key === undefined ? undefined : this.byKey.get(key);
    if (queued) {
      // In place: the alert keeps its turn, and only its latest state is sent.
      queued.item = item;
    } else {
      if (this.pending.length >= this.maxLength) this.dropOldest();
      const entry: Entry<T> = { item, key };
      this.pending.push(entry);
      if (key !== undefined) this.byKey.set(key, entry);
    }
    if (!this.running) {
      this.running = true;
      this.pumping = this.pump();
    }
  }

  stats(): QueueStats {
    return {
      queued: this.length,
      sent: this.sent,
      failed: this.failed,
      dropped: this.dropped,
      ...(this.lastError !== undefined && { lastError: this.lastError, lastErrorAt: this.lastErrorAt! }),
      ...(this.lastSuccessAt && { lastSuccessAt: this.lastSuccessAt }),
      failing: this.failing,
    };
  }

  /** Resolves when the queue is empty (nothing waiting, nothing being sent) or after `timeoutMs`. */
  flush(timeoutMs: number): Promise<void> {
    if (this.length === 0 || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.drainWaiters.delete(done);
        resolve();
      };
      // Deliberately not unref'd: whoever flushes (a shutdown) wants the retries to get
      // this long, and the unref'd retry timers alone would let the process exit first.
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      this.drainWaiters.add(done);
    });
  }

  /** Ends the back-off timer and aborts the delivery in flight; what is still queued is not sent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // Counted now: the aborted delivery in flight is undelivered too.
    const undelivered = this.length;
    this.cancelSleep?.();
    this.abort?.abort();
    await this.pumping;
    if (undelivered > 0) this.opts.logger.warn({ undelivered }, 'notifier stopped with notifications still queued');
    for (const done of [...this.drainWaiters]) done();
  }

  private name(item: T): string {
    return this.opts.describe?.(item) ?? this.opts.keyOf?.(item) ?? 'notification';
  }

  private dropOldest(): void {
    const oldest = this.pending.shift()!;
    if (oldest.key !== undefined) this.byKey.delete(oldest.key);
    this.dropped++;
    this.opts.logger.error(
      { item: this.name(oldest.item), maxLength: this.maxLength, dropped: this.dropped },
      'delivery queue full: dropped the oldest notification',
    );
  }

  private async pump(): Promise<void> {
    try {
      while (!this.stopped && this.pending.length > 0) {
        const entry = this.pending.shift()!;
        // Once being sent it is no longer replaceable: a newer state of the alert queues behind it.
        if (entry.key !== undefined && this.byKey.get(entry.key) === entry) this.byKey.delete(entry.key);
        this.current = entry;
        try {
          await this.deliverWithRetries(entry.item);
        } finally {
          this.current = undefined;
        }
      }
    } finally {
      this.running = false;
    }
    if (this.length === 0) for (const done of [...this.drainWaiters]) done();
  }

  private async deliverWithRetries(item: T): Promise<void> {
    for (let attempt = 1; !this.stopped; attempt++) {
      this.abort = new AbortController();
      try {
        await this.opts.deliver(item, this.abort.signal);
        this.sent++;
        this.failing = false;
        this.lastSuccessAt = new Date(this.now());
        if (attempt > 1) this.opts.logger.info({ item: this.name(item), attempts: attempt }, 'notification delivered after retries');
        return;
      } catch (err) {
        if (this.stopped) return;
        this.failed++;
        this.lastError = errorText(err);
        this.lastErrorAt = new Date(this.now());
        if (err instanceof PermanentError) {
          this.failing = false;
          this.dropped++;
          this.opts.logger.error({ item: this.name(item), error: this.lastError }, 'notification refused as invalid: dropped (retrying cannot help)');
          return;
        }
        this.failing = true;
        const delayMs = backoffDelay(attempt, this.opts.retry, this.opts.random);
        // The first failure and every tenth after it at warn: a receiver down for hours
        // (retried every `max`) stays visible without a line per attempt.
        const level = attempt % 10 === 1 ? 'warn' : 'debug';
        this.opts.logger[level]({ item: this.name(item), attempt, retryInMs: delayMs, error: this.lastError }, 'delivery failed: will retry');
        await this.sleep(delayMs);
      } finally {
        this.abort = undefined;
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const cancel = this.setTimer(() => {
        this.cancelSleep = undefined;
        resolve();
      }, ms);
      this.cancelSleep = () => {
        cancel();
        this.cancelSleep = undefined;
        resolve();
      };
    });
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
