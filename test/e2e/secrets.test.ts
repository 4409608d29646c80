/**
 * Nothing leaked, proven by grepping everything captured for the secrets.
 *
 * The example API runs with `--import @vigil/sdk/register` (HTTP and Express
 * spans), every credential set to a unique value, metrics and traces exported
 * as OTLP/HTTP JSON to a capture server that forwards the metrics to a real
 * `vigil-evaluator` (the built CLI, its ingest behind a token). Business
 * requests carry a bearer token, a session cookie, a `?token=` query parameter,
 * an `x-api-key`, and a password in a body that does not parse. The monitor's
 * flows log in for real (a captured access token) and fail: one with a wrong
 * password, one after the login with the token in the query string and the
 * header. The built-in database check runs on a real PostgreSQL through a URL
 * holding a password; the cache check's URL holds one too and reaches nothing
 * (connection refused, a degraded cache). The evaluator raises alerts (webhook
 * and console notifiers).
 *
 * Then every captured byte — the app's stdout/stderr, every exported metric
 * and span body, /health, /ready, /health/detailed, /health/business-critical,
 * the evaluator's logs, its status API and its own metrics, the alert
 * payloads — is searched for each secret and for any access token the app
 * issued. None may appear.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { parse, stringify } from 'yaml';
import { startExample, type ExampleApp } from '../helpers/example.js';
import { freePort, REPO_ROOT, startWebhookReceiver, type WebhookReceiver } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';
import { EVALUATOR_CLI } from '../helpers/stack.js';
import { ensureServices, startPostgres, type Postgres } from '../helpers/services.js';

const EXAMPLE_DIR = path.join(REPO_ROOT, 'examples/marketedge-api');

const rnd = randomBytes(8).toString('hex');
/** Every secret of the run, by where it was put. Unique per run, so a hit cannot be a coincidence. */
const SECRETS = {
  'probe password (PROBE_ADMIN_PASSWORD, sent by two flows)': `S3cr3t-probepw-${rnd}`,
  'probe API key (PROBE_API_KEY, x-api-key header of a flow step)': `S3cr3t-probekey-${rnd}`,
  'Authorization: Bearer of a business request': `S3cr3t-bearer-${rnd}`,
  'Cookie: session= of a business request': `S3cr3t-cookie-${rnd}`,
  '?token= of a business request': `S3cr3t-query-${rnd}`,
  'x-api-key of a business request': `S3cr3t-apikey-${rnd}`,
  'password in a request body that does not parse': `S3cr3t-badjson-${rnd}`,
  'password in a login body': `S3cr3t-loginpw-${rnd}`,
  'health token (VIGIL_HEALTH_TOKEN)': `S3cr3t-health-${rnd}`,
  'a wrong health token of the same length': `S3cr3t-hEalth-${rnd}`,
  'evaluator ingest token (VIGIL_INGEST_TOKEN, OTEL_EXPORTER_OTLP_HEADERS)': `S3cr3t-ingest-${rnd}`,
  'webhook header token (HOOK_TOKEN)': `S3cr3t-hook-${rnd}`,
  'the app signing key (JWT_SECRET)': `S3cr3t-jwt-${rnd}`,
  'the PostgreSQL password in DATABASE_URL (a real server: the built-in check passes)': `S3cr3t-pgpw-${rnd}`,
  'the Redis password in REDIS_URL (nothing listens there: the built-in check fails)': `S3cr3t-redispw-${rnd}`,
};
const PG_PASSWORD = SECRETS['the PostgreSQL password in DATABASE_URL (a real server: the built-in check passes)'];
const REDIS_PASSWORD = SECRETS['the Redis password in REDIS_URL (nothing listens there: the built-in check fails)'];
const [PROBE_PASSWORD, PROBE_KEY, BEARER, COOKIE, QUERY, APIKEY, BADJSON, LOGINPW, HEALTH_TOKEN, WRONG_HEALTH, INGEST, HOOK, JWT_SECRET] = Object.values(SECRETS) as [string, string, string, string, string, string, string, string, string, string, string, string, string];
/** The demo user's password: the one flow that must log in successfully uses it (the demo's users are fixed). */
const DEMO_PASSWORD = 'demo-admin';
/** `{"sub":` in base64url: the start of every token the example API issues (access and refresh). */
const ISSUED_TOKEN = /eyJzdWIiOj[A-Za-z0-9_-]*/;

