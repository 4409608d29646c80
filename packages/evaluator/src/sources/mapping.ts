/**
 * One metric data point → one signal. Pure: both sources (the OTLP receiver and
 * the Prometheus poller) reduce what they read to (metric, value, attributes,
 * resource, time) with OpenTelemetry attribute names, and this module decides
 * what it means. Every name comes from `@vigil/sdk/semconv`.
 */
import * as semconv from '@vigil/sdk/semconv';
import {
  ATTR_DEPLOYMENT_ENVIRONMENT_NAME,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_ROUTE,
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
  ATTR_VIGIL_CHECK,
  ATTR_VIGIL_COMPONENT,
  ATTR_VIGIL_CRITICAL,
  ATTR_VIGIL_REASON,
  ATTR_VIGIL_REASON_METRIC,
  ATTR_VIGIL_ROUTER,
  boundReason,
  METRIC_HEALTH_LEVEL,
  METRIC_INSTANCE_RUNNING,
  METRIC_ROUTE_REGISTERED,
  METRIC_ROUTER_IMPORT,
  METRIC_STARTUP_CHECK,
  METRIC_STARTUP_SUCCESS,
  promLabel,
  promName,
} from '@vigil/sdk/semconv';
import { signalKey, type Signal, type SignalKind } from '../signals/types.js';

/** Who sent the data point: `service.name`, `service.instance.id`, `deployment.environment.name`. */
export interface SignalResource {
  service: string;
  instance: string;
  environment?: string;
}

/** The metrics `toSignal` understands (OpenTelemetry names); every other metric is ignored. */
export const SIGNAL_METRICS = [METRIC_ROUTER_IMPORT, METRIC_ROUTE_REGISTERED, METRIC_STARTUP_CHECK, METRIC_STARTUP_SUCCESS, METRIC_HEALTH_LEVEL, METRIC_INSTANCE_RUNNING] as const;
export type SignalMetric = (typeof SIGNAL_METRICS)[number];

const UNDERSTOOD = new Set<string>(SIGNAL_METRICS);
export function isSignalMetric(metric: string): metric is SignalMetric {
  return UNDERSTOOD.has(metric);
}

/** `vigil.check` prefixes of the runtime monitor's checks (`vigil.health.level`) and the kind each one means. */
export const CHECK_PREFIXES: ReadonlyArray<{ prefix: string; kind: SignalKind }> = [
  { prefix: 'endpoint:', kind: 'probe' },
  { prefix: 'flow:', kind: 'flow' },
  { prefix: 'dependency:', kind: 'dependency' },
  { prefix: 'drift:', kind: 'route' },
  { prefix: 'process:', kind: 'process' },
  { prefix: 'integration:', kind: 'integration' },
];
/** The subject of a `lifecycle` signal (`vigil.instance.running`); failing means "stopped cleanly". */
export const LIFECYCLE_SUBJECT = 'running';
/** The error-rate check's id: a whole id, not a prefix. */
export const ERROR_RATE_CHECK = 'error-rate';

/**
 * The signal a data point means, or undefined when it means none (a metric not
 * listed in `SIGNAL_METRICS`, a non-critical route, a check id of no known
 * kind, a missing identifying attribute, a value that is not a finite number).
 *
 * `attrs` carries OpenTelemetry attribute names (`vigil.router`, not
 * `vigil_router`). The signal's labels are every attribute except
 * `vigil.component`, which is the signal's `component`.
 */
export function toSignal(metric: string, value: number, attrs: Record<string, string>, resource: SignalResource, observedAt: number): Signal | undefined {
  if (!Number.isFinite(value)) return undefined;
  const what = classify(metric, attrs);
  if (!what) return undefined;
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) if (k !== ATTR_VIGIL_COMPONENT) labels[k] = v;
  return {
    kind: what.kind,
    service: resource.service,
    instance: resource.instance,
    ...(resource.environment ? { environment: resource.environment } : {}),
    component: what.component ?? attrs[ATTR_VIGIL_COMPONENT] ?? '',
    subject: what.subject,
    failing: value === 0,
    // A negative value is a check that has not run yet: not a pass.
    ...(value < 0 ? { unknown: true } : {}),
    labels,
    observedAt,
  };
}

/** A `vigil.check.reason` data point: which signal of which instance it explains, and why. */
export interface Reason {
  service: string;
  instance: string;
  /** The `signalKey` of the signal it explains. */
  key: string;
  reason: string;
  observedAt: number;
}

/**
 * The reason a `vigil.check.reason` data point gives, or undefined when it
 * explains no signal (no `vigil.reason.metric`, or one `toSignal` does not
 * understand, or an empty reason). The text is untrusted: it is cut to one
 * bounded line with no control characters.
 */
export function toReason(attrs: Record<string, string>, resource: SignalResource, observedAt: number): Reason | undefined {
  const metric = attrs[ATTR_VIGIL_REASON_METRIC];
  const what = metric ? classify(metric, attrs) : undefined;
  const reason = boundReason(attrs[ATTR_VIGIL_REASON]);
  if (!what || !reason) return undefined;
  const key = signalKey({ kind: what.kind, component: what.component ?? attrs[ATTR_VIGIL_COMPONENT] ?? '', subject: what.subject });
  return { service: resource.service, instance: resource.instance, key, reason, observedAt };
}

