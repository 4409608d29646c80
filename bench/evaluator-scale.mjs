#!/usr/bin/env node
/**
 * How far one evaluator process scales (one core: this process; the load generator runs in a
 * child process so it does not take the evaluator's core):
 *
 *   ingest       OTLP/HTTP JSON export requests as the SDK sends them (one service instance per
 *                request: vigil.router.import, vigil.route.registered, vigil.startup.*,
 *                vigil.component.healthy, vigil.probe.success, vigil.probe.duration histograms,
 *                vigil.health.level per check), POSTed to the evaluator's real receiver by
 *                `--clients` keep-alive clients for a fixed time, with the evaluation loop running
 *                over a store already holding every service. Counted: data points accepted per
 *                second (all kinds), from the receiver's own counters. Also the same payloads
 *                through the receiver's handler in this process without HTTP (parse + validate +
 *                map + store), for the HTTP share.
 *   evaluation   one full evaluation cycle (store → failing signals → impact rules → policies →
 *                notifications) with 1,000 services × 50 routes in the store, median of several,
 *                and the heap per tracked series (signal) after GC.
 *   growth       the same at 100 → 1,000 → 10,000 services with 10 routes each (10,000 × 50 would
 *                take minutes to fill and GBs of heap for no new information): the ratios.
 *
 * 1 % of the services have one router failing to import, so rules and policies have alerts to
 * keep (their first evaluation sends pages to a sink in this process; the timed ones send none).
 *
 *   node bench/evaluator-scale.mjs [--seconds 5] [--clients 4] [--quick] [--out bench/results/evaluator-scale.json]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(root, 'bench/results/evaluator-scale.json') },
    seconds: { type: 'string' },
    clients: { type: 'string', default: '4' },
    // The load generator (internal: the parent runs this script with --client).
    client: { type: 'boolean', default: false },
    url: { type: 'string' },
    services: { type: 'string' },
    routes: { type: 'string' },
  },
});

const sdk = await import(pathToFileURL(path.join(root, 'packages/sdk/dist/semconv.js')).href);

// ---------------------------------------------------------------------------------------------
// What the SDK exports for one service instance, as OTLP/HTTP JSON (the shape of a real export of
// examples/marketedge-api: one resourceMetrics, scope @vigil/sdk, gauges with asDouble).

const FAILING_EVERY = 100; // 1 % of the services: one router failed to import
const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const str = (key, v) => ({ key, value: { stringValue: v } });
const int = (key, v) => ({ key, value: { intValue: v } });
const bool = (key, v) => ({ key, value: { boolValue: v } });

/**
 * The components of a service with `routes` routes: one router and five routes per component; the
 * first two are named after components the example's impact rules know (critical and high).
 */
function shape(routes) {
  const count = Math.max(2, Math.ceil(routes / 5));
  const components = Array.from({ length: count }, (_, c) => (c === 0 ? 'authentication' : c === 1 ? 'user_management' : `component_${c}`));
  const list = [];
  for (let i = 0; i < routes; i++) {
    const c = i % count;
    list.push({ component: components[c], method: i % 3 === 2 ? 'POST' : 'GET', route: `/api/v1/${components[c].replace('_', '-')}/resource-${i}` });
  }
  return { components, routes: list };
}

/**
 * One export request of service `index` (name and instance filled in), with `routes` routes.
 * Returns the request object and its data point counts.
 */
