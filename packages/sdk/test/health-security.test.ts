/**
 * The health endpoints as an attacker sees them, on a real Express app served
 * by a real guard: `/health` and `/ready` say nothing internal in any state
 * (the exact keys and values of their bodies), the detailed endpoints are
 * refused without the token (also on loopback when the config does not allow
 * it, always from another address), with nothing in the refusal but the
 * reason, and a wrong token of the right length is refused too. `tokenMatches`
 * compares in constant time: `crypto.timingSafeEqual` over two equal-length
 * digests, whatever the lengths of the inputs (observed, not timed).
 * `access.test.ts` has the decision table of `decideAccess` itself.
 */
import crypto from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { syncBuiltinESMExports } from 'node:module';
import os from 'node:os';
import { expect } from 'chai';
import express from 'express';
import { pino } from 'pino';
import { vigil, type VigilGuard } from '../src/guard.js';
import { tokenMatches } from '../src/health/access.js';
import { livenessHandler, readinessHandler } from '../src/health/endpoints.js';
import type { ManifestInput } from '../src/manifest/schema.js';
import { close } from './helpers/servers.js';

const fixtures = new URL('./fixtures/', import.meta.url);
const GOOD = new URL('./routers/good.mjs', fixtures).href;
const THROWS = new URL('./routers/throws.mjs', fixtures).href;
const TOKEN = 'h3alth-t0ken-0123456789abcdef';
/** Same length as TOKEN, one character different (the last). */
const ALMOST = 'h3alth-t0ken-0123456789abcdeF';
/** Same length as TOKEN, first character different. */
const FIRST_DIFFERS = 'H3alth-t0ken-0123456789abcdef';

/** Words that would betray the app's internals: service, version, components, routers, errors, modules, host. */
const INTERNALS = ['shop', '9.9.9', 'payments', 'ledger', 'checkout', 'ERR_', 'missing-schema', '.mjs', os.hostname()];

function manifest(broken: string[], allowLoopback: boolean): ManifestInput {
  const router = (name: string) => ({ name, mount: `/${name}`, load: () => import(broken.includes(name) ? THROWS : GOOD) });
  return {
    service: 'shop',
    version: '9.9.9',
    components: {
      payments: { policy: 'fail-fast', businessCritical: true, routers: [router('checkout')], endpoints: ['GET /checkout/items'] },
      ledger: { policy: 'degrade', routers: [router('ledger')], endpoints: ['POST /ledger/items'] },
    },
    health: { allowLoopback, tokenEnv: 'SHOP_HEALTH_TOKEN' },
  };
}

interface Running {
  guard: VigilGuard;
  server: Server;
  base: string;
}

async function start(opts: { broken?: string[]; allowLoopback?: boolean; host?: string; token?: string; validate?: boolean } = {}): Promise<Running> {
  const env = opts.token === undefined ? {} : { SHOP_HEALTH_TOKEN: opts.token };
  const guard = await vigil({ manifest: manifest(opts.broken ?? [], opts.allowLoopback ?? false), telemetry: false, env, logger: pino({ level: 'silent' }) });
  const app = express();
  guard.mountHealth(app);
  await guard.mountRouters(app);
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, opts.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  if (opts.validate !== false) await guard.validate(app, { throwOnFailure: false });
  return { guard, server, base: `http://${opts.host && opts.host !== '0.0.0.0' ? opts.host : '127.0.0.1'}:${port}` };
}

async function get(url: string, authorization?: string) {
  const res = await fetch(url, authorization ? { headers: { authorization } } : {});
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as Record<string, unknown>, headers: res.headers };
}

const REFUSALS = [
  'detailed health needs a bearer token (Authorization: Bearer <token>)',
  'the bearer token is not valid',
  'detailed health is served to loopback callers only; set the health token variable to open it to others',
  'detailed health is closed: loopback access is off and no health token is set',
];

function expectRefused(r: Awaited<ReturnType<typeof get>>, output: string) {
  expect(r.status).to.equal(401);
  expect(r.headers.get('www-authenticate')).to.equal('Bearer realm="vigil"');
  // Nothing but the status and the reason, which is one of four fixed texts.
  expect(r.body).to.deep.equal({ status: 'fail', output });
  expect(REFUSALS).to.include(output);
}