/** Sets `reason` on each failing signal that a reason explains (the newest one for the same signal of the same instance). */
export function attachReasons(signals: Signal[], reasons: Reason[]): void {
  if (reasons.length === 0) return;
  const newest = new Map<string, Reason>();
  for (const r of reasons) {
    const id = JSON.stringify([r.service, r.instance, r.key]);
    const had = newest.get(id);
    if (!had || r.observedAt >= had.observedAt) newest.set(id, r);
  }
  for (const s of signals) {
    if (!s.failing) continue;
    const r = newest.get(JSON.stringify([s.service, s.instance, signalKey(s)]));
    if (r) s.reason = r.reason;
  }
}

function classify(metric: string, attrs: Record<string, string>): { kind: SignalKind; subject: string; component?: string } | undefined {
  switch (metric) {
    case METRIC_ROUTER_IMPORT: {
      const router = attrs[ATTR_VIGIL_ROUTER];
      return router ? { kind: 'import', subject: router } : undefined;
    }
    case METRIC_ROUTE_REGISTERED: {
      const route = attrs[ATTR_HTTP_ROUTE];
      const method = attrs[ATTR_HTTP_REQUEST_METHOD];
      if (attrs[ATTR_VIGIL_CRITICAL] !== 'true' || !route || !method) return undefined;
      return { kind: 'route', subject: `${method} ${route}` };
    }
    case METRIC_STARTUP_CHECK: {
      const check = attrs[ATTR_VIGIL_CHECK];
      return check ? { kind: 'dependency', subject: check } : undefined;
    }
    case METRIC_STARTUP_SUCCESS:
      return { kind: 'startup', subject: 'startup', component: '' };
    case METRIC_INSTANCE_RUNNING:
      return { kind: 'lifecycle', subject: LIFECYCLE_SUBJECT, component: '' };
    case METRIC_HEALTH_LEVEL: {
      const check = attrs[ATTR_VIGIL_CHECK];
      if (!check) return undefined;
      if (check === ERROR_RATE_CHECK) return { kind: 'error_rate', subject: check };
      const hit = CHECK_PREFIXES.find((p) => check.startsWith(p.prefix));
      if (!hit) return undefined;
      // An endpoint's subject is the endpoint itself (`POST /api/v1/auth/login`); other checks keep their id.
      return { kind: hit.kind, subject: hit.kind === 'probe' ? check.slice(hit.prefix.length) : check };
    }
    default:
      return undefined;
  }
}

// ── Prometheus names ────────────────────────────────────────────────────────

/** The Prometheus name of each understood metric (all gauges: no unit suffix, no `_total`). */
export const PROM_SIGNAL_METRICS: ReadonlyArray<{ metric: SignalMetric; prom: string }> = SIGNAL_METRICS.map((metric) => ({ metric, prom: promName(metric) }));

/** Resource attributes, which come as labels on every series through the Collector (collector-config.yaml: resource_constant_labels). */
const RESOURCE_ATTRS = new Set<string>([ATTR_SERVICE_NAME, ATTR_SERVICE_INSTANCE_ID, ATTR_DEPLOYMENT_ENVIRONMENT_NAME, semconv.ATTR_SERVICE_VERSION]);

/** Every attribute name `semconv` defines (its `ATTR_*` constants). */
export const SEMCONV_ATTRIBUTES: readonly string[] = Object.entries(semconv)
  .filter(([name, value]) => name.startsWith('ATTR_') && typeof value === 'string')
  .map(([, value]) => value as string);

/** Prometheus label → OpenTelemetry attribute, for the data point attributes of `semconv` (resource attributes excluded). */
export const PROM_LABEL_TO_ATTR: ReadonlyMap<string, string> = (() => {
  const map = new Map<string, string>();
  for (const attr of SEMCONV_ATTRIBUTES) {
    if (RESOURCE_ATTRS.has(attr)) continue;
    const label = promLabel(attr);
    const other = map.get(label);
    if (other !== undefined && other !== attr) throw new Error(`semconv: attributes "${other}" and "${attr}" have the same Prometheus label "${label}"`);
    map.set(label, attr);
  }
  return map;
})();

const LABEL_SERVICE = promLabel(ATTR_SERVICE_NAME);
const LABEL_INSTANCE = promLabel(ATTR_SERVICE_INSTANCE_ID);
const LABEL_ENVIRONMENT = promLabel(ATTR_DEPLOYMENT_ENVIRONMENT_NAME);

/**
 * A Prometheus series' labels as the attributes and resource `toSignal` takes.
 * Labels that are not a `semconv` attribute (other resource attributes such as
 * `telemetry_sdk_name`, `job`, `__name__`) are dropped, so both sources give
 * the same labels. The resource is undefined without `service_name`.
 */
export function fromPromLabels(labels: Record<string, string>): { attrs: Record<string, string>; resource?: SignalResource } {
  const attrs: Record<string, string> = {};
  for (const [label, value] of Object.entries(labels)) {
    const attr = PROM_LABEL_TO_ATTR.get(label);
    if (attr !== undefined) attrs[attr] = value;
  }
  const service = labels[LABEL_SERVICE];
  if (!service) return { attrs };
  const environment = labels[LABEL_ENVIRONMENT];
  return { attrs, resource: { service, instance: labels[LABEL_INSTANCE] ?? '', ...(environment ? { environment } : {}) } };
}
