/**
 * The live route table: every route Express really has (from `listRoutes`),
 * each with the component it belongs to, whether the manifest declares it, the
 * layer that answers it (route truth, `resolveRoute`) and its router's module.
 * Also the undocumented routes — registered but declared nowhere — and the
 * versioned snapshot `vigil routes --json` writes and `vigil diff` reads.
 */
import { z } from 'zod';
import { routerName, type Manifest, type UndocumentedRoutes } from '../manifest/schema.js';
import { describeLayer, listRoutes, resolveRoute, VERDICTS, type AnsweringLayer, type RouteEntry, type Verdict } from './inventory.js';

/** The most rows a table (or snapshot) holds; the rest are counted in `more`. */
export const ROUTE_TABLE_LIMIT = 10_000;
/** The most undocumented routes a report lists by name; the rest are counted. */
export const UNDOCUMENTED_LISTED = 100;
/** The snapshot format's version (`vigilRoutes`). */
export const SNAPSHOT_VERSION = 1;

/** Why a route needs no declaration: Vigil's own health route, a route of an internal router, or one the manifest's `allow` names. */
export const EXEMPTIONS = ['health', 'internal', 'allowed'] as const;
export type Exemption = (typeof EXEMPTIONS)[number];

const Text = (max: number) => z.string().min(1).max(max);

/** One route of the table (and of a snapshot, which is read back and so validated). */
export const RouteRow = z.object({
  /** Upper-case method, `ALL` for `all()`. */
  method: z.string().regex(/^[A-Z]{1,20}$/, 'expected an upper-case HTTP method such as "GET" (or "ALL")'),
  /** The full path template. */
  path: Text(2000),
  /** The manifest router it came from, else the component declaring it; absent when neither. */
  component: Text(200).optional(),
  /** The manifest router holding it. */
  router: Text(200).optional(),
  /** A manifest endpoint has this method and route. */
  declared: z.boolean(),
  /** Undeclared, yet not a finding (see {@link EXEMPTIONS}). */
  exempt: z.enum(EXEMPTIONS).optional(),
  /** What Express does with a request to it (route truth). */
  verdict: z.enum(VERDICTS),
  /** The layer that answers it, for people. */
  answeredBy: Text(2000).optional(),
  /** Its router's module as the manifest writes it. */
  source: Text(2000).optional(),
});
export type RouteRow = z.output<typeof RouteRow>;

const Count = z.number().int().min(0);
/** `vigil routes --json`: the table as a versioned snapshot of one release. */
export const RouteSnapshot = z.object({
  vigilRoutes: z.literal(SNAPSHOT_VERSION, { error: `expected ${SNAPSHOT_VERSION}: the snapshot format this vigil reads` }),
  service: Text(200),
  version: Text(200).optional(),
  generatedAt: z.iso.datetime({ error: 'expected an ISO 8601 time such as "2026-01-31T12:00:00.000Z"' }),
  /** Routes Express has in all (distinct method and path). */
  total: Count,
  /** Routes past {@link ROUTE_TABLE_LIMIT}, not in `routes`. */
  more: Count,
  routes: z.array(RouteRow).max(ROUTE_TABLE_LIMIT),
});
export type RouteSnapshot = z.output<typeof RouteSnapshot>;
export type RouteTable = Pick<RouteSnapshot, 'routes' | 'total' | 'more'>;

/** The undocumented routes of an app, as the report carries them. */
export interface UndocumentedFinding {
  policy: UndocumentedRoutes['policy'];
  /** How many routes are undocumented. */
  count: number;
  /** The first {@link UNDOCUMENTED_LISTED} of them, as `METHOD /path`. */
  routes: string[];
}

/** Where Vigil's health endpoints are, by the manifest's `health` paths; `routes` is the route table's. */
export function healthPaths(manifest: Pick<Manifest, 'health'>): { liveness: string; ready: string; detailed: string; businessCritical: string; routes: string } {
  const base = manifest.health.path.replace(/\/$/, '');
  return { liveness: manifest.health.path, ready: manifest.health.readyPath, detailed: `${base}/detailed`, businessCritical: `${base}/business-critical`, routes: `${base}/routes` };
}

/** `*` in a pattern matches anything; the rest is literal. */
function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.split('*').map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/** What the manifest says about routes, indexed once per table. */
class Contract {
  private readonly declared = new Map<string, string>();
  private readonly declaredPaths = new Map<string, string>();
  private readonly health: Set<string>;
  private readonly allow: Array<{ method: string; path: RegExp }>;
  private readonly internal: Set<string>;
  private readonly routers = new Map<string, string>();

  constructor(readonly manifest: Manifest) {
    for (const [component, spec] of Object.entries(manifest.components)) {
      for (const e of spec.endpoints) {
        this.declared.set(`${e.method} ${e.route}`, component);
        this.declaredPaths.set(e.route, component);
      }
      for (const r of spec.routers) this.routers.set(`${routerName(r)}\u0000${r.module ?? 'load'}`, component);
    }
    this.health = new Set(Object.values(healthPaths(manifest)));
    this.allow = manifest.undocumentedRoutes.allow.map((p) => {
      const [method, path] = p.split(' ') as [string, string];
      return { method: method.toUpperCase(), path: globToRegExp(path) };
    });
    this.internal = new Set(manifest.undocumentedRoutes.internalRouters);
  }

