import http from 'node:http';
import net from 'node:net';
import { expect } from 'chai';
import { trace } from '@opentelemetry/api';
import { Manifest } from '../src/manifest/schema.js';
import { runDependencyChecks, type CheckResult } from '../src/startup/dependencies.js';
import { close, closedPort, httpServer, listen } from './helpers/servers.js';

const base = new URL('./fixtures/', import.meta.url);
const tracer = trace.getTracer('test');

async function run(checks: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): Promise<Record<string, CheckResult>> {
  const manifest = Manifest.parse({ service: 't', components: { db: { policy: 'fail-fast', dependencies: checks } } });
  const results = await runDependencyChecks(manifest, env, base, tracer);
  return Object.fromEntries(results.map((r) => [r.check, r]));
}

describe('dependency checks', () => {
  const servers: net.Server[] = [];
  let tcpPort: number;
  let okPort: number;
  let errPort: number;
  let slowPort: number;
  let deadPort: number;
  before(async () => {
    const tcp = net.createServer((s) => s.end());
    const ok = httpServer(204);
    const err = httpServer(503);
    const slow = httpServer(200, 5000);
    servers.push(tcp, ok, err, slow);
    [tcpPort, okPort, errPort, slowPort] = await Promise.all(servers.map(listen)) as [number, number, number, number];
    deadPort = await closedPort();
  });
  after(() => Promise.all(servers.map(close)));

  it('checks env vars by name and never reports their values', async () => {
    const r = await run({ a: { type: 'env', vars: ['SET_ONE', 'MISSING_ONE', 'EMPTY_ONE'] } }, { SET_ONE: 's3cr3t-value', EMPTY_ONE: '' });
    expect(r.a!.ok).to.equal(false);
    expect(r.a!.error).to.equal('missing environment variable(s): MISSING_ONE, EMPTY_ONE');
    expect(JSON.stringify(r)).not.to.contain('s3cr3t-value');
  });

  it('connects over TCP to host and port, and to a URL from the environment without leaking its password', async () => {
    const url = `postgres://app:hunter2@127.0.0.1:${tcpPort}/shop?sslmode=disable`;
    const deadUrl = `postgres://app:hunter2@127.0.0.1:${deadPort}/shop`;
    const r = await run(
      {
        up: { type: 'tcp', host: '127.0.0.1', port: tcpPort },
        fromenv: { type: 'tcp', url: { env: 'DATABASE_URL' } },
        down: { type: 'tcp', url: { env: 'DEAD_URL' } },
        unset: { type: 'tcp', url: { env: 'NOT_SET_URL' } },
      },
      { DATABASE_URL: url, DEAD_URL: deadUrl },
    );
    expect(r.up!.ok, r.up!.error).to.equal(true);
    expect(r.fromenv!.ok, r.fromenv!.error).to.equal(true);
    expect(r.fromenv!.target).to.equal(`$DATABASE_URL (127.0.0.1:${tcpPort})`);
    expect(r.down!.ok).to.equal(false);
    expect(r.down!.errorType).to.equal('ECONNREFUSED');
    expect(r.down!.error).to.contain(`127.0.0.1:${deadPort}`);
    expect(r.unset!.error).to.equal('environment variable NOT_SET_URL is not set');
    expect(JSON.stringify(r)).not.to.contain('hunter2');
  });

  it('GETs over HTTP: 2xx passes, 503 fails, an expected status list is honoured', async () => {
    const r = await run({
      ok: { type: 'http', url: `http://127.0.0.1:${okPort}/ping` },
      bad: { type: 'http', url: `http://127.0.0.1:${errPort}/ping` },
      expected: { type: 'http', url: `http://127.0.0.1:${errPort}/ping`, expect: { status: [503] } },
      refused: { type: 'http', url: `http://127.0.0.1:${deadPort}/` },
    });
    expect(r.ok!.ok, r.ok!.error).to.equal(true);
    expect(r.bad!.ok).to.equal(false);
    expect(r.bad!.error).to.equal(`GET 127.0.0.1:${errPort} answered 503`);
    expect(r.bad!.errorType).to.equal('HTTP_503');
    expect(r.expected!.ok).to.equal(true);
    expect(r.refused!.errorType).to.equal('ECONNREFUSED');
  });

  it('HTTP: HEAD and a header read from the environment reach the server; a wrong header fails', async () => {
    const seen: Array<{ method?: string; auth?: string }> = [];
    const guarded = http.createServer((req, res) => {
      seen.push({ method: req.method, auth: req.headers.authorization });
      res.writeHead(req.headers.authorization === 'Bearer tok-123456' ? 204 : 401).end();
    });
    const port = await listen(guarded);
    try {
      const url = `http://127.0.0.1:${port}/health`;
      const r = await run(
        {
          good: { type: 'http', url, method: 'HEAD', headers: { authorization: { env: 'DEP_TOKEN', prefix: 'Bearer ' } } },
          bad: { type: 'http', url, headers: { authorization: 'Bearer nope' } },
        },
        { DEP_TOKEN: 'tok-123456' },
      );
      expect(r.good!.ok, r.good!.error).to.equal(true);
      expect(r.bad).to.deep.include({ ok: false, error: `GET 127.0.0.1:${port} answered 401` });
      expect(seen.map((x) => x.method).sort()).to.deep.equal(['GET', 'HEAD']);
      expect(JSON.stringify(r)).not.to.contain('tok-123456');
    } finally {
      await close(guarded);
    }
  });

  it('bounds every check by its timeout and runs them in parallel', async () => {
    const started = performance.now();
    const r = await run({
      slow1: { type: 'http', url: `http://127.0.0.1:${slowPort}/`, timeout: '200ms' },
      slow2: { type: 'http', url: `http://127.0.0.1:${slowPort}/`, timeout: '200ms' },
      hang: { type: 'custom', check: () => new Promise(() => {}), timeout: '200ms' },
    });
    const elapsed = performance.now() - started;
    for (const name of ['slow1', 'slow2', 'hang']) {
      expect(r[name]!.ok).to.equal(false);
      expect(r[name]!.errorType).to.equal('VIGIL_TIMEOUT');
    }
    expect(r.hang!.error).to.equal('timeout after 200ms');
    // Three 200 ms timeouts in parallel end long before they would in sequence (600 ms).
    expect(elapsed).to.be.below(550);
  });

  it('runs custom checks given as functions or modules; throwing or returning false fails', async () => {
    const r = await run({
      fn: { type: 'custom', check: async () => undefined },
      fnfalse: { type: 'custom', check: () => false },
      mod: { type: 'custom', module: './checks.mjs', export: 'ok' },
      modfails: { type: 'custom', module: './checks.mjs', export: 'fails' },
      modfalse: { type: 'custom', module: './checks.mjs', export: 'returnsFalse' },
      notfn: { type: 'custom', module: './checks.mjs', export: 'notAFunction' },
      nomod: { type: 'custom', module: './no-such-checks.mjs' },
    });
    expect(r.fn!.ok).to.equal(true);
    expect(r.fnfalse!.error).to.equal('check returned false');
    expect(r.mod!.ok).to.equal(true);
    expect(r.modfails!.error).to.equal('pool exhausted');
    expect(r.modfalse!.ok).to.equal(false);
    expect(r.notfn!.error).to.match(/no function export "notAFunction"/);
    expect(r.nomod!.errorType).to.equal('ERR_MODULE_NOT_FOUND');
  });
});
