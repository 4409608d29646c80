/**
 * The decision matrix and the startup report. A component fails when one of its
 * routers did not load (or has no routes), one of its critical endpoints is not
 * in Express's table, or one of its dependency checks failed. Its policy decides
 * what that means: `fail-fast` stops startup, `degrade` starts it marked degraded.
 */
import type { HttpMethod, Manifest, Policy } from '../manifest/schema.js';
import { formatDuration } from '../util/duration.js';
import type { CheckResult } from './dependencies.js';
import type { RouterResult } from './routers.js';

/** `pass`: healthy. `warn`: a `degrade` component failed. `fail`: a `fail-fast` component failed. */
export type HealthStatus = 'pass' | 'warn' | 'fail';

export interface EndpointResult {
  component: string;
  method: HttpMethod;
  route: string;
  registered: boolean;
}

export interface ComponentReport {
  name: string;
  policy: Policy;
  businessCritical: boolean;
  status: HealthStatus;
  /** Why it is not passing, one line each. */
  reasons: string[];
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
  startedAt: Date;
  durationMs: number;
}

export interface ReportInputs {
  manifest: Manifest;
  routers: RouterResult[];
  endpoints: EndpointResult[];
  checks: CheckResult[];
  routeCount: number;
  startedAt: Date;
  durationMs: number;
}

export function decide(inputs: ReportInputs): StartupReport {
  const components = Object.entries(inputs.manifest.components).map(([name, spec]): ComponentReport => {
    const routers = inputs.routers.filter((r) => r.component === name);
    const endpoints = inputs.endpoints.filter((e) => e.component === name);
    const checks = inputs.checks.filter((c) => c.component === name);
    const reasons = [
      ...routers
        .filter((r) => r.outcome !== 'success')
        .map((r) => (r.outcome === 'failed' ? `router ${r.router} failed to import: ${r.errorType}: ${r.error}` : `router ${r.router} has no routes`)),
      ...endpoints.filter((e) => !e.registered).map((e) => `route ${e.method} ${e.route} is not registered`),
      ...checks.filter((c) => !c.ok).map((c) => `dependency ${c.check} (${c.type}) failed: ${c.error}`),
    ];
    const status: HealthStatus = reasons.length === 0 ? 'pass' : spec.policy === 'fail-fast' ? 'fail' : 'warn';
    return { name, policy: spec.policy, businessCritical: spec.businessCritical, status, reasons, routers, endpoints, checks };
  });
  const status = worst(components.map((c) => c.status));
  return {
    service: inputs.manifest.service,
    ok: status !== 'fail',
    status,
    components,
    missingEndpoints: inputs.endpoints.filter((e) => !e.registered).map((e) => `${e.method} ${e.route}`),
    routeCount: inputs.routeCount,
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
      const what = r.outcome === 'success' ? `${r.routeCount} route${r.routeCount === 1 ? "" : "s"} at ${r.mount}` : r.outcome === 'failed' ? `FAILED ${r.errorType}: ${r.error}` : 'NO ROUTES';
      lines.push(`      router ${r.router}: ${what}`);
    }
    for (const e of c.endpoints) lines.push(`      ${e.registered ? 'ok     ' : 'MISSING'} ${e.method} ${e.route}`);
    for (const k of c.checks) {
      if (k.skipped) lines.push(`      skipped ${k.type} ${k.check} → ${k.target}: ${k.skipped.replace(/^skipped: /, '')}`);
      else lines.push(`      ${k.ok ? 'ok     ' : 'FAILED '} ${k.type} ${k.check} → ${k.target}${k.ok ? '' : `: ${k.error}`} (${formatDuration(k.durationMs)})`);
    }
  }
  if (report.missingEndpoints.length) lines.push(`  Missing critical endpoints: ${report.missingEndpoints.join(', ')}`);
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
