/** Level 1: a dependency of the manifest (database, cache, …) checked again on the monitor's interval. */
import type { DependencyCheck } from '../../manifest/schema.js';
import { runOne } from '../../startup/dependencies.js';
import { errorMessage } from '../../util/modules.js';
import type { MonitorCheck } from '../types.js';

export function dependencyCheck(o: { component: string; name: string; check: DependencyCheck; env: NodeJS.ProcessEnv; baseUrl: URL; intervalMs: number }): MonitorCheck {
  return {
    id: `dependency:${o.component}/${o.name}`,
    level: 1,
    component: o.component,
    healthKey: `${o.component}:${o.name}`,
    intervalMs: o.intervalMs,
    timeoutMs: o.check.timeout,
    async run(signal) {
      const started = performance.now();
      try {
        await runOne(o.check, o.env, o.baseUrl, signal);
        return { status: 'pass', observedValue: Math.round(performance.now() - started), observedUnit: 'ms' };
      } catch (err) {
        return { status: 'fail', output: errorMessage(err), observedValue: Math.round(performance.now() - started), observedUnit: 'ms' };
      }
    },
  };
}
