/**
 * Probe targets that misbehave. The runtime monitor probes, side by side, a
 * healthy endpoint and one that misbehaves at the socket level — a raw TCP
 * server on 127.0.0.1 (`monitor.baseUrl`) that answers by path:
 *   /ok           a proper 200 with a JSON body
 *   /hang         accepts, reads the request, never answers (also /hang/1 … /hang/4)
 *   /reset        resets the connection (RST) as soon as the request arrives
 *   /reset-mid    sends the headers and part of the body, then resets
 *   /garbage      answers something that is not HTTP
 *   /bad-json     200 `application/json` whose body is not JSON (the probe asserts on the body)
 *   /endless      200 chunked, a small chunk every 5 ms, never ending
 *   /flood        200 chunked, 64 KB chunks as fast as the socket takes them, never ending
 * Every bad probe must fail within its timeout (+ 300 ms slack) with an output
 * that says what happened, the healthy probe (every 100 ms) must keep running
 * while the bad one hangs, and nothing may throw or reject unhandled. One case
 * hangs as many targets as `monitor.concurrency` (4): the healthy probe then
 * waits for a free slot, at most one probe timeout.
 *
 * Already covered elsewhere: an Express handler that never answers (monitor.test.ts,
 * "a handler that hangs times out and fails the check"); /hang extends it to a
 * raw socket and adds the timing and the healthy neighbour's interval.
 */
import { createServer, type Server } from 'node:http';
import net from 'node:net';
import { metrics, trace, context, propagation } from '@opentelemetry/api';
import { expect } from 'chai';
import express from 'express';
import { vigil, type VigilGuard } from '../src/guard.js';
import type { ManifestInput } from '../src/manifest/schema.js';
import type { CheckOutcome } from '../src/monitor/types.js';
import { captureLogs } from './helpers/logs.js';
import { close, listen } from './helpers/servers.js';
import { waitForValue } from './helpers/wait.js';

const HEALTHY_INTERVAL_MS = 100;
/** Time a failing probe may take beyond its timeout (timers, the event loop, CI). */
const SLACK_MS = 300;

interface Arrival {
  path: string;
  at: number;
}

/** The misbehaving target: a raw TCP server, so it can break HTTP in ways no HTTP server would. */
class FaultTarget {
  readonly arrivals: Arrival[] = [];
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Bytes written to /flood connections. */
  flooded = 0;

