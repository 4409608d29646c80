import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ManifestError } from '../src/errors.js';
import { loadManifest, parseManifestText } from '../src/manifest/load.js';
import { routerName } from '../src/manifest/schema.js';
import { manifestErrorOf } from './helpers/manifest.js';

const VALID = `
service: shop
components:
  auth:
    policy: fail-fast
    routers: [{ module: ./routers/auth.js, mount: /api/auth }]
    endpoints:
      - POST /api/auth/login
      - method: get
        route: /api/auth/me
        probe: { expect: { status: [200, 401] }, timeout: 750ms }
    dependencies:
      secrets: { type: env, vars: [JWT_SECRET] }
      db: { type: tcp, url: { env: DATABASE_URL }, timeout: 2s }
`;

describe('manifest', () => {
  it('parses a valid manifest, applying defaults and shorthands', () => {
    const m = parseManifestText(VALID, 'vigil.yaml');
    const auth = m.components.auth!;
    expect(auth.endpoints[0]).to.deep.include({ method: 'POST', route: '/api/auth/login' });
    expect(auth.endpoints[0]!.probe.expect.status).to.equal(undefined); // the probe's default: 2xx or 3xx
    expect(auth.endpoints[0]!.probe.params).to.deep.equal({});
    expect(auth.endpoints[0]!.probe.auth).to.equal(false);
    expect(auth.endpoints[0]!.probe.timeout).to.equal(5000);
    expect(auth.endpoints[1]).to.deep.include({ method: 'GET', route: '/api/auth/me' });
    expect(auth.endpoints[1]!.probe.timeout).to.equal(750);
    expect(auth.dependencies.db!.timeout).to.equal(2000);
    expect(auth.businessCritical).to.equal(false);
    expect(m.health).to.deep.include({ path: '/health', readyPath: '/ready', allowLoopback: true });
    expect(m.shutdown.drainDelay).to.equal(3000);
  });

  // One row per bad input: what is wrong, the path the error must name, words it must contain.
  const cases: Array<[string, string, string, RegExp]> = [
    ['policy typo', VALID.replace('fail-fast', 'fail_fast'), 'components.auth.policy', /"fail-fast"\|"degrade".*got "fail_fast"/],
    ['unknown key', VALID.replace('service: shop', 'service: shop\nservise: x'), '', /unknown key "servise": expected one of "service", "version"/],
    ['bad duration', VALID.replace('750ms', '750 msec'), 'components.auth.endpoints.1.probe.timeout', /expected a duration/],
    ['bad method', VALID.replace('method: get', 'method: FETCH'), 'components.auth.endpoints.1.method', /expected one of/],
    ['route without slash', VALID.replace('route: /api/auth/me', 'route: api/auth/me'), 'components.auth.endpoints.1.route', /starting with "\/"/],
    ['no components', 'service: shop\ncomponents: {}\n', 'components', /at least one component/],
    ['missing service', VALID.replace('service: shop', ''), 'service', /expected string/],
    ['env var name', VALID.replace('[JWT_SECRET]', '["JWT SECRET"]'), 'components.auth.dependencies.secrets.vars.0', /environment variable name/],
    ['unknown check type', VALID.replace('type: tcp', 'type: smtp'), 'components.auth.dependencies.db.type', /Expected 'env' \| 'tcp'.*got "smtp"/],
    ['tcp without target', VALID.replace('url: { env: DATABASE_URL }, ', ''), 'components.auth.dependencies.db', /"host" and "port", or "url"/],
    ['status out of range', VALID.replace('[200, 401]', '[200, 999]'), 'components.auth.endpoints.1.probe.expect.status.1', /<=599|599/],
    ['component name', VALID.replace('  auth:', '  Auth Service:'), 'components.Auth Service', /lowercase name/],
    [
      'duplicate endpoint',
      VALID.replace('      - POST /api/auth/login', '      - POST /api/auth/login\n      - POST /api/auth/login'),
      'components.auth.endpoints.1',
      /already declared by component "auth"/,
    ],
    ['router without module', VALID.replace('module: ./routers/auth.js, ', ''), 'components.auth.routers.0', /exactly one of "module" or "load"/],
  ];
  for (const [name, text, where, words] of cases) {
    it(`rejects ${name}, naming the file, the path and the expectation`, () => {
      const err = manifestErrorOf(text);
      const issue = err.issues.find((i) => i.path === where);
      expect(issue, `an issue at "${where}" in:\n${err.message}`).to.exist;
      expect(issue!.message).to.match(words);
      expect(err.message).to.contain('vigil.yaml');
    });
  }

  it('gives the line and column of the bad value', () => {
    const err = manifestErrorOf(VALID.replace('fail-fast', 'sometimes'));
    const issue = err.issues.find((i) => i.path === 'components.auth.policy')!;
    expect(issue.line).to.equal(5);
    expect(issue.column).to.equal(13);
    expect(err.message).to.contain('vigil.yaml:5:13 components.auth.policy');
  });

  it('reports YAML syntax errors with their position', () => {
    const err = manifestErrorOf('service: [shop\ncomponents:\n');
    expect(err.issues[0]!.message).to.match(/not valid YAML/);
    expect(err.issues[0]!.line).to.be.a('number');
  });

  it('puts an unknown key at its own line and column, one issue per key, not at the object holding it', () => {
    const text = `${VALID}shutdown:\n  drainDelay: 1s\n  drain: 2s\n  timout: 5s\n`;
    const err = manifestErrorOf(text);
    const lines = text.split('\n');
    const drain = err.issues.find((i) => /unknown key "drain"/.test(i.message))!;
    const timout = err.issues.find((i) => /unknown key "timout"/.test(i.message))!;
    expect(drain.path).to.equal('shutdown');
    expect(lines[drain.line! - 1]).to.equal('  drain: 2s');
    expect(drain.column).to.equal(3);
    expect(lines[timout.line! - 1]).to.equal('  timout: 5s');
    expect(drain.message).to.equal('unknown key "drain": expected one of "signals", "drainDelay", "timeout"');
    // Deep inside a list too: the key of the router item, not the item.
    const withMout = VALID.replace('mount: /api/auth }', 'mount: /api/auth, mout: /x }');
    const issue = manifestErrorOf(withMout).issues.find((i) => /unknown key "mout"/.test(i.message))!;
    expect(issue.path).to.equal('components.auth.routers.0');
    expect(issue.line).to.equal(6);
    expect(issue.column).to.equal(withMout.split('\n')[5]!.indexOf('mout') + 1);
  });

  it('reports a YAML syntax error whole: the library\'s message and the excerpt, no dangling "at line …:"', () => {
    const err = manifestErrorOf('service: s\ncomponents:\n  api:\n    policy degrade\n    routers: []\n');
    const issue = err.issues[0]!;
    expect(issue).to.include({ line: 4, column: 5 });
    expect(issue.message.split('\n')[0]).to.equal('not valid YAML: Implicit keys need to be on a single line');
    expect(issue.message).to.contain('policy degrade\n').and.match(/\n\s+\^/);
    for (const line of err.message.split('\n').filter((l) => l.includes('✖'))) expect(line).not.to.match(/:\s*$|at line \d+/);
  });

  it('reports schema errors and cross-checks together, in the order of the file', () => {
    const text = VALID.replace('fail-fast', 'sometimes') + '  shop:\n    policy: degrade\n    endpoints: [POST /api/auth/login]\n';
    const err = manifestErrorOf(text);
    expect(err.issues.map((i) => i.path)).to.deep.equal(['components.auth.policy', 'components.shop.endpoints.0']);
    expect(err.issues[1]!.message).to.equal('endpoint "POST /api/auth/login" is already declared by component "auth"');
    expect(err.issues[1]!.line).to.equal(text.split('\n').indexOf('    endpoints: [POST /api/auth/login]') + 1);
  });

  it('reports schema errors and cross-checks together for an object manifest too', async () => {
    const err = await loadManifest({
      service: 'x',
      components: { a: { policy: 'sometimes', endpoints: ['GET /a'] }, b: { policy: 'degrade', endpoints: ['GET /a', 42] } },
    } as never).catch((e: unknown) => e);
    expect((err as ManifestError).issues.map((i) => i.path)).to.have.members(['components.a.policy', 'components.b.endpoints.1', 'components.b.endpoints.0']);
    expect((err as ManifestError).message).to.contain('endpoint "GET /a" is already declared by component "a"');
  });

  it('takes the import timeout from startup.importTimeout (default 10s) and lets a router set its own', () => {
    expect(parseManifestText(VALID, 'vigil.yaml').startup.importTimeout).to.equal(10_000);
    const m = parseManifestText(`${VALID.replace('mount: /api/auth }', 'mount: /api/auth, importTimeout: 30s }')}startup:\n  importTimeout: 2s\n`, 'vigil.yaml');
    expect(m.startup.importTimeout).to.equal(2000);
    expect(m.components.auth!.routers[0]!.importTimeout).to.equal(30_000);
    const err = manifestErrorOf(`${VALID}startup:\n  importTimeout: 0\n`);
    expect(err.issues[0]).to.include({ path: 'startup.importTimeout', message: 'expected a duration over 0 (e.g. "500ms")' });
  });

  it('rejects duplicate keys instead of keeping the last one', () => {
    const err = manifestErrorOf(VALID.replace('  auth:\n', '  auth:\n    policy: degrade\n'));
    expect(err.message).to.match(/not valid YAML.*[Mm]ap keys must be unique/);
  });

  it('names a file that cannot be read', async () => {
    const err = await loadManifest('/nonexistent/vigil.yaml').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(ManifestError);
    expect((err as ManifestError).message).to.contain('/nonexistent/vigil.yaml').and.contain('ENOENT');
  });

  it('loads a file and resolves the base URL from its location', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vigil-manifest-'));
    const file = path.join(dir, 'vigil.yaml');
    await writeFile(file, VALID);
    try {
      const loaded = await loadManifest(file);
      expect(loaded.source).to.equal(file);
      expect(new URL('./routers/auth.js', loaded.baseUrl).pathname).to.equal(path.join(dir, 'routers/auth.js'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('validates object manifests the same way, naming <object>', async () => {
    const err = await loadManifest({ service: 'x', components: { a: { policy: 'sometimes' } } } as never).catch((e: unknown) => e);
    expect((err as ManifestError).message).to.match(/<object>[\s\S]*components\.a\.policy/);
    const ok = await loadManifest({ service: 'x', components: { a: { policy: 'degrade', routers: [{ name: 'r', load: () => ({}) }] } } });
    expect(ok.manifest.components.a!.routers[0]!.mount).to.equal('/');
  });

  it('names routers after their module file', () => {
    expect(routerName({ module: './dist/routers/user_management.js' })).to.equal('user_management');
    expect(routerName({ module: 'pkg/routes.cjs', name: 'billing' })).to.equal('billing');
  });
});
