/**
 * The evaluator loses nothing, with real processes: the evaluator CLI
 * (packages/evaluator/dist/cli.js, so that it can be SIGKILLed), the example API,
 * the real Alertmanager / Prometheus / OpenTelemetry Collector of the rig, a webhook receiver.
 *
 * a. Alertmanager down for a minute while alerts are raised: each reaches the
 *    webhook behind Alertmanager once it is back, once, as the same incident.
 * b. The evaluator SIGKILLed mid-incident and restarted on its state file: no
 *    second page, the escalation at firedAt + after, resolve still works.
 * c. Prometheus down under a running evaluator (prometheus source): /ready 503
 *    and the status say why; nothing resolved or raised by the outage, also not
 *    the moment it returns; the source up again when Prometheus is back.
 *
 * What is already covered elsewhere and not repeated: the source's own down/up
 * health against a real and a fake Prometheus (packages/evaluator/test/
 * sources-prometheus.test.ts), no silence page while Prometheus is unreachable
 * and /ready 503 in-process (packages/evaluator/test/evaluator.test.ts), the
 * Prometheus-side dead man's switch (watchdog rule → Alertmanager → the
 * deadmansswitch receiver, test/e2e/stack.test.ts), a late Alertmanager at the
 * notifier level (packages/evaluator/test/notifiers-alertmanager.test.ts).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { otlpJsonEvery1s, spawnNode, startExample, type ExampleApp, type NodeChild } from '../helpers/example.js';
import { exampleEvaluatorConfig } from '../helpers/evaluator.js';
import {
  freePort,
  startAlertmanager,
  startPrometheus,
  startCollector,
  startWebhookReceiver,
  webhookAlertmanagerConfig,
  type Alertmanager,
  type Prometheus,
  type Collector,
  type WebhookReceiver,
} from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';
import type { EvaluatorConfigInput } from '../../packages/evaluator/src/config/schema.js';
import { EVALUATOR_CLI } from '../helpers/stack.js';


interface Cli extends NodeChild {
  url: string;
  /** performance.now() when it answered. */
  listeningAt: number;
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** The evaluator CLI on `configFile`, on `port`; resolves once it logs that it listens. */
async function startCli(configFile: string, port: number): Promise<Cli> {
  const { proc, spawnedAt, output, exited } = spawnNode(EVALUATOR_CLI, ['--config', configFile, '--port', String(port)], { OTEL_SDK_DISABLED: 'true', VIGIL_LOG_LEVEL: 'info' });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(() => (/listening on/.test(output()) ? true : proc.exitCode !== null ? Promise.reject(new Error(`exited ${proc.exitCode}`)) : undefined), {
    timeoutMs: 20_000,
    intervalMs: 20,
    what: `the evaluator CLI to listen on ${url}; its output:\n${output()}`,
  });
  return {
    proc,
    url,
    spawnedAt,
    listeningAt: performance.now(),
    output,
    exited,
    async kill(signal) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
  };
}

interface Status {
  source: { type: string; up?: boolean; lastError?: string; consecutiveFailures?: number };
  alerts: Array<{ key: string; component: string; state: string; firedAt?: string; escalationLevel: number; rule: string }>;
  notifiers: Array<{ name: string; queued: number; sent: number; failed: number; lastError?: string }>;
  state?: { file: string; restored?: { alerts: number; savedAt: string }; warmingUp: boolean };
}
const status = async (cli: Cli) => (await (await fetch(`${cli.url}/api/v1/status`)).json()) as Status;

interface AmAlert { status: string; labels: Record<string, string>; startsAt: string }
interface HookPayload { status: string; alert: { id: string; labels: Record<string, string>; startsAt: string } }

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