  constructor() {
    this.server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined); // resets are the point here
      let head = '';
      const onData = (chunk: Buffer) => {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end === -1) return;
        socket.off('data', onData);
        const path = head.split(' ')[1] ?? '/';
        this.arrivals.push({ path, at: performance.now() });
        this.answer(path, socket);
      };
      socket.on('data', onData);
    });
  }

  async listen(): Promise<string> {
    const port = await listen(this.server);
    return `http://127.0.0.1:${port}`;
  }

  private every(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setInterval(fn, ms);
    this.timers.add(t);
    return t;
  }

  private answer(path: string, socket: net.Socket): void {
    const json = (status: string, body: string) =>
      socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    switch (path) {
      case '/ok':
        return void json('200 OK', '{"flags":["a"]}');
      case '/hang':
      case '/hang/1':
      case '/hang/2':
      case '/hang/3':
      case '/hang/4':
        return; // never answers; the socket stays open
      case '/reset':
        return void socket.resetAndDestroy();
      case '/reset-mid': {
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"flags":[');
        const t = setTimeout(() => socket.resetAndDestroy(), 20);
        this.timers.add(t);
        return;
      }
      case '/garbage':
        return void socket.end('SSH-2.0-OpenSSH_9.6\r\nProtocol mismatch.\r\n');
      case '/bad-json':
        return void json('200 OK', '{"flags": [tru');
      case '/endless': {
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n');
        const t = this.every(5, () => {
          if (!socket.writable) return clearInterval(t);
          socket.write('10\r\n{"flags":["a"]},\r\n');
        });
        return;
      }
      case '/flood': {
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n');
        const chunk = Buffer.from(`10000\r\n${'x'.repeat(0x10000)}\r\n`);
        const pump = () => {
          while (socket.writable) {
            this.flooded += chunk.length;
            if (!socket.write(chunk)) return void socket.once('drain', pump);
          }
        };
        pump();
        return;
      }
      default:
        return void json('404 Not Found', '{}');
    }
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

interface Case {
  /** Paths of the misbehaving endpoints probed (several: as many hang at once). */
  paths: string[];
  what: string;
  /** The output each failing probe must give. */
  output: RegExp;
  timeoutMs: number;
  /** Body assertion on the probe (for the JSON case). */
  body?: boolean;
  /** The bad probe hangs for its whole timeout: the healthy one must run meanwhile. */
  hangs?: boolean;
  /** Failing runs to observe per bad endpoint. */
  runs?: number;
}

const CASES: Case[] = [
  { paths: ['/hang'], what: 'accepts and never answers', output: /^no answer within 500ms$/, timeoutMs: 500, hangs: true },
  { paths: ['/reset'], what: 'resets the connection on the request', output: /^no answer \(ECONNRESET\)$/, timeoutMs: 500 },
  { paths: ['/reset-mid'], what: 'resets the connection mid-response', output: /^no answer \(ECONNRESET\)$/, timeoutMs: 500 },
  { paths: ['/garbage'], what: 'answers something that is not HTTP', output: /^no answer \(HPE_INVALID_CONSTANT\)$/, timeoutMs: 500 },
  { paths: ['/bad-json'], what: 'answers invalid JSON to a probe asserting on the body', output: /^body flags is missing$/, timeoutMs: 500, body: true },
  { paths: ['/endless'], what: 'sends an endless chunked body, slowly', output: /^no answer within 500ms$/, timeoutMs: 500, hangs: true },
  // Cut off at MAX_PROBE_BODY_BYTES, well before the timeout.
  { paths: ['/flood'], what: 'sends an endless chunked body as fast as it can', output: /^answer body over 1048576 bytes: cut off$/, timeoutMs: 500, runs: 2 },
  {
    paths: ['/hang/1', '/hang/2', '/hang/3', '/hang/4'],
    what: 'never answer, as many as monitor.concurrency (4)',
    output: /^no answer within 500ms$/,
    timeoutMs: 500,
    runs: 2,
  },
];

interface Row {
  at: number;
  outcome: CheckOutcome;
}

describe('runtime monitor against misbehaving probe targets', function () {
  this.timeout(20_000);
  let target: FaultTarget | undefined;
  let guard: VigilGuard | undefined;
  let server: Server | undefined;
  const unhandled: unknown[] = [];
  const onUnhandled = (err: unknown) => unhandled.push(err);

  before(() => {
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
  });
  after(() => {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
    trace.disable();
    metrics.disable();
    context.disable();
    propagation.disable();
  });
  afterEach(async () => {
    await guard?.shutdown();
    if (server?.listening) await close(server);
    await target?.close();
    guard = undefined;
    server = undefined;
    target = undefined;
  });

  /** Starts a guard probing `/ok` every 100 ms and `paths` on the fault target; `rows` receives every outcome by path. */
  async function watch(paths: string[], probe: (path: string) => NonNullable<ManifestInput['components'][string]['endpoints']>[number], rows: Map<string, Row[]>) {
    target = new FaultTarget();
    const baseUrl = await target.listen();
    const { logger, lines } = captureLogs();
    guard = await vigil({
      manifest: {
        service: 'faults',
        components: {
          healthy: { policy: 'degrade', endpoints: [{ method: 'GET', route: '/ok', probe: { expect: { status: [200] }, interval: `${HEALTHY_INTERVAL_MS}ms` } }] },
          faulty: { policy: 'degrade', endpoints: paths.map(probe) },
        },
        monitor: {
          baseUrl,
          jitter: 0,
          failureThreshold: 1,
          intervals: { endpoints: '1h', flows: '1h', drift: '1h', dependencies: '1h', process: '1h', errorRate: '1h', integration: '1h' },
        },
      },
      env: { OTEL_METRICS_EXPORTER: 'none', OTEL_TRACES_EXPORTER: 'none' },
      logger,
    });
    // The app itself has every route (startup validation passes); the probes go to the target.
    const app = express();
    guard.mountHealth(app);
    for (const r of ['/ok', ...paths]) app.get(r, (_req, res) => void res.end());
    server = createServer(app);
    await listen(server);
    await guard.validate(app, { server });
    guard.monitor!.onOutcome((check, outcome) => {
      const path = check.id.replace(/^endpoint:GET /, '');
      if (!rows.has(path)) rows.set(path, []);
      rows.get(path)!.push({ at: performance.now(), outcome });
    });
    return { lines, target };
  }

  for (const c of CASES) {
    const title = c.paths.length > 1 ? `${c.paths.length} targets that ${c.what}` : `a target that ${c.what} (${c.paths[0]})`;
    it(`${title}: fails within its timeout; the healthy probe keeps running`, async () => {
      const rows = new Map<string, Row[]>();
      const { lines, target: t } = await watch(
        c.paths,
        (route) => ({
          method: 'GET',
          route,
          probe: { expect: { status: [200], ...(c.body ? { body: [{ path: 'flags', exists: true }] } : {}) }, timeout: `${c.timeoutMs}ms`, interval: '50ms' },
        }),
        rows,
      );
      const wanted = c.runs ?? 3;
      await waitForValue(
        () => (c.paths.every((p) => (rows.get(p)?.length ?? 0) >= wanted) && (rows.get('/ok')?.length ?? 0) >= 5 ? true : undefined),
        10_000,
        `${wanted} runs of every bad probe and 5 of the healthy one`,
      );
      const healthy = rows.get('/ok')!;
      const gaps = healthy.slice(1).map((h, i) => h.at - healthy[i]!.at);
      const maxGap = Math.max(...gaps);
      for (const path of c.paths) {
        const arrivals = t.arrivals.filter((a) => a.path === path);
        // Each failing run, from its request reaching the target to its outcome.
        const runs = rows.get(path)!.slice(0, wanted).map((b) => {
          const arrival = arrivals.filter((a) => a.at <= b.at).at(-1)!;
          return { ms: b.at - arrival.at, from: arrival.at, to: b.at, outcome: b.outcome };
        });
        const during = runs.map((r) => healthy.filter((h) => h.at > r.from && h.at < r.to).length);
        console.log(
          `      ${path}: ${JSON.stringify([...new Set(runs.map((r) => r.outcome.output))])} after ${runs.map((r) => Math.round(r.ms)).join('/')} ms; healthy runs meanwhile ${during.join('/')}, longest healthy gap ${Math.round(maxGap)} ms${path === '/flood' ? `; ${(t.flooded / 1048576).toFixed(0)} MB sent by the target` : ''}`,
        );
        for (const r of runs) {
          expect(r.outcome.status).to.equal('fail');
          expect(r.outcome.output).to.match(c.output);
          expect(r.ms, `a ${path} run took`).to.be.at.most(c.timeoutMs + SLACK_MS);
        }
        if (c.hangs) expect(Math.min(...during), `healthy runs during each hanging ${path} run`).to.be.at.least(2);
      }
      expect(healthy.every((h) => h.outcome.status === 'pass'), 'every healthy run passed').to.equal(true);
      // The healthy probe never waits longer than one bad probe's timeout (concurrency slots free up at the timeout).
      expect(maxGap, 'longest gap between two healthy runs').to.be.at.most(HEALTHY_INTERVAL_MS + c.timeoutMs + SLACK_MS);
      if (c.paths.length === 1) expect(maxGap, 'one bad probe leaves the healthy one its interval').to.be.at.most(HEALTHY_INTERVAL_MS + (c.paths[0] === '/flood' ? c.timeoutMs : 0) + SLACK_MS);
      expect(unhandled, 'unhandled rejections / exceptions').to.deep.equal([]);
      expect(lines.filter((l) => l.includes('errored; backing off')), 'a check that threw').to.deep.equal([]);
    });
  }

  // send() used to buffer the whole response body until the probe's timeout: ~750 MB–1.3 GB for one
  // probe of an endless body with the default 5 s timeout. It now stops reading at MAX_PROBE_BODY_BYTES.
  it('a target flooding an endless body costs the app bounded memory (default 5 s timeout)', async () => {
    const rows = new Map<string, Row[]>();
    const before = process.memoryUsage();
    let peak = 0;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.heapUsed + m.arrayBuffers - before.heapUsed - before.arrayBuffers);
    }, 10);
    try {
      await watch(['/flood'], (route) => ({ method: 'GET', route, probe: { expect: { status: [200] }, interval: '1h' } }), rows);
      await waitForValue(() => rows.get('/flood')?.[0], 15_000, 'a run of the /flood probe');
    } finally {
      clearInterval(sampler);
    }
    expect(rows.get('/flood')![0]!.outcome.status).to.equal('fail');
    expect(rows.get('/flood')![0]!.outcome.output).to.equal('answer body over 1048576 bytes: cut off');
    expect(peak / 1048576, 'peak heap + buffers growth while probing, MB').to.be.below(64);
  });
});
