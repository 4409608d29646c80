import { expect } from 'chai';
import { detailedBody } from '../src/health/health-json.js';
import { Manifest } from '../src/manifest/schema.js';
import type { CheckResult } from '../src/startup/dependencies.js';
import { decide, formatReport, type EndpointResult } from '../src/startup/report.js';
import type { RouterResult } from '../src/startup/routers.js';

const manifest = Manifest.parse({
  service: 'api',
  components: {
    authentication: { policy: 'fail-fast', businessCritical: true, routers: [{ module: './auth.js' }], endpoints: ['POST /auth/login'] },
    admin: { policy: 'degrade', businessCritical: true, routers: [{ module: './admin.js' }], endpoints: ['GET /admin/flags'] },
    database: { policy: 'fail-fast', dependencies: { pg: { type: 'tcp', host: 'db', port: 5432 } } },
    cache: { policy: 'degrade', dependencies: { redis: { type: 'tcp', host: 'redis', port: 6379 } } },
  },
});

type Faults = { router?: string[]; noRoutes?: string[]; missing?: string[]; check?: string[] };

function endpoint(component: string, method: EndpointResult['method'], route: string, f: Faults): EndpointResult {
  const missing = f.missing?.includes(route);
  return { component, method, route, registered: !missing, verdict: missing ? 'missing' : 'registered' };
}

function inputs(f: Faults) {
  const routers: RouterResult[] = [
    ['authentication', 'auth'],
    ['admin', 'admin'],
  ].map(([component, router]) => ({
    component: component!,
    policy: manifest.components[component!]!.policy,
    router: router!,
    module: `./${router}.js`,
    mount: '/',
    mounts: ['/'],
    outcome: f.router?.includes(router!) ? 'failed' : f.noRoutes?.includes(router!) ? 'no_routes' : 'success',
    routeCount: f.router?.includes(router!) ? 0 : 1,
    ...(f.router?.includes(router!) ? { errorType: 'ERR_MODULE_NOT_FOUND', error: 'Cannot find module' } : {}),
    durationMs: 1,
  }));
  const endpoints: EndpointResult[] = [
    endpoint('authentication', 'POST', '/auth/login', f),
    endpoint('admin', 'GET', '/admin/flags', f),
  ];
  const checks: CheckResult[] = [
    ['database', 'pg'],
    ['cache', 'redis'],
  ].map(([component, check]) => ({
    component: component!,
    policy: manifest.components[component!]!.policy,
    check: check!,
    type: 'tcp',
    target: 'x:1',
    group: manifest.components[component!]!.policy === 'fail-fast' ? 'ready' : 'detailed',
    ok: !f.check?.includes(check!),
    ...(f.check?.includes(check!) ? { error: 'refused', errorType: 'ECONNREFUSED' } : {}),
    durationMs: 2,
  }));
  return { manifest, routers, endpoints, checks, routeCount: 2, startedAt: new Date(0), durationMs: 10 };
}

