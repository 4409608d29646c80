/**
 * Level 4, integration: configuration that only shows when the API is used from
 * outside — CORS preflights, rate limiting, JWT configuration, the position of
 * the error handler. Each is a check the user enables in the manifest.
 *
 * Runs never throw: a failed request is a `fail` outcome. Outputs name paths,
 * hosts and variable names, never a URL's credentials or a variable's value.
 */
import { LIMITER_KIND, probeHeaders } from '../marker.js';
import { stackOf } from '../../startup/inventory.js';
import type { Method } from 'got';
import type { CheckOutcome, MonitorCheck } from '../types.js';

/** Reading the router stack does no I/O: a run longer than this means something else is wrong. */
const DEFAULT_TIMEOUT_MS = 1_000;

interface Scheduling {
  intervalMs: number;
  timeoutMs: number;
  /** The component this check speaks for; its health key is then `component:…`. */
  component?: string;
}

/** The app's own address, known only once it listens. */
type BaseUrl = () => string | undefined;

const NO_ADDRESS: CheckOutcome = { status: 'warn', output: 'no address to probe yet' };

function keyOf(component: string | undefined, measurement: string): string {
  return `${component ?? 'integration'}:${measurement}`;
}

function urlOf(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}${path.startsWith('/') ? '' : '/'}${path}`;
}

/** Why a request did not answer, without the URL (it may carry credentials). */
function requestFailure(what: string, err: unknown, signal: AbortSignal): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (signal.aborted || code === 'ETIMEDOUT') return `${what} timed out`;
  return `${what} failed: ${typeof code === 'string' ? code : 'request error'}`;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request, no retries, no redirects, HTTP errors as answers. Rejects only when nothing answered. */
async function request(
  url: string,
  method: string,
  headers: Record<string, string>,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<Answer> {
  // got is imported on first use: an app without integration checks does not pay for it.
  const { got } = await import('got');
  const res = await got(url, {
    method: method as Method,
    headers,
    throwHttpErrors: false,
    retry: { limit: 0 },
    followRedirect: false,
    timeout: { request: timeoutMs },
    signal,
  });
  return { status: res.statusCode, headers: res.headers, body: res.body };
}

// ── CORS ────────────────────────────────────────────────────────────────────

export interface CorsOptions extends Scheduling {
  baseUrl: BaseUrl;
  path: string;
  /** The `Origin` a browser would send. */
  origin: string;
  /** True when that origin must be allowed, false when it must be refused. */
  expectAllowed: boolean;
  /** The method the preflight asks for; `GET` by default. */
  method?: string;
}

/**
 * Sends the preflight a browser would, and compares the verdict with the
 * manifest: a CORS change silently breaks browsers (or opens the API to any site)
 * while every server-side test still passes.
 */
export function corsCheck(opts: CorsOptions): MonitorCheck {
  const method = (opts.method ?? 'GET').toUpperCase();
  return {
    id: `integration:cors ${opts.path}`,
    level: 4,
    ...(opts.component !== undefined && { component: opts.component }),
    healthKey: keyOf(opts.component, 'cors'),
    intervalMs: opts.intervalMs,
    timeoutMs: opts.timeoutMs,
    async run(signal: AbortSignal): Promise<CheckOutcome> {
      const base = opts.baseUrl();
      if (base === undefined) return NO_ADDRESS;
      const what = `preflight OPTIONS ${opts.path}`;
      let answer: Answer;
      try {
        answer = await request(
          urlOf(base, opts.path),
          'OPTIONS',
          { origin: opts.origin, 'access-control-request-method': method, ...probeHeaders('cors') },
          opts.timeoutMs,
          signal,
        );
      } catch (err) {
        return { status: 'fail', output: requestFailure(what, err, signal) };
      }
      const header = answer.headers['access-control-allow-origin'];
      const allowOrigin = Array.isArray(header) ? header.join(', ') : header;
      // A browser also rejects a preflight whose status is not 2xx, whatever its headers say.
      const ok = answer.status >= 200 && answer.status < 300;
      const allowed = ok && (allowOrigin === opts.origin || allowOrigin === '*');
      const measured = {
        observedValue: String(answer.status),
        observedUnit: 'status',
        details: { status: answer.status, allowOrigin: allowOrigin ?? '' },
      };
      if (allowed === opts.expectAllowed) return { status: 'pass', ...measured };
      const seen = allowOrigin === undefined ? 'no Access-Control-Allow-Origin' : `Access-Control-Allow-Origin: ${allowOrigin}`;
      const output = opts.expectAllowed
        ? `${what} from ${opts.origin} for ${method} was refused (status ${answer.status}, ${seen}); expected it allowed`
        : `${what} from ${opts.origin} for ${method} was allowed (${seen}); expected it refused`;
      return { status: 'fail', output, ...measured };
    },
  };
}

// ── Rate limiting ───────────────────────────────────────────────────────────

export interface RateLimitOptions extends Scheduling {
  baseUrl: BaseUrl;
  path: string;
  /** `GET` by default. */
  method?: string;
  /** How many requests to send, at most, before concluding there is no limit. */
  requests: number;
  /** The status that proves the limit is enforced; 429 by default. */
  expectStatus?: number;
}

/**
 * Sends requests one after the other until the limiter answers: a rate limiter
 * dropped from the middleware chain (or misconfigured) changes no response until
 * the day someone abuses the endpoint.
 */
export function rateLimitCheck(opts: RateLimitOptions): MonitorCheck {
  const method = (opts.method ?? 'GET').toUpperCase();
  const expectStatus = opts.expectStatus ?? 429;
  return {
    id: `integration:rate-limit ${method} ${opts.path}`,
    level: 4,
    ...(opts.component !== undefined && { component: opts.component }),
    healthKey: keyOf(opts.component, 'rate-limit'),
    intervalMs: opts.intervalMs,
    timeoutMs: opts.timeoutMs,
    async run(signal: AbortSignal): Promise<CheckOutcome> {
      const base = opts.baseUrl();
      if (base === undefined) return NO_ADDRESS;
      const url = urlOf(base, opts.path);
      const affectedEndpoints = [`${method} ${opts.path}`];
      let sent = 0;
      while (sent < opts.requests) {
        if (signal.aborted) break;
        sent++;
        try {
          const answer = await request(url, method, probeHeaders(LIMITER_KIND), opts.timeoutMs, signal);
          if (answer.status === expectStatus) return { status: 'pass', observedValue: sent, observedUnit: 'requests' };
        } catch (err) {
          const output = `${requestFailure(`${method} ${opts.path}`, err, signal)} at request ${sent} of ${opts.requests}`;
          return { status: 'fail', observedValue: sent, observedUnit: 'requests', output, affectedEndpoints };
        }
      }
      if (signal.aborted) {
        const output = `${method} ${opts.path} timed out after ${sent} of ${opts.requests} requests`;
        return { status: 'fail', observedValue: sent, observedUnit: 'requests', output, affectedEndpoints };
      }
      return {
        status: 'fail',
        observedValue: sent,
        observedUnit: 'requests',
        output: `no ${expectStatus} after ${sent} requests: rate limiting is not enforced`,
        affectedEndpoints,
      };
    },
  };
}

// ── JWT configuration ───────────────────────────────────────────────────────

export interface JwtConfigOptions extends Scheduling {
  env: NodeJS.ProcessEnv;
  /** The variable holding the HMAC secret. */
  secretEnv?: string;
  /** Minimum secret length in bytes; 32 by default (256 bits, as HS256 requires). */
  minSecretLength?: number;
  /** The identity provider's key set, for RS/ES tokens. */
  jwksUrl?: string;
}

/** `host[:port]` of a URL, the only part safe to show; `undefined` when it does not parse. */
function hostOf(raw: string): string | undefined {
  try {
    return new URL(raw).host || undefined;
  } catch {
    return undefined;
  }
}

function secretProblem(opts: JwtConfigOptions, name: string, details: Record<string, number>): string | undefined {
  const value = opts.env[name];
  if (!value) return `${name} is not set`;
  // Bytes, not characters: the HMAC key is the UTF-8 encoding. Only the length is ever reported.
  const length = Buffer.byteLength(value, 'utf8');
  details.secretLength = length;
  const min = opts.minSecretLength ?? 32;
  if (length < min) return `${name} is ${length} bytes long, shorter than the ${min}-byte minimum`;
  return undefined;
}

async function jwksProblem(url: string, timeoutMs: number, signal: AbortSignal, details: Record<string, number>): Promise<string | undefined> {
  const host = hostOf(url);
  if (host === undefined) return 'the JWKS URL is not valid'; // the text may hold a password: not echoed
  const what = `JWKS at ${host}`;
  let answer: Answer;
  try {
    // Not the app's traffic, so no synthetic header: the identity provider does not know it.
    answer = await request(url, 'GET', { accept: 'application/json' }, timeoutMs, signal);
  } catch (err) {
    return requestFailure(`GET ${what}`, err, signal);
  }
  details.jwksStatus = answer.status;
  if (answer.status !== 200) return `${what} answered ${answer.status}`;
  let keys: unknown;
  try {
    keys = (JSON.parse(answer.body) as { keys?: unknown } | null)?.keys;
  } catch {
    return `${what} did not answer JSON`;
  }
  if (!Array.isArray(keys)) return `${what} has no "keys" array`;
  details.jwksKeys = keys.length;
  if (keys.length === 0) return `${what} has no keys: every token would be rejected`;
  return undefined;
}

/**
 * The configuration JWT verification depends on: a secret that is present and
 * long enough, a key set that is reachable and not empty. Either failing makes
 * every authenticated request answer 401 (or, with a weak secret, forgeable).
 */
export function jwtConfigCheck(opts: JwtConfigOptions): MonitorCheck {
  const target = [opts.secretEnv, opts.jwksUrl !== undefined ? (hostOf(opts.jwksUrl) ?? 'jwks') : undefined].filter(Boolean);
  return {
    id: `integration:jwt${target.length ? ` ${target.join(' ')}` : ''}`,
    level: 4,
    ...(opts.component !== undefined && { component: opts.component }),
    healthKey: keyOf(opts.component, 'jwt'),
    intervalMs: opts.intervalMs,
    timeoutMs: opts.timeoutMs,
    async run(signal: AbortSignal): Promise<CheckOutcome> {
      if (signal.aborted) return { status: 'fail', output: 'aborted before it ran (timeout or shutdown)' };
      if (opts.secretEnv === undefined && opts.jwksUrl === undefined) {
        return { status: 'warn', output: 'neither a secret variable nor a JWKS URL is configured: nothing to check' };
      }
      const details: Record<string, number> = {};
      const problems: string[] = [];
      try {
        if (opts.secretEnv !== undefined) {
          const p = secretProblem(opts, opts.secretEnv, details);
          if (p) problems.push(p);
        }
        if (opts.jwksUrl !== undefined) {
          const p = await jwksProblem(opts.jwksUrl, opts.timeoutMs, signal, details);
          if (p) problems.push(p);
        }
      } catch {
        problems.push('the JWT configuration could not be read'); // no message: it could quote a value
      }
      return {
        status: problems.length ? 'fail' : 'pass',
        ...(problems.length > 0 && { output: problems.join('; ') }),
        details,
      };
    },
  };
}

// ── Error handler order ─────────────────────────────────────────────────────

export interface ErrorHandlerOrderOptions {
  /** The Express app, once it exists. */
  app: () => unknown;
  intervalMs: number;
  /** Defaults to one second: the check only reads the router stack. */
  timeoutMs?: number;
  component?: string;
}

function isRouter(handle: unknown): boolean {
  return typeof handle === 'function' && Array.isArray((handle as { stack?: unknown }).stack);
}

/**
 * Layers Express 4 adds to every app before the user's own (`query`,
 * `expressInit`); skipped when numbering positions, so a position means the
 * same thing on Express 4 and 5: the order of the app's own `use()` / routes.
 */
const EXPRESS4_BUILTINS = new Set(['query', 'expressInit']);

/**
 * Express only routes an error to an `(err, req, res, next)` middleware
 * registered after the layer that raised it; with none after the routes, errors
 * answer with Express's default HTML page (and a stack trace outside production).
 */
export function errorHandlerOrderCheck(opts: ErrorHandlerOrderOptions): MonitorCheck {
  return {
    id: 'integration:error-handler',
    level: 4,
    ...(opts.component !== undefined && { component: opts.component }),
    healthKey: keyOf(opts.component, 'error-handler'),
    intervalMs: opts.intervalMs,
    timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    async run(signal: AbortSignal): Promise<CheckOutcome> {
      if (signal.aborted) return { status: 'fail', output: 'aborted before it ran (timeout or shutdown)' };
      try {
        const app = opts.app();
        if (app === undefined || app === null) return { status: 'warn', output: 'no app to inspect yet' };
        const stack = stackOf(app);
        if (!stack) return { status: 'warn', output: 'not an Express app: its router stack cannot be read' };

        let skip = 0;
        while (skip < stack.length && EXPRESS4_BUILTINS.has(stack[skip]!.name ?? '')) skip++;
        const layers = stack.slice(skip);

        let lastRoute = -1;
        const handlers: number[] = [];
        layers.forEach((layer, i) => {
          if (layer.route || isRouter(layer.handle)) lastRoute = i;
          else if (typeof layer.handle === 'function' && layer.handle.length === 4) handlers.push(i);
        });
        const details = { errorHandlers: handlers.length, layers: layers.length };
        if (handlers.length === 0) {
          return {
            status: 'fail',
            output: 'no error-handling middleware (err, req, res, next): errors answer with Express\'s default HTML page',
            details,
          };
        }
        const lastHandler = handlers[handlers.length - 1]!;
        if (lastHandler > lastRoute) return { status: 'pass', details };
        // Positions count from 1 in registration order; name the first routing layer the handler does not cover.
        const firstAfter = layers.findIndex((l, i) => i > lastHandler && (l.route || isRouter(l.handle)));
        const after = layers[firstAfter]!;
        const what = after.route ? `route ${String(after.route.path)}` : 'router';
        return {
          status: 'fail',
          output: `error handler at position ${lastHandler + 1} runs before routes registered after it (${what} at position ${firstAfter + 1})`,
          details,
        };
      } catch {
        return { status: 'fail', output: 'the router stack could not be read' };
      }
    },
  };
}
