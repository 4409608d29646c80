/**
 * Router modules that fail the ways real ones do — throw, hang on a top-level
 * await, leave handles open, call process.exit() — run in real child
 * processes: `vigil preflight` (the CLI) and an app bootstrapped as the docs
 * show. Each is reported with its reason; preflight exits with the code the
 * policy gives, and the app starts degraded or refuses to start, within the
 * bounds given to the child (a child killed at its bound fails the test).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { killAll, runNode } from './helpers/child.js';
import { otlpCapture, type OtlpCapture } from './helpers/otlp.js';
import { waitForValue } from './helpers/wait.js';

const TSX = import.meta.resolve('tsx');
const CLI = fileURLToPath(new URL('../src/cli/vigil.ts', import.meta.url));
const FAULTS = new URL('./fixtures/faults/', import.meta.url);
const APP = fileURLToPath(new URL('app.mjs', FAULTS));
/** The bound on every child: far above what each needs (a 1 s import timeout), far below a hang. */
const CHILD_BOUND_MS = 40_000;

/** Each fault, with what the report must say about it. `loads`: the router loads (its handles stay open). */
// `reason` is what the report, preflight and the refusal message say; `headline`, when the reason has
// more lines, the one line /health/detailed and the telemetry carry (the first, as reasons are bounded).
const FAULTS_TABLE: Array<{ file: string; type?: string; reason: RegExp; headline?: RegExp; loads?: true }> = [
  { file: 'throws.mjs', type: 'Error', reason: /JWT_SECRET is not set: the auth router cannot sign tokens/ },
  { file: 'hangs.mjs', type: 'VIGIL_IMPORT_TIMEOUT', reason: /timed out after 1s importing file:.*\/faults\/hangs\.mjs/ },
  { file: 'exits.mjs', type: 'VIGIL_PROCESS_EXIT', reason: /called process\.exit\(3\) while importing file:.*\/faults\/exits\.mjs/ },
  { file: 'handles.mjs', reason: /./, loads: true },
  { file: 'throws.cjs', type: 'MODULE_NOT_FOUND', reason: /Cannot find module '\.\/no-such-driver\.cjs'\n.*Require stack:\n.*- \/.*\/faults\/lib\/db\.cjs\n.*- \/.*\/faults\/throws\.cjs/, headline: /^MODULE_NOT_FOUND: Cannot find module '\.\/no-such-driver\.cjs'$/ },
  { file: 'exits.cjs', type: 'VIGIL_PROCESS_EXIT', reason: /called process\.exit\(3\) while importing file:.*\/faults\/exits\.cjs/ },
  { file: 'handles.cjs', reason: /./, loads: true },
];

