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

export const EXAMPLE_SERVER = path.join(REPO_ROOT, 'examples/marketedge-api/dist/server.js');

export async function startExample(env: NodeJS.ProcessEnv): Promise<ExampleApp> {
  const port = await freePort();
  const spawnedAt = performance.now();
  const proc = spawn(process.execPath, [EXAMPLE_SERVER], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: String(port), HOST: '127.0.0.1', VIGIL_LOG_LEVEL: 'info', ...env },
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
  const url = `http://127.0.0.1:${port}`;
  return {
    proc,
    port,
    url,
    spawnedAt,
    output: () => out,
    exited,
    serving: (timeoutMs = 15_000) =>
      waitFor(async () => (await fetch(`${url}/health`).then((r) => r.ok).catch(() => false)) || undefined, {
        timeoutMs,
        intervalMs: 100,
        what: `the example API to answer /health on ${url}; its output:\n${out}`,
      }).then(() => undefined),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}
