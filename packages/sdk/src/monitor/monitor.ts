/**
 * The runtime monitor (layer 3): builds the checks the manifest asks for,
 * schedules them, damps flapping, and publishes every state change at once —
 * to the health endpoints, to the metrics (with an immediate export) and to
 * recovery. It runs off the request path: a hung probe or a failing exporter
 * changes nothing for real traffic.
 */
import type { Attributes, Histogram, Meter, Tracer, Counter } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { Manifest } from '../manifest/schema.js';
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_VIGIL_CHECK,
  ATTR_VIGIL_COMPONENT,
  ATTR_VIGIL_LEVEL,
  ATTR_VIGIL_OUTCOME,
  METRIC_CHECK_REASON,
  METRIC_HEALTH_LEVEL,
  METRIC_HTTP_ERROR_RATIO,
  METRIC_PROBE_DURATION,
  METRIC_PROBE_SUCCESS,
  METRIC_RECOVERY_ATTEMPTS,
  METRIC_RECOVERY_DURATION,
} from '../semconv.js';
import type { HealthStatus, StartupReport } from '../startup/report.js';
import { worst } from '../startup/report.js';
import { dependencyCheck } from './checks/dependency.js';
import { driftCheck } from './checks/drift.js';
import { endpointCheck } from './checks/endpoint.js';
import { flowCheck } from './checks/flow.js';
import { corsCheck, errorHandlerOrderCheck, jwtConfigCheck, rateLimitCheck } from './checks/integration.js';
import { cpuCheck, eventLoopLagCheck, memoryCheck } from './checks/process.js';
import { FlapState } from './flap.js';
import { Recovery, type RecoveryAction, type RecoveryPolicy } from './recovery.js';
import { errorRateCheck, type RequestTracker } from './requests.js';
import { Scheduler } from './scheduler.js';
import { unsafeNotProbed } from './probe-policy.js';
import { known, type CheckOutcome, type CheckStatus, type MonitorCheck } from './types.js';
import type { RouteEntry } from '../startup/inventory.js';
import { REASON_DESCRIPTION, reasonPoint } from '../telemetry/instruments.js';

export interface MonitorDeps {
  manifest: Manifest;
  env: NodeJS.ProcessEnv;
  /** Relative module specifiers (custom checks) resolve against this. */
  manifestUrl: URL;
  baseUrl: () => string | undefined;
  app: () => unknown;
  routes: () => RouteEntry[];
  /** Runs the route inventory now and returns the refreshed report (the guard's), for the drift checks. */
  inventory?: () => StartupReport | undefined;
  tracer: Tracer;
  meter: Meter | undefined;
  logger: Logger;
  /** The app's request accounting (installed by `mountHealth`), for error rates. */
  requests: RequestTracker;
  /** Called after every published state change (health and metrics read the new state; telemetry is flushed). */
  onChange: (check: MonitorCheck, state: FlapState) => void;
}

/** A check and its published (damped) state. */
export interface CheckView {
  check: MonitorCheck;
  state: FlapState;
}

/** `vigil.health.level`: 1 not failing, 0 failing, -1 not known yet (never counted as passing). */
export const HEALTH_LEVEL_VALUE: Record<CheckStatus, number> = { pass: 1, warn: 1, fail: 0, unknown: -1 };

