/**
 * Health bodies in `application/health+json` (draft-inadarei-api-health-check):
 * `status` pass | warn | fail, `checks` keyed `component:measurement`, and
 * `affectedEndpoints` listing the routes that are missing — so the body says
 * which endpoints are gone, not just that something is wrong.
 */
import { known, type CheckOutcome, type CheckStatus, type MonitorCheck } from '../monitor/types.js';
import { describeLayer } from '../startup/inventory.js';
import { describeUndocumented } from '../startup/route-table.js';
import { reasonText } from '../telemetry/redact.js';
import { worst, type ComponentReport, type HealthStatus, type StartupReport } from '../startup/report.js';

export const HEALTH_CONTENT_TYPE = 'application/health+json';

export interface HealthCheck {
  componentId: string;
  componentType: 'component' | 'router' | 'route' | 'dependency' | 'endpoint' | 'flow' | 'process' | 'integration';
  /** Vigil's health level (1 process, 2 endpoints, 3 business flows, 4 integration), for runtime checks. */
  level?: 1 | 2 | 3 | 4;
  /** `unknown`: a runtime check that has not run yet (or cannot run); it is never reported as `pass`. */
  status: CheckStatus;
  observedValue?: string | number | boolean;
  observedUnit?: string;
  affectedEndpoints?: string[];
  output?: string;
  /** Route verdicts: the layer that would answer the endpoint (`GET /users/:id (handler show, …)`). */
  answeredBy?: string;
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

/** What the runtime monitor knows, for the bodies: every check's damped state, each component's runtime status. */
export interface RuntimeView {
  checks: Array<{ check: MonitorCheck; state: { status: CheckStatus; outcome: CheckOutcome; lastRunAt: Date | undefined } }>;
  componentStatus(component: string): HealthStatus;
}

const TYPE_OF: Record<string, HealthCheck['componentType']> = {
  endpoint: 'endpoint',
  flow: 'flow',
  dependency: 'dependency',
  drift: 'route',
  process: 'process',
  integration: 'integration',
  'error-rate': 'endpoint',
};

function runtimeEntry(check: MonitorCheck, state: RuntimeView['checks'][number]['state']): HealthCheck {
  const o = state.outcome;
  return {
    componentId: check.component ?? check.id,
    componentType: TYPE_OF[check.id.split(':')[0]!] ?? 'component',
    level: check.level,
    status: state.status,
    ...(o.observedValue !== undefined ? { observedValue: o.observedValue } : {}),
    ...(o.observedUnit ? { observedUnit: o.observedUnit } : {}),
    ...(o.affectedEndpoints && state.status !== 'pass' ? { affectedEndpoints: o.affectedEndpoints } : {}),
    ...(o.output ? { output: reasonText(o.output) } : {}),
    time: (state.lastRunAt ?? new Date()).toISOString(),
  };
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
      ...(r.outcome === 'success' ? {} : { output: r.error ? `${r.errorType}: ${reasonText(r.error)}` : 'router has no routes' }),
      time,
    }));
  }
  if (c.endpoints.length) {
    const missing = c.endpoints.filter((e) => !e.registered);
    checks[`${c.name}:routes`] = [
      {
        componentId: c.name,
        componentType: 'route',
        status: missing.length === 0 ? 'pass' : failStatus,
        observedValue: c.endpoints.length - missing.length,
        observedUnit: `of ${c.endpoints.length} critical routes registered`,
        ...(missing.length
          ? {
              affectedEndpoints: missing.map((e) => `${e.method} ${e.route}`),
              output: `missing: ${missing.map((e) => `${e.method} ${e.route} (${e.verdict}${e.reason ? `: ${e.reason}` : ''})`).join(', ')}`,
            }
          : {}),
        time,
      },
    ];
    // One entry per endpoint: the verdict and the layer that would answer it.
    checks[`${c.name}:route-verdict`] = c.endpoints.map((e) => ({
      componentId: `${e.method} ${e.route}`,
      componentType: 'route' as const,
      status: e.registered ? 'pass' : failStatus,
      observedValue: e.verdict,
      ...(e.answeredBy ? { answeredBy: describeLayer(e.answeredBy) } : {}),
      ...(e.reason ? { output: e.reason } : {}),
      time,
    }));
  }
  for (const k of c.checks) {
    checks[`${c.name}:${k.check}`] = [
      {
        componentId: c.name,
        componentType: 'dependency',
        status: k.ok ? 'pass' : failStatus,
        observedValue: Math.round(k.durationMs),
        observedUnit: 'ms',
        ...(k.ok ? (k.skipped ? { output: k.skipped } : {}) : { output: reasonText(k.error) }),
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
  runtime?: RuntimeView,
  /** Include checks that belong to no component (process, error rate, …). */
  includeGlobal = true,
): HealthBody {
  const base = { serviceId: meta.service, ...(meta.version ? { version: meta.version } : {}) };
  if (!report) {
    return { ...base, status: 'fail', description: 'startup validation has not finished', output: `phase: ${phase}`, checks: {} };
  }
  const time = new Date(report.startedAt.getTime() + report.durationMs).toISOString();
  const components = report.components.filter(filter);
  const names = new Set(components.map((c) => c.name));
  const checks: Record<string, HealthCheck[]> = {};
  for (const c of components) Object.assign(checks, componentChecks(c, time));
  const runtimeChecks = (runtime?.checks ?? []).filter((v) => (v.check.component ? names.has(v.check.component) : includeGlobal));
  for (const v of runtimeChecks) (checks[v.check.healthKey] ??= []).push(runtimeEntry(v.check, v.state));
  // Undocumented routes belong to no component: listed with the app-wide checks.
  const undocumented = includeGlobal && report.undocumented?.count ? report.undocumented : undefined;
  if (undocumented) {
    checks['routes:undocumented'] = [
      { componentId: 'routes', componentType: 'route', status: 'warn', observedValue: undocumented.count, observedUnit: 'undocumented routes', output: describeUndocumented(undocumented), time },
    ];
  }

  // A component's status now: the worse of its startup verdict and its runtime checks.
  const statusOf = (c: ComponentReport) => worst([c.status, runtime?.componentStatus(c.name) ?? 'pass']);
  const globalStatuses = known(runtimeChecks.filter((v) => !v.check.component).map((v) => v.state.status));
  const status = worst([...components.map(statusOf), ...globalStatuses, undocumented?.policy === 'degrade' ? 'warn' : 'pass']);
  const affected = new Set(components.flatMap((c) => c.endpoints.filter((e) => !e.registered).map((e) => `${e.method} ${e.route}`)));
  const bad = (v: (typeof runtimeChecks)[number]) => v.state.status === 'fail' || v.state.status === 'warn';
  for (const v of runtimeChecks) if (bad(v)) for (const e of v.state.outcome.affectedEndpoints ?? []) affected.add(e);
  const problems = [
    ...components.filter((c) => c.status !== 'pass').map((c) => `${c.name}: ${c.reasons.map((r) => reasonText(r)).join('; ')}`),
    ...runtimeChecks.filter(bad).map((v) => `${v.check.id}: ${v.state.outcome.output ? reasonText(v.state.outcome.output) : v.state.status}`),
  ];
  return {
    ...base,
    status: phase === 'draining' && status === 'pass' ? 'warn' : status,
    description: `Vigil health of ${components.length} component(s): startup validation${runtime ? ' and runtime monitor' : ''}`,
    ...(problems.length ? { output: problems.join(' | ') } : {}),
    checks,
    ...(affected.size ? { affectedEndpoints: [...affected] } : {}),
    ...(phase === 'draining' ? { notes: ['shutting down: not ready for new traffic'] } : {}),
  };
}