function exportRequest({ service, instance, index, routes, timeNs }) {
  const { components, routes: rs } = shape(routes);
  const t = { startTimeUnixNano: String(timeNs - 60_000_000_000n), timeUnixNano: String(timeNs) };
  const gauge = (name, points) => ({ name, gauge: { dataPoints: points.map(([attributes, v]) => ({ attributes, ...t, asDouble: v })) } });
  // The failing services' user_management router (a `high` impact: paged at once).
  const failingRouter = index % FAILING_EVERY === FAILING_EVERY - 1 ? 1 : -1;
  const checks = [
    ...rs.map((r) => [[int(sdk.ATTR_VIGIL_LEVEL, 2), str(sdk.ATTR_VIGIL_CHECK, `endpoint:${r.method} ${r.route}`), str(sdk.ATTR_VIGIL_COMPONENT, r.component)], 1]),
    ...components.map((c) => [[int(sdk.ATTR_VIGIL_LEVEL, 2), str(sdk.ATTR_VIGIL_CHECK, `drift:${c}`), str(sdk.ATTR_VIGIL_COMPONENT, c)], 1]),
    [[int(sdk.ATTR_VIGIL_LEVEL, 1), str(sdk.ATTR_VIGIL_CHECK, 'dependency:database/postgres'), str(sdk.ATTR_VIGIL_COMPONENT, 'database')], 1],
    [[int(sdk.ATTR_VIGIL_LEVEL, 1), str(sdk.ATTR_VIGIL_CHECK, 'dependency:cache/redis'), str(sdk.ATTR_VIGIL_COMPONENT, 'cache')], 1],
    ...['process:event-loop-lag', 'process:memory', 'process:cpu'].map((id) => [[int(sdk.ATTR_VIGIL_LEVEL, 1), str(sdk.ATTR_VIGIL_CHECK, id)], 1]),
    [[int(sdk.ATTR_VIGIL_LEVEL, 2), str(sdk.ATTR_VIGIL_CHECK, 'error-rate')], 1],
  ];
  const metrics = [
    gauge(sdk.METRIC_ROUTER_IMPORT, components.map((c, i) => [[str(sdk.ATTR_VIGIL_ROUTER, `router_${i}`), str(sdk.ATTR_VIGIL_COMPONENT, c), str(sdk.ATTR_VIGIL_OUTCOME, i === failingRouter ? 'failure' : 'success')], i === failingRouter ? 0 : 1])),
    gauge(sdk.METRIC_ROUTE_REGISTERED, rs.map((r) => [[str(sdk.ATTR_HTTP_ROUTE, r.route), str(sdk.ATTR_HTTP_REQUEST_METHOD, r.method), str(sdk.ATTR_VIGIL_COMPONENT, r.component), bool(sdk.ATTR_VIGIL_CRITICAL, true)], 1])),
    gauge(sdk.METRIC_STARTUP_CHECK, [
      [[str(sdk.ATTR_VIGIL_CHECK, 'postgres'), str(sdk.ATTR_VIGIL_CHECK_TYPE, 'custom'), str(sdk.ATTR_VIGIL_COMPONENT, 'database'), str(sdk.ATTR_VIGIL_POLICY, 'fail_fast')], 1],
      [[str(sdk.ATTR_VIGIL_CHECK, 'redis'), str(sdk.ATTR_VIGIL_CHECK_TYPE, 'custom'), str(sdk.ATTR_VIGIL_COMPONENT, 'cache'), str(sdk.ATTR_VIGIL_POLICY, 'degrade')], 1],
    ]),
    gauge(sdk.METRIC_COMPONENT_HEALTHY, components.map((c, i) => [[str(sdk.ATTR_VIGIL_COMPONENT, c), str(sdk.ATTR_VIGIL_POLICY, 'degrade')], i === failingRouter ? 0 : 1])),
    gauge(sdk.METRIC_STARTUP_SUCCESS, [[[], 1]]),
    { name: sdk.METRIC_STARTUP_DURATION, histogram: { aggregationTemporality: 2, dataPoints: [{ attributes: [], ...t, count: 1, sum: 0.0105, bucketCounts: [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], explicitBounds: BOUNDS, min: 0.0105, max: 0.0105 }] } },
    {
      name: sdk.METRIC_PROBE_DURATION,
      histogram: {
        aggregationTemporality: 2,
        dataPoints: rs.map((r) => ({
          attributes: [str(sdk.ATTR_HTTP_ROUTE, r.route), str(sdk.ATTR_HTTP_REQUEST_METHOD, r.method), str(sdk.ATTR_VIGIL_COMPONENT, r.component), int('http.response.status_code', 200)],
          ...t,
          count: 12,
          sum: 0.21,
          bucketCounts: [0, 2, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0],
          explicitBounds: BOUNDS,
          min: 0.006,
          max: 0.024,
        })),
      },
    },
    gauge(sdk.METRIC_PROBE_SUCCESS, rs.map((r) => [[str(sdk.ATTR_HTTP_ROUTE, r.route), str(sdk.ATTR_HTTP_REQUEST_METHOD, r.method), str(sdk.ATTR_VIGIL_COMPONENT, r.component)], 1])),
    gauge(sdk.METRIC_HEALTH_LEVEL, checks),
  ];
  const request = {
    resourceMetrics: [
      {
        resource: {
          attributes: [
            str(sdk.ATTR_SERVICE_NAME, service),
            str('service.version', '1.4.0'),
            str(sdk.ATTR_SERVICE_INSTANCE_ID, instance),
            str(sdk.ATTR_DEPLOYMENT_ENVIRONMENT_NAME, 'production'),
            str('telemetry.sdk.language', 'nodejs'),
            str('telemetry.sdk.name', 'opentelemetry'),
            str('telemetry.sdk.version', '2.12.1'),
          ],
          droppedAttributesCount: 0,
        },
        scopeMetrics: [{ scope: { name: '@vigil/sdk', version: '0.1.0' }, metrics }],
      },
    ],
  };
  let gaugePoints = 0;
  let histogramPoints = 0;
  for (const m of metrics) {
    if (m.gauge) gaugePoints += m.gauge.dataPoints.length;
    if (m.histogram) histogramPoints += m.histogram.dataPoints.length;
  }
  return { request, gaugePoints, histogramPoints };
}

