#!/usr/bin/env node
/**
 * What Vigil costs the host app's own traffic. The example API's routers under
 * load (autocannon, one cheap route, 10 connections), served by four node
 * processes of the same layout, one at a time:
 *
 *   bare        the routers on Express, no Vigil, no OpenTelemetry (bench/apps/bare.mjs)
 *   otel        the same plus plain OpenTelemetry: NodeSDK, http + express
 *               instrumentation, OTLP/HTTP protobuf metrics and traces
 *               (bench/apps/otel-register.mjs)
 *   vigil       the example as users run it: `node --import @vigil/sdk/register
 *               dist/server.js`, route inventory, health endpoints, and the
 *               monitor running every check every second (endpoints, flows,
 *               drift, process, error rate, dependencies)
 *   vigil-quiet the same with the monitor off: what the monitor alone costs
 *
 * otel and both vigil variants export to the same local sink (a server in this
 * process answering 200). Each round runs every variant back to back (the order
 * rotates); a comparison is the median of the per-round ratios, beside the
 * medians over rounds: the machine is noisy, absolute numbers are not targets.
 * The metric export interval is 2 s (Vigil's default is 10 s) so that exports
 * happen during each measurement.
 *
 *   node bench/host-overhead.mjs [--quick] [--out file] [--rounds 5] [--seconds 5]
 *        [--warmup 1] [--connections 10] [--route /api/v1/features]
 */
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { cli, compareRow, EXAMPLE, freePort, median, progress, ROOT, round, sleep, startServer, startSink, writeResult } from './lib/common.mjs';

const NAME = 'host-overhead';
const args = cli(NAME, {
  rounds: { type: 'string' },
  seconds: { type: 'string' },
  warmup: { type: 'string' },
  connections: { type: 'string', default: '10' },
  route: { type: 'string', default: '/api/v1/features' },
  'export-interval': { type: 'string', default: '2000' },
});
const settings = {
  rounds: Number(args.rounds ?? (args.quick ? 1 : 5)),
  seconds: Number(args.seconds ?? (args.quick ? 1 : 5)),
  warmupSeconds: Number(args.warmup ?? (args.quick ? 0 : 1)),
  connections: Number(args.connections),
  route: args.route,
  exportIntervalMs: Number(args['export-interval']),
  monitorIntervals: '1s (endpoints, flows, drift, process, errorRate, dependencies)',
};

// Manifests outside the repository, with the example's modules as file: URLs.
const tmp = await mkdtemp(path.join(os.tmpdir(), 'vigil-bench-host-'));
process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
const base = (await readFile(path.join(EXAMPLE, 'vigil.yaml'), 'utf8')).replaceAll('module: ./', `module: ${pathToFileURL(EXAMPLE).href}/`);
if (!base.includes('endpoints: 30s') || !base.includes('flows: 60s')) throw new Error('the example manifest no longer has the monitor intervals this benchmark rewrites');
const manifests = { on: path.join(tmp, 'vigil.monitor-on.yaml'), off: path.join(tmp, 'vigil.monitor-off.yaml') };
await writeFile(manifests.on, base.replace('endpoints: 30s', 'endpoints: 1s\n    drift: 1s\n    process: 1s\n    errorRate: 1s\n    dependencies: 1s').replace('flows: 60s', 'flows: 1s'));
await writeFile(manifests.off, base.replace('monitor:\n', 'monitor:\n  enabled: false\n'));

const sink = await startSink();
const commonEnv = {
  ...process.env,
  OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
  OTEL_METRIC_EXPORT_INTERVAL: String(settings.exportIntervalMs),
  OTEL_SERVICE_NAME: 'marketedge-api',
  NODE_ENV: 'production',
};
// Nothing broken, no demo noise, the default exporters and log level.
for (const k of Object.keys(commonEnv)) if (k.startsWith('VIGIL_DEMO_')) delete commonEnv[k];
for (const k of ['OTEL_SDK_DISABLED', 'OTEL_TRACES_EXPORTER', 'OTEL_METRICS_EXPORTER', 'OTEL_EXPORTER_OTLP_PROTOCOL', 'VIGIL_LOG_LEVEL', 'NODE_OPTIONS']) delete commonEnv[k];

const VARIANTS = {
  bare: { label: 'bare Express', args: ['bench/apps/bare.mjs'], env: { VIGIL_MANIFEST: manifests.off }, cwd: ROOT },
  otel: { label: 'Express + OpenTelemetry', args: ['--import', './bench/apps/otel-register.mjs', 'bench/apps/bare.mjs'], env: { VIGIL_MANIFEST: manifests.off }, cwd: ROOT },
  vigil: { label: 'Vigil, monitor every 1 s', args: ['--import', '@vigil/sdk/register', 'dist/server.js'], env: { VIGIL_MANIFEST: manifests.on }, cwd: EXAMPLE },
  'vigil-quiet': { label: 'Vigil, monitor off', args: ['--import', '@vigil/sdk/register', 'dist/server.js'], env: { VIGIL_MANIFEST: manifests.off }, cwd: EXAMPLE },
};
const names = Object.keys(VARIANTS);

