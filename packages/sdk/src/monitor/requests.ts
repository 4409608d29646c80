/**
 * Level 2 from the app's own traffic: per-route request and 5xx counts over a
 * sliding window, and a check that turns them into an error-rate outcome.
 *
 * The middleware does next to nothing on the request path: it skips Vigil's own
 * synthetic probes (by their marker, which no client can forge) and registers one shared `finish` listener. Everything else
 * (route template resolution, counting) happens when the response has finished.
 *
 * Series are keyed by the route *template* (`GET /api/v1/orgs/:orgId/users/:id`),
 * never by the concrete path, so cardinality stays bounded by the app's routes;
 * `maxRoutes` caps it anyway (overflow counts under `(other)`).
 *
 * Template resolution, at `finish`:
 * - Express leaves `req.route` on the request (the last route that matched); its
 *   `path` is the route's own path (`/:id`), without the mount path.
 * - `req.baseUrl` is the concrete mount path (`/api/v1/orgs/42/users`) — but
 *   Express restores it to the parent's value when an error travels up through
 *   `next(err)` or a throw, so by the time the error handler has answered with a
 *   500 it is often `''`. When the route path is a plain one (literal and `:param`
 *   segments only, so its segment count is known), the mount path is therefore
 *   taken from `req.originalUrl` (which Express never rewrites) minus the route's
 *   segments; `req.baseUrl` is used for other route paths and as a second try.
 * - The full template is the entry of `routes()` (the inventory) with the same
 *   method (or `ALL`; `GET` for `HEAD`) whose path ends with the route path and
 *   whose prefix matches the mount path segment by segment (`:param` matches
 *   anything; case-insensitive; trailing slash ignored).
 * - No entry matches (a sub-app, an unrecoverable mount, a rewritten URL): the
 *   concrete mount path with id-like segments (digits, UUID, 16+ hex) replaced by
 *   `:id`, joined with the route path.
 * - No route matched at all: `(unmatched)`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { probeKind } from './marker.js';
import type { RouteEntry } from '../startup/inventory.js';
import type { CheckOutcome, HealthLevel, MonitorCheck } from './types.js';

/** Route label of requests no Express route matched (the app's 404 fallback, a middleware answering first). */
export const UNMATCHED_ROUTE = '(unmatched)';
/** Route label of requests on routes beyond `maxRoutes`. */
export const OTHER_ROUTE = '(other)';

const BUCKETS = 10;
const ROUTES_TTL_MS = 5000;
const MEMO_MAX = 1000;
const DEFAULT_MAX_ROUTES = 200;

/** What the middleware reads from an Express request (Express 4 and 5 alike). */
export type TrackedRequest = IncomingMessage & {
  route?: { path?: unknown } | undefined;
  baseUrl?: string | undefined;
  originalUrl?: string | undefined;
};

export interface RequestTrackerOptions {
  /** Length of the sliding window; kept as 10 buckets, so traffic leaves it in steps of a tenth. */
  windowMs: number;
  /** Distinct (method, route) series at most; beyond it, new routes count under `(other)`. Default 200. */
  maxRoutes?: number;
  /** The app's routes, e.g. `() => listRoutes(app)`; read at most every 5 s. */
  routes: () => RouteEntry[];
  now?: () => number;
}

export interface RouteStats {
  method: string;
  /** A route template, `(unmatched)` or `(other)`. */
  route: string;
  requests: number;
  /** Responses with a 5xx status. */
  errors: number;
  /** errors / requests; 0 when there were no requests. */
  ratio: number;
}

export interface ErrorRateCheckOptions {
  /** A route at or above this 5xx ratio makes the check `warn`. */
  warnRatio: number;
  /** A route at or above this 5xx ratio makes the check `fail`. */
  failRatio: number;
  /** Routes with fewer requests in the window are not judged. */
  minRequests: number;
  intervalMs: number;
  /** The component a route belongs to, shown next to it in `output`. */
  component?: (route: string) => string | undefined;
}