const serviceName = (i) => `svc-${String(i).padStart(5, '0')}`;
const instanceId = (i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;

/** The JSON text of service `i`'s export, from a template split at the service and instance ids. */
function bodyFactory(routes) {
  const SVC = '@@SERVICE@@';
  const INST = '@@INSTANCE@@';
  const text = JSON.stringify(exportRequest({ service: SVC, instance: INST, index: 0, routes, timeNs: BigInt(Date.now()) * 1_000_000n }).request);
  const parts = text.split(SVC).map((p) => p.split(INST));
  // 1 % failing, as in exportRequest: the failing variant of the router import is its own template.
  const failing = JSON.stringify(exportRequest({ service: SVC, instance: INST, index: FAILING_EVERY - 1, routes, timeNs: BigInt(Date.now()) * 1_000_000n }).request)
    .split(SVC)
    .map((p) => p.split(INST));
  return (i) => {
    const tpl = i % FAILING_EVERY === FAILING_EVERY - 1 ? failing : parts;
    return tpl.map((p) => p.join(instanceId(i))).join(serviceName(i));
  };
}

// ---------------------------------------------------------------------------------------------
// The load generator (child process): POST service exports round-robin until stdin closes.

if (values.client) {
  const url = new URL(values.url);
  const services = Number(values.services);
  const make = bodyFactory(Number(values.routes));
  const bodies = Array.from({ length: Math.min(services, 2000) }, (_, i) => Buffer.from(make(i)));
  const bodyOf = (i) => (services <= bodies.length ? bodies[i % services] : Buffer.from(make(i % services)));
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number(values.clients) });
  let next = 0;
  let stopped = false;
  const counts = { ok: 0, failed: 0 };
  const post = (body) =>
    new Promise((resolve) => {
      const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) counts.ok++;
          else counts.failed++;
          resolve();
        });
      });
      req.on('error', () => {
        counts.failed++;
        resolve();
      });
      req.end(body);
    });
  const loop = async () => {
    while (!stopped) await post(bodyOf(next++));
  };
  process.stdin.resume();
  process.stdin.on('end', () => (stopped = true));
  process.stdout.write('ready\n');
  await Promise.all(Array.from({ length: Number(values.clients) }, loop));
  process.stdout.write(JSON.stringify(counts) + '\n');
  agent.destroy();
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// The benchmark.

