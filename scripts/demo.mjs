#!/usr/bin/env node
/**
 * `npm start`: the original incident, caught — with no server to install.
 *
 * Runs the MarketEdge example API with one router broken the way the incident
 * broke it (default: user_management fails to import), shows Vigil's startup
 * report, then what the running API answers: /health is still green, yet the
 * detailed health names the missing route. Ctrl-C stops it.
 *
 *   npm start                         the incident (user_management broken)
 *   npm start -- --break auth         a fail-fast component: the API refuses to start
 *   npm start -- --healthy            nothing broken
 *   npm start -- --once               exit after the report (used by the tests)
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const exampleDir = path.join(root, 'examples/marketedge-api');
const { values } = parseArgs({
  options: {
    break: { type: 'string' },
    healthy: { type: 'boolean', default: false },
    once: { type: 'boolean', default: false },
    port: { type: 'string' },
  },
});
const broken = values.healthy ? '' : (values.break || process.env.VIGIL_DEMO_BREAK || 'user_management');
const env = {
  ...process.env,
  VIGIL_DEMO_BREAK: broken,
  // The embedded default needs no collector: nothing is exported.
  OTEL_METRICS_EXPORTER: process.env.OTEL_METRICS_EXPORTER ?? 'none',
  OTEL_TRACES_EXPORTER: process.env.OTEL_TRACES_EXPORTER ?? 'none',
  VIGIL_LOG_LEVEL: process.env.VIGIL_LOG_LEVEL ?? 'silent',
};
const bold = (s) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

console.log(bold(`\n▶ MarketEdge API with ${broken ? `VIGIL_DEMO_BREAK=${broken}` : 'nothing broken'}\n`));
console.log(bold('1. vigil preflight — the startup validation, before any traffic\n'));
const preflight = spawnSync(process.execPath, [path.join(root, 'packages/sdk/dist/cli/vigil.js'), 'preflight', '--app', 'dist/app.js'], {
  cwd: exampleDir,
  env,
  stdio: 'inherit',
});
console.log(`\n   exit code ${preflight.status} (0 = may start, 1 = a fail-fast component failed, 2 = bad manifest)\n`);

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const port = Number(values.port ?? (await freePort()));
const base = `http://127.0.0.1:${port}`;

console.log(bold(`2. the API itself, started on ${base}\n`));
const app = spawn(process.execPath, ['dist/server.js'], { cwd: exampleDir, env: { ...env, PORT: String(port), VIGIL_LOG_LEVEL: 'error' }, stdio: ['ignore', 'inherit', 'inherit'] });
const exited = once(app, 'exit');

// /ready answers 503 until startup validation is done; a fail-fast failure ends the process instead.
const ready = async () => {
  for (let i = 0; i < 150 && app.exitCode === null; i++) {
    if (await fetch(`${base}/ready`).then((r) => r.ok, () => false)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
};
if (!(await ready())) {
  if (app.exitCode === null) app.kill('SIGKILL');
  const [code] = await exited;
  console.log(`   the API process exited with code ${code}: Vigil refused to let it take traffic (see above).`);
  process.exit(0);
}

const show = async (method, p, body) => {
  const res = await fetch(`${base}${p}`, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined }).catch(() => undefined);
  if (!res) {
    console.log(`   ${method.padEnd(4)} ${p.padEnd(34)} → no answer (the API is not running)`);
    return undefined;
  }
  const text = await res.text();
  console.log(`   ${method.padEnd(4)} ${p.padEnd(34)} → ${res.status} ${text.length > 70 ? `${text.slice(0, 67)}...` : text}`);
  return text;
};
await show('GET', '/health');
await show('GET', '/ready');
await show('POST', '/api/v1/auth/login', {});
await show('GET', '/api/v1/user-management');
const detailed = await show('GET', '/health/detailed');
if (detailed) {
  const body = JSON.parse(detailed);
  console.log(`\n   /health/detailed: status "${body.status}"${body.affectedEndpoints ? `, affectedEndpoints ${JSON.stringify(body.affectedEndpoints)}` : ''}`);
  console.log(
    body.status === 'pass'
      ? '\n   Every declared router, route and dependency is there.'
      : '\n   /health says pass — the load balancer sees nothing wrong — but Vigil names what is gone.',
  );
}
if (values.once) {
  app.kill('SIGTERM');
  await exited;
  process.exit(0);
}
console.log(bold(`\nThe API keeps running on ${base} — try ${base}/health/detailed. Ctrl-C stops it.`));
const stop = () => app.kill('SIGTERM');
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
await exited;
