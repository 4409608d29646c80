/**
 * The committed stack (collector-config.yaml, prometheus/, alertmanager/) on this machine, without Docker: the real Prometheus with the
 * committed rules, the real Alertmanager with the committed routing, and stand-ins on 127.0.0.1
 * for what cannot be reached from here (Slack, PagerDuty, an SMTP server, the webhooks).
 *
 * Used by the end-to-end tests (test/e2e/alertmanager-routing.test.ts, test/e2e/stack.test.ts) and
 * by `npm run stack` (scripts/stack.ts). The Alertmanager config is the committed one with ONLY:
 *   - the secret files: `/etc/alertmanager/secrets/` → a temp dir whose files hold the URLs of the
 *     stand-ins and fake keys, each written with a trailing newline as `echo` would;
 *   - `global.pagerduty_url` → the stand-in's /pagerduty; `global.smtp_smarthost` → the SMTP sink
 *     (which speaks no TLS, hence `smtp_require_tls: false`);
 *   - optionally (`fast`) shorter timings: every `group_wait` → 1s, every `group_interval` → 2s.
 * Routes, matchers, receivers and inhibit rules are untouched (alertmanager-routing.test.ts asserts it).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isMap, isSeq, parse, parseDocument, stringify, type Node as YamlNode } from 'yaml';
import { exampleEvaluatorConfig } from './evaluator.js';
import { spawnNode, type NodeChild } from './example.js';
import { freePort, REPO_ROOT, type PrometheusOptions, type WebhookRequest } from './rig.js';
import { waitFor } from './wait.js';

export const ALERTMANAGER_CONFIG = path.join(REPO_ROOT, 'alertmanager', 'alertmanager.yml');
export const PROMETHEUS_CONFIG = path.join(REPO_ROOT, 'prometheus', 'prometheus.yml');
export const RULES_DIR = path.join(REPO_ROOT, 'prometheus', 'rules');
export const SECRETS_MOUNT = '/etc/alertmanager/secrets/';

// ---------------------------------------------------------------------------------------------
// An SMTP sink: enough ESMTP for Alertmanager's email notifier (EHLO, AUTH PLAIN, MAIL, RCPT, DATA).

export interface Mail {
  auth?: { user: string; pass: string };
  from: string;
  to: string[];
  data: string;
  /** Header name (lowercase) → value, unfolded. */
  headers: Record<string, string>;
  /** When the sink had the whole message (Date.now()). */
  at: number;
}

export interface SmtpSink {
  port: number;
  mails: Mail[];
  waitFor(predicate: (m: Mail) => boolean, timeoutMs?: number): Promise<Mail>;
  stop(): Promise<void>;
}

function parseHeaders(data: string): Record<string, string> {
  const head = data.split(/\r?\n\r?\n/)[0] ?? '';
  const headers: Record<string, string> = {};
  let last = '';
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && last) headers[last] += ' ' + line.trim();
    else {
      const i = line.indexOf(':');
      if (i > 0) headers[(last = line.slice(0, i).toLowerCase())] = line.slice(i + 1).trim();
    }
  }
  return headers;
}

