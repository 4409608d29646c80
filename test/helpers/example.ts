/**
 * Runs the MarketEdge example API (built, from `examples/marketedge-api/dist`)
 * as a child process, the way a user would start it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort, REPO_ROOT } from './rig.js';
import { waitFor } from './wait.js';

export interface ExampleApp {
  proc: ChildProcess;
  port: number;
  url: string;
  /** `performance.now()` just before the process was spawned. */
  spawnedAt: number;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once `/health` answers. */
  serving(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => running.forEach((p) => p.kill('SIGKILL')));

/** A Node.js child process of a test, its stdout and stderr collected. */
export interface NodeChild {
  proc: ChildProcess;
  /** `performance.now()` just before the process was spawned. */
  spawnedAt: number;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `node script ...args` with PATH and HOME of this environment and `env` (nothing else of it),
 * stdout and stderr collected in one text; SIGKILLed if still running when the tests exit.
 */
export function spawnNode(script: string, args: string[], env: NodeJS.ProcessEnv): NodeChild {
  const spawnedAt = performance.now();
  const proc = spawn(process.execPath, [script, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => {
      running.delete(proc);
      resolve({ code, signal });
    }),
  );
  return { proc, spawnedAt, output: () => out, exited };
}

export const EXAMPLE_SERVER = path.join(REPO_ROOT, 'examples/marketedge-api/dist/server.js');

/** The example API on a free port of 127.0.0.1, with `env` on top of its defaults. */
export async function startExample(env: NodeJS.ProcessEnv): Promise<ExampleApp> {
  const port = await freePort();
  const { proc, spawnedAt, output, exited } = spawnNode(EXAMPLE_SERVER, [], { PORT: String(port), HOST: '127.0.0.1', VIGIL_LOG_LEVEL: 'info', ...env });
  const url = `http://127.0.0.1:${port}`;
  return {
    proc,
    port,
    url,
    spawnedAt,
    output,
    exited,
    serving: (timeoutMs = 15_000) =>
      waitFor(async () => (await fetch(`${url}/health`).then((r) => r.ok).catch(() => false)) || undefined, {
        timeoutMs,
        intervalMs: 100,
        what: `the example API to answer /health on ${url}; its output:\n${output()}`,
      }).then(() => undefined),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

/** The environment that has the example export its metrics as OTLP/HTTP JSON to `metricsUrl` every second, and no traces. */
export function otlpJsonEvery1s(metricsUrl: string): NodeJS.ProcessEnv {
  return {
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: metricsUrl,
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json',
    OTEL_METRIC_EXPORT_INTERVAL: '1000',
    OTEL_TRACES_EXPORTER: 'none',
  };
}
