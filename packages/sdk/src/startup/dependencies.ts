/**
 * Dependency checks: required env vars, TCP connect, HTTP GET, custom async
 * functions. All run in parallel, each bounded by its own timeout. Reports name
 * hosts and variable names, never a URL's credentials or a variable's value.
 */
import net from 'node:net';
import { context, SpanStatusCode, type Context, type Tracer } from '@opentelemetry/api';
import type { DependencyCheck, Manifest, Policy } from '../manifest/schema.js';
import {
  ATTR_ERROR_TYPE,
  ATTR_VIGIL_CHECK,
  ATTR_VIGIL_CHECK_TYPE,
  ATTR_VIGIL_COMPONENT,
  SPAN_DEPENDENCY_CHECK,
} from '../semconv.js';
import { errorMessage, errorType, pickExport, resolveSpecifier } from '../util/modules.js';

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
  durationMs: number;
}

class CheckFailure extends Error {
  constructor(
    message: string,
    readonly code = 'VIGIL_CHECK_FAILED',
  ) {
    super(message);
  }
}

const DEFAULT_PORTS: Record<string, number> = {
  'http:': 80, 'https:': 443, 'postgres:': 5432, 'postgresql:': 5432, 'mysql:': 3306,
  'redis:': 6379, 'rediss:': 6380, 'mongodb:': 27017, 'amqp:': 5672, 'amqps:': 5671,
};

function readTarget(target: string | { env: string }, env: NodeJS.ProcessEnv): string {
  if (typeof target === 'string') return target;
  const value = env[target.env];
  if (!value) throw new CheckFailure(`environment variable ${target.env} is not set`, 'VIGIL_ENV_MISSING');
  return value;
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
      if (check.url === undefined) return `${check.host}:${check.port}`;
      return typeof check.url === 'string' ? safeHost(check.url) : `$${check.url.env}${env[check.url.env] ? ` (${safeHost(env[check.url.env]!)})` : ''}`;
    case 'http':
      return typeof check.url === 'string' ? safeHost(check.url) : `$${check.url.env}${env[check.url.env] ? ` (${safeHost(env[check.url.env]!)})` : ''}`;
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
      let status: number;
      try {
        // got is imported on first use: an app without HTTP checks does not pay for it at startup.
        const { got } = await import('got');
        const res = await got.get(url, { throwHttpErrors: false, retry: { limit: 0 }, followRedirect: false, signal });
        status = res.statusCode;
      } catch (err) {
        if (signal.aborted) throw new CheckFailure(`GET ${where} timed out`, 'VIGIL_TIMEOUT');
        throw new CheckFailure(`GET ${where} failed: ${(err as { code?: string }).code ?? 'request error'}`, errorType(err));
      }
      const ok = check.expect ? check.expect.status.includes(status) : status >= 200 && status < 400;
      if (!ok) throw new CheckFailure(`GET ${where} answered ${status}`, `HTTP_${status}`);
      return;
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

/** Bounds a check by its timeout; the check sees the abort through `signal`. */
async function withTimeout(ms: number, what: string, run: (signal: AbortSignal) => Promise<void>): Promise<void> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ac.abort();
      reject(new CheckFailure(`${what} did not answer within ${ms}ms`, 'VIGIL_TIMEOUT'));
    }, ms);
  });
  try {
    await Promise.race([run(ac.signal), timeout]);
  } finally {
    clearTimeout(timer);
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
      const base = { component, policy: spec.policy, check: name, type: check.type, target: describe(check, env) };
      try {
        await withTimeout(check.timeout, `${check.type} check "${name}"`, (signal) => runOne(check, env, baseUrl, signal));
        span.end();
        return { ...base, ok: true, durationMs: performance.now() - started };
      } catch (err) {
        const result = { ...base, ok: false, error: errorMessage(err), errorType: errorType(err), durationMs: performance.now() - started };
        span.setAttribute(ATTR_ERROR_TYPE, result.errorType);
        span.setStatus({ code: SpanStatusCode.ERROR, message: result.error });
        span.end();
        return result;
      }
    }),
  );
  return Promise.all(jobs);
}
