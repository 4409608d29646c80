/**
 * Route inventory: which routes Express really has, and which layer would
 * answer a declared endpoint. Works on Express 4 and 5, through nested
 * routers, sub-applications and mount paths of every kind.
 *
 * - `resolveRoute(app, method, path)` walks the stacks exactly as Express
 *   dispatches a request (each layer's own `match()`, so mount patterns,
 *   regular expressions and the `caseSensitive`/`strict` options count as they
 *   do for a request), and names the layer that would answer: a route of its
 *   own, a catch-all, a parameter route standing in for a static path, or
 *   nothing. `hasRoute` is its yes/no.
 * - `listRoutes(app)` enumerates every route for reports and drift; a mount path
 *   that cannot be recovered is shown as `<?>`.
 *
 * What cannot be known without running the app's code is decided by the
 * handler's arity: a middleware that takes `next` is taken to pass the request
 * on, one that does not (`(req, res) => …`) to answer it.
 */
import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import { MOUNTED_APP, type AppInternal, type LayerInternal, type RouteInternal, type RouterInternal } from './express-internals.js';

export interface RouteEntry {
  /** Upper-case method, or `ALL` for `router.all()`. */
  method: string;
  /** The full path template, e.g. `/api/v1/users/:id`. */
  path: string;
}

/**
 * What Express would do with a declared endpoint:
 * - `registered`: a route of its own answers (or middleware mounted at exactly that path);
 * - `fallback-only`: only a catch-all would answer (a wildcard route, or middleware above the path that answers everything below it);
 * - `param-only`: a static path is answered only by a parameter route (`/articles/feed` by `/articles/:slug`);
 * - `shadowed`: a route of its own exists, but an earlier layer answers first;
 * - `missing`: nothing answers (Express's 404).
 */
export const VERDICTS = ['registered', 'fallback-only', 'param-only', 'shadowed', 'missing'] as const;
export type Verdict = (typeof VERDICTS)[number];

/** The layer that would answer a request. */
export interface AnsweringLayer {
  /** `route`: a route handler; `middleware`: a `use()` function that answers; `options`: Express's automatic OPTIONS answer. */
  type: 'route' | 'middleware' | 'options';
  /** The route's method (`GET`, `ALL`), `USE` for middleware, `OPTIONS` for the automatic answer. */
  method: string;
  /** Full path template of the route, or the middleware's mount path. */
  path: string;
  /** The function that answers (the route's last handler), `<anonymous>` when it has no name. */
  handler: string;
  /** Where the router (or sub-app) holding it is mounted, `/` for the app itself. */
  mount: string;
  /** The manifest router holding it, and its module as the manifest writes it, when it is one. */
  router?: string;
  source?: string;
}

export interface Resolution {
  verdict: Verdict;
  /** The layer that would answer (absent when `missing`). */
  answeredBy?: AnsweringLayer;
  /** When `shadowed`: the endpoint's own route, which the request never reaches. */
  own?: AnsweringLayer;
  /** Why it is not `registered`, one line. */
  reason?: string;
}

/** `METHOD /path (handler h, mounted at /m, ./routers/x.js)`: the answering layer for people. */
export function describeLayer(l: AnsweringLayer): string {
  if (l.type === 'options') return `Express's automatic OPTIONS answer for ${l.path}`;
  const what = l.type === 'middleware' ? `the middleware ${l.handler} at ${l.path}` : `${l.method} ${l.path}`;
  const where = [l.type === 'route' ? `handler ${l.handler}` : undefined, l.mount !== '/' ? `mounted at ${l.mount}` : undefined, l.source].filter(Boolean);
  return where.length ? `${what} (${where.join(', ')})` : what;
}

/** The router stack of an Express app, Router, Vigil router slot or sub-app, or `undefined` when it is none of them. */
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

/** The function under instrumentation wrappers (shimmer keeps it as `__original`): its arity and name are the app's. */
function unwrap(fn: unknown): unknown {
  let f = fn;
  for (let i = 0; i < 8; i++) {
    const inner = typeof f === 'function' ? (f as unknown as { __original?: unknown }).__original : undefined;
    if (typeof inner !== 'function') break;
    f = inner;
  }
  return f;
}

function isApp(v: unknown): v is AppInternal {
  return typeof v === 'function' && typeof (v as AppInternal).handle === 'function' && typeof (v as AppInternal).set === 'function';
}

