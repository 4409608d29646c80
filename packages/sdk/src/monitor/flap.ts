/**
 * Flap damping: a check changes state only after `failureThreshold`
 * consecutive bad runs, or `successThreshold` consecutive good ones (Gatus'
 * failure/success thresholds, Kubernetes' failureThreshold). Until then the
 * published state stays as it was, whatever a single run said.
 */
import type { HealthStatus } from '../startup/report.js';
import type { CheckOutcome } from './types.js';

export interface Thresholds {
  failureThreshold: number;
  successThreshold: number;
}

export class FlapState {
  /** The published state; checks start passing (startup validation vouched for them). */
  status: HealthStatus = 'pass';
  /** The outcome that set the published state (or the last one while it holds). */
  outcome: CheckOutcome = { status: 'pass' };
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
    if (outcome.status === 'pass') {
      this.goodRun++;
      this.badRun = 0;
      if (this.status === 'pass') {
        this.outcome = outcome;
        return false;
      }
      return this.goodRun >= this.t.successThreshold ? this.set(outcome) : false;
    }
    this.goodRun = 0;
    this.badRun++;
    if (this.status === outcome.status) {
      this.outcome = outcome;
      return false;
    }
    // Already failing or degraded: moving between warn and fail needs no new streak.
    if (this.status !== 'pass' || this.badRun >= this.t.failureThreshold) return this.set(outcome);
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
