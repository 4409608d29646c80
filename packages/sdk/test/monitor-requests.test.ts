import { EventEmitter } from 'node:events';
import http, { type Server, type ServerResponse } from 'node:http';
import { expect } from 'chai';
import express5 from 'express';
// @ts-expect-error express4 is an npm alias of express@4 with no types of its own
import express4Untyped from 'express4';
import { createRequestTracker, errorRateCheck, type RequestTracker, type RouteStats, type TrackedRequest } from '../src/monitor/requests.js';
import { listRoutes } from '../src/startup/inventory.js';
import { probeHeaders } from '../src/monitor/marker.js';
import { PROBE_HEADER, SYNTHETIC_HEADER } from '../src/semconv.js';
import { close, listen } from './helpers/servers.js';

type AnyExpress = typeof express5;
const express4 = express4Untyped as AnyExpress;
type Req = express5.Request;
type Res = express5.Response;

/** A clock the test moves by hand. */
function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

/**
 * The same app on both majors. `/api/v1/orgs/:orgId/users/:id` through three
 * routers; it answers with `?status=`, fails through `next(err)` on `?fail=next`
 * and by throwing on `?fail=throw`, so an app-level error handler writes the 500.
 */
function buildApp(express: AnyExpress, tracker: (app: express5.Express) => RequestTracker) {
  const app = express();
  const t = tracker(app);
  app.use(t.middleware);
  const api = express.Router();
  const orgs = express.Router();
  const users = express.Router();
  users.get('/', (_req: Req, res: Res) => void res.end());
  users.get('/:id', (req: Req, res: Res, next: express5.NextFunction) => {
    if (req.query.fail === 'next') return next(new Error('boom'));
    if (req.query.fail === 'throw') throw new Error('boom');
    if (req.query.fail === 'later') return void setTimeout(() => res.status(503).end(), 2);
    res.status(Number(req.query.status ?? 200)).end();
  });
  users.all('/:id/audit', (_req: Req, res: Res) => void res.end());
  orgs.use('/:orgId/users', users);
  api.use('/orgs', orgs);
  api.get('/items/:n', (req: Req, res: Res) => void res.status(Number(req.query.status ?? 200)).end());
  app.use('/api/v1', api);
  app.get('/status', (_req: Req, res: Res) => void res.end());
  app.use((_req: Req, res: Res) => void res.status(404).end());
  app.use((_err: unknown, _req: Req, res: Res, _next: express5.NextFunction) => void res.status(500).end());
  return { app, tracker: t };
}

function row(s: RouteStats): string {
  return `${s.method} ${s.route} ${s.errors}/${s.requests}`;
}

