/**
 * The runtime monitor's vocabulary. A check runs on its own interval and
 * answers with an outcome; the monitor damps flapping (N failures / M
 * successes before a state change) and publishes the state.
 */
import type { HealthStatus } from '../startup/report.js';

/** Health levels from the original design: 1 process, 2 endpoints, 3 business-critical flows, 4 integration. */
export type HealthLevel = 1 | 2 | 3 | 4;

/**
 * A check's state: a health status once it has run, `unknown` before (or when
 * it cannot run, e.g. an endpoint with no value for its parameter). Unknown is
 * never reported as `pass`.
 */
export type CheckStatus = HealthStatus | 'unknown';

/** The statuses that say something: `unknown` neither passes nor fails a component. */
export function known(statuses: CheckStatus[]): HealthStatus[] {
  return statuses.filter((s): s is HealthStatus => s !== 'unknown');
}

/** One run's result. `warn` is degraded (e.g. over the latency budget), `fail` is broken, `unknown` could not tell. */
export interface CheckOutcome {
  status: CheckStatus;
  /** What was measured, for health bodies: `238`, `"503"`, `0.42`. */
  observedValue?: number | string;
  /** Unit of `observedValue`: `ms`, `ratio`, `status`. */
  observedUnit?: string;
  /** Why it is not passing, one line; never a secret. */
  output?: string;
  /** Routes this result is about (`METHOD /path`), for `affectedEndpoints`. */
  affectedEndpoints?: string[];
  /** Extra measurements a check wants to export (e.g. the HTTP status code of a probe). */
  details?: Record<string, number | string | boolean>;
}

/** A check the monitor runs. `run` must honour `signal` (aborted at the check's timeout). */
export interface MonitorCheck {
  /** Unique and stable: `endpoint:POST /api/v1/auth/login`, `process:event-loop`. */
  id: string;
  level: HealthLevel;
  /** The component whose health this check speaks for, when it has one. */
  component?: string;
  /** The `component:measurement` key in health+json: `authentication:endpoint`, `process:event-loop-lag`. */
  healthKey: string;
  /** How often to run it. */
  intervalMs: number;
  /** A run longer than this is aborted and counts as `fail`. */
  timeoutMs: number;
  /**
   * Health endpoints may ask for a fresh result: one younger than this is reused
   * instead (and a scheduled run is skipped), so polling never checks more often.
   * Unset: health endpoints only read the last scheduled result.
   */
  cacheMs?: number;
  run(signal: AbortSignal): Promise<CheckOutcome>;
}
