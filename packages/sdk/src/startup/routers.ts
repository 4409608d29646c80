/**
 * Layer 1: import every router of the manifest in isolation. One module that
 * throws never stops the others; each ends as `success`, `failed` or `no_routes`.
 */
import { context, SpanStatusCode, type Context, type Tracer } from '@opentelemetry/api';
import type { Manifest, Policy } from '../manifest/schema.js';
import { routerName } from '../manifest/schema.js';
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
import { countRoutes, stackOf } from './inventory.js';

export interface RouterResult {
  component: string;
  policy: Policy;
  /** `vigil.router`: the router's name. */
  router: string;
  /** The specifier as written in the manifest (`load` for a loader function). */
  module: string;
  mount: string;
  outcome: RouterOutcome;
  /** Routes the router holds (0 unless `success`). */
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
    spec.routers.map(async (r): Promise<RouterResult> => {
      const name = routerName(r);
      const base = { component, policy: spec.policy, router: name, module: r.module ?? 'load', mount: r.mount };
      const span = tracer.startSpan(
        SPAN_ROUTER_IMPORT,
        { attributes: { [ATTR_VIGIL_ROUTER]: name, [ATTR_VIGIL_COMPONENT]: component } },
        parent,
      );
      const started = performance.now();
      let result: RouterResult;
      try {
        const mod = (r.load ? await r.load() : await import(resolveSpecifier(r.module!, baseUrl))) as Record<string, unknown>;
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
    }),
  );
  return Promise.all(jobs);
}

/** Mounts the routers that loaded at their mount paths, in manifest order. */
export function mountLoaded(app: { use: (path: string, handler: never) => unknown }, results: RouterResult[]): void {
  for (const r of results) {
    if (r.outcome === ROUTER_OUTCOME.success && r.handle) app.use(r.mount, r.handle as never);
  }
}