let dir: string;
/** A manifest with a good fail-fast component and the fault in a component of `policy`. */
async function manifestFor(file: string, policy: 'fail-fast' | 'degrade', extra = ''): Promise<string> {
  const where = path.join(dir, `${file}-${policy}-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(
    where,
    `service: faults
startup:
  importTimeout: 1s
components:
  core:
    policy: fail-fast
    routers:
      - module: ${new URL('ok.mjs', FAULTS).href}
        mount: /core
    endpoints: [GET /core/ok]
  faulty:
    policy: ${policy}
    routers:
      - module: ${new URL(file, FAULTS).href}
        mount: /faulty
${extra}`,
  );
  return where;
}

interface Run {
  code: number | null;
  killed: boolean;
  stdout: string;
  stderr: string;
}
function preflight(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', TSX, CLI, 'preflight', ...args], { env: { ...process.env, ...env }, timeout: CHILD_BOUND_MS }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number; killed?: boolean }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, killed: Boolean(e?.killed), stdout, stderr });
    });
  });
}

before(async () => (dir = await mkdtemp(path.join(tmpdir(), 'vigil-faults-'))));
after(async () => rm(dir, { recursive: true, force: true }));

describe('faulty router modules under vigil preflight', function () {
  this.timeout(CHILD_BOUND_MS + 10_000);

  for (const f of FAULTS_TABLE) {
    it(`${f.file}, fail-fast: ${f.loads ? 'passes and exits 0 despite the open handles' : 'exits 1 with the reason in the table'}`, async () => {
      const r = await preflight(['--manifest', await manifestFor(f.file, 'fail-fast'), '--app', APP]);
      expect(r.killed, `preflight did not exit by itself:\n${r.stdout}${r.stderr}`).to.equal(false);
      expect(r.code, r.stdout + r.stderr).to.equal(f.loads ? 0 : 1);
      expect(r.stdout).to.contain(f.loads ? 'faults: all components pass' : 'faults: REFUSING TO START');
      if (f.loads) expect(r.stdout).to.contain('router handles: 1 route at /faulty');
      else {
        expect(r.stdout).to.contain(`[FAIL] faulty (fail-fast)`);
        expect(r.stdout).to.match(new RegExp(`router ${f.file.replace(/\..*$/, '')}: FAILED ${f.type}: `));
        expect(r.stdout).to.match(f.reason);
      }
    });

    it(`${f.file}, degrade: exits 0, the JSON report carries the reason`, async () => {
      const r = await preflight(['--manifest', await manifestFor(f.file, 'degrade'), '--app', APP, '--json']);
      expect(r.killed, `preflight did not exit by itself:\n${r.stdout}${r.stderr}`).to.equal(false);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      const report = JSON.parse(r.stdout) as { status: string; components: Array<{ name: string; routers: Array<{ outcome: string; errorType?: string; error?: string }> }> };
      const router = report.components.find((c) => c.name === 'faulty')!.routers[0]!;
      expect(report.status).to.equal(f.loads ? 'pass' : 'warn');
      expect(router.outcome).to.equal(f.loads ? 'success' : 'failed');
      expect(router.errorType).to.equal(f.type);
      if (!f.loads) expect(router.error).to.match(f.reason);
    });
  }

  it('preflight ends at its own --timeout, exit 3, saying what it was doing', async () => {
    // The router's own import timeout (10 min) is longer than preflight's: preflight's bound must hold.
    const manifest = await manifestFor('hangs.mjs', 'degrade', '        importTimeout: 10m\n');
    const r = await preflight(['--manifest', manifest, '--app', APP, '--timeout', '2s']);
    expect(r.killed, `preflight did not exit by itself:\n${r.stdout}${r.stderr}`).to.equal(false);
    expect(r.code, r.stderr).to.equal(3);
    expect(r.stderr).to.contain('vigil preflight: timed out after 2s while building the app with');
    expect(r.stdout).to.equal('');
  });

  it('rejects a bad --timeout as a usage error (exit 2)', async () => {
    const r = await preflight(['--manifest', await manifestFor('ok.mjs', 'degrade'), '--timeout', 'soon']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain('--timeout: expected a duration such as "30s"');
  });
});

describe('faulty router modules in an app bootstrapped as the docs show', function () {
  this.timeout(CHILD_BOUND_MS + 10_000);
  let otlp: OtlpCapture;
  beforeEach(async () => (otlp = await otlpCapture()));
  afterEach(async () => {
    killAll();
    await otlp.stop();
  });
  const SERVER = new URL('server.ts', FAULTS);
  const otlpEnv = () => ({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_METRICS_EXPORTER: 'otlp' });

  for (const f of FAULTS_TABLE) {
    it(`${f.file}, degrade: the app listens and answers${f.loads ? '' : ', and /health/detailed and the telemetry carry the reason'}`, async () => {
      const child = runNode(SERVER, { ...otlpEnv(), FAULT_MANIFEST: await manifestFor(f.file, 'degrade') });
      const [, port, status] = await child.line(/listening on (\d+) \((\w+)\)/, CHILD_BOUND_MS);
      expect(status).to.equal(f.loads ? 'pass' : 'warn');
      expect((await fetch(`http://127.0.0.1:${port}/core/ok`)).status).to.equal(200);
      const detailed = (await (await fetch(`http://127.0.0.1:${port}/health/detailed`)).json()) as { status: string; checks: Record<string, Array<{ output?: string }>> };
      expect(detailed.status).to.equal(f.loads ? 'pass' : 'warn');
      if (!f.loads) {
        expect(detailed.checks['faulty:router-import']![0]!.output).to.match(f.headline ?? f.reason).and.not.contain('\n');
        const imp = await waitForValue(() => otlp.latest('vigil.router.import', { 'vigil.component': 'faulty' }), 10_000, 'vigil.router.import of the faulty router');
        expect(imp.value).to.equal(0);
        expect(imp.attributes).to.include({ 'vigil.outcome': 'failed', 'error.type': f.type });
      } else {
        expect((await fetch(`http://127.0.0.1:${port}/faulty/pool`)).status).to.equal(200);
      }
      expect(child.proc.exitCode, 'the app is still running').to.equal(null);
    });
  }

  for (const f of FAULTS_TABLE.filter((x) => !x.loads)) {
    it(`${f.file}, fail-fast: the app refuses to start, exit 1, one message with the reason`, async () => {
      const child = runNode(SERVER, { FAULT_MANIFEST: await manifestFor(f.file, 'fail-fast') });
      const bound = setTimeout(() => child.proc.kill('SIGKILL'), CHILD_BOUND_MS);
      const { code, signal } = await child.exited;
      clearTimeout(bound);
      expect(signal, `the app did not exit by itself:\n${child.output()}`).to.equal(null);
      expect(code, child.output()).to.equal(1);
      expect(child.output()).to.contain('Vigil startup validation failed: fail-fast component(s) faulty failed');
      expect(child.output()).to.match(f.reason);
      expect(child.output()).not.to.match(/^\s+at /m); // no stack trace
    });
  }

  it('a module left pending by a timed-out import does not keep a fail-fast app from exiting, nor a handle-holding one', async () => {
    // Both faults at once: one hangs (timed out), one loads with a timer and an open server, and the
    // fail-fast component fails because of the hang; process.exit() in the docs' pattern ends it.
    const manifest = await manifestFor('hangs.mjs', 'fail-fast', `      - module: ${new URL('handles.cjs', FAULTS).href}\n        mount: /pool\n`);
    const child = runNode(SERVER, { FAULT_MANIFEST: manifest });
    const bound = setTimeout(() => child.proc.kill('SIGKILL'), CHILD_BOUND_MS);
    const { code, signal } = await child.exited;
    clearTimeout(bound);
    expect(signal, `the app did not exit by itself:\n${child.output()}`).to.equal(null);
    expect(code, child.output()).to.equal(1);
    expect(child.output()).to.match(/faulty: router hangs failed to import: VIGIL_IMPORT_TIMEOUT: timed out after 1s/);
  });
});