for (const [major, express] of [
  ['Express 4', express4],
  ['Express 5', express5],
] as const) {
  describe(`request tracker on ${major}`, () => {
    let server: Server | undefined;
    let base = '';

    async function start(make: (app: express5.Express) => RequestTracker): Promise<RequestTracker> {
      const { app, tracker } = buildApp(express, make);
      server = http.createServer(app);
      base = `http://127.0.0.1:${await listen(server)}`;
      return tracker;
    }

    async function get(path: string, init?: RequestInit): Promise<number> {
      const res = await fetch(`${base}${path}`, init);
      await res.arrayBuffer();
      return res.status;
    }

    /** `finish` fires after the response is written; give it a moment. */
    const settle = () => new Promise((r) => setTimeout(r, 20));

    afterEach(async () => {
      if (server) await close(server);
      server = undefined;
    });

    it('counts two concrete paths of one nested route under one template', async () => {
      const tracker = await start((app) => createRequestTracker({ windowMs: 60_000, routes: () => listRoutes(app) }));
      expect(await get('/api/v1/orgs/42/users/7')).to.equal(200);
      expect(await get('/api/v1/orgs/43/users/8')).to.equal(200);
      await settle();
      expect(tracker.snapshot()).to.deep.equal([{ method: 'GET', route: '/api/v1/orgs/:orgId/users/:id', requests: 2, errors: 0, ratio: 0 }]);
    });

    it('resolves case, trailing slash, query, the route "/" and router.all', async () => {
      const tracker = await start((app) => createRequestTracker({ windowMs: 60_000, routes: () => listRoutes(app) }));
      await get('/API/V1/ORGS/42/USERS/7/');
      await get('/api/v1/orgs/42/users/7?x=/a/b/c');
      await get('/api/v1/orgs/42/users');
      await get('/api/v1/orgs/42/users/');
      await get('/api/v1/orgs/42/users/7/audit', { method: 'DELETE' });
      await get('/status');
      await settle();
      expect(tracker.snapshot().map(row)).to.deep.equal([
        'GET /api/v1/orgs/:orgId/users 0/2',
        'GET /api/v1/orgs/:orgId/users/:id 0/2',
        'DELETE /api/v1/orgs/:orgId/users/:id/audit 0/1',
        'GET /status 0/1',
      ]);
    });

    it('counts 5xx, including errors passed to next() and thrown (Express has restored req.baseUrl by then)', async () => {
      const tracker = await start((app) => createRequestTracker({ windowMs: 60_000, routes: () => listRoutes(app) }));
      const statuses = [];
      for (const q of ['', '', '?status=404', '?status=500', '?fail=next', '?fail=throw', '?fail=later', '?status=599']) {
        statuses.push(await get(`/api/v1/orgs/${statuses.length + 1}/users/9${q}`));
      }
      expect(statuses).to.deep.equal([200, 200, 404, 500, 500, 500, 503, 599]);
      await get('/api/v1/items/5?status=502');
      await get('/api/v1/items/6?status=201');
      await settle();
      expect(tracker.snapshot()).to.deep.equal([
        { method: 'GET', route: '/api/v1/items/:n', requests: 2, errors: 1, ratio: 0.5 },
        { method: 'GET', route: '/api/v1/orgs/:orgId/users/:id', requests: 8, errors: 5, ratio: 0.625 },
      ]);
    });

    it("does not count the monitor's own requests (marker checks out), of any kind", async () => {
      const tracker = await start((app) => createRequestTracker({ windowMs: 60_000, routes: () => listRoutes(app) }));
      await get('/api/v1/orgs/42/users/7?status=500', { headers: probeHeaders('probe') });
      await get('/nope', { headers: probeHeaders('flow') });
      await get('/nope', { headers: probeHeaders('rate-limit') });
      await settle();
      expect(tracker.snapshot()).to.deep.equal([]);
      await get('/api/v1/orgs/42/users/7?status=500');
      await settle();
      expect(tracker.snapshot().map(row)).to.deep.equal(['GET /api/v1/orgs/:orgId/users/:id 1/1']);
    });

    it('counts a client that sends x-vigil-synthetic, or a marker it made up or copied to another kind', async () => {
      const tracker = await start((app) => createRequestTracker({ windowMs: 60_000, routes: () => listRoutes(app) }));
      const copied = probeHeaders('probe')[PROBE_HEADER]!;
      await get('/api/v1/orgs/42/users/7?status=500', { headers: { [SYNTHETIC_HEADER]: 'probe' } });
      await get('/api/v1/orgs/42/users/7?status=500', { headers: { [SYNTHETIC_HEADER]: 'probe', [PROBE_HEADER]: `${Math.floor(Date.now() / 1000)}.${'A'.repeat(43)}` } });
      await get('/api/v1/orgs/42/users/7?status=500', { headers: { [SYNTHETIC_HEADER]: 'flow', [PROBE_HEADER]: copied } });
      await settle();
      expect(tracker.snapshot().map(row)).to.deep.equal(['GET /api/v1/orgs/:orgId/users/:id 3/3']);
    });

    it('puts unknown paths under (unmatched) and routes beyond maxRoutes under (other)', async () => {
      const tracker = await start((app) => createRequestTracker({ windowMs: 60_000, maxRoutes: 2, routes: () => listRoutes(app) }));
      await get('/nope');
      await get('/nope/123');
      await get('/status');
      await get('/api/v1/items/1');
      await get('/api/v1/orgs/42/users/7'); // a third route
      await get('/api/v1/orgs/42/users'); // a fourth
      await get('/status'); // a known one still has its own series
      await settle();
      expect(tracker.snapshot().map(row)).to.deep.equal(['GET (other) 0/2', 'GET (unmatched) 0/2', 'GET /api/v1/items/:n 0/1', 'GET /status 0/2']);
    });

    it('falls back to the mount path with ids as :id when the inventory does not know the route', async () => {
      const tracker = await start(() => createRequestTracker({ windowMs: 60_000, routes: () => [] }));
      await get('/api/v1/orgs/42/users/7');
      await get('/api/v1/orgs/3f2a9c1e-0b7d-4c55-9e21-6a1f0c2b8d44/users/8?fail=next');
      await get('/api/v1/orgs/0123456789abcdef01/users/9');
      await get('/api/v1/orgs/acme/users/9');
      await settle();
      expect(tracker.snapshot().map(row)).to.deep.equal(['GET /api/v1/orgs/:id/users/:id 1/3', 'GET /api/v1/orgs/acme/users/:id 0/1']);
    });

    it('reads the inventory again after 5 s and sees a route added late', async () => {
      const c = clock();
      const template = '/api/v1/orgs/:orgId/users/:id';
      let hidden = true;
      const tracker = await start((app) =>
        createRequestTracker({ windowMs: 600_000, now: c.now, routes: () => listRoutes(app).filter((r) => !(hidden && r.path === template)) }),
      );
      await get('/api/v1/orgs/1/users/1');
      await settle();
      hidden = false;
      c.advance(4_000); // not re-read yet
      await get('/api/v1/orgs/2/users/2');
      await settle();
      c.advance(1_000);
      await get('/api/v1/orgs/3/users/3');
      await settle();
      expect(tracker.snapshot().map(row)).to.deep.equal(['GET /api/v1/orgs/:id/users/:id 0/2', `GET ${template} 0/1`]);
    });

    it('forgets traffic older than the window', async () => {
      const c = clock();
      const tracker = await start((app) => createRequestTracker({ windowMs: 10_000, now: c.now, routes: () => listRoutes(app) }));
      await get('/status');
      await get('/api/v1/items/1?status=500');
      await settle();
      c.advance(5_000);
      await get('/status');
      await settle();
      expect(tracker.snapshot().map(row)).to.deep.equal(['GET /api/v1/items/:n 1/1', 'GET /status 0/2']);
      c.advance(5_000); // the first requests are a window old now
      expect(tracker.snapshot().map(row)).to.deep.equal(['GET /status 0/1']);
      c.advance(5_000);
      expect(tracker.snapshot()).to.deep.equal([]);
    });
  });
}

