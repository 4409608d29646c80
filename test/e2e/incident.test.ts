/**
 * One incident, one page: the whole life of an incident on the real stack, with the committed
 * routing, inhibition and timings (alertmanager/alertmanager.yml) and the committed rules
 * (prometheus/rules) — fault, page, escalation, an evaluator replica killed and restarted,
 * Alertmanager down for 60 s, fix, resolve — counting every message at every receiver (the
 * incident-log webhook, PagerDuty, Slack and e-mail stand-ins on 127.0.0.1).
 *
 * The fault: the example API's user_management router fails to import (the process runs
 * degraded). The evaluator's config is the example's, with two changes a team could make: the
 * user-management impact is critical (so the page takes the critical route: PagerDuty, Slack
 * #emergency, e-mail) and critical alerts escalate after 2 min instead of 5 min (so the test sees
 * an escalation within minutes). Nothing in alertmanager/ or prometheus/ is changed but the
 * secret files' directory and the stand-ins' addresses (test/helpers/stack.ts).
 *
 * The timeline, in each of the two runs:
 *   1. Alertmanager is stopped; the faulty app starts. The evaluator's alert waits in its
 *      delivery queue; Prometheus's rule alerts for the same fault fire too and cannot be sent.
 *   2. 60 s later Alertmanager starts again on the same port, with a fresh data directory.
 *      The evaluator's alert must reach it before, or within group_wait of, the rule alerts it
 *      inhibits (inhibit rule (c)): only the business-impact page goes out.
 *   3. (two replicas) one replica is SIGKILLed 20 s after the page and started again at once,
 *      without a state file.
 *   4. 2 min after the alert fired (during the outage) it escalates: exactly one more message per
 *      receiver.
 *   5. The fix: the faulty process stops (SIGTERM, as a deploy stops it) and a healthy one starts.
 *      Exactly one resolve per receiver; nothing fires after the fix, at any receiver, for at least
 *      the longest group_interval (2 min) after the evaluator's alert was resolved in Alertmanager.
 *
 * Run 1: one evaluator on its OTLP source, fed by the committed Collector (the compose stack).
 * Run 2: two replicas on the Prometheus source.
 * The counts and the delays are printed; the closing note of the issue quotes them.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { stringify } from 'yaml';
import { exampleEvaluatorConfig } from '../helpers/evaluator.js';
import { startExample, type ExampleApp, type NodeChild } from '../helpers/example.js';
import { freePort, REPO_ROOT, startAlertmanager, startCollector, startPrometheus, type Alertmanager, type Collector, type Prometheus, type WebhookRequest } from '../helpers/rig.js';
import { localAlertmanagerConfig, localPrometheusOptions, spawnEvaluatorCli, startSmtpSink, startStandIns, type LocalAlertmanagerConfig, type Mail, type SmtpSink, type StandIns } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const EXAMPLE_DIR = path.join(REPO_ROOT, 'examples/marketedge-api');
const SERVICE = 'marketedge-api';
const COMPONENT = 'user_management';
/** The longest group_interval of a route these alerts can take (severity="high": 2m), and a margin. */
const QUIET_AFTER_RESOLVE_MS = 130_000;
const OUTAGE_MS = 60_000;

type Labels = Record<string, string>;
interface HookAlert {
  status: 'firing' | 'resolved';
  labels: Labels;
}

/** One notification as a receiver saw it, reduced to what the counts need. */
interface Message {
  receiver: 'incident-log' | 'pagerduty' | 'slack' | 'email';
  at: number;
  /** firing | resolved, as the notification says. */
  status: string;
  /** The alert names it is about. */
  alertnames: string[];
  /** The escalation levels of the firing VigilBusinessImpact alerts it carries ('' when it cannot say). */
  levels: string[];
  text: string;
}