const SUB_APP_FOUND = Symbol('vigil.subApp');
const subApps = new WeakMap<object, AppInternal | null>();

/**
 * The sub-application behind a `mounted_app` layer. Express keeps it only in
 * the closure; a dry dispatch finds it: the closure is called with a stand-in
 * request whose prototype Express sets to `subApp.request` before any of the
 * app's own code runs (see express-internals.ts). The stand-in stops there:
 * it throws at that moment (Express 5) or has no URL from then on (Express 4,
 * whose router then ends at once). Cached per layer handle.
 */
export function subAppOf(layer: LayerInternal): AppInternal | undefined {
  const handle = unwrap(layer.handle);
  if (typeof handle !== 'function' || (layer.name ?? handle.name) !== MOUNTED_APP) return undefined;
  const cached = subApps.get(handle);
  if (cached !== undefined) return cached ?? undefined;
  let found: AppInternal | undefined;
  const blank = { request: {}, response: {} };
  const req = new Proxy({ method: 'GET', headers: {}, app: blank, originalUrl: '/' } as Record<string | symbol, unknown>, {
    get: (t, k, r) => (k === 'url' ? (found ? undefined : '/') : Reflect.get(t, k, r)),
    setPrototypeOf: (t, proto) => {
      const app = (proto as { app?: unknown } | null)?.app;
      if (!found && isApp(app)) {
        found = app;
        throw SUB_APP_FOUND;
      }
      return Reflect.setPrototypeOf(t, proto);
    },
  });
  const res = { setHeader() {}, getHeader() {}, locals: {} };
  try {
    // Outside any span: instrumentation must not record this as a request.
    context.with(ROOT_CONTEXT, () => (handle as (q: unknown, s: unknown, n: () => void) => void)(req, res, () => {}));
  } catch {
    // SUB_APP_FOUND, or anything unexpected: either way only what was found counts.
  }
  subApps.set(handle, found ?? null);
  return found;
}

/** The stack a `use()` layer leads into: a Router, a Vigil slot, or a sub-app. */
function childStack(layer: LayerInternal): LayerInternal[] | undefined {
  const h = layer.handle;
  if (typeof h !== 'function') return undefined;
  if (Array.isArray((h as Partial<RouterInternal>).stack)) return (h as unknown as RouterInternal).stack;
  // An app given to a Router's use() (not app.use()) is a plain middleware: no mounted_app closure.
  if (isApp(unwrap(h))) return stackOf(unwrap(h));
  const sub = subAppOf(layer);
  return sub ? stackOf(sub) : undefined;
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
 * True when a request `method path` reaches a route of its own (see
 * `resolveRoute`). `path` may be a template (`/users/:id`): its `:id` segment
 * matches the route's parameter.
 */
export function hasRoute(target: unknown, method: string, path: string): boolean {
  return resolveRoute(target, method, path).verdict === 'registered';
}

const MAX_DEPTH = 32; // a router mounted inside itself must not hang startup
/** Stand-ins that no app means: a layer that still matches with them matched through a parameter or a wildcard. */
const NOWHERE = 'vigil-nowhere-0';
const DEEPER = `/${NOWHERE}/vigil-nowhere-1`;

/** A segment that is a value, not a path of its own: digits, a UUID, 16+ hex digits. */
const ID_LIKE = /^(?:\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,})$/i;

type Kind = 'own' | 'param' | 'catch-all';
const RANK: Record<Kind, number> = { own: 0, param: 1, 'catch-all': 2 };
const weaker = (a: Kind, b: Kind): Kind => (RANK[a] >= RANK[b] ? a : b);

interface Candidate {
  layer: AnsweringLayer;
  kind: Kind;
}

interface Walk {
  method: string;
  /** Indexes of the request path's segments that are parameters in the declared template (not checked for param-only). */
  paramSegments: Set<number>;
  out: Candidate[];
}

interface Where {
  /** The request path as this stack sees it (the mount part removed). */
  path: string;
  /** Segments of the full path consumed by the mounts above. */
  offset: number;
  prefix: string;
  kind: Kind;
  router?: string;
  source?: string;
}

/**
 * What Express would do with `method path`. `path` is the declared route; a
 * `:name` segment stands for a value (pass `values` to put real ones in, for
 * routes whose parameters have patterns).
 */
