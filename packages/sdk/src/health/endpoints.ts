/**
 * The health endpoints as plain `(req, res)` handlers, so they work on
 * Express 4 and 5 alike. `/health` and `/ready` reveal nothing internal; the
 * detailed two and the route table are guarded by `decideAccess`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ComponentReport, StartupReport } from '../startup/report.js';
import { decideAccess, type AccessPolicy } from './access.js';
import { detailedBody, HEALTH_CONTENT_TYPE, type Phase, type RuntimeView } from './health-json.js';

export interface HealthSource {
  phase(): Phase;
  report(): StartupReport | undefined;
  meta: { service: string; version?: string };
  access(): AccessPolicy;
  /** The runtime monitor's view, once it runs. */
  runtime(): RuntimeView | undefined;
  /** Brings cached dependency results up to date (see `cache`): those `/ready` waits for, or those of the named components. Never rejects. */
  refresh(which: 'ready' | Set<string>): Promise<void>;
  /** The dependency checks `/ready` waits for that are failing now, as `component:check`. */
  notReady(): string[];
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Answers 401 and returns true when the caller may not read the detailed endpoints (see `decideAccess`). */
function refused(source: Pick<HealthSource, 'access'>, req: IncomingMessage, res: ServerResponse): boolean {
  const decision = decideAccess(source.access(), req.headers.authorization, req.socket.remoteAddress);
  if (decision.allowed) return false;
  send(res, decision.status, { status: 'fail', output: decision.reason }, { 'www-authenticate': 'Bearer realm="vigil"' });
  return true;
}

function send(res: ServerResponse, status: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': HEALTH_CONTENT_TYPE,
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
    ...extraHeaders,
  });
  res.end(text);
}

/** Liveness: 200 while the process can answer at all. */
export function livenessHandler(): Handler {
  return (_req, res) => send(res, 200, { status: 'pass' });
}

/**
 * Readiness: 503 until validation passed, while a dependency check of the
 * `ready` group fails (its cached result refreshed first), and while draining.
 */
export function readinessHandler(source: HealthSource): Handler {
  return (_req, res) => {
    const phase = source.phase();
    if (phase !== 'ready') {
      send(res, 503, { status: 'fail', output: phase === 'draining' ? 'shutting down' : phase === 'starting' ? 'starting' : 'startup validation failed' });
      return;
    }
    void source.refresh('ready').then(() => {
      // Which dependency is not said here: /ready is public; the detailed body names it.
      if (source.notReady().length) send(res, 503, { status: 'fail', output: 'a dependency readiness waits for is failing' });
      else send(res, 200, { status: 'pass' });
    });
  };
}

/**
 * A detailed endpoint over the components `filter` selects (and, with
 * `includeGlobal`, the checks of no component: process, error rate); 503 when
 * the result fails.
 */
export function detailedHandler(source: HealthSource, filter?: (c: ComponentReport) => boolean, includeGlobal = true): Handler {
  return (req, res) => {
    if (refused(source, req, res)) return;
    const shown = new Set((source.report()?.components ?? []).filter((c) => !filter || filter(c)).map((c) => c.name));
    void source.refresh(shown).then(() => {
      const body = detailedBody(source.report(), source.phase(), source.meta, filter, source.runtime(), includeGlobal);
      send(res, body.status === 'fail' ? 503 : 200, body);
    });
  };
}

/** How long `/health/routes` serves the table it built: walking a large app's routes takes a while (about 1 s for 10,000). */
export const ROUTE_TABLE_CACHE_MS = 10_000;

/**
 * The live route table (`vigil routes --json`'s snapshot), to the callers the
 * detailed endpoints serve, built at most once per {@link ROUTE_TABLE_CACHE_MS};
 * 500 with a reason if it cannot be built.
 */
export function routesHandler(source: Pick<HealthSource, 'access'>, table: () => unknown): Handler {
  let cached: { at: number; body: unknown } | undefined;
  return (req, res) => {
    if (refused(source, req, res)) return;
    if (!cached || performance.now() - cached.at >= ROUTE_TABLE_CACHE_MS) {
      try {
        cached = { at: performance.now(), body: table() };
      } catch (err) {
        send(res, 500, { status: 'fail', output: `the route table could not be built: ${err instanceof Error ? err.message : String(err)}` });
        return;
      }
    }
    send(res, 200, cached.body, { 'content-type': 'application/json' });
  };
}
