/**
 * Health bodies in `application/health+json` (draft-inadarei-api-health-check):
 * `status` pass | warn | fail, `checks` keyed `component:measurement`, and
 * `affectedEndpoints` listing the routes that are missing — so the body says
 * which endpoints are gone, not just that something is wrong.
 */
import type { ComponentReport, HealthStatus, StartupReport } from '../startup/report.js';

export const HEALTH_CONTENT_TYPE = 'application/health+json';

export interface HealthCheck {
  componentId: string;
  componentType: 'component' | 'router' | 'route' | 'dependency';
  status: HealthStatus;
  observedValue?: string | number | boolean;
  observedUnit?: string;
  affectedEndpoints?: string[];
  output?: string;
  time: string;
}

export interface HealthBody {
  status: HealthStatus;
  serviceId: string;
  version?: string;
  description: string;
  output?: string;
  checks: Record<string, HealthCheck[]>;
  affectedEndpoints?: string[];
  notes?: string[];
}

/** Which lifecycle phase the app is in; `/ready` and the bodies depend on it. */
export type Phase = 'starting' | 'ready' | 'failed' | 'draining';

/** The status of a `fail` or `warn` component check; pass otherwise. */
function componentChecks(c: ComponentReport, time: string): Record<string, HealthCheck[]> {
  const failStatus: HealthStatus = c.policy === 'fail-fast' ? 'fail' : 'warn';
  const checks: Record<string, HealthCheck[]> = {};
  if (c.routers.length) {
    checks[`${c.name}:router-import`] = c.routers.map((r) => ({
      componentId: `${c.name}/${r.router}`,
      componentType: 'router' as const,
      status: r.outcome === 'success' ? 'pass' : failStatus,
      observedValue: r.outcome,
      ...(r.outcome === 'success' ? {} : { output: r.error ? `${r.errorType}: ${r.error}` : 'router has no routes' }),
      time,
    }));
  }
  if (c.endpoints.length) {
    const missing = c.endpoints.filter((e) => !e.registered).map((e) => `${e.method} ${e.route}`);
    checks[`${c.name}:routes`] = [
      {
        componentId: c.name,
        componentType: 'route',
        status: missing.length === 0 ? 'pass' : failStatus,
        observedValue: c.endpoints.length - missing.length,
        observedUnit: `of ${c.endpoints.length} critical routes registered`,
        ...(missing.length ? { affectedEndpoints: missing, output: `missing: ${missing.join(', ')}` } : {}),
        time,
      },
    ];
  }
  for (const k of c.checks) {
    checks[`${c.name}:${k.check}`] = [
      {
        componentId: c.name,
        componentType: 'dependency',
        status: k.ok ? 'pass' : failStatus,
        observedValue: Math.round(k.durationMs),
        observedUnit: 'ms',
        ...(k.ok ? {} : { output: k.error }),
        time,
      },
    ];
  }
  return checks;
}

/**
 * The detailed body for a set of components (all of them for
 * `/health/detailed`, the business-critical ones for `/health/business-critical`).
 */
export function detailedBody(
  report: StartupReport | undefined,
  phase: Phase,
  meta: { service: string; version?: string },
  filter: (c: ComponentReport) => boolean = () => true,
): HealthBody {
  const base = { serviceId: meta.service, ...(meta.version ? { version: meta.version } : {}) };
  if (!report) {
    return { ...base, status: 'fail', description: 'startup validation has not finished', output: `phase: ${phase}`, checks: {} };
  }
  const time = new Date(report.startedAt.getTime() + report.durationMs).toISOString();
  const components = report.components.filter(filter);
  const checks: Record<string, HealthCheck[]> = {};
  for (const c of components) Object.assign(checks, componentChecks(c, time));
  const status = components.some((c) => c.status === 'fail') ? 'fail' : components.some((c) => c.status === 'warn') ? 'warn' : 'pass';
  const affected = components.flatMap((c) => c.endpoints.filter((e) => !e.registered).map((e) => `${e.method} ${e.route}`));
  const failing = components.filter((c) => c.status !== 'pass');
  return {
    ...base,
    status: phase === 'draining' && status === 'pass' ? 'warn' : status,
    description: `Vigil startup validation of ${components.length} component(s)`,
    ...(failing.length ? { output: failing.map((c) => `${c.name}: ${c.reasons.join('; ')}`).join(' | ') } : {}),
    checks,
    ...(affected.length ? { affectedEndpoints: affected } : {}),
    ...(phase === 'draining' ? { notes: ['shutting down: not ready for new traffic'] } : {}),
  };
}
