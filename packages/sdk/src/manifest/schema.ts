/**
 * The manifest: what the app declares it should be. The zod schemas are the
 * types (`Manifest` is the parsed config, `ManifestInput` the file's shape), so
 * no interface is written twice. Every object is strict: a typo in a key is an
 * error, not a silently ignored setting.
 */
import { z } from 'zod';
import { Duration } from '../util/duration.js';
import { EndpointSlo, FlowSlo, SloDefaults } from '../slo/schema.js';

/** Node's longest timer: a longer delay is cut to 1 ms (a loop with no pause). */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * A duration that becomes a timer (`Duration.default(…)` or `Duration.optional()`):
 * at most {@link MAX_TIMER_MS}, and over 0 unless 0 means "none" (no drain, no
 * wait): an interval or timeout of 0 probes in a loop with no pause, or times out
 * before sending. The bounds sit on the wrapper, so the field's schema stays `Duration`.
 */
function timer<T extends z.ZodDefault<typeof Duration> | z.ZodOptional<typeof Duration>>(schema: T, { zeroOk = false } = {}): T {
  const bounded = (schema as z.ZodType<number | undefined>)
    .refine((ms) => ms === undefined || ms <= MAX_TIMER_MS, { message: `expected a duration of at most 24 days (${MAX_TIMER_MS} ms, the longest timer Node.js can set)` })
    .refine((ms) => zeroOk || ms === undefined || ms > 0, { message: 'expected a duration over 0 (e.g. "500ms")' });
  return bounded as unknown as T;
}

/**
 * Names, paths and the service name become metric and alert labels (and span
 * attributes): an email address there would put personal data into every series.
 */
// local@domain.tld; in a path, "/" starts a segment, so "/@scope/pkg" or "/users/@me" is not an address.
const EMAIL_RE = /[^\s@/\\,;:<>()[\]"]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/;
export function looksLikeEmail(text: string): boolean {
  return text.includes('@') && EMAIL_RE.test(text.replace(/\$\{[^}]*\}/g, ''));
}
const emailMessage = (what: string) => `${what} looks like an email address; names become metric labels: use an identifier`;
/** A string that becomes a label: no email address in it. */
const label = <T extends z.ZodString>(s: T, what: string) => s.refine((v) => !looksLikeEmail(v), { message: emailMessage(what) });

/** zod alone says "Invalid URL". */
const Url = z.url({ error: 'expected an absolute URL such as "http://127.0.0.1:3000"' });

const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export const HttpMethod = z.preprocess(
  (v) => (typeof v === 'string' ? v.toUpperCase() : v),
  z.enum(HTTP_METHODS),
);
export type HttpMethod = z.output<typeof HttpMethod>;

/** A value read from the environment by name at run time; the manifest never holds the secret. */
export const FromEnv = z.strictObject({
  env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name'),
  /** Text put before the value, e.g. `"Bearer "`. */
  prefix: z.string().optional(),
});
export type FromEnv = z.output<typeof FromEnv>;

const NAME_RE = /^[a-z][a-z0-9_-]*$/;
const Name = label(z.string(), 'this name').regex(NAME_RE, 'expected a lowercase name: letters, digits, "_" or "-", starting with a letter');

const RoutePath = label(z.string(), 'this path')
  .startsWith('/', 'expected a path starting with "/"')
  .refine((p) => !/\s/.test(p), 'expected a path without spaces');

/** Which answers count as "the endpoint works". */
export const StatusExpectation = z.union(
  [
    /** `exists`: any answer but 404, 405 or 5xx — an unauthenticated login answering 401 passes. */
    z.literal('exists'),
    z.array(z.number().int().min(100).max(599)).min(1),
  ],
  { error: 'expected "exists" or a list of HTTP status codes (100 to 599), e.g. [200, 401]' },
);

/**
 * An assertion on a JSON answer. `path` is a dotted path with optional indexes
 * (`data.items[0].id`, `$.accessToken`); exactly one of `equals`, `exists`,
 * `matches` says what must hold there.
 */
