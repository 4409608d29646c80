/**
 * Helpers shared by the benchmarks in bench/: command line, progress, free
 * ports, child servers, medians, the result document (the shared contract:
 * `{ name, title, settings, rows, environment }`), and a local OTLP sink.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const EXAMPLE = path.join(ROOT, 'examples/marketedge-api');

/** `--quick`, `--out <file>` and the benchmark's own options (strings unless `type` says otherwise). */
export function cli(name, options = {}) {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, out: { type: 'string' }, ...options },
    strict: true,
  });
  values.out = path.resolve(values.out ?? path.join(ROOT, 'bench/results', `${name}.json`));
  return values;
}

/** A progress line on stderr. */
export const progress = (line) => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const freePort = () =>
  new Promise((resolve, reject) => {
    const s = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** Median (upper median for an even count); NaN for no samples. */
export function median(xs) {
  if (xs.length === 0) return NaN;
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

export const round = (x, digits = 3) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

const live = new Set();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));

/**
 * Spawns a node process (`args` after the node executable) and waits until
 * `readyUrl` answers 2xx. Resolves to `{ child, stop() }`; rejects with the
 * child's stderr tail when it exits or never gets ready.
 */
export async function startServer({ args, cwd = ROOT, env, readyUrl, timeoutMs = 30_000 }) {
  const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  let exited = null;
  child.once('exit', (code, signal) => {
    exited = { code, signal };
    live.delete(child);
  });
  const stop = async () => {
    if (exited) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) throw new Error(`${args.join(' ')} exited (${exited.code ?? exited.signal}) before it was ready:\n${stderr}`);
    if (await fetch(readyUrl).then((r) => r.ok, () => false)) return { child, stop, stderr: () => stderr };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${args.join(' ')}: ${readyUrl} not ready within ${timeoutMs} ms:\n${stderr}`);
    }
    await sleep(50);
  }
}

/**
 * A local OTLP/HTTP endpoint answering 200 to everything, counting what it
 * receives by path. `url` is the base to give OTEL_EXPORTER_OTLP_ENDPOINT.
 */
export async function startSink() {
  const counts = {};
  const server = http.createServer((req, res) => {
    let bytes = 0;
    req.on('data', (d) => (bytes += d.length));
    req.on('end', () => {
      const c = (counts[req.url] ??= { requests: 0, bytes: 0 });
      c.requests++;
      c.bytes += bytes;
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/x-protobuf', 'content-length': 0 });
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** What arrived since the last call, by path. */
    take() {
      const out = structuredClone(counts);
      for (const k of Object.keys(counts)) delete counts[k];
      return out;
    },
    close: () => new Promise((r) => server.close(r)),
  };
}

export function environment() {
  const cpus = os.cpus();
  return { node: process.version, platform: `${process.platform} ${process.arch}`, cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown', memoryGB: round(os.totalmem() / 2 ** 30, 1) };
}

/** Checks the rows against the shared contract and writes the document to `out` (`extra` keys, such as raw samples, go in too). */
export async function writeResult(out, { name, title, settings, rows, ...extra }) {
  for (const row of rows) {
    if (typeof row.metric !== 'string' || !Number.isFinite(row.value) || typeof row.unit !== 'string') {
      throw new Error(`bad row: ${JSON.stringify(row)}`);
    }
  }
  const doc = { name, title, settings, rows, ...extra, environment: environment(), finishedAt: new Date().toISOString() };
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(doc, null, 2)}\n`);
  progress(`wrote ${path.relative(process.cwd(), out) || out}`);
  return doc;
}

/**
 * A row comparing `value` with `baseline`, with an optional minimum or maximum
 * ratio as target. The ratio is value / baseline unless given (e.g. the median
 * of per-round ratios, steadier than the ratio of medians when the load drifts).
 */
export function compareRow(metric, unit, value, baseline, { min, max, note, ratio = value / baseline } = {}) {
  const row = { metric, value: round(value, 2), unit, baseline: round(baseline, 2) };
  if (!Number.isFinite(ratio)) {
    // A zero baseline (a p99 under the timer's resolution, say): no ratio to report.
    row.note = [note, 'no ratio: zero baseline'].filter(Boolean).join('; ');
    if (min !== undefined || max !== undefined) Object.assign(row, { target: min !== undefined ? `≥ ${min}` : `≤ ${max}`, met: false });
    return row;
  }
  row.ratio = round(ratio, 3);
  if (min !== undefined) Object.assign(row, { target: `≥ ${min}`, met: ratio >= min });
  if (max !== undefined) Object.assign(row, { target: `≤ ${max}`, met: ratio <= max });
  if (note) row.note = note;
  return row;
}
