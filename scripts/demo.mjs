#!/usr/bin/env node
/**
 * `npm start`: the original incident, caught and paged — with no server to
 * install. The embedded default: the example MarketEdge API with Vigil's SDK
 * exports OTLP/HTTP JSON straight to the evaluator's own receiver; the
 * evaluator applies the example's impact rules and sends the page to a webhook
 * this script serves and prints. Ctrl-C stops everything.
 *
 *   npm start                         the incident: user_management fails to import
 *   npm start -- --break auth         a fail-fast component: the API refuses to start
 *   npm start -- --healthy            nothing broken: no page
 *   npm start -- --once               exit after the outcome (used by the tests)
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';

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
const broken = values.healthy ? '' : values.break || process.env.VIGIL_DEMO_BREAK || 'user_management';
const tty = process.stdout.isTTY;
const bold = (s) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const red = (s) => (tty ? `\x1b[31m${s}\x1b[0m` : s);
const say = (s = '') => process.stdout.write(`${s}\n`);

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

say(bold(`\n▶ MarketEdge API with ${broken ? `VIGIL_DEMO_BREAK=${broken}` : 'nothing broken'}\n`));

// 1. The startup validation, as a deploy pipeline would run it.
say(bold('1. vigil preflight — the startup validation, before any traffic\n'));
const preflight = spawnSync(process.execPath, [path.join(root, 'packages/sdk/dist/cli/vigil.js'), 'preflight', '--app', 'dist/app.js'], {
  cwd: exampleDir,
  env: { ...process.env, VIGIL_DEMO_BREAK: broken, OTEL_SDK_DISABLED: 'true', VIGIL_LOG_LEVEL: 'silent' },
  stdio: 'inherit',
});
say(`\n   exit code ${preflight.status} (0 = may start, 1 = a fail-fast component failed, 2 = bad manifest)\n`);

// 2. A webhook that stands for the pager: it prints what would page.
const pages = [];
const hook = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    res.writeHead(204).end();
    try {
      const { status, alert } = JSON.parse(body);
      pages.push({ status, alert });
      const l = alert.labels;
      const a = alert.annotations;
      say(bold(status === 'firing' ? red(`   ■ PAGE (${l.severity}, ${l.priority}) → channels ${l.channels}`) : `   □ RESOLVED (${l.severity}, ${l.priority})`));
      say(`     ${a.summary}`);
      if (a.revenue_at_risk) say(`     revenue at risk: ${a.revenue_at_risk}`);
      if (a.customers) say(`     customers: ${a.customers}`);
      say(`     failing: ${(a.affected ?? '').split('\n').join('; ')}`);
      say(`     escalation level ${l.escalation}${l.business_context ? `, business context ${l.business_context}` : ''}\n`);
    } catch {
      // not ours
    }
  });
});
await new Promise((r) => hook.listen(0, '127.0.0.1', r));
const hookUrl = `http://127.0.0.1:${hook.address().port}/page`;

// 3. The evaluator, embedded: its own OTLP receiver, the example's rules.
const { Evaluator, EvaluatorConfig } = await import(pathToFileURL(path.join(root, 'packages/evaluator/dist/index.js')).href);
const { parse } = await import('yaml');
const { pino } = await import('pino');
const exampleConfig = parse(await readFile(path.join(exampleDir, 'evaluator.yaml'), 'utf8'));
const config = EvaluatorConfig.parse({
  ...exampleConfig,
  server: { host: '127.0.0.1', port: Number(values.port ?? 0) },
  source: { type: 'otlp' },
  silentAfter: '10s',
  staleAfter: '5s',
  notifiers: { pager: { type: 'webhook', url: hookUrl, retry: { initial: '200ms', max: '2s' } } },
});
const evaluator = new Evaluator(config, { logger: pino({ level: 'silent' }) });
const { url: evaluatorUrl } = await evaluator.start();

say(bold(`2. the API, exporting to the evaluator at ${evaluatorUrl}/v1/metrics\n`));
const appPort = await freePort();
const app = spawn(process.execPath, ['dist/server.js'], {
  cwd: exampleDir,
  env: {
    ...process.env,
    PORT: String(appPort),
    VIGIL_DEMO_BREAK: broken,
    VIGIL_LOG_LEVEL: process.env.VIGIL_LOG_LEVEL ?? 'silent',
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${evaluatorUrl}/v1/metrics`,
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json',
    OTEL_METRIC_EXPORT_INTERVAL: '2000',
    OTEL_TRACES_EXPORTER: 'none',
  },
  stdio: ['ignore', 'inherit', 'inherit'],
});
const appExited = once(app, 'exit');
const base = `http://127.0.0.1:${appPort}`;
let serving = false;
for (let i = 0; i < 150 && app.exitCode === null; i++) {
  if (await fetch(`${base}/ready`).then((r) => r.ok, () => false)) {
    serving = true;
    break;
  }
  await new Promise((r) => setTimeout(r, 100));
}
if (serving) {
  for (const [method, p] of [['GET', '/health'], ['POST', '/api/v1/auth/login'], ['GET', '/api/v1/user-management']]) {
    const res = await fetch(`${base}${p}`, { method, headers: { 'content-type': 'application/json' }, body: method === 'POST' ? '{}' : undefined });
    say(`   ${method.padEnd(4)} ${p.padEnd(28)} → ${res.status}`);
  }
  say(`   (the API answers on ${base}; /health is green whatever is missing)\n`);
} else {
  say(`   the API process exited with code ${app.exitCode}: Vigil refused to let it take traffic, after exporting why.\n`);
}

// 4. What the evaluator made of it.
say(bold('3. the evaluator: business impact, and the page\n'));
const deadline = Date.now() + (broken ? 20_000 : 6_000);
while (Date.now() < deadline && !pages.some((p) => p.status === 'firing')) await new Promise((r) => setTimeout(r, 100));
if (!pages.length) say(broken ? '   no page within 20 s — something is wrong' : '   no page: every declared router, route and dependency is there.\n');
say(`   status page: ${evaluatorUrl}/   ·   status API: ${evaluatorUrl}/api/v1/status\n`);

async function stop(code = 0) {
  if (app.exitCode === null) app.kill('SIGTERM');
  await Promise.race([appExited, new Promise((r) => setTimeout(r, 3000))]);
  if (app.exitCode === null) app.kill('SIGKILL');
  await evaluator.stop(1000);
  hook.close();
  process.exit(code);
}
if (values.once) await stop(broken && !pages.length ? 1 : 0);
say(bold('Running. Ctrl-C stops everything.'));
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
