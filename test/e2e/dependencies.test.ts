/**
 * The built-in dependency checks against a real PostgreSQL and Redis (Debian's
 * servers, started by test/helpers/services.ts): healthy, wrong password, a
 * query slower than the timeout, Redis paused, a server stopped and started
 * again under a running app (/health/detailed and /ready flip and recover), the
 * cache under 1,000 requests/s counted on the servers themselves, and a
 * fail-fast database down at start. Every output is searched for the passwords.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import express from 'express';
import pg from 'pg';
import { pino } from 'pino';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { trace } from '@opentelemetry/api';
import { vigil, type VigilGuard } from '../../packages/sdk/src/index.js';
import { Manifest, type ManifestInput } from '../../packages/sdk/src/manifest/schema.js';
import { runDependencyChecks, type CheckResult } from '../../packages/sdk/src/startup/dependencies.js';
import { ensureServices, startPostgres, startRedis, type Postgres, type Redis } from '../helpers/services.js';
import { waitFor } from '../helpers/wait.js';
import { REPO_ROOT, startWebhookReceiver, type WebhookReceiver } from '../helpers/rig.js';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { otlpJsonEvery1s, startExample, type ExampleApp } from '../helpers/example.js';
import { exampleEvaluatorConfig, startEvaluator, type RunningEvaluator } from '../helpers/evaluator.js';

const tracer = trace.getTracer('test');
const AUTOCANNON = path.join(REPO_ROOT, 'node_modules/autocannon/autocannon.js');

/** `rate` requests/s for `seconds` with 20 connections, from an autocannon process. */
function loadTest(target: string, rate: number, seconds: number): Promise<{ requests: { total: number }; non2xx: number }> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [AUTOCANNON, '-c', '20', '-R', String(rate), '-d', String(seconds), '-j', target], { maxBuffer: 16 << 20 }, (err, stdout) =>
      err ? reject(err) : resolve(JSON.parse(stdout)),
    ),
  );
}
const base = new URL('../../', import.meta.url);

