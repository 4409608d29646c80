/**
 * Which endpoints the monitor may probe. A probe runs the app's handler every
 * interval, so by default only safe methods (GET, HEAD, OPTIONS) are probed: a
 * POST probe created real records on a URL shortener, and a wrong-password
 * login probe used up a brute-force limiter. Any other method needs
 * `probe.unsafe: true`, or a flow that calls the endpoint; the manifest check
 * warns about every unsafe request that is opted in.
 */
import type { Endpoint, Manifest } from '../manifest/schema.js';

export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The flows (`component/flow`) with a step calling `method route` (a `${capture}` or a `:param` matches one segment). */
export function flowsCalling(m: Manifest, method: string, route: string): string[] {
  const pattern = new RegExp(`^${route.split('/').map((s) => (s.startsWith(':') ? '[^/]+' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/')}/?$`, 'i');
  const out: string[] = [];
  for (const [component, spec] of Object.entries(m.components)) {
    for (const [name, flow] of Object.entries(spec.flows)) {
      const calls = (flow.steps ?? []).some((s) => s.method === method && pattern.test(s.path.split('?')[0]!.replace(/\$\{[^}]*\}/g, 'x')));
      if (calls) out.push(`${component}/${name}`);
    }
  }
  return out;
}

/** Why the endpoint's own probe does not run for its method, or undefined when it may run. */
export function unsafeNotProbed(m: Manifest, e: Pick<Endpoint, 'method' | 'route' | 'probe'>): string | undefined {
  if (SAFE_METHODS.has(e.method) || e.probe.unsafe) return undefined;
  const flows = flowsCalling(m, e.method, e.route);
  return flows.length
    ? `not probed: ${e.method} needs probe.unsafe; flow ${flows.join(', flow ')} calls it`
    : `not probed: ${e.method} needs probe.unsafe or a flow`;
}

export interface ProbePlan {
  /** Unsafe requests the monitor will send because the manifest opts in: each one runs a handler that may change data. */
  warnings: string[];
  /** Endpoints whose probe does not run for their method, with the reason. */
  notProbed: string[];
}

/** What the manifest check reports about the monitor's probes. */
export function probePlan(m: Manifest): ProbePlan {
  const plan: ProbePlan = { warnings: [], notProbed: [] };
  for (const [component, spec] of Object.entries(m.components)) {
    for (const e of spec.endpoints.filter((x) => x.probe.enabled && !SAFE_METHODS.has(x.method))) {
      const why = unsafeNotProbed(m, e);
      if (why) plan.notProbed.push(`${component}: ${e.method} ${e.route} ${why}`);
      else plan.warnings.push(`${component}: the probe of ${e.method} ${e.route} sends ${e.method} (probe.unsafe): it must create nothing, and a rate limiter must skip it (guard.isProbe)`);
    }
    for (const [name, flow] of Object.entries(spec.flows)) {
      for (const s of (flow.steps ?? []).filter((x) => !SAFE_METHODS.has(x.method))) {
        plan.warnings.push(`${component}: flow ${name}, step ${s.name} sends ${s.method} ${s.path}: it must create nothing lasting, and a rate limiter must skip it (guard.isProbe)`);
      }
    }
  }
  return plan;
}

/** The plan as lines for `vigil preflight` (nothing when every probe is safe). */
export function formatProbePlan(plan: ProbePlan): string {
  const lines = [...plan.warnings.map((w) => `  WARNING ${w}`), ...plan.notProbed.map((n) => `  note    ${n}`)];
  return lines.length ? `Probes:\n${lines.join('\n')}\n` : '';
}
