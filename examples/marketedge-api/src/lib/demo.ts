/**
 * Fault injection for the demo and the tests: `VIGIL_DEMO_BREAK=user_management`
 * (comma-separated for several) makes that router fail to import, the way the
 * original incident's router did — an import of a module that is not there.
 * `database` and `cache` break those dependency checks instead.
 */
export function isBroken(name: string): boolean {
  return (process.env.VIGIL_DEMO_BREAK ?? '')
    .split(',')
    .map((s) => s.trim())
    .includes(name);
}

// A broken database or cache is a URL where nothing listens (port 1 refuses): the real
// built-in check then fails the way it would in production, with "connection refused".
if (isBroken('database')) process.env.DATABASE_URL = 'postgres://demo@127.0.0.1:1/marketedge';
if (isBroken('cache')) process.env.REDIS_URL = 'redis://127.0.0.1:1';

/** Called at the top of each router module: an import error when that router is broken. */
export async function importFault(name: string): Promise<void> {
  if (isBroken(name)) {
    const missing = `../models/${name}_schema.js`; // a module that does not exist, as in the incident
    await import(missing);
  }
}

/**
 * A fault at run time, after a clean start: `kill -USR2 <pid>` toggles it.
 * `VIGIL_DEMO_RUNTIME_FAULT` names the router that then answers 503 (default
 * `auth`), the way a lost database connection would surface.
 */
const runtimeFault = { active: false, router: process.env.VIGIL_DEMO_RUNTIME_FAULT ?? 'auth' };
process.on('SIGUSR2', () => {
  runtimeFault.active = !runtimeFault.active;
  process.stderr.write(`demo: runtime fault on router ${runtimeFault.router} ${runtimeFault.active ? 'ON' : 'OFF'}\n`);
});

/** Middleware for a router: answers 503 while the demo's runtime fault is on for it. */
export function runtimeFaultFor(name: string) {
  return (_req: unknown, res: { status: (n: number) => { json: (b: unknown) => void } }, next: () => void) => {
    if (runtimeFault.active && runtimeFault.router === name) return void res.status(503).json({ error: 'database connection lost (demo fault)' });
    next();
  };
}

/**
 * Noise for the soak test: a healthy API that is a little slow and a little
 * flaky, within its budgets. Off unless set:
 *
 * - `VIGIL_DEMO_JITTER_MS=<max>`: every `/api/v1` request waits a random
 *   0..max ms before it is handled (probes, flows and real traffic alike).
 * - `VIGIL_DEMO_FLAKY=<p>`: a route handler answers 503 with probability `p`
 *   per request — to the app's own traffic and to the endpoint probes, never to
 *   flow steps — and never twice in a row for the same route and caller: after
 *   a failure, the next request of that caller on that route is handled. The
 *   two example flows log in through the same route, so a per-route rule could
 *   not guarantee each flow single failures; flow steps only get the jitter.
 * - `VIGIL_DEMO_FLAKY_BURST=<n>` (default 1): each injected failure is a burst
 *   of `n` consecutive 503s for that route and caller, then at least one
 *   success. `n` at or above `monitor.failureThreshold` is a real outage a
 *   probe must report (the soak test's control).
 *
 * The caller is the kind of Vigil's synthetic request (`x-vigil-synthetic:
 * probe`), or the app's own traffic when the header is absent. The failure is
 * answered by the route (after Express matched it), so the SDK's request
 * accounting counts it under the route's template, as a handler's 5xx.
 * `GET /demo/noise` (mounted only when a knob is set) returns the counters.
 */
export interface NoiseConfig {
  jitterMs: number;
  flaky: number;
  burst: number;
}

/** A demo knob with a value the example cannot use; the message names the variable and what it expects. */
export class DemoConfigError extends Error {
  override readonly name = 'DemoConfigError';
}

function numberFrom(env: NodeJS.ProcessEnv, name: string, expected: string, ok: (n: number) => boolean, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw.trim());
  if (!Number.isFinite(n) || !ok(n)) throw new DemoConfigError(`${name}: expected ${expected}, got ${JSON.stringify(raw)}`);
  return n;
}

/** Reads and checks the noise knobs; throws a {@link DemoConfigError} naming the variable on a bad value. */
export function readNoiseConfig(env: NodeJS.ProcessEnv = process.env): NoiseConfig {
  return {
    jitterMs: numberFrom(env, 'VIGIL_DEMO_JITTER_MS', 'a whole number of milliseconds from 0 to 60000', (n) => Number.isInteger(n) && n >= 0 && n <= 60_000, 0),
    flaky: numberFrom(env, 'VIGIL_DEMO_FLAKY', 'a probability from 0 to 1, e.g. 0.05', (n) => n >= 0 && n <= 1, 0),
    burst: numberFrom(env, 'VIGIL_DEMO_FLAKY_BURST', 'a whole number from 1 to 100', (n) => Number.isInteger(n) && n >= 1 && n <= 100, 1),
  };
}