export async function startSmtpSink(): Promise<SmtpSink> {
  const mails: Mail[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    sock.setEncoding('utf8');
    const say = (s: string) => sock.write(s + '\r\n');
    let buf = '';
    let inData = false;
    let pendingAuth = false;
    let cur: Omit<Mail, 'headers' | 'at'> = { from: '', to: [], data: '' };
    const plain = (b64: string) => {
      const [, user = '', pass = ''] = Buffer.from(b64, 'base64').toString('utf8').split('\0');
      cur.auth = { user, pass };
      say('235 2.7.0 Authentication successful');
    };
    const onLine = (line: string) => {
      if (inData) {
        if (line === '.') {
          inData = false;
          mails.push({ ...cur, headers: parseHeaders(cur.data), at: Date.now() });
          cur = { from: '', to: [], data: '', ...(cur.auth ? { auth: cur.auth } : {}) };
          say('250 2.0.0 Ok: queued');
        } else cur.data += (line.startsWith('..') ? line.slice(1) : line) + '\n';
        return;
      }
      if (pendingAuth) {
        pendingAuth = false;
        plain(line.trim());
        return;
      }
      const verb = line.split(' ')[0]!.toUpperCase();
      if (verb === 'EHLO') sock.write('250-sink\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n');
      else if (verb === 'HELO') say('250 sink');
      else if (verb === 'AUTH') {
        const [, mech, initial] = line.split(' ');
        if (mech?.toUpperCase() !== 'PLAIN') say('504 5.5.4 Unrecognized authentication type');
        else if (initial) plain(initial);
        else (pendingAuth = true), say('334 ');
      } else if (verb === 'MAIL') (cur.from = /<([^>]*)>/.exec(line)?.[1] ?? ''), say('250 2.1.0 Ok');
      else if (verb === 'RCPT') cur.to.push(/<([^>]*)>/.exec(line)?.[1] ?? ''), say('250 2.1.5 Ok');
      else if (verb === 'DATA') (inData = true), say('354 End data with <CR><LF>.<CR><LF>');
      else if (verb === 'RSET' || verb === 'NOOP') say('250 2.0.0 Ok');
      else if (verb === 'QUIT') say('221 2.0.0 Bye'), sock.end();
      else say('502 5.5.2 Command not recognized');
    };
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, '');
        buf = buf.slice(i + 1);
        onLine(line);
      }
    });
    say('220 sink ESMTP');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    mails,
    waitFor: (predicate, timeoutMs = 10_000) =>
      waitFor(() => mails.find(predicate), {
        timeoutMs,
        what: `a mail matching the predicate; got ${mails.length}: ${mails.map((m) => `${m.to.join(',')} "${m.headers.subject}"`).join('; ')}`,
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Stand-ins for Slack, PagerDuty and the webhooks: one recording HTTP server on 127.0.0.1 that
// answers each path as the real service does. (The rig's webhook receiver answers `{}` as JSON,
// which Alertmanager's Slack notifier rejects: Slack's incoming webhooks answer `ok` as text.)

export interface StandIns {
  url: string;
  received: WebhookRequest[];
  waitFor(predicate: (r: WebhookRequest) => boolean, timeoutMs?: number): Promise<WebhookRequest>;
  stop(): Promise<void>;
}

export async function startStandIns(): Promise<StandIns> {
  const received: WebhookRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: any = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* keep the text */
      }
      const reqPath = req.url ?? '/';
      received.push({ path: reqPath, method: req.method ?? 'GET', headers: req.headers, body, at: Date.now() });
      if (reqPath.startsWith('/slack/')) res.writeHead(200, { 'content-type': 'text/html' }).end('ok');
      else if (reqPath === '/pagerduty') {
        res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'success', message: 'Event processed', dedup_key: body?.dedup_key }));
      } else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    waitFor: (predicate, timeoutMs = 10_000) =>
      waitFor(() => received.find(predicate), {
        timeoutMs,
        what: `a matching request; received ${received.length}:\n${received.map((r) => `  ${r.method} ${r.path} ${JSON.stringify(r.body).slice(0, 300)}`).join('\n')}`,
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// The test copy of the config.

/** Every group_wait → 1s and group_interval → 2s, in the whole route tree. */
export function shortenTimings(route: YamlNode | null | undefined): void {
  if (!isMap(route)) return;
  if (route.has('group_wait')) route.set('group_wait', '1s');
  if (route.has('group_interval')) route.set('group_interval', '2s');
  const routes = route.get('routes', true);
  if (isSeq(routes)) for (const r of routes.items) shortenTimings(r as YamlNode);
}

/** The route tree without its timings: what must be identical in the committed and the test config. */
export function routingOf(route: any): any {
  const { group_wait: _w, group_interval: _i, routes, ...rest } = route;
  return { ...rest, ...(routes ? { routes: routes.map(routingOf) } : {}) };
}


/** What a local copy of the committed Alertmanager config delivers to. */
export interface LocalAlertmanagerConfig {
  /** The config text to start Alertmanager with. */
  config: string;
  /** The temp dir holding the secret files (remove with {@link LocalAlertmanagerConfig.cleanup}). */
  secretsDir: string;
  /** Secret file name → the value written into it (without the trailing newline). */
  secrets: Record<string, string>;
  cleanup(): Promise<void>;
}

/**
 * The committed alertmanager.yml redirected to stand-ins on 127.0.0.1: the secret files under
 * `/etc/alertmanager/secrets/` are written to a temp dir (`<standIns>/incident-log`,
 * `/deadmansswitch`, `/slack/<channel>`, fake PagerDuty keys, an SMTP password).
 */
export async function localAlertmanagerConfig(opts: { standInsUrl: string; smtpPort: number; fast?: boolean }): Promise<LocalAlertmanagerConfig> {
  const secretsDir = await mkdtemp(path.join(tmpdir(), 'vigil-am-secrets-'));
  const secrets: Record<string, string> = {
    'webhook-url': `${opts.standInsUrl}/incident-log`,
    'deadmansswitch-url': `${opts.standInsUrl}/deadmansswitch`,
    'pagerduty-routing-key': 'pd-key-general',
    'pagerduty-critical-routing-key': 'pd-key-critical-auth',
    'pagerduty-oncall-lead-routing-key': 'pd-key-oncall-lead',
    'slack-emergency-webhook-url': `${opts.standInsUrl}/slack/emergency`,
    'slack-alerts-webhook-url': `${opts.standInsUrl}/slack/alerts`,
    'slack-zebra-webhook-url': `${opts.standInsUrl}/slack/zebra`,
    'smtp-password': 'smtp-test-password',
  };
  // Trailing newline as `echo x > file` writes it: Alertmanager trims it.
  for (const [name, value] of Object.entries(secrets)) await writeFile(path.join(secretsDir, name), value + '\n', { mode: 0o600 });
  const text = await readFile(ALERTMANAGER_CONFIG, 'utf8');
  const doc = parseDocument(text.replaceAll(SECRETS_MOUNT, `${secretsDir}/`));
  doc.setIn(['global', 'pagerduty_url'], `${opts.standInsUrl}/pagerduty`);
  doc.setIn(['global', 'smtp_smarthost'], `127.0.0.1:${opts.smtpPort}`);
  doc.setIn(['global', 'smtp_require_tls'], false);
  if (opts.fast) shortenTimings(doc.get('route', true) as YamlNode);
  return { config: String(doc), secretsDir, secrets, cleanup: () => rm(secretsDir, { recursive: true, force: true }) };
}

/**
 * Options for the rig's `startPrometheus` that load the committed rules (prometheus/rules)
 * with the committed rule evaluation interval, alerting to the given Alertmanager. The scrape
 * targets of the committed prometheus.yml are compose host names; the Vigil metrics arrive by
 * remote write, so the local copy scrapes only the Alertmanager (for its own metrics).
 */
export function localPrometheusOptions(opts: { alertmanagerUrl: string; evaluationInterval?: string }): PrometheusOptions {
  const committed = parse(readFileSync(PROMETHEUS_CONFIG, 'utf8')) as { global?: { evaluation_interval?: string } };
  const ruleFiles = readdirSync(RULES_DIR)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => path.join(RULES_DIR, f));
  return {
    ruleFiles,
    alertmanagerUrl: opts.alertmanagerUrl,
    evaluationInterval: opts.evaluationInterval ?? committed.global?.evaluation_interval ?? '15s',
    scrapeConfigs: [{ job_name: 'alertmanager', static_configs: [{ targets: [new URL(opts.alertmanagerUrl).host] }] }],
  };
}


/** The built evaluator CLI (`vigil-evaluator`). */
export const EVALUATOR_CLI = path.join(REPO_ROOT, 'packages/evaluator/dist/cli.js');

/** A `vigil-evaluator` process started by {@link startPrometheusEvaluator}. */
export interface EvaluatorProcess extends NodeChild {
  url: string;
  stop(): Promise<void>;
}

/**
 * The built `vigil-evaluator` CLI with `configFile` on `port`, exporting its own metrics (for
 * `vigil_evaluator_up` and the dashboards) as OTLP/HTTP protobuf to `otlpMetricsUrl`, no traces.
 */
export function spawnEvaluatorCli(configFile: string, port: number, opts: { otlpMetricsUrl: string; exportIntervalMs: number; logLevel?: string }): NodeChild {
  return spawnNode(EVALUATOR_CLI, ['--config', configFile, '--port', String(port)], {
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: opts.otlpMetricsUrl,
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf',
    OTEL_METRIC_EXPORT_INTERVAL: String(opts.exportIntervalMs),
    OTEL_TRACES_EXPORTER: 'none',
    VIGIL_LOG_LEVEL: opts.logLevel ?? 'info',
  });
}

/**
 * `vigil-evaluator` as the stack runs it: the example's rules, policies and contexts on the
 * Prometheus source, notifying Alertmanager, exporting its own metrics as OTLP/HTTP protobuf
 * (for `vigil_evaluator_up` and the dashboards). Its config is written to a temp dir.
 */
export async function startPrometheusEvaluator(opts: {
  prometheusUrl: string;
  alertmanagerUrl: string;
  otlpMetricsUrl: string;
  pollInterval: string;
  exportIntervalMs: number;
  logLevel?: string;
}): Promise<EvaluatorProcess> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vigil-evaluator-'));
  const file = path.join(dir, 'evaluator.yaml');
  const config = await exampleEvaluatorConfig({
    source: { type: 'prometheus', url: opts.prometheusUrl, interval: opts.pollInterval },
    notifiers: { alertmanager: { type: 'alertmanager', urls: [opts.alertmanagerUrl] } },
  });
  await writeFile(file, stringify(config));
  const port = await freePort();
  const child = spawnEvaluatorCli(file, port, opts);
  return {
    ...child,
    url: `http://127.0.0.1:${port}`,
    async stop() {
      if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill('SIGTERM');
      await child.exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
