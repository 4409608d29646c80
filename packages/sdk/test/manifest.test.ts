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
    ['unknown key', VALID.replace('service: shop', 'service: shop\nservise: x'), '', /unknown key\(s\) "servise"/],
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
