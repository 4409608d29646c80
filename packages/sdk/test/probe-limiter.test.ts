/**
 * The probe set-up docs/sdk.md recommends, against an app with a brute-force
 * limiter (express-rate-limit, 20 failed logins per 15 minutes per address) and
 * a route that creates records: the real monitor probes it many times over the
 * limit, from the same address as a real client. No client is locked out by
 * the probes, no record is created, no check fails. The control, a limiter
 * without the skip, does lock out: the probes fail and the client gets 429.
 */
import { createServer, type Server } from 'node:http';
import { expect } from 'chai';
import { vigil, type VigilGuard } from '../src/guard.js';
import type { ManifestInput } from '../src/manifest/schema.js';
import { PROBE_HEADER, SYNTHETIC_HEADER } from '../src/semconv.js';
import { createLimiterApp, PROBE_USER } from './fixtures/limiter-app/app.js';
import { captureLogs } from './helpers/logs.js';
import { close, listen } from './helpers/servers.js';
import { waitForValue } from './helpers/wait.js';

/** The manifest of the docs' pattern: a wrong-password login probe opted in, a login flow, the creating route declared but not opted in. */
const MANIFEST: ManifestInput = {
  service: 'limited',
  components: {
    auth: {
      policy: 'fail-fast',
      endpoints: [{ method: 'POST', route: '/api/login', probe: { unsafe: true, body: { email: 'nobody@limiter.test', password: 'not-a-real-password' }, expect: { status: [401] } } }],
      flows: {
        login: {
          steps: [
            { name: 'login', method: 'POST', path: '/api/login', body: { email: '${env:PROBE_EMAIL}', password: '${env:PROBE_PASSWORD}' }, expect: { status: [200] }, capture: { token: 'accessToken' } },
            { name: 'links', method: 'GET', path: '/api/links', headers: { authorization: 'Bearer ${token}' }, expect: { status: [200] } },
          ],
        },
      },
    },
    links: {
      policy: 'degrade',
      endpoints: [{ method: 'GET', route: '/api/links', probe: { auth: true } }, 'POST /api/links'],
    },
  },
  monitor: {
    jitter: 0,
    failureThreshold: 3,
    intervals: { endpoints: '15ms', flows: '30ms', drift: '1h', dependencies: '1h', process: '1h', errorRate: '1h', integration: '1h' },
  },
};

interface Running {
  guard: VigilGuard;
  server: Server;
  base: string;
  links: Array<{ id: number }>;
  /** Every published state of the endpoint and flow checks, and every raw failure. */
  states: string[];
  failures: string[];
  loginProbes: () => number;
}

async function start(skipProbes: boolean): Promise<Running> {
  const { logger } = captureLogs();
  const guard = await vigil({ manifest: MANIFEST, env: { OTEL_METRICS_EXPORTER: 'none', PROBE_EMAIL: PROBE_USER.email, PROBE_PASSWORD: PROBE_USER.password }, logger });
  const { app, links } = createLimiterApp(guard, { skipProbes });
  const server = createServer(app);
  const port = await listen(server);
  await guard.validate(app, { server });
  const states: string[] = [];
  const failures: string[] = [];
  let loginProbes = 0;
  guard.monitor!.onOutcome((check, outcome, state) => {
    if (!check.id.startsWith('endpoint:') && !check.id.startsWith('flow:')) return;
    if (check.id === 'endpoint:POST /api/login' && outcome.status !== 'unknown') loginProbes++;
    states.push(`${check.id} ${state.status}`);
    if (outcome.status === 'fail') failures.push(`${check.id}: ${outcome.output}`);
  });
  return { guard, server, base: `http://127.0.0.1:${port}`, links, states, failures, loginProbes: () => loginProbes };
}

/** A real client's failed login from 127.0.0.1, the probes' address: its status and the limiter's RateLimit header. */
async function clientLogin(base: string, headers: Record<string, string> = {}): Promise<{ status: number; rateLimit: string | null }> {
  const res = await fetch(`${base}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ email: 'someone@limiter.test', password: 'typo' }) });
  await res.arrayBuffer();
  return { status: res.status, rateLimit: res.headers.get('ratelimit') };
}

describe('probes against an app with a brute-force limiter', function () {
  this.timeout(60_000);
  let running: Running | undefined;
  afterEach(async () => {
    await running?.guard.shutdown();
    if (running?.server.listening) await close(running.server);
    running = undefined;
  });

  it('with the documented skip: 3× the limit of failed-login probes lock out no client, create nothing, fail nothing', async () => {
    const r = (running = await start(true));
    await waitForValue(() => (r.loginProbes() >= 60 ? true : undefined), 30_000, '60 wrong-password login probes');
    await waitForValue(() => (r.states.filter((s) => s.startsWith('flow:auth/login ')).length >= 10 ? true : undefined), 30_000, '10 runs of the login flow');

    // The probes' wrong passwords did not count: a real client from the same address has its full allowance.
    const first = await clientLogin(r.base);
    expect(first).to.deep.include({ status: 401 });
    expect(first.rateLimit).to.match(/remaining=19\b/);
    expect(r.links).to.deep.equal([]);
    expect(r.failures).to.deep.equal([]);
    const views = Object.fromEntries(r.guard.monitor!.checks.filter((v) => /^(endpoint|flow):/.test(v.check.id)).map((v) => [v.check.id, [v.state.status, v.state.outcome.output]]));
    expect(views).to.deep.equal({
      'endpoint:POST /api/login': ['pass', undefined],
      'endpoint:GET /api/links': ['pass', undefined],
      'endpoint:POST /api/links': ['unknown', 'not probed: POST needs probe.unsafe or a flow'],
      'flow:auth/login': ['pass', undefined],
    });

    // The limiter still protects: a client sending Vigil's headers without a valid marker is counted and locked out...
    const forged = { [SYNTHETIC_HEADER]: 'probe', [PROBE_HEADER]: `${Math.floor(Date.now() / 1000)}.${'A'.repeat(43)}` };
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await clientLogin(r.base, forged)).status);
    expect(statuses.filter((s) => s === 429)).to.have.length(1); // the first of the 20 was counted before: 19 left
    expect((await clientLogin(r.base)).status).to.equal(429);
    // ...while the probes, from that locked-out address, keep passing.
    const after = r.loginProbes();
    await waitForValue(() => (r.loginProbes() >= after + 10 ? true : undefined), 30_000, '10 more login probes');
    expect(r.failures).to.deep.equal([]);
    expect(r.guard.monitor!.checks.find((v) => v.check.id === 'endpoint:POST /api/login')!.state.status).to.equal('pass');
  });

  it('control: without the skip, the same probes use up the limit, fail with 429 and lock the address out', async () => {
    const r = (running = await start(false));
    const failed = await waitForValue(
      () => r.guard.monitor!.checks.find((v) => v.check.id === 'endpoint:POST /api/login' && v.state.status === 'fail'),
      30_000,
      'the login probe to fail',
    );
    expect(failed.state.outcome.output).to.equal('answered 429, expected 401');
    expect((await clientLogin(r.base)).status).to.equal(429);
    expect(r.links).to.deep.equal([]); // the method policy holds either way
  });
});
