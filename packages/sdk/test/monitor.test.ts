/**
 * The runtime monitor against a real app on 127.0.0.1: probes, flap damping,
 * timeouts, drift, flows with credentials, recovery.
 */
import { createServer, type Server } from 'node:http';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { expect } from 'chai';
import express from 'express';
import { vigil, type VigilGuard } from '../src/guard.js';
import type { ManifestInput } from '../src/manifest/schema.js';
import { captureLogs } from './helpers/logs.js';
import { close, listen } from './helpers/servers.js';
import { waitForValue } from './helpers/wait.js';

const PASSWORD = 'pr0be-Secret-Passw0rd';
const ADMIN_EMAIL = 'probe-admin@example.test';

/** The app under watch, with switches the tests flip. */
function buildApp() {
  const knobs = { flakyStatus: 200, hang: false, tokens: new Set<string>() };
  const api = express.Router();
  api.post('/login', (req, res) => {
    const { email, password } = (req.body ?? {}) as { email?: string; password?: string };
    if (!email || !password) return void res.status(400).json({ error: 'missing' });
    if (email !== ADMIN_EMAIL || password !== PASSWORD) return void res.status(401).json({ error: 'bad credentials' });
    const token = `tok-${Math.random().toString(36).slice(2)}-${Date.now()}`;
    knobs.tokens.add(token);
    res.json({ accessToken: token });
  });
  api.get('/admin/flags', (req, res) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token || !knobs.tokens.has(token)) return void res.status(401).json({ error: 'no' });
    res.json({ flags: ['a'], user: ADMIN_EMAIL });
  });
  api.get('/flaky', (_req, res) => void res.status(knobs.flakyStatus).json({ ok: knobs.flakyStatus < 400 }));
  api.get('/slow', (_req, res) => {
    if (knobs.hang) return; // never answers
    res.json({ ok: true });
  });
  return { api, knobs };
}

function manifest(extra: Partial<ManifestInput['components'][string]> = {}): ManifestInput {
  return {
    service: 'watched',
    components: {
      core: {
        policy: 'degrade',
        endpoints: [
          { method: 'GET', route: '/api/flaky', probe: { expect: { status: [200] } } },
          { method: 'GET', route: '/api/slow', probe: { timeout: '300ms' } },
        ],
        ...extra,
      },
      admin: {
        policy: 'degrade',
        businessCritical: true,
        endpoints: [{ method: 'POST', route: '/api/login', probe: { body: {}, expect: { status: [400] } } }],
        flows: {
          'admin-panel': {
            steps: [
              { name: 'login', method: 'POST', path: '/api/login', body: { email: '${env:PROBE_EMAIL}', password: '${env:PROBE_PASSWORD}' }, expect: { status: [200] }, capture: { token: 'accessToken' } },
              { name: 'flags', method: 'GET', path: '/api/admin/flags', headers: { authorization: 'Bearer ${token}' }, expect: { status: [200], body: [{ path: 'flags', exists: true }] } },
            ],
          },
        },
      },
    },
    monitor: {
      failureThreshold: 3,
      successThreshold: 2,
      jitter: 0,
      intervals: { endpoints: '60ms', flows: '60ms', drift: '60ms', dependencies: '1h', process: '1h', errorRate: '1h', integration: '1h' },
    },
  };
}

interface Running {
  guard: VigilGuard;
  server: Server;
  knobs: ReturnType<typeof buildApp>['knobs'];
  api: express.Router;
  lines: string[];
  base: string;
}

