/**
 * Route inventory: which routes Express really has, whoever mounted them. Works
 * on Express 4 and 5, through nested routers and mount paths.
 *
 * Two questions, answered two ways:
 * - `hasRoute(app, method, path)` walks the router stack exactly as a request
 *   would be matched (each layer's own `match()`), so its answer does not depend
 *   on recovering mount paths from internals — it is the verdict for declared
 *   endpoints.
 * - `listRoutes(app)` enumerates every route for reports and drift; a mount path
 *   that cannot be recovered is shown as `<?>`.
 */
import type { AppInternal, LayerInternal, RouterInternal } from './express-internals.js';

export interface RouteEntry {
  /** Upper-case method, or `ALL` for `router.all()`. */
  method: string;
  /** The full path template, e.g. `/api/v1/users/:id`. */
  path: string;
}

/** The router stack of an Express app or Router, or `undefined` when it is neither. */
export function stackOf(target: unknown): LayerInternal[] | undefined {
  if (target === null || (typeof target !== 'function' && typeof target !== 'object')) return undefined;
  const t = target as AppInternal & Partial<RouterInternal>;
  if (Array.isArray(t.stack)) return t.stack;
  if (typeof t.lazyrouter === 'function') {
    // Express 4: reading `app.router` throws there; the router lives in `_router`.
    t.lazyrouter();
    return t._router?.stack;
  }
  const router = t.router;
  return router && Array.isArray(router.stack) ? router.stack : undefined;
}

function isRouter(handle: unknown): handle is RouterInternal {
  return typeof handle === 'function' && Array.isArray((handle as Partial<RouterInternal>).stack);
}

function handlesMethod(methods: Record<string, boolean>, method: string): boolean {
  const m = method.toLowerCase();
  return Boolean(methods._all || methods[m] || (m === 'head' && methods.get));
}

/** Runs a layer's own matcher without leaving traces on it (Express keeps the last match on the layer). */
function matchLayer(layer: LayerInternal, path: string): string | undefined {
  const saved = { path: layer.path, params: layer.params };
  try {
    const result = layer.match(path);
    if (!result) return undefined;
    return typeof result === 'object' ? result.path : (layer.path ?? '');
  } catch {
    return undefined; // a malformed %-escape throws in Express 4; the route is not matched
  } finally {
    layer.path = saved.path;
    layer.params = saved.params;
  }
}

/**
 * True when a request `method path` reaches a route handler for that method,
 * following `use()` mounts into nested routers. `path` may be a template
 * (`/users/:id`): its `:id` segment matches the route's parameter.
 */
export function hasRoute(target: unknown, method: string, path: string): boolean {
  const stack = stackOf(target);
  return stack ? findIn(stack, method, path, 0) : false;
}

const MAX_DEPTH = 32; // a router mounted inside itself must not hang startup

function findIn(stack: LayerInternal[], method: string, path: string, depth: number): boolean {
  if (depth > MAX_DEPTH) return false;
  for (const layer of stack) {
    const matched = matchLayer(layer, path);
    if (matched === undefined) continue;
    if (layer.route) {
      if (handlesMethod(layer.route.methods, method)) return true;
    } else if (isRouter(layer.handle)) {
      const rest = path.slice(matched.length) || '/';
      if (findIn(layer.handle.stack, method, rest.startsWith('/') ? rest : `/${rest}`, depth + 1)) return true;
    }
  }
  return false;
}

/** Every route of an app or router, with full paths. */
export function listRoutes(target: unknown): RouteEntry[] {
  const stack = stackOf(target);
  const out: RouteEntry[] = [];
  if (stack) collect(stack, '', out, 0);
  return out;
}

/** How many routes a router (or app) has, nested routers included. */
export function countRoutes(target: unknown): number {
  return listRoutes(target).length;
}

function collect(stack: LayerInternal[], prefix: string, out: RouteEntry[], depth: number): void {
  if (depth > MAX_DEPTH) return;
  for (const layer of stack) {
    if (layer.route) {
      for (const p of pathsOf(layer.route.path)) {
        const methods = Object.keys(layer.route.methods).filter((m) => layer.route!.methods[m]);
        for (const m of methods) out.push({ method: m === '_all' ? 'ALL' : m.toUpperCase(), path: join(prefix, p) });
      }
    } else if (isRouter(layer.handle)) {
      for (const mount of mountPathsOf(layer)) collect(layer.handle.stack, join(prefix, mount), out, depth + 1);
    }
  }
}

function pathsOf(p: string | RegExp | Array<string | RegExp>): string[] {
  const list = Array.isArray(p) ? p.flat(Infinity as 1) : [p];
  return list.map((x) => (typeof x === 'string' ? x : `<${String(x)}>`));
}

/** The mount path(s) of a `use()` layer: Express 5 keeps it as `rawPath`; Express 4 only as a regexp. */
function mountPathsOf(layer: LayerInternal): string[] {
  if (layer.rawPath !== undefined) return pathsOf(layer.rawPath);
  if (layer.regexp) {
    if (layer.regexp.fast_slash) return ['/'];
    const decoded = decodeExpress4Mount(layer.regexp, layer.keys ?? []);
    if (decoded !== undefined) return [decoded];
  }
  return ['<?>'];
}

/**
 * Recovers `/api/v1/:org` from Express 4's compiled mount regexp
 * (`^\/api\/v1\/(?:([^\/]+?))\/?(?=\/|$)`, path-to-regexp 0.1).
 */
export function decodeExpress4Mount(re: RegExp, keys: Array<{ name: string | number }>): string | undefined {
  let src = re.source;
  if (!src.startsWith('^')) return undefined;
  src = src.slice(1).replace(/\\\/\?\(\?=\\\/\|\$\)$/, '').replace(/\\\/\?\$$/, '');
  let k = 0;
  // A parameter compiles to `(?:([^\/]+?))` (path-to-regexp 0.1.7) or `(?:\/([^/]+?))` (0.1.12).
  src = src.replace(/\(\?:(\\\/)?\(\[\^\\?\/\]\+\?\)\)/g, (_m, slash: string | undefined) => `${slash ? '/' : ''}:${String(keys[k++]?.name ?? k)}`);
  src = src.replace(/\\(.)/g, '$1');
  if (/[()[\]*+?^$|]/.test(src)) return undefined;
  return src === '' ? '/' : src;
}

function join(prefix: string, p: string): string {
  if (p === '/' || p === '') return prefix || '/';
  return `${prefix.replace(/\/$/, '')}${p.startsWith('/') ? '' : '/'}${p}`;
}
