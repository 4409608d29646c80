/**
 * The telemetry contract: every metric, span, attribute and attribute value that
 * Vigil emits is named here and nowhere else. The evaluator, the alert rules, the
 * dashboards and the docs import or quote this module; never retype a name.
 *
 * Stable OpenTelemetry names come from `@opentelemetry/semantic-conventions`;
 * Vigil's own live under `vigil.*`. On the Prometheus side a dot becomes an
 * underscore and a histogram in seconds gains `_seconds` (see `promName`).
 */
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
} from '@opentelemetry/semantic-conventions';

export {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
};

/** Incubating names, copied here as the OpenTelemetry contrib packages do. */
export const ATTR_SERVICE_INSTANCE_ID = 'service.instance.id' as const;
export const ATTR_DEPLOYMENT_ENVIRONMENT_NAME = 'deployment.environment.name' as const;

/** The instrumentation scope of every Vigil meter and tracer. */
export const INSTRUMENTATION_SCOPE = '@vigil/sdk' as const;

// ── Vigil attributes ────────────────────────────────────────────────────────
export const ATTR_VIGIL_ROUTER = 'vigil.router' as const;
export const ATTR_VIGIL_COMPONENT = 'vigil.component' as const;
export const ATTR_VIGIL_OUTCOME = 'vigil.outcome' as const;
export const ATTR_VIGIL_CRITICAL = 'vigil.critical' as const;
export const ATTR_VIGIL_CHECK = 'vigil.check' as const;
export const ATTR_VIGIL_CHECK_TYPE = 'vigil.check.type' as const;
export const ATTR_VIGIL_POLICY = 'vigil.policy' as const;
export const ATTR_VIGIL_LEVEL = 'vigil.level' as const;
export const ATTR_VIGIL_RULE = 'vigil.rule' as const;
/** On the evaluator's metrics: the watched service (its own `service.name` is the evaluator's). */
export const ATTR_VIGIL_SERVICE = 'vigil.service' as const;
export const ATTR_VIGIL_CURRENCY = 'vigil.currency' as const;
export const ATTR_VIGIL_NOTIFIER = 'vigil.notifier' as const;
export const ATTR_VIGIL_SYNTHETIC = 'vigil.synthetic' as const;
/** On `vigil.startup`: the verdict, `pass` | `warn` | `fail`. */
export const ATTR_VIGIL_STATUS = 'vigil.status' as const;
/** On `vigil.route.inventory`: routes in Express's table, and declared routes missing from it. */
export const ATTR_VIGIL_ROUTE_COUNT = 'vigil.route.count' as const;
export const ATTR_VIGIL_ROUTE_MISSING = 'vigil.route.missing' as const;
/** On a `vigil.route.verdict` event: what Express would do with a declared endpoint (`ROUTE_VERDICT`). */
export const ATTR_VIGIL_ROUTE_VERDICT = 'vigil.route.verdict' as const;
/** On a `vigil.route.verdict` event: the layer that would answer, e.g. `GET /{*splat} (handler spa)`. */
export const ATTR_VIGIL_ROUTE_ANSWERED_BY = 'vigil.route.answered_by' as const;

/** On `vigil.check.reason`: why the series it explains is 0, one bounded, redacted line (`Cannot find module './users.js'`). */
export const ATTR_VIGIL_REASON = 'vigil.reason' as const;
/** On `vigil.check.reason`: the metric whose series (same attributes, minus the reason) it explains, e.g. `vigil.router.import`. */
export const ATTR_VIGIL_REASON_METRIC = 'vigil.reason.metric' as const;
/** The longest `vigil.reason` value, in characters; a longer reason is cut and ends with `…`. */
export const REASON_MAX_LENGTH = 200;

/** Values of `vigil.outcome` for a router import. */
export const ROUTER_OUTCOME = { success: 'success', failed: 'failed', noRoutes: 'no_routes' } as const;
export type RouterOutcome = (typeof ROUTER_OUTCOME)[keyof typeof ROUTER_OUTCOME];
/** `vigil.outcome` of a dependency check that did not run: its optional URL variable is not set. */
export const OUTCOME_SKIPPED = 'skipped' as const;

/** Values of `vigil.route.verdict`: the report writes `fallback-only`; telemetry uses `fallback_only`. */
export const ROUTE_VERDICT = {
  registered: 'registered',
  'fallback-only': 'fallback_only',
  'param-only': 'param_only',
  shadowed: 'shadowed',
  missing: 'missing',
} as const;

