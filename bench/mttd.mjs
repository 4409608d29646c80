#!/usr/bin/env node
/**
 * Mean time to detect, through the real pieces: how long from the moment a fault exists to the
 * moment someone is paged.
 *
 *   startup-embedded     the example API with user_management failing to import, exporting OTLP/HTTP
 *                        JSON straight to an evaluator (the example's evaluator.yaml, source otlp)
 *                        whose webhook notifier pages a receiver: process spawn → the page.
 *   startup-prom-eval    the same fault, app → the OpenTelemetry Collector (collector-config.yaml) →
 *                        Prometheus (remote write); the evaluator on the Prometheus
 *                        source → the real Alertmanager with the committed routing and timings →
 *                        the Slack stand-in (#alerts): process spawn → the Slack message.
 *   startup-prom-rules   the same, but no evaluator: the committed Prometheus rules alone →
 *                        Alertmanager → Slack #alerts.
 *   runtime-embedded     a healthy app, then login starts answering 503 (SIGUSR2 toggles the
 *                        example's runtime fault) with endpoint probes every 5 s: the signal → the page.
 *   runtime-prom-eval    the same fault through the Collector → Prometheus → the evaluator on the
 *                        Prometheus source → Alertmanager → the PagerDuty stand-in (CRITICAL_AUTH).
 *   runtime-prom-rules   the same, but no evaluator: the committed rule VigilEndpointProbeFailing
 *                        (`for: 1m`) → Alertmanager → PagerDuty.
 *
 * Each scenario runs `--runs` times (default 3; --quick 1), the scenarios alternating in order
 * from round to round; the medians are reported with min/max. One Prometheus, Alertmanager and
 * Collector serve all runs; every run gets its own service name (OTEL_SERVICE_NAME), hence its own
 * Alertmanager group (grouped by alertname, service, component), so no run inherits another's
 * group_wait or inhibition. Before each fault, a random wait of up to one evaluator/probe period
 * so that the runs do not start in lock-step with the evaluator's poll or the probes.
 *
 * Needs the build (npm run build), the stack binaries (npm run stack:fetch) and the Collector
 * (npm run stack:collector). The rig's test
 * helpers (test/helpers/*.ts) are loaded through tsx's API, so plain `node` runs this:
 *
 *   node bench/mttd.mjs [--runs 3] [--quick] [--out bench/results/mttd.json]
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import { parse } from 'yaml';
import { pino } from 'pino';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const exampleDir = path.join(root, 'examples/marketedge-api');
const { values } = parseArgs({
  options: {
    runs: { type: 'string' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(root, 'bench/results/mttd.json') },
    only: { type: 'string' },
  },
});
const runs = Number(values.runs ?? (values.quick ? 1 : 3));
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${values.runs}`);
const PROBE_INTERVAL_S = 5;
const log = (s) => process.stderr.write(`[mttd] ${s}\n`);

const helper = (f) => tsImport(pathToFileURL(path.join(root, 'test/helpers', f)).href, import.meta.url);
const rig = await helper('rig.ts');
const stack = await helper('stack.ts');
const { startExample } = await helper('example.ts');
const { Evaluator, EvaluatorConfig } = await import(pathToFileURL(path.join(root, 'packages/evaluator/dist/index.js')).href);

const exampleConfig = parse(await readFile(path.join(exampleDir, 'evaluator.yaml'), 'utf8'));
const silent = pino({ level: 'silent' });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const jitter = (maxMs) => sleep(Math.random() * maxMs);
const secs = (ms) => Math.round(ms) / 1000;

async function startEvaluator(overrides) {
  const config = EvaluatorConfig.parse({ ...exampleConfig, server: { host: '127.0.0.1', port: 0 }, ...overrides });
  const evaluator = new Evaluator(config, { logger: silent });
  const { url } = await evaluator.start();
  return { evaluator, url, config };
}

/** Polls `fn` every 50 ms until it returns a truthy value; rejects after `timeoutMs` naming `what`. */
async function until(fn, timeoutMs, what) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`no ${what} within ${timeoutMs / 1000} s`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------------------------------------
// The rig, shared by the Prometheus scenarios.