describe('e2e: the evaluator loses nothing (Alertmanager down, evaluator restarted, Prometheus down)', function () {
  this.timeout(150_000);
  let dir: string;
  let hook: WebhookReceiver;
  const apps: ExampleApp[] = [];
  const clis: Cli[] = [];
  const stops: Array<() => Promise<unknown>> = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'vigil-evaluator-faults-'));
    hook = await startWebhookReceiver();
  });
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.stop();
    for (const c of clis.splice(0)) await c.kill('SIGKILL');
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
    hook.clear();
  });
  after(async () => {
    await hook?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function writeConfig(name: string, overrides: Partial<EvaluatorConfigInput>): Promise<string> {
    const file = path.join(dir, `${name}.yaml`);
    await writeFile(file, JSON.stringify(await exampleEvaluatorConfig({ silentAfter: '4s', staleAfter: '3s', ...overrides }), null, 2));
    return file;
  }

  /** The example API exporting OTLP/HTTP JSON to the evaluator every second. */
  async function app(evaluatorUrl: string, env: NodeJS.ProcessEnv): Promise<ExampleApp> {
    const a = await startExample({ ...otlpJsonEvery1s(`${evaluatorUrl}/v1/metrics`), ...env });
    apps.push(a);
    return a;
  }

  it('a. Alertmanager down for a minute: every alert raised meanwhile reaches its receivers once it is back, once each, as the same incident', async () => {
    const amPort = await freePort(); // reserved for Alertmanager, which is not started yet
    const port = await freePort();
    const config = await writeConfig('am-down', {
      source: { type: 'otlp' },
      // The notifier's default retry (500 ms doubling to 2 s): the figure docs/operations.md quotes.
      notifiers: { alertmanager: { type: 'alertmanager', urls: [`http://127.0.0.1:${amPort}`], resend: '10s' } },
    });
    const cli = await startCli(config, port);
    clis.push(cli);

    // The first alert, while nothing listens on the Alertmanager port.
    await app(cli.url, { VIGIL_DEMO_BREAK: 'user_management' });
    const first = await waitFor(async () => (await status(cli)).alerts.find((a) => a.component === 'user_management' && a.state === 'firing'), { timeoutMs: 20_000, what: 'the user_management alert firing' });
    const outageStart = performance.now();
    // A second one during the outage: another instance with another router broken.
    await app(cli.url, { VIGIL_DEMO_BREAK: 'admin' });
    const second = await waitFor(async () => (await status(cli)).alerts.find((a) => a.component === 'admin' && a.state === 'firing'), { timeoutMs: 20_000, what: 'the admin alert firing' });
    const during = await waitFor(async () => {
      const n = (await status(cli)).notifiers[0]!;
      return n.failed > 0 && n.queued > 0 ? n : undefined;
    }, { timeoutMs: 10_000, what: 'the Alertmanager notifier failing' });
    expect(during.lastError).to.match(/ECONNREFUSED/);
    expect(during.sent).to.equal(0);

    await sleep(Math.max(0, 60_000 - (performance.now() - outageStart)));
    const endOfOutage = (await status(cli)).notifiers[0]!;
    expect(endOfOutage.sent).to.equal(0);
    expect(endOfOutage.queued).to.be.at.least(2); // both alerts (a resend may queue behind the one being retried)
    const am: Alertmanager = await startAlertmanager({ port: amPort, config: webhookAlertmanagerConfig(`${hook.url}/am`) });
    stops.push(() => am.stop());
    const amUp = performance.now();
    const firing = () => hook.received.flatMap((r) => (r.body as { alerts: AmAlert[] }).alerts).filter((a) => a.status === 'firing');
    const delays: Record<string, number> = {};
    await waitFor(() => {
      for (const a of firing()) delays[a.labels.component!] ??= performance.now() - amUp;
      return delays.user_management !== undefined && delays.admin !== undefined;
    }, { timeoutMs: 20_000, intervalMs: 50, what: 'both alerts at the webhook behind Alertmanager' });
    console.log(
      `      Alertmanager down ${seconds(amUp - outageStart)} (from the first alert firing to Alertmanager ready); after that: user_management at the webhook in ${seconds(delays.user_management!)}, admin in ${seconds(delays.admin!)}`,
    );
    console.log(`      while it was down: ${endOfOutage.failed} failed delivery attempts (default retry: 500 ms doubling to 2 s), ${endOfOutage.queued} posts queued for the 2 alerts (coalesced per label set), 0 sent`);

    // Past a resend (10 s) and several Alertmanager group intervals: still exactly one notification per alert.
    await sleep(12_000);
    expect(firing().map((a) => a.labels.component).sort()).to.deep.equal(['admin', 'user_management']);
    expect(hook.received.flatMap((r) => (r.body as { alerts: AmAlert[] }).alerts).filter((a) => a.status !== 'firing')).to.deep.equal([]);
    // The same incident: Alertmanager holds each alert once, with the evaluator's original startsAt.
    const originalStart = (a: AmAlert) => `${a.labels.component} ${new Date(Date.parse(a.startsAt)).toISOString()}`;
    const expected = [`admin ${second.firedAt}`, `user_management ${first.firedAt}`];
    expect(((await am.alerts()) as AmAlert[]).map(originalStart).sort()).to.deep.equal(expected);
    expect(firing().map(originalStart).sort()).to.deep.equal(expected);
  });

  it('b. the evaluator SIGKILLed mid-incident: no second page after the restart, escalation at firedAt + 20 s, resolve still works', async () => {
    const port = await freePort();
    const base = await exampleEvaluatorConfig({});
    const config = await writeConfig('restart', {
      source: { type: 'otlp' },
      policies: { ...base.policies, high: { ...base.policies.high!, escalation: [{ after: '20s', channels: ['pagerduty'] }] } },
      notifiers: { hook: { type: 'webhook', url: `${hook.url}/direct`, retry: { initial: '200ms', max: '1s' } } },
      state: { file: path.join(dir, 'restart-state.json') },
    });
    let cli = await startCli(config, port);
    clis.push(cli);
    const broken = await app(cli.url, { VIGIL_DEMO_BREAK: 'user_management' });
    const pages = (status: string, escalation: string) =>
      hook.received.filter((r) => {
        const p = r.body as HookPayload;
        return p.status === status && p.alert.labels.component === 'user_management' && p.alert.labels.escalation === escalation;
      });
    await waitFor(() => pages('firing', '0').length > 0, { timeoutMs: 20_000, intervalMs: 50, what: 'the level-0 page' });
    const firedAt = Date.parse((pages('firing', '0')[0]!.body as HookPayload).alert.startsAt);

    await sleep(Math.max(0, firedAt + 8000 - Date.now()));
    await cli.kill('SIGKILL');
    const killedAt = Date.now();
    cli = await startCli(config, port);
    clis.push(cli);
    const restartedAt = Date.now();
    const after = await status(cli);
    expect(after.state?.restored?.alerts).to.equal(1);
    expect(after.alerts.map((a) => `${a.component} ${a.state} ${a.firedAt} ${a.escalationLevel}`)).to.deep.equal([`user_management firing ${new Date(firedAt).toISOString()} 0`]);

    await waitFor(() => pages('firing', '1').length > 0, { timeoutMs: 30_000, intervalMs: 50, what: 'the escalated page' });
    const escalatedAt = Date.now();
    console.log(
      `      fired at 0 s, SIGKILL at ${seconds(killedAt - firedAt)}, listening again at ${seconds(restartedAt - firedAt)} (${seconds(restartedAt - killedAt)} after the kill); escalation page at ${seconds(escalatedAt - firedAt)} (configured: 20 s after firing; a restarted clock would have said ${seconds(restartedAt - firedAt + 20_000)})`,
    );
    expect(escalatedAt - firedAt).to.be.within(19_000, 24_000);
    expect(pages('firing', '0'), 'one level-0 page, none after the restart').to.have.length(1);
    expect(pages('resolved', '0'), 'level 0 resolved in favour of level 1').to.have.length(1);
    expect(pages('firing', '1')).to.have.length(1);
    expect((pages('firing', '1')[0]!.body as HookPayload).alert.startsAt).to.equal(new Date(firedAt).toISOString());

    // The fix, after the restart: a healthy instance replaces the broken one → resolved, with the escalated labels.
    await broken.stop();
    await app(cli.url, {});
    await waitFor(() => pages('resolved', '1').length > 0, { timeoutMs: 20_000, intervalMs: 100, what: 'the resolved notification after the restart' });
    expect(hook.received.map((r) => `${(r.body as HookPayload).status} ${(r.body as HookPayload).alert.id}`)).to.deep.equal([
      'firing marketedge-api|user_management|0',
      'resolved marketedge-api|user_management|0',
      'firing marketedge-api|user_management|1',
      'resolved marketedge-api|user_management|1',
    ]);
  });

  it('c. Prometheus down under a running evaluator: 503 with the reason, nothing resolved or raised by the outage; up again when it returns', async () => {
    let prom: Prometheus = await startPrometheus();
    stops.push(() => prom.stop());
    const collector: Collector = await startCollector({ remoteWriteUrl: prom.remoteWriteUrl });
    stops.push(() => collector.stop());
    const promPort = Number(new URL(prom.url).port);
    const port = await freePort();
    const config = await writeConfig('prom-down', {
      source: { type: 'prometheus', url: prom.url, interval: '1s', timeout: '1s', selector: 'deployment_environment_name="e2e-faults"' },
      silentAfter: '6s',
      staleAfter: '4s',
      notifiers: { hook: { type: 'webhook', url: `${hook.url}/direct`, retry: { initial: '200ms', max: '1s' } } },
    });
    const cli = await startCli(config, port);
    clis.push(cli);
    const viaCollector = (env: NodeJS.ProcessEnv) =>
      startExample({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: collector.otlpMetricsUrl, OTEL_METRIC_EXPORT_INTERVAL: '1000', OTEL_TRACES_EXPORTER: 'none', ...env }).then((a) => (apps.push(a), a));
    // One alert from a broken router, one silence alert from a service that died.
    await viaCollector({ OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e-faults', VIGIL_DEMO_BREAK: 'user_management' });
    const doomed = await viaCollector({ OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e-faults,service.name=billing-api' });
    await waitFor(async () => (await status(cli)).alerts.some((a) => a.component === 'user_management' && a.state === 'firing'), { timeoutMs: 30_000, what: 'the user_management alert via Prometheus' });
    await waitFor(async () => ((await (await fetch(`${cli.url}/api/v1/status`)).json()) as { services: Array<{ service: string }> }).services.some((s) => s.service === 'billing-api'), { timeoutMs: 20_000, what: 'billing-api seen' });
    await doomed.stop();
    await waitFor(async () => (await status(cli)).alerts.some((a) => a.key === 'billing-api|' && a.state === 'firing'), { timeoutMs: 30_000, what: 'the billing-api silence alert' });
    // The status API says "firing" as soon as the alert opens; its webhook delivery can still be in flight.
    const delivered = () => hook.received.map((r) => `${(r.body as HookPayload).status} ${(r.body as HookPayload).alert.id}`).sort();
    await waitFor(() => delivered().length >= 2, { timeoutMs: 10_000, intervalMs: 50, what: 'both pages at the webhook' });
    const before = delivered();
    expect(before).to.deep.equal(['firing billing-api||0', 'firing marketedge-api|user_management|0']);

    await prom.stop();
    const downAt = performance.now();
    const ready = await waitFor(async () => {
      const r = await fetch(`${cli.url}/ready`);
      return r.status === 503 ? ((await r.json()) as { output: string }) : undefined;
    }, { timeoutMs: 10_000, what: '/ready 503' });
    const detectedMs = performance.now() - downAt;
    // The poll in flight when it stopped may say "socket hang up"; the next ones, that nothing listens.
    expect(ready.output).to.match(/^prometheus source down: \S/);
    await waitFor(async () => /^prometheus source down: .*ECONNREFUSED/.test(((await (await fetch(`${cli.url}/ready`)).json()) as { output?: string }).output ?? ''), { timeoutMs: 5000, what: '/ready naming ECONNREFUSED' });
    const s = await status(cli);
    expect(s.source).to.deep.include({ type: 'prometheus', up: false });
    expect(s.source.lastError).to.match(/ECONNREFUSED/);
    // /health is liveness: the process serves, whatever its source does.
    expect((await fetch(`${cli.url}/health`)).status).to.equal(200);

    // Down for longer than silentAfter (6 s): the live service would look silent, and the alerts unsupported.
    await sleep(12_000);
    prom = await startPrometheus({ port: promPort });
    const backAt = performance.now();
    await waitFor(async () => (await fetch(`${cli.url}/ready`)).status === 200, { timeoutMs: 15_000, what: '/ready 200 again' });
    const upAgainMs = performance.now() - backAt;
    expect((await status(cli)).source).to.deep.include({ up: true });
    // And for more than silentAfter after the return (the Collector re-sends into the new, empty Prometheus).
    await sleep(8_000);
    const final = await status(cli);
    expect(final.alerts.map((a) => `${a.key} ${a.state}`).sort()).to.deep.equal(['billing-api| firing', 'marketedge-api|user_management firing']);
    expect(hook.received.map((r) => `${(r.body as HookPayload).status} ${(r.body as HookPayload).alert.id}`).sort(), 'no page resolved or raised by the outage').to.deep.equal(before);
    console.log(
      `      Prometheus down ${seconds(backAt - downAt)}: /ready 503 after ${seconds(detectedMs)}, 200 again ${seconds(upAgainMs)} after it was back; pages during and ${seconds(performance.now() - backAt)} after: 0 (2 alerts held)`,
    );
  });
});