export interface RequestTracker {
  /** Express middleware (4 and 5); mount it first: `app.use(tracker.middleware)`. */
  middleware: (req: TrackedRequest, res: ServerResponse, next: () => void) => void;
  /** Per-series counts over the current window, series without traffic left out. */
  snapshot(): RouteStats[];
  /** `errorRateCheck(this tracker, opts)`. */
  errorRateCheck(opts: ErrorRateCheckOptions): MonitorCheck;
}

interface Series {
  method: string;
  route: string;
  pseudo: boolean;
  /** Bucket index each slot currently holds (NaN: never used). */
  epoch: number[];
  requests: number[];
  errors: number[];
  /** Newest bucket index written. */
  last: number;
  /** Pruned from the tracker: references held by memo entries must not count into it. */
  dead: boolean;
}

/** A memoised resolution: the template, and its series once known. */
interface Resolved {
  template: string;
  series: Series | undefined;
}

interface Entry {
  method: string;
  path: string;
}

/** The inventory as a trie of lower-cased segments; `:param` segments are also listed in `params`. */
interface TrieNode {
  children: Map<string, TrieNode>;
  params: TrieNode[];
  /** Inventory paths ending here. */
  entries: Entry[];
}

interface RouteInfo {
  /** Lower-cased segments of each of the route's paths (several for an array path). */
  tails: string[][];
  /** Segment count when the route has one plain path (literal and `:param` segments only). */
  plainSegments: number | undefined;
  /** The route path as shown in a fallback template. */
  label: string;
  /** Resolutions of this route by mount path, then by method (no string building on a hit). */
  memo: Map<string, Map<string, Resolved>>;
}

const SEEN = Symbol('vigil.requests.seen');
/** 1: listening for `finish`; 2: counted. */
type Flagged = TrackedRequest & { [SEEN]?: 1 | 2 };

