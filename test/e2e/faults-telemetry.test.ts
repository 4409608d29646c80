/**
 * The host app survives a broken telemetry backend. The example API runs with
 * `--import @vigil/sdk/register` (so every request gets http and express spans,
 * the heaviest telemetry it can produce) and exports metrics and traces over
 * OTLP/HTTP protobuf, the default, to an endpoint on 127.0.0.1 that is
 *   - healthy: answers 200 at once (the baseline),
 *   - down: a port nobody listens on,
 *   - slow: accepts and answers only after 30 s,
 *   - 500: answers 500 to every export.
 * 10,000 requests (autocannon, 10 connections) hit GET /api/v1/features in each
 * case; a fault must cost no failed request, no more than a generous p99 bound
 * over the healthy run, and no unbounded memory (the BatchSpanProcessor drops
 * spans beyond its queue of 2048). Then the endpoint turns healthy on the same
 * port and metrics and spans must arrive again.
 *
 * The app's environment makes the bounds short, so the file runs in about a
 * minute: OTEL_METRIC_EXPORT_INTERVAL=1000 (a metric export every second),
 * OTEL_EXPORTER_OTLP_TIMEOUT=2000 (an export, retries included, gives up after
 * 2 s) and OTEL_BSP_SCHEDULE_DELAY=1000 (spans leave at least every second).
 * Recovery is expected within 2 export intervals + the exporter timeout = 4 s.
 */
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
// @ts-expect-error autocannon ships no types; the shape used is declared below
import autocannonUntyped from 'autocannon';
import { startExample, type ExampleApp } from '../helpers/example.js';
import { freePort, REPO_ROOT } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

interface Histogram {
  average: number;
  p50: number;
  p99: number;
}
interface AutocannonResult {
  requests: Histogram & { total: number };
  latency: Histogram & { max: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  duration: number;
}
const autocannon = autocannonUntyped as (opts: { url: string; connections: number; amount: number; timeout?: number }) => Promise<AutocannonResult>;

const REQUESTS = 10_000;
const WARMUP_REQUESTS = 1000;
const EXPORT_INTERVAL_MS = 1000;
const EXPORTER_TIMEOUT_MS = 2000;
const RECOVERY_BOUND_MS = 2 * EXPORT_INTERVAL_MS + EXPORTER_TIMEOUT_MS;
/** V8 grows its heap lazily: resident memory rises 40–120 MB over 10k requests even with telemetry off (measured). */
const RSS_GROWTH_BOUND_MB = 200;
/**
 * What telemetry may retain, measured after a full GC: the span queue (2048) and
 * the batches in flight, against ~60,000 spans the 10k requests make.
 */
const HEAP_GROWTH_BOUND_MB = 40;
const SLOW_ANSWER_MS = 30_000;
const ERROR_PAGE_MARKER = 'upstream collector is broken';
/** An OpenTelemetry error in the app's log: one short line, whatever the endpoint answered. */
const MAX_LOG_LINE = 2000;

type Mode = 'healthy' | 'slow' | 'error';

interface Export {
  signal: 'metrics' | 'traces';
  mode: Mode;
  at: number;
  body: Buffer;
}

/** An OTLP/HTTP endpoint whose behaviour the test switches; it records every export it receives. */
class OtlpEndpoint {
  mode: Mode = 'healthy';
  readonly exports: Export[] = [];
  private server: http.Server | undefined;
  private readonly held = new Set<NodeJS.Timeout>();
  private errorPages = 0;