  /** The component declaring `method path` (`ALL`: any method on the path). */
  declaring(method: string, path: string): string | undefined {
    return method === 'ALL' ? this.declaredPaths.get(path) : this.declared.get(`${method} ${path}`);
  }

  /** The component of the manifest router `router` with module `source`. */
  componentOf(router: string | undefined, source: string | undefined): string | undefined {
    return router === undefined ? undefined : this.routers.get(`${router}\u0000${source ?? 'load'}`);
  }

  /** Why an undeclared route is not a finding, if it is not; the router is looked up only when needed. */
  exemption(method: string, path: string, router: () => string | undefined): Exemption | undefined {
    if (this.health.has(path) && (method === 'GET' || method === 'HEAD')) return 'health';
    if (this.allow.some((a) => (a.method === '*' || a.method === method) && a.path.test(path))) return 'allowed';
    if (this.internal.size && this.internal.has(router() ?? '')) return 'internal';
    return undefined;
  }
}

/** Distinct method and path, in Express's order. */
function distinct(routes: RouteEntry[]): RouteEntry[] {
  const seen = new Set<string>();
  return routes.filter((r) => {
    const key = `${r.method} ${r.path}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The route's own layer: the one that answers, or when shadowed the route the request never reaches. */
function ownLayer(app: unknown, r: RouteEntry): { verdict: Verdict; layer?: AnsweringLayer } {
  const resolution = resolveRoute(app, r.method === 'ALL' ? 'GET' : r.method, r.path);
  return { verdict: resolution.verdict, layer: resolution.own ?? resolution.answeredBy };
}

/** The route table of `app` against `manifest`, at most `limit` rows. */
export function routeTable(app: unknown, manifest: Manifest, limit = ROUTE_TABLE_LIMIT): RouteTable {
  const contract = new Contract(manifest);
  const all = distinct(listRoutes(app));
  const rows = all.slice(0, limit).map((r): RouteRow => {
    const { verdict, layer } = ownLayer(app, r);
    const declaredBy = contract.declaring(r.method, r.path);
    const component = contract.componentOf(layer?.router, layer?.source) ?? declaredBy;
    const exempt = declaredBy === undefined ? contract.exemption(r.method, r.path, () => layer?.router) : undefined;
    return {
      method: r.method,
      path: r.path,
      ...(component ? { component } : {}),
      ...(layer?.router ? { router: layer.router } : {}),
      declared: declaredBy !== undefined,
      ...(exempt ? { exempt } : {}),
      verdict,
      ...(layer ? { answeredBy: describeLayer(layer) } : {}),
      ...(layer?.source ? { source: layer.source } : {}),
    };
  });
  return { routes: rows, total: all.length, more: Math.max(0, all.length - limit) };
}

/** The table as a snapshot of this release. */
export function routeSnapshot(app: unknown, manifest: Manifest, now = new Date()): RouteSnapshot {
  return {
    vigilRoutes: SNAPSHOT_VERSION,
    service: manifest.service,
    ...(manifest.version ? { version: manifest.version } : {}),
    generatedAt: now.toISOString(),
    ...routeTable(app, manifest),
  };
}

/**
 * The undocumented routes of `app`: registered, not declared, not exempt.
 * Cheap enough for every inventory: only undeclared routes are resolved, and
 * only when the manifest names internal routers.
 */
export function findUndocumented(app: unknown, manifest: Manifest, routes: RouteEntry[] = listRoutes(app)): UndocumentedFinding {
  const contract = new Contract(manifest);
  const found = distinct(routes).filter(
    (r) => contract.declaring(r.method, r.path) === undefined && contract.exemption(r.method, r.path, () => ownLayer(app, r).layer?.router) === undefined,
  );
  return { policy: manifest.undocumentedRoutes.policy, count: found.length, routes: found.slice(0, UNDOCUMENTED_LISTED).map((r) => `${r.method} ${r.path}`) };
}

/** The undocumented routes in one line: `3 undocumented routes: GET /a, POST /b, … (and 1 more)`. */
export function describeUndocumented(u: UndocumentedFinding): string {
  const more = u.count - u.routes.length;
  return `${u.count} undocumented route${u.count === 1 ? '' : 's'} (in Express, not in the manifest): ${u.routes.join(', ')}${more > 0 ? ` (and ${more} more)` : ''}`;
}

const DECLARED_TEXT = (r: RouteRow) => (r.declared ? 'yes' : r.exempt ?? 'NO');

/** The table for people: aligned columns, then a count line. */
export function formatRouteTable(table: RouteTable, title: string): string {
  const header = ['METHOD', 'PATH', 'COMPONENT', 'DECLARED', 'VERDICT', 'SOURCE', 'ANSWERED BY'];
  const cells = table.routes.map((r) => [r.method, r.path, r.component ?? '-', DECLARED_TEXT(r), r.verdict, r.source ?? '-', r.answeredBy ?? '-']);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]!))).join('  ').trimEnd();
  const undocumented = table.routes.filter((r) => !r.declared && !r.exempt).length;
  const summary = `${table.total} route${table.total === 1 ? '' : 's'}, ${table.routes.filter((r) => r.declared).length} declared, ${undocumented} undocumented${table.more ? ` (${table.more} more not shown: the table stops at ${table.routes.length})` : ''}`;
  return [title, line(header), ...cells.map(line), summary].join('\n');
}