export const BodyAssertion = z
  .strictObject({
    path: z.string().min(1),
    equals: z.unknown().optional(),
    exists: z.boolean().optional(),
    /** A regular expression the value (as text) must match. */
    matches: z
      .string()
      .refine((r) => {
        try {
          new RegExp(r);
          return true;
        } catch {
          return false;
        }
      }, 'expected a valid regular expression')
      .optional(),
  })
  .refine((a) => [a.equals !== undefined, a.exists !== undefined, a.matches !== undefined].filter(Boolean).length === 1, {
    message: 'expected exactly one of "equals", "exists" or "matches"',
  });
export type BodyAssertion = z.output<typeof BodyAssertion>;

const Expectation = z.strictObject({
  status: StatusExpectation.default('exists'),
  /** Assertions on the JSON body. */
  body: z.array(BodyAssertion).default([]),
  /** Headers the answer must carry, with a regular expression their value must match (`""` = present). */
  headers: z.record(z.string(), z.string()).default({}),
});

/** A probe's expectation: with no `status`, 2xx or 3xx (401/403 without credentials for `auth: true`). */
const ProbeExpectation = Expectation.extend({ status: StatusExpectation.optional() });

/** Text with `${env:NAME}` (a secret read at run time) and, in flows, `${capture}` placeholders. */
const Template = z.string();
/** A header value: text, or `{ env: NAME, prefix: "Bearer " }`. */
const HeaderValue = z.union([Template, FromEnv], { error: 'expected text (it may hold ${env:NAME}) or { env: NAME, prefix: "Bearer " }' });

export const Probe = z.strictObject({
  /** Probe this endpoint at run time (default `true`); startup validation checks it either way. */
  enabled: z.boolean().default(true),
  /**
   * `true`: probe it even though its method is not GET, HEAD or OPTIONS. Without it a POST, PUT,
   * PATCH or DELETE endpoint is not probed: a probe must not create records or use up a limiter.
   */
  unsafe: z.boolean().default(false),
  /** Values of the route's parameters for the probe: `{ id: "42" }` probes `/users/:id` as `/users/42`. */
  params: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected a parameter name'), z.string().min(1)).default({}),
  /** Or a whole example path to probe, e.g. `/users/42`. */
  path: RoutePath.optional(),
  /**
   * `true`: the endpoint needs credentials. Without them (no `headers`) the probe expects 401 or 403;
   * with them, the default expectation (2xx or 3xx) holds.
   */
  auth: z.boolean().default(false),
  /** JSON body sent with the probe request; strings may hold `${env:NAME}`. */
  body: z.unknown().optional(),
  /** Request headers; a value can come from the environment (`{ env: NAME, prefix: "Bearer " }` or `"Bearer ${env:NAME}"`). */
  headers: z.record(z.string(), HeaderValue).default({}),
  expect: ProbeExpectation.default(() => ProbeExpectation.parse({})),
  /** The request is a failure after this long. */
  timeout: timer(Duration.default(5000)),
  /** Over this latency the endpoint is degraded (`warn`); default: none. */
  latencyWarn: timer(Duration.optional()),
  /** How often to probe; default `monitor.intervals.endpoints`. */
  interval: timer(Duration.optional()),
});
export type Probe = z.output<typeof Probe>;

/** One request of a flow; later steps can use what earlier ones captured as `${name}`. */
export const FlowStep = z.strictObject({
  name: Name,
  method: HttpMethod,
  /** Path on the app, e.g. `/api/v1/admin/feature-flags`; may hold `${capture}` placeholders. */
  path: RoutePath,
  headers: z.record(z.string(), HeaderValue).default({}),
  body: z.unknown().optional(),
  expect: Expectation.default(() => Expectation.parse({})),
  /** Values to keep from the JSON answer: `{ token: accessToken }`. Captured values are secrets: never logged. */
  capture: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected a variable name'), z.string().min(1)).default({}),
  timeout: timer(Duration.default(5000)),
});
export type FlowStep = z.output<typeof FlowStep>;

type FlowFunction = (ctx: FlowContext) => Promise<unknown> | unknown;
/** What a custom flow function gets: an HTTP client on the app (synthetic, traced), the environment and the abort signal. */
export interface FlowContext {
  request: (method: string, path: string, options?: { headers?: Record<string, string>; json?: unknown }) => Promise<{ status: number; body: unknown; headers: Record<string, string | string[] | undefined> }>;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
}

