/**
 * The end-to-end test rig: real Prometheus and Alertmanager processes (unpacked from Debian's
 * packages into .stack/root by scripts/fetch-stack.sh) and the real OpenTelemetry Collector (built
 * from upstream modules into .stack/otelcol by scripts/build-collector.sh), each on free 127.0.0.1
 * ports with its own temp dir, plus a webhook receiver that records what Alertmanager delivers.
 *
 * Every process started here is SIGKILLed if the test process exits without stopping it, and
 * (where util-linux `setpriv` works) also if the test process itself is killed.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { waitFor } from './wait.js';

/** Absolute path of the repository root. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Where scripts/fetch-stack.sh unpacks the Debian packages. */
export const STACK_ROOT = path.join(REPO_ROOT, '.stack', 'root');
/** Debian's Alertmanager reads these templates from fixed paths and exits without them (fetch-stack.sh installs them). */
export const ALERTMANAGER_TEMPLATES = [
  '/usr/share/prometheus/alertmanager/default.tmpl',
  '/usr/share/prometheus/alertmanager/email.tmpl',
];

/** The binaries of the stack that tests may run. */
export type StackBinary = 'prometheus' | 'promtool' | 'alertmanager' | 'amtool' | 'docker-compose' | 'otelcol';

/** Where each binary is, relative to .stack/. */
const BIN_FILES: Record<StackBinary, string> = {
  prometheus: 'root/usr/bin/prometheus',
  promtool: 'root/usr/bin/promtool',
  alertmanager: 'root/usr/bin/prometheus-alertmanager',
  amtool: 'root/usr/bin/amtool',
  // Debian's Compose v2 is a Docker CLI plugin; run directly it is the standalone `docker-compose`
  // (`config` validates and renders a compose file with no Docker engine).
  'docker-compose': 'root/usr/libexec/docker/cli-plugins/docker-compose',
  // Vigil's OpenTelemetry Collector, built from collector/builder-config.yaml.
  otelcol: 'otelcol/vigil-otelcol',
};

const FETCH_HINT = 'run `npm run stack:fetch` (bash scripts/fetch-stack.sh) first';
const BUILD_COLLECTOR_HINT = 'run `npm run stack:collector` (bash scripts/build-collector.sh) first';

/** Absolute path of a stack binary inside .stack/; throws if it has not been fetched or built. */
export function stackBin(name: StackBinary): string {
  const file = BIN_FILES[name];
  if (!file) throw new Error(`unknown stack binary "${String(name)}"`);
  const bin = path.join(REPO_ROOT, '.stack', file);
  try {
    accessSync(bin, fsConstants.X_OK);
  } catch {
    throw new Error(`${name} is not available at ${bin}: ${name === 'otelcol' ? BUILD_COLLECTOR_HINT : FETCH_HINT}`);
  }
  return bin;
}

/** A free TCP port on 127.0.0.1 (listen on port 0, close, return the port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Runs a stack tool (e.g. `promtool check config x.yml`) to completion; never rejects on exit code. */
export function runTool(
  name: StackBinary,
  args: string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const bin = stackBin(name);
  return new Promise((resolve, reject) => {
    execFile(
      bin,
      args,
      { cwd: opts.cwd ?? REPO_ROOT, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) resolve({ code: 0, stdout, stderr });
        else if (err.killed) reject(new Error(`${name} ${args.join(' ')} timed out or was killed\n${stdout}${stderr}`));
        else if (typeof err.code === 'number') resolve({ code: err.code, stdout, stderr });
        else if (err.signal) resolve({ code: null, stdout, stderr: `${stderr}(killed by ${err.signal})` });
        else reject(err); // could not be spawned
      },
    );
  });
}

// ---------------------------------------------------------------------------------------------
// Process management

const liveChildren = new Set<ChildProcess>();
const liveTempDirs = new Set<string>();
let hooksInstalled = false;

function killLeftovers(): void {
  for (const child of liveChildren) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  liveChildren.clear();
  for (const dir of liveTempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      /* a killed child may still hold it: best effort */
    }
  }
  liveTempDirs.clear();
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killLeftovers);
  // 'exit' does not run when a signal kills the process: clean up, then die of the same
  // signal unless someone else (e.g. mocha's SIGINT handler) has taken charge of it.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killLeftovers();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

