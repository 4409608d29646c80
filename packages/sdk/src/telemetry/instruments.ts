/**
 * Vigil's instruments. State metrics are observable gauges read from the
 * current report at every collection, so a forced flush exports the state as it
 * is now, and the periodic export keeps pushed series fresh (pushed samples get
 * no staleness markers: a series that stops being pushed lingers ~5 minutes).
 */
import type { Attributes, Histogram, Meter } from '@opentelemetry/api';
import type { StartupReport } from '../startup/report.js';
import { reasonText } from './redact.js';
import type { RouteEntry } from '../startup/inventory.js';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_ROUTE,
  ATTR_VIGIL_CHECK,
  ATTR_VIGIL_CHECK_TYPE,
  ATTR_VIGIL_COMPONENT,
  ATTR_VIGIL_CRITICAL,
  ATTR_VIGIL_OUTCOME,
  ATTR_VIGIL_POLICY,
  ATTR_VIGIL_ROUTER,
  ATTR_VIGIL_REASON,
  ATTR_VIGIL_REASON_METRIC,
  METRIC_CHECK_REASON,
  METRIC_COMPONENT_HEALTHY,
  METRIC_INSTANCE_RUNNING,
  METRIC_ROUTE_REGISTERED,
  METRIC_ROUTE_UNDOCUMENTED,
  METRIC_ROUTER_IMPORT,
  METRIC_STARTUP_CHECK,
  METRIC_STARTUP_DURATION,
  METRIC_STARTUP_SUCCESS,
  OUTCOME_SKIPPED,
  POLICY_VALUE,
} from '../semconv.js';

export interface StartupState {
  report?: StartupReport;
  /** Every route in Express's table at the last inventory. */
  routes: RouteEntry[];
  /** Set by a clean shutdown: `vigil.instance.running` exports 0 from then on. */
  stopped?: boolean;
}

export interface StartupInstruments {
  startupDuration: Histogram;
}

/** One gauge observation: value and attributes. */
type Point = [number, Attributes];

/** The `vigil.check.reason` point explaining the series `attrs` of `metric` (which is 0): the same attributes, the metric, the reason. */
export function reasonPoint(metric: string, attrs: Attributes, reason: string | undefined): Point {
  return [1, { ...attrs, [ATTR_VIGIL_REASON_METRIC]: metric, [ATTR_VIGIL_REASON]: reasonText(reason) || 'failed (no reason given)' }];
}

