/**
 * Dependency checks: required env vars, TCP connect, HTTP GET, PostgreSQL,
 * Redis, DNS, disk space, TLS expiry (builtin.ts) and custom async functions.
 * All run in parallel, each bounded by its own timeout. Reports name hosts and
 * variable names, never a URL's credentials or a variable's value.
 */
import net from 'node:net';
import { context, SpanStatusCode, type Context, type Tracer } from '@opentelemetry/api';
import type { DependencyCheck, HealthGroup, Manifest, Policy } from '../manifest/schema.js';
import {
  ATTR_ERROR_TYPE,
  ATTR_VIGIL_CHECK,
  ATTR_VIGIL_CHECK_TYPE,
  ATTR_VIGIL_COMPONENT,
  ATTR_VIGIL_OUTCOME,
  OUTCOME_SKIPPED,
  SPAN_DEPENDENCY_CHECK,
} from '../semconv.js';
import { errorMessage, errorType, pickExport, resolveSpecifier } from '../util/modules.js';
import { formatTimeout } from '../util/duration.js';
import { CheckFailure, diskCheck, dnsCheck, postgresCheck, redisCheck, safeReason, tlsCheck, urlSecrets } from './builtin.js';

export interface CheckResult {
  component: string;
  policy: Policy;
  /** `vigil.check`: the check's name in the manifest. */
  check: string;
  type: DependencyCheck['type'];
  ok: boolean;
  /** What was checked, safe to show: `db.internal:5432`, `JWT_SECRET, DATABASE_URL`. */
  target: string;
  error?: string;
  errorType?: string;
  /** `ready`: `/ready` waits for it; `detailed`: only the detailed bodies show it. */
  group: HealthGroup;
  /** Why the check did not run (`ok` stays true): its optional URL variable is not set. */
  skipped?: string;
  durationMs: number;
}

/** The health group of a check: its own, else `ready` in a fail-fast component and `detailed` in a degrade one. */
export function healthGroup(check: DependencyCheck, policy: Policy): HealthGroup {
  return check.group ?? (policy === 'fail-fast' ? 'ready' : 'detailed');
}

/** An optional URL variable is not set: the check is skipped, not failed. */
export class SkipCheck extends Error {}

const DEFAULT_PORTS: Record<string, number> = {
  'http:': 80, 'https:': 443, 'postgres:': 5432, 'postgresql:': 5432, 'mysql:': 3306,
  'redis:': 6379, 'rediss:': 6380, 'mongodb:': 27017, 'amqp:': 5672, 'amqps:': 5671,
};

function readTarget(target: string | { env: string; optional?: boolean }, env: NodeJS.ProcessEnv): string {
  if (typeof target === 'string') return target;
  const value = env[target.env];
  if (!value && target.optional) throw new SkipCheck(`skipped: ${target.env} is not set`);
  if (!value) throw new CheckFailure(`environment variable ${target.env} is not set`, 'VIGIL_ENV_MISSING');
  return value;
}

/** `host:port` of a URL check, or `$VAR (host:port)` when the URL comes from the environment. */
function describeUrl(url: string | { env: string }, env: NodeJS.ProcessEnv): string {
  if (typeof url === 'string') return safeHost(url);
  const value = env[url.env];
  return `$${url.env}${value ? ` (${safeHost(value)})` : ''}`;
}

/** Host and port of a URL, for connecting and for reports; credentials and path are dropped. */
function hostPort(raw: string): { host: string; port: number } {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CheckFailure('the URL is not valid', 'VIGIL_BAD_URL'); // the text may hold a password: not echoed
  }
  const port = url.port ? Number(url.port) : DEFAULT_PORTS[url.protocol];
  if (!url.hostname || !port) throw new CheckFailure(`the URL has no host or port (${url.protocol})`, 'VIGIL_BAD_URL');
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port };
}

function describe(check: DependencyCheck, env: NodeJS.ProcessEnv): string {
  switch (check.type) {
    case 'env':
      return check.vars.join(', ');
    case 'tcp':
      return check.url === undefined ? `${check.host}:${check.port}` : describeUrl(check.url, env);
    case 'http':
    case 'tls':
      return describeUrl(check.url, env);
    case 'postgres':
      return check.url === undefined ? "the app's pool" : describeUrl(check.url, env);
    case 'redis':
      return check.url === undefined ? "the app's client" : describeUrl(check.url, env);
    case 'dns':
      return check.names.join(', ');
    case 'disk':
      return `${check.path} (at least ${check.minFree.text} free)`;
    case 'custom':
      return check.module ? `${check.module}#${check.export}` : 'function';
  }
}

function safeHost(raw: string): string {
  try {
    const { host, port } = hostPort(raw);
    return `${host}:${port}`;
  } catch {
    return '(invalid URL)';
  }
}

function tcpConnect(host: string, port: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const done = (err?: Error) => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    const onAbort = () => done(new CheckFailure(`connect to ${host}:${port} timed out`, 'VIGIL_TIMEOUT'));
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => done());
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done(new CheckFailure(`connect to ${host}:${port} failed: ${err.code ?? err.message}`, err.code ?? 'VIGIL_CONNECT')),
    );
  });
}

