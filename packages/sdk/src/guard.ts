/**
 * `vigil()` and the guard it returns: the app's one handle on Vigil. It loads
 * the manifest, starts telemetry first (so even a failing startup is seen),
 * mounts routers in isolation, serves health, and validates what Express really
 * registered against what the manifest declares.
 */
import type { IncomingHttpHeaders, Server } from 'node:http';
import { context, ProxyTracerProvider, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import { EXIT_INVALID_MANIFEST, ManifestError, VigilStartupError, debugging } from './errors.js';
import { detailedHandler, livenessHandler, readinessHandler, routesHandler, type HealthSource } from './health/endpoints.js';
import type { Phase } from './health/health-json.js';
import { createLogger, type Logger } from './logger.js';
import { loadManifest } from './manifest/load.js';
import type { Manifest, ManifestInput } from './manifest/schema.js';
import {
  ATTR_DEPLOYMENT_ENVIRONMENT_NAME,
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_ROUTE,
  ATTR_VIGIL_COMPONENT,
  ATTR_VIGIL_ROUTE_ANSWERED_BY,
  ATTR_VIGIL_ROUTE_COUNT,
  ATTR_VIGIL_ROUTE_MISSING,
  ATTR_VIGIL_ROUTE_VERDICT,
  ATTR_VIGIL_STATUS,
  EVENT_ROUTE_VERDICT,
  ROUTE_VERDICT,
  SPAN_INVENTORY,
  SPAN_STARTUP,
} from './semconv.js';
import { runDependencyChecks, type CheckResult } from './startup/dependencies.js';
import { describeLayer, listRoutes } from './startup/inventory.js';
import { decide, formatReport, resolveEndpoint, type EndpointResult, type StartupReport } from './startup/report.js';
import { describeUndocumented, findUndocumented, healthPaths, routeSnapshot, type UndocumentedFinding } from './startup/route-table.js';
import { importRouters, mountLoaded, recount, reimportRouter, type RouterResult, type RouterSlot } from './startup/routers.js';
import { Monitor } from './monitor/monitor.js';
import { isProbe } from './monitor/marker.js';
import { probePlan } from './monitor/probe-policy.js';
import { createRequestTracker, type RequestTracker } from './monitor/requests.js';
import type { MonitorCheck } from './monitor/types.js';
import type { RecoveryAction } from './monitor/recovery.js';
import type { AddressInfo } from 'node:net';
import { registerStartupInstruments, type StartupInstruments, type StartupState } from './telemetry/instruments.js';
import { registerServedRoutes } from './telemetry/served.js';
import { startTelemetry, type Telemetry } from './telemetry/otel.js';
import { randomUUID } from 'node:crypto';

/** A proxy with no delegate hands out no-op tracers. */
const NOOP_TRACER = new ProxyTracerProvider().getTracer('@vigil/sdk');

export interface VigilOptions {
  /** Path or `file:` URL of the manifest YAML, or the manifest as an object. */
  manifest: string | URL | ManifestInput;
  /** Base for relative module specifiers of an object manifest (default: the current directory). */
  baseUrl?: URL | string;
  /** The environment to read (default `process.env`); tests pass their own. */
  env?: NodeJS.ProcessEnv;
  /** A pino logger to log through (default: Vigil's own, level from `VIGIL_LOG_LEVEL`). */
  logger?: Logger;
  /** `false` turns OpenTelemetry off entirely (used by `vigil preflight`). Default `true`. */
  telemetry?: boolean;
  /**
   * What an invalid manifest does. `exit` (default): one message naming the file,
   * line:column, the path and what was expected goes to stderr (with the stack
   * when `VIGIL_DEBUG=1`) and the process exits with code 2. `throw`: `vigil()`
   * throws the `ManifestError`.
   */
  onInvalidManifest?: 'exit' | 'throw';
}

export interface ValidateOptions {
  /** The app's HTTP server: closed on a fail-fast failure and on graceful shutdown. */
  server?: Server;
  /** Throw `VigilStartupError` on a fail-fast failure (default `true`). */
  throwOnFailure?: boolean;
  /** Start the runtime monitor after a successful validation (default: `monitor.enabled` of the manifest). */
  monitor?: boolean;
}

/** Anything with Express's `use` and `get`: an Express 4 or 5 app. */
export interface ExpressLike {
  use: (...args: never[]) => unknown;
  get: (...args: never[]) => unknown;
}

/** Loads the manifest and starts Vigil's telemetry. Call it first in the bootstrap. */
export async function vigil(options: VigilOptions): Promise<VigilGuard> {
  const env = options.env ?? process.env;
  let loaded;
  try {
    loaded = await loadManifest(options.manifest, options.baseUrl ? { baseUrl: options.baseUrl } : {});
  } catch (err) {
    if (!(err instanceof ManifestError) || options.onInvalidManifest === 'throw') throw err;
    // A bad manifest is the deployer's mistake, not a crash: no stack trace unless asked, and one exit code for it.
    process.stderr.write(`${debugging(env) ? err.stack : err.message}\n`);
    process.exit(EXIT_INVALID_MANIFEST);
  }
  const logger = (options.logger ?? createLogger(env)).child({ module: 'vigil' });
  const m = loaded.manifest;
  const environment = env.VIGIL_ENVIRONMENT ?? m.environment;
  const telemetry =
    options.telemetry === false
      ? undefined
      : await startTelemetry({
          resource: {
            [ATTR_SERVICE_NAME]: m.service,
            ...(m.version ? { [ATTR_SERVICE_VERSION]: m.version } : {}),
            [ATTR_SERVICE_INSTANCE_ID]: randomUUID(),
            ...(environment ? { [ATTR_DEPLOYMENT_ENVIRONMENT_NAME]: environment } : {}),
          },
          exportIntervalMs: m.telemetry.exportInterval,
          env,
          logger,
        });
  return new VigilGuard(m, loaded.baseUrl, { env, logger, telemetry });
}

interface GuardParts {
  env: NodeJS.ProcessEnv;
  logger: Logger;
  telemetry: Telemetry | undefined;
}

export class VigilGuard {
  readonly logger: Logger;
  private readonly env: NodeJS.ProcessEnv;
  private readonly telemetry: Telemetry | undefined;
  private readonly instruments: StartupInstruments | undefined;
  private readonly state: StartupState = { routes: [] };
  private readonly startupSpan: Span;
  private readonly startupContext: Context;
  private readonly startedAt = new Date();
  /** Wall time spent importing routers, counted into the validation time. */
  private importMs = 0;
  private routerResults: RouterResult[] | undefined;
  private currentPhase: Phase = 'starting';
  private server: Server | undefined;
  private signalHandlers: Array<[NodeJS.Signals, () => void]> = [];
  private draining: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private slots = new Map<RouterResult, RouterSlot>();
  private requests: RequestTracker | undefined;
  private runtime: Monitor | undefined;
  private inventoryTimer: NodeJS.Timeout | undefined;
  private app: ExpressLike | undefined;
  private readonly extraChecks: MonitorCheck[] = [];
  private readonly recoveries: Array<{ component: string; action: RecoveryAction; attempts: number; backoffMs: number }> = [];

  /** Use `vigil()`; the constructor takes parts it has already prepared. */
  constructor(
    readonly manifest: Manifest,
    readonly baseUrl: URL,
    parts: GuardParts,
  ) {
    this.env = parts.env;
    this.logger = parts.logger;
    this.telemetry = parts.telemetry;
    if (this.telemetry) {
      this.instruments = registerStartupInstruments(this.telemetry.meter, this.state);
      registerServedRoutes(this.telemetry.meter, this.state, manifest, this.env);
    }
    this.startupSpan = this.tracer.startSpan(SPAN_STARTUP, { attributes: { [ATTR_SERVICE_NAME]: manifest.service } });
    this.startupContext = trace.setSpan(context.active(), this.startupSpan);
  }

  private get tracer() {
    // With telemetry off, spans go nowhere, even if the app registered a tracer provider.
    return this.telemetry?.tracer ?? NOOP_TRACER;
  }

  /** The lifecycle phase: `starting`, `ready`, `failed` (fail-fast) or `draining` (shutting down). */
  get phase(): Phase {
    return this.currentPhase;
  }

  /** The last startup report, once `validate()` ran. */
  get report(): StartupReport | undefined {
    return this.state.report;
  }

  /**
   * Imports every router of the manifest in isolation and mounts those that
   * loaded at their `mount` paths. A router that fails to import is reported,
   * never thrown.
   */
  async mountRouters(app: ExpressLike): Promise<RouterResult[]> {
    const results = await this.importRouters();
    this.slots = mountLoaded(app as never, results);
    return results;
  }

  private async importRouters(): Promise<RouterResult[]> {
    const started = performance.now();
    this.routerResults = await importRouters(this.manifest, this.baseUrl, this.tracer, this.startupContext);
    this.importMs = performance.now() - started;
    for (const r of this.routerResults) {
      if (r.outcome === 'failed') {
        this.logger.error({ router: r.router, component: r.component, errorType: r.errorType, err: r.error }, `router ${r.router} failed to import`);
      } else if (r.outcome === 'no_routes') {
        this.logger.warn({ router: r.router, component: r.component }, `router ${r.router} has no routes`);
      }
    }
    return this.routerResults;
  }

  /**
   * Serves `/health`, `/ready`, `/health/detailed`, `/health/business-critical`
   * and the route table `/health/routes` (paths from the manifest), and installs Vigil's request accounting (per-route
   * 5xx share, synthetic requests left out). Call it before mounting routers.
   */
  mountHealth(app: ExpressLike): void {
    const { path, readyPath, tokenEnv, allowLoopback } = this.manifest.health;
    const source: HealthSource = {
      phase: () => this.currentPhase,
      report: () => this.state.report,
      meta: { service: this.manifest.service, ...(this.manifest.version ? { version: this.manifest.version } : {}) },
      access: () => ({ token: this.env[tokenEnv] || undefined, allowLoopback }),
      runtime: () => this.runtime,
      refresh: (which) => this.refreshDependencies(which),
      notReady: () => this.notReady(),
    };
    const get = app.get.bind(app) as unknown as (p: string, h: unknown) => void;
    get(path, livenessHandler());
    get(readyPath, readinessHandler(source));
    get(`${path.replace(/\/$/, '')}/detailed`, detailedHandler(source));
    get(`${path.replace(/\/$/, '')}/business-critical`, detailedHandler(source, (c) => c.businessCritical, false));
    // The live route table, as guarded as the detailed body: it maps the whole API surface.
    get(healthPaths(this.manifest).routes, routesHandler(source, () => routeSnapshot(app, this.manifest)));
    // After the health routes: an orchestrator polling /ready (503 while starting) is not business traffic.
    this.requests ??= createRequestTracker({ windowMs: this.manifest.monitor.errorRate.window, routes: () => this.state.routes });
    (app.use as unknown as (h: unknown) => void).call(app, this.requests.middleware);
  }

  /** The dependency checks of the report `/ready` waits for, by their monitor id. */
  private readinessChecks(): Map<string, CheckResult> {
    const checks = this.state.report?.components.flatMap((c) => c.checks) ?? [];
    return new Map(checks.filter((k) => k.group === 'ready').map((k) => [`dependency:${k.component}/${k.check}`, k]));
  }

  private async refreshDependencies(which: 'ready' | Set<string>): Promise<void> {
    const ready = which === 'ready' ? this.readinessChecks() : undefined;
    await this.runtime?.refresh((c) => (ready ? ready.has(c.id) : c.component !== undefined && which !== 'ready' && which.has(c.component)));
  }

  /** Failing checks of the `ready` group: the monitor's damped state once it ran the check, the startup result before. */
  private notReady(): string[] {
    const views = new Map(this.runtime?.checks.map((v) => [v.check.id, v.state]) ?? []);
    return [...this.readinessChecks()]
      .filter(([id, k]) => {
        const state = views.get(id);
        return state?.lastRunAt ? state.status === 'fail' : !k.ok;
      })
      .map(([, k]) => `${k.component}:${k.check}`);
  }

  /** The runtime monitor, once `validate()` started it. */
  get monitor(): Monitor | undefined {
    return this.runtime;
  }

  /**
   * True when this process's monitor sent `req` (its marker checks out; a
   * client cannot forge it, `x-vigil-synthetic` alone is not enough). For
   * handlers, and for rate limiters: `skip: (req) => guard.isProbe(req)`.
   * False for the requests of the rate-limit check, which must meet the limiter.
   */
  isProbe(req: { headers: IncomingHttpHeaders }): boolean {
    return isProbe(req);
  }

  /** Adds a check of your own to the runtime monitor (before or after `validate()`). */
  addCheck(check: MonitorCheck): void {
    if (this.runtime) this.runtime.add(check); // throws on a duplicate id
    else if (this.extraChecks.some((c) => c.id === check.id)) throw new Error(`addCheck: a check with id "${check.id}" was already added`);
    else this.extraChecks.push(check);
  }

  /**
   * Registers a recovery action for a component: it runs when the component
   * starts failing at run time, up to `attempts` times with exponential
   * back-off, until the component's checks pass again.
   */
  onRecovery(component: string, action: RecoveryAction, options: { attempts?: number; backoffMs?: number } = {}): void {
    if (!(component in this.manifest.components)) throw new Error(`onRecovery: no component "${component}" in the manifest`);
    const r = { component, action, attempts: options.attempts ?? 3, backoffMs: options.backoffMs ?? 1000 };
    if (this.runtime) this.runtime.registerRecovery(r.component, r.action, r);
    else this.recoveries.push(r);
  }

  /**
   * Startup validation: inventories Express's routes against the manifest,
   * runs the dependency checks, applies each component's policy, exports the
   * result at once, and — on a fail-fast failure — closes `server` and throws
   * `VigilStartupError` after the evidence is exported.
   */
  async validate(app: ExpressLike, options: ValidateOptions = {}): Promise<StartupReport> {
    const started = performance.now();
    const importedEarlier = this.routerResults !== undefined;
    const routers = this.routerResults ?? (await this.importRouters());
    const { routes, endpoints, undocumented } = this.takeInventory(app);
    this.traceInventory(routes.length, endpoints, this.startupContext);

    const checks = await runDependencyChecks(this.manifest, this.env, this.baseUrl, this.tracer, this.startupContext);
    // Validation time: the router imports (wherever they ran) plus this call, not the app's own setup between.
    const durationMs = (importedEarlier ? this.importMs : 0) + (performance.now() - started);
    const report = decide({ manifest: this.manifest, routers, endpoints, checks, routeCount: routes.length, undocumented, startedAt: this.startedAt, durationMs });
    this.state.report = report;
    this.state.routes = routes;
    this.currentPhase = report.ok ? 'ready' : 'failed';

    this.instruments?.startupDuration.record(durationMs / 1000);
    this.startupSpan.setAttribute(ATTR_VIGIL_STATUS, report.status);
    if (!report.ok) this.startupSpan.setStatus({ code: SpanStatusCode.ERROR, message: 'fail-fast component failed' });
    this.startupSpan.end();
    this.logReport(report);

    // A change of state is exported now, not at the next periodic tick. A
    // fail-fast exit waits for it (bounded) so the evidence is not lost; a
    // starting app does not wait on its collector.
    const flushed = this.telemetry?.flush(this.manifest.telemetry.flushTimeout);
    if (!report.ok) await flushed;

    if (options.server) {
      this.server = options.server;
      this.installSignalHandlers();
    }
    if (!report.ok && options.throwOnFailure !== false) {
      await this.closeServer();
      throw new VigilStartupError(report);
    }
    this.app = app;
    if (report.ok && (options.monitor ?? this.manifest.monitor.enabled) && !this.runtime) this.startMonitor(options.server);
    // Without the monitor (whose drift checks run it), the inventory still runs on its own schedule.
    if (!this.runtime && !this.inventoryTimer) {
      this.inventoryTimer = setInterval(() => {
        try {
          this.refreshReport();
        } catch (err) {
          this.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'route inventory failed');
        }
      }, this.manifest.monitor.intervals.drift);
      this.inventoryTimer.unref();
    }
    return report;
  }

  /**
   * The route inventory: recounts the manifest routers' routes, resolves every
   * declared endpoint like a request.
   */
  private takeInventory(app: ExpressLike): { routes: ReturnType<typeof listRoutes>; endpoints: EndpointResult[]; undocumented: UndocumentedFinding } {
    for (const r of this.routerResults ?? []) recount(r);
    const routes = listRoutes(app);
    const endpoints: EndpointResult[] = Object.entries(this.manifest.components).flatMap(([component, spec]) =>
      spec.endpoints.map((e) => resolveEndpoint(app, component, e)),
    );
    return { routes, endpoints, undocumented: findUndocumented(app, this.manifest, routes) };
  }

  /** A `vigil.route.inventory` span with one `vigil.route.verdict` event per declared endpoint. */
  private traceInventory(routeCount: number, endpoints: EndpointResult[], parent: Context): void {
    const span = this.tracer.startSpan(SPAN_INVENTORY, {}, parent);
    span.setAttribute(ATTR_VIGIL_ROUTE_COUNT, routeCount);
    span.setAttribute(ATTR_VIGIL_ROUTE_MISSING, endpoints.filter((e) => !e.registered).length);
    for (const e of endpoints) {
      span.addEvent(EVENT_ROUTE_VERDICT, {
        [ATTR_HTTP_ROUTE]: e.route,
        [ATTR_HTTP_REQUEST_METHOD]: e.method,
        [ATTR_VIGIL_COMPONENT]: e.component,
        [ATTR_VIGIL_ROUTE_VERDICT]: ROUTE_VERDICT[e.verdict],
        ...(e.answeredBy ? { [ATTR_VIGIL_ROUTE_ANSWERED_BY]: describeLayer(e.answeredBy) } : {}),
      });
    }
    span.end();
  }

  /**
   * Runs the route inventory again now and brings the report, the health
   * bodies and the gauges up to date with it: routes registered since (late
   * routers, async set-up) count, routes gone since fail. It also runs after
   * `validate()` and every `monitor.intervals.drift`. Returns the report, or
   * `undefined` before `validate()`.
   */
  refreshInventory(): StartupReport | undefined {
    this.refreshReport();
    return this.state.report;
  }

  /** Where probes go: the manifest's `monitor.baseUrl`, or the server's own address (loopback when it listens on all). */
  private baseUrlFor(server: Server | undefined): () => string | undefined {
    const configured = this.manifest.monitor.baseUrl;
    return () => {
      if (configured) return configured;
      const a = server?.address() as AddressInfo | string | null | undefined;
      if (!a || typeof a === 'string') return undefined;
      const host = a.address === '::' || a.address === '0.0.0.0' ? '127.0.0.1' : a.family === 'IPv6' ? `[${a.address}]` : a.address;
      return `http://${host}:${a.port}`;
    };
  }

  private startMonitor(server: Server | undefined): void {
    this.requests ??= createRequestTracker({ windowMs: this.manifest.monitor.errorRate.window, routes: () => this.state.routes });
    const monitor = new Monitor({
      manifest: this.manifest,
      env: this.env,
      manifestUrl: this.baseUrl,
      baseUrl: this.baseUrlFor(server),
      app: () => this.app,
      routes: () => this.state.routes,
      inventory: () => this.refreshInventory(),
      requests: this.requests,
      tracer: this.tracer,
      meter: this.telemetry?.meter,
      logger: this.logger.child({ subsystem: 'monitor' }),
      onChange: () => {
        this.refreshReport();
        void this.telemetry?.flush(this.manifest.telemetry.flushTimeout);
      },
    });
    for (const [component, spec] of Object.entries(this.manifest.components)) {
      if (spec.recovery?.reimportRouters) {
        monitor.registerRecovery(component, ({ attempt }) => this.reimportFailedRouters(component, attempt), { attempts: spec.recovery.attempts, backoffMs: spec.recovery.backoff });
      }
    }
    for (const r of this.recoveries) monitor.registerRecovery(r.component, r.action, r);
    // Startup validation just ran every dependency check: that run counts for each check's cache.
    for (const k of this.state.report?.components.flatMap((c) => c.checks) ?? []) monitor.scheduler.markRun(`dependency:${k.component}/${k.check}`);
    for (const c of this.extraChecks) {
      try {
        monitor.add(c);
      } catch (err) {
        this.logger.error({ check: c.id }, `check ${c.id} not added: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    this.runtime = monitor;
    monitor.start();
  }

  /**
   * The report as things stand now: router outcomes (recovery may have swapped
   * one in), Express's route table, and dependency results as the monitor last
   * saw them. Health bodies and the startup gauges read it.
   */
  private refreshReport(): void {
    const report = this.state.report;
    if (!report || !this.app || !this.routerResults) return;
    const before = new Map(report.components.flatMap((c) => c.endpoints).map((e) => [`${e.method} ${e.route}`, e.verdict]));
    const { routes, endpoints, undocumented } = this.takeInventory(this.app);
    this.state.routes = routes;
    const changed = endpoints.filter((e) => before.get(`${e.method} ${e.route}`) !== e.verdict);
    // A verdict that changed is traced (the startup run always is).
    if (changed.length) this.traceInventory(routes.length, endpoints, context.active());
    for (const e of changed) {
      const was = before.get(`${e.method} ${e.route}`);
      if (e.registered) this.logger.info({ component: e.component, route: `${e.method} ${e.route}`, was }, `route ${e.method} ${e.route} is now registered`);
      else this.logger.warn({ component: e.component, route: `${e.method} ${e.route}`, verdict: e.verdict, was }, `route ${e.method} ${e.route} is now ${e.verdict}: ${e.reason ?? ''}`);
    }
    const runtime = new Map(this.runtime?.checks.map((v) => [v.check.id, v.state]) ?? []);
    const checks = report.components.flatMap((c) => c.checks).map((k) => {
      const state = runtime.get(`dependency:${k.component}/${k.check}`);
      if (!state?.lastRunAt || state.status === 'unknown') return k;
      return state.status === 'pass' ? { ...k, ok: true, error: undefined, errorType: undefined } : { ...k, ok: false, error: state.outcome.output ?? k.error };
    });
    const now = decide({
      manifest: this.manifest,
      routers: this.routerResults,
      endpoints,
      checks,
      routeCount: this.state.routes.length,
      undocumented,
      startedAt: report.startedAt,
      durationMs: report.durationMs,
    });
    // `ok` stays the startup verdict: the process was allowed to take traffic (vigil.startup.success).
    this.state.report = { ...now, ok: report.ok };
  }

  /** Recovery action: import the component's failed routers again and swap them into their slots. */
  private async reimportFailedRouters(component: string, attempt: number): Promise<void> {
    const failed = [...this.slots.entries()].filter(([r]) => r.component === component && r.outcome === 'failed');
    for (const [previous, slot] of failed) {
      const fresh = await reimportRouter(this.manifest, this.baseUrl, previous, attempt, this.tracer);
      if (fresh.outcome !== 'success') throw new Error(`router ${previous.router} still fails to import: ${fresh.errorType}: ${fresh.error}`);
      slot.current = fresh.handle as RouterSlot['current'];
      Object.assign(previous, { outcome: fresh.outcome, routeCount: fresh.routeCount, handle: fresh.handle, errorType: undefined, error: undefined });
      this.logger.info({ router: previous.router, component }, `router ${previous.router} imported again and swapped in`);
    }
    this.refreshReport();
  }

  private logReport(report: StartupReport): void {
    const fields = { status: report.status, missingEndpoints: report.missingEndpoints, durationMs: Math.round(report.durationMs) };
    for (const k of report.components.flatMap((c) => c.checks).filter((x) => x.skipped)) {
      this.logger.warn({ component: k.component, check: k.check, type: k.type }, `dependency check ${k.component}/${k.check} (${k.type}) ${k.skipped}`);
    }
    for (const c of report.components.filter((x) => x.status !== 'pass')) {
      const level = c.status === 'fail' ? 'error' : 'warn';
      this.logger[level]({ component: c.name, policy: c.policy, reasons: c.reasons }, `component ${c.name} ${c.status === 'fail' ? 'FAILED (fail-fast)' : 'DEGRADED'}`);
    }
    if (report.undocumented?.count) this.logger.warn({ undocumentedRoutes: report.undocumented.routes, count: report.undocumented.count }, describeUndocumented(report.undocumented));
    const probes = probePlan(this.manifest);
    for (const w of probes.warnings) this.logger.warn(`unsafe probe opted in: ${w}`);
    for (const n of probes.notProbed) this.logger.info(n);
    if (report.status === 'pass') this.logger.info(fields, 'startup validation passed');
    else if (report.status === 'warn') this.logger.warn(fields, 'startup validation: starting degraded');
    else this.logger.error(fields, 'startup validation failed: refusing traffic');
    this.logger.debug(formatReport(report));
  }

  private installSignalHandlers(): void {
    for (const signal of this.manifest.shutdown.signals) {
      const handler = () => void this.drainOnSignal(signal);
      process.once(signal, handler);
      this.signalHandlers.push([signal, handler]);
    }
  }

  /**
   * Vigil's own signal handler: the drain; then, if the app has no handler of
   * its own for the signal, the signal is raised again so the process ends as
   * it would have without Vigil. An app handler that calls `drain()` shares
   * this drain and decides how the process ends.
   */
  private async drainOnSignal(signal: NodeJS.Signals): Promise<void> {
    await this.drain(signal);
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  }

  /**
   * Graceful shutdown, for the app's own shutdown handler too: `/ready`
   * answers 503 at once while the server still serves, for
   * `shutdown.drainDelay`; then `shutdown()` closes the server handed to
   * `validate({ server })` (requests in flight get `shutdown.timeout`), flushes
   * telemetry with the instance's "stopped" state, and stops Vigil. Resolves
   * when all that is done, never later than drainDelay + timeout + twice
   * `telemetry.flushTimeout`. Every call (and Vigil's signal handler) shares
   * one drain.
   */
  drain(reason: string = 'drain()'): Promise<void> {
    this.draining ??= (async () => {
      if (this.currentPhase !== 'failed') this.currentPhase = 'draining';
      this.logger.info({ reason, drainDelayMs: this.manifest.shutdown.drainDelay }, 'draining: /ready now answers 503');
      await new Promise((r) => setTimeout(r, this.manifest.shutdown.drainDelay));
      await this.shutdown();
    })();
    return this.draining;
  }

  /** Stops accepting connections; requests in flight get `shutdown.timeout`, then their connections are closed. */
  private closeServer(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server?.listening) return Promise.resolve();
    return new Promise((resolve) => {
      const force = setTimeout(() => server.closeAllConnections?.(), this.manifest.shutdown.timeout);
      force.unref();
      server.close(() => {
        clearTimeout(force);
        resolve();
      });
      server.closeIdleConnections?.();
    });
  }

  /**
   * Stops Vigil: stops the monitor, removes its signal handlers, closes the
   * server it was given, exports the instance's "stopped" state
   * (`vigil.instance.running` 0, unless startup failed: that evidence stands),
   * flushes and stops telemetry it owns. Every call shares one shutdown.
   */
  shutdown(): Promise<void> {
    this.stopping ??= this.stop();
    return this.stopping;
  }

  private async stop(): Promise<void> {
    this.runtime?.stop();
    clearInterval(this.inventoryTimer);
    for (const [signal, handler] of this.signalHandlers) process.removeListener(signal, handler);
    this.signalHandlers = [];
    await this.closeServer();
    // A clean stop: the evaluator retires this instance instead of paging its silence.
    if (this.currentPhase !== 'failed') this.state.stopped = true;
    await this.telemetry?.flush(this.manifest.telemetry.flushTimeout);
    await this.telemetry?.shutdown(this.manifest.telemetry.flushTimeout);
  }
}