/** A business-critical flow (level 3): steps run in order, or your own function. */
export const Flow = z
  .strictObject({
    description: z.string().optional(),
    steps: z.array(FlowStep).min(1).optional(),
    /** In an object manifest: your own flow; it fails by throwing or returning `false`. */
    check: z.custom<FlowFunction>((v) => typeof v === 'function', 'expected a function').optional(),
    /** How often to run it; default `monitor.intervals.flows`. */
    interval: timer(Duration.optional()),
    /** Its objective: the share of time its runs pass (`vigil slo`, docs/sdk.md#slos-from-the-manifest). */
    slo: FlowSlo.optional(),
  })
  .refine((f) => Boolean(f.steps) !== Boolean(f.check), { message: 'expected exactly one of "steps" or "check"' });
export type Flow = z.output<typeof Flow>;

/** What to try when a component fails at run time. */
export const Recovery = z.strictObject({
  /** Import the component's failed routers again (a fresh module instance) and swap them in. */
  reimportRouters: z.boolean().default(false),
  /** Attempts per incident. */
  attempts: z.number().int().min(1).max(20).default(3),
  /** Wait before the first retry; doubles each time. */
  backoff: timer(Duration.default(1000), { zeroOk: true }),
});

const EndpointObject = z.strictObject({
  method: HttpMethod,
  route: RoutePath,
  probe: Probe.default(() => Probe.parse({})),
  /** Its objectives from the app's own traffic (`vigil slo`, docs/sdk.md#slos-from-the-manifest). */
  slo: EndpointSlo.optional(),
});

/** A critical endpoint: `{ method, route, probe }` or the shorthand `"POST /api/v1/auth/login"`. */
export const Endpoint = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  const [method, route, ...rest] = v.trim().split(/\s+/);
  return rest.length === 0 && route ? { method, route } : v;
}, EndpointObject);
export type Endpoint = z.output<typeof Endpoint>;

type RouterLoader = () => Promise<unknown> | unknown;
export const RouterSpec = z
  .strictObject({
    /** Label of this router in telemetry; defaults to the module's file name (`auth` for `./routers/auth.js`). */
    name: Name.optional(),
    /** Module specifier, relative to the manifest file (or `baseUrl`), or a package name. */
    module: z.string().min(1).optional(),
    /** In an object manifest: a function that imports the module, e.g. `() => import('./routers/auth.js')`. */
    load: z.custom<RouterLoader>((v) => typeof v === 'function', 'expected a function').optional(),
    /** Export holding the Express router; default: `router`, then the default export. */
    export: z.string().min(1).optional(),
    /** Where `mountRouters` mounts it: one path, or several for one router served at each (declared once). */
    mount: z.union([RoutePath, z.array(RoutePath).min(1)], { error: 'expected a path starting with "/", or a list of them' }).default('/'),
    /** The import fails ("timed out after 10s importing …") after this long; default `startup.importTimeout`. */
    importTimeout: timer(Duration.optional()),
  })
  .refine((r) => Boolean(r.module) !== Boolean(r.load), {
    message: 'expected exactly one of "module" or "load"',
  })
  .refine((r) => !r.load || r.name, { message: 'a router given by "load" needs a "name"', path: ['name'] });
export type RouterSpec = z.output<typeof RouterSpec>;

/**
 * A URL given as text, or read from the environment by name (it may hold
 * credentials). With `optional: true` an unset variable skips the check (and
 * says so) instead of failing it: a laptop without the database still starts.
 */
const EnvRef = z.strictObject({
  env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name'),
  optional: z.boolean().default(false),
});
const Target = z.union([z.string().min(1), EnvRef], { error: 'expected a URL as text, or { env: NAME } to read it from the environment' });
export type Target = z.output<typeof Target>;

/** `500MB`, `2GiB` (bytes) or `10%` (of the file system's size). */
const FREE_RE = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|%)$/;
const BYTES: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 };
export const FreeSpace = z.string().transform((text, ctx): { ratio: number; text: string } | { bytes: number; text: string } => {
  const m = FREE_RE.exec(text.trim());
  const n = m ? Number(m[1]) : NaN;
  if (!m || (m[2] === '%' && (n <= 0 || n >= 100))) {
    ctx.addIssue({ code: 'custom', message: `expected free space such as "500MB", "2GiB" or "10%" (of the disk, between 0 and 100), got ${JSON.stringify(text)}` });
    return z.NEVER;
  }
  return m[2] === '%' ? { ratio: n / 100, text: text.trim() } : { bytes: Math.round(n * BYTES[m[2]!]!), text: text.trim() };
});

