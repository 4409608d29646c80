/**
 * A signal: one fact the evaluator learned from an app's telemetry, failing or
 * not. Sources (OTLP receiver, Prometheus) turn Vigil's metrics into signals;
 * the store keeps the latest per key; rules and policies read the failing ones.
 */

/** What kind of fact: which Vigil metric it comes from (see `toSignal` in sources/mapping.ts). */
export type SignalKind =
  | 'import' // vigil.router.import: a router failed to import
  | 'route' // vigil.route.registered (critical) or a drift check: a critical route is missing
  | 'probe' // vigil.health.level of an endpoint check: a critical endpoint fails its probes
  | 'flow' // vigil.health.level of a flow check: a business-critical flow fails
  | 'dependency' // vigil.startup.check, or vigil.health.level of a dependency check
  | 'startup' // vigil.startup.success: a fail-fast component refused the start
  | 'error_rate' // vigil.health.level of the error-rate check
  | 'process' // vigil.health.level of a process check (event loop, memory, cpu)
  | 'integration' // vigil.health.level of an integration check
  | 'silent' // no telemetry from the service for longer than the configured window
  | 'no_instance' // a service configured to always run has no running instance: its last one stopped cleanly
  | 'lifecycle' // vigil.instance.running: 0 (failing) once the instance stopped cleanly; never alerts, the store retires the instance
  | 'rejected' // the OTLP receiver keeps refusing the service's batches (sources/senders.ts)
  | 'release'; // a route the previous version served is not served by the new one (releases/tracker.ts)

export const SIGNAL_KINDS: readonly SignalKind[] = ['import', 'route', 'probe', 'flow', 'dependency', 'startup', 'error_rate', 'process', 'integration', 'silent', 'no_instance', 'lifecycle', 'rejected', 'release'];

export interface Signal {
  kind: SignalKind;
  /** `service.name`. */
  service: string;
  /** `service.instance.id` (empty when the source has none). */
  instance: string;
  /** `deployment.environment.name`, when set. */
  environment?: string;
  /** `vigil.component`; empty for signals of no component (process, silent, rejected, startup). */
  component: string;
  /** What exactly: the router name, `POST /api/v1/auth/login`, the check id, the dependency name. */
  subject: string;
  /** True when this fact is a problem (the metric's value is 0). */
  failing: boolean;
  /** True when the check has not run yet (`vigil.health.level` -1): neither failing nor passing. */
  unknown?: boolean;
  /**
   * Why it fails, one bounded line from the app's `vigil.check.reason`
   * (`Cannot find module './users.js'`); only on a failing signal whose app sent one.
   * Untrusted: bounded and stripped of control characters on arrival (`boundReason`).
   */
  reason?: string;
  /** The data point's other attributes, as strings (e.g. `error.type`, `vigil.policy`). */
  labels: Record<string, string>;
  /** When the data point was observed (ms since epoch). */
  observedAt: number;
  /**
   * When this key started failing on this instance: the `observedAt` of the first
   * failing point of the current run (set by the store). The data's own time, not
   * the receiver's clock, so replicas fed the same points agree on an alert's start.
   */
  failingSince?: number;
}

/** The identity of a signal within a service: the store keeps the latest value per key and instance. */
export function signalKey(s: Pick<Signal, 'kind' | 'component' | 'subject'>): string {
  return `${s.kind}|${s.component}|${s.subject}`;
}