export function resolveRoute(target: unknown, method: string, path: string, values: Record<string, string> = {}): Resolution {
  const stack = stackOf(target);
  const segments = path.split('/');
  const paramSegments = new Set<number>();
  const concrete = segments
    .map((s, i) => {
      if (ID_LIKE.test(s)) paramSegments.add(i - 1); // `/orgs/42/users`: 42 is a value, not a static path
      if (!s.startsWith(':')) return s;
      paramSegments.add(i - 1);
      const v = values[s.slice(1)];
      return v === undefined ? s : encodeURIComponent(v);
    })
    .join('/');
  const w: Walk = { method: method.toUpperCase(), paramSegments, out: [] };
  if (stack) walk(stack, w, { path: concrete, offset: 0, prefix: '', kind: 'own' }, 0);
  return verdictOf(w.out);
}

function verdictOf(candidates: Candidate[]): Resolution {
  const first = candidates[0];
  if (!first) return { verdict: 'missing', reason: 'no route answers it' };
  if (first.kind === 'own') return { verdict: 'registered', answeredBy: first.layer };
  const own = candidates.find((c) => c.kind === 'own');
  if (own) return { verdict: 'shadowed', answeredBy: first.layer, own: own.layer, reason: `${describeLayer(first.layer)} answers before its own route ${describeLayer(own.layer)}` };
  if (first.kind === 'param') return { verdict: 'param-only', answeredBy: first.layer, reason: `only the parameter route ${describeLayer(first.layer)} would answer` };
  const what = first.layer.type === 'route' ? `the catch-all ${describeLayer(first.layer)}` : describeLayer(first.layer);
  return { verdict: 'fallback-only', answeredBy: first.layer, reason: `only ${what} would answer` };
}

/** Walks one stack; true once a layer of the endpoint's own answers (the walk goes on past catch-alls, to tell `shadowed`). */
function walk(stack: LayerInternal[], w: Walk, at: Where, depth: number): boolean {
  if (depth > MAX_DEPTH) return false;
  const optionsFrom: Candidate[] = [];
  for (const layer of stack) {
    const matched = matchLayer(layer, at.path);
    if (matched === undefined) continue;
    if (layer.route) {
      const route = layer.route;
      const kind = weaker(at.kind, routeKind(layer, w, at));
      const info: AnsweringLayer = {
        type: 'route',
        method: routeMethod(route, w.method),
        path: joinPath(at.prefix, pathText(route.path)),
        handler: lastHandler(route, w.method),
        mount: at.prefix || '/',
        ...origin(at),
      };
      if (!handlesMethod(route.methods, w.method)) {
        if (w.method === 'OPTIONS') optionsFrom.push({ layer: info, kind });
        continue;
      }
      // An all() route whose handlers all take `next` is a gate or a preloader (app.all('*', requireAuth),
      // app.all('/user/:id/:op?', load)): it passes the request on. A route of one method answers.
      if (isAll(route) && passesOn(route, w.method)) continue;
      w.out.push({ layer: info, kind });
      if (kind === 'own') return true;
      continue;
    }
    const handle = unwrap(layer.handle);
    if (typeof handle !== 'function' || handle.length === 4) continue; // error handlers see no normal request
    const rest = at.path.slice(matched.length);
    const inner = rest.startsWith('/') ? rest : `/${rest}`;
    const mount = joinPath(at.prefix, mountText(layer, matched));
    const children = childStack(layer);
    if (children) {
      const slot = layer.handle as { vigilRouter?: string; vigilSource?: string };
      const next: Where = {
        path: inner,
        offset: at.offset + segmentCount(matched),
        prefix: mount === '/' ? '' : mount,
        kind: weaker(at.kind, mountKind(layer, w, at, matched)),
        router: slot.vigilRouter ?? at.router,
        source: slot.vigilSource ?? at.source,
      };
      if (walk(children, w, next, depth + 1)) return true;
      continue;
    }
    if (handle.length >= 3) continue; // takes next: assumed to pass the request on
    const exact = inner === '/' || inner === '';
    const kind = exact ? weaker(at.kind, mountKind(layer, w, at, matched)) : 'catch-all';
    w.out.push({ layer: { type: 'middleware', method: 'USE', path: mount, handler: layer.name ?? handle.name ?? '<anonymous>', mount: at.prefix || '/', ...origin(at) }, kind });
    if (kind === 'own') return true;
  }
  // Express answers OPTIONS itself when routes match the path but none handles OPTIONS.
  if (w.method === 'OPTIONS' && optionsFrom.length) {
    const best = optionsFrom.reduce((a, b) => (RANK[b.kind] < RANK[a.kind] ? b : a));
    w.out.push({ layer: { ...best.layer, type: 'options', method: 'OPTIONS', handler: '(automatic OPTIONS)' }, kind: best.kind });
    if (best.kind === 'own') return true;
  }
  return false;
}