type CustomCheck = (signal: AbortSignal) => Promise<unknown> | unknown;
/** Anything with pg's `query(text)`: a `pg.Pool`, a `pg.Client`. */
export interface PgQueryable {
  query: (text: string) => Promise<unknown>;
}
/** Anything with node-redis' or ioredis' `ping()`. */
export interface RedisPingable {
  ping: () => Promise<unknown>;
}
export const HealthGroup = z.enum(['ready', 'detailed']);
export type HealthGroup = z.output<typeof HealthGroup>;
const checkBase = {
  /** The check fails after this long ("timeout after 2s"). */
  timeout: timer(Duration.default(2000)),
  /** Health endpoints reuse a result younger than this instead of checking again (0: check on every request, one at a time). */
  cache: timer(Duration.default(10_000), { zeroOk: true }),
  /** `ready`: `/ready` answers 503 while it fails. `detailed`: only the detailed bodies show it. Default: `ready` in a fail-fast component, `detailed` in a degrade one. */
  group: HealthGroup.optional(),
};
const exactlyOne = (a: string, b: string) => ({ message: `expected exactly one of "${a}" or "${b}"` });
const HostName = z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/, 'expected a host name such as "db.internal"');

export const DependencyCheck = z.discriminatedUnion('type', [
  /** Every named variable is set and not empty. Only names are reported, never values. */
  z.strictObject({
    type: z.literal('env'),
    vars: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name')).min(1),
    ...checkBase,
  }),
  /** A TCP connection opens: `host` + `port`, or a URL (read from the environment) such as `DATABASE_URL`. */
  z
    .strictObject({
      type: z.literal('tcp'),
      host: z.string().min(1).optional(),
      port: z.number().int().min(1).max(65535).optional(),
      url: Target.optional(),
      ...checkBase,
    })
    .refine((c) => (c.host !== undefined && c.port !== undefined) !== (c.url !== undefined), {
      message: 'expected either "host" and "port", or "url"',
    }),
  /** An HTTP GET (or HEAD) answers with an expected status (default: any 2xx or 3xx). */
  z.strictObject({
    type: z.literal('http'),
    url: Target,
    method: z.enum(['GET', 'HEAD']).default('GET'),
    /** Request headers; a value may come from the environment: `{ env: NAME, prefix: "Bearer " }`. */
    headers: z.record(z.string(), z.union([z.string(), FromEnv], { error: 'expected text or { env: NAME, prefix: "Bearer " }' })).default({}),
    expect: z.strictObject({ status: z.array(z.number().int().min(100).max(599)).min(1) }).optional(),
    ...checkBase,
  }),
  /** PostgreSQL answers `query` (default `SELECT 1`) through `pg`: a connection URL, or the app's own pool. */
  z
    .strictObject({
      type: z.literal('postgres'),
      url: Target.optional(),
      /** In an object manifest: the app's `pg.Pool` (or client); the check borrows it instead of connecting itself. */
      pool: z.custom<PgQueryable>((v) => typeof (v as PgQueryable | null)?.query === 'function', 'expected a pg Pool or Client (an object with query())').optional(),
      query: z.string().min(1).default('SELECT 1'),
      ...checkBase,
    })
    .refine((c) => (c.url !== undefined) !== (c.pool !== undefined), exactlyOne('url', 'pool')),
  /** Redis answers PING through node-redis: a connection URL, or the app's own client. */
  z
    .strictObject({
      type: z.literal('redis'),
      url: Target.optional(),
      /** In an object manifest: the app's connected client (node-redis or ioredis). */
      client: z.custom<RedisPingable>((v) => typeof (v as RedisPingable | null)?.ping === 'function', 'expected a Redis client (an object with ping())').optional(),
      ...checkBase,
    })
    .refine((c) => (c.url !== undefined) !== (c.client !== undefined), exactlyOne('url', 'client')),
  /** Every name the app needs resolves (through the system resolver, as the app's own connections would). */
  z.strictObject({
    type: z.literal('dns'),
    names: z.array(HostName).min(1),
    ...checkBase,
  }),
  /** The file system holding `path` has at least `minFree` free (bytes, or a share of its size). */
  z.strictObject({
    type: z.literal('disk'),
    path: z.string().min(1).default('/'),
    minFree: FreeSpace,
    ...checkBase,
  }),
  /** The TLS certificate served at `url` (`https://host[:port]`) is valid and expires in more than `minDays` days. */
  z.strictObject({
    type: z.literal('tls'),
    url: Target,
    minDays: z.number().positive().default(14),
    /** PEM file of the CA to trust (a private CA), relative to the manifest; default: Node's trusted CAs. */
    caFile: z.string().min(1).optional(),
    ...checkBase,
  }),
  /** Your own async check: it fails by throwing or returning `false`. */
  z
    .strictObject({
      type: z.literal('custom'),
      check: z.custom<CustomCheck>((v) => typeof v === 'function', 'expected a function').optional(),
      module: z.string().min(1).optional(),
      export: z.string().min(1).default('check'),
      ...checkBase,
    })
    .refine((c) => Boolean(c.check) !== Boolean(c.module), {
      message: 'expected exactly one of "check" (a function) or "module"',
    }),
]);
export type DependencyCheck = z.output<typeof DependencyCheck>;