/** Values of `vigil.policy`: the manifest writes `fail-fast`; telemetry uses `fail_fast`. */
export const POLICY_VALUE = { 'fail-fast': 'fail_fast', degrade: 'degrade' } as const;

/** Values of `error.type` on the evaluator's `rejected` signal and `vigil.otlp.rejected`: why its OTLP receiver refused a batch. */
export const REJECT_REASON = {
  unsupportedMediaType: 'unsupported_media_type',
  unauthorized: 'unauthorized',
  tooLarge: 'body_too_large',
  undecodable: 'undecodable_body',
  invalid: 'invalid_request',
} as const;


// ── Metrics ─────────────────────────────────────────────────────────────────
export const METRIC_ROUTER_IMPORT = 'vigil.router.import' as const;
export const METRIC_ROUTE_REGISTERED = 'vigil.route.registered' as const;
/**
 * Routes registered in Express that the manifest does not declare (a shadow endpoint is a security
 * question): one series per service, the count; no per-route label (the routes are in the startup
 * report and `/health/detailed`). Not exported under `undocumentedRoutes.policy: ignore`.
 */
export const METRIC_ROUTE_UNDOCUMENTED = 'vigil.route.undocumented' as const;
export const METRIC_STARTUP_CHECK = 'vigil.startup.check' as const;
export const METRIC_STARTUP_DURATION = 'vigil.startup.duration' as const;
/** 1 when startup validation finished with no fail-fast failure, 0 when one failed. */
export const METRIC_STARTUP_SUCCESS = 'vigil.startup.success' as const;
/**
 * 1 while the instance runs; 0 in its last export after a clean shutdown (guard.shutdown, or the
 * drain on SIGTERM/SIGINT), so the evaluator retires the instance instead of paging its silence.
 * An instance that refused to start (fail-fast) or was killed never exports 0.
 */
export const METRIC_INSTANCE_RUNNING = 'vigil.instance.running' as const;
/** 1 while a component passes, 0 while it fails (`vigil.policy` tells a refusal from a degradation). */
export const METRIC_COMPONENT_HEALTHY = 'vigil.component.healthy' as const;
export const METRIC_PROBE_SUCCESS = 'vigil.probe.success' as const;
export const METRIC_PROBE_DURATION = 'vigil.probe.duration' as const;
export const METRIC_HEALTH_LEVEL = 'vigil.health.level' as const;
/** Share of 5xx answers per route over the error-rate window, from the app's own (non-synthetic) traffic. */
export const METRIC_HTTP_ERROR_RATIO = 'vigil.http.server.error_ratio' as const;
/** Time from a component failing at run time to passing again (MTTR). */
export const METRIC_RECOVERY_DURATION = 'vigil.recovery.duration' as const;
export const METRIC_RECOVERY_ATTEMPTS = 'vigil.recovery.attempts' as const;
export const METRIC_IMPACT_LEVEL = 'vigil.impact.level' as const;
export const METRIC_IMPACT_REVENUE_AT_RISK = 'vigil.impact.revenue_at_risk' as const;
/** The evaluator's own: notifications delivered and failed delivery attempts, per notifier. */
export const METRIC_NOTIFICATIONS_SENT = 'vigil.notifications.sent' as const;
export const METRIC_NOTIFICATIONS_FAILED = 'vigil.notifications.failed' as const;
export const METRIC_EVALUATION_DURATION = 'vigil.evaluation.duration' as const;
/** 1 while an evaluator runs: Prometheus pages on its absence (the evaluator-down rule). */
export const METRIC_EVALUATOR_UP = 'vigil.evaluator.up' as const;
/**
 * OpenTelemetry's HTTP server histogram (not Vigil's: `@opentelemetry/instrumentation-http`
 * records it under `@vigil/sdk/register`, synthetic requests left out), in seconds, by
 * `http.route`, `http.request.method` and `http.response.status_code`: the SLIs of the
 * endpoint SLOs (slo/). Its bucket boundaries are the instrumentation's advice; a latency
 * objective's threshold must be one of them.
 */
export const HTTP_SERVER_REQUEST_DURATION = 'http.server.request.duration' as const;
export const HTTP_SERVER_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] as const;
/** Batches the evaluator's OTLP receiver refused, per `error.type` ({@link REJECT_REASON}). */
export const METRIC_OTLP_REJECTED = 'vigil.otlp.rejected' as const;

// Release over release (issue 22): the route set an instance really serves, read by the evaluator per `service.version`.
/**
 * Always 1, one series per route Express really serves (`http.request.method`, `http.route`,
 * `vigil.component` when a declared endpoint of a component is that route), from the live
 * route table after startup validation; kept current by the periodic inventory. At most
 * {@link ROUTES_SERVED_MAX} series (`VIGIL_ROUTES_SERVED_MAX`); the rest are counted in
 * {@link METRIC_ROUTE_SERVED_OVERFLOW}.
 */