// ── Without a server: fake requests through the same middleware ──────────────

/** Runs one request through the middleware and finishes it with `status`. */
function hit(tracker: RequestTracker, method: string, template: string | undefined, status: number, headers: Record<string, string> = {}): void {
  const req = { method, headers, url: template ?? '/x', originalUrl: template ?? '/x', baseUrl: '', ...(template ? { route: { path: template } } : {}) };
  const res = Object.assign(new EventEmitter(), { statusCode: status, req });
  let nexted = false;
  tracker.middleware(req as unknown as TrackedRequest, res as unknown as ServerResponse, () => (nexted = true));
  expect(nexted).to.equal(true);
  res.emit('finish');
}

function traffic(tracker: RequestTracker, method: string, route: string, requests: number, errors: number): void {
  for (let i = 0; i < requests; i++) hit(tracker, method, route, i < errors ? 500 : 200);
}

describe('request tracker', () => {
  it('keeps memory bounded: a series out of the window frees its place under maxRoutes', () => {
    const c = clock();
    const tracker = createRequestTracker({ windowMs: 1000, maxRoutes: 1, now: c.now, routes: () => [] });
    hit(tracker, 'GET', '/a', 200);
    hit(tracker, 'GET', '/b', 200);
    expect(tracker.snapshot().map(row)).to.deep.equal(['GET (other) 0/1', 'GET /a 0/1']);
    c.advance(1000);
    hit(tracker, 'GET', '/b', 200);
    expect(tracker.snapshot().map(row)).to.deep.equal(['GET /b 0/1']);
    hit(tracker, 'GET', '/a', 500); // its old series was pruned; /b holds the only place now
    expect(tracker.snapshot().map(row)).to.deep.equal(['GET (other) 1/1', 'GET /b 0/1']);
  });

  /** A request as Express leaves it at `finish`. */
  function finish(tracker: RequestTracker, method: string, originalUrl: string, baseUrl: string, routePath: string, status = 200): void {
    const req = { method, headers: {}, url: originalUrl, originalUrl, baseUrl, route: { path: routePath } };
    const res = Object.assign(new EventEmitter(), { statusCode: status, req });
    tracker.middleware(req as unknown as TrackedRequest, res as unknown as ServerResponse, () => {});
    res.emit('finish');
  }

  it('resolves HEAD to a GET route, and a URL rewritten before routing through req.baseUrl', () => {
    const routes = [
      { method: 'GET', path: '/v2/orgs/:orgId/users/:id' },
      { method: 'ALL', path: '/v2/orgs/:orgId/users/:id/audit' },
    ];
    const tracker = createRequestTracker({ windowMs: 1000, routes: () => routes });
    finish(tracker, 'HEAD', '/v2/orgs/1/users/2', '/v2/orgs/1/users', '/:id');
    finish(tracker, 'GET', '/v1/orgs/1/users/2', '/v2/orgs/1/users', '/:id', 502); // a middleware rewrote /v1 to /v2
    finish(tracker, 'PATCH', '/v2/orgs/1/users/2/audit', '', '/:id/audit');
    expect(tracker.snapshot().map(row)).to.deep.equal([
      'GET /v2/orgs/:orgId/users/:id 1/1',
      'HEAD /v2/orgs/:orgId/users/:id 0/1',
      'PATCH /v2/orgs/:orgId/users/:id/audit 0/1',
    ]);
  });

  it('resolves through any number of distinct mount paths (bounded memo)', () => {
    const tracker = createRequestTracker({ windowMs: 1000, routes: () => [{ method: 'GET', path: '/orgs/:orgId/users/:id' }] });
    for (let i = 0; i < 2500; i++) finish(tracker, 'GET', `/orgs/org-${i}/users/${i}`, '', '/:id', i % 10 === 0 ? 500 : 200);
    expect(tracker.snapshot().map(row)).to.deep.equal(['GET /orgs/:orgId/users/:id 250/2500']);
  });

  it('counts a request once when the middleware is mounted twice', () => {
    const tracker = createRequestTracker({ windowMs: 1000, routes: () => [] });
    const req = { method: 'GET', headers: {}, url: '/a', originalUrl: '/a', baseUrl: '', route: { path: '/a' } };
    const res = Object.assign(new EventEmitter(), { statusCode: 200, req });
    tracker.middleware(req as unknown as TrackedRequest, res as unknown as ServerResponse, () => {});
    tracker.middleware(req as unknown as TrackedRequest, res as unknown as ServerResponse, () => {});
    res.emit('finish');
    expect(tracker.snapshot().map(row)).to.deep.equal(['GET /a 0/1']);
  });

  it('never throws into the app when the inventory does', () => {
    const tracker = createRequestTracker({
      windowMs: 1000,
      routes: () => {
        throw new Error('no');
      },
    });
    hit(tracker, 'GET', '/a/1', 500);
    expect(tracker.snapshot().map(row)).to.deep.equal(['GET /a/1 1/1']);
  });

  it('rejects a window that is not positive', () => {
    expect(() => createRequestTracker({ windowMs: 0, routes: () => [] })).to.throw(RangeError);
  });
});

