/**
 * The built-in dependency checks: PostgreSQL (`pg`), Redis (node-redis), DNS,
 * free disk space and TLS certificate expiry. The drivers are optional peer
 * dependencies, imported on a check's first run (never when the SDK loads).
 * Every failure becomes a short safe reason (`connection refused`, `password
 * authentication failed`) that never carries the connection URL's credentials.
 */
import { lookup } from 'node:dns/promises';
import { readFile, statfs } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import tls from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { DependencyCheck, PgQueryable } from '../manifest/schema.js';
import { errorMessage, errorType } from '../util/modules.js';

export class CheckFailure extends Error {
  constructor(
    message: string,
    readonly code = 'VIGIL_CHECK_FAILED',
  ) {
    super(message);
  }
}

/** The package each driver-backed check type needs, and how to get it. */
export const DRIVERS = { postgres: 'pg', redis: 'redis' } as const;

/** Where `pkg` would be loaded from: the app's node_modules (beside the manifest) first, then the SDK's. */
export function locateDriver(pkg: string, baseUrl: URL): string | undefined {
  for (const from of [baseUrl, new URL(import.meta.url)]) {
    try {
      return pathToFileURL(createRequire(from).resolve(pkg)).href;
    } catch {
      // not there: try the next place
    }
  }
  return undefined;
}

const loaded = new Map<string, Promise<unknown>>();
async function loadDriver<T>(pkg: string, baseUrl: URL): Promise<T> {
  const href = locateDriver(pkg, baseUrl);
  if (!href) throw new CheckFailure(`the "${pkg}" package is not installed (npm install ${pkg})`, 'VIGIL_DRIVER_MISSING');
  let mod = loaded.get(href);
  if (!mod) loaded.set(href, (mod = import(href)));
  return (await mod) as T;
}

/** The credentials of a URL, to scrub from any text a driver produces. */
export function urlSecrets(raw: string): string[] {
  try {
    const u = new URL(raw);
    return [u.password, decodeURIComponent(u.password), u.searchParams.get('password') ?? '', raw].filter((s) => s.length >= 3);
  } catch {
    return raw.length >= 3 ? [raw] : [];
  }
}

/** Replaces each secret in `text`, and any `scheme://user:password@` left, so a reason never carries a credential. */
export function scrub(text: string, secrets: string[]): string {
  let out = text;
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(s).join('[redacted]');
  return out.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1[redacted]@');
}

const NET_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed (temporary)',
};
/** PostgreSQL SQLSTATEs a health check meets, said plainly. */
const PG_REASONS: Record<string, string> = {
  '28P01': 'password authentication failed',
  '28000': 'authentication rejected (no matching pg_hba.conf entry, or the role does not exist)',
  '3D000': 'the database does not exist',
  '57P01': 'the server is shutting down',
  '57P03': 'the server is starting up',
  '53300': 'too many connections',
  '57014': 'the query was cancelled (statement timeout)',
};

/** A safe, short reason for a driver's error, and its low-cardinality type. */
export function safeReason(err: unknown, secrets: string[]): CheckFailure {
  if (err instanceof CheckFailure) return new CheckFailure(scrub(err.message, secrets), err.code);
  const e = err as { code?: unknown; message?: unknown; errors?: unknown[] } | undefined;
  // A connection to a name with several addresses fails with an AggregateError of one error per address.
  const first = Array.isArray(e?.errors) && e.errors.length ? (e.errors[0] as { code?: unknown }) : undefined;
  const code = typeof e?.code === 'string' ? e.code : typeof first?.code === 'string' ? first.code : undefined;
  if (code && NET_REASONS[code]) return new CheckFailure(NET_REASONS[code], code);
  if (code && PG_REASONS[code]) return new CheckFailure(PG_REASONS[code], `PG_${code}`);
  const message = errorMessage(err);
  // Redis answers errors as "CODE text": WRONGPASS, NOAUTH, LOADING, …
  const redis = /^(WRONGPASS|NOAUTH|LOADING|BUSY|MASTERDOWN|READONLY)\b/.exec(message)?.[1];
  if (redis === 'WRONGPASS') return new CheckFailure('password authentication failed', 'REDIS_WRONGPASS');
  if (redis === 'NOAUTH') return new CheckFailure('authentication required (no password given)', 'REDIS_NOAUTH');
  if (redis) return new CheckFailure(`the server answered ${redis}`, `REDIS_${redis}`);
  return new CheckFailure(scrub(message, secrets), errorType(err));
}

