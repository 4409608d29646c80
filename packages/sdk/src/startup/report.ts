/**
 * The decision matrix and the startup report. A component fails when one of its
 * routers did not load, one of its critical endpoints is not answered by a
 * route of its own, or one of its dependency checks failed. Its policy decides
 * what that means: `fail-fast` stops startup, `degrade` starts it marked
 * degraded. A router with no routes (yet) is a warning: it is mounted, and
 * counts once its routes appear.
 */
import type { HttpMethod, Manifest, Policy } from '../manifest/schema.js';
import { formatDuration } from '../util/duration.js';
import type { CheckResult } from './dependencies.js';
import { describeLayer, resolveRoute, type AnsweringLayer, type Verdict } from './inventory.js';
import type { RouterResult } from './routers.js';
import { describeUndocumented, type UndocumentedFinding } from './route-table.js';

/** `pass`: healthy. `warn`: a `degrade` component failed. `fail`: a `fail-fast` component failed. */
export type HealthStatus = 'pass' | 'warn' | 'fail';

export interface EndpointResult {
  component: string;
  method: HttpMethod;
  route: string;
  /** True when `verdict` is `registered`. */
  registered: boolean;
  /** What Express would do with the request (see `resolveRoute`). */
  verdict: Verdict;
  /** The layer that would answer, when one would. */
  answeredBy?: AnsweringLayer;
  /** Why it is not registered, one line. */
  reason?: string;
}

