/**
 * Layer 1: import every router of the manifest in isolation. One module that
 * throws never stops the others; each ends as `success`, `failed` or `no_routes`.
 */
import { context, SpanStatusCode, type Context, type Tracer } from '@opentelemetry/api';
import { routerName, type Manifest, type Policy, type RouterSpec } from '../manifest/schema.js';
import {
  ATTR_ERROR_TYPE,
  ATTR_VIGIL_COMPONENT,
  ATTR_VIGIL_OUTCOME,
  ATTR_VIGIL_ROUTER,
  ROUTER_OUTCOME,
  SPAN_ROUTER_IMPORT,
  type RouterOutcome,
} from '../semconv.js';
import { errorMessage, errorType, pickExport, resolveSpecifier } from '../util/modules.js';
import { formatTimeout } from '../util/duration.js';
import { countRoutes, stackOf } from './inventory.js';

/** A router's outcome as its routes stand now: `no_routes` turns `success` once routes appear (and back). */
export function recount(r: RouterResult): void {
  if (r.outcome === ROUTER_OUTCOME.failed || r.handle === undefined) return;
  r.routeCount = countRoutes(r.handle);
  r.outcome = r.routeCount > 0 ? ROUTER_OUTCOME.success : ROUTER_OUTCOME.noRoutes;
}

export interface RouterResult {
  component: string;
  policy: Policy;
  /** `vigil.router`: the router's name. */
  router: string;
  /** The specifier as written in the manifest (`load` for a loader function). */
  module: string;
  /** Where it is mounted, as written (`/a, /b` for several). */
  mount: string;
  /** Every mount path. */
  mounts: string[];
  outcome: RouterOutcome;
  /** Routes the router holds (0 unless `success`; a router whose routes come later counts them when they do). */
  routeCount: number;
  errorType?: string;
  error?: string;
  durationMs: number;
  /** The Express router itself, when it loaded. */
  handle?: unknown;
}

/** Imports each router of the manifest; never throws. */
export async function importRouters(
  manifest: Manifest,
  baseUrl: URL,
  tracer: Tracer,
  parent: Context = context.active(),
): Promise<RouterResult[]> {
  const jobs = Object.entries(manifest.components).flatMap(([component, spec]) =>
    spec.routers.map((r) => importRouter(component, spec.policy, r, baseUrl, tracer, parent, manifest.startup.importTimeout)),
  );
  return Promise.all(jobs);
}

/**
 * `process.exit()` called by a module while it is imported in isolation throws
 * instead (the import fails with that reason) rather than ending the app. Imports
 * run at the same time, so the real one is put back when the last one ends.
 */
let importsInFlight = 0;
let realExit: typeof process.exit | undefined;
function interceptExit(): () => void {
  if (importsInFlight++ === 0) {
    realExit = process.exit;
    process.exit = ((code?: number | string | null) => {
      throw Object.assign(new Error(`called process.exit(${code ?? ''})`), { code: 'VIGIL_PROCESS_EXIT' });
    }) as typeof process.exit;
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--importsInFlight === 0 && realExit) {
      process.exit = realExit;
      realExit = undefined;
    }
  };
}

/**
 * Runs an import with a deadline: a module whose top-level `await` never
 * settles fails after `timeoutMs` instead of holding up the bootstrap (the
 * module itself stays pending: ESM cannot cancel it).
 */
async function guardedImport(load: () => unknown, timeoutMs: number, what: string): Promise<unknown> {
  const release = interceptExit();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`timed out after ${formatTimeout(timeoutMs)} importing ${what}`), { code: 'VIGIL_IMPORT_TIMEOUT' })), timeoutMs);
  });
  try {
    return await Promise.race([Promise.resolve().then(load), deadline]);
  } catch (err) {
    // A new error: ESM caches the module's failure and throws the same object at every import.
    if ((err as { code?: unknown } | null)?.code === 'VIGIL_PROCESS_EXIT') throw Object.assign(new Error(`${(err as Error).message} while importing ${what}`), { code: 'VIGIL_PROCESS_EXIT' });
    throw err;
  } finally {
    clearTimeout(timer);
    release();
  }
}

