/**
 * Level 2: route-table drift. The inventory is read again on an interval: a
 * critical route that disappears after startup (a hot reload, a router swapped
 * out) fails its component; routes that appear are reported.
 */
import { hasRoute, listRoutes, type RouteEntry } from '../../startup/inventory.js';
import type { MonitorCheck } from '../types.js';

export interface DriftCheckOptions {
  component: string;
  /** The component's declared endpoints. */
  endpoints: Array<{ method: string; route: string }>;
  app: () => unknown;
  intervalMs: number;
  /** Called once for each set of routes that appeared since the previous run. */
  onNewRoutes?: (routes: RouteEntry[]) => void;
}

export function driftCheck(o: DriftCheckOptions): MonitorCheck {
  let baseline: RouteEntry[] | undefined;
  let previous: RouteEntry[] | undefined;
  return {
    id: `drift:${o.component}`,
    level: 2,
    component: o.component,
    healthKey: `${o.component}:routes`,
    intervalMs: o.intervalMs,
    timeoutMs: 5000,
    async run() {
      const app = o.app();
      const missing = o.endpoints.filter((e) => !hasRoute(app, e.method, e.route)).map((e) => `${e.method} ${e.route}`);
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
          ? { affectedEndpoints: missing, output: `not registered: ${missing.join(', ')}` }
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

