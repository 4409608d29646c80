/**
 * The evaluator's HTTP API: the status page (`GET /`, `GET /status`),
 * `GET /api/v1/status` (services, components,
 * impact, active alerts with escalation, notifier health, recent
 * notifications), `GET /health`, `GET /ready`, and the OTLP receiver when that
 * is the source. Binds 127.0.0.1 unless configured otherwise.
 */
import http from 'node:http';
import type { Evaluator } from '../evaluator.js';
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from './status-page.js';

interface ApiDeps {
  evaluator: Evaluator;
  receiver?: { handler: (req: http.IncomingMessage, res: http.ServerResponse) => void };
  otlpPath?: string;
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function page(res: http.ServerResponse): void {
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': STATUS_PAGE_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(STATUS_PAGE_HTML),
  });
  res.end(STATUS_PAGE_HTML);
}

export function createApiServer(deps: ApiDeps): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    try {
      if (deps.receiver && path === deps.otlpPath) return deps.receiver.handler(req, res);
      const routes: Record<string, () => void> = {
        '/': () => page(res),
        '/status': () => page(res),
        '/health': () => json(res, 200, { status: 'pass' }),
        '/ready': () => {
          const r = deps.evaluator.ready();
          json(res, r.ready ? 200 : 503, r.ready ? { status: 'pass' } : { status: 'fail', output: r.reason });
        },
        '/api/v1/status': () => json(res, 200, deps.evaluator.status()),
      };
      const route = routes[path];
      if (!route) return json(res, 404, { error: `no route ${req.method} ${path}` });
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        return json(res, 405, { error: `${path} answers GET only` });
      }
      route();
    } catch (err) {
      json(res, 500, { error: err instanceof Error ? err.message : String(err) });
    }
  });
}