/** Imports one router module; never throws. */
async function importRouter(component: string, policy: Policy, r: RouterSpec, baseUrl: URL, tracer: Tracer, parent: Context, defaultTimeoutMs: number): Promise<RouterResult> {
  const name = routerName(r);
  const mounts = typeof r.mount === 'string' ? [r.mount] : r.mount;
  const base = { component, policy, router: name, module: r.module ?? 'load', mount: mounts.join(', '), mounts };
  const span = tracer.startSpan(
    SPAN_ROUTER_IMPORT,
    { attributes: { [ATTR_VIGIL_ROUTER]: name, [ATTR_VIGIL_COMPONENT]: component } },
    parent,
  );
  const started = performance.now();
  let result: RouterResult;
  try {
    const load = r.load ?? (() => import(resolveSpecifier(r.module!, baseUrl)));
    const mod = (await guardedImport(load, r.importTimeout ?? defaultTimeoutMs, r.module ?? `router ${name}`)) as Record<string, unknown>;
    const handle = pickExport(mod ?? {}, r.export, ['router', 'default']);
    if (!stackOf(handle) || typeof handle !== 'function') {
      const what = r.export ? `export "${r.export}"` : 'an export "router" or a default export';
      throw Object.assign(new TypeError(`module has no Express router in ${what}`), { code: 'VIGIL_NO_ROUTER_EXPORT' });
    }
    const routeCount = countRoutes(handle);
    result = {
      ...base,
      outcome: routeCount > 0 ? ROUTER_OUTCOME.success : ROUTER_OUTCOME.noRoutes,
      routeCount,
      durationMs: performance.now() - started,
      handle,
    };
  } catch (err) {
    result = {
      ...base,
      outcome: ROUTER_OUTCOME.failed,
      routeCount: 0,
      errorType: errorType(err),
      error: errorMessage(err),
      durationMs: performance.now() - started,
    };
    span.recordException(err instanceof Error ? err : new Error(String(err)));
    span.setAttribute(ATTR_ERROR_TYPE, result.errorType!);
  }
  span.setAttribute(ATTR_VIGIL_OUTCOME, result.outcome);
  if (result.outcome !== ROUTER_OUTCOME.success) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: result.error ?? 'router has no routes' });
  }
  span.end();
  return result;
}

/**
 * A mount slot: Express sees one stable middleware, which delegates to the
 * router currently loaded (or passes on while none is). Recovery can then
 * import a router again and swap it in without touching Express's stack; the
 * inventory reads the current router's routes through `stack`.
 */
export interface RouterSlot {
  (req: unknown, res: unknown, next: (err?: unknown) => void): void;
  readonly stack: unknown[];
  current: ((req: unknown, res: unknown, next: (err?: unknown) => void) => void) | undefined;
  /** The manifest router it holds and its module, for the inventory's answering layer. */
  readonly vigilRouter?: string;
  readonly vigilSource?: string;
}

export function routerSlot(initial: unknown, origin: { router?: string; source?: string } = {}): RouterSlot {
  const slot = ((req: unknown, res: unknown, next: (err?: unknown) => void) => {
    if (slot.current) slot.current(req, res, next);
    else next();
  }) as RouterSlot;
  slot.current = initial as RouterSlot['current'];
  // Enumerable: wrappers that copy a handler's own properties (OpenTelemetry's express instrumentation) must keep it.
  // The current handle may be a Router or an express() app (its stack is in its router).
  Object.defineProperty(slot, 'stack', { get: () => stackOf(slot.current) ?? [], enumerable: true });
  Object.defineProperty(slot, 'vigilRouter', { value: origin.router, enumerable: true });
  Object.defineProperty(slot, 'vigilSource', { value: origin.source, enumerable: true });
  return slot;
}

/**
 * Mounts every router of the manifest at its mount path(s), in manifest order,
 * each in a slot: loaded ones serve at once (also one with no routes yet: it
 * may add them later), failed ones can be swapped in later by recovery.
 * Returns the slots by router result.
 */
export function mountLoaded(app: { use: (path: string | string[], handler: never) => unknown }, results: RouterResult[]): Map<RouterResult, RouterSlot> {
  const slots = new Map<RouterResult, RouterSlot>();
  for (const r of results) {
    const slot = routerSlot(r.outcome === ROUTER_OUTCOME.failed ? undefined : r.handle, { router: r.router, source: r.module });
    app.use(r.mounts.length === 1 ? r.mounts[0]! : r.mounts, slot as never);
    slots.set(r, slot);
  }
  return slots;
}

/**
 * Imports a router module again as a fresh instance (a query string defeats
 * the ESM module cache) and returns the new result; never throws.
 */
export async function reimportRouter(manifest: Manifest, baseUrl: URL, previous: RouterResult, attempt: number, tracer: Tracer): Promise<RouterResult> {
  const spec = manifest.components[previous.component]?.routers.find((r) => routerName(r) === previous.router);
  if (!spec) return previous;
  const url = spec.module ? resolveSpecifier(spec.module, baseUrl) : undefined;
  const fresh = url ? { ...spec, module: `${url}${url.includes('?') ? '&' : '?'}vigil-reimport=${attempt}-${Date.now()}` } : spec;
  return importRouter(previous.component, previous.policy, { ...fresh, name: previous.router }, baseUrl, tracer, context.active(), manifest.startup.importTimeout);
}