let seq = 0;
/** A service name of its own per run; fixed width, so that no name is a prefix of another. */
const newService = () => `mttd-${process.pid}-${String(++seq).padStart(3, '0')}`;

const runtimeManifest = path.join(exampleDir, `.vigil.bench-mttd-${process.pid}.yaml`);
const cleanups = [];
let pipeline;

async function startPipeline() {
  log('starting the stand-ins, Alertmanager (committed config and timings), Prometheus (committed rules, 5 s evaluation) and the OpenTelemetry Collector (collector-config.yaml)');
  const hooks = await stack.startStandIns();
  cleanups.push(() => hooks.stop());
  const smtp = await stack.startSmtpSink();
  cleanups.push(() => smtp.stop());
  const amConfig = await stack.localAlertmanagerConfig({ standInsUrl: hooks.url, smtpPort: smtp.port });
  cleanups.push(() => amConfig.cleanup());
  const am = await rig.startAlertmanager({ config: amConfig.config });
  cleanups.push(() => am.stop());
  const promOptions = stack.localPrometheusOptions({ alertmanagerUrl: am.url });
  const prom = await rig.startPrometheus(promOptions);
  cleanups.push(() => prom.stop());
  const collector = await rig.startCollector({ remoteWriteUrl: prom.remoteWriteUrl });
  cleanups.push(() => collector.stop());
  return { hooks, am, prom, collector, promEvaluationInterval: promOptions.evaluationInterval };
}

const slackText = (r) => JSON.stringify(r.body ?? '');

/**
 * Records when an alert of `service` (and `alertname`) first shows in Alertmanager, polling its
 * API every 100 ms until stopped: splits a page time into "reached Alertmanager" + routing wait.
 */
