/**
 * The built-in checks that need no server of ours: dns, disk, tls (a real TLS
 * server with a certificate made by openssl), the manifest rules around them,
 * safe reasons, and a postgres check in an app without `pg` installed (a real
 * install layout: the repo's packages linked in, `pg` and `redis` left out).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, symlinkSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { trace } from '@opentelemetry/api';
import { Manifest } from '../src/manifest/schema.js';
import { safeReason, scrub, urlSecrets } from '../src/startup/builtin.js';
import { runDependencyChecks, type CheckResult } from '../src/startup/dependencies.js';
import { close, closedPort, listen } from './helpers/servers.js';

const REPO = path.resolve(fileURLToPath(new URL('../../../', import.meta.url)));
const base = new URL('./fixtures/', import.meta.url);
const tracer = trace.getTracer('test');

async function run(checks: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): Promise<Record<string, CheckResult>> {
  const manifest = Manifest.parse({ service: 't', components: { c: { policy: 'degrade', dependencies: checks } } });
  return Object.fromEntries((await runDependencyChecks(manifest, env, base, tracer)).map((r) => [r.check, r]));
}

describe('built-in checks: dns, disk, tls', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'vigil-builtin-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('dns: localhost resolves; a .invalid name (RFC 6761) is reported by name and code', async () => {
    const r = await run({ ok: { type: 'dns', names: ['localhost'] }, bad: { type: 'dns', names: ['localhost', 'vigil-test.invalid'], timeout: '3s' } });
    expect(r.ok!.ok, r.ok!.error).to.equal(true);
    expect(r.bad!.ok).to.equal(false);
    expect(r.bad!.error).to.match(/^does not resolve: vigil-test\.invalid \((ENOTFOUND|EAI_AGAIN)\)$|^timeout after 3s$/);
    expect(r.bad!.target).to.equal('localhost, vigil-test.invalid');
  });

  it('disk: passes over the minimum, fails under it with the free space and the minimum', async () => {
    const r = await run({ ok: { type: 'disk', path: dir, minFree: '1B' }, low: { type: 'disk', path: dir, minFree: '1000000TB' }, share: { type: 'disk', path: dir, minFree: '99.99%' } });
    expect(r.ok!.ok, r.ok!.error).to.equal(true);
    expect(r.low).to.deep.include({ ok: false, errorType: 'VIGIL_DISK_LOW' });
    expect(r.low!.error).to.match(new RegExp(`^[0-9.]+ [KMGTP]?B free on ${dir} \\([0-9.]+% of [0-9.]+ [KMGTP]?B\\), under the 1000000TB minimum$`));
    expect(r.share!.ok).to.equal(false);
  });

  it('disk: a missing path fails with its code; a bad minFree is a manifest error naming the key', async () => {
    const r = await run({ gone: { type: 'disk', path: path.join(dir, 'nope'), minFree: '1MB' } });
    expect(r.gone).to.deep.include({ ok: false, error: `cannot read the file system of ${path.join(dir, 'nope')} (ENOENT)` });
    const bad = Manifest.safeParse({ service: 't', components: { c: { policy: 'degrade', dependencies: { d: { type: 'disk', minFree: '150%' } } } } });
    expect(bad.success).to.equal(false);
    expect(JSON.stringify(bad.error!.issues)).to.contain('expected free space such as \\"500MB\\", \\"2GiB\\" or \\"10%\\"');
  });

  describe('tls, on a real TLS server', () => {
    let server: tls.Server;
    let port: number;
    let caFile: string;
    before(async () => {
      const key = path.join(dir, 'key.pem');
      caFile = path.join(dir, 'cert.pem');
      // A self-signed certificate valid for 3 days, for 127.0.0.1.
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', caFile, '-days', '3', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
      server = tls.createServer({ key: readFileSync(key), cert: readFileSync(caFile) }, (s) => s.end());
      port = await listen(server);
    });
    after(() => close(server));

    it('trusted through caFile: passes over minDays, fails under it with the days left', async () => {
      const url = `https://127.0.0.1:${port}`;
      const r = await run({ ok: { type: 'tls', url, caFile, minDays: 1 }, soon: { type: 'tls', url, caFile } });
      expect(r.ok!.ok, r.ok!.error).to.equal(true);
      expect(r.soon).to.deep.include({ ok: false, errorType: 'VIGIL_CERT_EXPIRING' });
      expect(r.soon!.error).to.match(/^the certificate expires in [23]\.\d days \(under the 14-day minimum\)$/);
    });

    it('not trusted, or nothing listening: the handshake code or "connection refused"', async () => {
      const dead = await closedPort();
      const r = await run({ untrusted: { type: 'tls', url: `https://127.0.0.1:${port}` }, refused: { type: 'tls', url: `https://user:tlspw-secret@127.0.0.1:${dead}` } });
      expect(r.untrusted).to.deep.include({ ok: false, error: 'certificate not accepted (DEPTH_ZERO_SELF_SIGNED_CERT)', errorType: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
      expect(r.refused).to.deep.include({ ok: false, error: 'connection refused', errorType: 'ECONNREFUSED' });
      expect(JSON.stringify(r)).not.to.contain('tlspw-secret');
    });
  });

  it('an optional URL variable that is not set skips the check and says why; a required one fails', async () => {
    const r = await run({ opt: { type: 'postgres', url: { env: 'NO_SUCH_DB_URL', optional: true } }, req: { type: 'redis', url: { env: 'NO_SUCH_REDIS_URL' } } });
    expect(r.opt).to.deep.include({ ok: true, skipped: 'skipped: NO_SUCH_DB_URL is not set', target: '$NO_SUCH_DB_URL' });
    expect(r.req).to.deep.include({ ok: false, error: 'environment variable NO_SUCH_REDIS_URL is not set' });
  });
});

describe('safe reasons', () => {
  it('never carry a URL credential, whatever the driver said', () => {
    const url = 'postgres://app:pa55-W0rd@db:5432/shop?password=other-s3cret';
    const said = new Error(`could not connect to ${url}: password pa55-W0rd rejected, and other-s3cret too; see redis://x:y-secret@cache`);
    const reason = safeReason(said, urlSecrets(url));
    expect(reason.message).not.to.match(/pa55-W0rd|other-s3cret|y-secret/);
    expect(scrub('mysql://root:hunter22@h/db', [])).to.equal('mysql://[redacted]@h/db');
  });

  it('name known codes plainly', () => {
    expect(safeReason(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), []).message).to.equal('connection refused');
    expect(safeReason(Object.assign(new Error('password authentication failed for user "app"'), { code: '28P01' }), []).message).to.equal('password authentication failed');
    expect(safeReason(new Error('WRONGPASS invalid username-password pair or user is disabled.'), []).message).to.equal('password authentication failed');
    expect(safeReason(new AggregateError([Object.assign(new Error('a'), { code: 'ECONNREFUSED' })]), []).message).to.equal('connection refused');
  });
});

describe('drivers are optional', function () {
  this.timeout(60_000);
  it('a postgres check in an app without pg is a ManifestError saying what to install; the SDK still loads', () => {
    // An app whose node_modules has every package of the repo but pg and the Redis client, linked in.
    const app = mkdtempSync(path.join(tmpdir(), 'vigil-nopg-'));
    try {
      const modules = path.join(app, 'node_modules');
      mkdirSync(modules);
      const left = new Set(['pg', 'pg-pool', 'pg-protocol', 'pg-types', 'pg-connection-string', 'pgpass', 'pg-cloudflare', 'redis', '@redis']);
      for (const entry of readdirSync(path.join(REPO, 'node_modules'))) {
        if (!left.has(entry) && !entry.startsWith('.')) symlinkSync(path.join(REPO, 'node_modules', entry), path.join(modules, entry));
      }
      writeFileSync(path.join(app, 'vigil.yaml'), 'service: nopg\ncomponents:\n  database:\n    policy: fail-fast\n    dependencies:\n      postgres: { type: postgres, url: { env: DATABASE_URL } }\n');
      writeFileSync(
        path.join(app, 'main.mjs'),
        "import { loadManifest, ManifestError } from '@vigil/sdk';\ntry { await loadManifest('vigil.yaml'); console.log('loaded'); } catch (e) { console.log(e instanceof ManifestError ? e.message : `other: ${e}`); }\n",
      );
      // --preserve-symlinks: modules are found from the app's node_modules, as in a real install.
      const r = spawnSync(process.execPath, ['--preserve-symlinks', 'main.mjs'], { cwd: app, encoding: 'utf8' });
      expect(r.stderr).to.equal('');
      expect(r.stdout).to.contain(`Invalid Vigil manifest ${path.join(app, 'vigil.yaml')}`);
      expect(r.stdout).to.contain('components.database.dependencies.postgres.type: a "postgres" check needs the "pg" package, which is not installed: run `npm install pg` in the app');
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  });

  it('pg and redis are imported on a check\'s first run, not when the SDK loads nor when the manifest is read', () => {
    // A resolve hook (node:module register) logs every module of pg and node-redis that is loaded.
    const dir = mkdtempSync(path.join(tmpdir(), 'vigil-lazy-'));
    try {
      const log = path.join(dir, 'loaded.txt');
      writeFileSync(log, '');
      writeFileSync(
        path.join(dir, 'hooks.mjs'),
        `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { const r = await next(s, c); if (/node_modules\\/(pg|redis|@redis)\\//.test(r.url)) appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }\n`,
      );
      writeFileSync(path.join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(path.join(dir, 'hooks.mjs')).href)});\n`);
      const main = [
        "import { readFileSync } from 'node:fs';",
        "const { loadManifest } = await import('@vigil/sdk');",
        "const { runDependencyChecks } = await import('./packages/sdk/dist/startup/dependencies.js');",
        "const { trace } = await import('@opentelemetry/api');",
        "const loaded = await loadManifest({ service: 't', components: { c: { policy: 'degrade', dependencies: { db: { type: 'postgres', url: 'postgres://u:p@127.0.0.1:1/x' }, r: { type: 'redis', url: 'redis://127.0.0.1:1' } } } } });",
        `const before = readFileSync(${JSON.stringify(log)}, 'utf8').trim().split('\\n').filter(Boolean).length;`,
        "await runDependencyChecks(loaded.manifest, {}, loaded.baseUrl, trace.getTracer('t'));",
        `const after = readFileSync(${JSON.stringify(log)}, 'utf8').trim().split('\\n').filter(Boolean).length;`,
        'console.log(JSON.stringify({ before, after }));',
      ].join('\n');
      writeFileSync(path.join(REPO, `.lazy-${process.pid}.mjs`), main);
      try {
        const r = spawnSync(process.execPath, ['--import', pathToFileURL(path.join(dir, 'register.mjs')).href, `.lazy-${process.pid}.mjs`], { cwd: REPO, encoding: 'utf8' });
        expect(r.status, r.stderr).to.equal(0);
        const counts = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { before: number; after: number };
        expect(counts.before, r.stderr).to.equal(0);
        expect(counts.after, 'the first run loads the drivers (so the hook does see them)').to.be.above(0);
      } finally {
        rmSync(path.join(REPO, `.lazy-${process.pid}.mjs`), { force: true });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