async function runOnce(name) {
  const v = VARIANTS[name];
  const port = await freePort();
  const url = `http://127.0.0.1:${port}${settings.route}`;
  const server = await startServer({ args: v.args, cwd: v.cwd, env: { ...commonEnv, ...v.env, PORT: String(port) }, readyUrl: url });
  try {
    // Vigil's validation and the monitor's first runs happen right after listening.
    await sleep(name.startsWith('vigil') ? 1500 : 500);
    if (settings.warmupSeconds > 0) await autocannon({ url, connections: settings.connections, duration: settings.warmupSeconds });
    sink.take();
    const r = await autocannon({ url, connections: settings.connections, duration: settings.seconds });
    if (r.non2xx > 0 || r.requests.total === 0) throw new Error(`${name}: ${r.non2xx} non-2xx answers of ${r.requests.total} to ${url}:\n${server.stderr()}`);
    return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, sink: sink.take() };
  } finally {
    await server.stop();
  }
}

const samples = Object.fromEntries(names.map((n) => [n, []]));
const sinkTotals = Object.fromEntries(names.map((n) => [n, { traces: 0, metrics: 0 }]));
try {
  progress(`${NAME}: ${names.join(', ')}; ${settings.rounds} round(s) × ${settings.seconds} s of GET ${settings.route}, ${settings.connections} connections`);
  for (let r = 0; r < settings.rounds; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]);
    for (const name of order) {
      const s = await runOnce(name);
      samples[name].push(s);
      sinkTotals[name].traces += s.sink['/v1/traces']?.bytes ?? 0;
      sinkTotals[name].metrics += s.sink['/v1/metrics']?.bytes ?? 0;
      progress(`round ${r + 1}/${settings.rounds} ${name.padEnd(11)} ${s.rps.toFixed(0).padStart(6)} req/s  p50 ${s.p50} ms  p99 ${s.p99} ms  errors ${s.errors}  exported ${s.sink['/v1/traces']?.requests ?? 0} trace / ${s.sink['/v1/metrics']?.requests ?? 0} metric requests`);
    }
  }
} finally {
  await sink.close();
}

const m = Object.fromEntries(names.map((n) => [n, { rps: median(samples[n].map((s) => s.rps)), p99: median(samples[n].map((s) => s.p99)) }]));
for (const name of ['otel', 'vigil']) {
  if (settings.seconds >= 1 && sinkTotals[name].traces === 0) progress(`warning: ${name} exported no spans to the sink during the load — is the instrumentation working?`);
}
// Each round runs the variants back to back: the median of the per-round ratios
// is the comparison (value and baseline are the medians over rounds).
const compare = (metric, unit, key, a, b, opts = {}) =>
  compareRow(metric, unit, m[a][key], m[b][key], {
    ...opts,
    ratio: median(samples[a].map((s, i) => s[key] / samples[b][i][key])),
    note: `medians of ${settings.rounds} round(s); ratio: median of the per-round ratios ${a} / ${b}`,
  });
const rows = [
  { metric: `throughput, ${VARIANTS.bare.label}`, value: round(m.bare.rps, 1), unit: 'req/s', note: `median of ${settings.rounds} round(s)` },
  compare(`throughput, ${VARIANTS.otel.label} vs bare`, 'req/s', 'rps', 'otel', 'bare'),
  compare(`throughput, ${VARIANTS.vigil.label} vs OpenTelemetry alone`, 'req/s', 'rps', 'vigil', 'otel', { min: 0.97 }),
  compare(`throughput, ${VARIANTS.vigil.label} vs bare`, 'req/s', 'rps', 'vigil', 'bare'),
  compare(`throughput, ${VARIANTS['vigil-quiet'].label} vs OpenTelemetry alone`, 'req/s', 'rps', 'vigil-quiet', 'otel'),
  compare('throughput, Vigil monitor every 1 s vs monitor off', 'req/s', 'rps', 'vigil', 'vigil-quiet'),
  { metric: `p99 latency, ${VARIANTS.bare.label}`, value: m.bare.p99, unit: 'ms', note: `median of ${settings.rounds} round(s)` },
  compare(`p99 latency, ${VARIANTS.otel.label} vs bare`, 'ms', 'p99', 'otel', 'bare'),
  compare(`p99 latency, ${VARIANTS.vigil.label} vs OpenTelemetry alone`, 'ms', 'p99', 'vigil', 'otel'),
  compare(`p99 latency, ${VARIANTS.vigil.label} vs bare`, 'ms', 'p99', 'vigil', 'bare'),
  compare('p99 latency, Vigil monitor every 1 s vs monitor off', 'ms', 'p99', 'vigil', 'vigil-quiet'),
];
await writeResult(args.out, {
  name: NAME,
  title: 'Host overhead: the example API under load, bare vs OpenTelemetry vs Vigil',
  settings,
  rows,
  variants: Object.fromEntries(names.map((n) => [n, `${VARIANTS[n].label}: node ${VARIANTS[n].args.join(' ')} (in ${path.relative(ROOT, VARIANTS[n].cwd) || '.'})`])),
  samples,
});
for (const row of rows) progress(`${row.metric}: ${row.value} ${row.unit}${row.ratio !== undefined ? ` (baseline ${row.baseline}, ratio ${row.ratio}${row.target ? `, target ${row.target} ${row.met ? 'met' : 'NOT met'}` : ''})` : ''}`);