async function check(deps: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<Record<string, CheckResult>> {
  const manifest = Manifest.parse({ service: 't', components: { data: { policy: 'fail-fast', dependencies: deps } } });
  return Object.fromEntries((await runDependencyChecks(manifest, env, base, tracer)).map((r) => [r.check, r]));
}

describe('e2e: built-in dependency checks on a real PostgreSQL and Redis', function () {
  this.timeout(120_000);
  let db: Postgres;
  let cache: Redis;
  /** Everything the tests saw come out of Vigil, to search for the passwords at the end. */
  const outputs: string[] = [];

  before(async () => {
    ensureServices();
    [db, cache] = await Promise.all([startPostgres(), startRedis()]);
  });
  after(async () => {
    await db?.remove();
    await cache?.remove();
  });

  it('healthy: SELECT 1 by URL and through the app pool, PING by URL and through the app client', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 1 });
    const { createClient } = await import('redis');
    const client = createClient({ url: cache.url });
    await client.connect();
    try {
      const env = { DATABASE_URL: db.url, REDIS_URL: cache.url };
      const r = await check(
        {
          pg: { type: 'postgres', url: { env: 'DATABASE_URL' } },
          pool: { type: 'postgres', pool },
          redis: { type: 'redis', url: { env: 'REDIS_URL' } },
          client: { type: 'redis', client },
        },
        env,
      );
      for (const k of Object.values(r)) expect(k.ok, `${k.check}: ${k.error}`).to.equal(true);
      expect(r.pg!.target).to.equal(`$DATABASE_URL (127.0.0.1:${db.port})`);
      expect(r.pool!.target).to.equal("the app's pool");
      outputs.push(JSON.stringify(r));
    } finally {
      await pool.end();
      client.destroy();
    }
  });

  it('wrong password: "password authentication failed", and the password is nowhere in the result', async () => {
    const wrongRedis = cache.url.replace(cache.password, `wrong-${cache.password}`);
    const r = await check({ pg: { type: 'postgres', url: { env: 'DATABASE_URL' } }, redis: { type: 'redis', url: { env: 'REDIS_URL' } } }, { DATABASE_URL: db.wrongUrl, REDIS_URL: wrongRedis });
    expect(r.pg).to.deep.include({ ok: false, error: 'password authentication failed', errorType: 'PG_28P01' });
    expect(r.redis).to.deep.include({ ok: false, error: 'password authentication failed', errorType: 'REDIS_WRONGPASS' });
    const text = JSON.stringify(r);
    expect(text).not.to.contain(db.password);
    expect(text).not.to.contain(cache.password);
    outputs.push(text);
  });

  it('a query slower than the timeout (pg_sleep): "timeout after 500ms", and the server cancels it too', async () => {
    const r = await check({ slow: { type: 'postgres', url: db.url, query: 'SELECT pg_sleep(5)', timeout: '500ms' } }, {});
    expect(r.slow).to.deep.include({ ok: false, error: 'timeout after 500ms', errorType: 'VIGIL_TIMEOUT' });
    outputs.push(JSON.stringify(r));
    // statement_timeout = the check's timeout: no sleeping backend is left behind on the server.
    await waitFor(async () => (await db.sql<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'"))[0]!.n === '0', {
      timeoutMs: 5000,
      what: 'the pg_sleep backend to be gone',
    });
  });

  it('Redis paused (CLIENT PAUSE): "timeout after 500ms"; then it passes again', async () => {
    await cache.command(['CLIENT', 'PAUSE', '1500', 'ALL']);
    const r = await check({ redis: { type: 'redis', url: cache.url, timeout: '500ms' } }, {});
    expect(r.redis).to.deep.include({ ok: false, error: 'timeout after 500ms', errorType: 'VIGIL_TIMEOUT' });
    outputs.push(JSON.stringify(r));
    await waitFor(async () => (await check({ redis: { type: 'redis', url: cache.url } }, {})).redis!.ok, { timeoutMs: 5000, what: 'Redis to answer after the pause' });
  });

  describe('under a running app', () => {
    let guard: VigilGuard;
    let server: http.Server;
    let url: string;
    const logs: string[] = [];

    before(async () => {
      const manifest: ManifestInput = {
        service: 'deps-e2e',
        components: {
          database: { policy: 'fail-fast', dependencies: { postgres: { type: 'postgres', url: { env: 'DATABASE_URL' }, timeout: '1s', cache: '1s' } } },
          cache: { policy: 'degrade', dependencies: { redis: { type: 'redis', url: { env: 'REDIS_URL' }, timeout: '1s', cache: '1s' } } },
        },
        // Scheduled re-checks are rare here: what the endpoints see comes from their own refreshes.
        monitor: { failureThreshold: 1, successThreshold: 1, intervals: { dependencies: '1h', endpoints: '1h', flows: '1h', process: '1h', errorRate: '1h', drift: '1h', integration: '1h' } },
      };
      const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) });
      guard = await vigil({ manifest, telemetry: false, env: { DATABASE_URL: db.url, REDIS_URL: cache.url }, logger });
      const app = express();
      guard.mountHealth(app);
      server = app.listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const report = await guard.validate(app, { server });
      expect(report.status, JSON.stringify(report.components)).to.equal('pass');
    });
    after(async () => {
      await guard?.shutdown();
      outputs.push(...logs);
    });

    const detailed = async () => {
      const res = await fetch(`${url}/health/detailed`);
      const body = await res.text();
      outputs.push(body);
      return { status: res.status, body: JSON.parse(body) as { status: string; checks: Record<string, Array<{ status: string; output?: string }>> } };
    };

    it('1,000 requests/s to /health/detailed: at most one query per dependency per cache period, counted on the servers', async () => {
      await db.resetStatements();
      await cache.resetStats();
      const started = performance.now();
      // autocannon in a process of its own: on 2 cores, sharing this one's event loop with the app caps the rate.
      const result = await loadTest(`${url}/health/detailed`, 1000, 5);
      const seconds = (performance.now() - started) / 1000;
      const selects = await db.calls(/^SELECT \$1$/);
      const pings = await cache.pings();
      // One run per cache period (1 s), plus one for a period cut by the measurement's start.
      const bound = Math.ceil(seconds / 1) + 1;
      console.log(
        `      ${result.requests.total} requests in ${seconds.toFixed(1)} s (${Math.round(result.requests.total / seconds)}/s, ${result.non2xx} non-2xx) → ${selects} SELECT 1 on PostgreSQL, ${pings} PING on Redis (cache 1 s; at most ${bound})`,
      );
      expect(result.requests.total).to.be.above(1000);
      expect(result.non2xx).to.equal(0);
      expect(selects).to.be.within(1, bound);
      expect(pings).to.be.within(1, bound);
    });

    it('PostgreSQL stopped: /health/detailed and /ready fail with "connection refused"; started again: both recover', async () => {
      await db.stop();
      const down = await waitFor(async () => {
        const d = await detailed();
        return d.body.checks['database:postgres']!.some((c) => c.status === 'fail') ? d : undefined;
      }, { timeoutMs: 15_000, intervalMs: 200, what: 'database:postgres to fail' });
      expect(down.status).to.equal(503);
      expect(down.body.checks['database:postgres']!.map((c) => c.output)).to.include('connection refused');
      expect((await fetch(`${url}/ready`)).status).to.equal(503); // the fail-fast database is in the ready group
      await db.start();
      await waitFor(async () => ((await detailed()).status === 200 ? true : undefined), { timeoutMs: 15_000, intervalMs: 200, what: '/health/detailed to pass again' });
      expect((await fetch(`${url}/ready`)).status).to.equal(200);
    });

    it('Redis stopped: only /health/detailed shows it (a degrade component, the detailed group); /ready stays 200', async () => {
      await cache.stop();
      try {
        const down = await waitFor(async () => {
          const d = await detailed();
          return d.body.checks['cache:redis']!.some((c) => c.status === 'fail') ? d : undefined;
        }, { timeoutMs: 15_000, intervalMs: 200, what: 'cache:redis to fail' });
        expect(down.status).to.equal(200);
        expect(down.body.status).to.equal('warn');
        expect((await fetch(`${url}/ready`)).status).to.equal(200);
      } finally {
        await cache.start();
      }
      await waitFor(async () => ((await detailed()).body.status === 'pass' ? true : undefined), { timeoutMs: 15_000, intervalMs: 200, what: 'the cache to pass again' });
    });
  });

  describe('the example API with its built-in checks, and the evaluator', () => {
    let hook: WebhookReceiver;
    let evaluator: RunningEvaluator;
    const apps: ExampleApp[] = [];
    // A copy of the example's manifest that re-checks its dependencies every second, beside it so its module paths resolve.
    const manifestFile = path.join(REPO_ROOT, 'examples/marketedge-api', `.vigil.deps-e2e-${process.pid}.yaml`);

    before(async () => {
      const text = await readFile(path.join(REPO_ROOT, 'examples/marketedge-api/vigil.yaml'), 'utf8');
      await writeFile(manifestFile, text.replace('flows: 60s', 'flows: 60s\n    dependencies: 1s'));
      hook = await startWebhookReceiver();
      evaluator = await startEvaluator(
        await exampleEvaluatorConfig({
          source: { type: 'otlp' },
          silentAfter: '30s',
          staleAfter: '3s',
          notifiers: { hook: { type: 'webhook', url: `${hook.url}/alerts`, retry: { initial: '200ms', max: '1s' } } },
        }),
      );
    });
    after(async () => {
      for (const a of apps) {
        outputs.push(a.output());
        await a.stop();
      }
      outputs.push(...hook.received.map((r) => JSON.stringify(r.body)));
      await evaluator?.stop();
      await hook?.stop();
      await rm(manifestFile, { force: true });
    });
    const pages = (status: string) => hook.received.map((r) => r.body as { status: string; alert: { labels: Record<string, string> } }).filter((b) => b.status === status && b.alert?.labels.component === 'database');

    it('PostgreSQL stopped under the running API → the database page fires; started again → it resolves', async () => {
      const app = await startExample({ ...otlpJsonEvery1s(evaluator.otlpMetricsUrl), VIGIL_MANIFEST: manifestFile, DATABASE_URL: db.url, REDIS_URL: cache.url });
      apps.push(app);
      await app.serving();
      await waitFor(() => (evaluator.evaluator.status().services.length ? true : undefined), { timeoutMs: 15_000, what: 'telemetry from the API' });
      expect(pages('firing')).to.deep.equal([]);
      await db.stop();
      try {
        const [page] = await waitFor(() => (pages('firing').length ? pages('firing') : undefined), { timeoutMs: 30_000, intervalMs: 100, what: 'the database page' });
        expect(page!.alert.labels).to.include({ service: 'marketedge-api', component: 'database', rule: 'data-access', severity: 'critical' });
      } finally {
        await db.start();
      }
      await waitFor(() => (pages('resolved').length ? true : undefined), { timeoutMs: 30_000, intervalMs: 100, what: 'the database page to resolve' });
      hook.clear();
    });

    it('a fail-fast database down at start: the API refuses to start (exit 1) after exporting why — the page arrives', async () => {
      await db.stop();
      try {
        const app = await startExample({ ...otlpJsonEvery1s(evaluator.otlpMetricsUrl), VIGIL_MANIFEST: manifestFile, DATABASE_URL: db.url, REDIS_URL: cache.url });
        apps.push(app);
        expect((await app.exited).code).to.equal(1);
        expect(app.output()).to.contain('connection refused');
        const [page] = await waitFor(() => (pages('firing').length ? pages('firing') : undefined), { timeoutMs: 20_000, intervalMs: 100, what: 'the database page from the refused start' });
        expect(page!.alert.labels).to.include({ component: 'database', severity: 'critical' });
      } finally {
        await db.start();
      }
    });
  });

  describe('afterwards', () => {
    it('no password in any result, body or log line seen above', () => {
      expect(outputs.length).to.be.above(10);
      const all = outputs.join('\n');
      expect(all).not.to.contain(db.password);
      expect(all).not.to.contain(cache.password);
    });
  });
});