describe('error-rate check', () => {
  const opts = { warnRatio: 0.05, failRatio: 0.25, minRequests: 20, intervalMs: 30_000 };

  it('is a level 2 check keyed http:error-rate', () => {
    const check = errorRateCheck(createRequestTracker({ windowMs: 1000, routes: () => [] }), opts);
    expect({ ...check, run: undefined }).to.deep.equal({ id: 'error-rate', level: 2, healthKey: 'http:error-rate', intervalMs: 30_000, timeoutMs: 1000, run: undefined });
  });

  // [what, traffic as [method, route, requests, errors], expected outcome]
  const table: Array<[string, Array<[string, string, number, number]>, object]> = [
    ['no traffic passes', [], { status: 'pass', observedValue: 0, observedUnit: 'ratio' }],
    ['under minRequests passes even at 100% errors', [['GET', '/api/v1/users', 19, 19]], { status: 'pass', observedValue: 0, observedUnit: 'ratio' }],
    ['below warnRatio passes', [['GET', '/api/v1/users', 40, 1]], { status: 'pass', observedValue: 0.025, observedUnit: 'ratio' }],
    [
      'at warnRatio warns',
      [['GET', '/api/v1/users', 40, 2]],
      { status: 'warn', observedValue: 0.05, observedUnit: 'ratio', output: 'GET /api/v1/users: 2/40 5xx (5.0%)', affectedEndpoints: ['GET /api/v1/users'] },
    ],
    [
      'at failRatio fails',
      [['GET', '/api/v1/users', 40, 10]],
      { status: 'fail', observedValue: 0.25, observedUnit: 'ratio', output: 'GET /api/v1/users: 10/40 5xx (25.0%)', affectedEndpoints: ['GET /api/v1/users'] },
    ],
    [
      'the worst route decides; offenders listed worst first',
      [
        ['POST', '/api/v1/orders', 30, 3],
        ['GET', '/api/v1/users', 40, 12],
        ['GET', '/api/v1/health', 50, 0],
        ['DELETE', '/api/v1/users/:id', 5, 5],
      ],
      {
        status: 'fail',
        observedValue: 0.3,
        observedUnit: 'ratio',
        output: 'GET /api/v1/users: 12/40 5xx (30.0%); POST /api/v1/orders: 3/30 5xx (10.0%)',
        affectedEndpoints: ['GET /api/v1/users', 'POST /api/v1/orders'],
      },
    ],
    [
      'observedValue has 3 decimals',
      [['GET', '/a', 21, 7]],
      { status: 'fail', observedValue: 0.333, observedUnit: 'ratio', output: 'GET /a: 7/21 5xx (33.3%)', affectedEndpoints: ['GET /a'] },
    ],
  ];
  for (const [what, rows, expected] of table) {
    it(what, async () => {
      const tracker = createRequestTracker({ windowMs: 60_000, routes: () => [] });
      for (const [method, route, requests, errors] of rows) traffic(tracker, method, route, requests, errors);
      expect(await tracker.errorRateCheck(opts).run(new AbortController().signal)).to.deep.equal(expected);
    });
  }

  it('names the component of each offending route when asked', async () => {
    const tracker = createRequestTracker({ windowMs: 60_000, routes: () => [] });
    traffic(tracker, 'GET', '/api/v1/users', 20, 2);
    traffic(tracker, 'GET', '/misc', 20, 2);
    const check = errorRateCheck(tracker, { ...opts, component: (route) => (route.startsWith('/api/v1/users') ? 'users' : undefined) });
    const outcome = await check.run(new AbortController().signal);
    expect(outcome.output).to.equal('GET /api/v1/users (users): 2/20 5xx (10.0%); GET /misc: 2/20 5xx (10.0%)');
  });

  it('warnRatio 0 does not turn a clean route into a warning', async () => {
    const tracker = createRequestTracker({ windowMs: 60_000, routes: () => [] });
    traffic(tracker, 'GET', '/a', 30, 0);
    expect((await errorRateCheck(tracker, { ...opts, warnRatio: 0 }).run(new AbortController().signal)).status).to.equal('pass');
  });

  it('lists at most 10 offenders in output, all in affectedEndpoints', async () => {
    const tracker = createRequestTracker({ windowMs: 60_000, routes: () => [] });
    for (let i = 0; i < 12; i++) traffic(tracker, 'GET', `/r${String(i).padStart(2, '0')}`, 20, 20);
    const outcome = await errorRateCheck(tracker, opts).run(new AbortController().signal);
    expect(outcome.affectedEndpoints).to.have.length(12);
    expect(outcome.output!.split('; ')).to.have.length(11);
    expect(outcome.output).to.match(/; and 2 more$/);
  });
});

// Type-level: the middleware is an Express 5 RequestHandler as typed by @types/express.
const _typed: express5.RequestHandler = createRequestTracker({ windowMs: 1, routes: () => [] }).middleware;
void _typed;
