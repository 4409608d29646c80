/**
 * The route set an instance really serves, for the evaluator's release-over-release
 * comparison: `vigil.route.served` (1 per method and route of Express's live route
 * table) and `vigil.route.removal.intended` (1 per route the manifest lists under
 * `removedRoutes`). Not the declared routes: a release that drops a route usually
 * drops it from the manifest too, so only the live table tells.
 *
 * Observed only once startup validation has produced a report (a starting instance
 * exports no partial set), from the routes of the latest inventory (refreshed by the
 * periodic inventory, so a route gone at run time disappears from the next export).
 * Bounded: at most `max` series; the routes beyond are counted, not named.
 */
import type { Attributes, Meter } from '@opentelemetry/api';
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_ROUTE,
  ATTR_VIGIL_COMPONENT,
  ATTR_VIGIL_REASON,
  METRIC_ROUTE_REMOVAL_INTENDED,
  METRIC_ROUTE_SERVED,
  METRIC_ROUTE_SERVED_OVERFLOW,
  ROUTES_SERVED_MAX,
  boundReason,
} from '../semconv.js';
import type { StartupState } from './instruments.js';

type Point = [number, Attributes];

/** A route written `GET /api/v1/users`: method and path, or undefined when it is not one. */
export function parseRouteText(text: unknown): { method: string; route: string } | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^\s*([A-Za-z]+)\s+(\/\S*)\s*$/.exec(text);
  return m ? { method: m[1]!.toUpperCase(), route: m[2]! } : undefined;
}

/**
 * The manifest's intended removals, read defensively: `removedRoutes` is a list of
 * `{ route: "GET /x", reason? }` (or plain `"GET /x"` strings); anything else is skipped.
 * The manifest schema owns the field; this only reads it when it is there.
 */
export function intendedRemovals(manifest: unknown, max: number): Array<{ method: string; route: string; reason?: string }> {
  const list = (manifest as { removedRoutes?: unknown } | null | undefined)?.removedRoutes;
  if (!Array.isArray(list)) return [];
  const out: Array<{ method: string; route: string; reason?: string }> = [];
  for (const item of list.slice(0, max)) {
    const entry = typeof item === 'string' ? { route: item } : (item as { route?: unknown; reason?: unknown } | null);
    const parsed = parseRouteText(entry?.route);
    if (!parsed) continue;
    const reason = typeof entry?.reason === 'string' ? boundReason(entry.reason) : '';
    out.push({ ...parsed, ...(reason ? { reason } : {}) });
  }
  return out;
}

/** The cap from `VIGIL_ROUTES_SERVED_MAX` (a whole number from 1), else {@link ROUTES_SERVED_MAX}. */
export function servedMax(env: NodeJS.ProcessEnv): number {
  const n = Number(env.VIGIL_ROUTES_SERVED_MAX);
  return Number.isInteger(n) && n >= 1 ? n : ROUTES_SERVED_MAX;
}

/** The observations of the served-routes gauges; pure, so it is tested directly. */
export function servedPoints(state: StartupState, manifest: unknown, max: number): Record<string, Point[]> {
  const report = state.report;
  if (!report) return {};
  // A served route that is a declared endpoint carries its component.
  const componentOf = new Map<string, string>();
  for (const c of report.components) for (const e of c.endpoints) componentOf.set(`${e.method} ${e.route}`, c.name);
  const served: Point[] = [];
  const seen = new Set<string>();
  let overflow = 0;
  for (const r of state.routes) {
    const key = `${r.method} ${r.path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (served.length >= max) {
      overflow++;
      continue;
    }
    const component = componentOf.get(key);
    served.push([1, { [ATTR_HTTP_REQUEST_METHOD]: r.method, [ATTR_HTTP_ROUTE]: r.path, ...(component ? { [ATTR_VIGIL_COMPONENT]: component } : {}) }]);
  }
  const intended: Point[] = intendedRemovals(manifest, max).map((r) => [1, { [ATTR_HTTP_REQUEST_METHOD]: r.method, [ATTR_HTTP_ROUTE]: r.route, ...(r.reason ? { [ATTR_VIGIL_REASON]: r.reason } : {}) }]);
  return { [METRIC_ROUTE_SERVED]: served, [METRIC_ROUTE_SERVED_OVERFLOW]: [[overflow, {}]], [METRIC_ROUTE_REMOVAL_INTENDED]: intended };
}

const DESCRIPTIONS: Record<string, string> = {
  [METRIC_ROUTE_SERVED]: 'Always 1: a route Express really serves (live route table after startup validation)',
  [METRIC_ROUTE_SERVED_OVERFLOW]: 'Routes served but not exported as vigil.route.served because of the cap',
  [METRIC_ROUTE_REMOVAL_INTENDED]: 'Always 1: a route the manifest lists as removed on purpose (removedRoutes)',
};

/** Registers the served-routes gauges over `state` (the guard's) and the manifest. Never throws into the export. */
export function registerServedRoutes(meter: Meter, state: StartupState, manifest: unknown, env: NodeJS.ProcessEnv): void {
  const max = servedMax(env);
  const gauges = Object.fromEntries(Object.entries(DESCRIPTIONS).map(([name, description]) => [name, meter.createObservableGauge(name, { description })]));
  meter.addBatchObservableCallback((result) => {
    for (const [name, points] of Object.entries(servedPoints(state, manifest, max))) {
      const gauge = gauges[name];
      if (gauge) for (const [value, attrs] of points) result.observe(gauge, value, attrs);
    }
  }, Object.values(gauges));
}
