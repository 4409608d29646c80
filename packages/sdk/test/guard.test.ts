import http, { createServer, type Server } from 'node:http';
import { expect } from 'chai';
import express from 'express';
import { vigil, type VigilGuard } from '../src/guard.js';
import { VigilStartupError } from '../src/errors.js';
import type { ManifestInput } from '../src/manifest/schema.js';
import { killAll, runNode } from './helpers/child.js';
import { close, closedPort, listen } from './helpers/servers.js';
import { otlpCapture, type OtlpCapture } from './helpers/otlp.js';
import { waitForValue } from './helpers/wait.js';

const fixtures = new URL('./fixtures/', import.meta.url);
const GOOD: string = new URL('./routers/good.mjs', fixtures).href;
const THROWS: string = new URL('./routers/throws.mjs', fixtures).href;

function manifest(broken: string[] = [], extra: Partial<ManifestInput> = {}): ManifestInput {
  return {
    service: 'shop',
    components: {
      auth: { policy: 'fail-fast', businessCritical: true, routers: [{ name: 'auth', mount: '/auth', load: () => import(broken.includes('auth') ? THROWS : GOOD) }], endpoints: ['GET /auth/items'] },
      admin: { policy: 'degrade', routers: [{ name: 'admin', mount: '/admin', load: () => import(broken.includes('admin') ? THROWS : GOOD) }], endpoints: ['POST /admin/items'] },
    },
    ...extra,
  };
}

async function start(m: ManifestInput, env: NodeJS.ProcessEnv = {}) {
  const guard = await vigil({ manifest: m, telemetry: false, env, logger: (await import('pino')).pino({ level: 'silent' }) });
  const app = express();
  guard.mountHealth(app);
  await guard.mountRouters(app);
  const server = createServer(app);
  const port = await listen(server);
  return { guard, app, server, base: `http://127.0.0.1:${port}` };
}

