/**
 * Two evaluator replicas (the CLI, so one can be SIGKILLed) on the same points,
 * posting to the REAL Alertmanager, which routes to a webhook receiver. The
 * example app's OTLP goes through a fan-out (what the Collector does with two
 * exporters) to both replicas.
 *
 * One replica is SIGKILLed 8 s after the page and restarted at once WITHOUT a
 * state file. It takes the alert's start and level from Alertmanager (hints)
 * and both escalate at firedAt + 20 s: one page per level, the level-0 label
 * set resolved once and never re-opened by the restarted replica's resends.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { otlpJsonEvery1s, spawnNode, startExample, type ExampleApp } from '../helpers/example.js';
import { exampleEvaluatorConfig } from '../helpers/evaluator.js';
import { freePort, startAlertmanager, startWebhookReceiver, webhookAlertmanagerConfig, type Alertmanager, type WebhookReceiver } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';
import { EVALUATOR_CLI } from '../helpers/stack.js';

interface AmAlert { status: string; labels: Record<string, string>; startsAt: string; endsAt: string }

/** The evaluator CLI; resolves once it logs that it listens. */
async function startCli(configFile: string, port: number) {
  const { proc, output, exited } = spawnNode(EVALUATOR_CLI, ['--config', configFile, '--port', String(port)], { OTEL_SDK_DISABLED: 'true', VIGIL_LOG_LEVEL: 'info' });
  await waitFor(() => (/listening on/.test(output()) ? true : proc.exitCode !== null ? Promise.reject(new Error(`exited ${proc.exitCode}: ${output()}`)) : undefined), {
    timeoutMs: 20_000,
    intervalMs: 20,
    what: `the evaluator CLI to listen on ${port}`,
  });
  return {
    url: `http://127.0.0.1:${port}`,
    output,
    async kill(signal: NodeJS.Signals) {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
  };
}

/** Every OTLP request to each target (as the Collector's fan-out to two exporters); a target that is down misses it. */
async function fanOut(targets: string[]): Promise<{ url: string; stop(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      void Promise.allSettled(targets.map((t) => fetch(`${t}${req.url}`, { method: 'POST', headers: { 'content-type': req.headers['content-type'] ?? 'application/json' }, body, signal: AbortSignal.timeout(5_000) }))).then(() =>
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}'),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('e2e: two evaluator replicas, one SIGKILLed and restarted without a state file, on the real Alertmanager', function () {
  this.timeout(150_000);
  let dir: string;
  let hook: WebhookReceiver;
  let am: Alertmanager;
  const stops: Array<() => Promise<unknown>> = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'vigil-evaluator-replicas-'));
    hook = await startWebhookReceiver();
    am = await startAlertmanager({ config: webhookAlertmanagerConfig(`${hook.url}/am`) });
  });
  after(async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
    await am?.stop();
    await hook?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('no level re-opened after the escalation: one page per level, one resolve of level 0, Alertmanager holds level 1 only', async () => {
    const base = await exampleEvaluatorConfig({});
    const file = path.join(dir, 'replica.yaml');
    await writeFile(
      file,
      JSON.stringify({
        ...base,
        silentAfter: '10s',
        staleAfter: '5s',
        source: { type: 'otlp' },
        policies: { ...base.policies, high: { ...base.policies.high!, escalation: [{ after: '20s', channels: ['pagerduty'] }] } },
        // A resend every 2 s: a replica posting a stale level would re-open it within seconds.
        notifiers: { alertmanager: { type: 'alertmanager', urls: [am.url], resend: '2s' } },
      }),
    );
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await startCli(file, portA);
    stops.push(() => a.kill('SIGKILL'));
    let b = await startCli(file, portB);
    stops.push(() => b.kill('SIGKILL'));
    const fan = await fanOut([a.url, b.url]);
    stops.push(() => fan.stop());
    const app: ExampleApp = await startExample({ ...otlpJsonEvery1s(`${fan.url}/v1/metrics`), VIGIL_DEMO_BREAK: 'user_management' });
    stops.push(() => app.stop());

    const alerts = () => hook.received.flatMap((r) => (r.body as { alerts: AmAlert[] }).alerts).filter((x) => x.labels.component === 'user_management');
    const at = (status: string, escalation: string) => alerts().filter((x) => x.status === status && x.labels.escalation === escalation);
    await waitFor(() => at('firing', '0').length > 0, { timeoutMs: 30_000, intervalMs: 50, what: 'the level-0 page' });
    const firedAt = Date.parse(at('firing', '0')[0]!.startsAt);

    await sleep(Math.max(0, firedAt + 8_000 - Date.now()));
    await b.kill('SIGKILL');
    b = await startCli(file, portB);
    const restartedAt = Date.now();
    const hints = await waitFor(async () => ((await (await fetch(`${b.url}/api/v1/status`)).json()) as { alerts: Array<{ component: string; firedAt?: string; escalationLevel: number }> }).alerts.find((x) => x.component === 'user_management' && x.firedAt), {
      timeoutMs: 10_000,
      what: 'the restarted replica firing the alert',
    });
    // The start and level it took over: Alertmanager's, not its own restart clock.
    expect([hints.firedAt, hints.escalationLevel]).to.deep.equal([new Date(firedAt).toISOString(), 0]);
    expect(b.output()).to.match(/held by Alertmanager: a failing group here takes their start and escalation level/);

    await waitFor(() => at('firing', '1').length > 0, { timeoutMs: 30_000, intervalMs: 50, what: 'the escalated page' });
    const escalatedAt = Date.now();
    // Several resends (2 s) of both replicas and Alertmanager group intervals (1 s) after the escalation.
    await sleep(12_000);
    console.log(
      `      fired at 0 s, replica B SIGKILLed at 8 s and listening again at ${((restartedAt - firedAt) / 1000).toFixed(1)} s; escalation page at ${((escalatedAt - firedAt) / 1000).toFixed(1)} s; webhook: ${alerts().map((x) => `${x.status} esc${x.labels.escalation}`).join(', ')}`,
    );
    expect(at('firing', '0'), 'one level-0 page, none re-opened').to.have.length(1);
    expect(at('resolved', '0'), 'level 0 resolved once, on the escalation').to.have.length(1);
    expect(at('firing', '1')).to.have.length(1);
    expect(at('firing', '1')[0]!.startsAt).to.equal(new Date(firedAt).toISOString());
    const held = ((await am.alerts()) as Array<AmAlert & { status: { state: string } }>).filter((x) => x.labels.component === 'user_management' && x.status.state === 'active');
    expect(held.map((x) => x.labels.escalation)).to.deep.equal(['1']);
  });
});
