/**
 * The soak test: a healthy but noisy app makes zero pages.
 *
 * The example API with jittery latency (VIGIL_DEMO_JITTER_MS, well inside every
 * probe's budget) and occasional single failures (VIGIL_DEMO_FLAKY: a 503 now
 * and then, never twice in a row for one route and caller, so below the flap
 * threshold) runs through the embedded pipeline — OTLP/HTTP JSON straight to
 * an evaluator with the example's evaluator.yaml rules and a webhook notifier
 * to a receiver here — with probes every 1 s, flows every 2 s and a few
 * requests per second of its own traffic, for VIGIL_SOAK_SECONDS (default 120).
 * No notification may reach the webhook, while the noise must really have
 * happened and been seen by the probes (counted in the exported telemetry, on
 * its way to the evaluator).
 *
 * The control: the same pipeline with failures in bursts of failureThreshold
 * pages within 20 s, so the soak's zero is not a deaf pipeline.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { loadManifest } from '../../packages/sdk/src/manifest/load.js';
import { ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE, ATTR_VIGIL_CHECK, METRIC_HEALTH_LEVEL, METRIC_PROBE_DURATION, METRIC_PROBE_SUCCESS } from '../../packages/sdk/src/semconv.js';
import { startExample, type ExampleApp } from '../helpers/example.js';
import { exampleEvaluatorConfig, startEvaluator, type RunningEvaluator } from '../helpers/evaluator.js';
import { REPO_ROOT, startWebhookReceiver, type WebhookReceiver } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const EXAMPLE_DIR = path.join(REPO_ROOT, 'examples/marketedge-api');

function soakSeconds(): number {
  const raw = process.env.VIGIL_SOAK_SECONDS;
  if (raw === undefined || raw === '') return 120;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 10) throw new Error(`VIGIL_SOAK_SECONDS: expected a whole number of seconds, at least 10, got ${JSON.stringify(raw)}`);
  return n;
}
const SECONDS = soakSeconds();
/** The noise of the soak: up to 400 ms more per request, and a 503 for 5 % of requests (never twice in a row). */
const JITTER_MS = 400;
const FLAKY = 0.05;

// ── A tee on the OTLP path: forwards every export to the evaluator, counts what the probes reported ──

interface OtlpAttr { key: string; value: Record<string, unknown> }
interface OtlpPoint { attributes?: OtlpAttr[]; asInt?: string | number; asDouble?: number | string; count?: string | number }
interface OtlpMetric { name: string; gauge?: { dataPoints: OtlpPoint[] }; sum?: { dataPoints: OtlpPoint[] }; histogram?: { dataPoints: OtlpPoint[]; aggregationTemporality?: number } }
interface OtlpBody { resourceMetrics?: Array<{ scopeMetrics?: Array<{ metrics?: OtlpMetric[] }> }> }

const attr = (p: OtlpPoint, key: string): string | undefined => {
  const v = p.attributes?.find((a) => a.key === key)?.value;
  return v === undefined ? undefined : String(Object.values(v)[0]);
};
const num = (v: string | number | undefined): number => Number(v ?? 0);

interface Tee {
  url: string;
  exports: number;
  /** Probe answers by endpoint and status code, from the `vigil.probe.duration` histogram (cumulative). */
  probeAnswers: Map<string, Map<string, number>>;
  /** `vigil.probe.success` points exported with the value 0 (the last probe of that endpoint had failed at export time). */
  probeSuccessZero: number;
  /** `vigil.health.level` points with the value 0 (a damped failing state), by check. */
  healthZero: Map<string, number>;
  stop(): Promise<void>;
}