describe('the guard', () => {
  let running: { guard: VigilGuard; server: Server } | undefined;
  afterEach(async () => {
    if (running) {
      await running.guard.shutdown();
      if (running.server.listening) await close(running.server);
    }
    running = undefined;
  });

  it('/ready is 503 until validation passes, then 200; /health is 200 throughout and says nothing internal', async () => {
    const s = await start(manifest());
    running = s;
    let res = await fetch(`${s.base}/ready`);
    expect(res.status).to.equal(503);
    expect(await res.json()).to.deep.equal({ status: 'fail', output: 'starting' });
    res = await fetch(`${s.base}/health`);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('application/health+json');
    expect(await res.json()).to.deep.equal({ status: 'pass' });
    const report = await s.guard.validate(s.app, { server: s.server });
    expect(report.status).to.equal('pass');
    expect((await fetch(`${s.base}/ready`)).status).to.equal(200);
  });

  it('a broken degrade router: app starts, ready, detailed health warns and names the missing route', async () => {
    const s = await start(manifest(['admin']));
    running = s;
    const report = await s.guard.validate(s.app, { server: s.server });
    expect(report.status).to.equal('warn');
    expect((await fetch(`${s.base}/ready`)).status).to.equal(200);
    const res = await fetch(`${s.base}/health/detailed`);
    expect(res.status).to.equal(200);
    const body = (await res.json()) as { status: string; affectedEndpoints: string[]; checks: Record<string, Array<{ output?: string }>> };
    expect(body.status).to.equal('warn');
    expect(body.affectedEndpoints).to.deep.equal(['POST /admin/items']);
    expect(body.checks['admin:router-import']![0]!.output).to.match(/^ERR_MODULE_NOT_FOUND: .*missing-schema\.mjs/);
    // The business-critical view does not include admin here, so it passes.
    expect(((await (await fetch(`${s.base}/health/business-critical`)).json()) as { status: string }).status).to.equal('pass');
  });

  it('a broken fail-fast router: validate closes the server and throws VigilStartupError with the report', async () => {
    const s = await start(manifest(['auth']));
    running = s;
    const err = await s.guard.validate(s.app, { server: s.server }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(VigilStartupError);
    expect((err as VigilStartupError).report.missingEndpoints).to.deep.equal(['GET /auth/items']);
    const [first, ...why] = (err as Error).message.split('\n');
    expect(first).to.equal('Vigil startup validation failed: fail-fast component(s) auth failed');
    // Each reason of the failing component follows, so the one message says why.
    expect(why[0]).to.match(/^  auth: router auth failed to import: ERR_MODULE_NOT_FOUND: .*missing-schema\.mjs/);
    expect(why.some((l) => l.startsWith('  auth: route GET /auth/items is '))).to.equal(true);
    expect(s.server.listening).to.equal(false);
    expect(s.guard.phase).to.equal('failed');
  });

  it('throwOnFailure: false reports instead, and /ready stays 503 while detailed health is 503 fail', async () => {
    const s = await start(manifest(['auth']));
    running = s;
    const report = await s.guard.validate(s.app, { throwOnFailure: false });
    expect(report.ok).to.equal(false);
    expect((await fetch(`${s.base}/ready`)).status).to.equal(503);
    const res = await fetch(`${s.base}/health/detailed`);
    expect(res.status).to.equal(503);
    expect(((await res.json()) as { status: string }).status).to.equal('fail');
  });

  it('detailed health needs the bearer token when loopback is not trusted', async () => {
    const s = await start(manifest([], { health: { allowLoopback: false, tokenEnv: 'SHOP_HEALTH_TOKEN' } }), { SHOP_HEALTH_TOKEN: 'let-me-in' });
    running = s;
    await s.guard.validate(s.app);
    let res = await fetch(`${s.base}/health/detailed`);
    expect(res.status).to.equal(401);
    expect(res.headers.get('www-authenticate')).to.equal('Bearer realm="vigil"');
    const text = await res.text();
    expect(text).not.to.contain('auth:routes');
    res = await fetch(`${s.base}/health/detailed`, { headers: { authorization: 'Bearer wrong' } });
    expect(res.status).to.equal(401);
    res = await fetch(`${s.base}/health/detailed`, { headers: { authorization: 'Bearer let-me-in' } });
    expect(res.status).to.equal(200);
    expect(((await res.json()) as { checks: object }).checks).to.have.property('auth:routes');
  });

  it('counts validation time, not the app setup between vigil() and validate()', async () => {
    const guard = await vigil({ manifest: manifest(), telemetry: false, logger: (await import('pino')).pino({ level: 'silent' }) });
    await new Promise((r) => setTimeout(r, 400)); // the app's own setup
    const app = express();
    await guard.mountRouters(app);
    const report = await guard.validate(app);
    expect(report.durationMs).to.be.above(0).and.below(400);
    await guard.shutdown();
  });

  it('inventories routers the app mounted itself', async () => {
    const guard = await vigil({
      manifest: { service: 's', components: { api: { policy: 'fail-fast', endpoints: ['GET /v2/items', 'DELETE /v2/items'] } } },
      telemetry: false,
      logger: (await import('pino')).pino({ level: 'silent' }),
    });
    const app = express();
    app.use('/v2', (await import(GOOD)).router);
    const report = await guard.validate(app, { throwOnFailure: false });
    expect(report.components[0]!.endpoints.map((e) => e.registered)).to.deep.equal([true, false]);
    expect(report.missingEndpoints).to.deep.equal(['DELETE /v2/items']);
    await guard.shutdown();
  });
});

describe('the guard in a real process', function () {
  this.timeout(30_000);
  let otlp: OtlpCapture;
  beforeEach(async () => (otlp = await otlpCapture()));
  afterEach(async () => {
    killAll();
    await otlp.stop();
  });

  const otlpEnv = () => ({
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_METRICS_EXPORTER: 'otlp',
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_BSP_SCHEDULE_DELAY: '60000', // spans must arrive through the forced flush, not the timer
  });

  it('a fail-fast failure exports its evidence before the process exits non-zero', async () => {
    const child = runNode(new URL('app.ts', fixtures), { ...otlpEnv(), FIXTURE_BREAK: 'auth' });
    const { code } = await child.exited;
    expect(code, child.output()).to.equal(1);
    expect(child.output()).to.contain('REFUSED GET /auth/items');
    const imp = otlp.latest('vigil.router.import', { 'vigil.router': 'auth' });
    expect(imp, 'vigil.router.import for auth was exported').to.exist;
    expect(imp!.value).to.equal(0);
    expect(imp!.attributes).to.include({ 'vigil.component': 'auth', 'vigil.outcome': 'failed', 'error.type': 'ERR_MODULE_NOT_FOUND' });
    expect(imp!.resource).to.include({ 'service.name': 'fixture-app', 'service.version': '9.9.9' });
    expect(imp!.resource['service.instance.id']).to.match(/^[0-9a-f-]{36}$/);
    expect(otlp.latest('vigil.route.registered', { 'http.route': '/auth/items' })).to.deep.include({ value: 0 });
    expect(otlp.latest('vigil.route.registered', { 'http.route': '/admin/items' })).to.deep.include({ value: 1 });
    expect(otlp.latest('vigil.startup.success')).to.deep.include({ value: 0 });
    // A refusal is no clean stop: the evaluator keeps its evidence instead of retiring the instance.
    expect(otlp.latest('vigil.instance.running')).to.deep.include({ value: 1 });
    expect(otlp.latest('vigil.component.healthy', { 'vigil.component': 'auth' })).to.deep.include({ value: 0 });
    expect(otlp.latest('vigil.component.healthy', { 'vigil.component': 'auth' })!.attributes['vigil.policy']).to.equal('fail_fast');
    const startup = otlp.spans.find((s) => s.name === 'vigil.startup');
    expect(startup, 'the vigil.startup span was exported').to.exist;
    expect(startup!.status?.code).to.equal(2); // ERROR
    const importSpan = otlp.spans.find((s) => s.name === 'vigil.router.import' && s.attributes['vigil.router'] === 'auth');
    expect(importSpan!.parentSpanId).to.equal(startup!.spanId);
  });

  it("the app's own SIGTERM handler awaits guard.drain(): /ready 503 while the server still serves, then the server closes, \"stopped\" is exported and the process exits 0", async () => {
    const child = runNode(new URL('app.ts', fixtures), { ...otlpEnv(), FIXTURE_DRAIN_MS: '1500', FIXTURE_OWN_SIGTERM: '1' });
    const [, port] = await child.line(/LISTENING (\d+)/);
    await child.line(/VALIDATED/);
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/ready`)).status).to.equal(200);
    await waitForValue(() => otlp.latest('vigil.instance.running'), 5000, 'the first export of vigil.instance.running');
    expect(otlp.latest('vigil.instance.running')).to.deep.include({ value: 1 });
    child.proc.kill('SIGTERM');
    await waitForValue(async () => ((await fetch(`${base}/ready`)).status === 503 ? true : undefined), 1000, '/ready 503 after SIGTERM');
    // Draining, not closed: the app's routes still answer.
    expect((await fetch(`${base}/auth/items`)).status).to.equal(200);
    expect((await fetch(`${base}/health`)).status).to.equal(200);
    expect(child.output()).not.to.contain('DRAINED');
    await child.line(/DRAINED/, 10_000);
    const exit = await child.exited;
    expect(exit, child.output()).to.deep.equal({ code: 0, signal: null });
    expect(await fetch(`${base}/health`).then(() => 'answered', () => 'closed')).to.equal('closed');
    expect(otlp.latest('vigil.instance.running')).to.deep.include({ value: 0 });
  });

  it('a degraded start is exported at once, not at the next periodic export', async () => {
    const child = runNode(new URL('app.ts', fixtures), { ...otlpEnv(), FIXTURE_BREAK: 'admin' });
    await child.line(/VALIDATED/);
    // The periodic interval is 60 s, so these points can only come from the state-change flush.
    await waitForValue(() => otlp.latest('vigil.startup.success'), 3000, 'the state-change export');
    expect(otlp.latest('vigil.router.import', { 'vigil.router': 'admin' })).to.deep.include({ value: 0 });
    expect(otlp.latest('vigil.startup.success')).to.deep.include({ value: 1 });
    expect(otlp.latest('vigil.component.healthy', { 'vigil.component': 'admin' })).to.deep.include({ value: 0 });
    child.proc.kill('SIGKILL');
    await child.exited;
  });

  it('a dead collector: the app still starts and serves, and the export failure is logged, once', async () => {
    const dead = await closedPort();
    const child = runNode(new URL('app.ts', fixtures), {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${dead}`,
      OTEL_METRICS_EXPORTER: 'otlp',
      VIGIL_LOG_LEVEL: 'warn',
    });
    const [, port] = await child.line(/LISTENING (\d+)/);
    await child.line(/VALIDATED/);
    expect((await fetch(`http://127.0.0.1:${port}/ready`)).status).to.equal(200);
    await waitForValue(() => (child.output().includes('"module":"opentelemetry"') ? true : undefined), 20_000, 'the export failure in the log');
    const failures = child.output().split('\n').filter((l) => l.includes('"module":"opentelemetry"'));
    expect(failures, child.output()).to.have.length(1);
    expect(failures[0]).to.match(/ECONNREFUSED/);
  });

  it('a collector that hangs does not hold up a passing start', async () => {
    const pending: http.ServerResponse[] = [];
    const hang = http.createServer((_req, res) => pending.push(res));
    const port = await listen(hang);
    try {
      const child = runNode(new URL('app.ts', fixtures), { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_METRICS_EXPORTER: 'otlp' });
      await child.line(/VALIDATED/);
      // The state-change export was sent and is still unanswered, yet validation is done.
      await waitForValue(() => (pending.length > 0 ? true : undefined), 3000, 'the export request');
      expect(pending.every((r) => !r.writableEnded)).to.equal(true);
    } finally {
      killAll();
      pending.forEach((r) => r.destroy());
      await close(hang);
    }
  });

  it('SIGTERM: /ready drops to 503 during the drain, then the process ends by the signal', async () => {
    const child = runNode(new URL('app.ts', fixtures), { FIXTURE_DRAIN_MS: '1500' });
    const [, port] = await child.line(/LISTENING (\d+)/);
    await child.line(/VALIDATED/);
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/ready`)).status).to.equal(200);
    child.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    expect((await fetch(`${base}/ready`)).status).to.equal(503);
    expect((await fetch(`${base}/health`)).status).to.equal(200); // still alive while draining
    const { signal } = await child.exited;
    expect(signal).to.equal('SIGTERM');
  });

  it('SIGTERM with a request that never ends: its connection is closed after shutdown.timeout and the process ends', async () => {
    const child = runNode(new URL('app.ts', fixtures), { FIXTURE_DRAIN_MS: '0', FIXTURE_SHUTDOWN_TIMEOUT_MS: '500' });
    const [, port] = await child.line(/LISTENING (\d+)/);
    await child.line(/VALIDATED/);
    const hanging = fetch(`http://127.0.0.1:${port}/hang`).then(
      () => 'answered',
      () => 'connection closed',
    );
    await new Promise((r) => setTimeout(r, 200));
    child.proc.kill('SIGTERM');
    expect(await child.exited).to.deep.include({ signal: 'SIGTERM' });
    expect(await hanging).to.equal('connection closed');
  });

  it('/ready is 503 while validation is still running', async () => {
    const child = runNode(new URL('app.ts', fixtures), { FIXTURE_VALIDATE_DELAY_MS: '1500' });
    const [, port] = await child.line(/LISTENING (\d+)/);
    const res = await fetch(`http://127.0.0.1:${port}/ready`);
    expect(res.status).to.equal(503);
    await child.line(/VALIDATED/);
    expect((await fetch(`http://127.0.0.1:${port}/ready`)).status).to.equal(200);
    child.proc.kill('SIGKILL');
    await child.exited;
  });
});