export const Policy = z.enum(['fail-fast', 'degrade']);
export type Policy = z.output<typeof Policy>;

export const Component = z.strictObject({
  description: z.string().optional(),
  /** `fail-fast`: a failure stops startup. `degrade`: the app starts, marked degraded. */
  policy: Policy,
  /** Served by `/health/business-critical` as well as `/health/detailed`. */
  businessCritical: z.boolean().default(false),
  routers: z.array(RouterSpec).default([]),
  endpoints: z.array(Endpoint).default([]),
  dependencies: z.record(Name, DependencyCheck).default({}),
  /** Business-critical flows (level 3), run by the monitor. */
  flows: z.record(Name, Flow).default({}),
  recovery: Recovery.optional(),
});
export type Component = z.output<typeof Component>;

export const StartupOptions = z.strictObject({
  /** How long one router's isolated import may take before it fails (a top-level await that never settles). */
  importTimeout: timer(Duration.default(10_000)),
});

export const HealthOptions = z.strictObject({
  /** Base path: liveness at `<path>`, `<path>/detailed`, `<path>/business-critical`. */
  path: RoutePath.default('/health'),
  readyPath: RoutePath.default('/ready'),
  /** Bearer token that opens the detailed endpoints, read from this environment variable. */
  tokenEnv: z.string().default('VIGIL_HEALTH_TOKEN'),
  /**
   * Serve the detailed endpoints to loopback callers without a token. Turn off
   * behind a reverse proxy on the same host, where every caller looks local.
   */
  allowLoopback: z.boolean().default(true),
});

export const ShutdownOptions = z.strictObject({
  /** Signals that start a graceful shutdown; `[]` leaves signals to the app. */
  signals: z.array(z.enum(['SIGTERM', 'SIGINT', 'SIGHUP'])).default(['SIGTERM']),
  /** How long `/ready` answers 503 before the server stops accepting connections. */
  drainDelay: timer(Duration.default(3000), { zeroOk: true }),
  /** After the drain, how long requests in flight may take before their connections are closed. */
  timeout: timer(Duration.default(10_000), { zeroOk: true }),
});

export const TelemetryOptions = z.strictObject({
  /** Periodic export interval when `OTEL_METRIC_EXPORT_INTERVAL` is not set. */
  exportInterval: timer(Duration.default(10_000)),
  /** The longest a state-change flush may hold up startup. */
  flushTimeout: timer(Duration.default(5000), { zeroOk: true }),
});

const Level = z.strictObject({ warn: z.number().positive(), fail: z.number().positive() }).refine((l) => l.warn <= l.fail, {
  message: 'expected warn <= fail',
});