describe('health endpoints: what they reveal, and to whom', () => {
  const running: Running[] = [];
  afterEach(async () => {
    for (const r of running.splice(0)) {
      await r.guard.shutdown();
      if (r.server.listening) await close(r.server);
    }
  });
  const track = (r: Running) => (running.push(r), r);

  describe('/health and /ready reveal nothing internal', () => {
    // state → the exact bodies (status code, JSON) of /health and /ready.
    const states: Array<[string, { broken?: string[]; validate?: boolean }, [number, object], [number, object]]> = [
      ['starting (not validated yet)', { validate: false }, [200, { status: 'pass' }], [503, { status: 'fail', output: 'starting' }]],
      ['healthy', {}, [200, { status: 'pass' }], [200, { status: 'pass' }]],
      ['degraded (a degrade router failed to import)', { broken: ['ledger'] }, [200, { status: 'pass' }], [200, { status: 'pass' }]],
      ['failed (a fail-fast router failed to import)', { broken: ['checkout'] }, [200, { status: 'pass' }], [503, { status: 'fail', output: 'startup validation failed' }]],
      ['everything broken', { broken: ['checkout', 'ledger'] }, [200, { status: 'pass' }], [503, { status: 'fail', output: 'startup validation failed' }]],
    ];
    for (const [state, opts, health, ready] of states) {
      it(`${state}: /health ${health[0]} ${JSON.stringify(health[1])}, /ready ${ready[0]} ${JSON.stringify(ready[1])}`, async () => {
        const s = track(await start({ ...opts, token: TOKEN }));
        for (const [path, [status, body]] of [['/health', health], ['/ready', ready]] as const) {
          const r = await get(`${s.base}${path}`);
          expect(r.status, path).to.equal(status);
          expect(r.body, path).to.deep.equal(body);
          for (const word of INTERNALS) expect(r.text, `${path} names ${word}`).not.to.contain(word);
          expect(r.headers.get('content-type')).to.equal('application/health+json');
          for (const word of INTERNALS) expect(JSON.stringify([...r.headers]), `${path} headers name ${word}`).not.to.contain(word);
        }
        // The detailed view, with the token, does say what is wrong: the two views really differ.
        const detailed = await get(`${s.base}/health/detailed`, `Bearer ${TOKEN}`);
        if (opts.broken?.length) expect(detailed.text).to.contain('ERR_MODULE_NOT_FOUND');
      });
    }

    it('draining: /ready says only "shutting down", /health still "pass"', async () => {
      // The guard's drain (on SIGTERM) would end this process: the handlers are served with the phase it sets.
      const source = { phase: () => 'draining' as const, report: () => undefined, meta: { service: 'shop', version: '9.9.9' }, access: () => ({ token: TOKEN, allowLoopback: false }), runtime: () => undefined, refresh: async () => {}, notReady: () => [] };
      const ready = readinessHandler(source);
      const live = livenessHandler();
      const server = createServer((req, res) => (req.url === '/ready' ? ready(req, res) : live(req, res)));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      try {
        expect(await get(`${base}/ready`)).to.deep.include({ status: 503, body: { status: 'fail', output: 'shutting down' } });
        expect(await get(`${base}/health`)).to.deep.include({ status: 200, body: { status: 'pass' } });
      } finally {
        await close(server);
      }
    });
  });

  describe('/health/detailed and /health/business-critical are guarded', () => {
    for (const path of ['/health/detailed', '/health/business-critical']) {
      it(`${path}: loopback not allowed → no token, a wrong token (same length), a token in the query or as Basic are all refused; the token opens it`, async () => {
        const s = track(await start({ token: TOKEN, broken: ['checkout'] }));
        expectRefused(await get(`${s.base}${path}`), REFUSALS[0]!);
        expectRefused(await get(`${s.base}${path}`, `Bearer ${ALMOST}`), REFUSALS[1]!);
        expectRefused(await get(`${s.base}${path}`, `Bearer ${FIRST_DIFFERS}`), REFUSALS[1]!);
        expectRefused(await get(`${s.base}${path}`, `Bearer ${TOKEN.slice(0, -1)}`), REFUSALS[1]!);
        expectRefused(await get(`${s.base}${path}`, `Bearer ${TOKEN}x`), REFUSALS[1]!);
        expectRefused(await get(`${s.base}${path}?token=${TOKEN}`), REFUSALS[0]!);
        expectRefused(await get(`${s.base}${path}`, `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`), REFUSALS[0]!);
        const ok = await get(`${s.base}${path}`, `Bearer ${TOKEN}`);
        expect(ok.status).to.equal(503); // payments (fail-fast) is broken
        expect(ok.body).to.include({ serviceId: 'shop', status: 'fail' });
        expect(ok.body.checks).to.have.property('payments:router-import');
      });
    }

    it('no token configured and loopback not allowed: closed to everyone', async () => {
      const s = track(await start({}));
      expectRefused(await get(`${s.base}/health/detailed`), REFUSALS[3]!);
      expectRefused(await get(`${s.base}/health/business-critical`, 'Bearer anything'), REFUSALS[1]!);
    });

    it('loopback allowed: a loopback caller is served without the token', async () => {
      const s = track(await start({ allowLoopback: true, token: TOKEN }));
      expect((await get(`${s.base}/health/detailed`)).status).to.equal(200);
      expect((await get(`${s.base}/health/business-critical`)).status).to.equal(200);
    });

    it('loopback allowed: a caller from another address is refused without the token, served with it', async function () {
      const external = Object.values(os.networkInterfaces())
        .flat()
        .find((a) => a && !a.internal && a.family === 'IPv4')?.address;
      if (!external) this.skip(); // no non-loopback IPv4 address on this machine
      const s = track(await start({ allowLoopback: true, token: TOKEN, host: external }));
      for (const path of ['/health/detailed', '/health/business-critical']) {
        expectRefused(await get(`${s.base}${path}`), REFUSALS[0]!);
        expectRefused(await get(`${s.base}${path}`, `Bearer ${ALMOST}`), REFUSALS[1]!);
        expect((await get(`${s.base}${path}`, `Bearer ${TOKEN}`)).status).to.equal(200);
      }
      // And without a token configured, only loopback callers are served.
      const open = track(await start({ allowLoopback: true, host: external }));
      expectRefused(await get(`${open.base}/health/detailed`), REFUSALS[2]!);
    });
  });

  describe('tokenMatches is constant-time', () => {
    let calls: Array<[number, number]>;
    const original = crypto.timingSafeEqual;
    beforeEach(() => {
      calls = [];
      // The module's `import { timingSafeEqual } from 'node:crypto'` sees the replacement once the builtin's exports are synced.
      crypto.timingSafeEqual = ((a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
        calls.push([a.byteLength, b.byteLength]);
        return original(a, b);
      }) as typeof crypto.timingSafeEqual;
      syncBuiltinESMExports();
    });
    afterEach(() => {
      crypto.timingSafeEqual = original;
      syncBuiltinESMExports();
    });

    const pairs: Array<[string, string, string, boolean]> = [
      ['equal', TOKEN, TOKEN, true],
      ['same length, last byte differs', ALMOST, TOKEN, false],
      ['same length, first byte differs', FIRST_DIFFERS, TOKEN, false],
      ['shorter (a prefix)', TOKEN.slice(0, 5), TOKEN, false],
      ['longer (token + more)', `${TOKEN}${TOKEN}`, TOKEN, false],
      ['empty', '', TOKEN, false],
    ];
    for (const [name, given, expected, result] of pairs) {
      it(`${name}: ${result}, decided by one timingSafeEqual over two 32-byte digests`, () => {
        expect(tokenMatches(given, expected)).to.equal(result);
        // Every comparison, whatever the inputs, is exactly one timingSafeEqual of SHA-256 digests:
        // no early return on length, no byte-by-byte loop of its own.
        expect(calls).to.deep.equal([[32, 32]]);
      });
    }
  });
});
