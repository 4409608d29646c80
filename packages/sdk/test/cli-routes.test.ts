/**
 * `vigil routes` and `vigil diff` as a pipeline runs them: child processes on
 * the fixture app (test/fixtures/route-table: app.mjs and vigil.yaml), with
 * their real exit codes. Release 2 of the app (FIXTURE_RELEASE=2) removes one
 * route by mistake, one on purpose (the manifest's removedRoutes), changes the
 * method of another and renames a fourth; the snapshots diffed are the ones
 * `vigil routes --json` wrote for each release.
 */
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { RouteSnapshot } from '../src/startup/route-table.js';
import { diffRoutes, readSnapshot, SnapshotError } from '../src/startup/route-diff.js';
import { runVigil } from './helpers/cli.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/route-table/', import.meta.url));
const vigil = (args: string[], env: NodeJS.ProcessEnv = {}) => runVigil(args, { FIXTURE_RELEASE: '1', ...env }, FIXTURE);

describe('vigil routes', function () {
  this.timeout(60_000);

  it('--json prints a versioned snapshot of every route, and exits 0', async () => {
    const r = await vigil(['routes', '--app', 'app.mjs', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    const snapshot = RouteSnapshot.parse(JSON.parse(r.stdout));
    expect(snapshot).to.include({ vigilRoutes: 1, service: 'fixture-shop', version: '1.0.0', total: 16, more: 0 });
    expect(Date.now() - Date.parse(snapshot.generatedAt)).to.be.within(0, 60_000);
    const row = (key: string) => snapshot.routes.find((x) => `${x.method} ${x.path}` === key);
    expect(row('GET /api/items/:id')).to.deep.include({ component: 'catalog', router: 'api', declared: true, verdict: 'registered', source: './api.mjs' });
    expect(row('GET /orders')).to.deep.include({ component: 'orders', declared: true, verdict: 'registered' });
    expect(row('GET /legacy/report')).to.deep.include({ declared: false, verdict: 'registered' });
    expect(row('GET /legacy/report')).not.to.have.property('component');
    expect(row('GET /health/routes')).to.deep.include({ exempt: 'health' });
  });

  it('a CommonJS app on Express 4 (--app app.cjs) with CommonJS routers: the same table', async () => {
    const r = await vigil(['routes', '--manifest', 'cjs.yaml', '--app', 'app.cjs', '--json']);
    expect(r.code, r.stderr).to.equal(0);
    const snapshot = RouteSnapshot.parse(JSON.parse(r.stdout));
    expect(snapshot).to.include({ service: 'fixture-shop-cjs', total: 13, more: 0 });
    expect(snapshot).not.to.have.property('version');
    expect(snapshot.routes.slice(5).map((x) => [x.method, x.path, x.component ?? '-', x.declared, x.source ?? '-'])).to.deep.equal([
      ['GET', '/api/items', 'catalog', true, './api.cjs'],
      ['GET', '/api/items/:id', 'catalog', false, './api.cjs'],
      ['POST', '/api/items', 'catalog', false, './api.cjs'],
      ['ALL', '/api/any', 'catalog', false, './api.cjs'],
      ['GET', '/api/admin/stats', 'catalog', false, './api.cjs'],
      ['DELETE', '/api/admin/cache', 'catalog', false, './api.cjs'],
      ['GET', '/api/sub/ping', 'catalog', false, './api.cjs'],
      ['GET', '/legacy/report', '-', false, '-'],
    ]);
  });

  it('prints the table in aligned columns', async () => {
    const r = await vigil(['routes', '--app', 'app.mjs']);
    expect(r.code, r.stderr).to.equal(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).to.equal('Routes of fixture-shop 1.0.0');
    const header = lines[1]!;
    const at = (name: string) => header.indexOf(name);
    const items = lines.find((l) => l.startsWith('GET     /api/items/:id '))!;
    expect(items.slice(at('COMPONENT'), at('DECLARED')).trim()).to.equal('catalog');
    expect(items.slice(at('DECLARED'), at('VERDICT')).trim()).to.equal('yes');
    expect(items.slice(at('SOURCE'), at('ANSWERED BY')).trim()).to.equal('./api.mjs');
    expect(lines.find((l) => l.startsWith('POST    /api/items '))!.slice(at('DECLARED'), at('VERDICT')).trim()).to.equal('NO');
    expect(lines.at(-1)).to.equal('16 routes, 5 declared, 6 undocumented');
  });

  it('exits 2 on a bad manifest or a bad option, 4 when the app module throws', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vigil-routes-'));
    try {
      await writeFile(path.join(dir, 'vigil.yaml'), 'service: s\ncomponents:\n  api:\n    policy: degrade\nundocumentedRoutes:\n  policy: loud\n');
      const bad = await runVigil(['routes'], {}, dir);
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.contain(`${path.join(dir, 'vigil.yaml')}:6:11 undocumentedRoutes.policy`);
      await writeFile(path.join(dir, 'throws.mjs'), 'export function createApp() { throw new Error("no database"); }\n');
      await writeFile(path.join(dir, 'vigil.yaml'), 'service: s\ncomponents:\n  api:\n    policy: degrade\n');
      const throws = await runVigil(['routes', '--app', 'throws.mjs'], {}, dir);
      expect(throws.code).to.equal(4);
      expect(throws.stderr).to.contain('vigil routes: no database');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const usage = await vigil(['routes', '--frobnicate']);
    expect(usage.code).to.equal(2);
    expect(usage.stderr).to.contain('Usage: vigil routes');
  });
});

describe('vigil diff', function () {
  this.timeout(120_000); // child processes: a loaded CI machine takes seconds for each
  let dir: string;
  let v1: string;
  let v2: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'vigil-diff-'));
    v1 = path.join(dir, 'v1.json');
    v2 = path.join(dir, 'v2.json');
    for (const [release, file] of [['1', v1], ['2', v2]] as const) {
      const r = await vigil(['routes', '--app', 'app.mjs', '--json'], { FIXTURE_RELEASE: release });
      expect(r.code, r.stderr).to.equal(0);
      await writeFile(file, r.stdout);
    }
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const EXPECTED = {
    removed: [
      { route: 'GET /legacy/report', pathRemains: false },
      { route: 'GET /old/export', pathRemains: false, intended: 'replaced by GET /api/items' },
      { route: 'GET /orders', component: 'orders', pathRemains: true },
      { route: 'GET /clients/:id', pathRemains: false },
    ],
    added: [
      { route: 'POST /orders', pathExisted: true },
      { route: 'GET /customers/:id', pathExisted: false },
    ],
    changed: [{ kind: 'methods', path: '/orders', before: ['GET'], after: ['POST'] }],
    unintended: ['GET /legacy/report', 'GET /orders', 'GET /clients/:id'],
  };

  it('two snapshots: removed, renamed (removed + added), method changed and an intended removal; exit 1 on the unintended ones', async () => {
    const r = await vigil(['diff', v1, v2, '--json']);
    expect(r.code, r.stderr).to.equal(1);
    const d = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(d).to.deep.include(EXPECTED);
    expect(d.old).to.match(/v1\.json \(fixture-shop 1\.0\.0, /);

    const text = await vigil(['diff', v1, v2]);
    expect(text.code).to.equal(1);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines.slice(1)).to.deep.equal([
      'Removed (3):',
      '  GET /legacy/report  REMOVED',
      '  GET /old/export  intended: replaced by GET /api/items',
      '  GET /clients/:id  REMOVED',
      'Added (1):',
      '  GET /customers/:id',
      'Changed (1):',
      '  /orders: methods GET → POST  (GET REMOVED)',
      'Note: a renamed route shows as removed + added.',
      'FAIL: 3 routes removed that the manifest does not list in removedRoutes: GET /legacy/report, GET /orders, GET /clients/:id',
    ]);
  });

  it('the app as it is now against a snapshot: the same diff, the same exit code', async () => {
    const r = await vigil(['diff', v1, '--app', 'app.mjs', '--json'], { FIXTURE_RELEASE: '2' });
    expect(r.code, r.stderr).to.equal(1);
    const d = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(d).to.deep.include(EXPECTED);
    expect(d.new).to.equal('the app now (fixture-shop 1.0.0)');
    // Nothing changed since the snapshot: exit 0.
    const same = await vigil(['diff', v1, '--app', 'app.mjs']);
    expect(same.code, same.stderr).to.equal(0);
    expect(same.stdout.trimEnd().split('\n').at(-1)).to.equal('OK: nothing removed');
  });

  it('every removal intended in the manifest: exit 0, each shown as intended', async () => {
    const manifest = path.join(dir, 'intended.yaml');
    const base = await readFile(path.join(FIXTURE, 'vigil.yaml'), 'utf8');
    await writeFile(
      manifest,
      `${base}  - route: GET /legacy/report\n    reason: nobody calls it\n  - route: get /orders\n    reason: POST now\n  - route: GET /clients/:id\n    reason: renamed to /customers/:id\n`,
    );
    const r = await vigil(['diff', v1, v2, '--manifest', manifest]);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.contain('  GET /clients/:id  intended: renamed to /customers/:id');
    expect(r.stdout).to.contain('  /orders: methods GET → POST  (GET intended: POST now)');
    expect(r.stdout.trimEnd().split('\n').at(-1)).to.equal('OK: nothing removed unintentionally');
  });

  it('exits 2 on a snapshot it cannot use, naming the file and what is wrong', async () => {
    const write = async (name: string, text: string) => {
      const file = path.join(dir, name);
      await writeFile(file, text);
      return file;
    };
    const good = JSON.parse(await readFile(v1, 'utf8')) as Record<string, unknown> & { routes: Array<Record<string, unknown>> };
    const cases: Array<[string, string]> = [
      [await write('garbage.json', '{"vigilRoutes": 1,'), 'garbage.json: not JSON ('],
      [await write('v9.json', JSON.stringify({ ...good, vigilRoutes: 9 })), 'v9.json: vigilRoutes: expected 1: the snapshot format this vigil reads'],
      [await write('method.json', JSON.stringify({ ...good, routes: [good.routes[0], { ...good.routes[1], method: 'get it' }] })), 'method.json: routes.1.method: expected an upper-case HTTP method such as "GET" (or "ALL")'],
      [await write('cut.json', JSON.stringify({ ...good, total: 20_017, more: 20_000 })), 'cut.json: the snapshot is cut short (20000 of 20017 routes not in it): a diff needs every route'],
      [await write('array.json', '[]'), 'array.json: (the document): '],
      [path.join(dir, 'absent.json'), 'absent.json: cannot read it: ENOENT'],
    ];
    // Each read as a snapshot; through the command, two of them (as OLD and as NEW).
    for (const [file, message] of cases) {
      const err = await readSnapshot(file).then(() => undefined, (e: unknown) => e);
      expect(err, file).to.be.instanceOf(SnapshotError);
      expect((err as Error).message).to.contain(path.join(dir, message));
    }
    for (const args of [[cases[0]![0], v2], [v1, cases[2]![0]]]) {
      const r = await vigil(['diff', ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).to.equal(2);
      expect(r.stderr).to.contain(`vigil diff: ${args.includes(cases[0]![0]) ? path.join(dir, cases[0]![1]) : path.join(dir, cases[2]![1])}`);
      expect(r.stdout).to.equal('');
    }
  });

  it('exits 2 on usage errors', async () => {
    for (const args of [[], [v1, v2, v2], [v1, v2, '--app', 'app.mjs'], [v1, '--bogus']]) {
      const r = await vigil(['diff', ...args]);
      expect(r.code, args.join(' ')).to.equal(2);
      expect(r.stderr).to.contain('Usage: vigil diff');
    }
  });
});

describe('diffRoutes', () => {
  const row = (method: string, path: string, component?: string) => ({ method, path, declared: true, verdict: 'registered' as const, ...(component ? { component } : {}) });

  it('a route that moves to another component is a change, not a removal', () => {
    const d = diffRoutes([row('GET', '/a', 'one'), row('GET', '/b')], [row('GET', '/a', 'two'), row('GET', '/b', 'two')]);
    expect(d.changed).to.deep.equal([
      { kind: 'component', route: 'GET /a', before: 'one', after: 'two' },
      { kind: 'component', route: 'GET /b', after: 'two' },
    ]);
    expect(d.removed).to.deep.equal([]);
    expect(d.unintended).to.deep.equal([]);
  });

  it('an added method is an addition on an existing path; nothing is removed', () => {
    const d = diffRoutes([row('GET', '/a')], [row('GET', '/a'), row('DELETE', '/a')]);
    expect(d.added).to.deep.equal([{ route: 'DELETE /a', pathExisted: true }]);
    expect(d.changed).to.deep.equal([{ kind: 'methods', path: '/a', before: ['GET'], after: ['GET', 'DELETE'] }]);
    expect(d.unintended).to.deep.equal([]);
  });
});
