/**
 * Instance lifecycle, with real processes: the example API spawned as a child
 * (SIGTERM → Vigil's drain, "stopped" exported; SIGKILL → nothing exported),
 * the evaluator with a webhook receiver on 127.0.0.1, and once through the
 * real Collector → Prometheus → Prometheus source.
 *
 * - a clean stop of a healthy instance pages nothing, past silentAfter;
 * - a clean stop of an instance with a firing alert resolves it, no silence page;
 * - a SIGKILLed instance pages once (silent), resolved when the service is back;
 * - a service configured `alwaysRunning` pages "no running instance" once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { otlpJsonEvery1s, startExample, type ExampleApp } from '../helpers/example.js';
import { exampleEvaluatorConfig, startEvaluator, type RunningEvaluator } from '../helpers/evaluator.js';
import { startCollector, startPrometheus, startWebhookReceiver, type WebhookReceiver } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';
import type { EvaluatorConfigInput } from '../../packages/evaluator/src/config/schema.js';

const SERVICE = 'marketedge-api';
const SILENT_AFTER_MS = 4000;
/** Past silentAfter, with room for an evaluation interval and a slow machine. */
const QUIET_MS = SILENT_AFTER_MS + 4000;

interface HookPayload {
  status: string;
  alert: { id: string; labels: Record<string, string>; annotations: Record<string, string> };
}