const log = (s) => process.stderr.write(`[evaluator-scale] ${s}\n`);
const quick = values.quick;
const seconds = Number(values.seconds ?? (quick ? 1 : 5));
const clients = Number(values.clients);
const evalRuns = quick ? 3 : 7;
const ingestRounds = quick ? 1 : 2;
const HEADLINE = { services: quick ? 100 : 1000, routes: 50 };
const GROWTH = { sizes: quick ? [10, 100, 1000] : [100, 1000, 10_000], routes: 10 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

v8.setFlagsFromString('--expose-gc');
const gc = globalThis.gc ?? vm.runInNewContext('gc');
const fullGc = () => {
  gc();
  gc();
};

/**
 * Full GCs until the heap stops shrinking (at most 20, 20 ms apart): what the previous store
 * left behind (its webhook deliveries still in flight after `stop`) must be gone before a heap
 * baseline is taken, or it is freed inside the next measurement (one CI run measured -18 kB per
 * series for the 10-service store).
 */
async function settledHeap() {
  let last = Infinity;
  for (let i = 0; i < 20; i++) {
    fullGc();
    const used = process.memoryUsage().heapUsed;
    if (last - used < 64 * 1024) return used;
    last = used;
    await sleep(20);
  }
  return last;
}

const distUrl = (f) => pathToFileURL(path.join(root, 'packages/evaluator/dist', f)).href;
const { Evaluator, EvaluatorConfig } = await import(distUrl('index.js'));
const { createOtlpReceiver } = await import(distUrl('sources/otlp.js'));
const { toSignal, isSignalMetric } = await import(distUrl('sources/mapping.js'));
const { SignalStore } = await import(distUrl('state/store.js'));
const { parse } = await import('yaml');
const { pino } = await import('pino');

// Pages go to a sink in this process (only the first evaluation of a filled store sends any).
let paged = 0;
const sink = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    paged++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
await new Promise((r) => sink.listen(0, '127.0.0.1', r));
const exampleConfig = parse(await readFile(path.join(root, 'examples/marketedge-api/evaluator.yaml'), 'utf8'));
const config = EvaluatorConfig.parse({
  ...exampleConfig,
  server: { host: '127.0.0.1', port: 0 },
  source: { type: 'otlp' },
  notifiers: { pager: { type: 'webhook', url: `http://127.0.0.1:${sink.address().port}/page` } },
});
const silent = pino({ level: 'silent' });

/** The signals of service `i`, as the receiver maps them (flattened attributes → toSignal). */
function signalsOf(i, routes, observedAt) {
  const { request } = exportRequest({ service: serviceName(i), instance: instanceId(i), index: i, routes, timeNs: BigInt(observedAt) * 1_000_000n });
  const rm = request.resourceMetrics[0];
  const flat = (attrs) => Object.fromEntries((attrs ?? []).map(({ key, value }) => [key, String(value.stringValue ?? value.boolValue ?? value.intValue ?? value.doubleValue)]));
  const res = flat(rm.resource.attributes);
  const from = { service: res[sdk.ATTR_SERVICE_NAME], instance: res[sdk.ATTR_SERVICE_INSTANCE_ID], environment: res[sdk.ATTR_DEPLOYMENT_ENVIRONMENT_NAME] };
  const out = [];
  for (const m of rm.scopeMetrics[0].metrics) {
    if (!m.gauge || !isSignalMetric(m.name)) continue;
    for (const dp of m.gauge.dataPoints) {
      const s = toSignal(m.name, dp.asDouble, flat(dp.attributes), from, observedAt);
      if (s) out.push(s);
    }
  }
  return out;
}

/** A store filled with `services` services of `routes` routes: its signal count and the heap it took. */
function fill(store, services, routes, at) {
  let signals = 0;
  for (let i = 0; i < services; i++) {
    const s = signalsOf(i, routes, at);
    signals += s.length;
    store.ingest(s, at);
  }
  return signals;
}

/** An evaluator (not listening yet) with a filled store; its clock fixed at the fill unless `realClock`. */
async function filledEvaluator(services, routes, { realClock = false } = {}) {
  const at = Date.now();
  const evaluator = new Evaluator(config, { logger: silent, ...(realClock ? {} : { now: () => at }) });
  const before = await settledHeap();
  const signals = fill(evaluator.store, services, routes, at);
  fullGc();
  const bytesPerSeries = (process.memoryUsage().heapUsed - before) / signals;
  return { evaluator, signals, bytesPerSeries };
}

/** HTTP ingest: the evaluator listening (its evaluation loop running over a filled store), clients in a child. */
async function ingestHttp(services, routes) {
  const { evaluator } = await filledEvaluator(services, routes, { realClock: true });
  const { url } = await evaluator.start();
  const receiver = evaluator.receiver; // private in TypeScript: its counters are what is measured
  if (typeof receiver?.stats !== 'function') throw new Error('Evaluator has no OTLP receiver with stats() any more: update bench/evaluator-scale.mjs');
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--client', '--url', `${url}/v1/metrics`, '--services', String(services), '--routes', String(routes), '--clients', String(clients)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  try {
    for (let i = 0; !out.includes('ready\n'); i++) {
      if (child.exitCode !== null || i > 600) throw new Error(`the load generator did not start (exit ${child.exitCode})`);
      await sleep(50);
    }
    await sleep(Math.min(1000, seconds * 300)); // warm-up: connections, JIT
    const a = { ...receiver.stats(), t: performance.now() };
    await sleep(seconds * 1000);
    const b = { ...receiver.stats(), t: performance.now() };
    child.stdin.end();
    await once(child, 'exit');
    const counts = JSON.parse(out.trim().split('\n').pop());
    const elapsed = (b.t - a.t) / 1000;
    const accepted = b.requests - b.rejected - (a.requests - a.rejected);
    if (b.rejected > 0 || counts.failed > 0) throw new Error(`the receiver refused requests: ${b.rejected} rejected, ${counts.failed} failed at the client`);
    const perRequest = exportRequest({ service: 'x', instance: 'y', index: 0, routes, timeNs: 1n });
    return {
      requestsPerS: accepted / elapsed,
      pointsPerS: (accepted * (perRequest.gaugePoints + perRequest.histogramPoints)) / elapsed,
      gaugePointsPerS: (b.points - a.points) / elapsed,
      bodyBytes: Buffer.byteLength(bodyFactory(routes)(0)),
      pointsPerRequest: perRequest.gaugePoints + perRequest.histogramPoints,
    };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await evaluator.stop(1000);
  }
}