describe('decision matrix', () => {
  // One row per fault: the overall status, ok (may take traffic), and each component's status.
  const table: Array<[string, Faults, 'pass' | 'warn' | 'fail', Record<string, string>]> = [
    ['healthy', {}, 'pass', { authentication: 'pass', admin: 'pass', database: 'pass', cache: 'pass' }],
    ['auth router import fails', { router: ['auth'], missing: ['/auth/login'] }, 'fail', { authentication: 'fail', admin: 'pass' }],
    ['admin router import fails', { router: ['admin'], missing: ['/admin/flags'] }, 'warn', { authentication: 'pass', admin: 'warn' }],
    // A router with no routes (yet) is mounted and warns; its declared endpoints, if missing, fail on their own.
    ['auth router loads but registers nothing (yet)', { noRoutes: ['auth'] }, 'warn', { authentication: 'warn' }],
    ['auth router registers nothing and its route is missing', { noRoutes: ['auth'], missing: ['/auth/login'] }, 'fail', { authentication: 'fail' }],
    ['auth route missing though its router loaded', { missing: ['/auth/login'] }, 'fail', { authentication: 'fail' }],
    ['database down', { check: ['pg'] }, 'fail', { database: 'fail', cache: 'pass' }],
    ['cache down', { check: ['redis'] }, 'warn', { database: 'pass', cache: 'warn' }],
    ['cache and admin down', { check: ['redis'], router: ['admin'] }, 'warn', { cache: 'warn', admin: 'warn', authentication: 'pass' }],
    ['cache and database down', { check: ['redis', 'pg'] }, 'fail', { cache: 'warn', database: 'fail' }],
  ];
  for (const [name, faults, status, components] of table) {
    it(`${name} → ${status}`, () => {
      const report = decide(inputs(faults));
      expect(report.status).to.equal(status);
      expect(report.ok).to.equal(status !== 'fail');
      for (const [c, s] of Object.entries(components)) {
        expect(report.components.find((x) => x.name === c)!.status, c).to.equal(s);
      }
    });
  }

  it('explains why, one reason per fault, and lists the missing endpoints', () => {
    const report = decide(inputs({ router: ['admin'], missing: ['/admin/flags'], check: ['redis'] }));
    expect(report.components.find((c) => c.name === 'admin')!.reasons).to.deep.equal([
      'router admin failed to import: ERR_MODULE_NOT_FOUND: Cannot find module',
      'route GET /admin/flags is not registered',
    ]);
    expect(report.missingEndpoints).to.deep.equal(['GET /admin/flags']);
    const text = formatReport(report);
    expect(text).to.contain('starting DEGRADED');
    expect(text).to.contain('[WARN] admin (degrade, business-critical)');
    expect(text).to.contain('MISSING GET /admin/flags');
    expect(text).to.contain('FAILED  tcp redis → x:1: refused');
  });
});

describe('health+json bodies', () => {
  const meta = { service: 'api', version: '1.0.0' };

  it('a degraded component is warn, lists the missing routes in affectedEndpoints, and keys checks component:measurement', () => {
    const report = decide(inputs({ router: ['admin'], missing: ['/admin/flags'] }));
    const body = detailedBody(report, 'ready', meta);
    expect(body.status).to.equal('warn');
    expect(body.affectedEndpoints).to.deep.equal(['GET /admin/flags']);
    expect(Object.keys(body.checks)).to.include.members(['admin:router-import', 'admin:routes', 'authentication:routes', 'database:pg', 'cache:redis']);
    expect(body.checks['admin:routes']![0]).to.deep.include({ status: 'warn', observedValue: 0, affectedEndpoints: ['GET /admin/flags'] });
    expect(body.checks['admin:router-import']![0]).to.deep.include({ status: 'warn', observedValue: 'failed' });
    expect(body.checks['authentication:routes']![0]!.status).to.equal('pass');
  });

  it('a failing fail-fast component makes the body fail', () => {
    const body = detailedBody(decide(inputs({ check: ['pg'] })), 'failed', meta);
    expect(body.status).to.equal('fail');
    expect(body.checks['database:pg']![0]).to.deep.include({ status: 'fail', output: 'refused' });
  });

  it('the business-critical view holds only business-critical components', () => {
    const body = detailedBody(decide(inputs({ check: ['pg'] })), 'failed', meta, (c) => c.businessCritical);
    expect(body.status).to.equal('pass'); // the database is not business-critical in this manifest
    expect(Object.keys(body.checks).every((k) => k.startsWith('authentication:') || k.startsWith('admin:'))).to.equal(true);
  });

  it('before validation there is nothing to vouch for: fail', () => {
    expect(detailedBody(undefined, 'starting', meta)).to.deep.include({ status: 'fail', description: 'startup validation has not finished' });
  });

  it('draining turns a pass into warn with a note', () => {
    const body = detailedBody(decide(inputs({})), 'draining', meta);
    expect(body.status).to.equal('warn');
    expect(body.notes).to.deep.equal(['shutting down: not ready for new traffic']);
  });
});