/** A declared endpoint resolved on `app` (see `resolveRoute`). */
export function resolveEndpoint(app: unknown, component: string, e: { method: HttpMethod; route: string; probe?: { params?: Record<string, string> } }): EndpointResult {
  const r = resolveRoute(app, e.method, e.route, e.probe?.params);
  return {
    component,
    method: e.method,
    route: e.route,
    registered: r.verdict === 'registered',
    verdict: r.verdict,
    ...(r.answeredBy ? { answeredBy: r.answeredBy } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
  };
}

/** `GET /x is not registered: only the catch-all … would answer`. */
export function endpointProblem(e: Pick<EndpointResult, 'method' | 'route' | 'verdict' | 'reason'>): string {
  return `route ${e.method} ${e.route} is ${e.verdict === 'missing' ? 'not registered' : `${e.verdict}`}${e.reason ? `: ${e.reason}` : ''}`;
}

export interface ComponentReport {
  name: string;
  policy: Policy;
  businessCritical: boolean;
  status: HealthStatus;
  /** Why it is not passing, one line each. */
  reasons: string[];
  /** What does not fail it but is worth a look (a router with no routes yet), one line each. */
  warnings: string[];
  routers: RouterResult[];
  endpoints: EndpointResult[];
  checks: CheckResult[];
}

export interface StartupReport {
  service: string;
  /** False when a fail-fast component failed: the app must not take traffic. */
  ok: boolean;
  status: HealthStatus;
  components: ComponentReport[];
  /** Every declared endpoint that Express does not have, as `METHOD /path`. */
  missingEndpoints: string[];
  /** How many routes Express has in all. */
  routeCount: number;
  /** Routes in Express that the manifest does not declare (absent under `undocumentedRoutes.policy: ignore`). */
  undocumented?: UndocumentedFinding;
  startedAt: Date;
  durationMs: number;
}

export interface ReportInputs {
  manifest: Manifest;
  routers: RouterResult[];
  endpoints: EndpointResult[];
  checks: CheckResult[];
  routeCount: number;
  undocumented?: UndocumentedFinding;
  startedAt: Date;
  durationMs: number;
}

export function decide(inputs: ReportInputs): StartupReport {
  const components = Object.entries(inputs.manifest.components).map(([name, spec]): ComponentReport => {
    const routers = inputs.routers.filter((r) => r.component === name);
    const endpoints = inputs.endpoints.filter((e) => e.component === name);
    const checks = inputs.checks.filter((c) => c.component === name);
    const reasons = [
      ...routers.filter((r) => r.outcome === 'failed').map((r) => `router ${r.router} failed to import: ${r.errorType}: ${r.error}`),
      ...endpoints.filter((e) => !e.registered).map(endpointProblem),
      ...checks.filter((c) => !c.ok).map((c) => `dependency ${c.check} (${c.type}) failed: ${c.error}`),
    ];
    const warnings = routers.filter((r) => r.outcome === 'no_routes').map((r) => `router ${r.router} has no routes yet (mounted at ${r.mount}; they count once they appear)`);
    const status: HealthStatus = reasons.length ? (spec.policy === 'fail-fast' ? 'fail' : 'warn') : warnings.length ? 'warn' : 'pass';
    return { name, policy: spec.policy, businessCritical: spec.businessCritical, status, reasons: [...reasons, ...warnings], warnings, routers, endpoints, checks };
  });
  const undocumented = inputs.undocumented?.policy === 'ignore' ? undefined : inputs.undocumented;
  // `degrade`: an undocumented route starts the app degraded; `warn` only reports it.
  const status = worst([...components.map((c) => c.status), undocumented?.policy === 'degrade' && undocumented.count > 0 ? 'warn' : 'pass']);
  return {
    service: inputs.manifest.service,
    ok: status !== 'fail',
    status,
    components,
    missingEndpoints: inputs.endpoints.filter((e) => !e.registered).map((e) => `${e.method} ${e.route}`),
    routeCount: inputs.routeCount,
    ...(undocumented ? { undocumented } : {}),
    startedAt: inputs.startedAt,
    durationMs: inputs.durationMs,
  };
}

export function worst(statuses: HealthStatus[]): HealthStatus {
  if (statuses.includes('fail')) return 'fail';
  if (statuses.includes('warn')) return 'warn';
  return 'pass';
}

const MARK: Record<HealthStatus, string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' };

/** The report for people: one block per component, what failed and the policy applied. */
export function formatReport(report: StartupReport): string {
  const lines: string[] = [];
  const verdict =
    report.status === 'pass'
      ? 'all components pass'
      : report.status === 'warn'
        ? 'starting DEGRADED'
        : 'REFUSING TO START (fail-fast component failed)';
  lines.push(`Vigil startup validation — ${report.service}: ${verdict} (${formatDuration(report.durationMs)}, ${report.routeCount} routes in Express)`);
  for (const c of report.components) {
    const policy = c.policy === 'fail-fast' ? 'fail-fast' : 'degrade';
    lines.push(`  [${MARK[c.status]}] ${c.name} (${policy}${c.businessCritical ? ', business-critical' : ''})`);
    for (const r of c.routers) {
      const what = r.outcome === 'success' ? `${r.routeCount} route${r.routeCount === 1 ? "" : "s"} at ${r.mount}` : r.outcome === 'failed' ? `FAILED ${r.errorType}: ${r.error}` : `NO ROUTES YET (mounted at ${r.mount})`;
      // A CommonJS load error's "Require stack" lines go under it, indented.
      lines.push(`      router ${r.router}: ${what}`.replace(/\n/g, '\n          '));
    }
    for (const e of c.endpoints) {
      const by = e.answeredBy ? ` → ${describeLayer(e.answeredBy)}` : '';
      lines.push(e.registered ? `      ok      ${e.method} ${e.route}${by}` : `      MISSING ${e.method} ${e.route} [${e.verdict}]${e.reason ? `: ${e.reason}` : ''}`);
    }
    for (const k of c.checks) {
      if (k.skipped) lines.push(`      skipped ${k.type} ${k.check} → ${k.target}: ${k.skipped.replace(/^skipped: /, '')}`);
      else lines.push(`      ${k.ok ? 'ok     ' : 'FAILED '} ${k.type} ${k.check} → ${k.target}${k.ok ? '' : `: ${k.error}`} (${formatDuration(k.durationMs)})`);
    }
  }
  if (report.missingEndpoints.length) lines.push(`  Missing critical endpoints: ${report.missingEndpoints.join(', ')}`);
  if (report.undocumented?.count) lines.push(`  [${report.undocumented.policy === 'degrade' ? 'WARN' : 'NOTE'}] ${describeUndocumented(report.undocumented)}`);
  return lines.join('\n');
}

/** A JSON-safe copy of the report (router handles dropped). */
export function reportToJSON(report: StartupReport): unknown {
  return {
    ...report,
    startedAt: report.startedAt.toISOString(),
    components: report.components.map((c) => ({ ...c, routers: c.routers.map(({ handle: _h, ...r }) => r) })),
  };
}
