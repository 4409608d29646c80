/**
 * The manifest: what the app declares it should be. The zod schemas are the
 * types (`Manifest` is the parsed config, `ManifestInput` the file's shape), so
 * no interface is written twice. Every object is strict: a typo in a key is an
 * error, not a silently ignored setting.
 */
import { z } from 'zod';
import { Duration } from '../util/duration.js';

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
const Name = z.string().regex(NAME_RE, 'expected a lowercase name: letters, digits, "_" or "-", starting with a letter');

const RoutePath = z
  .string()
  .startsWith('/', 'expected a path starting with "/"')
  .refine((p) => !/\s/.test(p), 'expected a path without spaces');

/** Which answers count as "the endpoint works". */
export const StatusExpectation = z.union([
  /** `exists`: any answer but 404, 405 or 5xx — an unauthenticated login answering 401 passes. */
  z.literal('exists'),
  z.array(z.number().int().min(100).max(599)).min(1),
]);

export const Probe = z.strictObject({
  /** JSON body sent with the probe request. */
  body: z.unknown().optional(),
  /** Request headers; a value can come from the environment (`{ env: NAME, prefix: "Bearer " }`). */
  headers: z.record(z.string(), z.union([z.string(), FromEnv])).default({}),
  expect: z
    .strictObject({ status: StatusExpectation.default('exists') })
    .default({ status: 'exists' }),
  /** The request is a failure after this long. */
  timeout: Duration.default(5000),
});
export type Probe = z.output<typeof Probe>;

const EndpointObject = z.strictObject({
  method: HttpMethod,
  route: RoutePath,
  probe: Probe.default(() => Probe.parse({})),
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
    /** Where `mountRouters` mounts it. */
    mount: RoutePath.default('/'),
  })
  .refine((r) => Boolean(r.module) !== Boolean(r.load), {
    message: 'expected exactly one of "module" or "load"',
  })
  .refine((r) => !r.load || r.name, { message: 'a router given by "load" needs a "name"', path: ['name'] });
export type RouterSpec = z.output<typeof RouterSpec>;

/** A URL given as text, or read from the environment by name (it may hold credentials). */
const EnvRef = z.strictObject({
  env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name'),
});
const Target = z.union([z.string().min(1), EnvRef]);

type CustomCheck = (signal: AbortSignal) => Promise<unknown> | unknown;
const checkBase = { timeout: Duration.default(2000) };

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
  /** An HTTP GET answers with an expected status (default: any 2xx or 3xx). */
  z.strictObject({
    type: z.literal('http'),
    url: Target,
    expect: z.strictObject({ status: z.array(z.number().int().min(100).max(599)).min(1) }).optional(),
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
});
export type Component = z.output<typeof Component>;

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
  drainDelay: Duration.default(3000),
  /** After the drain, how long requests in flight may take before their connections are closed. */
  timeout: Duration.default(10_000),
});

export const TelemetryOptions = z.strictObject({
  /** Periodic export interval when `OTEL_METRIC_EXPORT_INTERVAL` is not set. */
  exportInterval: Duration.default(10_000),
  /** The longest a state-change flush may hold up startup. */
  flushTimeout: Duration.default(5000),
});

export const Manifest = z
  .strictObject({
    /** `service.name`; `OTEL_SERVICE_NAME` overrides it. */
    service: z.string().min(1),
    /** `service.version`. */
    version: z.string().optional(),
    /** `deployment.environment.name`; `VIGIL_ENVIRONMENT` overrides it. */
    environment: z.string().optional(),
    components: z
      .record(Name, Component)
      .refine((c) => Object.keys(c).length > 0, 'expected at least one component'),
    health: HealthOptions.default(() => HealthOptions.parse({})),
    shutdown: ShutdownOptions.default(() => ShutdownOptions.parse({})),
    telemetry: TelemetryOptions.default(() => TelemetryOptions.parse({})),
  })
  .superRefine((m, ctx) => {
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
        if (names.has(name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['components', component, 'routers', i, 'name'],
            message: `router name "${name}" is used twice in this component; give one a "name"`,
          });
        }
        names.add(name);
      });
    }
  });

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
