/**
 * Level 1: a dependency of the manifest (database, cache, …) checked again on
 * the monitor's interval, and on a health request once its cached result is
 * older than the check's `cache`.
 */
import type { DependencyCheck } from '../../manifest/schema.js';
import { runBounded, SkipCheck } from '../../startup/dependencies.js';
import { errorMessage } from '../../util/modules.js';
import type { MonitorCheck } from '../types.js';

export function dependencyCheck(o: { component: string; name: string; check: DependencyCheck; env: NodeJS.ProcessEnv; baseUrl: URL; intervalMs: number }): MonitorCheck {
  return {
    id: `dependency:${o.component}/${o.name}`,
    level: 1,
    component: o.component,
    healthKey: `${o.component}:${o.name}`,
    intervalMs: o.intervalMs,
    // A second of grace: the check's own timeout answers first, with its own reason ("timeout after 2s").
    timeoutMs: o.check.timeout + 1000,
    cacheMs: o.check.cache,
    async run(signal) {
      const started = performance.now();
      const ms = () => Math.round(performance.now() - started);
      try {
        await runBounded(o.check, o.env, o.baseUrl, signal);
        return { status: 'pass', observedValue: ms(), observedUnit: 'ms' };
      } catch (err) {
        if (err instanceof SkipCheck) return { status: 'pass', output: err.message };
        return { status: 'fail', output: errorMessage(err), observedValue: ms(), observedUnit: 'ms' };
      }
    },
  };
}