describe('runtime monitor', function () {
  this.timeout(20_000);
  const spans = new InMemorySpanExporter();
  let running: Running | undefined;

  before(() => {
    // An app-registered tracer provider: Vigil uses it, so the test sees every span.
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
  });
  after(() => {
    trace.disable();
    metrics.disable();
    context.disable();
    propagation.disable();
  });
  afterEach(async () => {
    if (running) {
      await running.guard.shutdown();
      if (running.server.listening) await close(running.server);
    }
    running = undefined;
    spans.reset();
  });

  async function start(m: ManifestInput, env: NodeJS.ProcessEnv = { PROBE_EMAIL: ADMIN_EMAIL, PROBE_PASSWORD: PASSWORD }): Promise<Running> {
    const { logger, lines } = captureLogs();
    const guard = await vigil({ manifest: m, env: { OTEL_METRICS_EXPORTER: 'none', ...env }, logger });
    const { api, knobs } = buildApp();
    const app = express();
    app.use(express.json());
    guard.mountHealth(app);
    app.use('/api', api);
    const server = createServer(app);
    const port = await listen(server);
    await guard.validate(app, { server });
    running = { guard, server, knobs, api, lines, base: `http://127.0.0.1:${port}` };
    return running;
  }

  const stateOf = (r: Running, id: string) => r.guard.monitor!.checks.find((v) => v.check.id === id)!.state;
  const detailed = async (r: Running, path = '/health/detailed') => (await (await fetch(`${r.base}${path}`)).json()) as { status: string; checks: Record<string, Array<Record<string, unknown>>>; affectedEndpoints?: string[] };

  it('a route that starts answering 500 fails only after 3 consecutive failures, and passes again after 2 successes', async () => {
    const r = await start(manifest());
    const id = 'endpoint:GET /api/flaky';
    await waitForValue(() => stateOf(r, id).lastRunAt, 3000, 'a first probe');
    r.knobs.flakyStatus = 500;
    // One row per probe run: its raw result and the state published after it.
    const runs: Array<[string, string]> = [];
    r.guard.monitor!.onOutcome((check, outcome, state) => {
      if (check.id === id) runs.push([outcome.status, state.status]);
    });
    const fail = await waitForValue(() => (stateOf(r, id).status === 'fail' ? stateOf(r, id) : undefined), 5000, 'the probe to fail');
    const rows = runs;
    const flip = rows.findIndex(([, published]) => published === 'fail');
    // The state flipped on the third failing run in a row, not before.
    expect(rows.slice(0, flip + 1).filter(([raw]) => raw === 'fail')).to.have.length(3);
    expect(rows.slice(flip - 2, flip + 1).map(([raw]) => raw)).to.deep.equal(['fail', 'fail', 'fail']);
    expect(fail.outcome.output).to.equal('answered 500, expected 200');
    const body = await detailed(r);
    expect(body.status).to.equal('warn'); // a degrade component at worst warns
    expect(body.checks['core:endpoint GET /api/flaky']![0]).to.deep.include({ status: 'fail', level: 2, componentType: 'endpoint', output: 'answered 500, expected 200' });
    expect(body.affectedEndpoints).to.include('GET /api/flaky');
    r.knobs.flakyStatus = 200;
    await waitForValue(() => (stateOf(r, id).status === 'pass' ? true : undefined), 5000, 'the probe to pass again');
    expect((await detailed(r)).status).to.equal('pass');
  });

  it('a route that flaps below the threshold never changes state', async () => {
    const r = await start(manifest());
    const id = 'endpoint:GET /api/flaky';
    const flips: string[] = [];
    let count = 0;
    // Alternate after every run: every other probe fails, never three in a row.
    r.guard.monitor!.onOutcome((check, _outcome, state) => {
      if (check.id !== id) return;
      count++;
      r.knobs.flakyStatus = r.knobs.flakyStatus === 200 ? 500 : 200;
      if (state.status !== 'pass') flips.push(state.status);
    });
    await waitForValue(() => (count >= 12 ? true : undefined), 5000, '12 probe runs');
    const s = stateOf(r, id);
    expect(s.last, 'the probe ran').to.exist;
    expect(flips).to.deep.equal([]);
    expect(s.status).to.equal('pass');
  });

  it('a handler that hangs times out and fails the check', async () => {
    const r = await start(manifest());
    r.knobs.hang = true;
    const s = await waitForValue(() => (stateOf(r, 'endpoint:GET /api/slow').status === 'fail' ? stateOf(r, 'endpoint:GET /api/slow') : undefined), 8000, 'the hung probe to fail');
    expect(s.outcome.output).to.equal('no answer within 300ms');
    // Other checks kept running meanwhile.
    expect(stateOf(r, 'endpoint:GET /api/flaky').status).to.equal('pass');
  });

  it('a critical route removed at run time is reported as drift', async () => {
    const r = await start(manifest());
    const layer = r.api.stack.findIndex((l) => (l as { route?: { path: string } }).route?.path === '/flaky');
    r.api.stack.splice(layer, 1);
    const s = await waitForValue(() => (stateOf(r, 'drift:core').status === 'fail' ? stateOf(r, 'drift:core') : undefined), 5000, 'drift');
    expect(s.outcome.affectedEndpoints).to.deep.equal(['GET /api/flaky']);
    const body = await detailed(r);
    const routes = body.checks['core:routes']!;
    expect(routes.some((c) => c.status === 'fail' && (c.affectedEndpoints as string[]).includes('GET /api/flaky'))).to.equal(true);
    expect(r.guard.report!.missingEndpoints).to.include('GET /api/flaky');
  });

  it('a route added at run time is reported, without failing anything', async () => {
    const r = await start(manifest());
    await waitForValue(() => stateOf(r, 'drift:core').lastRunAt, 3000, 'a first drift run');
    r.api.get('/debug/dump', (_req, res) => void res.end());
    const s = await waitForValue(() => (stateOf(r, 'drift:core').outcome.output?.includes('new route') ? stateOf(r, 'drift:core') : undefined), 3000, 'the new route to be reported');
    expect(s.status).to.equal('pass');
    expect(s.outcome.output).to.equal('1 new route(s) since startup: GET /api/debug/dump');
    expect(r.lines.some((l) => l.includes('route(s) registered since startup') && l.includes('GET /api/debug/dump'))).to.equal(true);
  });

  it('a custom flow function gets a synthetic client on the app; false or a throw fails it', async () => {
    const calls: number[] = [];
    const m = manifest();
    m.components.admin!.flows = {
      custom: {
        check: async ({ request }) => {
          const login = await request('POST', '/api/login', { json: { email: ADMIN_EMAIL, password: PASSWORD } });
          const token = (login.body as { accessToken: string }).accessToken;
          const flags = await request('GET', '/api/admin/flags', { headers: { authorization: `Bearer ${token}` } });
          calls.push(flags.status);
          return flags.status === 200 && calls.length < 3;
        },
      },
    };
    const r = await start(m);
    const s = await waitForValue(() => (stateOf(r, 'flow:admin/custom').status === 'fail' ? stateOf(r, 'flow:admin/custom') : undefined), 5000, 'the custom flow to fail');
    expect(calls.slice(0, 2)).to.deep.equal([200, 200]);
    expect(s.outcome.output).to.equal('flow returned false');
  });

  it('a login-then-admin flow passes with good credentials; with bad ones it fails; the secrets appear nowhere', async () => {
    const good = await start(manifest());
    const okState = await waitForValue(() => stateOf(good, 'flow:admin/admin-panel').last, 3000, 'a flow run');
    expect(okState.status, okState.output).to.equal('pass');
    const critical = await detailed(good, '/health/business-critical');
    expect(critical.checks['admin:flow admin-panel']![0]).to.deep.include({ status: 'pass', level: 3, componentType: 'flow' });
    expect(Object.keys(critical.checks).some((k) => k.startsWith('core:'))).to.equal(false);
    const goodSpans = JSON.stringify(spans.getFinishedSpans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status })));
    expect(goodSpans).to.contain('vigil.flow');
    await good.guard.shutdown();
    await close(good.server);
    running = undefined;

    const bad = await start(manifest(), { PROBE_EMAIL: ADMIN_EMAIL, PROBE_PASSWORD: 'wrong-password-value' });
    const failed = await waitForValue(() => (stateOf(bad, 'flow:admin/admin-panel').status === 'fail' ? stateOf(bad, 'flow:admin/admin-panel') : undefined), 5000, 'the flow to fail');
    expect(failed.outcome.output).to.equal('step login (POST /api/login) answered 401, expected 200');
    const body = JSON.stringify(await detailed(bad)) + JSON.stringify(await detailed(bad, '/health/business-critical'));
    const everything = [goodSpans, body, good.lines.join(''), bad.lines.join(''), JSON.stringify(spans.getFinishedSpans().map((s) => [s.attributes, s.events, s.status]))].join('\n');
    for (const secret of [PASSWORD, 'wrong-password-value', 'tok-']) expect(everything).not.to.contain(secret);
  });

  it('a flow whose credentials are not set fails and says which variable is missing', async () => {
    const r = await start(manifest(), {});
    const s = await waitForValue(() => (stateOf(r, 'flow:admin/admin-panel').status === 'fail' ? stateOf(r, 'flow:admin/admin-panel') : undefined), 5000, 'the flow to fail');
    expect(s.outcome.output).to.equal('step login (POST /api/login): environment variable PROBE_EMAIL is not set');
  });

  it('every probe carries the synthetic header and a traceparent of its probe span', async () => {
    const seen: Array<{ synthetic?: string; traceparent?: string }> = [];
    const r = await start(manifest());
    r.api.stack.unshift(...express.Router().use((req, _res, next) => {
      seen.push({ synthetic: req.headers['x-vigil-synthetic'] as string, traceparent: req.headers.traceparent as string });
      next();
    }).stack);
    await waitForValue(() => (seen.length >= 3 ? true : undefined), 3000, 'probes');
    expect(seen.every((h) => h.synthetic === 'probe' || h.synthetic === 'flow')).to.equal(true);
    const probeSpans = spans.getFinishedSpans().filter((s) => s.name === 'vigil.probe');
    const ids = new Set(probeSpans.map((s) => s.spanContext().spanId));
    const linked = seen.filter((h) => h.traceparent && ids.has(h.traceparent.split('-')[2]!));
    expect(linked.length).to.be.greaterThan(0);
    expect(seen.every((h) => /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/.test(h.traceparent ?? ''))).to.equal(true);
  });

  it('recovery imports a router that failed at startup again, swaps it in, and the routes come back', async () => {
    const { logger, lines } = captureLogs();
    const guard = await vigil({
      manifest: {
        service: 'reimport',
        components: {
          reports: {
            policy: 'degrade',
            routers: [{ module: './routers/fails-once.mjs', mount: '/api' }],
            endpoints: [{ method: 'GET', route: '/api/reports', probe: { expect: { status: [200] } } }],
            recovery: { reimportRouters: true, attempts: 2, backoff: '50ms' },
          },
        },
        monitor: { failureThreshold: 2, successThreshold: 1, jitter: 0, intervals: { endpoints: '50ms', drift: '50ms', process: '1h', errorRate: '1h', flows: '1h', dependencies: '1h', integration: '1h' } },
      },
      baseUrl: new URL('./fixtures/', import.meta.url),
      env: { OTEL_METRICS_EXPORTER: 'none' },
      logger,
    });
    const app = express();
    guard.mountHealth(app);
    const [router] = await guard.mountRouters(app);
    expect(router!.outcome).to.equal('failed');
    const server = createServer(app);
    const port = await listen(server);
    running = { guard, server, knobs: buildApp().knobs, api: express.Router(), lines, base: `http://127.0.0.1:${port}` };
    const report = await guard.validate(app, { server });
    expect(report.status).to.equal('warn');
    expect((await fetch(`http://127.0.0.1:${port}/api/reports`)).status).to.equal(404);
    await waitForValue(() => guard.monitor!.recovery.log.find((i) => i.recoveredAt), 8000, 'the re-import to recover the component');
    expect((await fetch(`http://127.0.0.1:${port}/api/reports`)).status).to.equal(200);
    expect(guard.report!.components[0]!.routers[0]!.outcome).to.equal('success');
    expect(guard.report!.status).to.equal('pass');
    expect(lines.some((l) => l.includes('imported again and swapped in'))).to.equal(true);
  });

  it('error rates count the app own 5xx per route template, not the probes', async () => {
    const r = await start({ ...manifest(), monitor: { ...manifest().monitor, errorRate: { minRequests: 5, window: '1m' }, intervals: { endpoints: '60ms', flows: '1h', drift: '1h', dependencies: '1h', process: '1h', errorRate: '50ms', integration: '1h' } } });
    r.knobs.flakyStatus = 503;
    for (let i = 0; i < 6; i++) await fetch(`${r.base}/api/flaky`);
    const s = await waitForValue(() => (stateOf(r, 'error-rate').status === 'fail' ? stateOf(r, 'error-rate') : undefined), 5000, 'the error rate to fail');
    expect(s.outcome.affectedEndpoints).to.deep.equal(['GET /api/flaky']);
    expect(s.outcome.output).to.match(/^GET \/api\/flaky: 6\/6 5xx \(100\.0%\)/); // the probes of /api/flaky are not counted
  });

  it('a fail-fast dependency failing at run time fails its component, but the startup verdict stays', async () => {
    let up = true;
    const m = manifest();
    m.components.database = { policy: 'fail-fast', dependencies: { pool: { type: 'custom', check: () => up, timeout: '200ms' } } };
    m.monitor!.intervals = { ...m.monitor!.intervals!, dependencies: '50ms' };
    const r = await start(m);
    up = false;
    await waitForValue(() => (stateOf(r, 'dependency:database/pool').status === 'fail' ? true : undefined), 5000, 'the dependency to fail');
    const report = r.guard.report!;
    expect(report.components.find((c) => c.name === 'database')!.status).to.equal('fail');
    expect(report.ok).to.equal(true); // vigil.startup.success keeps saying the start was allowed
    // A fail-fast component's checks are in the `ready` group: /ready stops sending traffic while one fails.
    expect((await fetch(`${r.base}/ready`)).status).to.equal(503);
    expect((await fetch(`${r.base}/health/detailed`)).status).to.equal(503);
  });

  it('addCheck refuses a duplicate id', async () => {
    const r = await start(manifest());
    const check = { id: 'custom:x', level: 1 as const, healthKey: 'x:y', intervalMs: 1000, timeoutMs: 100, run: async () => ({ status: 'pass' as const }) };
    r.guard.addCheck(check);
    expect(() => r.guard.addCheck(check)).to.throw('duplicate monitor check id "custom:x"');
  });

  it('a recovery hook brings a failing component back and the MTTR is recorded', async () => {
    const r = await start(manifest());
    let attempts = 0;
    r.guard.onRecovery(
      'core',
      () => {
        attempts++;
        r.knobs.flakyStatus = 200; // e.g. reconnect the pool
      },
      { attempts: 3, backoffMs: 50 },
    );
    r.knobs.flakyStatus = 503;
    await waitForValue(() => (r.guard.monitor!.recovery.log.some((i) => i.recoveredAt) ? true : undefined), 8000, 'the recovery');
    const incident = r.guard.monitor!.recovery.log.find((i) => i.recoveredAt)!;
    expect(incident.component).to.equal('core');
    expect(incident.attempts).to.equal(1);
    expect(attempts).to.equal(1);
    expect(incident.recoveredAt! - incident.startedAt).to.be.above(0);
    expect(r.lines.some((l) => /component core recovered after \d+ms/.test(l))).to.equal(true);
    expect(stateOf(r, 'endpoint:GET /api/flaky').status).to.equal('pass');
  });
});