let noiseConfig: NoiseConfig | undefined;
/** The noise knobs of this process, read once (the first call throws on a bad value). */
export function noise(): NoiseConfig {
  return (noiseConfig ??= readNoiseConfig());
}

export function noiseEnabled(c: NoiseConfig = noise()): boolean {
  return c.jitterMs > 0 || c.flaky > 0;
}

type Caller = 'probe' | 'flow' | 'app' | 'other';
const SYNTHETIC = 'x-vigil-synthetic';
const FLAKY_CALLERS: ReadonlySet<Caller> = new Set(['probe', 'app']);

interface KeyState {
  /** Failures left in the current burst. */
  left: number;
  /** Consecutive failures answered so far (0: the last request was handled). */
  run: number;
  requests: number;
  injected: number;
  longestRun: number;
}

const counters = {
  requests: { probe: 0, flow: 0, app: 0, other: 0 } as Record<Caller, number>,
  delayed: { requests: 0, totalMs: 0, maxMs: 0 },
  injected: { probe: 0, app: 0 } as Record<string, number>,
  longestRun: { probe: 0, app: 0 } as Record<string, number>,
};
const keys = new Map<string, KeyState>();
const MAX_KEYS = 1000;

type Req = { headers: Record<string, string | string[] | undefined>; method?: string; baseUrl?: string; route?: { path?: unknown } };
type Res = { status: (n: number) => { json: (b: unknown) => void } };

function callerOf(req: Req): Caller {
  const kind = req.headers[SYNTHETIC];
  if (kind === undefined) return 'app';
  return kind === 'probe' || kind === 'flow' ? kind : 'other';
}

/** App-level middleware for `/api/v1`: the jitter, and the request count by caller. */
export function jitterMiddleware(req: Req, _res: unknown, next: () => void): void {
  const c = noise();
  counters.requests[callerOf(req)]++;
  if (c.jitterMs <= 0) return next();
  const ms = Math.random() * c.jitterMs;
  counters.delayed.requests++;
  counters.delayed.totalMs += ms;
  counters.delayed.maxMs = Math.max(counters.delayed.maxMs, ms);
  setTimeout(next, ms);
}

/**
 * The first handler of a route: answers 503 when the flaky knob says so.
 * Decided in arrival order per (caller, method, route template), so one
 * probe's runs — never two at once — see at most `burst` failures in a row.
 */
export function flakyRoute(req: Req, res: Res, next: () => void): void {
  const c = noise();
  const caller = callerOf(req);
  if (c.flaky <= 0 || !FLAKY_CALLERS.has(caller)) return next();
  const route = `${req.baseUrl ?? ''}${typeof req.route?.path === 'string' ? req.route.path : ''}`;
  const key = `${caller} ${req.method ?? 'GET'} ${route.length > 1 ? route.replace(/\/$/, '') : route}`;
  let s = keys.get(key);
  if (!s) {
    if (keys.size >= MAX_KEYS) keys.clear();
    s = { left: 0, run: 0, requests: 0, injected: 0, longestRun: 0 };
    keys.set(key, s);
  }
  s.requests++;
  let fail = false;
  if (s.left > 0) {
    s.left--;
    fail = true;
  } else if (s.run > 0) {
    s.run = 0; // a burst is always followed by a handled request
  } else if (Math.random() < c.flaky) {
    s.left = c.burst - 1;
    fail = true;
  }
  if (!fail) return next();
  s.run++;
  s.injected++;
  s.longestRun = Math.max(s.longestRun, s.run);
  counters.injected[caller]!++;
  counters.longestRun[caller] = Math.max(counters.longestRun[caller]!, s.run);
  process.stderr.write(`demo: flaky 503 for ${key} (${s.run} of ${c.burst} in a row)\n`);
  res.status(503).json({ error: 'upstream timed out (demo noise)' });
}

/** What `GET /demo/noise` answers: the knobs and what they did so far. */
export function noiseStats() {
  const c = noise();
  return {
    config: c,
    requests: { ...counters.requests },
    delayed: { requests: counters.delayed.requests, maxMs: Math.round(counters.delayed.maxMs), meanMs: counters.delayed.requests ? Math.round(counters.delayed.totalMs / counters.delayed.requests) : 0 },
    injected: { ...counters.injected },
    longestRun: { ...counters.longestRun },
    routes: Object.fromEntries([...keys].map(([k, s]) => [k, { requests: s.requests, injected: s.injected, longestRun: s.longestRun }])),
  };
}