export async function runOne(check: DependencyCheck, env: NodeJS.ProcessEnv, baseUrl: URL, signal: AbortSignal): Promise<void> {
  switch (check.type) {
    case 'env': {
      const missing = check.vars.filter((v) => !env[v]);
      if (missing.length) throw new CheckFailure(`missing environment variable(s): ${missing.join(', ')}`, 'VIGIL_ENV_MISSING');
      return;
    }
    case 'tcp': {
      const { host, port } = check.url !== undefined ? hostPort(readTarget(check.url, env)) : { host: check.host!, port: check.port! };
      return tcpConnect(host, port, signal);
    }
    case 'http': {
      const url = readTarget(check.url, env);
      const where = safeHost(url);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(check.headers)) {
        if (typeof value === 'string') headers[name] = value;
        else headers[name] = `${value.prefix ?? ''}${readTarget(value, env)}`;
      }
      let status: number;
      try {
        // got is imported on first use: an app without HTTP checks does not pay for it at startup.
        const { got } = await import('got');
        const res = await got(url, { method: check.method, headers, throwHttpErrors: false, retry: { limit: 0 }, followRedirect: false, signal });
        status = res.statusCode;
      } catch (err) {
        if (signal.aborted) throw new CheckFailure(`${check.method} ${where} timed out`, 'VIGIL_TIMEOUT');
        throw new CheckFailure(`${check.method} ${where} failed: ${(err as { code?: string }).code ?? 'request error'}`, errorType(err));
      }
      const ok = check.expect ? check.expect.status.includes(status) : status >= 200 && status < 400;
      if (!ok) throw new CheckFailure(`${check.method} ${where} answered ${status}`, `HTTP_${status}`);
      return;
    }
    case 'postgres':
      return postgresCheck(check, check.url === undefined ? undefined : readTarget(check.url, env), baseUrl, signal);
    case 'redis':
      return redisCheck(check, check.url === undefined ? undefined : readTarget(check.url, env), baseUrl, signal);
    case 'dns':
      return dnsCheck(check);
    case 'disk':
      return diskCheck(check, baseUrl);
    case 'tls': {
      const url = readTarget(check.url, env);
      const { host, port } = hostPort(url);
      return tlsCheck(check, url, host, port, baseUrl, signal);
    }
    case 'custom': {
      let fn: ((signal: AbortSignal) => unknown) | undefined = check.check;
      if (!fn) {
        const mod = (await import(resolveSpecifier(check.module!, baseUrl))) as Record<string, unknown>;
        const picked = pickExport(mod, check.export, [check.export]);
        if (typeof picked !== 'function') throw new CheckFailure(`module ${check.module} has no function export "${check.export}"`, 'VIGIL_NO_CHECK_EXPORT');
        fn = picked as (signal: AbortSignal) => unknown;
      }
      const ok = await fn(signal);
      if (ok === false) throw new CheckFailure('check returned false');
      return;
    }
  }
}

/**
 * Runs one check bounded by its timeout (`timeout after 2s`); the check sees
 * the abort through `signal`, and `outer` (the monitor's own bound) aborts it too.
 */
export async function runBounded(check: DependencyCheck, env: NodeJS.ProcessEnv, baseUrl: URL, outer?: AbortSignal): Promise<void> {
  const ac = new AbortController();
  const stop = () => ac.abort();
  outer?.addEventListener('abort', stop, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new CheckFailure(`timeout after ${formatTimeout(check.timeout)}`, 'VIGIL_TIMEOUT'));
      ac.abort();
    }, check.timeout);
  });
  try {
    await Promise.race([runOne(check, env, baseUrl, ac.signal), timeout]);
  } catch (err) {
    if (err instanceof SkipCheck) throw err;
    // Whatever a check threw, the text passes the scrubber: a driver may quote its connection URL.
    const url = 'url' in check && check.url !== undefined ? (typeof check.url === 'string' ? check.url : env[check.url.env]) : undefined;
    throw safeReason(err, url ? urlSecrets(url) : []);
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', stop);
  }
}

/** Runs every dependency check of the manifest in parallel; never throws. */
export async function runDependencyChecks(
  manifest: Manifest,
  env: NodeJS.ProcessEnv,
  baseUrl: URL,
  tracer: Tracer,
  parent: Context = context.active(),
): Promise<CheckResult[]> {
  const jobs = Object.entries(manifest.components).flatMap(([component, spec]) =>
    Object.entries(spec.dependencies).map(async ([name, check]): Promise<CheckResult> => {
      const span = tracer.startSpan(
        SPAN_DEPENDENCY_CHECK,
        { attributes: { [ATTR_VIGIL_CHECK]: name, [ATTR_VIGIL_CHECK_TYPE]: check.type, [ATTR_VIGIL_COMPONENT]: component } },
        parent,
      );
      const started = performance.now();
      const base = { component, policy: spec.policy, check: name, type: check.type, target: describe(check, env), group: healthGroup(check, spec.policy) };
      try {
        await runBounded(check, env, baseUrl);
        span.end();
        return { ...base, ok: true, durationMs: performance.now() - started };
      } catch (err) {
        if (err instanceof SkipCheck) {
          span.setAttribute(ATTR_VIGIL_OUTCOME, OUTCOME_SKIPPED);
          span.end();
          return { ...base, ok: true, skipped: err.message, durationMs: performance.now() - started };
        }
        const result = { ...base, ok: false, error: errorMessage(err), errorType: err instanceof CheckFailure ? err.code : errorType(err), durationMs: performance.now() - started };
        span.setAttribute(ATTR_ERROR_TYPE, result.errorType);
        span.setStatus({ code: SpanStatusCode.ERROR, message: result.error });
        span.end();
        return result;
      }
    }),
  );
  return Promise.all(jobs);
}