export const MonitorOptions = z.strictObject({
  /** Run the runtime monitor after a successful `validate()`. */
  enabled: z.boolean().default(true),
  /** Where probes are sent; default: the address of the server given to `validate()`. */
  baseUrl: Url.optional(),
  /** Checks running at the same time, at most. */
  concurrency: z.number().int().min(1).max(64).default(4),
  /** Each interval varies by up to this fraction, so instances do not probe in lockstep. */
  jitter: z.number().min(0).max(0.5).default(0.1),
  /** Consecutive failures before a check is failing, and successes before it is passing again. */
  failureThreshold: z.number().int().min(1).max(100).default(3),
  successThreshold: z.number().int().min(1).max(100).default(2),
  /** Defaults from the original design: critical endpoints 30 s, database 60 s, memory 120 s, error rates 30 s. */
  intervals: z
    .strictObject({
      endpoints: timer(Duration.default(30_000)),
      flows: timer(Duration.default(60_000)),
      dependencies: timer(Duration.default(60_000)),
      process: timer(Duration.default(120_000)),
      errorRate: timer(Duration.default(30_000)),
      drift: timer(Duration.default(60_000)),
      integration: timer(Duration.default(300_000)),
    })
    .default(() => ({ endpoints: 30_000, flows: 60_000, dependencies: 60_000, process: 120_000, errorRate: 30_000, drift: 60_000, integration: 300_000 })),
  /** Level 1 thresholds. */
  process: z
    .strictObject({
      /** Event-loop delay p99, milliseconds. */
      eventLoopLagMs: Level.default({ warn: 200, fail: 1000 }),
      /** Heap used as a fraction of the heap limit. */
      heapRatio: Level.default({ warn: 0.85, fail: 0.95 }),
      /** Resident memory, MB (off unless set). */
      rssMb: Level.optional(),
      /** Share of one CPU core used by the process. */
      cpuRatio: Level.default({ warn: 0.9, fail: 0.98 }),
    })
    .default(() => ({ eventLoopLagMs: { warn: 200, fail: 1000 }, heapRatio: { warn: 0.85, fail: 0.95 }, cpuRatio: { warn: 0.9, fail: 0.98 } })),
  /** 5xx share per route over a window, from the app's own traffic (level 2). */
  errorRate: z
    .strictObject({
      window: timer(Duration.default(300_000)),
      warn: z.number().min(0).max(1).default(0.05),
      fail: z.number().min(0).max(1).default(0.25),
      minRequests: z.number().int().min(1).default(20),
    })
    .default(() => ({ window: 300_000, warn: 0.05, fail: 0.25, minRequests: 20 })),
  /** Level 4 integration checks, each off unless configured. */
  integration: z
    .strictObject({
      cors: z.strictObject({ path: RoutePath, origin: z.string().min(1), allowed: z.boolean().default(true), component: Name.optional() }).optional(),
      rateLimit: z
        .strictObject({ path: RoutePath, method: HttpMethod.default('GET'), requests: z.number().int().min(1).max(1000).default(50), expectStatus: z.number().int().default(429), component: Name.optional() })
        .optional(),
      jwt: z
        .strictObject({ secretEnv: z.string().optional(), minSecretLength: z.number().int().min(1).default(32), jwksUrl: Url.optional(), component: Name.optional() })
        .optional(),
      errorHandler: z.strictObject({ component: Name.optional() }).optional(),
    })
    .default({}),
});
export type MonitorOptions = z.output<typeof MonitorOptions>;

// ── The route contract: routes Express has that the manifest does not declare, and removals meant to happen ──
/** `METHOD /path`, the method or `*`; in the path `*` matches anything (`GET /internal/*`). */
const RoutePattern = z
  .string()
  .max(1000)
  .regex(/^(?:\*|[A-Za-z]+) \/\S*$/, 'expected "METHOD /path" (the method or "*"; "*" in the path matches anything), e.g. "GET /internal/*"');
