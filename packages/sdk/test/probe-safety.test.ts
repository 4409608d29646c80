/**
 * Probes that do no harm: the probe marker no client can forge (`isProbe`), and
 * the method policy (only GET, HEAD and OPTIONS are probed unless the manifest
 * opts in), against a real Express app on 127.0.0.1.
 */
import { createServer, type Server } from 'node:http';
import { expect } from 'chai';
import express from 'express';
import { vigil, type VigilGuard } from '../src/guard.js';
import { isProbe as isProbeExport } from '../src/index.js';
import { Manifest, type ManifestInput } from '../src/manifest/schema.js';
import { isProbe, LIMITER_KIND, probeHeaders, probeKind } from '../src/monitor/marker.js';
import { formatProbePlan, probePlan, unsafeNotProbed } from '../src/monitor/probe-policy.js';
import { PROBE_HEADER, SYNTHETIC_HEADER } from '../src/semconv.js';
import { captureLogs } from './helpers/logs.js';
import { close, listen } from './helpers/servers.js';
import { waitForValue } from './helpers/wait.js';

const req = (headers: Record<string, string | string[]>) => ({ headers });

describe('the probe marker', () => {
  it('vouches for a request this process made, of any kind but the rate-limit check', () => {
    for (const kind of ['probe', 'flow', 'cors']) {
      expect(probeKind(req(probeHeaders(kind)))).to.equal(kind);
      expect(isProbe(req(probeHeaders(kind)))).to.equal(true);
    }
    // The rate-limit check must meet the limiter like a client; the accounting still knows it.
    expect(probeKind(req(probeHeaders(LIMITER_KIND)))).to.equal(LIMITER_KIND);
    expect(isProbe(req(probeHeaders(LIMITER_KIND)))).to.equal(false);
    expect(isProbeExport).to.equal(isProbe);
  });

  it('is not fooled by x-vigil-synthetic alone, a made-up or altered mac, another kind, or an old marker', () => {
    const good = probeHeaders('probe');
    const [seconds, mac] = good[PROBE_HEADER]!.split('.') as [string, string];
    const flipped = `${mac.slice(0, -2)}${mac.at(-2) === 'A' ? 'B' : 'A'}${mac.at(-1)}`;
    const forged: Array<[string, Record<string, string | string[]>]> = [
      ['the old header alone', { [SYNTHETIC_HEADER]: 'probe' }],
      ['a marker without its kind', { [PROBE_HEADER]: good[PROBE_HEADER]! }],
      ['a made-up mac', { [SYNTHETIC_HEADER]: 'probe', [PROBE_HEADER]: `${seconds}.${'A'.repeat(43)}` }],
      ['one character of the mac changed', { [SYNTHETIC_HEADER]: 'probe', [PROBE_HEADER]: `${seconds}.${flipped}` }],
      ['the mac cut short', { [SYNTHETIC_HEADER]: 'probe', [PROBE_HEADER]: `${seconds}.${mac.slice(0, 20)}` }],
      ['a marker moved to another kind', { [SYNTHETIC_HEADER]: 'flow', [PROBE_HEADER]: good[PROBE_HEADER]! }],
      ['another time with the same mac', { [SYNTHETIC_HEADER]: 'probe', [PROBE_HEADER]: `${Number(seconds) + 1}.${mac}` }],
      ['a marker made 10 minutes ago', probeHeaders('probe', Date.now() - 600_000)],
      ['a marker dated 10 minutes ahead', probeHeaders('probe', Date.now() + 600_000)],
      ['no time', { [SYNTHETIC_HEADER]: 'probe', [PROBE_HEADER]: `.${mac}` }],
      ['no dot', { [SYNTHETIC_HEADER]: 'probe', [PROBE_HEADER]: mac }],
      ['a repeated header', { [SYNTHETIC_HEADER]: 'probe', [PROBE_HEADER]: [good[PROBE_HEADER]!, good[PROBE_HEADER]!] }],
      ['an overlong value', { [SYNTHETIC_HEADER]: 'probe', [PROBE_HEADER]: `${good[PROBE_HEADER]!}${'A'.repeat(100)}` }],
    ];
    for (const [what, headers] of forged) {
      expect(probeKind(req(headers)), what).to.equal(undefined);
      expect(isProbe(req(headers)), what).to.equal(false);
    }
    // A marker from a minute ago (a slow probe) still counts.
    expect(isProbe(req(probeHeaders('probe', Date.now() - 60_000)))).to.equal(true);
  });

  it('carries no secret: the header is a time and a mac that changes with kind and time', () => {
    const a = probeHeaders('probe', 1_000_000_000_000)[PROBE_HEADER]!;
    const b = probeHeaders('flow', 1_000_000_000_000)[PROBE_HEADER]!;
    const c = probeHeaders('probe', 1_000_000_001_000)[PROBE_HEADER]!;
    expect(a).to.match(/^1000000000\.[A-Za-z0-9_-]{43}$/);
    expect(new Set([a.split('.')[1], b.split('.')[1], c.split('.')[1]]).size).to.equal(3);
  });
});