  constructor(readonly port: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(): Promise<void> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const signal = req.url === '/v1/metrics' ? 'metrics' : req.url === '/v1/traces' ? 'traces' : undefined;
        const mode = this.mode;
        if (signal) this.exports.push({ signal, mode, at: Date.now(), body: Buffer.concat(chunks) });
        if (mode === 'healthy') return void res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        // As a proxy in front of a broken collector answers: an error page, different every time.
        if (mode === 'error') return void res.writeHead(500, { 'content-type': 'text/html' }).end(`<html><body>${ERROR_PAGE_MARKER} request ${++this.errorPages} ${'.'.repeat(20_000)}</body></html>`);
        const timer = setTimeout(() => {
          this.held.delete(timer);
          res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        }, SLOW_ANSWER_MS);
        timer.unref();
        this.held.add(timer);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** The first export of `signal` after `since` that this endpoint accepted, carrying the example's data. */
  accepted(signal: Export['signal'], since: number, marker: string): Export | undefined {
    return this.exports.find((e) => e.signal === signal && e.at >= since && e.mode === 'healthy' && e.body.includes(marker));
  }

  async close(): Promise<void> {
    for (const t of this.held) clearTimeout(t);
    this.held.clear();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * Measurement only, loaded into the app beside the register module: on SIGWINCH
 * it collects garbage (the app runs with --expose-gc) and writes the heap still
 * in use, so retained telemetry shows up undisturbed by V8's heap sizing.
 */
const HEAP_PROBE = `
import { writeFileSync } from 'node:fs';
let n = 0;
process.on('SIGWINCH', () => {
  globalThis.gc(); globalThis.gc();
  const m = process.memoryUsage();
  writeFileSync(process.env.VIGIL_TEST_HEAP_FILE, JSON.stringify({ n: ++n, heapUsed: m.heapUsed, rss: m.rss }));
});
`;
/** Where the heap probe module and its readings live; made in `before`, removed in `after`. */
let probeDir = '';
let probeModule = '';

/** Heap in use after a full GC in the app, in MB. */
async function heapMb(a: ExampleApp, file: string): Promise<number> {
  const before = (() => {
    try {
      return (JSON.parse(readFileSync(file, 'utf8')) as { n: number }).n;
    } catch {
      return 0;
    }
  })();
  a.proc.kill('SIGWINCH');
  const m = await waitFor(
    () => {
      try {
        const v = JSON.parse(readFileSync(file, 'utf8')) as { n: number; heapUsed: number };
        return v.n > before ? v : undefined;
      } catch {
        return undefined;
      }
    },
    { timeoutMs: 10_000, intervalMs: 20, what: 'the heap probe in the app to answer' },
  );
  return m.heapUsed / 1024 / 1024;
}

function rssMb(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (!kb) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kb) / 1024;
}

interface CaseResult {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  ok2xx: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  heapBeforeMb: number;
  heapAfterMb: number;
  recoveryMs?: { metrics: number; traces: number };
  /** OpenTelemetry error lines the app logged, and their size. */
  otelLogLines: number;
  otelLogBytes?: number;
}

const results: CaseResult[] = [];

function printTable(): void {
  const rows = results.map((r) => ({
    case: r.name,
    'req/s': Math.round(r.rps),
    'p50 ms': r.p50,
    'p99 ms': r.p99,
    'errors+timeouts+non2xx': r.errors + r.timeouts + r.non2xx,
    'RSS MB before→after': `${r.rssBeforeMb.toFixed(1)}→${r.rssAfterMb.toFixed(1)} (+${(r.rssAfterMb - r.rssBeforeMb).toFixed(1)})`,
    'heap after GC MB before→after': `${r.heapBeforeMb.toFixed(1)}→${r.heapAfterMb.toFixed(1)} (+${(r.heapAfterMb - r.heapBeforeMb).toFixed(1)})`,
    'recovery ms (metrics/traces)': r.recoveryMs ? `${r.recoveryMs.metrics}/${r.recoveryMs.traces}` : '—',
    'otel log lines': r.otelLogLines,
  }));
  console.table(rows);
}

describe('telemetry faults: the app keeps serving when its OTLP endpoint is down, slow or failing', function () {
  this.timeout(180_000);

  let app: ExampleApp | undefined;
  let endpoint: OtlpEndpoint | undefined;

  afterEach(async () => {
    await app?.stop();
    await endpoint?.close();
    app = undefined;
    endpoint = undefined;
  });
  before(() => {
    probeDir = mkdtempSync(path.join(os.tmpdir(), 'vigil-faults-telemetry-'));
    probeModule = path.join(probeDir, 'heap-probe.mjs');
    writeFileSync(probeModule, HEAP_PROBE);
  });
  after(() => {
    printTable();
    if (probeDir) rmSync(probeDir, { recursive: true, force: true });
  });

  async function start(port: number, heapFile: string): Promise<ExampleApp> {
    const a = await startExample({
      NODE_OPTIONS: `--expose-gc --import @vigil/sdk/register --import ${pathToFileURL(probeModule).href}`,
      VIGIL_TEST_HEAP_FILE: heapFile,
      VIGIL_MANIFEST: path.join(REPO_ROOT, 'examples/marketedge-api/vigil.yaml'),
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_METRIC_EXPORT_INTERVAL: String(EXPORT_INTERVAL_MS),
      OTEL_EXPORTER_OTLP_TIMEOUT: String(EXPORTER_TIMEOUT_MS),
      OTEL_BSP_SCHEDULE_DELAY: String(EXPORT_INTERVAL_MS),
      VIGIL_LOG_LEVEL: 'warn',
    });
    await a.serving(20_000);
    return a;
  }

  /** Loads the app and measures it; `recover` (after the load) makes the endpoint healthy again. */
  async function run(name: string, mode: Mode | 'down'): Promise<CaseResult> {
    const port = await freePort();
    endpoint = new OtlpEndpoint(port);
    if (mode !== 'down') {
      endpoint.mode = mode;
      await endpoint.listen();
    }
    const heapFile = path.join(probeDir, `${name}.json`);
    app = await start(port, heapFile);
    // Warm up (JIT, connection pools), and let the first exports hit the endpoint.
    await autocannon({ url: `${app.url}/api/v1/features`, connections: 10, amount: WARMUP_REQUESTS, timeout: 10 });
    await new Promise((r) => setTimeout(r, EXPORT_INTERVAL_MS));
    const pid = app.proc.pid!;
    const rssBeforeMb = rssMb(pid);
    const heapBeforeMb = await heapMb(app, heapFile);
    const load = await autocannon({ url: `${app.url}/api/v1/features`, connections: 10, amount: REQUESTS, timeout: 10 });
    const rssAfterMb = rssMb(pid);
    const heapAfterMb = await heapMb(app, heapFile);
    const result: CaseResult = {
      name,
      rps: load.requests.average,
      p50: load.latency.p50,
      p99: load.latency.p99,
      errors: load.errors,
      timeouts: load.timeouts,
      non2xx: load.non2xx,
      ok2xx: load['2xx'],
      rssBeforeMb,
      rssAfterMb,
      heapBeforeMb,
      heapAfterMb,
      otelLogLines: 0,
    };
    results.push(result);
    console.log(
      `      ${name}: ${Math.round(result.rps)} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms, ${result.ok2xx} 2xx, errors ${result.errors}, timeouts ${result.timeouts}, non-2xx ${result.non2xx}, RSS ${rssBeforeMb.toFixed(1)} → ${rssAfterMb.toFixed(1)} MB, heap after GC ${heapBeforeMb.toFixed(1)} → ${heapAfterMb.toFixed(1)} MB`,
    );
    return result;
  }

  /** Switches the endpoint to healthy on the same port and measures until both signals are accepted again. */
  async function recover(result: CaseResult, wasDown: boolean): Promise<void> {
    const ep = endpoint!;
    const switched = Date.now();
    ep.mode = 'healthy';
    if (wasDown) await ep.listen();
    // A trickle of traffic, so there are new spans to export (the queue may have been emptied by the failures).
    const a = app!;
    let trickling = true;
    const trickle = (async () => {
      while (trickling) {
        await fetch(`${a.url}/api/v1/features`).then((r) => r.arrayBuffer(), () => undefined);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const marker = 'marketedge-api';
    try {
      const metrics = await waitFor(() => ep.accepted('metrics', switched, marker), { timeoutMs: 15_000, intervalMs: 20, what: 'an accepted metrics export after recovery' });
      const traces = await waitFor(() => ep.accepted('traces', switched, 'GET /api/v1/features'), { timeoutMs: 15_000, intervalMs: 20, what: 'an accepted export of request spans after recovery' });
      result.recoveryMs = { metrics: metrics.at - switched, traces: traces.at - switched };
      // What was exported after recovery is the example's data: Vigil's metrics.
      expect(metrics.body.includes('vigil.health.level'), 'vigil.health.level in the metrics export').to.equal(true);
    } finally {
      trickling = false;
      await trickle;
    }
    const otel = app!.output().split('\n').filter((l) => l.includes('"module":"opentelemetry"'));
    result.otelLogLines = otel.length;
    result.otelLogBytes = otel.reduce((n, l) => n + l.length, 0);
    for (const line of otel) console.log(`        log: ${String((JSON.parse(line) as { msg?: unknown }).msg).split('\\n')[0]!.slice(0, 160)}`);
    console.log(`      ${result.name}: metrics again after ${result.recoveryMs!.metrics} ms, spans after ${result.recoveryMs!.traces} ms; ${result.otelLogLines} OpenTelemetry log line(s)`);
  }

  let baseline: CaseResult | undefined;

  function expectServedLikeBaseline(r: CaseResult): void {
    expect(r.errors, 'connection errors').to.equal(0);
    expect(r.timeouts, 'timeouts').to.equal(0);
    expect(r.non2xx, 'non-2xx answers').to.equal(0);
    expect(r.ok2xx, '2xx answers').to.be.at.least(REQUESTS);
    expect(baseline, 'the healthy baseline ran first').to.exist;
    // Generous: p99 on two shared cores swings 20–90 ms between identical healthy runs (measured).
    const bound = Math.max(3 * baseline!.p99, baseline!.p99 + 100);
    expect(r.p99, `p99 within max(3 × ${baseline!.p99}, ${baseline!.p99} + 100) ms of the healthy run`).to.be.at.most(bound);
    expect(r.rssAfterMb - r.rssBeforeMb, 'RSS growth over 10k requests, MB').to.be.below(RSS_GROWTH_BOUND_MB);
    expect(r.heapAfterMb - r.heapBeforeMb, 'heap growth (after GC) over 10k requests, MB').to.be.below(HEAP_GROWTH_BOUND_MB);
  }

  it('healthy endpoint (baseline): every request served, and its spans and metrics exported', async () => {
    const r = await run('healthy', 'healthy');
    expect(r.errors + r.timeouts + r.non2xx).to.equal(0);
    expect(r.ok2xx).to.be.at.least(REQUESTS);
    expect(r.rssAfterMb - r.rssBeforeMb).to.be.below(RSS_GROWTH_BOUND_MB);
    expect(r.heapAfterMb - r.heapBeforeMb).to.be.below(HEAP_GROWTH_BOUND_MB);
    baseline = r;
    const ep = endpoint!;
    // The load's own spans reached the endpoint: the baseline measures an app that really traces.
    await waitFor(() => ep.exports.some((e) => e.signal === 'traces' && e.body.includes('GET /api/v1/features')), { timeoutMs: 10_000, what: 'a span of GET /api/v1/features' });
    await waitFor(() => ep.accepted('metrics', 0, 'vigil.health.level'), { timeoutMs: 10_000, what: 'a metrics export with vigil.health.level' });
    r.otelLogLines = app!.output().split('\n').filter((l) => l.includes('"module":"opentelemetry"')).length;
    expect(r.otelLogLines, 'no OpenTelemetry errors against a healthy endpoint').to.equal(0);
  });

  it('endpoint down (connection refused): requests unaffected, memory bounded, exports resume once it listens', async () => {
    const r = await run('down', 'down');
    expectServedLikeBaseline(r);
    await recover(r, true);
    expect(r.recoveryMs!.metrics, 'metrics back within 2 intervals + exporter timeout').to.be.at.most(RECOVERY_BOUND_MS);
    expect(r.recoveryMs!.traces, 'spans back within 2 intervals + exporter timeout').to.be.at.most(RECOVERY_BOUND_MS);
    expect(r.otelLogLines, 'the failing exports were logged').to.be.greaterThan(0);
    expect(r.otelLogLines, 'but not once per export (at most once a minute per message)').to.be.at.most(10);
  });

  it('endpoint slow (answers after 30 s): requests unaffected, memory bounded, exports resume once it answers', async () => {
    const r = await run('slow', 'slow');
    expectServedLikeBaseline(r);
    const ep = endpoint!;
    expect(ep.exports.filter((e) => e.mode === 'slow').length, 'exports were attempted against the slow endpoint').to.be.greaterThan(0);
    await recover(r, false);
    expect(r.recoveryMs!.metrics).to.be.at.most(RECOVERY_BOUND_MS);
    expect(r.recoveryMs!.traces).to.be.at.most(RECOVERY_BOUND_MS);
    expect(r.otelLogLines).to.be.greaterThan(0);
    expect(r.otelLogLines).to.be.at.most(10);
  });

  it('endpoint answering 500: requests unaffected, memory bounded, exports resume once it answers 200', async () => {
    const r = await run('500', 'error');
    expectServedLikeBaseline(r);
    const ep = endpoint!;
    expect(ep.exports.filter((e) => e.mode === 'error' && e.signal === 'traces').length, 'span exports were refused with 500').to.be.greaterThan(0);
    expect(ep.exports.filter((e) => e.mode === 'error' && e.signal === 'metrics').length, 'metric exports were refused with 500').to.be.greaterThan(0);
    await recover(r, false);
    expect(r.recoveryMs!.metrics).to.be.at.most(RECOVERY_BOUND_MS);
    expect(r.recoveryMs!.traces).to.be.at.most(RECOVERY_BOUND_MS);
    expect(r.otelLogLines).to.be.greaterThan(0);
    // Every error page differed (a request number): the log still says it once, in one short line, without the page.
    expect(r.otelLogLines, 'at most once a minute per message, though every 500 page differed').to.be.at.most(10);
    const otel = app!.output().split('\n').filter((l) => l.includes('"module":"opentelemetry"'));
    expect(otel.some((l) => l.includes(ERROR_PAGE_MARKER)), 'the error page in the log').to.equal(false);
    expect(Math.max(...otel.map((l) => l.length)), 'longest OpenTelemetry log line').to.be.at.most(MAX_LOG_LINE);
    expect(otel.some((l) => l.includes('Internal Server Error')), 'the log says what the endpoint answered').to.equal(true);
  });
});
