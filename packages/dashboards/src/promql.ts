/**
 * Prometheus names and small PromQL helpers for the dashboards.
 *
 * Every metric and label name comes from `@vigil/sdk/semconv` through
 * `promName()` / `promLabel()`; nothing is retyped. The suffixes that the
 * OTLP → Prometheus translation adds and `promName()` does not (`_total` on a
 * counter; `_bucket`, `_sum`, `_count` on a histogram) are added by `counter()`
 * and `histogram()` below, as docs/telemetry.md describes. The unit test
 * checks every name in every query against semconv and that page.
 */
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
  ATTR_VIGIL_CHECK,
  ATTR_VIGIL_CHECK_TYPE,
  ATTR_VIGIL_COMPONENT,
  ATTR_VIGIL_CRITICAL,
  ATTR_VIGIL_CURRENCY,
  ATTR_VIGIL_LEVEL,
  ATTR_VIGIL_NOTIFIER,
  ATTR_VIGIL_OUTCOME,
  ATTR_VIGIL_POLICY,
  ATTR_VIGIL_ROUTER,
  ATTR_VIGIL_RULE,
  ATTR_VIGIL_SERVICE,
  METRIC_COMPONENT_HEALTHY,
  METRIC_EVALUATION_DURATION,
  METRIC_EVALUATOR_UP,
  METRIC_HEALTH_LEVEL,
  METRIC_HTTP_ERROR_RATIO,
  METRIC_IMPACT_LEVEL,
  METRIC_IMPACT_REVENUE_AT_RISK,
  METRIC_NOTIFICATIONS_FAILED,
  METRIC_NOTIFICATIONS_SENT,
  METRIC_PROBE_DURATION,
  METRIC_PROBE_SUCCESS,
  METRIC_ROUTE_REGISTERED,
  METRIC_ROUTER_IMPORT,
  METRIC_STARTUP_CHECK,
  METRIC_STARTUP_DURATION,
  METRIC_STARTUP_SUCCESS,
  promLabel,
  promName,
} from '@vigil/sdk/semconv';

/** A counter (monotonic sum) gains `_total` on its way to Prometheus. */
export function counter(metric: string): string {
  return `${promName(metric)}_total`;
}

/** The three series of a histogram in seconds. */
export function histogram(metric: string): { bucket: string; sum: string; count: string } {
  const base = promName(metric, 's');
  return { bucket: `${base}_bucket`, sum: `${base}_sum`, count: `${base}_count` };
}

/** Prometheus metric names used by the dashboards. */
export const metric = {
  routerImport: promName(METRIC_ROUTER_IMPORT),
  routeRegistered: promName(METRIC_ROUTE_REGISTERED),
  startupCheck: promName(METRIC_STARTUP_CHECK),
  startupSuccess: promName(METRIC_STARTUP_SUCCESS),
  startupDuration: histogram(METRIC_STARTUP_DURATION),
  componentHealthy: promName(METRIC_COMPONENT_HEALTHY),
  probeSuccess: promName(METRIC_PROBE_SUCCESS),
  probeDuration: histogram(METRIC_PROBE_DURATION),
  healthLevel: promName(METRIC_HEALTH_LEVEL),
  httpErrorRatio: promName(METRIC_HTTP_ERROR_RATIO),
  impactLevel: promName(METRIC_IMPACT_LEVEL),
  revenueAtRisk: promName(METRIC_IMPACT_REVENUE_AT_RISK),
  notificationsSent: counter(METRIC_NOTIFICATIONS_SENT),
  notificationsFailed: counter(METRIC_NOTIFICATIONS_FAILED),
  evaluationDuration: histogram(METRIC_EVALUATION_DURATION),
  evaluatorUp: promName(METRIC_EVALUATOR_UP),
  /** Prometheus's own series of its alerting rules (prometheus/rules/vigil.rules.yml). */
  alerts: 'ALERTS',
} as const;

/** Prometheus label names used by the dashboards. */
export const label = {
  service: promLabel(ATTR_SERVICE_NAME),
  instance: promLabel(ATTR_SERVICE_INSTANCE_ID),
  component: promLabel(ATTR_VIGIL_COMPONENT),
  router: promLabel(ATTR_VIGIL_ROUTER),
  outcome: promLabel(ATTR_VIGIL_OUTCOME),
  errorType: promLabel(ATTR_ERROR_TYPE),
  route: promLabel(ATTR_HTTP_ROUTE),
  method: promLabel(ATTR_HTTP_REQUEST_METHOD),
  statusCode: promLabel(ATTR_HTTP_RESPONSE_STATUS_CODE),
  critical: promLabel(ATTR_VIGIL_CRITICAL),
  check: promLabel(ATTR_VIGIL_CHECK),
  checkType: promLabel(ATTR_VIGIL_CHECK_TYPE),
  policy: promLabel(ATTR_VIGIL_POLICY),
  level: promLabel(ATTR_VIGIL_LEVEL),
  rule: promLabel(ATTR_VIGIL_RULE),
  watchedService: promLabel(ATTR_VIGIL_SERVICE),
  currency: promLabel(ATTR_VIGIL_CURRENCY),
  notifier: promLabel(ATTR_VIGIL_NOTIFIER),
} as const;

/**
 * Labels of the `ALERTS` series: Prometheus's `alertname` / `alertstate`, and
 * the alert label contract of the rules (docs: common alert labels —
 * `service`, `component`, `severity`, `source`).
 */
export const alertLabel = {
  name: 'alertname',
  state: 'alertstate',
  service: 'service',
  component: 'component',
  severity: 'severity',
  source: 'source',
} as const;

/**
 * Values of `vigil_check` / `vigil_level` that the runtime monitor emits
 * (docs/telemetry.md, "Runtime monitor": `endpoint:POST /api/v1/auth/login`,
 * `dependency:cache/redis`, `error-rate`; level 2 = endpoints, drift, error rate).
 */
export const checkId = {
  endpointPrefix: 'endpoint:',
  dependencyPrefix: 'dependency:',
  errorRate: 'error-rate',
} as const;
export const healthLevel = { endpoints: '2' } as const;

// ── PromQL building ─────────────────────────────────────────────────────────

/** `label="value"` */
export function eq(name: string, value: string): string {
  return `${name}="${value}"`;
}

/** `label=~"regex"` */
export function re(name: string, regex: string): string {
  return `${name}=~"${regex}"`;
}

/** A series selector: `name{m1, m2}`, or the bare name without matchers. */
export function sel(name: string, ...matchers: string[]): string {
  return matchers.length ? `${name}{${matchers.join(', ')}}` : name;
}

/** `agg by (l1, l2) (expr)` */
export function agg(op: string, by: readonly string[], expr: string): string {
  return by.length ? `${op} by (${by.join(', ')}) (${expr})` : `${op}(${expr})`;
}

/**
 * `expr or on() vector(0)`: a single 0 when the left side has no series at
 * all (nothing firing, no revenue at risk), so a panel says 0 instead of
 * "No data". Used only where "no series" honestly means zero.
 */
export function orZero(expr: string): string {
  return `${expr} or on() vector(0)`;
}

/** Dashboard variables used in queries (see `substituteVariables`). */
export const v = {
  service: '$service',
  authComponent: '$auth_component',
  adminComponent: '$admin_component',
  rateInterval: '$__rate_interval',
  interval: '$__interval',
  range: '$__range',
} as const;