describe('a bad manifest: one message, exit code 2, no stack trace unless asked', function () {
  this.timeout(CHILD_BOUND_MS + 10_000);
  afterEach(() => killAll());
  const SERVER = new URL('server.ts', FAULTS);
  // A schema error, an unknown key and a cross-check (a route declared twice), all to be reported at once.
  const BAD = `service: faults
components:
  core:
    policy: fail-fast
    endpoints: [GET /core/ok]
  other:
    policy: degraded
    endpoints: [GET /core/ok]
shutdown:
  drain: 1s
`;
  let file: string;
  before(async () => {
    file = path.join(dir, 'bad.yaml');
    await writeFile(file, BAD);
  });
  /** What a bad manifest must say, wherever it is reported. */
  const expectTheIssues = (text: string) => {
    expect(text).to.contain(`Invalid Vigil manifest ${file}:`);
    expect(text).to.contain(`${file}:7:13 components.other.policy: expected one of "fail-fast"|"degrade", got "degraded"`);
    expect(text).to.contain(`${file}:8:17 components.other.endpoints.0: endpoint "GET /core/ok" is already declared by component "core"`);
    expect(text).to.contain(`${file}:10:3 shutdown: unknown key "drain": expected one of "signals", "drainDelay", "timeout"`);
  };

  it('an app bootstrapped with it exits 2 with the one message and nothing else', async () => {
    const child = runNode(SERVER, { FAULT_MANIFEST: file });
    const { code, signal } = await child.exited;
    expect(signal, child.output()).to.equal(null);
    expect(code, child.output()).to.equal(2);
    expectTheIssues(child.output());
    expect(child.output().trim().split('\n')).to.have.length(4); // the header and three issues
  });

  it('VIGIL_DEBUG=1 adds the stack', async () => {
    const child = runNode(SERVER, { FAULT_MANIFEST: file, VIGIL_DEBUG: '1' });
    expect((await child.exited).code).to.equal(2);
    expectTheIssues(child.output());
    expect(child.output()).to.match(/^\s+at .*load\.ts/m);
  });

  it('preflight exits 2 with the same message; --verbose adds the stack', async () => {
    const r = await preflight(['--manifest', file]);
    expect(r.code, r.stderr).to.equal(2);
    expect(r.stdout).to.equal('');
    expectTheIssues(r.stderr);
    expect(r.stderr).not.to.match(/^\s+at /m);
    const verbose = await preflight(['--manifest', file, '--verbose']);
    expect(verbose.code).to.equal(2);
    expect(verbose.stderr).to.match(/^\s+at .*load\.ts/m);
  });
});
