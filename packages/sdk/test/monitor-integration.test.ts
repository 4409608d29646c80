import http from 'node:http';
import { expect } from 'chai';
import express5 from 'express';
// @ts-expect-error express4 is an npm alias of express@4 with no types of its own
import express4Untyped from 'express4';
import { corsCheck, errorHandlerOrderCheck, jwtConfigCheck, rateLimitCheck } from '../src/monitor/checks/integration.js';
import type { MonitorCheck } from '../src/monitor/types.js';
import { SYNTHETIC_HEADER } from '../src/semconv.js';
import { close, closedPort, listen } from './helpers/servers.js';

type AnyExpress = typeof express5;
const express4 = express4Untyped as AnyExpress;
const live = () => new AbortController().signal;
const schedule = { intervalMs: 30_000, timeoutMs: 2_000 };

/** Starts `handler` on 127.0.0.1; returns its base URL and stops it after the current suite. */
function serve(handler: http.RequestListener): { url: () => string | undefined } {
  const server = http.createServer(handler);
  let base: string | undefined;
  before(async () => {
    base = `http://127.0.0.1:${await listen(server)}`;
  });
  after(() => close(server));
  return { url: () => base };
}

describe('monitor integration checks', () => {
  describe('corsCheck', () => {
    const seen: http.IncomingHttpHeaders[] = [];
    const seenMethods: string[] = [];
    // `/echo` allows the requesting origin, `/star` any origin, `/none` sends no CORS header, `/broken` a 500 with the header.
    const app = serve((req, res) => {
      seen.push(req.headers);
      seenMethods.push(req.method ?? '');
      const headers: Record<string, string> = {};
      if (req.url === '/echo' && req.headers.origin) headers['access-control-allow-origin'] = req.headers.origin;
      if (req.url === '/star') headers['access-control-allow-origin'] = '*';
      if (req.url === '/broken') headers['access-control-allow-origin'] = '*';
      res.writeHead(req.url === '/broken' ? 500 : 204, headers).end();
    });
    beforeEach(() => {
      seen.length = 0;
      seenMethods.length = 0;
    });

    it('describes itself as a level-4 check of its component', () => {
      const check = corsCheck({ ...schedule, baseUrl: app.url, path: '/echo', origin: 'https://app.example', expectAllowed: true, component: 'web' });
      expect(check).to.include({ id: 'integration:cors /echo', healthKey: 'web:cors', level: 4, component: 'web', intervalMs: 30_000, timeoutMs: 2_000 });
      const plain = corsCheck({ ...schedule, baseUrl: app.url, path: '/echo', origin: 'https://app.example', expectAllowed: true });
      expect(plain.healthKey).to.equal('integration:cors');
      expect(plain).not.to.have.property('component');
    });

    // path, expectAllowed → status, what the output says
    const table: Array<[string, boolean, 'pass' | 'fail', string | undefined]> = [
      ['/echo', true, 'pass', undefined],
      ['/star', true, 'pass', undefined],
      ['/none', true, 'fail', 'was refused (status 204, no Access-Control-Allow-Origin); expected it allowed'],
      ['/broken', true, 'fail', 'was refused (status 500, Access-Control-Allow-Origin: *); expected it allowed'],
      ['/none', false, 'pass', undefined],
      ['/echo', false, 'fail', 'was allowed (Access-Control-Allow-Origin: https://app.example); expected it refused'],
      ['/star', false, 'fail', 'was allowed (Access-Control-Allow-Origin: *); expected it refused'],
    ];
    for (const [path, expectAllowed, status, says] of table) {
      it(`is ${status} on ${path} when the origin should be ${expectAllowed ? 'allowed' : 'refused'}`, async () => {
        const check = corsCheck({ ...schedule, baseUrl: app.url, path, origin: 'https://app.example', expectAllowed });
        const outcome = await check.run(live());
        expect(outcome.status).to.equal(status);
        expect(outcome.observedUnit).to.equal('status');
        if (says) expect(outcome.output).to.equal(`preflight OPTIONS ${path} from https://app.example for GET ${says}`);
        else expect(outcome.output).to.equal(undefined);
      });
    }

    it('sends the preflight a browser would, marked synthetic', async () => {
      const check = corsCheck({ ...schedule, baseUrl: app.url, path: '/echo', origin: 'https://app.example', expectAllowed: true, method: 'delete' });
      await check.run(live());
      expect(seenMethods).to.deep.equal(['OPTIONS']);
      expect(seen[0]).to.include({ origin: 'https://app.example', 'access-control-request-method': 'DELETE', [SYNTHETIC_HEADER]: 'cors' });
    });

    it('warns while the app has no address', async () => {
      const check = corsCheck({ ...schedule, baseUrl: () => undefined, path: '/echo', origin: 'https://app.example', expectAllowed: true });
      expect(await check.run(live())).to.deep.equal({ status: 'warn', output: 'no address to probe yet' });
    });

    it('fails, without throwing, when nothing listens', async () => {
      const port = await closedPort();
      const check = corsCheck({ ...schedule, baseUrl: () => `http://127.0.0.1:${port}`, path: '/echo', origin: 'https://app.example', expectAllowed: true });
      expect(await check.run(live())).to.deep.equal({ status: 'fail', output: 'preflight OPTIONS /echo failed: ECONNREFUSED' });
    });
  });

  describe('rateLimitCheck', () => {
    const hits = new Map<string, number>();
    const synthetic: Array<string | undefined> = [];
    // `/limited` answers 429 from the 4th request on; `/open` never limits; `/custom` answers 503 from the 2nd.
    const app = serve((req, res) => {
      synthetic.push(req.headers[SYNTHETIC_HEADER] as string | undefined);
      const n = (hits.get(req.url!) ?? 0) + 1;
      hits.set(req.url!, n);
      if (req.url === '/limited' && n > 3) return void res.writeHead(429).end();
      if (req.url === '/custom' && n > 1) return void res.writeHead(503).end();
      res.writeHead(200).end('ok');
    });
    beforeEach(() => {
      hits.clear();
      synthetic.length = 0;
    });

    it('describes itself as a level-4 check', () => {
      const check = rateLimitCheck({ ...schedule, baseUrl: app.url, path: '/limited', requests: 10, component: 'auth' });
      expect(check).to.include({ id: 'integration:rate-limit GET /limited', healthKey: 'auth:rate-limit', level: 4, component: 'auth' });
    });

    it('passes at the first 429 and reports how many requests it took', async () => {
      const outcome = await rateLimitCheck({ ...schedule, baseUrl: app.url, path: '/limited', requests: 10 }).run(live());
      expect(outcome).to.deep.equal({ status: 'pass', observedValue: 4, observedUnit: 'requests' });
      expect(hits.get('/limited')).to.equal(4); // stops as soon as the limit answers
      expect(synthetic).to.deep.equal(['rate-limit', 'rate-limit', 'rate-limit', 'rate-limit']);
    });

    it('accepts another status as the proof of a limit', async () => {
      const outcome = await rateLimitCheck({ ...schedule, baseUrl: app.url, path: '/custom', method: 'post', requests: 5, expectStatus: 503 }).run(live());
      expect(outcome).to.include({ status: 'pass', observedValue: 2 });
    });

    it('fails when no request was limited', async () => {
      const outcome = await rateLimitCheck({ ...schedule, baseUrl: app.url, path: '/open', requests: 15 }).run(live());
      expect(outcome).to.deep.equal({
        status: 'fail',
        observedValue: 15,
        observedUnit: 'requests',
        output: 'no 429 after 15 requests: rate limiting is not enforced',
        affectedEndpoints: ['GET /open'],
      });
      expect(hits.get('/open')).to.equal(15);
    });

    it('fails when the limit comes later than the requests it may send', async () => {
      const outcome = await rateLimitCheck({ ...schedule, baseUrl: app.url, path: '/limited', requests: 3 }).run(live());
      expect(outcome).to.include({ status: 'fail', observedValue: 3, output: 'no 429 after 3 requests: rate limiting is not enforced' });
    });

    it('warns while the app has no address', async () => {
      const outcome = await rateLimitCheck({ ...schedule, baseUrl: () => undefined, path: '/limited', requests: 3 }).run(live());
      expect(outcome).to.deep.equal({ status: 'warn', output: 'no address to probe yet' });
    });
  });

  describe('jwtConfigCheck', () => {
    const SECRET = 'a-very-secret-value-that-must-never-leak-0123456789';
    const jwks = serve((req, res) => {
      if (req.url === '/keys') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [{ kty: 'RSA', kid: '1' }] }));
      if (req.url === '/empty') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}');
      if (req.url === '/html') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>');
      if (req.url === '/nokeys') return void res.writeHead(200).end('{"jwks":[]}');
      res.writeHead(500).end();
    });
    const host = () => new URL(jwks.url()!).host;

    it('describes itself as a level-4 check', () => {
      const check = jwtConfigCheck({ ...schedule, env: {}, secretEnv: 'JWT_SECRET', component: 'authentication' });
      expect(check).to.include({ id: 'integration:jwt JWT_SECRET', healthKey: 'authentication:jwt', level: 4, component: 'authentication' });
    });

    // env → status, output; the secret itself must never be in the outcome.
    const table: Array<[string, NodeJS.ProcessEnv, number | undefined, 'pass' | 'fail', string | undefined]> = [
      ['missing', {}, undefined, 'fail', 'JWT_SECRET is not set'],
      ['empty', { JWT_SECRET: '' }, undefined, 'fail', 'JWT_SECRET is not set'],
      ['short', { JWT_SECRET: SECRET.slice(0, 20) }, undefined, 'fail', 'JWT_SECRET is 20 bytes long, shorter than the 32-byte minimum'],
      ['short for a custom minimum', { JWT_SECRET: SECRET }, 64, 'fail', `JWT_SECRET is ${SECRET.length} bytes long, shorter than the 64-byte minimum`],
      ['multi-byte characters count as bytes', { JWT_SECRET: 'é'.repeat(16) }, undefined, 'pass', undefined],
      ['exactly the minimum', { JWT_SECRET: SECRET.slice(0, 32) }, undefined, 'pass', undefined],
      ['long enough', { JWT_SECRET: SECRET }, undefined, 'pass', undefined],
    ];
    for (const [title, env, minSecretLength, status, output] of table) {
      it(`secret ${title}: ${status}`, async () => {
        const outcome = await jwtConfigCheck({ ...schedule, env, secretEnv: 'JWT_SECRET', minSecretLength }).run(live());
        expect(outcome.status).to.equal(status);
        expect(outcome.output).to.equal(output);
        const text = JSON.stringify(outcome);
        if (env.JWT_SECRET) {
          expect(text).not.to.include(env.JWT_SECRET);
          expect(text).not.to.include(env.JWT_SECRET.slice(0, 8));
        }
      });
    }

    it('passes with a key set that has keys', async () => {
      const outcome = await jwtConfigCheck({ ...schedule, env: {}, jwksUrl: `${jwks.url()}/keys` }).run(live());
      expect(outcome).to.deep.equal({ status: 'pass', details: { jwksStatus: 200, jwksKeys: 1 } });
    });

    // path → output
    const failures: Array<[string, (h: string) => string]> = [
      ['/empty', (h) => `JWKS at ${h} has no keys: every token would be rejected`],
      ['/status500', (h) => `JWKS at ${h} answered 500`],
      ['/html', (h) => `JWKS at ${h} did not answer JSON`],
      ['/nokeys', (h) => `JWKS at ${h} has no "keys" array`],
    ];
    for (const [path, output] of failures) {
      it(`fails when the key set at ${path} is unusable`, async () => {
        const outcome = await jwtConfigCheck({ ...schedule, env: {}, jwksUrl: `${jwks.url()}${path}` }).run(live());
        expect(outcome.status).to.equal('fail');
        expect(outcome.output).to.equal(output(host()));
      });
    }

    it('never shows the credentials of a JWKS URL', async () => {
      const url = jwks.url()!.replace('http://', 'http://user:s3cr3t-pass@');
      for (const path of ['/keys', '/status500']) {
        const check = jwtConfigCheck({ ...schedule, env: {}, jwksUrl: `${url}${path}` });
        const text = JSON.stringify({ id: check.id, outcome: await check.run(live()) });
        expect(text).not.to.include('pass@');
        expect(text).not.to.include('s3cr3t');
        expect(text).not.to.include('user');
      }
      const invalid = await jwtConfigCheck({ ...schedule, env: {}, jwksUrl: 'http://user:s3cr3t-pass@ bad url' }).run(live());
      expect(invalid).to.deep.include({ status: 'fail', output: 'the JWKS URL is not valid' });
    });

    it('reports both problems when a secret and a key set are checked', async () => {
      const outcome = await jwtConfigCheck({ ...schedule, env: {}, secretEnv: 'JWT_SECRET', jwksUrl: `${jwks.url()}/empty` }).run(live());
      expect(outcome.status).to.equal('fail');
      expect(outcome.output).to.equal(`JWT_SECRET is not set; JWKS at ${host()} has no keys: every token would be rejected`);
      const both = await jwtConfigCheck({ ...schedule, env: { JWT_SECRET: SECRET }, secretEnv: 'JWT_SECRET', jwksUrl: `${jwks.url()}/keys` }).run(live());
      expect(both.status).to.equal('pass');
    });

    it('fails when the key set cannot be reached', async () => {
      const port = await closedPort();
      const outcome = await jwtConfigCheck({ ...schedule, env: {}, jwksUrl: `http://127.0.0.1:${port}/keys` }).run(live());
      expect(outcome).to.deep.include({ status: 'fail', output: `GET JWKS at 127.0.0.1:${port} failed: ECONNREFUSED` });
    });

    it('warns when configured with nothing to check', async () => {
      expect((await jwtConfigCheck({ ...schedule, env: {} }).run(live())).status).to.equal('warn');
    });
  });

  for (const [major, express] of [
    ['Express 4', express4],
    ['Express 5', express5],
  ] as const) {
    describe(`errorHandlerOrderCheck on ${major}`, () => {
      const noop = (_req: unknown, res: { end: () => void }) => res.end();
      const onError = (_err: unknown, _req: unknown, res: { status: (n: number) => { end: () => void } }, _next: unknown) => res.status(500).end();
      const router = () => {
        const r = express.Router();
        r.get('/x', noop);
        return r;
      };

      // How the app is built → status, output.
      const table: Array<[string, (app: ReturnType<AnyExpress>) => void, 'pass' | 'fail', string | undefined]> = [
        ['routers then an error handler', (app) => {
          app.use(express.json());
          app.use('/api', router());
          app.use('/admin', router());
          app.get('/status', noop);
          app.use(onError);
        }, 'pass', undefined],
        ['an error handler between routes and a 404 middleware', (app) => {
          app.use('/api', router());
          app.use(onError);
          app.use(noop); // a plain middleware after it does not matter
        }, 'pass', undefined],
        ['one early and one final error handler', (app) => {
          app.use(onError);
          app.use('/api', router());
          app.use(onError);
        }, 'pass', undefined],
        ['no error handler', (app) => {
          app.use('/api', router());
          app.get('/status', noop);
        }, 'fail', "no error-handling middleware (err, req, res, next): errors answer with Express's default HTML page"],
        ['an error handler only inside a route', (app) => {
          app.get('/status', noop, onError);
        }, 'fail', "no error-handling middleware (err, req, res, next): errors answer with Express's default HTML page"],
        ['an error handler registered before a router', (app) => {
          app.use(express.json());
          app.use(onError);
          app.use('/api', router());
        }, 'fail', 'error handler at position 2 runs before routes registered after it (router at position 3)'],
        ['an error handler registered before a route', (app) => {
          app.use('/api', router());
          app.use(onError);
          app.get('/late', noop);
        }, 'fail', 'error handler at position 2 runs before routes registered after it (route /late at position 3)'],
      ];
      for (const [title, build, status, output] of table) {
        it(`${status === 'pass' ? 'passes' : 'fails'} with ${title}`, async () => {
          const app = express();
          build(app);
          const outcome = await errorHandlerOrderCheck({ app: () => app, intervalMs: 60_000 }).run(live());
          expect(outcome.status).to.equal(status);
          expect(outcome.output).to.equal(output);
        });
      }

      it('describes itself as a level-4 check', () => {
        const check = errorHandlerOrderCheck({ app: () => express(), intervalMs: 60_000, component: 'api' });
        expect(check).to.include({ id: 'integration:error-handler', healthKey: 'api:error-handler', level: 4, component: 'api' });
        expect(check.timeoutMs).to.be.a('number').above(0);
      });
    });
  }

  describe('errorHandlerOrderCheck before the app exists', () => {
    it('warns with no app, and with something that is not an Express app', async () => {
      expect((await errorHandlerOrderCheck({ app: () => undefined, intervalMs: 1_000 }).run(live())).status).to.equal('warn');
      expect((await errorHandlerOrderCheck({ app: () => ({}), intervalMs: 1_000 }).run(live())).status).to.equal('warn');
    });

    it('fails, without throwing, when reading the app throws', async () => {
      const outcome = await errorHandlerOrderCheck({ app: () => { throw new Error('not yet'); }, intervalMs: 1_000 }).run(live());
      expect(outcome).to.deep.equal({ status: 'fail', output: 'the router stack could not be read' });
    });
  });

  describe('every integration check honours its timeout and AbortSignal', () => {
    // Accepts requests and never answers them.
    const silent = serve(() => {});
    const fast = { intervalMs: 1_000, timeoutMs: 200 };
    const withApp = () => {
      const app = express5();
      app.get('/', (_req, res) => void res.end());
      app.use((_err: unknown, _req: unknown, res: express5.Response, _next: unknown) => void res.status(500).end());
      return app;
    };
    // name, check, whether it waits on the network (else it does no I/O and is judged on a signal already aborted)
    const checks: Array<[string, () => MonitorCheck, boolean]> = [
      ['cors', () => corsCheck({ ...fast, baseUrl: silent.url, path: '/', origin: 'https://app.example', expectAllowed: true }), true],
      ['rate limit', () => rateLimitCheck({ ...fast, baseUrl: silent.url, path: '/', requests: 5 }), true],
      ['jwt (JWKS)', () => jwtConfigCheck({ ...fast, env: {}, jwksUrl: `${silent.url()}/keys` }), true],
      ['jwt (secret only)', () => jwtConfigCheck({ ...fast, env: { S: 'x'.repeat(40) }, secretEnv: 'S' }), false],
      ['error handler', () => errorHandlerOrderCheck({ ...fast, app: withApp }), false],
    ];
    for (const [name, make, network] of checks) {
      it(`${name}: resolves with fail soon after the abort`, async () => {
        const check = make();
        if (!network) expect((await check.run(live())).status, 'healthy before the abort').to.equal('pass');
        const ac = new AbortController();
        const timer = setTimeout(() => ac.abort(), 200);
        try {
          if (!network) await new Promise((resolve) => setTimeout(resolve, 220));
          const started = performance.now();
          const outcome = await check.run(ac.signal);
          expect(outcome.status).to.equal('fail');
          expect(outcome.output).to.match(network ? /timed out/ : /aborted/);
          expect(performance.now() - started).to.be.below(network ? 600 : 50);
        } finally {
          clearTimeout(timer);
        }
      });
    }

    for (const [name, make] of checks.filter(([, , network]) => network)) {
      it(`${name}: its own timeoutMs bounds a request even when the signal never aborts`, async () => {
        const started = performance.now();
        const outcome = await make().run(live());
        expect(outcome.status).to.equal('fail');
        expect(outcome.output).to.include('timed out');
        expect(performance.now() - started).to.be.below(600);
      });
    }
  });
});