/** The receiver's handler called in this process: parse, validate, map and store, no HTTP. */
async function ingestInProcess(services, routes) {
  const store = new SignalStore({ silentAfter: config.silentAfter, staleAfter: config.staleAfter, retain: config.retain });
  const receiver = createOtlpReceiver({ config: config.source, env: {}, onSignals: (s, at) => store.ingest(s, at), onProbeLatency: () => undefined });
  const make = bodyFactory(routes);
  const bodies = Array.from({ length: Math.min(services, 2000) }, (_, i) => Buffer.from(make(i)));
  const call = (body) =>
    new Promise((resolve, reject) => {
      const req = Object.assign(Readable.from([body], { objectMode: false }), {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
        complete: true,
      });
      const res = {
        headersSent: false,
        writableEnded: false,
        destroyed: false,
        status: 0,
        writeHead(status) {
          this.status = status;
          this.headersSent = true;
          return this;
        },
        end() {
          this.writableEnded = true;
          if (this.status === 200) resolve();
          else reject(new Error(`the receiver answered ${this.status}`));
        },
      };
      receiver.handler(req, res);
    });
  const deadline = performance.now() + Math.min(1000, seconds * 300);
  for (let i = 0; performance.now() < deadline; i++) await call(bodies[i % bodies.length]); // warm-up
  const a = { ...receiver.stats(), t: performance.now() };
  const end = a.t + seconds * 1000;
  let n = 0;
  while (performance.now() < end) await call(bodies[n++ % bodies.length]);
  const b = { ...receiver.stats(), t: performance.now() };
  const perRequest = exportRequest({ service: 'x', instance: 'y', index: 0, routes, timeNs: 1n });
  const elapsed = (b.t - a.t) / 1000;
  return { requestsPerS: n / elapsed, pointsPerS: (n * (perRequest.gaugePoints + perRequest.histogramPoints)) / elapsed, gaugePointsPerS: (b.points - a.points) / elapsed };
}