let pdeathsig: boolean | undefined;
/** Whether `setpriv --pdeathsig KILL` works here: children then die even if we are SIGKILLed. */
function canUsePdeathsig(): boolean {
  if (pdeathsig === undefined) {
    const probe = spawnSync('setpriv', ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore' });
    pdeathsig = probe.status === 0;
  }
  return pdeathsig;
}

export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `vigil-${prefix}-`));
  liveTempDirs.add(dir);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  liveTempDirs.delete(dir);
}

/** Keeps the last `max` lines written by a process on stdout and stderr. */
class OutputRing {
  private readonly lines: string[] = [];
  private readonly partial = new Map<string, string>();
  constructor(private readonly max: number) {}

  push(stream: string, chunk: string): void {
    const text = (this.partial.get(stream) ?? '') + chunk;
    const parts = text.split('\n');
    this.partial.set(stream, parts.pop() ?? '');
    for (const line of parts) this.add(line);
  }

  flush(): void {
    for (const [stream, rest] of this.partial) if (rest) this.add(rest), this.partial.set(stream, '');
  }

  tail(n = this.max): string {
    return this.lines.slice(-n).join('\n');
  }

  private add(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
  }
}

interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

function describeExit(e: ExitInfo): string {
  if (e.error) return `could not be spawned: ${e.error.message}`;
  return e.signal ? `killed by ${e.signal}` : `exit code ${e.code}`;
}

export interface RunningProcess {
  readonly name: string;
  readonly pid: number | undefined;
  /** The last lines the process printed (stdout and stderr interleaved). */
  output(lines?: number): string;
  /** SIGTERM, wait up to `timeoutMs` for the exit, then SIGKILL. */
  stop(timeoutMs?: number): Promise<void>;
  /** SIGKILL and wait for the exit: what it held in memory is lost. */
  kill(): Promise<void>;
}

export interface StartProcessOptions {
  name: string;
  bin: string;
  args: string[];
  cwd?: string;
  /** The environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Resolves true once the process serves; polled every 100 ms. */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
  /** Run as this user and group (when we are root), e.g. for PostgreSQL, which refuses to run as root. */
  runAs?: { uid: number; gid: number };
  /** The signal `stop()` sends first (default SIGTERM). */
  stopSignal?: NodeJS.Signals;
}

/**
 * Spawns a binary, keeps its last output lines, and waits until `ready()` holds. If the process
 * exits first or is not ready in time it is killed and the error quotes its last output.
 */
