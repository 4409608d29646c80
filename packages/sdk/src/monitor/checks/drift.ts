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
}

export function driftCheck(o: DriftCheckOptions): MonitorCheck {
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
      return {
        status: missing.length ? 'fail' : 'pass',
        observedValue: o.endpoints.length - missing.length,
        observedUnit: `of ${o.endpoints.length} critical routes registered`,
        ...(missing.length ? { affectedEndpoints: missing, output: `missing since startup: ${missing.join(', ')}` } : {}),
      };
    },
  };
}

/** Routes in `now` that were not in `before` (by method and path). */
export function newRoutes(before: RouteEntry[], now: RouteEntry[]): RouteEntry[] {
  const seen = new Set(before.map((r) => `${r.method} ${r.path}`));
  return now.filter((r) => !seen.has(`${r.method} ${r.path}`));
}

export { listRoutes };