/** What to do with routes registered in Express but declared nowhere in the manifest (a shadow endpoint is a security question). */
export const UndocumentedRoutes = z.strictObject({
  /** `ignore`: not reported. `warn`: reported (startup report, `/health/detailed`), never fails the app. `degrade`: reported, and the app starts degraded. */
  policy: z.enum(['ignore', 'warn', 'degrade']).default('warn'),
  /** Routes that need no declaration, e.g. `GET /internal/*`. */
  allow: z.array(RoutePattern).max(1000).default([]),
  /** Manifest routers (by name) whose routes are internal: never a finding. */
  internalRouters: z.array(Name).max(1000).default([]),
});
export type UndocumentedRoutes = z.output<typeof UndocumentedRoutes>;
/** A route removed on purpose: `vigil diff` shows it as intended instead of failing. */
export const RemovedRoute = z.strictObject({
  /** `METHOD /path` as the previous release had it, e.g. `GET /api/v1/legacy`. */
  route: z.string().max(1000).regex(/^[A-Za-z]+ \/\S*$/, 'expected "METHOD /path", e.g. "GET /api/v1/legacy"').transform((r) => r.replace(/^\S+/, (m) => m.toUpperCase())),
  /** Why: shown by `vigil diff`. */
  reason: z.string().min(1).max(500),
});
export type RemovedRoute = z.output<typeof RemovedRoute>;
/**
 * The app's OpenAPI 3.0/3.1 document as a source of endpoints (manifest/openapi.ts):
 * `openapi: ./openapi.yaml`, or the object form. Read by `loadManifest`.
 */
export const OpenApiSource = z.preprocess(
  (v) => (typeof v === 'string' ? { file: v } : v),
  z.strictObject({
    /** The document (YAML or JSON), relative to the manifest file. */
    file: z.string().min(1),
    /** Component of an operation that neither `x-vigil-component` nor a tag maps; without it such an operation is an error. */
    component: Name.optional(),
    /** Prefix of every route, instead of the path of `servers[0].url`; `""` for none. */
    basePath: z.union([z.literal(''), RoutePath]).optional(),
  }),
);
export type OpenApiSource = z.output<typeof OpenApiSource>;

export const Manifest = z
  .strictObject({
    /** `service.name`; `OTEL_SERVICE_NAME` overrides it. */
    service: label(z.string(), 'the service name').min(1),
    /** `service.version`. */
    version: label(z.string(), 'the version').optional(),
    /** `deployment.environment.name`; `VIGIL_ENVIRONMENT` overrides it. */
    environment: label(z.string(), 'the environment').optional(),
    /** Endpoints from the app's OpenAPI document, added to the components' own. */
    openapi: OpenApiSource.optional(),
    components: z
      .record(Name, Component)
      .refine((c) => Object.keys(c).length > 0, 'expected at least one component'),
    startup: StartupOptions.default(() => StartupOptions.parse({})),
    health: HealthOptions.default(() => HealthOptions.parse({})),
    shutdown: ShutdownOptions.default(() => ShutdownOptions.parse({})),
    telemetry: TelemetryOptions.default(() => TelemetryOptions.parse({})),
    monitor: MonitorOptions.default(() => MonitorOptions.parse({})),
    undocumentedRoutes: UndocumentedRoutes.default(() => UndocumentedRoutes.parse({})),
    removedRoutes: z.array(RemovedRoute).max(10_000).default([]),
    /** Defaults of the endpoints' and flows' `slo` (the window). */
    slo: SloDefaults.default(() => SloDefaults.parse({})),
  })
  .superRefine((m, ctx) => {
    for (const issue of crossChecks(m)) ctx.addIssue({ code: 'custom', ...issue });
  });

/** What the cross-checks read: the components that parsed, and the integration checks' `component`. */
export interface CrossCheckable {
  components: Record<string, Component>;
  monitor: { integration: Record<string, unknown> };
  /** Every component's name, also of those that did not parse (default: the keys of `components`). */
  componentNames?: string[];
}
/** A cross-check's finding: where, and what is wrong. */
export interface CrossCheckIssue {
  path: Array<string | number>;
  message: string;
}

/**
 * Checks across keys (a route declared twice, a router name used twice, a
 * placeholder never captured). Separate from the schema so that a manifest with
 * schema errors still gets them: the loader runs them on the parts that parse.
 */
