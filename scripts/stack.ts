/**
 * `npm run stack`: the committed stack on a machine without Docker, from the Debian binaries that
 * `npm run stack:fetch` unpacks into .stack/ and the Collector that `npm run stack:collector`
 * builds there — the same processes the end-to-end tests run (test/helpers/rig.ts,
 * test/helpers/stack.ts):
 *
 *   example API ──OTLP/protobuf──▶ OpenTelemetry Collector (collector-config.yaml)
 *        ──remote write──▶ Prometheus (prometheus/rules) ──▶ Alertmanager (alertmanager/)
 *        ──▶ local stand-ins for PagerDuty, Slack, email and the webhooks, printed here
 *   evaluator (Prometheus source, its own metrics to the Collector) ──▶ the same Alertmanager
 *
 *   npm run stack                        the incident: user_management fails to import
 *   npm run stack -- --break auth        a fail-fast component: the API refuses to start
 *   npm run stack -- --healthy           nothing broken
 *   npm run stack -- --once              exit 0 after the first page (exit 1 if none within 90 s)
 *
 * Grafana has no Debian or npm package: the dashboards are provisioned by docker-compose.yml for
 * users with Docker. Ctrl-C stops everything.
 */
import { parseArgs } from 'node:util';
import { startExample, type ExampleApp } from '../test/helpers/example.js';
import { startAlertmanager, startPrometheus, startCollector, type WebhookRequest } from '../test/helpers/rig.js';
import {
  localAlertmanagerConfig,
  localPrometheusOptions,
  startPrometheusEvaluator,
  startSmtpSink,
  startStandIns,
  type Mail,
} from '../test/helpers/stack.js';

const { values } = parseArgs({
  options: {
    break: { type: 'string' },
    healthy: { type: 'boolean', default: false },
    once: { type: 'boolean', default: false },
  },
});
const broken = values.healthy ? '' : (values.break ?? process.env.VIGIL_DEMO_BREAK ?? 'user_management');
const tty = process.stdout.isTTY;
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const red = (s: string) => (tty ? `\x1b[31m${s}\x1b[0m` : s);
const say = (s = '') => process.stdout.write(`${s}\n`);
const step = (s: string) => say(`  … ${s}`);

const cleanups: Array<() => Promise<unknown> | unknown> = [];
let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  }
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

say(bold(`\n▶ Vigil stack without Docker — MarketEdge API with ${broken ? `VIGIL_DEMO_BREAK=${broken}` : 'nothing broken'}\n`));

// What "pages": every stand-in request and mail, printed as the receiving service would show it.
let pages = 0;
let firstPage: () => void = () => undefined;
const paged = new Promise<void>((resolve) => (firstPage = resolve));
function onRequest(r: WebhookRequest): void {
  const b = r.body ?? {};
  if (r.path === '/pagerduty') {
    if (b.event_action === 'trigger') pages++, firstPage();
    say(red(bold(`  ■ PagerDuty ${b.event_action} (${b.payload?.severity ?? '-'}): ${b.payload?.summary ?? ''}`)));
  } else if (r.path.startsWith('/slack/')) {
    const a = b.attachments?.[0] ?? {};
    if (String(a.title ?? '').includes('FIRING')) pages++, firstPage();
    say(bold(`  ■ Slack ${b.channel ?? r.path.slice(7)}: ${a.title ?? b.text ?? ''}`));
  } else if (r.path === '/deadmansswitch') {
    say(`  · dead man's switch: watchdog alive`);
  } else if (r.path === '/incident-log') {
    for (const a of b.alerts ?? []) say(`  · incident log: ${a.status} ${a.labels?.alertname} ${a.labels?.service ?? ''} ${a.labels?.component ?? ''} (${a.labels?.severity})`);
  }
}
function onMail(m: Mail): void {
  say(bold(`  ■ email to ${m.to.join(', ')}: ${m.headers.subject ?? ''}`));
}

const hooks = await startStandIns();
cleanups.push(() => hooks.stop());
const smtp = await startSmtpSink();
cleanups.push(() => smtp.stop());
// Print as they come: the stand-ins record into arrays; poll them (cheap, 4 Hz).
let seenReq = 0;
let seenMail = 0;
setInterval(() => {
  while (seenReq < hooks.received.length) onRequest(hooks.received[seenReq++]!);
  while (seenMail < smtp.mails.length) onMail(smtp.mails[seenMail++]!);
}, 250).unref();

step('Alertmanager with alertmanager/alertmanager.yml (receivers redirected to the local stand-ins)');
const amConfig = await localAlertmanagerConfig({ standInsUrl: hooks.url, smtpPort: smtp.port });
cleanups.push(() => amConfig.cleanup());
const am = await startAlertmanager({ config: amConfig.config });
cleanups.push(() => am.stop());
step('Prometheus with prometheus/rules');
const prom = await startPrometheus(localPrometheusOptions({ alertmanagerUrl: am.url }));
cleanups.push(() => prom.stop());
step('the OpenTelemetry Collector with collector-config.yaml');
const collector = await startCollector({ remoteWriteUrl: prom.remoteWriteUrl });
cleanups.push(() => collector.stop());

step('the evaluator on the Prometheus source');
const evaluator = await startPrometheusEvaluator({
  prometheusUrl: prom.url,
  alertmanagerUrl: am.url,
  otlpMetricsUrl: collector.otlpMetricsUrl,
  pollInterval: '2s',
  exportIntervalMs: 5000,
  logLevel: 'warn',
});
evaluator.proc.stderr!.pipe(process.stderr); // its warnings and errors, as they come
cleanups.push(() => evaluator.stop());

step(`the example API${broken ? ` (VIGIL_DEMO_BREAK=${broken})` : ''}`);
const app: ExampleApp = await startExample({
  VIGIL_DEMO_BREAK: broken,
  VIGIL_LOG_LEVEL: 'silent',
  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: collector.otlpMetricsUrl,
  OTEL_METRIC_EXPORT_INTERVAL: '5000',
  OTEL_TRACES_EXPORTER: 'none',
});
cleanups.push(() => app.stop());
const serving = await Promise.race([app.serving(20_000).then(() => true), app.exited.then(() => false)]);

say(bold('\nRunning (Ctrl-C stops everything):\n'));
say(`  example API    ${serving ? app.url : `exited: it refused to start (fail-fast) — as Vigil intends with ${broken} broken`}`);
say(`  Prometheus     ${prom.url}/alerts          rules from prometheus/rules`);
say(`  Alertmanager   ${am.url}/#/alerts         routing from alertmanager/alertmanager.yml`);
say(`  evaluator      ${evaluator.url}/           status page`);
say(`  Collector      ${collector.otlpUrl}   OTLP/HTTP in, health ${collector.healthUrl}`);
say(`  Grafana        not on this machine: grafana/dashboards/*.json with docker compose (docs/stack.md)`);
say(bold('\nWhat reaches PagerDuty, Slack, email and the webhooks:\n'));

if (values.once) {
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 90_000).unref());
  const outcome = await Promise.race([paged.then(() => 'paged' as const), timeout]);
  await new Promise((r) => setTimeout(r, 1_000)); // let the rest of the burst print
  if (outcome === 'paged') say(bold(`\n  first page ${((performance.now() - app.spawnedAt) / 1000).toFixed(1)} s after the API was started; ${pages} so far`));
  else say(red(bold('\n  no page within 90 s')));
  await stop(outcome === 'paged' ? 0 : 1);
}