interface EvaluatorReplica extends NodeChild {
  url: string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const ALERTNAME = /\b(Vigil[A-Z][A-Za-z]+)\b/g;

function fromWebhook(r: WebhookRequest): Message | undefined {
  const at = r.at ?? Date.now();
  const text = JSON.stringify(r.body);
  if (r.path === '/incident-log') {
    const alerts = (r.body?.alerts ?? []) as HookAlert[];
    // Route 1 sends the always-firing watchdog here too: a heartbeat, not a page.
    if (alerts.length && alerts.every((a) => a.labels.alertname === 'VigilWatchdog')) return undefined;
    return {
      receiver: 'incident-log',
      at,
      status: String(r.body?.status),
      alertnames: [...new Set(alerts.map((a) => a.labels.alertname!))],
      levels: alerts.filter((a) => a.status === 'firing' && a.labels.alertname === 'VigilBusinessImpact').map((a) => a.labels.escalation ?? ''),
      text,
    };
  }
  if (r.path === '/pagerduty') {
    const action = String(r.body?.event_action);
    return {
      receiver: 'pagerduty',
      at,
      status: action === 'resolve' ? 'resolved' : 'firing',
      alertnames: [String(r.body?.payload?.class ?? '')],
      // custom_details.escalation is a CommonLabel: empty when the group holds two levels.
      levels: [],
      text,
    };
  }
  if (r.path.startsWith('/slack/')) {
    const att = r.body?.attachments?.[0] ?? {};
    const title = String(att.title ?? '');
    const body = String(att.text ?? '');
    const firing = /^\[FIRING/.test(title.trim());
    return {
      receiver: 'slack',
      at,
      status: firing ? 'firing' : 'resolved',
      alertnames: [...new Set([...body.matchAll(ALERTNAME)].map((m) => m[1]!))],
      levels: firing ? [/ESCALATED, level (\d+)/.exec(body)?.[1] ?? '0'] : [],
      text: `${r.path} ${title} | ${body}`,
    };
  }
  return undefined; // the dead man's switch: not a page
}

function fromMail(m: Mail): Message {
  const subject = m.headers.subject ?? '';
  // The HTML body is quoted-printable: undo its soft line breaks and `=3D` before looking for names.
  const body = m.data.replace(/=\r?\n/g, '').replaceAll('=3D', '=');
  return {
    receiver: 'email',
    at: m.at,
    status: /^\[FIRING/.test(subject) ? 'firing' : 'resolved',
    alertnames: [...new Set([...body.matchAll(ALERTNAME)].map((x) => x[1]!))],
    levels: [],
    text: `${m.to.join(',')} ${subject}`,
  };
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

for (const run of [
  { name: 'one evaluator (OTLP source, through the Collector)', replicas: 1, source: 'otlp' as const },
  { name: 'two evaluator replicas (Prometheus source), one killed and restarted mid-incident', replicas: 2, source: 'prometheus' as const },
]) {
  describe(`e2e: one incident is one page — ${run.name}`, function () {
    this.timeout(900_000);

    let hooks: StandIns;
    let smtp: SmtpSink;
    let amConfig: LocalAlertmanagerConfig;
    let am: Alertmanager | undefined;
    let amPort: number;
    let prom: Prometheus;
    let collector: Collector;
    let configDir: string;
    const replicas: Array<EvaluatorReplica | undefined> = [];
    const ports: number[] = [];
    const apps: ExampleApp[] = [];
    const manifest = path.join(EXAMPLE_DIR, `.vigil.e2e-incident-${run.replicas}-${process.pid}.yaml`);
    /** Level-0 alert seen active in Alertmanager after the escalation (sampled every second). */
    const reopened: string[] = [];

    const appEnv = (breakRouter?: string) => ({
      VIGIL_MANIFEST: manifest,
      ...(breakRouter ? { VIGIL_DEMO_BREAK: breakRouter } : {}),
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: collector.otlpMetricsUrl,
      OTEL_METRIC_EXPORT_INTERVAL: '2000',
      OTEL_TRACES_EXPORTER: 'none',
    });

    async function startReplica(i: number): Promise<EvaluatorReplica> {
      const file = path.join(configDir, `evaluator-${i}.yaml`);
      const port = ports[i]!;
      const child = spawnEvaluatorCli(file, port, { otlpMetricsUrl: collector.otlpMetricsUrl, exportIntervalMs: 2000 });
      const url = `http://127.0.0.1:${port}`;
      await waitFor(async () => (await fetch(`${url}/health`).then((r) => r.ok).catch(() => false)) || undefined, {
        timeoutMs: 120_000,
        intervalMs: 200,
        what: `evaluator replica ${i} to answer on ${url}; output:\n${child.output()}`,
      });
      return {
        ...child,
        url,
        async kill(signal: NodeJS.Signals = 'SIGTERM') {
          if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill(signal);
          await child.exited;
        },
      };
    }

    /** Every notification received so far, in arrival order. */
    function messages(): Message[] {
      const out = [...hooks.received.map(fromWebhook).filter((m): m is Message => m !== undefined), ...smtp.mails.map(fromMail)];
      return out.sort((a, b) => a.at - b.at);
    }
    const ofIncident = (m: Message) => m.alertnames.includes('VigilBusinessImpact');
    const describeAll = () => messages().map((m) => `  ${new Date(m.at).toISOString()} ${m.receiver} ${m.status} [${m.alertnames}] levels=[${m.levels}] ${m.text.slice(0, 200)}`).join('\n');

    before(async function () {
      this.timeout(300_000);
      hooks = await startStandIns();
      smtp = await startSmtpSink();
      amConfig = await localAlertmanagerConfig({ standInsUrl: hooks.url, smtpPort: smtp.port });
      am = await startAlertmanager({ config: amConfig.config });
      amPort = Number(new URL(am.url).port);
      prom = await startPrometheus(localPrometheusOptions({ alertmanagerUrl: am.url }));
      for (let i = 0; i < run.replicas; i++) ports.push(await freePort());
      collector = await startCollector({
        remoteWriteUrl: prom.remoteWriteUrl,
        ...(run.source === 'otlp' ? { evaluatorUrl: `http://127.0.0.1:${ports[0]}/v1/metrics` } : {}),
      });
      const text = await readFile(path.join(EXAMPLE_DIR, 'vigil.yaml'), 'utf8');
      await writeFile(manifest, text.replace('endpoints: 30s', 'endpoints: 1s').replace('flows: 60s', 'flows: 2s'));

      configDir = await mkdtemp(path.join(tmpdir(), 'vigil-incident-'));
      const base = await exampleEvaluatorConfig({});
      const rules = (base.rules as any[]).map((r) =>
        r.name === 'user-management' ? { ...r, impact: { ...r.impact, level: 'critical', priority: 'P0' } } : r,
      );
      const policies = { ...(base.policies as any), critical: { ...(base.policies as any).critical, escalation: [{ after: '120s' }] } };
      const config = await exampleEvaluatorConfig({
        rules,
        policies,
        source: run.source === 'otlp' ? { type: 'otlp' } : { type: 'prometheus', url: prom.url, interval: '1s' },
        notifiers: { alertmanager: { type: 'alertmanager', urls: [am.url] } },
      });
      for (let i = 0; i < run.replicas; i++) await writeFile(path.join(configDir, `evaluator-${i}.yaml`), stringify(config));
      for (let i = 0; i < run.replicas; i++) replicas[i] = await startReplica(i);
    });

    after(async () => {
      for (const r of replicas) await r?.kill('SIGKILL');
      for (const app of apps) await app.stop();
      await collector?.stop();
      await prom?.stop();
      await am?.stop();
      await hooks?.stop();
      await smtp?.stop();
      await amConfig?.cleanup();
      await rm(manifest, { force: true });
      if (configDir) await rm(configDir, { recursive: true, force: true });
    });

    afterEach(async function () {
      if (this.currentTest?.state !== 'failed') return;
      console.log(`--- messages ---\n${describeAll()}`);
      console.log(`--- ALERTS in Prometheus ---\n${JSON.stringify(await prom.query('ALERTS').catch((e) => String(e))).slice(0, 3000)}`);
      console.log(`--- alerts in Alertmanager ---\n${JSON.stringify(await am?.alerts().catch((e) => String(e))).slice(0, 3000)}`);
      console.log(`--- alertmanager ---\n${am?.logs(30)}`);
      for (const [i, r] of replicas.entries()) console.log(`--- evaluator ${i} ---\n${r?.output().slice(-4000)}`);
      for (const app of apps) console.log(`--- app ---\n${app.output().slice(-2000)}`);
    });

    it('fault, page, escalation, replica restart, Alertmanager down 60 s, fix, resolve: one message per level and one resolve at each receiver, nothing after the fix', async () => {
      // 1. Alertmanager down; the fault.
      await am!.stop();
      am = undefined;
      const downAt = Date.now();
      const faulty = await startExample(appEnv(COMPONENT));
      apps.push(faulty);
      await faulty.serving(60_000);
      // Both sides see the fault while Alertmanager is away.
      await waitFor(async () => {
        const status = (await fetch(`${replicas[0]!.url}/api/v1/status`).then((r) => r.json())) as any;
        return status.alerts?.some((a: any) => a.service === SERVICE && a.component === COMPONENT && a.state === 'firing') || undefined;
      }, { timeoutMs: 60_000, what: `the evaluator's ${COMPONENT} alert to fire` });
      await waitFor(async () => ((await prom.query('ALERTS{alertname="VigilRouterImportFailed",alertstate="firing"}')).length ? true : undefined), {
        timeoutMs: 60_000,
        intervalMs: 500,
        what: 'the rule alert VigilRouterImportFailed to fire in Prometheus',
      });
      expect(messages(), 'nothing can be delivered while Alertmanager is down').to.deep.equal([]);

      // 2. Alertmanager back after 60 s, on the same port, with nothing of its former state.
      await sleep(Math.max(0, downAt + OUTAGE_MS - Date.now()));
      am = await startAlertmanager({ config: amConfig.config, port: amPort });
      const upAt = Date.now();
      const firstPage = async (receiver: Message['receiver']) =>
        waitFor(() => messages().find((m) => m.receiver === receiver && ofIncident(m) && m.status === 'firing'), {
          timeoutMs: 60_000,
          what: `the page at ${receiver}; messages so far:\n${describeAll()}`,
        });
      const pages: Record<string, number> = {};
      for (const r of ['incident-log', 'pagerduty', 'slack', 'email'] as const) pages[r] = (await firstPage(r)).at - upAt;
      const pagedAt = Math.min(...Object.values(pages)) + upAt;
      console.log(`      Alertmanager ready → page: ${Object.entries(pages).map(([r, ms]) => `${r} ${fmt(ms)}`).join(', ')}`);

      // Watch Alertmanager from now on: once level 1 exists, level 0 must not be active again.
      let level1At: number | undefined;
      let watching = true;
      const watch = (async () => {
        while (watching) {
          const alerts = await am?.alerts().catch(() => [] as any[]) ?? [];
          const ours = alerts.filter((a: any) => a.labels.alertname === 'VigilBusinessImpact' && a.labels.component === COMPONENT);
          if (ours.some((a: any) => a.labels.escalation === '1')) level1At ??= Date.now();
          if (level1At !== undefined && Date.now() - level1At > 5_000 && ours.some((a: any) => a.labels.escalation === '0')) reopened.push(new Date().toISOString());
          await sleep(1000);
        }
      })();

      // 3. Two replicas: one SIGKILLed 20 s after the page, started again at once without a state file.
      if (run.replicas === 2) {
        await sleep(Math.max(0, pagedAt + 20_000 - Date.now()));
        await replicas[1]!.kill('SIGKILL');
        replicas[1] = await startReplica(1);
        console.log(`      replica 1 killed and back ${fmt(Date.now() - pagedAt)} after the page`);
      }

      // 4. The escalation: level 1 reaches every receiver.
      for (const r of ['incident-log', 'slack'] as const) {
        await waitFor(() => messages().find((m) => m.receiver === r && ofIncident(m) && m.levels.includes('1')), {
          timeoutMs: 240_000,
          what: `the escalation (level 1) at ${r}; messages so far:\n${describeAll()}`,
        });
      }
      for (const r of ['pagerduty', 'email'] as const) {
        await waitFor(() => (messages().filter((m) => m.receiver === r && m.status === 'firing').length >= 2 ? true : undefined), {
          timeoutMs: 120_000,
          what: `the escalation at ${r}; messages so far:\n${describeAll()}`,
        });
      }
      console.log(`      escalation message at the incident log ${fmt(messages().find((m) => m.receiver === 'incident-log' && m.levels.includes('1'))!.at - pagedAt)} after the page`);

      // 5. The fix: the faulty process stops as a deploy stops it, a healthy one starts.
      faulty.proc.kill('SIGTERM');
      await faulty.exited;
      const fixedAt = Date.now();
      const healthy = await startExample(appEnv());
      apps.push(healthy);
      await healthy.serving(60_000);
      const resolved = async (receiver: Message['receiver']) =>
        waitFor(() => messages().find((m) => m.receiver === receiver && m.at > fixedAt && m.status === 'resolved' && (receiver === 'email' || ofIncident(m))), {
          timeoutMs: 240_000,
          what: `the resolve at ${receiver}; messages so far:\n${describeAll()}`,
        });
      const resolves: Record<string, number> = {};
      for (const r of ['incident-log', 'pagerduty', 'slack', 'email'] as const) resolves[r] = (await resolved(r)).at - fixedAt;
      console.log(`      fix → resolve: ${Object.entries(resolves).map(([r, ms]) => `${r} ${fmt(ms)}`).join(', ')}`);
      // When did Alertmanager stop holding the evaluator's alert (the inhibition's end)?
      const releasedAt = await waitFor(async () => {
        const alerts = (await am!.alerts()) as any[];
        return alerts.some((a) => a.labels.alertname === 'VigilBusinessImpact') ? undefined : Date.now();
      }, { timeoutMs: 60_000, intervalMs: 500, what: "the evaluator's alert to leave Alertmanager" });
      // Long enough for every group these alerts can be in to flush once more.
      await sleep(Math.max(0, releasedAt + QUIET_AFTER_RESOLVE_MS - Date.now()));
      watching = false;
      await watch;

      // The counts: at each receiver, exactly [page at level 0, page at level 1, resolve] for this incident.
      const all = messages();
      const summary: string[] = [];
      for (const receiver of ['incident-log', 'pagerduty', 'slack', 'email'] as const) {
        const mine = all.filter((m) => m.receiver === receiver);
        summary.push(`${receiver} ${mine.length}`);
        const byLevel = receiver === 'incident-log' || receiver === 'slack';
        const shape = mine.map((m) => (m.status === 'resolved' ? 'resolved' : byLevel ? `firing:${m.levels.join('+')}` : 'firing'));
        const want = byLevel ? ['firing:0', 'firing:1', 'resolved'] : ['firing', 'firing', 'resolved'];
        expect(shape, `${receiver}:\n${describeAll()}`).to.deep.equal(want);
        // Nothing but the business-impact alert: the rule alerts of the same fault never reached anyone.
        for (const m of mine) expect(m.alertnames, `${receiver}: ${m.text}`).to.deep.equal(['VigilBusinessImpact']);
        // Nothing fired after the fix.
        expect(mine.filter((m) => m.at > fixedAt && m.status === 'firing'), `${receiver} after the fix:\n${describeAll()}`).to.deep.equal([]);
      }
      expect(reopened, 'level 0 active in Alertmanager again after the escalation').to.deep.equal([]);
      console.log(`      messages per receiver: ${summary.join(', ')}; quiet for ${fmt(QUIET_AFTER_RESOLVE_MS)} after the evaluator's alert left Alertmanager`);
    });
  });
}