const PROBE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Monitor {
  readonly scheduler: Scheduler;
  readonly recovery: Recovery;
  private readonly requests: RequestTracker;
  private readonly views = new Map<string, CheckView>();
  private readonly disposers: Array<() => void> = [];
  private readonly probeDuration: Histogram | undefined;
  private readonly recoveryDuration: Histogram | undefined;
  private readonly recoveryAttempts: Counter | undefined;
  private readonly listeners = new Set<(check: MonitorCheck, outcome: CheckOutcome, state: FlapState, changed: boolean) => void>();
  /** The last raw result of each endpoint probe, for `vigil.probe.success`. */
  private readonly lastProbe = new Map<string, { ok: boolean; attrs: Attributes }>();

  constructor(private readonly deps: MonitorDeps) {
    const { manifest: m } = deps;
    const mon = m.monitor;
    this.requests = deps.requests;
    this.scheduler = new Scheduler({
      concurrency: mon.concurrency,
      jitter: mon.jitter,
      onOutcome: (check, outcome) => this.observe(check, outcome),
      onError: (check, err, backoffMs) =>
        deps.logger.error({ check: check.id, err: err instanceof Error ? err.message : String(err), backoffMs }, `monitor check ${check.id} errored; backing off`),
    });
    this.recovery = new Recovery(
      deps.logger,
      {
        attempt: (component, _attempt, ok) => this.recoveryAttempts?.add(1, { [ATTR_VIGIL_COMPONENT]: component, [ATTR_VIGIL_OUTCOME]: ok ? 'recovered' : 'failed' }),
        recovered: (component, mttrMs, attempts) => {
          this.recoveryDuration?.record(mttrMs / 1000, { [ATTR_VIGIL_COMPONENT]: component });
          deps.logger.info({ component, mttrMs, attempts }, `component ${component} recovered after ${Math.round(mttrMs)}ms`);
        },
      },
      (component) => this.confirm(component),
    );
    if (deps.meter) {
      this.probeDuration = deps.meter.createHistogram(METRIC_PROBE_DURATION, { unit: 's', description: 'Synthetic probe latency', advice: { explicitBucketBoundaries: PROBE_BUCKETS } });
      this.recoveryDuration = deps.meter.createHistogram(METRIC_RECOVERY_DURATION, { unit: 's', description: 'Time from a component failing to passing again (MTTR)', advice: { explicitBucketBoundaries: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600] } });
      this.recoveryAttempts = deps.meter.createCounter(METRIC_RECOVERY_ATTEMPTS, { description: 'Recovery attempts, by outcome' });
      this.registerGauges(deps.meter);
    }
    for (const check of this.buildChecks()) this.add(check);
  }

  /** Adds a check (also used for checks an app registers itself). */
  add(check: MonitorCheck): void {
    this.scheduler.add(check);
    this.views.set(check.id, { check, state: new FlapState(this.deps.manifest.monitor) });
  }

  start(): void {
    this.scheduler.start();
  }

  stop(): void {
    this.scheduler.stop();
    this.recovery.stop();
    for (const d of this.disposers) d();
  }

  /** Every check with its published state. */
  get checks(): CheckView[] {
    return [...this.views.values()];
  }

  /** The runtime status of a component: its worst check, mapped by policy (a `degrade` component is at worst `warn`). */
  componentStatus(component: string): HealthStatus {
    const policy = this.deps.manifest.components[component]?.policy;
    const w = worst(known(this.checks.filter((v) => v.check.component === component).map((v) => v.state.status)));
    return w === 'fail' && policy === 'degrade' ? 'warn' : w;
  }

  /**
   * Fresh results for a health request: every cached check `which` selects is
   * run again if its last run is older than its `cacheMs` (concurrent requests
   * share one run). Never throws.
   */
  async refresh(which: (check: MonitorCheck) => boolean): Promise<void> {
    const due = this.checks.filter((v) => v.check.cacheMs !== undefined && which(v.check));
    await Promise.all(due.map((v) => this.scheduler.refresh(v.check.id).catch(() => undefined)));
  }

  /** Calls `listener` after every run with the raw outcome and the published state; returns an unsubscribe function. */
  onOutcome(listener: (check: MonitorCheck, outcome: CheckOutcome, state: FlapState, changed: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  registerRecovery(component: string, action: RecoveryAction, policy: RecoveryPolicy): void {
    this.recovery.register(component, action, policy);
  }

  private observe(check: MonitorCheck, outcome: CheckOutcome): void {
    const view = this.views.get(check.id);
    if (!view) return;
    const before = check.component ? this.componentStatus(check.component) : undefined;
    const was = view.state.status;
    const changed = view.state.observe(outcome);
    for (const l of this.listeners) {
      try {
        l(check, outcome, view.state, changed);
      } catch (err) {
        this.deps.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'a monitor listener threw');
      }
    }
    // A first pass after `unknown` is no news: nothing to log, nothing to export at once.
    if (!changed || (was === 'unknown' && view.state.status === 'pass')) return;
    const level = view.state.status === 'pass' || view.state.status === 'unknown' ? 'info' : view.state.status === 'warn' ? 'warn' : 'error';
    this.deps.logger[level](
      { check: check.id, healthLevel: check.level, component: check.component, status: view.state.status, output: outcome.output, affectedEndpoints: outcome.affectedEndpoints },
      `${check.id} is now ${view.state.status.toUpperCase()}${outcome.output ? `: ${outcome.output}` : ''}`,
    );
    if (check.component) {
      const after = this.componentStatus(check.component);
      if (before === 'pass' && after !== 'pass') this.recovery.failed(check.component);
      if (before !== 'pass' && after === 'pass') this.recovery.passed(check.component);
    }
    this.deps.onChange(check, view.state);
  }

  /** Re-runs a component's failing checks until they pass `successThreshold` times (so the state can flip), or one fails. */
  private async confirm(component: string): Promise<boolean> {
    const failing = this.checks.filter((v) => v.check.component === component && (v.state.status === 'fail' || v.state.status === 'warn'));
    for (const v of failing) {
      for (let i = 0; i < this.deps.manifest.monitor.successThreshold; i++) {
        const outcome = await this.scheduler.runNow(v.check.id);
        if (!outcome || outcome.status !== 'pass') return false;
      }
    }
    return true;
  }

  private buildChecks(): MonitorCheck[] {
    const { manifest: m, env, tracer } = this.deps;
    const mon = m.monitor;
    const iv = mon.intervals;
    const baseUrl = this.deps.baseUrl;
    const checks: MonitorCheck[] = [];
    for (const [component, spec] of Object.entries(m.components)) {
      for (const endpoint of spec.endpoints.filter((e) => e.probe.enabled)) {
        const attrs = { [ATTR_HTTP_ROUTE]: endpoint.route, [ATTR_HTTP_REQUEST_METHOD]: endpoint.method, [ATTR_VIGIL_COMPONENT]: component };
        const notProbed = unsafeNotProbed(m, endpoint);
        checks.push(
          endpointCheck({
            component,
            endpoint,
            ...(notProbed ? { notProbed } : {}),
            baseUrl,
            app: this.deps.app,
            env,
            tracer,
            intervalMs: iv.endpoints,
            record: ({ success, durationMs, statusCode }) => {
              this.lastProbe.set(`${endpoint.method} ${endpoint.route}`, { ok: success, attrs });
              this.probeDuration?.record(durationMs / 1000, statusCode ? { ...attrs, [ATTR_HTTP_RESPONSE_STATUS_CODE]: statusCode } : attrs);
            },
          }),
        );
      }
      for (const [name, flow] of Object.entries(spec.flows)) checks.push(flowCheck({ component, name, flow, baseUrl, env, tracer, intervalMs: iv.flows }));
      for (const [name, check] of Object.entries(spec.dependencies)) {
        checks.push(dependencyCheck({ component, name, check, env, baseUrl: this.deps.manifestUrl, intervalMs: iv.dependencies }));
      }
    }
    // One drift check per component with critical routes; new routes are reported by the first of them only.
    let reportsNew = true;
    for (const [component, spec] of Object.entries(m.components)) {
      if (!spec.endpoints.length) continue;
      const onNewRoutes = reportsNew
        ? (routes: RouteEntry[]) => this.deps.logger.warn({ routes: routes.map((r) => `${r.method} ${r.path}`) }, `${routes.length} route(s) registered since startup`)
        : undefined;
      reportsNew = false;
      checks.push(
        driftCheck({ component, endpoints: spec.endpoints, app: this.deps.app, intervalMs: iv.drift, ...(this.deps.inventory ? { inventory: this.deps.inventory } : {}), ...(onNewRoutes ? { onNewRoutes } : {}) }),
      );
    }
    const p = mon.process;
    const lag = eventLoopLagCheck({ warnMs: p.eventLoopLagMs.warn, failMs: p.eventLoopLagMs.fail, intervalMs: iv.process });
    this.disposers.push(() => lag.dispose());
    checks.push(
      lag,
      memoryCheck({ heapWarnRatio: p.heapRatio.warn, heapFailRatio: p.heapRatio.fail, ...(p.rssMb ? { rssWarnMb: p.rssMb.warn, rssFailMb: p.rssMb.fail } : {}), intervalMs: iv.process }),
      cpuCheck({ warnRatio: p.cpuRatio.warn, failRatio: p.cpuRatio.fail, intervalMs: iv.process }),
      errorRateCheck(this.requests, { warnRatio: mon.errorRate.warn, failRatio: mon.errorRate.fail, minRequests: mon.errorRate.minRequests, intervalMs: iv.errorRate }),
    );
    const i = mon.integration;
    const timeoutMs = 10_000;
    const comp = (c: string | undefined) => (c !== undefined ? { component: c } : {});
    if (i.cors) checks.push(corsCheck({ baseUrl, path: i.cors.path, origin: i.cors.origin, expectAllowed: i.cors.allowed, intervalMs: iv.integration, timeoutMs, ...comp(i.cors.component) }));
    if (i.rateLimit) {
      checks.push(rateLimitCheck({ baseUrl, path: i.rateLimit.path, method: i.rateLimit.method, requests: i.rateLimit.requests, expectStatus: i.rateLimit.expectStatus, intervalMs: iv.integration, timeoutMs: 60_000, ...comp(i.rateLimit.component) }));
    }
    if (i.jwt) {
      checks.push(
        jwtConfigCheck({
          env,
          ...(i.jwt.secretEnv ? { secretEnv: i.jwt.secretEnv } : {}),
          minSecretLength: i.jwt.minSecretLength,
          ...(i.jwt.jwksUrl ? { jwksUrl: i.jwt.jwksUrl } : {}),
          intervalMs: iv.integration,
          timeoutMs,
          ...comp(i.jwt.component),
        }),
      );
    }
    if (i.errorHandler) checks.push(errorHandlerOrderCheck({ app: this.deps.app, intervalMs: iv.integration, ...comp(i.errorHandler.component) }));
    return checks;
  }

  private registerGauges(meter: Meter): void {
    const probeSuccess = meter.createObservableGauge(METRIC_PROBE_SUCCESS, { description: '1 when the last synthetic probe of the endpoint met its expectation' });
    const healthLevel = meter.createObservableGauge(METRIC_HEALTH_LEVEL, { description: '1 while the check is not failing (flap-damped), by health level' });
    const errorRatio = meter.createObservableGauge(METRIC_HTTP_ERROR_RATIO, { description: 'Share of 5xx answers per route over the error-rate window (synthetic requests excluded)' });
    const reason = meter.createObservableGauge(METRIC_CHECK_REASON, { description: REASON_DESCRIPTION });
    meter.addBatchObservableCallback(
      (result) => {
        for (const { ok, attrs } of this.lastProbe.values()) result.observe(probeSuccess, ok ? 1 : 0, attrs);
        for (const { check, state } of this.views.values()) {
          const value = HEALTH_LEVEL_VALUE[state.status];
          const attrs = { [ATTR_VIGIL_LEVEL]: check.level, [ATTR_VIGIL_CHECK]: check.id, ...(check.component ? { [ATTR_VIGIL_COMPONENT]: check.component } : {}) };
          result.observe(healthLevel, value, attrs);
          // Only while it fails: the reason series goes when the check passes again.
          if (value === 0) result.observe(reason, ...reasonPoint(METRIC_HEALTH_LEVEL, attrs, state.outcome.output ?? `${state.status}`));
        }
        for (const r of this.requests.snapshot()) {
          if (r.requests > 0) result.observe(errorRatio, r.ratio, { [ATTR_HTTP_ROUTE]: r.route, [ATTR_HTTP_REQUEST_METHOD]: r.method });
        }
      },
      [probeSuccess, healthLevel, errorRatio, reason],
    );
  }
}
