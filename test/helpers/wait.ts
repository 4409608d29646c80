import { setTimeout as sleep } from 'node:timers/promises';

/** Options of {@link waitFor}: `what` names the awaited condition in the timeout message. */
export interface WaitOptions {
  /** Give up after this many milliseconds (default 10 000). */
  timeoutMs?: number;
  /** Pause between two attempts (default 100 ms). */
  intervalMs?: number;
  /** What is awaited, e.g. "series vigil_rig_check in Prometheus". */
  what: string;
}

const NOT_YET = Symbol('not yet');

/**
 * Polls `fn` until it returns something other than `undefined` or `false` and resolves with it.
 * An attempt that throws counts as "not yet"; its error is quoted if the wait times out.
 * An attempt that hangs is abandoned at the deadline, so the timeout always holds.
 */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 10_000, intervalMs = 100, what }: WaitOptions,
): Promise<T> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  let attempts = 0;
  let lastError: unknown;
  let lastValue: unknown = NOT_YET;
  for (;;) {
    attempts++;
    const remaining = Math.max(deadline - Date.now(), 1);
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        Promise.resolve().then(fn),
        new Promise<typeof NOT_YET>((resolve) => {
          timer = setTimeout(() => resolve(NOT_YET), remaining);
        }),
      ]);
      if (result !== NOT_YET) {
        if (result !== undefined && result !== false) return result as T;
        lastValue = result;
        lastError = undefined;
      }
    } catch (err) {
      lastError = err;
    } finally {
      clearTimeout(timer);
    }
    if (Date.now() + intervalMs > deadline) break;
    await sleep(intervalMs);
  }
  const detail =
    lastError !== undefined
      ? `last attempt threw: ${lastError instanceof Error ? lastError.message : String(lastError)}`
      : lastValue === NOT_YET
        ? 'the last attempt did not finish in time'
        : `last attempt returned ${String(lastValue)}`;
  throw new Error(
    `Timed out after ${Date.now() - started} ms (${attempts} attempts) waiting for ${what}; ${detail}`,
  );
}