export function crossChecks(m: CrossCheckable): CrossCheckIssue[] {
  const issues: CrossCheckIssue[] = [];
  const ctx = { addIssue: (i: { code: 'custom' } & CrossCheckIssue) => issues.push({ path: i.path, message: i.message }) };
  for (const [key, check] of Object.entries(m.monitor.integration)) {
    const component = (check as { component?: string } | undefined)?.component;
    if (component !== undefined && !(m.componentNames ?? Object.keys(m.components)).includes(component)) {
      ctx.addIssue({ code: 'custom', path: ['monitor', 'integration', key, 'component'], message: `no component "${component}" in "components"` });
    }
  }
  // One route may be declared once; two components claiming it would make the verdict ambiguous.
  const seen = new Map<string, string>();
  for (const [component, spec] of Object.entries(m.components)) {
    spec.endpoints.forEach((e, i) => {
      const key = `${e.method} ${e.route}`;
      const owner = seen.get(key);
      if (owner !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['components', component, 'endpoints', i],
          message: `endpoint "${key}" is already declared by component "${owner}"`,
        });
      } else seen.set(key, component);
    });
    const names = new Set<string>();
    spec.routers.forEach((r, i) => {
      const name = routerName(r);
      // A name given is checked by its schema; a name taken from the module's file name is checked here.
      if (!r.name && looksLikeEmail(name)) {
        ctx.addIssue({ code: 'custom', path: ['components', component, 'routers', i, 'module'], message: `${emailMessage(`the router name "${name}" (from the module's file name)`)} such as "name: ops-tools"` });
      }
      if (names.has(name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['components', component, 'routers', i, 'name'],
          message: `router name "${name}" is used twice in this component; give one a "name"`,
        });
      }
      names.add(name);
    });
    spec.endpoints.forEach((e, i) => {
      const at = ['components', component, 'endpoints', i, 'probe'];
      for (const [where, text] of templates({ headers: e.probe.headers, body: e.probe.body })) checkPlaceholders(text, new Set(), [...at, ...where], ctx, false);
    });
    for (const [flow, f] of Object.entries(spec.flows)) {
      const captured = new Set<string>();
      const stepNames = new Map<string, number>();
      (f.steps ?? []).forEach((step, i) => {
        const at = ['components', component, 'flows', flow, 'steps', i];
        const first = stepNames.get(step.name);
        if (first !== undefined) ctx.addIssue({ code: 'custom', path: [...at, 'name'], message: `step name "${step.name}" is used twice in this flow (steps.${first} has it): expected unique step names` });
        else stepNames.set(step.name, i);
        for (const [where, text] of templates({ path: step.path, headers: step.headers, body: step.body })) checkPlaceholders(text, captured, [...at, ...where], ctx, true);
        for (const name of Object.keys(step.capture)) captured.add(name);
      });
    }
  }
  return issues;
}

/** Every string of a request (path, header values, body) that may hold placeholders, with its path. */
function templates(value: unknown, at: Array<string | number> = []): Array<[Array<string | number>, string]> {
  if (typeof value === 'string') return [[at, value]];
  if (Array.isArray(value)) return value.flatMap((v, i) => templates(v, [...at, i]));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => templates(v, [...at, k]));
  return [];
}

/**
 * `${env:NAME}` is read from the environment at run time; `${name}` is a value an
 * earlier flow step captured. A name never captured, or a placeholder of neither
 * form, would fail (or be sent as written) on every run.
 */
function checkPlaceholders(text: string, captured: Set<string>, path: Array<string | number>, ctx: { addIssue: (i: { code: 'custom' } & CrossCheckIssue) => void }, inFlow: boolean): void {
  for (const [placeholder, inner] of text.matchAll(/\$\{([^}]*)\}/g)) {
    if (/^env:[A-Za-z_][A-Za-z0-9_]*$/.test(inner!)) continue;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(inner!)) {
      ctx.addIssue({ code: 'custom', path, message: `expected a placeholder \${env:NAME} or \${capture}, got "${placeholder}"` });
    } else if (!captured.has(inner!)) {
      const message = inFlow
        ? `"${placeholder}" is not captured by an earlier step: expected "capture: { ${inner}: <path in the answer> }" before it, or \${env:NAME}`
        : `"${placeholder}" is not captured by an earlier step: a probe captures nothing, expected \${env:NAME}`;
      ctx.addIssue({ code: 'custom', path, message });
    }
  }
}

/** The parsed manifest, defaults applied. */
export type Manifest = z.output<typeof Manifest>;
/** The manifest as written (YAML or object). */
export type ManifestInput = z.input<typeof Manifest>;

/** The telemetry label of a router: its `name`, or its module's file name without extension. */
export function routerName(r: Pick<RouterSpec, 'name' | 'module'>): string {
  if (r.name) return r.name;
  const base = (r.module ?? 'router').split(/[\\/]/).pop() ?? 'router';
  return base.replace(/\.(c|m)?(j|t)sx?$/, '');
}
