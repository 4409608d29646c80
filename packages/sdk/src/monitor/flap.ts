/**
 * Flap damping: a check changes state only after `failureThreshold`
 * consecutive bad runs, or `successThreshold` consecutive good ones (Gatus'
 * failure/success thresholds, Kubernetes' failureThreshold). Until then the
 * published state stays as it was, whatever a single run said.
 */
import type { CheckOutcome, CheckStatus } from './types.js';

export interface Thresholds {
  failureThreshold: number;
  successThreshold: number;
}

export class FlapState {
  /**
   * The published state. A check starts `unknown` (it has not run): the first
   * pass publishes `pass`, and `failureThreshold` bad runs in a row publish the
   * failure, as from any state.
   */
  status: CheckStatus = 'unknown';
  /** The outcome that set the published state (or the last one while it holds). */
  outcome: CheckOutcome = { status: 'unknown', output: 'not run yet' };
  /** The latest raw outcome, whatever the state. */
  last: CheckOutcome | undefined;
  lastRunAt: Date | undefined;
  private badRun = 0;
  private goodRun = 0;

  constructor(private readonly t: Thresholds) {}

  /** Feeds one run; returns true when the published state changed. */
  observe(outcome: CheckOutcome, at = new Date()): boolean {
    this.last = outcome;
    this.lastRunAt = at;
    // A run that could not tell (nothing to probe with) says so at once.
    if (outcome.status === 'unknown') {
      if (this.status !== 'unknown') return this.set(outcome);
      this.outcome = outcome;
      return false;
    }
    if (outcome.status === 'pass') {
      this.goodRun++;
      this.badRun = 0;
      if (this.status === 'pass') {
        this.outcome = outcome;
        return false;
      }
      return this.status === 'unknown' || this.goodRun >= this.t.successThreshold ? this.set(outcome) : false;
    }
    this.goodRun = 0;
    this.badRun++;
    if (this.status === outcome.status) {
      this.outcome = outcome;
      return false;
    }
    // Already failing or degraded: moving between warn and fail needs no new streak.
    if (this.status === 'warn' || this.status === 'fail' || this.badRun >= this.t.failureThreshold) return this.set(outcome);
    return false;
  }

  private set(outcome: CheckOutcome): boolean {
    this.status = outcome.status;
    this.outcome = outcome;
    this.badRun = 0;
    this.goodRun = 0;
    return true;
  }
}