const started = performance.now();
const fmt = (x) => Math.round(x).toLocaleString('en-GB');

// 1. Ingest at the headline size: in process (no HTTP) and over HTTP, alternated.
const H = HEADLINE;
log(`ingest: ${H.services} services × ${H.routes} routes, ${clients} keep-alive clients in a child process, ${seconds} s per run`);
const inproc = [];
const overHttp = [];
for (let r = 1; r <= ingestRounds; r++) {
  for (const mode of r % 2 ? ['http', 'inproc'] : ['inproc', 'http']) {
    if (mode === 'http') {
      const x = await ingestHttp(H.services, H.routes);
      overHttp.push(x);
      log(`  round ${r}/${ingestRounds} over HTTP: ${fmt(x.pointsPerS)} data points/s (${fmt(x.requestsPerS)} requests/s of ${fmt(x.bodyBytes)} bytes, ${x.pointsPerRequest} points each)`);
    } else {
      const x = await ingestInProcess(H.services, H.routes);
      inproc.push(x);
      log(`  round ${r}/${ingestRounds} in process, no HTTP: ${fmt(x.pointsPerS)} data points/s (${fmt(x.requestsPerS)} requests/s)`);
    }
  }
}
const httpPts = median(overHttp.map((x) => x.pointsPerS));
const inprocPts = median(inproc.map((x) => x.pointsPerS));