async function startTee(target: () => string): Promise<Tee> {
  const tee: Omit<Tee, 'url' | 'stop'> = { exports: 0, probeAnswers: new Map(), probeSuccessZero: 0, healthZero: new Map() };
  const read = (body: OtlpBody) => {
    for (const rm of body.resourceMetrics ?? [])
      for (const sm of rm.scopeMetrics ?? [])
        for (const m of sm.metrics ?? []) {
          if (m.name === METRIC_PROBE_DURATION && m.histogram) {
            const delta = m.histogram.aggregationTemporality === 1;
            for (const p of m.histogram.dataPoints) {
              const endpoint = `${attr(p, ATTR_HTTP_REQUEST_METHOD)} ${attr(p, ATTR_HTTP_ROUTE)}`;
              const status = attr(p, ATTR_HTTP_RESPONSE_STATUS_CODE) ?? 'none';
              const byStatus = tee.probeAnswers.get(endpoint) ?? new Map<string, number>();
              tee.probeAnswers.set(endpoint, byStatus);
              byStatus.set(status, delta ? (byStatus.get(status) ?? 0) + num(p.count) : num(p.count));
            }
          }
          if (m.name === METRIC_PROBE_SUCCESS) for (const p of m.gauge?.dataPoints ?? []) if (num(p.asInt ?? p.asDouble) === 0) tee.probeSuccessZero++;
          if (m.name === METRIC_HEALTH_LEVEL) {
            for (const p of m.gauge?.dataPoints ?? []) {
              if (num(p.asInt ?? p.asDouble) !== 0) continue;
              const check = attr(p, ATTR_VIGIL_CHECK) ?? '?';
              tee.healthZero.set(check, (tee.healthZero.get(check) ?? 0) + 1);
            }
          }
        }
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      void (async () => {
        try {
          const headers: Record<string, string> = {};
          for (const h of ['content-type', 'content-encoding', 'authorization']) if (typeof req.headers[h] === 'string') headers[h] = req.headers[h];
          const answer = await fetch(`${target()}${req.url ?? ''}`, { method: req.method ?? 'POST', headers, body: raw });
          const text = await answer.text();
          if (answer.ok) {
            tee.exports++;
            read(JSON.parse((/gzip/.test(headers['content-encoding'] ?? '') ? gunzipSync(raw) : raw).toString('utf8')) as OtlpBody);
          }
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' }).end(text);
        } catch (err) {
          res.writeHead(502).end(String(err));
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(tee, {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
}

// ── The app's own traffic: a few requests per second over the probed routes, as a signed-in admin ──

interface Traffic {
  statuses: Map<number, number>;
  latenciesMs: number[];
  stop(): Promise<void>;
}

function startTraffic(base: string, perSecond: number): Traffic {
  const statuses = new Map<number, number>();
  const latenciesMs: number[] = [];
  let tokens: { accessToken: string; refreshToken: string } | undefined;
  let stopped = false;
  type Req = { method: string; path: string; json?: unknown; refresh?: boolean };
  const login: Req = { method: 'POST', path: '/api/v1/auth/login', json: { email: 'admin@marketedge.example', password: 'demo-admin' } };
  const requests: Req[] = [
    login,
    { method: 'GET', path: '/api/v1/users' },
    { method: 'GET', path: '/api/v1/organisations' },
    { method: 'GET', path: '/api/v1/admin/feature-flags' },
    { method: 'GET', path: '/api/v1/admin/dashboard/stats' },
    { method: 'GET', path: '/api/v1/user-management' },
    { method: 'POST', path: '/api/v1/auth/refresh', refresh: true },
    { method: 'POST', path: '/api/v1/organisations/switch', json: { orgId: 2 } },
  ];
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      const started = performance.now();
      // Until a login has worked, log in; then round-robin over the routes.
      const r = tokens ? requests[i % requests.length]! : login;
      const json = r.refresh ? { refreshToken: tokens!.refreshToken } : r.json;
      const headers: Record<string, string> = json === undefined ? {} : { 'content-type': 'application/json' };
      if (tokens) headers.authorization = `Bearer ${tokens.accessToken}`;
      try {
        const res = await fetch(`${base}${r.path}`, { method: r.method, headers, ...(json === undefined ? {} : { body: JSON.stringify(json) }) });
        const body = (await res.json().catch(() => undefined)) as { accessToken?: string; refreshToken?: string } | undefined;
        latenciesMs.push(performance.now() - started);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (r === login && res.status === 200 && body?.accessToken && body.refreshToken) tokens = { accessToken: body.accessToken, refreshToken: body.refreshToken };
      } catch {
        statuses.set(0, (statuses.get(0) ?? 0) + 1); // no answer
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1000 / perSecond - (performance.now() - started))));
    }
  })();
  return {
    statuses,
    latenciesMs,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

interface NoiseStats {
  config: { jitterMs: number; flaky: number; burst: number };
  requests: Record<'probe' | 'flow' | 'app' | 'other', number>;
  delayed: { requests: number; maxMs: number; meanMs: number };
  injected: Record<'probe' | 'app', number>;
  longestRun: Record<'probe' | 'app', number>;
  routes: Record<string, { requests: number; injected: number; longestRun: number }>;
}
const noiseOf = async (app: ExampleApp) => (await (await fetch(`${app.url}/demo/noise`)).json()) as NoiseStats;

/** The monitor's published state changes, from the app's JSON log lines: `<check> is now FAIL`. */
function stateChanges(output: string): Array<{ check: string; status: string }> {
  const out: Array<{ check: string; status: string }> = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as { check?: string; status?: string; msg?: string };
      if (o.check && o.status && / is now [A-Z]+/.test(o.msg ?? '')) out.push({ check: o.check, status: o.status });
    } catch {
      // not a log line
    }
  }
  return out;
}

const percentile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : NaN;
};

