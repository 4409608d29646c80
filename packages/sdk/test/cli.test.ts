import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { runVigil } from './helpers/cli.js';

const EXAMPLE = fileURLToPath(new URL('../../../examples/marketedge-api/', import.meta.url));

/** Runs `vigil …` in `cwd` (the example by default) with no demo fault unless asked. */
const vigil = (args: string[], env: NodeJS.ProcessEnv = {}, cwd = EXAMPLE) => runVigil(args, { VIGIL_DEMO_BREAK: '', ...env }, cwd);

describe('vigil preflight', function () {
  this.timeout(40_000);

  it('exits 0 and prints the report when everything passes', async () => {
    const r = await vigil(['preflight', '--app', 'dist/app.js']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.contain('marketedge-api: all components pass');
  });

  it('exits 0 on a degraded start, 1 with --strict', async () => {
    const r = await vigil(['preflight'], { VIGIL_DEMO_BREAK: 'admin' });
    expect(r.code).to.equal(0);
    expect(r.stdout).to.contain('[WARN] admin (degrade, business-critical)');
    expect(r.stdout).to.contain('MISSING GET /api/v1/admin/feature-flags');
    expect((await vigil(['preflight', '--strict'], { VIGIL_DEMO_BREAK: 'admin' })).code).to.equal(1);
  });

  it('exits 1 on a fail-fast failure, and --json gives the report to machines', async () => {
    const r = await vigil(['preflight', '--json', '--app', 'dist/app.js'], { VIGIL_DEMO_BREAK: 'auth,database' });
    expect(r.code).to.equal(1);
    const report = JSON.parse(r.stdout) as { ok: boolean; status: string; missingEndpoints: string[]; components: Array<{ name: string; status: string }> };
    expect(report).to.include({ ok: false, status: 'fail' });
    expect(report.missingEndpoints).to.deep.equal(['POST /api/v1/auth/login', 'POST /api/v1/auth/refresh']);
    expect(report.components.filter((c) => c.status === 'fail').map((c) => c.name)).to.deep.equal(['authentication', 'database']);
  });

  it("lists the example's opted-in unsafe probes as warnings, in the text and in --json", async () => {
    const r = await vigil(['preflight', '--app', 'dist/app.js']);
    const probes = r.stdout.slice(r.stdout.indexOf('\nProbes:\n') + 1).trimEnd().split('\n');
    expect(probes[0]).to.equal('Probes:');
    expect(probes.slice(1).map((l) => l.replace(/:.*/, ''))).to.deep.equal([
      '  WARNING authentication',
      '  WARNING authentication',
      '  WARNING admin',
      '  WARNING organisations',
      '  WARNING organisations',
    ]);
    expect(probes[1]).to.equal('  WARNING authentication: the probe of POST /api/v1/auth/login sends POST (probe.unsafe): it must create nothing, and a rate limiter must skip it (guard.isProbe)');
    const json = JSON.parse((await vigil(['preflight', '--json', '--app', 'dist/app.js'])).stdout) as { probes: { warnings: string[]; notProbed: string[] } };
    expect(json.probes.warnings).to.deep.equal(probes.slice(1).map((l) => l.replace(/^ {2}WARNING /, '')));
    expect(json.probes.notProbed).to.deep.equal([]);
  });

  it('exits 2 on a bad manifest, naming the file and the path', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vigil-cli-'));
    try {
      await writeFile(path.join(dir, 'vigil.yaml'), 'service: s\ncomponents:\n  api:\n    policy: degraded\n');
      const r = await vigil(['preflight'], {}, dir);
      expect(r.code).to.equal(2);
      expect(r.stderr).to.contain(`${path.join(dir, 'vigil.yaml')}:4:13 components.api.policy`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 on usage errors, with help', async () => {
    const r = await vigil(['preflight', '--no-such-flag']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain('Usage: vigil preflight');
    expect((await vigil(['frobnicate'])).code).to.equal(2);
    const noManifest = await vigil(['preflight'], {}, tmpdir());
    expect(noManifest.code).to.equal(2);
    expect(noManifest.stderr).to.contain('No manifest');
  });
});