/** The observations of every startup gauge for a state; pure, so it is tested directly. */
export function startupPoints(state: StartupState): Record<string, Point[]> {
  const report = state.report;
  if (!report) return {};
  const routers: Point[] = [];
  const routes: Point[] = [];
  const checks: Point[] = [];
  const components: Point[] = [];
  const reasons: Point[] = [];
  const declared = new Set<string>();
  for (const c of report.components) {
    const policy = POLICY_VALUE[c.policy];
    const componentAttrs = { [ATTR_VIGIL_COMPONENT]: c.name, [ATTR_VIGIL_POLICY]: policy };
    components.push([c.status === 'pass' ? 1 : 0, componentAttrs]);
    if (c.status !== 'pass') reasons.push(reasonPoint(METRIC_COMPONENT_HEALTHY, componentAttrs, c.reasons[0]));
    for (const r of c.routers) {
      const attrs: Attributes = { [ATTR_VIGIL_ROUTER]: r.router, [ATTR_VIGIL_COMPONENT]: c.name, [ATTR_VIGIL_OUTCOME]: r.outcome };
      if (r.errorType) attrs[ATTR_ERROR_TYPE] = r.errorType;
      routers.push([r.outcome === 'success' ? 1 : 0, attrs]);
      if (r.outcome !== 'success') reasons.push(reasonPoint(METRIC_ROUTER_IMPORT, attrs, r.error ?? 'router has no routes'));
    }
    // A route missing because its router failed to import says so: the import error is the reason.
    const importError = c.routers.find((r) => r.outcome === 'failed')?.error;
    for (const e of c.endpoints) {
      declared.add(`${e.method} ${e.route}`);
      const attrs = { [ATTR_HTTP_ROUTE]: e.route, [ATTR_HTTP_REQUEST_METHOD]: e.method, [ATTR_VIGIL_COMPONENT]: c.name, [ATTR_VIGIL_CRITICAL]: true };
      routes.push([e.registered ? 1 : 0, attrs]);
      if (!e.registered) reasons.push(reasonPoint(METRIC_ROUTE_REGISTERED, attrs, importError !== undefined ? `router failed to import: ${importError}` : `${e.verdict}${e.reason ? `: ${e.reason}` : ''}`));
    }
    for (const k of c.checks) {
      const attrs = { [ATTR_VIGIL_CHECK]: k.check, [ATTR_VIGIL_CHECK_TYPE]: k.type, [ATTR_VIGIL_COMPONENT]: c.name, [ATTR_VIGIL_POLICY]: policy, ...(k.skipped ? { [ATTR_VIGIL_OUTCOME]: OUTCOME_SKIPPED } : {}) };
      checks.push([k.ok ? 1 : 0, attrs]);
      if (!k.ok) reasons.push(reasonPoint(METRIC_STARTUP_CHECK, attrs, k.error));
    }
  }
  // Undeclared routes are inventoried too (bounded by the app's own route table).
  const seen = new Set<string>();
  for (const r of state.routes) {
    const key = `${r.method} ${r.path}`;
    if (declared.has(key) || seen.has(key)) continue;
    seen.add(key);
    routes.push([1, { [ATTR_HTTP_ROUTE]: r.path, [ATTR_HTTP_REQUEST_METHOD]: r.method, [ATTR_VIGIL_CRITICAL]: false }]);
  }
  // The refusal's reason: the first failing fail-fast component's first reason.
  const refusedBy = report.ok ? undefined : report.components.find((c) => c.status === 'fail');
  if (refusedBy) reasons.push(reasonPoint(METRIC_STARTUP_SUCCESS, {}, `${refusedBy.name}: ${refusedBy.reasons[0] ?? 'failed'}`));
  return {
    [METRIC_ROUTER_IMPORT]: routers,
    [METRIC_ROUTE_REGISTERED]: routes,
    [METRIC_STARTUP_CHECK]: checks,
    [METRIC_COMPONENT_HEALTHY]: components,
    [METRIC_STARTUP_SUCCESS]: [[report.ok ? 1 : 0, {}]],
    [METRIC_CHECK_REASON]: reasons,
    [METRIC_ROUTE_UNDOCUMENTED]: report.undocumented ? [[report.undocumented.count, {}]] : [],
  };
}

/** Shared with the runtime monitor, which observes the same gauge: one descriptor, one stream. */
export const REASON_DESCRIPTION = 'Always 1: why the failing series named by vigil.reason.metric (same attributes) is 0, in vigil.reason';

const DESCRIPTIONS: Record<string, string> = {
  [METRIC_ROUTER_IMPORT]: '1 when the router module loaded and contributed routes, 0 when it failed or has none',
  [METRIC_ROUTE_REGISTERED]: '1 when the route is in the Express route table, 0 when a declared route is missing',
  [METRIC_STARTUP_CHECK]: '1 when the startup dependency check passed',
  [METRIC_COMPONENT_HEALTHY]: '1 while the component passes startup validation',
  [METRIC_STARTUP_SUCCESS]: '1 when startup validation finished with no fail-fast failure',
  [METRIC_CHECK_REASON]: REASON_DESCRIPTION,
  [METRIC_ROUTE_UNDOCUMENTED]: 'Routes registered in Express that the manifest does not declare',
  [METRIC_INSTANCE_RUNNING]: '1 while the instance runs, 0 in its last export after a clean shutdown',
};

/** Registers the observable gauges over `state` and the startup histogram. */
export function registerStartupInstruments(meter: Meter, state: StartupState): StartupInstruments {
  const gauges = Object.fromEntries(
    Object.entries(DESCRIPTIONS).map(([name, description]) => [name, meter.createObservableGauge(name, { description })]),
  );
  meter.addBatchObservableCallback((result) => {
    for (const [name, points] of Object.entries(startupPoints(state))) {
      const gauge = gauges[name];
      if (gauge) for (const [value, attrs] of points) result.observe(gauge, value, attrs);
    }
    // From the start (before any report): the instance runs until a clean shutdown says otherwise.
    result.observe(gauges[METRIC_INSTANCE_RUNNING]!, state.stopped ? 0 : 1);
  }, Object.values(gauges));
  return {
    startupDuration: meter.createHistogram(METRIC_STARTUP_DURATION, {
      unit: 's',
      description: 'Time spent in startup validation',
      advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] },
    }),
  };
}