/** Runs `fn`; on abort, `onAbort` releases what it holds (a connection) so nothing outlives the timeout. */
async function abortable<T>(signal: AbortSignal, onAbort: () => void, fn: () => Promise<T>): Promise<T> {
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await fn();
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

interface PgClient extends PgQueryable {
  connect(): Promise<void>;
  end(): Promise<void>;
  on(event: 'error', listener: (err: Error) => void): unknown;
}
type PgModule = { Client: new (config: Record<string, unknown>) => PgClient };

export async function postgresCheck(check: Extract<DependencyCheck, { type: 'postgres' }>, url: string | undefined, baseUrl: URL, signal: AbortSignal): Promise<void> {
  const secrets = url ? urlSecrets(url) : [];
  try {
    if (check.pool) {
      await check.pool.query(check.query);
      return;
    }
    const mod = await loadDriver<PgModule & { default?: PgModule }>(DRIVERS.postgres, baseUrl);
    const { Client } = mod.default ?? mod;
    const client = new Client({
      connectionString: url,
      connectionTimeoutMillis: check.timeout,
      // The server gives up on the query too, so a check's pg_sleep never outlives it there.
      statement_timeout: check.timeout,
      application_name: 'vigil-health',
    });
    client.on('error', () => {}); // a connection lost after the check is not the host's problem
    try {
      await abortable(signal, () => void client.end().catch(() => {}), async () => {
        await client.connect();
        await client.query(check.query);
      });
    } finally {
      void client.end().catch(() => {});
    }
  } catch (err) {
    throw safeReason(err, secrets);
  }
}

interface RedisClient {
  connect(): Promise<unknown>;
  ping(): Promise<unknown>;
  on(event: 'error', listener: (err: Error) => void): unknown;
  destroy?: () => void;
  disconnect?: () => Promise<void>;
}
type RedisModule = { createClient: (options: Record<string, unknown>) => RedisClient };

export async function redisCheck(check: Extract<DependencyCheck, { type: 'redis' }>, url: string | undefined, baseUrl: URL, signal: AbortSignal): Promise<void> {
  const secrets = url ? urlSecrets(url) : [];
  try {
    if (check.client) {
      await check.client.ping();
      return;
    }
    const mod = await loadDriver<RedisModule & { default?: RedisModule }>(DRIVERS.redis, baseUrl);
    const createClient = mod.createClient ?? mod.default?.createClient;
    // One attempt, no reconnecting and no offline queue: a down server is an answer, not a wait.
    const client = createClient({ url, socket: { connectTimeout: check.timeout, reconnectStrategy: false }, disableOfflineQueue: true });
    client.on('error', () => {});
    const close = () => {
      try {
        if (client.destroy) client.destroy();
        else void client.disconnect?.().catch(() => {});
      } catch {
        // already closed
      }
    };
    try {
      await abortable(signal, close, async () => {
        await client.connect();
        const answer = await client.ping();
        if (answer !== 'PONG') throw new CheckFailure(`PING answered ${JSON.stringify(answer).slice(0, 40)}`, 'REDIS_BAD_ANSWER');
      });
    } finally {
      close();
    }
  } catch (err) {
    throw safeReason(err, secrets);
  }
}

export async function dnsCheck(check: Extract<DependencyCheck, { type: 'dns' }>): Promise<void> {
  const results = await Promise.allSettled(check.names.map((name) => lookup(name, { all: true })));
  const failed = check.names.flatMap((name, i) => {
    const r = results[i]!;
    return r.status === 'rejected' ? [`${name} (${(r.reason as { code?: string }).code ?? 'error'})`] : [];
  });
  if (failed.length) {
    const code = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason?.code;
    throw new CheckFailure(`does not resolve: ${failed.join(', ')}`, typeof code === 'string' ? code : 'VIGIL_DNS');
  }
}

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
export function formatBytes(n: number): string {
  let i = 0;
  let v = n;
  while (v >= 1000 && i < UNITS.length - 1) (v /= 1000), i++;
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${UNITS[i]}`;
}

export async function diskCheck(check: Extract<DependencyCheck, { type: 'disk' }>, baseUrl: URL): Promise<void> {
  const where = check.path.startsWith('/') ? check.path : fileURLToPath(new URL(check.path, baseUrl));
  let s: Awaited<ReturnType<typeof statfs>>;
  try {
    s = await statfs(where);
  } catch (err) {
    throw new CheckFailure(`cannot read the file system of ${check.path} (${(err as { code?: string }).code ?? 'error'})`, 'VIGIL_DISK');
  }
  const free = s.bavail * s.bsize;
  const total = s.blocks * s.bsize;
  const min = 'ratio' in check.minFree ? check.minFree.ratio * total : check.minFree.bytes;
  if (free < min) {
    throw new CheckFailure(`${formatBytes(free)} free on ${check.path} (${((100 * free) / total).toFixed(1)}% of ${formatBytes(total)}), under the ${check.minFree.text} minimum`, 'VIGIL_DISK_LOW');
  }
}

const DAY_MS = 86_400_000;

export async function tlsCheck(check: Extract<DependencyCheck, { type: 'tls' }>, url: string, host: string, port: number, baseUrl: URL, signal: AbortSignal): Promise<void> {
  const ca = check.caFile ? await readFile(new URL(check.caFile, baseUrl)) : undefined;
  const validTo = await new Promise<string>((resolve, reject) => {
    const socket = tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...(ca ? { ca } : {}) });
    const done = (err: Error | undefined, value?: string) => {
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve(value!);
    };
    const onAbort = () => done(new CheckFailure('aborted', 'VIGIL_TIMEOUT'));
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('secureConnect', () => done(undefined, socket.getPeerCertificate().valid_to));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? 'TLS_ERROR';
      if (NET_REASONS[code]) return done(new CheckFailure(NET_REASONS[code]!, code));
      // An untrusted or expired certificate: the handshake fails and says why (a code, never the URL).
      done(new CheckFailure(`certificate not accepted (${code})`, code));
    });
  }).catch((err) => {
    throw safeReason(err, urlSecrets(url));
  });
  const days = (Date.parse(validTo) - Date.now()) / DAY_MS;
  if (!(days >= check.minDays)) {
    throw new CheckFailure(
      days < 0 ? `the certificate expired ${(-days).toFixed(1)} days ago` : `the certificate expires in ${days.toFixed(1)} days (under the ${check.minDays}-day minimum)`,
      'VIGIL_CERT_EXPIRING',
    );
  }
}