describe('e2e: soak — a healthy but noisy app makes zero pages', function () {
  this.timeout((SECONDS + 150) * 1000);
  // A copy of the example's manifest with fast probes, beside it so its module paths still resolve.
  const manifestFile = path.join(EXAMPLE_DIR, `.vigil.soak-${process.pid}.yaml`);
  let hook: WebhookReceiver;
  let budgetMs: number;
  let failureThreshold: number;
  const apps: ExampleApp[] = [];
  const evaluators: RunningEvaluator[] = [];
  const tees: Tee[] = [];

  before(async () => {
    const text = await readFile(path.join(EXAMPLE_DIR, 'vigil.yaml'), 'utf8');
    const fast = text.replace('endpoints: 30s', 'endpoints: 1s').replace('flows: 60s', 'flows: 2s');
    expect(fast, 'the example manifest still sets endpoints: 30s and flows: 60s').to.not.equal(text);
    await writeFile(manifestFile, fast);
    const { manifest } = await loadManifest(manifestFile);
    expect(manifest.monitor.intervals).to.include({ endpoints: 1000, flows: 2000 });
    failureThreshold = manifest.monitor.failureThreshold;
    // The latency budget: the tightest latencyWarn (else timeout) of any probed endpoint.
    const probed = Object.values(manifest.components).flatMap((c) => c.endpoints.filter((e) => e.probe.enabled));
    budgetMs = Math.min(...probed.map((e) => e.probe.latencyWarn ?? e.probe.timeout));
    expect(JITTER_MS, `the jitter stays well inside the tightest probe budget (${budgetMs} ms)`).to.be.lessThan(budgetMs / 2);
    hook = await startWebhookReceiver();
  });
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.stop();
    for (const e of evaluators.splice(0)) await e.stop();
    for (const t of tees.splice(0)) await t.stop();
  });
  after(async () => {
    await hook?.stop();
    await rm(manifestFile, { force: true });
  });

  /** The embedded pipeline: the evaluator (example rules, webhook notifier) ← tee ← the example API. */
  async function pipeline(hookPath: string, env: NodeJS.ProcessEnv) {
    const e = await startEvaluator(
      await exampleEvaluatorConfig({
        source: { type: 'otlp' },
        notifiers: { pager: { type: 'webhook', url: `${hook.url}${hookPath}`, retry: { initial: '200ms', max: '1s' } } },
      }),
    );
    evaluators.push(e);
    const tee = await startTee(() => e.url);
    tees.push(tee);
    const app = await startExample({
      VIGIL_MANIFEST: manifestFile,
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${tee.url}/v1/metrics`,
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json',
      OTEL_METRIC_EXPORT_INTERVAL: '1000',
      OTEL_TRACES_EXPORTER: 'none',
      ...env,
    });
    apps.push(app);
    await app.serving();
    await waitFor(() => e.evaluator.status().services.some((s) => s.service === 'marketedge-api') || undefined, { timeoutMs: 15_000, intervalMs: 100, what: 'the evaluator to hear from marketedge-api' });
    return { e, tee, app };
  }

  const pagesAt = (hookPath: string) => hook.received.filter((r) => r.path === hookPath);

  it(`${SECONDS} s of jittery latency and single failures (probes 1 s, flows 2 s, own traffic) → zero pages`, async () => {
    const { e, tee, app } = await pipeline('/soak', { VIGIL_DEMO_JITTER_MS: String(JITTER_MS), VIGIL_DEMO_FLAKY: String(FLAKY) });
    const traffic = startTraffic(app.url, 5); // one request at a time, at most 5 per second
    const started = performance.now();
    let maxFailingSignals = 0;
    let maxAlerts = 0;
    const failingSeen = new Set<string>();
    while (performance.now() - started < SECONDS * 1000) {
      await new Promise((r) => setTimeout(r, 1000));
      const failing = e.evaluator.store.active(Date.now());
      for (const s of failing) failingSeen.add(`${s.kind} ${s.component} ${s.subject}`);
      maxFailingSignals = Math.max(maxFailingSignals, failing.length);
      maxAlerts = Math.max(maxAlerts, e.evaluator.status().alerts.length);
    }
    await traffic.stop();
    const duration = (performance.now() - started) / 1000;
    const atEnd = await noiseOf(app);
    // Two more export intervals and evaluations: whatever happened by now reaches the evaluator (and a page would).
    await new Promise((r) => setTimeout(r, 3000));
    const after = await noiseOf(app);

    const answers = [...tee.probeAnswers].map(([endpoint, byStatus]) => ({ endpoint, total: [...byStatus.values()].reduce((a, b) => a + b, 0), s503: byStatus.get('503') ?? 0 }));
    const probeRuns = answers.reduce((a, x) => a + x.total, 0);
    const seen503 = answers.reduce((a, x) => a + x.s503, 0);
    const changes = stateChanges(app.output());
    const probeFlowChanges = changes.filter((c) => c.check.startsWith('endpoint:') || c.check.startsWith('flow:'));
    const flakyProbeRequests = Object.entries(atEnd.routes).filter(([k]) => k.startsWith('probe ')).reduce((a, [, r]) => a + r.requests, 0);
    const appRequests = [...traffic.statuses.values()].reduce((a, b) => a + b, 0);
    const app503 = traffic.statuses.get(503) ?? 0;
    const pages = pagesAt('/soak').filter((r) => (r.body as { status?: string })?.status === 'firing').length;

    console.log(`      soak: ${duration.toFixed(1)} s, jitter 0–${JITTER_MS} ms (budget ${budgetMs} ms), flaky p=${FLAKY}, failureThreshold ${failureThreshold}`);
    console.log(`      probe runs: ${probeRuns} endpoint probes (${answers.length} endpoints) + ${atEnd.requests.flow} flow requests; own traffic: ${appRequests} requests`);
    console.log(`      injected failures seen by probes: ${seen503} (503s in the exported vigil.probe.duration; the app injected ${atEnd.injected.probe}–${after.injected.probe} into ${flakyProbeRequests} probe requests on flaky routes, longest run ${atEnd.longestRun.probe}); vigil.probe.success 0 points exported: ${tee.probeSuccessZero}`);
    console.log(`      own traffic: ${app503} × 503 of ${appRequests} (${((app503 / Math.max(1, appRequests)) * 100).toFixed(1)} %, longest run ${atEnd.longestRun.app}); latency p50 ${percentile(traffic.latenciesMs, 0.5).toFixed(0)} ms, p99 ${percentile(traffic.latenciesMs, 0.99).toFixed(0)} ms, max ${Math.max(...traffic.latenciesMs).toFixed(0)} ms; app-side delay max ${atEnd.delayed.maxMs} ms, mean ${atEnd.delayed.meanMs} ms over ${atEnd.delayed.requests} requests`);
    console.log(`      flap-damped state changes of probes and flows: ${probeFlowChanges.length}; other checks: ${changes.filter((c) => !probeFlowChanges.includes(c)).map((c) => `${c.check} → ${c.status}`).join(', ') || 'none'}; health.level 0 points: ${tee.healthZero.size ? [...tee.healthZero].map(([k, n]) => `${k} ×${n}`).join(', ') : 'none'}`);
    console.log(`      evaluator: ${tee.exports} exports received, failing signals at most ${maxFailingSignals}, alerts at most ${maxAlerts}; pages: ${pages} → false-positive rate ${pages} of ${probeRuns} probe runs = ${(pages / Math.max(1, probeRuns)).toFixed(4)} (95 % upper bound ${((3 / Math.max(1, probeRuns)) * 100).toFixed(2)} % per probe run), ${((pages / duration) * 3600).toFixed(1)} per hour`);

    // Zero pages: nothing at all reached the webhook, and the evaluator never even had a failing signal.
    type Note = { status?: string; alert?: { labels?: Record<string, string>; annotations?: Record<string, string> } };
    expect(pagesAt('/soak').map((r) => { const n = r.body as Note; return `${n.status} ${n.alert?.labels?.component}: ${n.alert?.annotations?.affected}`; }), 'notifications at the webhook').to.deep.equal([]);
    expect(e.evaluator.status().history, 'notifications sent by the evaluator').to.deep.equal([]);
    expect([...failingSeen], 'failing signals at the evaluator').to.deep.equal([]);
    expect(probeFlowChanges, 'published state changes of probes and flows').to.deep.equal([]);
    expect([...tee.healthZero.keys()].filter((k) => k.startsWith('endpoint:') || k.startsWith('flow:')), 'damped failing states exported').to.deep.equal([]);

    // The pipeline was live all along: exports every second reached the evaluator, probes ran every second.
    expect(tee.exports).to.be.greaterThan(SECONDS / 2);
    expect(probeRuns, 'endpoint probes exported').to.be.greaterThan(answers.length * SECONDS * 0.5);
    expect(atEnd.requests.flow, 'flow requests').to.be.greaterThan(SECONDS * 0.5);

    // The noise really happened. Failures: single ones only, enough of them, and the probes saw them.
    const expected = flakyProbeRequests * (FLAKY / (1 + FLAKY));
    expect(atEnd.injected.probe, `failures injected into probes (about ${expected.toFixed(0)} expected)`).to.be.at.least(Math.max(1, Math.floor(expected / 3)));
    expect(atEnd.longestRun.probe, 'failures in a row for one probe').to.equal(1);
    expect(seen503, '503s the probes reported (exported)').to.be.within(atEnd.injected.probe, after.injected.probe);
    expect(atEnd.injected.app, 'failures injected into the own traffic').to.be.greaterThan(0);
    expect(atEnd.longestRun.app).to.equal(1);
    expect(app503, 'the own traffic got exactly the injected 503s').to.equal(atEnd.injected.app);
    expect([...traffic.statuses.keys()].sort(), 'the own traffic got only 200s and injected 503s').to.deep.equal([200, 503]);
    // Jitter: spread up to its maximum (hundreds of draws), and felt by the callers.
    expect(atEnd.delayed.maxMs).to.be.at.least(JITTER_MS * 0.8);
    expect(Math.max(...traffic.latenciesMs)).to.be.at.least(JITTER_MS * 0.5);
  });

  it(`control: failures in bursts of failureThreshold → a page within 20 s`, async () => {
    const { app } = await pipeline('/control', { VIGIL_DEMO_JITTER_MS: String(JITTER_MS), VIGIL_DEMO_FLAKY: '0.5', VIGIL_DEMO_FLAKY_BURST: String(failureThreshold) });
    const started = performance.now();
    const page = await waitFor(() => pagesAt('/control').find((r) => (r.body as { status?: string }).status === 'firing'), { timeoutMs: 20_000, intervalMs: 100, what: 'a page for the burst of failures' });
    const stats = await noiseOf(app);
    const alert = (page.body as { alert: { labels: Record<string, string>; annotations: Record<string, string> } }).alert;
    console.log(`      control: bursts of ${failureThreshold} failures → page ${alert.labels.severity} ${alert.labels.component} (${alert.annotations.affected}) after ${((performance.now() - started) / 1000).toFixed(1)} s; ${stats.injected.probe} failures injected into probes, longest run ${stats.longestRun.probe}`);
    expect(alert.annotations.affected).to.match(/probe (GET|POST) \/api\/v1\//);
    expect(stats.longestRun.probe).to.be.at.least(failureThreshold);
    expect(stateChanges(app.output()).some((c) => c.check.startsWith('endpoint:') && c.status === 'fail'), 'a probe published FAIL').to.equal(true);
  });
});