function origin(at: Where): { router?: string; source?: string } {
  return { ...(at.router ? { router: at.router } : {}), ...(at.source ? { source: at.source } : {}) };
}

/** `catch-all` when the route also matches deeper paths; `param` when a static segment of the path can be anything. */
function routeKind(layer: LayerInternal, w: Walk, at: Where): Kind {
  if (matchLayer(layer, at.path.replace(/\/$/, '') + DEEPER) !== undefined) return 'catch-all';
  return throughParam(layer, w, at, Infinity) ? 'param' : 'own';
}

/** `param` when a static segment of the path reached this mount only through a parameter of its mount path. */
function mountKind(layer: LayerInternal, w: Walk, at: Where, matched: string): Kind {
  return throughParam(layer, w, at, segmentCount(matched)) ? 'param' : 'own';
}

/** True when one of the first `n` static segments of the path can be anything and the layer still matches. */
function throughParam(layer: LayerInternal, w: Walk, at: Where, n: number): boolean {
  const parts = at.path.split('/');
  for (let i = 1; i <= n && i < parts.length; i++) {
    if (parts[i] === '' || w.paramSegments.has(at.offset + i - 1)) continue;
    const other = [...parts];
    other[i] = NOWHERE;
    if (matchLayer(layer, other.join('/')) !== undefined) return true;
  }
  return false;
}

function segmentCount(matched: string): number {
  return matched.split('/').filter(Boolean).length;
}

function routeHandlers(route: RouteInternal, method: string): Array<{ handle: unknown; name?: string }> {
  const m = method.toLowerCase();
  const stack = route.stack ?? [];
  const own = stack.filter((l) => l.method === undefined || l.method === m);
  return own.length || m !== 'head' ? own : stack.filter((l) => l.method === undefined || l.method === 'get');
}

function lastHandler(route: RouteInternal, method: string): string {
  const last = routeHandlers(route, method).at(-1);
  const h = unwrap(last?.handle) as { name?: string } | undefined;
  return last?.name && last.name !== '<anonymous>' ? last.name : h?.name || '<anonymous>';
}

/** `router.all()` sets `_all`; `app.all()` registers the route once per HTTP method. */
function isAll(route: RouteInternal): boolean {
  const m = route.methods;
  return Boolean(m._all || (m.get && m.post && m.put && m.delete && m.patch && m.options && m.head));
}

function passesOn(route: RouteInternal, method: string): boolean {
  const handlers = routeHandlers(route, method);
  return handlers.length > 0 && handlers.every((l) => {
    const h = unwrap(l.handle);
    return typeof h === 'function' && h.length >= 3;
  });
}

/** The method the route answers this request with: its own, `GET` for a HEAD, `ALL` for `all()`. */
function routeMethod(route: RouteInternal, method: string): string {
  const m = method.toLowerCase();
  if (isAll(route)) return 'ALL';
  if (route.methods[m]) return method;
  if (m === 'head' && route.methods.get) return 'GET';
  return Object.keys(route.methods).filter((k) => route.methods[k]).map((k) => k.toUpperCase()).join(',');
}

function pathText(p: string | RegExp | Array<string | RegExp>): string {
  return pathsOf(p).join(',');
}

/** A `use()` layer's mount for people: its declared path when known, else what it matched. */
function mountText(layer: LayerInternal, matched: string): string {
  const paths = mountPathsOf(layer);
  return paths.length === 1 && paths[0] !== '<?>' ? paths[0]! : matched || '/';
}

/** Every route of an app or router, with full paths, sub-apps included. */
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
        for (const m of methods) out.push({ method: m === '_all' ? 'ALL' : m.toUpperCase(), path: joinPath(prefix, p) });
      }
      continue;
    }
    const children = childStack(layer);
    if (children) for (const mount of mountPathsOf(layer)) collect(children, joinPath(prefix, mount), out, depth + 1);
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

function joinPath(prefix: string, p: string): string {
  if (p === '/' || p === '') return prefix || '/';
  return `${prefix.replace(/\/$/, '')}${p.startsWith('/') ? '' : '/'}${p}`;
}