// 2. Evaluation time and memory, one store at a time (as in a real evaluator: a second store alive
//    beside it would make the GC's work, not the evaluator's, grow): filled (heap measured), a
//    first evaluation that fires the alerts, warm-up, then timed cycles. Two passes in opposite
//    orders (--quick: one), so that a noisy spell does not hit one size only.
const sizes = [{ key: 'headline', ...H }, ...GROWTH.sizes.map((services) => ({ key: `growth-${services}`, services, routes: GROWTH.routes }))];
const passes = quick ? 1 : 2;
log(`evaluation: ${sizes.map((z) => `${fmt(z.services)} × ${z.routes}`).join(', ')} (services × routes), one store at a time, ${evalRuns} timed cycles each, ${passes} pass(es)`);
const acc = new Map(sizes.map((z) => [z.key, { ...z, times: [], bytes: [], firstMs: [] }]));
for (let pass = 1; pass <= passes; pass++) {
  for (const z of pass % 2 ? sizes : [...sizes].reverse()) {
    const a = acc.get(z.key);
    let { evaluator, signals, bytesPerSeries } = await filledEvaluator(z.services, z.routes);
    const t0 = performance.now();
    a.sent = evaluator.evaluate().length; // fires the alerts and sends their pages
    a.firstMs.push(performance.now() - t0);
    await sleep(200);
    for (let i = 0; i < 3; i++) evaluator.evaluate(); // warm-up
    const times = [];
    for (let i = 0; i < evalRuns; i++) {
      const t = performance.now();
      const n = evaluator.evaluate().length;
      times.push(performance.now() - t);
      if (n !== 0) throw new Error(`a steady-state evaluation sent ${n} notifications`);
    }
    a.alerts = evaluator.status().alerts.length;
    a.signals = signals;
    a.times.push(...times);
    a.bytes.push(bytesPerSeries);
    await evaluator.stop(1000);
    evaluator = undefined;
    fullGc();
    log(`  pass ${pass}/${passes}, ${fmt(z.services)} × ${z.routes}: ${fmt(signals)} series, ${fmt(bytesPerSeries)} bytes of heap per series; one evaluation ${median(times).toFixed(2)} ms (min ${Math.min(...times).toFixed(2)}, max ${Math.max(...times).toFixed(2)}; the first, firing ${a.alerts} alert(s): ${a.firstMs.at(-1).toFixed(1)} ms)`);
  }
}
const evals = [...acc.values()].map((a) => ({
  key: a.key,
  services: a.services,
  routes: a.routes,
  signals: a.signals,
  bytesPerSeries: median(a.bytes),
  ms: median(a.times),
  min: Math.min(...a.times),
  max: Math.max(...a.times),
  firstMs: median(a.firstMs),
  alerts: a.alerts,
}));
const headline = evals.find((e) => e.key === 'headline');
log(`  one evaluation at ${fmt(H.services)} × ${H.routes}: ${headline.ms.toFixed(2)} ms (the first, which fired ${headline.alerts} alert(s): ${headline.firstMs.toFixed(1)} ms)`);

// 3. Ingest over HTTP as the store grows (10 routes each), alternated.
log(`ingest growth: ${GROWTH.sizes.join(' → ')} services × ${GROWTH.routes} routes in the store, ${ingestRounds} alternated round(s)`);
const ingestBySize = new Map(GROWTH.sizes.map((n) => [n, []]));
for (let r = 1; r <= ingestRounds; r++) {
  for (const services of r % 2 ? GROWTH.sizes : [...GROWTH.sizes].reverse()) {
    const x = await ingestHttp(services, GROWTH.routes);
    ingestBySize.get(services).push(x.pointsPerS);
    log(`  round ${r}/${ingestRounds}, ${fmt(services)} services: ${fmt(x.pointsPerS)} data points/s`);
  }
}
sink.close();
const growth = GROWTH.sizes.map((services) => {
  const e = evals.find((x) => x.key === `growth-${services}`);
  return { services, signals: e.signals, bytesPerSeries: e.bytesPerSeries, evalMs: e.ms, alerts: e.alerts, pointsPerS: median(ingestBySize.get(services)) };
});