interface Captured {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Records every OTLP request; `/app/v1/metrics` is also forwarded to the evaluator (with the client's authorization). */
async function startCapture(forwardMetricsTo: () => string | undefined) {
  const received: Captured[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      received.push({ path: req.url ?? '/', headers: req.headers, body });
      const target = forwardMetricsTo();
      if (req.url === '/app/v1/metrics' && target) {
        try {
          const r = await fetch(target, { method: 'POST', headers: { 'content-type': 'application/json', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) }, body });
          res.writeHead(r.status, { 'content-type': 'application/json' }).end(await r.text());
        } catch {
          res.writeHead(502).end();
        }
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    received,
    stop: () => new Promise<void>((resolve) => (server.close(() => resolve()), server.closeAllConnections())),
  };
}

interface OtlpSpan { name: string; attributes?: Array<{ key: string; value: Record<string, unknown> }>; status?: { code?: number; message?: string } }
const spansOf = (bodies: Captured[]): OtlpSpan[] =>
  bodies.flatMap((b) => (JSON.parse(b.body) as { resourceSpans?: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> }).resourceSpans ?? []).flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes?.find((a) => a.key === key)?.value;
  return v ? Object.values(v)[0] : undefined;
};

describe('e2e: no secret reaches logs, spans, metrics, health bodies or alerts', function () {
  this.timeout(120_000);
  let tmp: string;
  let db: Postgres;
  let capture: Awaited<ReturnType<typeof startCapture>>;
  let hook: WebhookReceiver;
  let evaluator: ChildProcess | undefined;
  let evaluatorOut = '';
  let evaluatorUrl: string | undefined;
  let app: ExampleApp | undefined;
  // Beside the example's manifest, so its module paths still resolve.
  const manifest = path.join(EXAMPLE_DIR, `.vigil.e2e-secrets-${process.pid}.yaml`);

  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'vigil-secrets-'));
    ensureServices();
    db = await startPostgres({ password: PG_PASSWORD });
    hook = await startWebhookReceiver();
    capture = await startCapture(() => evaluatorUrl && `${evaluatorUrl}/v1/metrics`);
  });
  after(async () => {
    await app?.stop();
    await db?.remove();
    if (evaluator && evaluator.exitCode === null) evaluator.kill('SIGKILL');
    await capture?.stop();
    await hook?.stop();
    await rm(manifest, { force: true });
    await rm(tmp, { recursive: true, force: true });
  });

  async function startEvaluatorCli(): Promise<void> {
    const port = await freePort();
    const base = parse(await readFile(path.join(EXAMPLE_DIR, 'evaluator.yaml'), 'utf8')) as Record<string, any>;
    // No server.host: the default bind (127.0.0.1) is what runs.
    const config = {
      ...base,
      server: { port },
      source: { type: 'otlp', tokenEnv: 'VIGIL_INGEST_TOKEN' },
      silentAfter: '30s',
      staleAfter: '10s',
      policies: { ...base.policies, medium: { ...base.policies.medium, for: '0s' } },
      notifiers: {
        hook: { type: 'webhook', url: `${hook.url}/alerts`, headers: { authorization: 'Bearer ${env:HOOK_TOKEN}' }, retry: { initial: '200ms', max: '1s' } },
        log: { type: 'console' },
      },
    };
    const file = path.join(tmp, 'evaluator.yaml');
    await writeFile(file, stringify(config));
    evaluator = spawn(process.execPath, [EVALUATOR_CLI, '--config', file], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        VIGIL_LOG_LEVEL: 'debug',
        VIGIL_INGEST_TOKEN: INGEST,
        HOOK_TOKEN: HOOK,
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${capture.url}/eval/v1/metrics`,
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json',
        OTEL_METRIC_EXPORT_INTERVAL: '1000',
        OTEL_TRACES_EXPORTER: 'none',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    evaluator.stdout!.on('data', (d: Buffer) => (evaluatorOut += d.toString()));
    evaluator.stderr!.on('data', (d: Buffer) => (evaluatorOut += d.toString()));
    const listening = await waitFor(() => /"url":"(http:\/\/[^"]+)"/.exec(evaluatorOut)?.[1], { timeoutMs: 15_000, what: `the evaluator to listen; its output:\n${evaluatorOut}` });
    expect(listening).to.equal(`http://127.0.0.1:${port}`);
    evaluatorUrl = listening;
  }

  /** The example's manifest with fast checks, the loopback shortcut off, and two more flows in the admin component. */
  async function writeManifest(): Promise<void> {
    const m = parse(await readFile(path.join(EXAMPLE_DIR, 'vigil.yaml'), 'utf8')) as Record<string, any>;
    m.monitor = { ...m.monitor, intervals: { endpoints: '1s', flows: '1s', dependencies: '1s' }, failureThreshold: 1, successThreshold: 1 };
    m.health = { allowLoopback: false };
    m.telemetry = { exportInterval: '1s' };
    m.components.admin.flows['token-in-query'] = {
      steps: [
        { name: 'login', method: 'POST', path: '/api/v1/auth/login', body: { email: '${env:PROBE_DEMO_EMAIL}', password: '${env:PROBE_DEMO_PASSWORD}' }, expect: { status: [200] }, capture: { token: 'accessToken', refresh: 'refreshToken' } },
        {
          name: 'flags',
          method: 'GET',
          path: '/api/v1/admin/feature-flags?token=${token}&api_key=${env:PROBE_API_KEY}',
          headers: { authorization: 'Bearer ${token}', 'x-api-key': '${env:PROBE_API_KEY}', cookie: 'session=${refresh}' },
          // The app answers 200: this expectation fails on purpose, after the token was captured and used.
          expect: { status: [418] },
        },
      ],
    };
    await writeFile(manifest, stringify(m));
  }

  it(`greps every captured byte for ${Object.keys(SECRETS).length} secrets and the issued tokens: none found`, async () => {
    await writeManifest();
    await startEvaluatorCli();
    app = await startExample({
      NODE_OPTIONS: '--import @vigil/sdk/register',
      VIGIL_MANIFEST: manifest,
      VIGIL_DEMO_BREAK: 'user_management',
      VIGIL_LOG_LEVEL: 'debug',
      PROBE_ADMIN_EMAIL: 'admin@marketedge.example',
      PROBE_ADMIN_PASSWORD: PROBE_PASSWORD,
      PROBE_DEMO_EMAIL: 'admin@marketedge.example',
      PROBE_DEMO_PASSWORD: DEMO_PASSWORD,
      PROBE_API_KEY: PROBE_KEY,
      VIGIL_HEALTH_TOKEN: HEALTH_TOKEN,
      JWT_SECRET,
      DATABASE_URL: db.url,
      REDIS_URL: `redis://:${REDIS_PASSWORD}@127.0.0.1:${await freePort()}`,
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${capture.url}/app/v1/metrics`,
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${capture.url}/app/v1/traces`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_HEADERS: `authorization=Bearer%20${INGEST}`,
      OTEL_METRIC_EXPORT_INTERVAL: '1000',
      OTEL_BSP_SCHEDULE_DELAY: '200',
    });
    await app.serving();
    const bodies: Array<{ where: string; text: string }> = [];
    const get = async (where: string, url: string, init: RequestInit = {}) => {
      const res = await fetch(url, init);
      const text = await res.text();
      bodies.push({ where: `${where} (${res.status})`, text: `${JSON.stringify([...res.headers])}\n${text}` });
      return { status: res.status, text };
    };

    // Business traffic carrying credentials everywhere a client puts them.
    const creds = { authorization: `Bearer ${BEARER}`, cookie: `session=${COOKIE}`, 'x-api-key': APIKEY };
    await get('GET /api/v1/users with credentials', `${app.url}/api/v1/users?token=${QUERY}&page=2`, { headers: creds });
    await get('GET /api/v1/admin/feature-flags with credentials', `${app.url}/api/v1/admin/feature-flags?token=${QUERY}`, { headers: creds });
    await get('GET on no route with credentials', `${app.url}/api/v1/nothing-here?token=${QUERY}&password=${QUERY}`, { headers: creds });
    const badJson = await get('POST login, body that does not parse', `${app.url}/api/v1/auth/login?token=${QUERY}`, { method: 'POST', headers: { ...creds, 'content-type': 'application/json' }, body: `{"email":"a@b.c","password":"${BADJSON}"` });
    // The client's mistake: a 400 with a reason that does not quote the body (the JSON parser's message can).
    expect(badJson.status).to.equal(400);
    expect(JSON.parse(badJson.text)).to.deep.equal({ error: 'the request body is not valid JSON' });
    await get('POST login, wrong password', `${app.url}/api/v1/auth/login`, { method: 'POST', headers: { ...creds, 'content-type': 'application/json' }, body: JSON.stringify({ email: 'admin@marketedge.example', password: LOGINPW }) });

    // Health: the detailed endpoints are closed without the token, even on loopback (allowLoopback: false).
    for (const p of ['/health/detailed', '/health/business-critical']) {
      const none = await get(`${p} without a token`, `${app.url}${p}`);
      const wrong = await get(`${p} with a wrong token`, `${app.url}${p}`, { headers: { authorization: `Bearer ${WRONG_HEALTH}` } });
      for (const r of [none, wrong]) {
        expect(r.status).to.equal(401);
        expect(Object.keys(JSON.parse(r.text) as object).sort()).to.deep.equal(['output', 'status']);
      }
    }

    // The monitor runs its flows: wait until the token flow failed after using its captured token, and the others at login.
    type Detailed = { checks: Record<string, Array<{ status: string; output?: string }>> };
    const detailed = await waitFor(async () => {
      const body = (await (await fetch(`${app!.url}/health/detailed`, { headers: { authorization: `Bearer ${HEALTH_TOKEN}` } })).json()) as Detailed;
      const out = (k: string) => body.checks[k]?.[0]?.output ?? '';
      // Each flow's published state flips after failureThreshold runs of its own: wait for all three.
      return /step flags .*answered 200, expected 418/.test(out('admin:flow token-in-query')) &&
        /step login .*answered 401/.test(out('admin:flow admin-panel')) &&
        body.checks['organisations:flow tenant-switch']?.[0]?.status === 'fail' &&
        // The database's runtime re-check is "unknown" until its first run: wait for it too.
        (body.checks['database:postgres'] ?? []).every((c) => c.status !== 'unknown')
        ? body
        : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250, what: 'the flows to fail: token-in-query after its login, admin-panel and tenant-switch at login' });
    expect(detailed.checks['organisations:flow tenant-switch']![0]!.status).to.equal('fail');
    // The built-in checks ran with the URLs' passwords: the database passes, the cache says only why it fails.
    expect(detailed.checks['database:postgres']!.map((c) => c.status)).to.deep.equal(['pass', 'pass']);
    expect(detailed.checks['cache:redis']!.map((c) => c.output)).to.include('connection refused');

    // The evaluator pages: the admin alert (flows failing) and user_management (import failed) at the webhook.
    const alerts = () => hook.received.map((r) => r.body as { status: string; alert: { labels: Record<string, string>; annotations: Record<string, string> } });
    await waitFor(() => ['admin', 'user_management', 'organisations', 'cache'].every((c) => alerts().some((a) => a.alert.labels.component === c && a.status === 'firing')) || undefined, {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: `alerts for admin, user_management, organisations and cache at the webhook; got ${JSON.stringify(alerts().map((a) => a.alert.labels.component))}; evaluator output:\n${evaluatorOut}`,
    });
    expect(hook.received[0]!.headers.authorization, 'the webhook got its header').to.equal(`Bearer ${HOOK}`);
    // The admin page is about its failing flows (which one comes first depends on the run's timing).
    const admin = alerts().find((a) => a.alert.labels.component === 'admin')!;
    expect(JSON.stringify(admin.alert.annotations)).to.match(/flow:admin\/(admin-panel|token-in-query)/);

    // A few more cycles of every flow and export, then the spans of the business requests must be there.
    await new Promise((r) => setTimeout(r, 3000));
    const traces = () => capture.received.filter((c) => c.path === '/app/v1/traces');
    // Stable HTTP semconv: a server span has url.path and url.query; the query's credentials are censored, the rest kept.
    const users = await waitFor(() => spansOf(traces()).find((s) => attr(s, 'url.path') === '/api/v1/users' && attr(s, 'url.query') !== undefined), {
      timeoutMs: 15_000,
      intervalMs: 200,
      what: 'the server span of GET /api/v1/users?token=…',
    });
    expect(attr(users, 'url.query')).to.equal('token=[redacted]&page=2');
    // The flow step's client span: its url.full keeps the path, not the captured token or the API key.
    const flagsClient = spansOf(traces()).filter((s) => String(attr(s, 'url.full') ?? '').includes('/api/v1/admin/feature-flags?'));
    expect(flagsClient.length, 'client spans of the token-in-query step').to.be.greaterThan(0);
    for (const s of flagsClient) expect(String(attr(s, 'url.full'))).to.match(/\/api\/v1\/admin\/feature-flags\?token=\[redacted\]&api_key=\[redacted\]$/);
    const flowSpans = spansOf(traces()).filter((s) => s.name === 'vigil.flow' && s.status?.code === 2);
    expect(flowSpans.length, 'failed flow spans were exported').to.be.greaterThan(0);

    for (const p of ['/health', '/ready', '/health/detailed', '/health/business-critical']) {
      await get(`${p} with the token`, `${app.url}${p}`, { headers: { authorization: `Bearer ${HEALTH_TOKEN}` } });
    }
    await get('evaluator /api/v1/status', `${evaluatorUrl}/api/v1/status`);
    await get('evaluator /', `${evaluatorUrl}/`);
    await get('evaluator /health', `${evaluatorUrl}/health`);
    await get('evaluator /ready', `${evaluatorUrl}/ready`);
    // The evaluator's ingest refuses what comes without its token.
    const noToken = await get('evaluator ingest without a token', `${evaluatorUrl}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"resourceMetrics":[]}' });
    expect(noToken.status).to.equal(401);

    // Stop both (SIGTERM: the app drains and flushes, the evaluator delivers what is queued) and collect everything.
    app.proc.kill('SIGTERM');
    await app.exited;
    evaluator!.kill('SIGTERM');
    await new Promise((r) => evaluator!.once('exit', r));

    const everything: Array<{ where: string; text: string }> = [
      { where: 'the app stdout/stderr', text: app.output() },
      { where: 'the evaluator stdout/stderr', text: evaluatorOut },
      // An OTLP request's own Authorization header is the ingest token's transport, not a leak: everything else of it is searched.
      ...capture.received.map((c, i) => ({ where: `OTLP request #${i} ${c.path}`, text: `${JSON.stringify(c.headers.authorization ? { ...c.headers, authorization: undefined } : c.headers)}\n${c.body}` })),
      ...hook.received.map((r, i) => ({ where: `webhook request #${i} ${r.path}`, text: JSON.stringify({ ...r.body }) })),
      ...bodies,
    ];
    const bytes = everything.reduce((n, e) => n + Buffer.byteLength(e.text), 0);
    console.log(`      searched ${everything.length} captures, ${(bytes / 1024).toFixed(0)} KiB: ${capture.received.filter((c) => c.path.endsWith('/traces')).length} trace and ${capture.received.filter((c) => c.path.endsWith('/metrics')).length} metric exports, ${hook.received.length} alert payloads, ${bodies.length} HTTP answers, app log ${(Buffer.byteLength(app.output()) / 1024).toFixed(0)} KiB, evaluator log ${(Buffer.byteLength(evaluatorOut) / 1024).toFixed(0)} KiB`);
    const leaks: string[] = [];
    for (const { where, text } of everything) {
      for (const [name, secret] of Object.entries(SECRETS)) {
        const i = text.indexOf(secret);
        if (i >= 0) leaks.push(`${name} in ${where}: …${text.slice(Math.max(0, i - 200), i + secret.length + 40)}…`);
      }
      const token = ISSUED_TOKEN.exec(text);
      if (token) leaks.push(`an issued access/refresh token in ${where}: …${text.slice(Math.max(0, token.index - 200), token.index + 60)}…`);
      const demo = text.indexOf(DEMO_PASSWORD);
      if (demo >= 0) leaks.push(`the demo password in ${where}: …${text.slice(Math.max(0, demo - 200), demo + 40)}…`);
    }
    expect(leaks, leaks.join('\n\n')).to.deep.equal([]);
  });
});
