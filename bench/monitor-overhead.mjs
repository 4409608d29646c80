#!/usr/bin/env node
/**
 * What the runtime monitor costs the app's own traffic: the example API under
 * load (autocannon, GET /api/v1/features, 10 connections) with the monitor off,
 * and with it probing every critical endpoint and flow every second. Runs are
 * alternated A/B and the medians compared as ratios (machines here are noisy).
 *
 *   node bench/monitor-overhead.mjs [--rounds 5] [--seconds 5]
 */
import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const example = path.join(root, 'examples/marketedge-api');
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, seconds: { type: 'string', default: '5' } } });
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);

const base = await readFile(path.join(example, 'vigil.yaml'), 'utf8');
const manifests = {
  off: path.join(example, `.vigil.bench-off-${process.pid}.yaml`),
  on: path.join(example, `.vigil.bench-on-${process.pid}.yaml`),
};
await writeFile(manifests.off, base.replace('monitor:\n', 'monitor:\n  enabled: false\n'));
// Every check the example has, every second: endpoints, flows, drift, process, error rate, dependencies.
await writeFile(
  manifests.on,
  base.replace('endpoints: 30s', 'endpoints: 1s\n    drift: 1s\n    process: 1s\n    errorRate: 1s\n    dependencies: 1s').replace('flows: 60s', 'flows: 1s'),
);

const freePort = () => new Promise((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); }); });

async function runOnce(mode) {
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/server.js'], {
    cwd: example,
    env: { ...process.env, PORT: String(port), VIGIL_MANIFEST: manifests[mode], OTEL_METRICS_EXPORTER: 'none', OTEL_TRACES_EXPORTER: 'none', VIGIL_LOG_LEVEL: 'silent' },
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (await fetch(`${url}/ready`).then((r) => r.ok, () => false)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 1500)); // let the monitor's first runs happen
  const result = await autocannon({ url: `${url}/api/v1/features`, connections: 10, duration: seconds });
  child.kill('SIGKILL');
  return { rps: result.requests.average, p99: result.latency.p99, errors: result.errors + result.non2xx };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const samples = { off: [], on: [] };
try {
  for (let r = 1; r <= rounds; r++) {
    for (const mode of r % 2 ? ['off', 'on'] : ['on', 'off']) {
      const s = await runOnce(mode);
      samples[mode].push(s);
      process.stderr.write(`round ${r}/${rounds} monitor ${mode}: ${s.rps.toFixed(0)} req/s, p99 ${s.p99} ms, errors ${s.errors}\n`);
    }
  }
} finally {
  await rm(manifests.off, { force: true });
  await rm(manifests.on, { force: true });
}
const summary = Object.fromEntries(
  Object.entries(samples).map(([k, v]) => [k, { rps: median(v.map((s) => s.rps)), p99: median(v.map((s) => s.p99)), errors: v.reduce((a, s) => a + s.errors, 0) }]),
);
const out = { ...summary, ratio: { rps: summary.on.rps / summary.off.rps, p99: summary.on.p99 / summary.off.p99 } };
console.log(JSON.stringify(out, null, 2));