export const METRIC_ROUTE_SERVED = 'vigil.route.served' as const;
/** Routes served but not exported as `vigil.route.served` because of the cap (0 when all are). */
export const METRIC_ROUTE_SERVED_OVERFLOW = 'vigil.route.served.overflow' as const;
/** Always 1, one series per route the manifest lists as removed on purpose (`removedRoutes`): the evaluator does not page its removal. */
export const METRIC_ROUTE_REMOVAL_INTENDED = 'vigil.route.removal.intended' as const;
/** Default cap on `vigil.route.served` series per instance (label cardinality). */
export const ROUTES_SERVED_MAX = 2000;

/**
 * An info gauge, always 1: why a failing series is 0. One series per failing
 * series of {@link REASON_METRICS}, with that series' attributes plus
 * `vigil.reason.metric` and `vigil.reason`; observed only while the series it
 * explains is 0, so a passing check has none and a reason never sits on the
 * gauges themselves (their series keep their identity when the reason changes).
 */
export const METRIC_CHECK_REASON = 'vigil.check.reason' as const;
/** The metrics whose failing series get a `vigil.check.reason`. */
export const REASON_METRICS = [METRIC_ROUTER_IMPORT, METRIC_ROUTE_REGISTERED, METRIC_STARTUP_CHECK, METRIC_COMPONENT_HEALTHY, METRIC_STARTUP_SUCCESS, METRIC_HEALTH_LEVEL] as const;

// ── Spans ───────────────────────────────────────────────────────────────────
export const SPAN_STARTUP = 'vigil.startup' as const;
export const SPAN_ROUTER_IMPORT = 'vigil.router.import' as const;
export const SPAN_INVENTORY = 'vigil.route.inventory' as const;
/** An event on `vigil.route.inventory`, one per declared endpoint: its verdict and answering layer. */
export const EVENT_ROUTE_VERDICT = 'vigil.route.verdict' as const;
export const SPAN_DEPENDENCY_CHECK = 'vigil.dependency.check' as const;
export const SPAN_PROBE = 'vigil.probe' as const;
/** A business-critical flow: one `vigil.probe` child per step. */
export const SPAN_FLOW = 'vigil.flow' as const;
export const SPAN_RECOVERY = 'vigil.recovery' as const;

/** Header that says what kind of synthetic request this is (`probe`, `flow`, `cors`, `rate-limit`): a label, not proof. */
export const SYNTHETIC_HEADER = 'x-vigil-synthetic' as const;
/** Header with the proof that Vigil sent the request: `<unix seconds>.<HMAC of kind and time under a per-process secret>`. */
export const PROBE_HEADER = 'x-vigil-probe' as const;

/**
 * The Prometheus name of an OpenTelemetry metric, as the Collector (prometheus_remote_write,
 * UnderscoreEscapingWithSuffixes) translates it: dots become underscores, the unit `s`
 * appends `_seconds`.
 */
export function promName(metric: string, unit?: 's'): string {
  const base = metric.replace(/[^a-zA-Z0-9_]/g, '_');
  return unit === 's' ? `${base}_seconds` : base;
}

/** The Prometheus label name of an OpenTelemetry attribute (`http.route` → `http_route`). */
export function promLabel(attribute: string): string {
  return attribute.replace(/[^a-zA-Z0-9_]/g, '_');
}

/** Line breaks, control and format characters (bidi overrides, zero-width): never part of a reason. */
const REASON_NOISE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/g;

/**
 * A reason as one bounded line: the first non-blank line of `text`, control
 * and format characters replaced by spaces, white space collapsed, at most
 * {@link REASON_MAX_LENGTH} characters (a longer one ends with `…`). The SDK
 * applies it after redaction; the evaluator applies it again to what it
 * receives, which it does not trust.
 */
export function boundReason(text: unknown): string {
  const s = typeof text === 'string' ? text : text === undefined || text === null ? '' : String(text);
  const line = s.split(/\r\n|[\n\r\u2028\u2029]/).find((l) => l.trim() !== '') ?? '';
  const clean = line.replace(REASON_NOISE, ' ').replace(/\s+/g, ' ').trim();
  const chars = [...clean];
  return chars.length > REASON_MAX_LENGTH ? `${chars.slice(0, REASON_MAX_LENGTH - 1).join('').trimEnd()}…` : clean;
}