const [g0, g1, g2] = growth;
const linear = (a, b) => b.services / a.services;
const perSeriesUs = (g) => round((g.evalMs * 1000) / g.signals, 3);
const rows = [
  {
    metric: `OTLP ingest over HTTP (${fmt(H.services)} services × ${H.routes} routes, ${clients} keep-alive clients)`,
    value: Math.round(httpPts),
    unit: 'data points/s',
    baseline: Math.round(inprocPts),
    ratio: round(httpPts / inprocPts, 3),
    note: `baseline: the receiver's handler in process without HTTP (parse + validate + map + store); ${fmt(median(overHttp.map((x) => x.requestsPerS)))} requests/s of ${fmt(overHttp[0].bodyBytes)} bytes, ${overHttp[0].pointsPerRequest} points each (gauges and histograms), the evaluation loop running; median of ${ingestRounds} alternated run(s) of ${seconds} s each; at the SDK's default export interval (10 s) that is ≈ ${fmt(median(overHttp.map((x) => x.requestsPerS)) * 10)} app instances of ${H.routes} routes`,
  },
  {
    metric: `one evaluation cycle, ${fmt(H.services)} services × ${H.routes} routes`,
    value: round(headline.ms, 2),
    unit: 'ms',
    note: `${fmt(headline.signals)} series, ${headline.alerts} alert(s) held; median of ${evalRuns * passes} (min ${headline.min.toFixed(1)}, max ${headline.max.toFixed(1)}); the first cycle, which fired them: ${headline.firstMs.toFixed(1)} ms; at the default interval of 1 s that is ${round(headline.ms / 10, 2)} % of a core`,
  },
  {
    metric: 'heap per tracked series (signal)',
    value: Math.round(headline.bytesPerSeries),
    unit: 'bytes',
    note: `heap delta after GC / ${fmt(headline.signals)} series, ${H.services} services × ${H.routes} routes (one instance each): ${round((headline.bytesPerSeries * headline.signals) / 1048576, 1)} MiB`,
  },
  ...[
    [g0, g1],
    [g1, g2],
  ].map(([a, b]) => ({
    metric: `evaluation time growth, ${fmt(a.services)} → ${fmt(b.services)} services (${GROWTH.routes} routes each)`,
    value: round(b.evalMs / a.evalMs, 2),
    unit: '×',
    target: `≤ ${linear(a, b) * 1.5}× (linear: ${linear(a, b)}×)`,
    met: b.evalMs / a.evalMs <= linear(a, b) * 1.5,
    note: `${a.evalMs.toFixed(2)} ms → ${b.evalMs.toFixed(2)} ms (${fmt(a.signals)} → ${fmt(b.signals)} series; per series ${perSeriesUs(a)} → ${perSeriesUs(b)} µs), medians of ${evalRuns * passes} cycles`,
  })),
  {
    metric: `heap per series growth, ${fmt(g0.services)} → ${fmt(g2.services)} services`,
    value: round(g2.bytesPerSeries / g0.bytesPerSeries, 2),
    unit: '×',
    target: '≤ 1.5× (constant per series)',
    met: g2.bytesPerSeries / g0.bytesPerSeries <= 1.5,
    note: growth.map((g) => `${fmt(g.services)}: ${fmt(g.bytesPerSeries)} B/series`).join(', '),
  },
  {
    metric: `ingest rate growth, ${fmt(g0.services)} → ${fmt(g2.services)} services in the store`,
    value: round(g2.pointsPerS / g0.pointsPerS, 2),
    unit: '×',
    target: '≥ 0.5× (the evaluation loop over a bigger store takes its share)',
    met: g2.pointsPerS / g0.pointsPerS >= 0.5,
    note: growth.map((g) => `${fmt(g.services)}: ${fmt(g.pointsPerS)} points/s`).join(', '),
  },
];

const doc = {
  name: 'evaluator-scale',
  title: 'How far one evaluator process scales: OTLP ingest, evaluation time, memory',
  settings: {
    quick,
    seconds,
    clients,
    evalRuns,
    headline: H,
    growth: GROWTH,
    failingServices: `1 in ${FAILING_EVERY}`,
    instancesPerService: 1,
    config: 'examples/marketedge-api/evaluator.yaml (rules, policies, contexts), source otlp, a webhook notifier to a sink in this process',
    seconds_total: Math.round((performance.now() - started) / 1000),
  },
  rows,
  environment: { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100) },
};
await mkdir(path.dirname(path.resolve(values.out)), { recursive: true });
await writeFile(values.out, JSON.stringify(doc, null, 2) + '\n');
for (const row of rows) log(`${row.metric}: ${row.value} ${row.unit}${row.target ? ` (target ${row.target}: ${row.met ? 'met' : 'NOT met'})` : ''}`);
log(`wrote ${values.out} (${doc.settings.seconds_total} s; ${paged} pages reached the sink)`);
process.exit(0);