describe('e2e: instance lifecycle (clean stop, killed instance, always-running service)', function () {
  this.timeout(120_000);
  let hook: WebhookReceiver;
  const apps: ExampleApp[] = [];
  const stops: Array<() => Promise<unknown>> = [];

  before(async () => {
    hook = await startWebhookReceiver();
  });
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.stop();
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
    hook.clear();
  });
  after(async () => hook?.stop());

  /** Every webhook page so far, as `status id`, in arrival order. */
  const pages = () => hook.received.map((r) => `${(r.body as HookPayload).status} ${(r.body as HookPayload).alert.id}`);

  async function evaluator(overrides: Partial<EvaluatorConfigInput> = {}): Promise<RunningEvaluator> {
    const ev = await startEvaluator(
      await exampleEvaluatorConfig({
        source: { type: 'otlp' },
        silentAfter: `${SILENT_AFTER_MS}ms`,
        staleAfter: '3s',
        notifiers: { hook: { type: 'webhook', url: `${hook.url}/direct`, retry: { initial: '200ms', max: '1s' } } },
        ...overrides,
      }),
    );
    stops.push(() => ev.stop());
    return ev;
  }

  async function app(env: NodeJS.ProcessEnv): Promise<ExampleApp> {
    const a = await startExample(env);
    apps.push(a);
    await a.serving();
    return a;
  }

  /** The instance as the evaluator's status shows it, once it is there and `ok` says so. */
  function instance(ev: RunningEvaluator, id: string | undefined, ok: (i: { live: boolean; stopped?: boolean }) => boolean, what: string) {
    return waitFor(
      () => {
        const svc = ev.evaluator.status().services.find((s) => s.service === SERVICE);
        const i = svc?.instances.find((x) => id === undefined || x.instance === id);
        return i && ok(i) ? { svc, i } : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100, what },
    );
  }

  /** The instance id of the only instance the evaluator has heard from, once live. */
  async function liveInstance(ev: RunningEvaluator): Promise<string> {
    return (await instance(ev, undefined, (i) => i.live, `${SERVICE} live in the evaluator`)).i.instance;
  }

  /** SIGTERM: Vigil drains (example: drainDelay 1s), exports "stopped", and the process ends by the signal. */
  async function cleanStop(a: ExampleApp): Promise<void> {
    a.proc.kill('SIGTERM');
    expect(await a.exited, a.output()).to.deep.equal({ code: null, signal: 'SIGTERM' });
  }

  it('a clean stop (SIGTERM) of a healthy instance: retired as stopped, no page past silentAfter', async () => {
    const ev = await evaluator();
    const a = await app(otlpJsonEvery1s(ev.otlpMetricsUrl));
    const id = await liveInstance(ev);
    await cleanStop(a);
    const { svc } = await instance(ev, id, (i) => i.stopped === true, 'the instance stopped in the evaluator');
    await sleep(QUIET_MS);
    expect(pages(), 'no page for a clean stop').to.deep.equal([]);
    const after = ev.evaluator.status();
    expect(after.services.find((s) => s.service === SERVICE)).to.deep.include({ silent: false });
    expect(svc!.instances[0]).to.deep.include({ live: false, stopped: true });
    expect(after.alerts).to.deep.equal([]);
  });

  it('a clean stop of an instance with a firing alert: the alert resolves, no silence page', async () => {
    const ev = await evaluator();
    const a = await app({ ...otlpJsonEvery1s(ev.otlpMetricsUrl), VIGIL_DEMO_BREAK: 'user_management' });
    await hook.waitFor((r) => (r.body as HookPayload).status === 'firing', 20_000);
    expect(pages()).to.deep.equal([`firing ${SERVICE}|user_management|0`]);
    await cleanStop(a);
    await hook.waitFor((r) => (r.body as HookPayload).status === 'resolved', 10_000);
    await sleep(QUIET_MS);
    expect(pages()).to.deep.equal([`firing ${SERVICE}|user_management|0`, `resolved ${SERVICE}|user_management|0`]);
    expect(ev.evaluator.status().alerts).to.deep.equal([]);
  });

  it('SIGKILL: one silence page at silentAfter, replacing the killed instance\'s own alert; resolved when the service is back; no second page', async () => {
    const ev = await evaluator();
    const broken = await app({ ...otlpJsonEvery1s(ev.otlpMetricsUrl), VIGIL_DEMO_BREAK: 'user_management' });
    await hook.waitFor((r) => (r.body as HookPayload).status === 'firing', 20_000);
    broken.proc.kill('SIGKILL');
    await broken.exited;
    const killedAt = Date.now();
    const silent = await hook.waitFor((r) => (r.body as HookPayload).alert.id === `${SERVICE}||0`, 20_000);
    const pagedAfter = Date.now() - killedAt;
    expect((silent.body as HookPayload).status).to.equal('firing');
    expect((silent.body as HookPayload).alert.labels).to.include({ rule: 'telemetry-silent', component: '(service)' });
    // The killed instance's own alert became the one silence alert: resolved, not left dangling.
    await waitFor(() => pages().includes(`resolved ${SERVICE}|user_management|0`), { timeoutMs: 5000, intervalMs: 50, what: 'the user_management alert resolved' });
    await sleep(3000);
    expect(pages().filter((p) => p.startsWith('firing')), 'exactly one page after the kill').to.deep.equal([`firing ${SERVICE}|user_management|0`, `firing ${SERVICE}||0`]);

    // The service comes back (a new instance, healthy): the silence alert resolves, and nothing else is paged.
    await app(otlpJsonEvery1s(ev.otlpMetricsUrl));
    await hook.waitFor((r) => (r.body as HookPayload).status === 'resolved' && (r.body as HookPayload).alert.id === `${SERVICE}||0`, 20_000);
    await sleep(QUIET_MS);
    expect([...pages()].sort()).to.deep.equal(
      [`firing ${SERVICE}|user_management|0`, `resolved ${SERVICE}|user_management|0`, `firing ${SERVICE}||0`, `resolved ${SERVICE}||0`].sort(),
    );
    console.log(`      SIGKILL → silence page after ${(pagedAfter / 1000).toFixed(1)} s (silentAfter ${SILENT_AFTER_MS / 1000} s)`);
  });

  it('a service configured alwaysRunning, its last instance stopped cleanly: one "no running instance" page', async () => {
    const ev = await evaluator({ services: { [SERVICE]: { alwaysRunning: true } } });
    const a = await app(otlpJsonEvery1s(ev.otlpMetricsUrl));
    await liveInstance(ev);
    await cleanStop(a);
    const page = await hook.waitFor((r) => (r.body as HookPayload).status === 'firing', 10_000);
    expect((page.body as HookPayload).alert.id).to.equal(`${SERVICE}||0`);
    expect((page.body as HookPayload).alert.annotations.summary).to.equal(`${SERVICE} has no running instance: its last instance stopped cleanly, and it must always run`);
    await sleep(QUIET_MS);
    expect(pages()).to.deep.equal([`firing ${SERVICE}||0`]);
    expect(ev.evaluator.status().services.find((s) => s.service === SERVICE)).to.deep.include({ silent: false, noInstance: true });
  });

  it('through the Collector, Prometheus and the Prometheus source: a clean stop resolves the firing alert and pages no silence', async () => {
    const prom = await startPrometheus();
    stops.push(() => prom.stop());
    const collector = await startCollector({ remoteWriteUrl: prom.remoteWriteUrl });
    stops.push(() => collector.stop());
    const ev = await evaluator({
      source: { type: 'prometheus', url: prom.url, interval: '1s', timeout: '1s', selector: 'deployment_environment_name="e2e-lifecycle"' },
      silentAfter: '6s',
      staleAfter: '4s',
    });
    const a = await app({
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: collector.otlpMetricsUrl,
      OTEL_METRIC_EXPORT_INTERVAL: '1000',
      OTEL_TRACES_EXPORTER: 'none',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e-lifecycle',
      VIGIL_DEMO_BREAK: 'user_management',
    });
    await hook.waitFor((r) => (r.body as HookPayload).status === 'firing', 30_000);
    const id = await liveInstance(ev);
    await cleanStop(a);
    await instance(ev, id, (i) => i.stopped === true, 'the instance stopped, as read from Prometheus');
    await hook.waitFor((r) => (r.body as HookPayload).status === 'resolved', 10_000);
    await sleep(6000 + 4000);
    expect(pages()).to.deep.equal([`firing ${SERVICE}|user_management|0`, `resolved ${SERVICE}|user_management|0`]);
  });
});