export function createRequestTracker(opts: RequestTrackerOptions): RequestTracker {
  if (!(opts.windowMs > 0)) throw new RangeError(`windowMs must be positive, got ${opts.windowMs}`);
  const maxRoutes = opts.maxRoutes ?? DEFAULT_MAX_ROUTES;
  const now = opts.now ?? Date.now;
  const bucketMs = opts.windowMs / BUCKETS;

  const series = new Map<string, Series>();
  let realSeries = 0; // series that count against maxRoutes
  let prunedAt = NaN;

  let trie = newNode();
  let entriesSignature = '';
  let routesAt = -Infinity;
  const infos = new WeakMap<object, RouteInfo>();
  /** Route infos holding memo entries, and how many entries they hold together (at most MEMO_MAX). */
  const memoOwners = new Set<RouteInfo>();
  let memoSize = 0;
  const unmatched = new Map<string, Series>();

  function clearMemo(): void {
    for (const info of memoOwners) info.memo.clear();
    memoOwners.clear();
    memoSize = 0;
  }

  function refreshRoutes(t: number): void {
    routesAt = t;
    let list: RouteEntry[];
    try {
      list = opts.routes();
    } catch {
      return; // keep the last good list
    }
    const signature = list.map((r) => `${r.method} ${r.path}`).join('\n');
    if (signature === entriesSignature) return;
    entriesSignature = signature;
    trie = newNode();
    for (const r of list) insert(trie, { method: r.method.toUpperCase(), path: r.path }, segments(r.path.toLowerCase()));
    clearMemo();
  }

  function routeInfo(route: object & { path?: unknown }): RouteInfo {
    let info = infos.get(route);
    if (!info) {
      info = describeRoute(route.path);
      infos.set(route, info);
    }
    return info;
  }

  function resolve(req: TrackedRequest, method: string, route: object & { path?: unknown }, t: number): Resolved {
    if (t - routesAt >= ROUTES_TTL_MS) refreshRoutes(t);
    const info = routeInfo(route);
    const baseUrl = req.baseUrl ?? '';
    const path = pathnameOf(req.originalUrl ?? req.url ?? '/');
    const derived = info.plainSegments === undefined ? undefined : dropSegments(path, info.plainSegments);
    // A plain route is resolved from the original path alone; any other also depends on req.baseUrl.
    const memoKey = derived ?? `${baseUrl}\u0000${path}`;
    let byMethod = info.memo.get(memoKey);
    const hit = byMethod?.get(method);
    if (hit !== undefined) return hit;

    let template: string | undefined;
    const baseSegs = segments(baseUrl.toLowerCase());
    if (derived !== undefined) {
      template = lookup(trie, method, info.tails, segments(derived.toLowerCase()));
      // A rewritten req.url: the mount path Express used is not a prefix of the original one.
      if (template === undefined && baseUrl !== '' && !isSegmentPrefix(baseSegs, segments(path.toLowerCase()))) {
        template = lookup(trie, method, info.tails, baseSegs);
      }
    } else {
      template = lookup(trie, method, info.tails, baseSegs);
      // req.baseUrl restored by Express on the way to an error handler: the longest prefix of the path that fits.
      const pathSegs = segments(path.toLowerCase());
      for (let k = pathSegs.length; template === undefined && k >= 0; k--) template = lookup(trie, method, info.tails, pathSegs.slice(0, k));
    }
    const resolved: Resolved = { template: template ?? joinPath(idsToParams(derived ?? baseUrl), info.label), series: undefined };

    if (memoSize >= MEMO_MAX) {
      clearMemo();
      byMethod = undefined;
    }
    if (!byMethod) {
      byMethod = new Map();
      info.memo.set(memoKey, byMethod);
    }
    byMethod.set(method, resolved);
    memoOwners.add(info);
    memoSize++;
    return resolved;
  }

  function prune(idx: number): void {
    if (prunedAt === idx) return;
    prunedAt = idx;
    for (const [key, s] of series) {
      if (s.last <= idx - BUCKETS) {
        series.delete(key);
        s.dead = true;
        if (!s.pseudo) realSeries--;
      }
    }
  }

  /** The series of (method, route), created if there is room; the `(other)` series when there is not. */
  function seriesOf(method: string, route: string, idx: number): Series {
    const key = `${method} ${route}`;
    let s = series.get(key);
    if (!s) {
      const pseudo = route === UNMATCHED_ROUTE || route === OTHER_ROUTE;
      if (!pseudo && realSeries >= maxRoutes) {
        prune(idx);
        if (realSeries >= maxRoutes) return seriesOf(method, OTHER_ROUTE, idx);
      }
      s = {
        method,
        route,
        pseudo,
        epoch: new Array<number>(BUCKETS).fill(NaN),
        requests: new Array<number>(BUCKETS).fill(0),
        errors: new Array<number>(BUCKETS).fill(0),
        last: idx,
        dead: false,
      };
      series.set(key, s);
      if (!pseudo) realSeries++;
    }
    return s;
  }

  function count(s: Series, idx: number, isError: boolean): void {
    const slot = ((idx % BUCKETS) + BUCKETS) % BUCKETS;
    if (s.epoch[slot] !== idx) {
      s.epoch[slot] = idx;
      s.requests[slot] = 0;
      s.errors[slot] = 0;
    }
    s.requests[slot]!++;
    if (isError) s.errors[slot]!++;
    if (idx > s.last) s.last = idx;
  }

  function record(req: TrackedRequest, status: number): void {
    const t = now();
    const idx = Math.floor(t / bucketMs);
    const method = req.method ?? 'GET'; // upper-case from Node's parser
    const route = req.route;
    let s: Series | undefined;
    if (route !== null && typeof route === 'object' && route.path !== undefined) {
      const resolved = resolve(req, method, route, t);
      s = resolved.series;
      if (s === undefined || s.dead) {
        s = seriesOf(method, resolved.template, idx);
        // Not remembered when it is (other): the route gets its own series once there is room.
        resolved.series = s.route === resolved.template ? s : undefined;
      }
    } else {
      s = unmatched.get(method);
      if (s === undefined || s.dead) {
        s = seriesOf(method, UNMATCHED_ROUTE, idx);
        unmatched.set(method, s);
      }
    }
    count(s, idx, status >= 500 && status <= 599);
  }

  // One listener shared by every response: no closure per request.
  function onFinish(this: ServerResponse): void {
    const req = this.req as Flagged;
    if (req[SEEN] !== 1) return;
    req[SEEN] = 2;
    try {
      record(req, this.statusCode);
    } catch {
      // Counting must never break the app.
    }
  }

  const tracker: RequestTracker = {
    middleware(req, res, next) {
      const r = req as Flagged;
      if (r[SEEN] === undefined && probeKind(req) === undefined) {
        r[SEEN] = 1; // mounted twice still counts once
        // 'finish' fires once per response; `on` spares the wrapper `once` would allocate.
        res.on('finish', onFinish);
      }
      next();
    },
    snapshot() {
      const cur = Math.floor(now() / bucketMs);
      const out: RouteStats[] = [];
      for (const s of series.values()) {
        let requests = 0;
        let errors = 0;
        for (let i = 0; i < BUCKETS; i++) {
          const e = s.epoch[i]!;
          if (e > cur - BUCKETS && e <= cur) {
            requests += s.requests[i]!;
            errors += s.errors[i]!;
          }
        }
        if (requests > 0) out.push({ method: s.method, route: s.route, requests, errors, ratio: errors / requests });
      }
      return out.sort((a, b) => (a.route === b.route ? cmp(a.method, b.method) : cmp(a.route, b.route)));
    },
    errorRateCheck(o) {
      return errorRateCheck(tracker, o);
    },
  };
  return tracker;
}