describe('the probe method policy', () => {
  const parse = (components: ManifestInput['components']) => Manifest.parse({ service: 's', components });

  it('probes GET, HEAD and OPTIONS; any other method only with probe.unsafe', () => {
    const m = parse({
      api: {
        policy: 'degrade',
        endpoints: ['GET /a', 'HEAD /a', 'OPTIONS /a', 'POST /links', 'PUT /links/:id', 'PATCH /links/:id', 'DELETE /links/:id', { method: 'POST', route: '/login', probe: { unsafe: true } }],
      },
    });
    const why = m.components.api!.endpoints.map((e) => [`${e.method} ${e.route}`, unsafeNotProbed(m, e)]);
    expect(why).to.deep.equal([
      ['GET /a', undefined],
      ['HEAD /a', undefined],
      ['OPTIONS /a', undefined],
      ['POST /links', 'not probed: POST needs probe.unsafe or a flow'],
      ['PUT /links/:id', 'not probed: PUT needs probe.unsafe or a flow'],
      ['PATCH /links/:id', 'not probed: PATCH needs probe.unsafe or a flow'],
      ['DELETE /links/:id', 'not probed: DELETE needs probe.unsafe or a flow'],
      ['POST /login', undefined],
    ]);
  });

  it('names the flows that call an unsafe endpoint, and warns about every unsafe request opted in', () => {
    const m = parse({
      auth: { policy: 'degrade', endpoints: ['POST /api/login', { method: 'POST', route: '/api/refresh', probe: { unsafe: true } }, { method: 'DELETE', route: '/api/s/:id', probe: { enabled: false } }] },
      orgs: {
        policy: 'degrade',
        endpoints: ['PUT /api/orgs/:id/switch'],
        flows: {
          switch: {
            steps: [
              { name: 'login', method: 'POST', path: '/api/login', capture: { token: 'accessToken' } },
              { name: 'switch', method: 'PUT', path: '/api/orgs/${token}/switch?x=1' },
              { name: 'read', method: 'GET', path: '/api/orgs' },
            ],
          },
        },
      },
    });
    expect(unsafeNotProbed(m, m.components.auth!.endpoints[0]!)).to.equal('not probed: POST needs probe.unsafe; flow orgs/switch calls it');
    expect(unsafeNotProbed(m, m.components.orgs!.endpoints[0]!)).to.equal('not probed: PUT needs probe.unsafe; flow orgs/switch calls it');
    const plan = probePlan(m);
    expect(plan.notProbed).to.deep.equal([
      'auth: POST /api/login not probed: POST needs probe.unsafe; flow orgs/switch calls it',
      'orgs: PUT /api/orgs/:id/switch not probed: PUT needs probe.unsafe; flow orgs/switch calls it',
    ]);
    expect(plan.warnings).to.have.length(3);
    expect(plan.warnings[0]).to.match(/^auth: the probe of POST \/api\/refresh sends POST \(probe\.unsafe\)/);
    expect(plan.warnings[1]).to.match(/^orgs: flow switch, step login sends POST \/api\/login/);
    expect(plan.warnings[2]).to.match(/^orgs: flow switch, step switch sends PUT \/api\/orgs\/\$\{token\}\/switch\?x=1/);
    expect(formatProbePlan(plan).split('\n')[0]).to.equal('Probes:');
    expect(formatProbePlan(probePlan(parse({ api: { policy: 'degrade', endpoints: ['GET /a'] } })))).to.equal('');
  });

  it('rejects a probe.unsafe that is not a boolean, naming the path', () => {
    const r = Manifest.safeParse({ service: 's', components: { api: { policy: 'degrade', endpoints: [{ method: 'POST', route: '/x', probe: { unsafe: 'yes' } }] } } });
    expect(r.success).to.equal(false);
    expect(r.error!.issues[0]!.path).to.deep.equal(['components', 'api', 'endpoints', 0, 'probe', 'unsafe']);
  });

  describe('on a running monitor', function () {
    this.timeout(20_000);
    let guard: VigilGuard | undefined;
    let server: Server | undefined;
    afterEach(async () => {
      await guard?.shutdown();
      if (server?.listening) await close(server);
      guard = undefined;
    });

    it('sends no POST without the opt-in, says why in /health/detailed, and probes the opted-in one with its marker', async () => {
      const seen: Array<{ method: string; path: string; probe: boolean }> = [];
      const { logger, lines } = captureLogs();
      guard = await vigil({
        manifest: {
          service: 'policy',
          components: {
            api: {
              policy: 'degrade',
              endpoints: ['GET /items', 'POST /items', { method: 'POST', route: '/login', probe: { unsafe: true, body: {}, expect: { status: [401] } } }],
            },
          },
          monitor: { jitter: 0, intervals: { endpoints: '40ms', flows: '1h', drift: '1h', dependencies: '1h', process: '1h', errorRate: '1h', integration: '1h' } },
        },
        env: { OTEL_METRICS_EXPORTER: 'none' },
        logger,
      });
      const app = express();
      app.use((q, _s, next) => {
        seen.push({ method: q.method, path: q.path, probe: guard!.isProbe(q) });
        next();
      });
      guard.mountHealth(app);
      const created: string[] = [];
      app.get('/items', (_q, s) => void s.json(created));
      app.post('/items', (_q, s) => void s.status(201).json({ id: created.push('x') }));
      app.post('/login', (_q, s) => void s.status(401).json({ error: 'bad credentials' }));
      server = createServer(app);
      const port = await listen(server);
      await guard.validate(app, { server });
      await waitForValue(() => (seen.filter((s) => s.path === '/login').length >= 5 && seen.filter((s) => s.path === '/items').length >= 5 ? true : undefined), 5000, 'several probe cycles');
      expect(seen.filter((s) => s.method === 'POST' && s.path === '/items')).to.deep.equal([]);
      expect(created).to.deep.equal([]);
      expect(seen.filter((s) => s.path !== '/health/detailed').every((s) => s.probe)).to.equal(true);
      const body = (await (await fetch(`http://127.0.0.1:${port}/health/detailed`)).json()) as { checks: Record<string, Array<{ status: string; output?: string }>> };
      expect(body.checks['api:endpoint POST /items']![0]).to.deep.include({ status: 'unknown', output: 'not probed: POST needs probe.unsafe or a flow' });
      expect(body.checks['api:endpoint POST /login']![0]!.status).to.equal('pass');
      expect(body.checks['api:endpoint GET /items']![0]!.status).to.equal('pass');
      // The request of the test itself is a client's, not a probe.
      expect(seen.find((s) => s.path === '/health/detailed')!.probe).to.equal(false);
      const log = lines.join('');
      expect(log).to.contain('unsafe probe opted in: api: the probe of POST /login sends POST');
      expect(log).to.contain('api: POST /items not probed: POST needs probe.unsafe or a flow');
    });
  });
});
