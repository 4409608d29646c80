/**
 * Level 2: the live route report. The inventory runs again on an interval: a
 * critical route that disappears after startup (a hot reload, a router swapped
 * out) fails its component, one that appears later (a router that adds its
 * routes after import, async set-up) passes it; routes that appear are
 * reported. With `inventory`, each run refreshes the guard's report, so the
 * health bodies and the gauges agree with the latest run.
 */
import { listRoutes, type RouteEntry } from '../../startup/inventory.js';
import { endpointProblem, resolveEndpoint, type EndpointResult, type StartupReport } from '../../startup/report.js';
import type { MonitorCheck } from '../types.js';

export interface DriftCheckOptions {
  component: string;
  /** The component's declared endpoints. */
  endpoints: Array<{ method: string; route: string; probe?: { params?: Record<string, string> } }>;
  app: () => unknown;
  intervalMs: number;
  /** Runs the guard's inventory now and returns the refreshed report (without it, the endpoints are resolved here). */
  inventory?: () => StartupReport | undefined;
  /** Called once for each set of routes that appeared since the previous run. */
  onNewRoutes?: (routes: RouteEntry[]) => void;
}

type Verdicts = EndpointResult[];

export function driftCheck(o: DriftCheckOptions): MonitorCheck {
  let baseline: RouteEntry[] | undefined;
  let previous: RouteEntry[] | undefined;
  const verdicts = (app: unknown): Verdicts => {
    const fromReport = o.inventory?.()?.components.find((c) => c.name === o.component)?.endpoints;
    return fromReport ?? o.endpoints.map((e) => resolveEndpoint(app, o.component, { ...e, method: e.method as EndpointResult['method'] }));
  };
  return {
    id: `drift:${o.component}`,
    level: 2,
    component: o.component,
    healthKey: `${o.component}:routes`,
    intervalMs: o.intervalMs,
    timeoutMs: 5000,
    async run() {
      const app = o.app();
      const missing = verdicts(app).filter((e) => !e.registered);
      const now = listRoutes(app);
      baseline ??= now;
      const added = newRoutes(previous ?? now, now);
      previous = now;
      if (added.length) o.onNewRoutes?.(added);
      const fresh = newRoutes(baseline, now).map((r) => `${r.method} ${r.path}`);
      return {
        status: missing.length ? 'fail' : 'pass',
        observedValue: o.endpoints.length - missing.length,
        observedUnit: `of ${o.endpoints.length} critical routes registered`,
        ...(missing.length
          ? { affectedEndpoints: missing.map((e) => `${e.method} ${e.route}`), output: `not registered: ${missing.map(endpointProblem).join('; ')}` }
          : fresh.length
            ? { output: `${fresh.length} new route(s) since startup: ${fresh.slice(0, 10).join(', ')}${fresh.length > 10 ? ', …' : ''}` }
            : {}),
      };
    },
  };
}

/** Routes in `now` that were not in `before` (by method and path). */
export function newRoutes(before: RouteEntry[], now: RouteEntry[]): RouteEntry[] {
  const seen = new Set(before.map((r) => `${r.method} ${r.path}`));
  return now.filter((r) => !seen.has(`${r.method} ${r.path}`));
}