const MAX_LISTED = 10;
const LEVEL: HealthLevel = 2;

/** A level 2 check over a tracker's window: the worst judged route decides. */
export function errorRateCheck(tracker: Pick<RequestTracker, 'snapshot'>, o: ErrorRateCheckOptions): MonitorCheck {
  return {
    id: 'error-rate',
    level: LEVEL,
    healthKey: 'http:error-rate',
    intervalMs: o.intervalMs,
    timeoutMs: 1000,
    run: async () => judge(tracker.snapshot(), o),
  };
}

function judge(stats: RouteStats[], o: ErrorRateCheckOptions): CheckOutcome {
  const judged = stats.filter((s) => s.requests >= o.minRequests);
  const worst = judged.reduce((m, s) => Math.max(m, s.ratio), 0);
  // A route with no 5xx is never offending, even with warnRatio 0.
  const offending = judged
    .filter((s) => s.errors > 0 && s.ratio >= o.warnRatio)
    .sort((a, b) => b.ratio - a.ratio || b.errors - a.errors || cmp(a.route, b.route) || cmp(a.method, b.method));
  const observed = { observedValue: Math.round(worst * 1000) / 1000, observedUnit: 'ratio' };
  if (offending.length === 0) return { status: 'pass', ...observed };
  const status = offending.some((s) => s.ratio >= o.failRatio) ? 'fail' : 'warn';
  const lines = offending.slice(0, MAX_LISTED).map((s) => {
    const component = o.component?.(s.route);
    return `${s.method} ${s.route}${component ? ` (${component})` : ''}: ${s.errors}/${s.requests} 5xx (${((s.errors / s.requests) * 100).toFixed(1)}%)`;
  });
  if (offending.length > MAX_LISTED) lines.push(`and ${offending.length - MAX_LISTED} more`);
  return { status, ...observed, output: lines.join('; '), affectedEndpoints: offending.map((s) => `${s.method} ${s.route}`) };
}