function watchAlertmanager(service, alertname) {
  let seenAt;
  let stopped = false;
  const loop = (async () => {
    const deadline = performance.now() + 120_000;
    while (!stopped && seenAt === undefined && performance.now() < deadline) {
      const alerts = await pipeline.am.alerts().catch(() => []);
      if (alerts.some((a) => a.labels?.service === service && a.labels.alertname === alertname)) seenAt = performance.now();
      else await sleep(100);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return seenAt;
    },
  };
}
/** The example with probes every PROBE_INTERVAL_S s, exporting OTLP/HTTP protobuf to the Collector, serving. */
async function startRuntimeApp(service, otlpMetricsUrl) {
  const app = await startExample({
    VIGIL_MANIFEST: runtimeManifest,
    OTEL_SERVICE_NAME: service,
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: otlpMetricsUrl,
    OTEL_TRACES_EXPORTER: 'none',
  });
  await app.serving();
  return app;
}

/** After a random wait of up to one probe period, login starts answering 503 (SIGUSR2); Alertmanager is watched for `alertname` from then. */
async function injectRuntimeFault(app, service, alertname) {
  await jitter(PROBE_INTERVAL_S * 1000);
  const watch = watchAlertmanager(service, alertname);
  const faultAt = performance.now();
  app.proc.kill('SIGUSR2');
  return { faultAt, watch };
}

const split = {}; // scenario → [ms from the start to the alert in Alertmanager]
const noteSplit = (name, from, at) => at !== undefined && (split[name] ??= []).push(at - from);

// ---------------------------------------------------------------------------------------------
// Scenarios: each resolves with the detection time in ms.

const scenarios = {
  'startup-embedded': {
    label: 'startup fault, embedded (app → OTLP/HTTP JSON → evaluator → webhook)',
    target: 5,
    async run() {
      const hook = await rig.startWebhookReceiver();
      const e = await startEvaluator({ source: { type: 'otlp' }, notifiers: { pager: { type: 'webhook', url: `${hook.url}/page` } } });
      const service = newService();
      let app;
      try {
        await jitter(e.config.interval);
        app = await startExample({
          VIGIL_DEMO_BREAK: 'user_management',
          OTEL_SERVICE_NAME: service,
          OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${e.url}/v1/metrics`,
          OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json',
          OTEL_TRACES_EXPORTER: 'none',
        });
        await hook.waitFor((r) => r.body?.status === 'firing' && r.body.alert?.labels?.service === service && r.body.alert.labels.component === 'user_management', 30_000);
        return performance.now() - app.spawnedAt;
      } finally {
        await app?.stop();
        await e.evaluator.stop(1000);
        await hook.stop();
      }
    },
  },

  'startup-prom-eval': {
    label: 'startup fault, via Prometheus + evaluator (Collector → Prometheus → evaluator → Alertmanager → Slack #alerts)',
    target: 15,
    needsPipeline: true,
    groupWait: 5,
    explain: 'the original design asked < 2 min',
    async run() {
      const { hooks, am, prom, collector } = pipeline;
      const service = newService();
      const e = await startEvaluator({
        source: { type: 'prometheus', url: prom.url, selector: `service_name="${service}"` },
        notifiers: { alertmanager: { type: 'alertmanager', urls: [am.url] } },
      });
      let app;
      try {
        await jitter(e.config.source.interval);
        const watch = watchAlertmanager(service, 'VigilBusinessImpact');
        app = await startExample({
          VIGIL_DEMO_BREAK: 'user_management',
          OTEL_SERVICE_NAME: service,
          OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: collector.otlpMetricsUrl,
          OTEL_TRACES_EXPORTER: 'none',
        });
        await hooks.waitFor((r) => r.path === '/slack/alerts' && slackText(r).includes(service) && slackText(r).includes('VigilBusinessImpact'), 60_000).finally(async () => noteSplit('startup-prom-eval', app.spawnedAt, await watch.stop()));
        return performance.now() - app.spawnedAt;
      } finally {
        await app?.stop();
        await e.evaluator.stop(1000);
      }
    },
  },

  'startup-prom-rules': {
    label: 'startup fault, via the Prometheus rules alone (Collector → Prometheus → Alertmanager → Slack #alerts)',
    target: 15,
    needsPipeline: true,
    groupWait: 5,
    explain: 'the original design asked < 2 min',
    async run() {
      const { hooks, collector } = pipeline;
      const service = newService();
      const watch = watchAlertmanager(service, 'VigilRouterImportFailed');
      const app = await startExample({
        VIGIL_DEMO_BREAK: 'user_management',
        OTEL_SERVICE_NAME: service,
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: collector.otlpMetricsUrl,
        OTEL_TRACES_EXPORTER: 'none',
      });
      try {
        await hooks
          .waitFor(
            (r) => r.path === '/slack/alerts' && slackText(r).includes(service) && slackText(r).includes('VigilRouterImportFailed') && !slackText(r).includes('VigilBusinessImpact'),
            60_000,
          )
          .finally(async () => noteSplit('startup-prom-rules', app.spawnedAt, await watch.stop()));
        return performance.now() - app.spawnedAt;
      } finally {
        await app.stop();
      }
    },
  },

  'runtime-embedded': {
    label: `runtime fault (login answers 503, probes every ${PROBE_INTERVAL_S} s), embedded (→ evaluator → webhook)`,
    target: PROBE_INTERVAL_S + 10,
    explain: `the SDK flips a check after 3 failed probes in a row: ${2 * PROBE_INTERVAL_S}–${3 * PROBE_INTERVAL_S} s after the fault`,
    async run() {
      const hook = await rig.startWebhookReceiver();
      const e = await startEvaluator({ source: { type: 'otlp' }, notifiers: { pager: { type: 'webhook', url: `${hook.url}/page` } } });
      const service = newService();
      let app;
      try {
        app = await startExample({
          VIGIL_MANIFEST: runtimeManifest,
          OTEL_SERVICE_NAME: service,
          OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${e.url}/v1/metrics`,
          OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json',
          OTEL_TRACES_EXPORTER: 'none',
        });
        await app.serving();
        await until(() => e.evaluator.status().services.some((s) => s.service === service), 20_000, `telemetry from ${service} at the evaluator`);
        await jitter(PROBE_INTERVAL_S * 1000);
        if (hook.received.length) throw new Error(`the healthy app was paged before the fault: ${JSON.stringify(hook.received[0].body).slice(0, 500)}`);
        const faultAt = performance.now();
        app.proc.kill('SIGUSR2');
        await hook.waitFor((r) => r.body?.status === 'firing' && r.body.alert?.labels?.service === service && r.body.alert.labels.component === 'authentication', 45_000);
        return performance.now() - faultAt;
      } finally {
        await app?.stop();
        await e.evaluator.stop(1000);
        await hook.stop();
      }
    },
  },

  'runtime-prom-eval': {
    label: `runtime fault (login answers 503, probes every ${PROBE_INTERVAL_S} s), via Prometheus + evaluator (Collector → Prometheus → evaluator → Alertmanager → PagerDuty)`,
    target: PROBE_INTERVAL_S + 10,
    needsPipeline: true,
    groupWait: 5,
    explain: `the SDK flips a check after 3 failed probes in a row (${2 * PROBE_INTERVAL_S}–${3 * PROBE_INTERVAL_S} s), then the evaluator's 5 s poll and Alertmanager's 5 s group_wait`,
    async run() {
      const { hooks, am, prom, collector } = pipeline;
      const service = newService();
      const e = await startEvaluator({
        source: { type: 'prometheus', url: prom.url, selector: `service_name="${service}"` },
        notifiers: { alertmanager: { type: 'alertmanager', urls: [am.url] } },
      });
      let app;
      try {
        app = await startRuntimeApp(service, collector.otlpMetricsUrl);
        await until(() => e.evaluator.status().services.some((s) => s.service === service), 30_000, `${service} at the evaluator through Prometheus`);
        const { faultAt, watch } = await injectRuntimeFault(app, service, 'VigilBusinessImpact');
        await hooks
          .waitFor((r) => r.path === '/pagerduty' && r.body?.event_action === 'trigger' && r.body.payload?.source === service && r.body.payload.component === 'authentication', 90_000)
          .finally(async () => noteSplit('runtime-prom-eval', faultAt, await watch.stop()));
        return performance.now() - faultAt;
      } finally {
        await app?.stop();
        await e.evaluator.stop(1000);
      }
    },
  },

  'runtime-prom-rules': {
    label: `runtime fault (login answers 503, probes every ${PROBE_INTERVAL_S} s), via the Prometheus rules alone (Collector → Prometheus → Alertmanager → PagerDuty)`,
    target: 3 * PROBE_INTERVAL_S + 60 + 15,
    needsPipeline: true,
    groupWait: 5,
    explain: `the SDK flips a check after 3 failed probes in a row (${2 * PROBE_INTERVAL_S}–${3 * PROBE_INTERVAL_S} s), then the rule's \`for: 1m\` and Alertmanager's 5 s group_wait`,
    async run() {
      const { hooks, prom, collector } = pipeline;
      const service = newService();
      let app;
      try {
        app = await startRuntimeApp(service, collector.otlpMetricsUrl);
        await until(async () => (await prom.query(`vigil_probe_success{service_name="${service}"}`)).length > 0, 30_000, `${service} in Prometheus`);
        const { faultAt, watch } = await injectRuntimeFault(app, service, 'VigilEndpointProbeFailing');
        await hooks
          .waitFor((r) => r.path === '/pagerduty' && r.body?.event_action === 'trigger' && slackText(r).includes(service) && slackText(r).includes('VigilEndpointProbeFailing'), 150_000)
          .finally(async () => noteSplit('runtime-prom-rules', faultAt, await watch.stop()));
        return performance.now() - faultAt;
      } finally {
        await app?.stop();
      }
    },
  },
};

// ---------------------------------------------------------------------------------------------

const names = values.only ? values.only.split(',').map((s) => s.trim()) : Object.keys(scenarios);
for (const n of names) if (!scenarios[n]) throw new Error(`unknown scenario "${n}"; known: ${Object.keys(scenarios).join(', ')}`);
const samples = Object.fromEntries(names.map((n) => [n, []]));
const failures = Object.fromEntries(names.map((n) => [n, []]));
const started = performance.now();

try {
  const text = await readFile(path.join(exampleDir, 'vigil.yaml'), 'utf8');
  if (!text.includes('endpoints: 30s')) throw new Error('examples/marketedge-api/vigil.yaml no longer has "endpoints: 30s" to change');
  await writeFile(runtimeManifest, text.replace('endpoints: 30s', `endpoints: ${PROBE_INTERVAL_S}s`));
  if (names.some((n) => scenarios[n].needsPipeline)) pipeline = await startPipeline();

  for (let r = 1; r <= runs; r++) {
    const order = r % 2 ? names : [...names].reverse();
    for (const name of order) {
      const t0 = performance.now();
      try {
        const ms = await scenarios[name].run();
        samples[name].push(ms);
        log(`round ${r}/${runs} ${name}: ${(ms / 1000).toFixed(2)} s (run took ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (err) {
        failures[name].push(err instanceof Error ? err.message.split('\n')[0] : String(err));
        log(`round ${r}/${runs} ${name}: FAILED: ${err instanceof Error ? err.message.slice(0, 2000) : String(err)}`);
      }
    }
  }
} finally {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await rm(runtimeManifest, { force: true });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const rows = names.map((name) => {
  const sc = scenarios[name];
  const xs = samples[name].map((ms) => ms / 1000);
  const failed = failures[name].length;
  if (!xs.length) {
    return { metric: `MTTD ${sc.label}`, value: 0, unit: 's', target: `≤ ${sc.target} s`, met: false, note: `no page in any of ${failed} runs: ${failures[name][0]}` };
  }
  const value = Math.round(median(xs) * 100) / 100;
  const note = [
    `median of ${xs.length}${failed ? ` (${failed} more runs saw no page: ${failures[name][0]})` : ''}; min ${Math.min(...xs).toFixed(2)} s, max ${Math.max(...xs).toFixed(2)} s`,
    `all: ${xs.map((x) => x.toFixed(2)).join(', ')}`,
    ...(sc.explain ? [sc.explain] : []),
    ...(split[name]?.length ? [`in Alertmanager after ${(median(split[name]) / 1000).toFixed(2)} s (median), the rest is its routing (group_wait ${sc.groupWait} s)`] : []),
  ].join('; ');
  return { metric: `MTTD ${sc.label}`, value, unit: 's', target: `≤ ${sc.target} s`, met: failed === 0 && value <= sc.target, note };
});

const doc = {
  name: 'mttd',
  title: 'Time to detect: from the fault to the page, through the real pieces',
  settings: {
    runs,
    quick: values.quick,
    scenarios: names,
    evaluator: 'examples/marketedge-api/evaluator.yaml (interval 1s), in this process; Prometheus source: default poll interval 5s, selector on the run\'s service',
    app: 'examples/marketedge-api (dist), default SDK export interval (10 s) — a change of state is flushed at once',
    runtimeManifest: `examples/marketedge-api/vigil.yaml with endpoints: ${PROBE_INTERVAL_S}s (failureThreshold 3)`,
    prometheus: pipeline ? `prometheus/rules, evaluation_interval ${pipeline.promEvaluationInterval}` : 'not started',
    alertmanager: 'alertmanager/alertmanager.yml with the committed timings (group_wait 5 s for critical, high and the business contexts)',
    collector: 'Vigil\'s OpenTelemetry Collector (collector/builder-config.yaml) running collector-config.yaml: batch 200 ms, prometheus_remote_write',
    seconds: Math.round((performance.now() - started) / 1000),
  },
  rows,
  environment: { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', loadavg: os.loadavg().map((x) => Math.round(x * 100) / 100) },
};
await mkdir(path.dirname(path.resolve(values.out)), { recursive: true });
await writeFile(values.out, JSON.stringify(doc, null, 2) + '\n');
for (const row of rows) log(`${row.metric}: ${row.value} s (target ${row.target}: ${row.met ? 'met' : 'NOT met'}) — ${row.note}`);
log(`wrote ${values.out}`);
// A scenario that never paged means the benchmark (or the pipeline) is broken.
process.exit(names.some((n) => samples[n].length === 0) ? 1 : 0);