export async function startProcess(opts: StartProcessOptions): Promise<RunningProcess> {
  installExitHooks();
  const { name, bin, args } = opts;
  const asUser = opts.runAs && process.getuid?.() === 0 ? ['--reuid', String(opts.runAs.uid), '--regid', String(opts.runAs.gid), '--clear-groups'] : [];
  const [command, argv] = canUsePdeathsig() || asUser.length
    ? ['setpriv', [...(canUsePdeathsig() ? ['--pdeathsig', 'KILL'] : []), ...asUser, '--', bin, ...args]]
    : [bin, args];
  const child = spawn(command, argv, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  liveChildren.add(child);
  const ring = new OutputRing(200);
  child.stdout!.setEncoding('utf8').on('data', (c: string) => ring.push('out', c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => ring.push('err', c));

  let exitInfo: ExitInfo | undefined;
  const exited = new Promise<ExitInfo>((resolve) => {
    const done = (info: ExitInfo) => {
      if (exitInfo) return;
      exitInfo = info;
      ring.flush();
      liveChildren.delete(child);
      resolve(info);
    };
    // 'close' comes after the output pipes are drained, so the ring buffer is complete.
    child.once('close', (code, signal) => done({ code, signal }));
    child.once('error', (error) => {
      if (child.pid === undefined) done({ code: null, signal: null, error });
    });
  });

  const handle: RunningProcess = {
    name,
    get pid() {
      return child.pid;
    },
    output: (lines?: number) => ring.tail(lines),
    async stop(timeoutMs = 10_000) {
      if (!exitInfo) {
        child.kill(opts.stopSignal ?? 'SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(timer);
      }
      await exited;
    },
    async kill() {
      if (!exitInfo) child.kill('SIGKILL');
      await exited;
    },
  };

  const started = Date.now();
  const timeoutMs = opts.readyTimeoutMs ?? 30_000;
  let failure: string | undefined;
  for (;;) {
    if (exitInfo) {
      failure = `it exited during startup (${describeExit(exitInfo)})`;
      break;
    }
    if (await opts.ready().catch(() => false)) return handle;
    if (exitInfo) continue;
    if (Date.now() - started > timeoutMs) {
      failure = `it was not ready after ${timeoutMs} ms`;
      break;
    }
    await sleep(100);
  }
  await handle.stop(2_000);
  throw new Error(
    `${name} failed to start: ${failure}\n` +
      `  command: ${bin} ${args.join(' ')}\n` +
      `--- last output of ${name} ---\n${ring.tail(40) || '(no output)'}\n--- end of ${name} output ---`,
  );
}

/** Retries a start when the port picked by freePort() was taken by someone else meanwhile. */
export async function withPortRetry<T>(start: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await start();
    } catch (err) {
      const clash = err instanceof Error && /address already in use/i.test(err.message);
      if (!clash || i >= attempts) throw err;
    }
  }
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await res.arrayBuffer();
  return res.ok;
}

/** GET a JSON document: its HTTP status and parsed body; throws if the body is not JSON. */
async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    throw new Error(`GET ${url}: HTTP ${res.status}, not JSON: ${text.slice(0, 500)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Prometheus

/** Options of {@link startPrometheus}. */
export interface PrometheusOptions {
  /** Rule files (paths resolved against the cwd) loaded by Prometheus. */
  ruleFiles?: string[];
  /** Alertmanager base URL, e.g. `alertmanager.url`. */
  alertmanagerUrl?: string;
  /** Rule evaluation interval (default `1s`); the scrape interval is 1s too. */
  evaluationInterval?: string;
  /** Entries of `scrape_configs`, as objects (written as-is). */
  scrapeConfigs?: object[];
  /** Listen on this 127.0.0.1 port (e.g. to come back where a stopped one was) instead of a free one. */
  port?: number;
  /** Use this TSDB directory (e.g. one filled with `promtool tsdb create-blocks-from`) instead of an empty one. */
  dataDir?: string;
}

/** One sample of an instant query result. */
export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** A running Prometheus started by {@link startPrometheus}. */
export interface Prometheus {
  /** Base URL, `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** The remote-write receiver, `${url}/api/v1/write`. */
  readonly remoteWriteUrl: string;
  /** The generated prometheus.yml. */
  readonly configFile: string;
  /** Instant query via /api/v1/query; throws unless the status is success and the result a vector. */
  query(promql: string): Promise<PromSample[]>;
  /** The last lines Prometheus logged. */
  logs(lines?: number): string;
  /** SIGKILL, keeping its data: an outage until {@link Prometheus.restart}. */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same data (stops it first if it runs). */
  restart(): Promise<void>;
  /** SIGTERM, wait for the exit, remove the temp dir. */
  stop(): Promise<void>;
}

/** The prometheus.yml that {@link startPrometheus} writes (JSON, which is valid YAML). */
export function prometheusConfig(opts: PrometheusOptions = {}): string {
  const config: Record<string, unknown> = {
    global: { scrape_interval: '1s', evaluation_interval: opts.evaluationInterval ?? '1s' },
    // As the committed prometheus/prometheus.yml: accept pushed samples that arrive out of order,
    // so one late sample does not make Prometheus refuse a whole remote-write request.
    storage: { tsdb: { out_of_order_time_window: '10m' } },
  };
  if (opts.ruleFiles?.length) config.rule_files = opts.ruleFiles.map((f) => path.resolve(f));
  if (opts.alertmanagerUrl) {
    const am = new URL(opts.alertmanagerUrl);
    const target: Record<string, unknown> = {
      scheme: am.protocol.replace(/:$/, ''),
      api_version: 'v2',
      static_configs: [{ targets: [am.host] }],
    };
    if (am.pathname && am.pathname !== '/') target.path_prefix = am.pathname;
    config.alerting = { alertmanagers: [target] };
  }
  config.scrape_configs = opts.scrapeConfigs ?? [];
  return JSON.stringify(config, null, 2) + '\n';
}

/** Starts Prometheus on a free 127.0.0.1 port (or `opts.port`) with remote-write receiver and lifecycle API on. */
export async function startPrometheus(opts: PrometheusOptions = {}): Promise<Prometheus> {
  const bin = stackBin('prometheus');
  const dir = await makeTempDir('prometheus');
  try {
    const configFile = path.join(dir, 'prometheus.yml');
    await writeFile(configFile, prometheusConfig(opts));
    const launch = (port: number) =>
      startProcess({
        name: 'prometheus',
        bin,
        cwd: dir,
        args: [
          `--config.file=${configFile}`,
          `--storage.tsdb.path=${opts.dataDir ?? path.join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--web.enable-remote-write-receiver',
          '--web.enable-lifecycle',
        ],
        // With an Alertmanager: also wait until Prometheus has discovered it. Alerts that fire before
        // that are dropped (prometheus_notifications_dropped_total) and only resent after
        // --rules.alert.resend-delay (1 min), which would make a test wait a minute for its page.
        ready: async () =>
          (await httpOk(`http://127.0.0.1:${port}/-/ready`)) &&
          (!opts.alertmanagerUrl || (await getJson(`http://127.0.0.1:${port}/api/v1/alertmanagers`)).body?.data?.activeAlertmanagers?.length > 0),
      });
    return await withPortRetry(async () => {
      const port = opts.port ?? (await freePort());
      const url = `http://127.0.0.1:${port}`;
      let proc = await launch(port);
      return {
        url,
        remoteWriteUrl: `${url}/api/v1/write`,
        configFile,
        async query(promql: string) {
          const { body } = await getJson(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
          if (body?.status !== 'success') {
            throw new Error(`PromQL ${promql}: ${body.errorType ?? 'error'}: ${body.error ?? JSON.stringify(body)}`);
          }
          if (body.data?.resultType !== 'vector') {
            throw new Error(`PromQL ${promql}: expected a vector, got ${body.data?.resultType}`);
          }
          return body.data.result as PromSample[];
        },
        logs: (lines?: number) => proc.output(lines),
        kill: () => proc.kill(),
        async restart() {
          await proc.stop();
          proc = await launch(port);
        },
        async stop() {
          await proc.stop();
          await removeTempDir(dir);
        },
      };
    });
  } catch (err) {
    await removeTempDir(dir);
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// The OpenTelemetry Collector: Vigil's distribution (scripts/build-collector.sh) running the
// repository's collector-config.yaml, its addresses set through the environment variables the
// file reads.

/** The repository's Collector config, which {@link startCollector} runs as it is. */
export const COLLECTOR_CONFIG = path.join(REPO_ROOT, 'collector-config.yaml');

/** `${env:VAR:-default}` and `${env:VAR}` in the Collector's config syntax. */
const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * collector-config.yaml as the Collector reads it in the compose stack, where none of its address
 * variables is set: every `${env:VAR:-default}` is its default (`${env:VAR}` without one stays as written).
 */
export function collectorConfigDefaults(file = COLLECTOR_CONFIG): any {
  const text = readFileSync(file, 'utf8').replace(ENV_REF, (ref, _name, def: string | undefined) => def ?? ref);
  return parseYaml(text);
}

/** The names of the variables collector-config.yaml reads, with their defaults (undefined: none). */
export function collectorConfigVariables(file = COLLECTOR_CONFIG): Map<string, string | undefined> {
  const vars = new Map<string, string | undefined>();
  for (const m of readFileSync(file, 'utf8').matchAll(ENV_REF)) vars.set(m[1]!, m[2]);
  return vars;
}

/** The 127.0.0.1 ports a Collector listens on. */
export interface CollectorPorts {
  otlpHttp: number;
  otlpGrpc: number;
  health: number;
  /** Its own metrics (Prometheus text format, GET /metrics). */
  telemetry: number;
}

/** Free ports for a Collector: pick them first to point an app at a Collector that is not up yet. */
export async function collectorPorts(): Promise<CollectorPorts> {
  return { otlpHttp: await freePort(), otlpGrpc: await freePort(), health: await freePort(), telemetry: await freePort() };
}

/** Options of {@link startCollector}. */
export interface CollectorOptions {
  /** Prometheus's remote-write receiver (`prometheus.remoteWriteUrl`). */
  remoteWriteUrl: string;
  /**
   * The evaluator's OTLP receiver (`…/v1/metrics`). Without one, a port where nothing listens:
   * that exporter retries and drops, the Prometheus path is unaffected.
   */
  evaluatorUrl?: string;
  /** Listen on these ports (e.g. where an app already exports, or where a stopped Collector was). */
  ports?: CollectorPorts;
  /** The config file (default: the repository's collector-config.yaml). */
  configFile?: string;
  /** More environment for the Collector, e.g. VIGIL_INGEST_TOKEN. */
  env?: Record<string, string>;
}

/** A running Collector started by {@link startCollector}. */
export interface Collector {
  readonly ports: CollectorPorts;
  /** OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT), `http://127.0.0.1:PORT`. */
  readonly otlpUrl: string;
  /** OTLP/HTTP metrics endpoint, `${otlpUrl}/v1/metrics` (protobuf or JSON). */
  readonly otlpMetricsUrl: string;
  /** The healthcheckv2 status endpoint. */
  readonly healthUrl: string;
  /** One value of the Collector's own metrics (summed over its label sets matching `labels`). */
  selfMetric(name: string, labels?: Record<string, string>): Promise<number>;
  /** The last lines the Collector logged. */
  logs(lines?: number): string;
  /** SIGTERM (it drains what it can for up to 10 s), then SIGKILL. */
  stop(): Promise<void>;
  /** SIGKILL: gone at once with whatever it held. */
  kill(): Promise<void>;
}

/** Absolute path of the Collector built by scripts/build-collector.sh. */
export const collectorBin = (): string => stackBin('otelcol');

/** Starts the Collector with collector-config.yaml on 127.0.0.1 ports; resolves once /status is 200. */
export async function startCollector(opts: CollectorOptions): Promise<Collector> {
  const bin = collectorBin();
  const dir = await makeTempDir('collector');
  try {
    return await withPortRetry(async () => {
      const ports = opts.ports ?? (await collectorPorts());
      const evaluatorUrl = opts.evaluatorUrl ?? `http://127.0.0.1:${await freePort()}/v1/metrics`;
      const healthUrl = `http://127.0.0.1:${ports.health}/status`;
      const proc = await startProcess({
        name: 'collector',
        bin,
        cwd: dir,
        args: ['--config', opts.configFile ?? COLLECTOR_CONFIG],
        env: {
          ...process.env,
          VIGIL_COLLECTOR_OTLP_HTTP_ENDPOINT: `127.0.0.1:${ports.otlpHttp}`,
          VIGIL_COLLECTOR_OTLP_GRPC_ENDPOINT: `127.0.0.1:${ports.otlpGrpc}`,
          VIGIL_COLLECTOR_HEALTH_ENDPOINT: `127.0.0.1:${ports.health}`,
          VIGIL_COLLECTOR_TELEMETRY_HOST: '127.0.0.1',
          VIGIL_COLLECTOR_TELEMETRY_PORT: String(ports.telemetry),
          VIGIL_PROMETHEUS_REMOTE_WRITE_URL: opts.remoteWriteUrl,
          VIGIL_EVALUATOR_OTLP_URL: evaluatorUrl,
          // No Jaeger in the tests; the apps export no traces (OTEL_TRACES_EXPORTER=none).
          VIGIL_JAEGER_OTLP_ENDPOINT: `127.0.0.1:${await freePort()}`,
          ...opts.env,
        },
        ready: () => httpOk(healthUrl),
      });
      const otlpUrl = `http://127.0.0.1:${ports.otlpHttp}`;
      return {
        ports,
        otlpUrl,
        otlpMetricsUrl: `${otlpUrl}/v1/metrics`,
        healthUrl,
        async selfMetric(name: string, labels: Record<string, string> = {}) {
          const res = await fetch(`http://127.0.0.1:${ports.telemetry}/metrics`, { signal: AbortSignal.timeout(5_000) });
          return sumSamples(await res.text(), name, labels);
        },
        logs: (lines?: number) => proc.output(lines),
        async stop() {
          await proc.stop();
          await removeTempDir(dir);
        },
        async kill() {
          await proc.kill();
          await removeTempDir(dir);
        },
      };
    });
  } catch (err) {
    await removeTempDir(dir);
    throw err;
  }
}

/** The sum of the samples of `name` whose labels include `labels`, in Prometheus text format. */
export function sumSamples(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const set = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => set[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Alertmanager

/** A running Alertmanager started by {@link startAlertmanager}. */
export interface Alertmanager {
  /** Base URL, `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** The alertmanager.yml written from `config`. */
  readonly configFile: string;
  /** The alerts Alertmanager holds now (GET /api/v2/alerts). */
  alerts(): Promise<any[]>;
  /** The last lines Alertmanager logged. */
  logs(lines?: number): string;
  /** SIGTERM, wait for the exit, remove the temp dir. */
  stop(): Promise<void>;
}

/**
 * Starts Alertmanager (clustering off) on a free 127.0.0.1 port with the given YAML config, or on
 * `port` (e.g. one a client was pointed at before Alertmanager was up).
 */
export async function startAlertmanager(opts: { config: string; port?: number }): Promise<Alertmanager> {
  const bin = stackBin('alertmanager');
  const missing = ALERTMANAGER_TEMPLATES.filter((t) => !existsSync(t));
  if (missing.length) {
    throw new Error(`Debian's Alertmanager needs its templates at ${missing.join(', ')}, missing: ${FETCH_HINT}`);
  }
  const dir = await makeTempDir('alertmanager');
  try {
    const configFile = path.join(dir, 'alertmanager.yml');
    await writeFile(configFile, opts.config);
    await mkdir(path.join(dir, 'data'));
    return await withPortRetry(async () => {
      const port = opts.port ?? (await freePort());
      const url = `http://127.0.0.1:${port}`;
      const proc = await startProcess({
        name: 'alertmanager',
        bin,
        cwd: dir,
        args: [
          `--config.file=${configFile}`,
          `--storage.path=${path.join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          // Empty: no cluster listener (the default binds 0.0.0.0:9094).
          '--cluster.listen-address=',
        ],
        ready: () => httpOk(`${url}/-/ready`),
      });
      return {
        url,
        configFile,
        async alerts() {
          const { status, body } = await getJson(`${url}/api/v2/alerts`);
          if (status !== 200 || !Array.isArray(body)) {
            throw new Error(`GET ${url}/api/v2/alerts: HTTP ${status}: ${JSON.stringify(body)}`);
          }
          return body;
        },
        logs: (lines?: number) => proc.output(lines),
        async stop() {
          await proc.stop();
          await removeTempDir(dir);
        },
      };
    });
  } catch (err) {
    await removeTempDir(dir);
    throw err;
  }
}

/**
 * An Alertmanager config routing every alert to one webhook, fast (group_wait and group_interval 1 s,
 * one alert a group by the evaluator's labels), with resolved notifications.
 */
export const webhookAlertmanagerConfig = (webhookUrl: string): string => `
global: { resolve_timeout: 5m }
route:
  receiver: hook
  group_by: [alertname, service, component, escalation]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs: [{ url: "${webhookUrl}", send_resolved: true }]
`;

// ---------------------------------------------------------------------------------------------
// Webhook receiver

/** One request the webhook receiver got. */
export interface WebhookRequest {
  path: string;
  method: string;
  headers: http.IncomingHttpHeaders;
  /** The parsed JSON body (the raw text if it was not JSON). */
  body: any;
  /** When the whole request had arrived (Date.now()); set by the stand-ins of test/helpers/stack.ts. */
  at?: number;
}

/** A recording HTTP server started by {@link startWebhookReceiver}. */
export interface WebhookReceiver {
  /** Base URL, `http://127.0.0.1:PORT` (any path is accepted). */
  readonly url: string;
  /** Every request received so far, oldest first. */
  readonly received: WebhookRequest[];
  /** Resolves with the first received request (past or future) matching `predicate`. */
  waitFor(predicate: (req: WebhookRequest) => boolean, timeoutMs?: number): Promise<WebhookRequest>;
  /** Forgets what was received. */
  clear(): void;
  /** Closes the server and its connections. */
  stop(): Promise<void>;
}

/** Starts an HTTP server on 127.0.0.1 that answers 200 and records every request's JSON body. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: WebhookRequest[] = [];
  const waiters = new Set<(req: WebhookRequest) => void>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: any = text;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        /* keep the raw text */
      }
      const item: WebhookRequest = { path: req.url ?? '/', method: req.method ?? 'GET', headers: req.headers, body };
      received.push(item);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      for (const waiter of [...waiters]) waiter(item);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    received,
    waitFor(predicate, timeoutMs = 10_000) {
      const hit = received.find(predicate);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const waiter = (item: WebhookRequest) => {
          if (!predicate(item)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(item);
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          const summary = received.length
            ? received.map((r, i) => `  #${i + 1} ${r.method} ${r.path} ${JSON.stringify(r.body)?.slice(0, 1_000)}`).join('\n')
            : '  (nothing)';
          reject(
            new Error(
              `webhook receiver ${url}: no matching request within ${timeoutMs} ms; received ${received.length}:\n${summary}`,
            ),
          );
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    clear() {
      received.length = 0;
    },
    stop() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** Polls `prom.query(promql)` until it returns at least one sample; resolves with the samples. */
export function waitForSeries(prom: Prometheus, promql: string, timeoutMs = 20_000): Promise<PromSample[]> {
  return waitFor(async () => {
    const result = await prom.query(promql);
    return result.length > 0 ? result : undefined;
  }, { timeoutMs, intervalMs: 250, what: `PromQL \`${promql}\` to return a sample from ${prom.url}` });
}