// ── Template helpers ───────────────────────────────────────────────────────────

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Non-empty segments: ignores leading, trailing and doubled slashes. */
function segments(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

/** A path with literal and `:param` segments only (no wildcard, optional part, regexp). */
const PLAIN_PATH = /^[^*?+()[\]{}<>]*$/;

function describeRoute(path: unknown): RouteInfo {
  const list = (Array.isArray(path) ? (path.flat(Infinity) as unknown[]) : [path]).map((p) => (typeof p === 'string' ? p : `<${String(p)}>`));
  if (list.length === 0) list.push('/');
  const plain = list.length === 1 && typeof path === 'string' && PLAIN_PATH.test(path);
  return {
    tails: list.map((p) => segments(p.toLowerCase())),
    plainSegments: plain ? segments(path).length : undefined,
    label: list.length === 1 ? list[0]! : `[${list.join(',')}]`,
    memo: new Map(),
  };
}

/** The path of a request target, without query or fragment (and without scheme and host in absolute form). */
function pathnameOf(url: string): string {
  let end = url.length;
  const q = url.indexOf('?');
  if (q !== -1) end = q;
  const h = url.indexOf('#');
  if (h !== -1 && h < end) end = h;
  let path = url.slice(0, end);
  if (!path.startsWith('/')) {
    const m = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(path);
    path = m ? path.slice(m[0].length) || '/' : `/${path}`;
  }
  return path;
}

/** `path` without its last `n` segments (trailing slashes ignored), or undefined when it has fewer. */
function dropSegments(path: string, n: number): string | undefined {
  let end = path.length;
  while (end > 0 && path[end - 1] === '/') end--;
  for (let i = 0; i < n; i++) {
    const slash = path.lastIndexOf('/', end - 1);
    if (slash === -1) return undefined;
    end = slash;
    while (end > 0 && path[end - 1] === '/') end--;
  }
  return path.slice(0, end);
}

function isSegmentPrefix(prefix: string[], of: string[]): boolean {
  if (prefix.length > of.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== of[i]) return false;
  return true;
}

function newNode(): TrieNode {
  return { children: new Map(), params: [], entries: [] };
}

function insert(root: TrieNode, entry: Entry, segs: string[]): void {
  let node = root;
  for (const seg of segs) {
    let child = node.children.get(seg);
    if (!child) {
      child = newNode();
      node.children.set(seg, child);
      if (seg.startsWith(':')) node.params.push(child);
    }
    node = child;
  }
  node.entries.push(entry);
}

/**
 * The inventory path made of a prefix matching `mount` segment by segment
 * (`:param` matches anything) followed by one of the route's own paths, taken
 * literally. Among several, an exact method beats `ALL` (and `GET` for `HEAD`),
 * then more literal mount segments beat parameters.
 */
function lookup(root: TrieNode, method: string, tails: string[][], mount: string[]): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  const visit = (node: TrieNode, i: number, literals: number): void => {
    if (i === mount.length) {
      for (const tail of tails) {
        let end: TrieNode | undefined = node;
        for (let j = 0; j < tail.length && end; j++) end = end.children.get(tail[j]!);
        if (!end) continue;
        for (const e of end.entries) {
          const m = e.method === method ? 2 : e.method === 'ALL' || (method === 'HEAD' && e.method === 'GET') ? 1 : 0;
          const score = m === 0 ? -1 : m * 1000 + Math.min(literals, 999);
          if (score > bestScore) {
            bestScore = score;
            best = e.path;
          }
        }
      }
      return;
    }
    const seg = mount[i]!;
    const literal = seg.startsWith(':') ? undefined : node.children.get(seg);
    if (literal) visit(literal, i + 1, literals + 1);
    for (const p of node.params) visit(p, i + 1, literals);
  };
  visit(root, 0, 0);
  return best;
}

const ID_SEGMENT = /^(?:\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,})$/i;

/** `/orgs/42/users` → `/orgs/:id/users`; trailing slash dropped. */
function idsToParams(path: string): string {
  const segs = segments(path);
  return segs.length === 0 ? '' : `/${segs.map((s) => (ID_SEGMENT.test(s) ? ':id' : s)).join('/')}`;
}

function joinPath(prefix: string, p: string): string {
  if (p === '/' || p === '') return prefix || '/';
  return `${prefix.replace(/\/$/, '')}${p.startsWith('/') ? '' : '/'}${p}`;
}
