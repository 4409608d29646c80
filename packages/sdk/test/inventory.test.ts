import { expect } from 'chai';
import express5 from 'express';
// @ts-expect-error express4 is an npm alias of express@4 with no types of its own
import express4Untyped from 'express4';
import { decodeExpress4Mount, hasRoute, listRoutes } from '../src/startup/inventory.js';

type AnyExpress = typeof express5;
const express4 = express4Untyped as AnyExpress;
const noop = (_req: unknown, res: { end: () => void }) => res.end();

/** The same app on both majors: nested routers, params, app.route(), all(), a router mounted by the app itself. */
function buildApp(express: AnyExpress) {
  const app = express();
  const api = express.Router();
  const auth = express.Router();
  auth.post('/login', noop);
  auth.post('/refresh', noop);
  const admin = express.Router();
  const dashboard = express.Router();
  dashboard.get('/stats', noop);
  admin.use('/dashboard', dashboard);
  admin.get('/feature-flags', noop);
  const users = express.Router();
  users.get('/', noop);
  users.get('/:id', noop);
  users.all('/:id/audit', noop);
  api.use('/auth', auth);
  api.use('/admin', admin);
  api.use('/orgs/:orgId/users', users);
  app.use('/api/v1', api);
  app.route('/status').get(noop).head(noop);
  app.use(express.json());
  return app;
}

for (const [major, express] of [
  ['Express 4', express4],
  ['Express 5', express5],
] as const) {
  describe(`route inventory on ${major}`, () => {
    const app = buildApp(express);

    // One row per question: method, path, whether Express would route it to a handler.
    const table: Array<[string, string, boolean]> = [
      ['POST', '/api/v1/auth/login', true],
      ['POST', '/api/v1/auth/refresh', true],
      ['GET', '/api/v1/auth/login', false], // right path, wrong method
      ['GET', '/api/v1/admin/dashboard/stats', true], // two levels of nesting
      ['GET', '/api/v1/admin/feature-flags', true],
      ['GET', '/api/v1/admin/feature-flags/', true], // non-strict routing: trailing slash
      ['GET', '/API/V1/ADMIN/FEATURE-FLAGS', true], // case-insensitive by default
      ['GET', '/api/v1/orgs/:orgId/users', true], // a template matches a parameterised mount
      ['GET', '/api/v1/orgs/42/users/:id', true],
      ['DELETE', '/api/v1/orgs/42/users/7/audit', true], // all()
      ['GET', '/api/v1/users', false],
      ['GET', '/status', true],
      ['HEAD', '/status', true],
      ['GET', '/api/v1/admin', false],
      ['GET', '/nope', false],
    ];
    for (const [method, path, expected] of table) {
      it(`${expected ? 'finds' : 'does not find'} ${method} ${path}`, () => {
        expect(hasRoute(app, method, path)).to.equal(expected);
      });
    }

    it('lists every route with its full path', () => {
      const routes = listRoutes(app).map((r) => `${r.method} ${r.path}`);
      expect(routes).to.have.members([
        'POST /api/v1/auth/login',
        'POST /api/v1/auth/refresh',
        'GET /api/v1/admin/dashboard/stats',
        'GET /api/v1/admin/feature-flags',
        'GET /api/v1/orgs/:orgId/users',
        'GET /api/v1/orgs/:orgId/users/:id',
        'ALL /api/v1/orgs/:orgId/users/:id/audit',
        'GET /status',
        'HEAD /status',
      ]);
    });

    it('sees a route that disappears from the table', () => {
      const a = express();
      const r = express.Router();
      r.get('/users', noop);
      a.use('/api', r);
      expect(hasRoute(a, 'GET', '/api/users')).to.equal(true);
      r.stack.length = 0;
      expect(hasRoute(a, 'GET', '/api/users')).to.equal(false);
    });

    it('leaves no match state on the layers', async () => {
      const a = buildApp(express);
      hasRoute(a, 'GET', '/api/v1/orgs/9/users/3');
      // Express still routes real requests correctly afterwards.
      const server = a.listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      const port = (server.address() as { port: number }).port;
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/admin/feature-flags`);
      server.close();
      expect(res.status).to.equal(200);
    });

    it('answers false for things that are not Express apps', () => {
      expect(hasRoute({}, 'GET', '/')).to.equal(false);
      expect(listRoutes(null)).to.deep.equal([]);
    });
  });
}

describe('Express 4 mount path decoding', () => {
  it('recovers static and parameterised mount paths from the compiled regexp', () => {
    expect(decodeExpress4Mount(/^\/api\/v1\/?(?=\/|$)/i, [])).to.equal('/api/v1');
    expect(decodeExpress4Mount(/^\/orgs\/(?:([^\/]+?))\/users\/?(?=\/|$)/i, [{ name: 'orgId' }])).to.equal('/orgs/:orgId/users');
    expect(decodeExpress4Mount(/^\/orgs(?:\/([^/]+?))\/users\/?(?=\/|$)/i, [{ name: 'orgId' }])).to.equal('/orgs/:orgId/users');
    expect(decodeExpress4Mount(/^\/files\/(.*)\/?(?=\/|$)/i, [])).to.equal(undefined);
  });
});
