/**
 * The Alertmanager notifier against the REAL Alertmanager of the test rig
 * (scripts/fetch-stack.sh), routing everything to a recording webhook: firing and
 * resolved alerts arrive with their labels and annotations, a dead replica of a
 * cluster never holds up the live one, an Alertmanager that comes up late still
 * gets the alert (same startsAt, once), and the resend keeps an alert alive past
 * a short resolve_timeout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { pino } from 'pino';
import { AlertmanagerNotifier } from '../src/config/schema.js';
import { createAlertmanagerNotifier, displayUrl } from '../src/notifiers/alertmanager/alertmanager.js';
import type { AlertNotification, Notifier } from '../src/notifiers/types.js';
import {
  freePort,
  stackBin,
  startAlertmanager,
  startWebhookReceiver,
  type Alertmanager,
  type WebhookReceiver,
  type WebhookRequest,
} from '../../../test/helpers/rig.js';
import { waitFor } from '../../../test/helpers/wait.js';

/** Routes every alert to the webhook at once (group_wait 1s) and repeats only hourly. */
function amConfig(webhookUrl: string, resolveTimeout?: string): string {
  return [
    ...(resolveTimeout ? ['global:', `  resolve_timeout: ${resolveTimeout}`] : []),
    'route:',
    '  receiver: vigil-webhook',
    "  group_by: ['alertname']",
    '  group_wait: 1s',
    '  group_interval: 1s',
    '  repeat_interval: 1h',
    'receivers:',
    '  - name: vigil-webhook',
    '    webhook_configs:',
    `      - url: '${webhookUrl}/alertmanager'`,
    '        send_resolved: true',
    '',
  ].join('\n');
}

/**
 * An Alertmanager on a port chosen by the test (startAlertmanager picks its own):
 * the notifier is pointed at the port before anything listens there.
 */
async function startAlertmanagerOn(port: number, config: string): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vigil-am-late-'));
  await writeFile(path.join(dir, 'alertmanager.yml'), config);
  await mkdir(path.join(dir, 'data'));
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    stackBin('alertmanager'),
    [
      `--config.file=${path.join(dir, 'alertmanager.yml')}`,
      `--storage.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
    ],
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let output = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (output = (output + c).slice(-4_000)));
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    process.removeListener('exit', kill);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`alertmanager exited: ${output}`);
        return (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) })).ok;
      },
      { timeoutMs: 20_000, what: `alertmanager on ${url} to be ready` },
    );
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${output}`);
  }
  return { url, stop };
}

function notification(alertname: string, status: 'firing' | 'resolved', extra: Partial<AlertNotification> = {}): AlertNotification {
  return {
    id: `${alertname}|checkout-api|payments`,
    status,
    labels: { alertname, service: 'checkout-api', component: 'payments', severity: 'critical', priority: 'P0' },
    annotations: { summary: `${alertname}: payments are failing`, revenue_at_risk: 'GBP 12000/h' },
    startsAt: new Date(Date.now() - 60_000),
    generatorURL: 'http://evaluator.internal:9464/status',
    ...extra,
  };
}

/** The alerts of one alertname in the webhook deliveries, with their status. */
function delivered(webhook: WebhookReceiver, alertname: string, status?: string): any[] {
  return webhook.received.flatMap((r) => (r.body?.alerts ?? []).filter((a: any) => a.labels?.alertname === alertname && (!status || a.status === status)));
}

function hasAlert(alertname: string, status: string) {
  return (r: WebhookRequest) => (r.body?.alerts ?? []).some((a: any) => a.labels?.alertname === alertname && a.status === status);
}

describe('notifiers: alertmanager (the real Alertmanager)', function () {
  this.timeout(60_000);

  let webhook: WebhookReceiver;
  let am: Alertmanager;
  const notifiers: Notifier[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  function notifier(name: string, input: Record<string, unknown>, logger = pino({ level: 'silent' })): Notifier {
    const n = createAlertmanagerNotifier(name, AlertmanagerNotifier.parse({ type: 'alertmanager', ...input }), { logger });
    notifiers.push(n);
    return n;
  }

  before(async () => {
    webhook = await startWebhookReceiver();
    am = await startAlertmanager({ config: amConfig(webhook.url) });
  });

  after(async () => {
    await am?.stop();
    await webhook?.stop();
  });

  afterEach(async () => {
    await Promise.all(notifiers.splice(0).map((n) => n.stop()));
    await Promise.all(cleanups.splice(0).map((c) => c()));
  });

  it('a firing notification arrives at the webhook with its labels, annotations, startsAt and generatorURL', async () => {
    const n = notifier('am', { urls: [am.url] });
    const sent = notification('VigilAmFiring', 'firing');
    n.notify(sent);
    await n.flush(10_000);
    expect(n.health()).to.include({ name: 'am', type: 'alertmanager', queued: 0, sent: 1, failed: 0 });

    const req = await webhook.waitFor(hasAlert('VigilAmFiring', 'firing'), 15_000);
    expect(req.path).to.equal('/alertmanager');
    const [got] = delivered(webhook, 'VigilAmFiring');
    expect(got.status).to.equal('firing');
    expect(got.labels).to.deep.equal(sent.labels);
    expect(got.annotations).to.deep.equal(sent.annotations);
    expect(Date.parse(got.startsAt)).to.equal(sent.startsAt.getTime());
    expect(got.generatorURL).to.equal(sent.generatorURL);
  });

  it('a resolved notification arrives as resolved, with its endsAt (resolveHold 0)', async () => {
    const n = notifier('am', { urls: [am.url], resolveHold: 0 });
    const firing = notification('VigilAmResolved', 'firing');
    n.notify(firing);
    await webhook.waitFor(hasAlert('VigilAmResolved', 'firing'), 15_000);

    const endsAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    n.notify({ ...firing, status: 'resolved', endsAt });
    await webhook.waitFor(hasAlert('VigilAmResolved', 'resolved'), 15_000);
    const [got] = delivered(webhook, 'VigilAmResolved', 'resolved');
    expect(got.labels).to.deep.equal(firing.labels);
    expect(Date.parse(got.startsAt)).to.equal(firing.startsAt.getTime());
    expect(Date.parse(got.endsAt)).to.equal(endsAt.getTime());
    // No longer active in Alertmanager.
    const held = (await am.alerts()).filter((a) => a.labels.alertname === 'VigilAmResolved');
    expect(held).to.deep.equal([]);
  });

  it('a changed label set (escalation) resolves the old one at once instead of leaving it firing until resolve_timeout', async () => {
    const n = notifier('am', { urls: [am.url] });
    const base = notification('VigilAmRelabel', 'firing');
    n.notify({ ...base, labels: { ...base.labels, escalation: '0' } });
    await n.flush(10_000);
    n.notify({ ...base, labels: { ...base.labels, escalation: '1' } });
    await n.flush(10_000);
    const held = (await am.alerts()).filter((a) => a.labels.alertname === 'VigilAmRelabel');
    expect(held.map((a) => a.labels.escalation)).to.deep.equal(['1']);

    // The end is held (default 15 s): the last level stays active, inhibiting, until then.
    const end = new Date(Math.floor(Date.now() / 1000) * 1000);
    n.notify({ ...base, status: 'resolved', labels: { ...base.labels, escalation: '1' }, endsAt: end });
    await n.flush(10_000);
    const ending = (await am.alerts()).filter((a) => a.labels.alertname === 'VigilAmRelabel');
    expect(ending.map((a) => [a.labels.escalation, a.status.state, Date.parse(a.endsAt) - end.getTime()])).to.deep.equal([['1', 'active', 15_000]]);
  });

  it('resolveHold: the resolved post carries endsAt + hold; Alertmanager keeps it active until then (health shows it), then sends the resolve', async () => {
    const n = notifier('am', { urls: [am.url], resolveHold: '3s' });
    const firing = notification('VigilAmHeld', 'firing');
    n.notify(firing);
    await webhook.waitFor(hasAlert('VigilAmHeld', 'firing'), 15_000);
    const endsAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    n.notify({ ...firing, status: 'resolved', endsAt });
    await n.flush(10_000);
    const active = (await am.alerts()).filter((a) => a.labels.alertname === 'VigilAmHeld');
    expect(active.map((a) => [a.status.state, Date.parse(a.endsAt)])).to.deep.equal([['active', endsAt.getTime() + 3000]]);
    expect(n.health().held).to.deep.equal([{ alert: firing.id, until: new Date(endsAt.getTime() + 3000).toISOString() }]);
    expect(delivered(webhook, 'VigilAmHeld', 'resolved')).to.deep.equal([]);
    const req = await webhook.waitFor(hasAlert('VigilAmHeld', 'resolved'), 15_000);
    const [got] = req.body.alerts.filter((a: any) => a.labels.alertname === 'VigilAmHeld');
    expect(Date.parse(got.endsAt)).to.equal(endsAt.getTime() + 3000);
    expect(n.health().held).to.equal(undefined);
  });

  it('resolveHold is not used on a label change: the old level is resolved at once', async () => {
    const n = notifier('am', { urls: [am.url], resolveHold: '1h' });
    const base = notification('VigilAmRelabelHeld', 'firing');
    n.notify({ ...base, labels: { ...base.labels, escalation: '0' } });
    await n.flush(10_000);
    n.notify({ ...base, labels: { ...base.labels, escalation: '1' } });
    await n.flush(10_000);
    const sets = (await am.alerts()).filter((a) => a.labels.alertname === 'VigilAmRelabelHeld');
    // Only the new level is active; the old one ended when it was replaced, not an hour later.
    expect(sets.map((a) => a.labels.escalation)).to.deep.equal(['1']);
    expect(n.health().held).to.equal(undefined);
  });

  it('resolveHold is not used for a resolve marked `replaced` (the engine\'s escalation: old id resolved, new id fired)', async () => {
    const n = notifier('am', { urls: [am.url], resolveHold: '1h' });
    const base = notification('VigilAmReplaced', 'firing');
    const level = (l: string) => ({ ...base, id: `${base.id}|${l}`, labels: { ...base.labels, escalation: l } });
    n.notify(level('0'));
    await n.flush(10_000);
    n.notify({ ...level('0'), status: 'resolved', endsAt: new Date(), replaced: true });
    n.notify(level('1'));
    await n.flush(10_000);
    const sets = (await am.alerts()).filter((a) => a.labels.alertname === 'VigilAmReplaced' && a.status.state === 'active');
    expect(sets.map((a) => a.labels.escalation)).to.deep.equal(['1']);
    expect(n.health().held).to.equal(undefined);
    // An end (not marked) is held.
    n.notify({ ...level('1'), status: 'resolved', endsAt: new Date() });
    await n.flush(10_000);
    expect((await am.alerts()).filter((a) => a.labels.alertname === 'VigilAmReplaced' && a.status.state === 'active').map((a) => a.labels.escalation)).to.deep.equal(['1']);
    expect(n.health().held?.map((h) => h.alert)).to.deep.equal([`${base.id}|1`]);
  });

  it('a held resolve still waiting to be posted is handed back (for the state file) with the evaluator\'s resolve time, not the held one', async () => {
    const n = notifier('am', { urls: [`http://127.0.0.1:${await freePort()}`], resolveHold: '15s', retry: { initial: '1s', max: '1s' } });
    const endsAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    n.notify({ ...notification('VigilAmPending', 'resolved'), endsAt });
    expect(n.pending!().map((p) => p.endsAt?.getTime())).to.deep.equal([endsAt.getTime()]);
    await n.stop();
  });

  describe('restore: the VigilBusinessImpact alerts Alertmanager holds', () => {
    it('reads them back (labels, startsAt), only that alertname, active ones, silenced or inhibited included', async () => {
      const writer = notifier('writer', { urls: [am.url] });
      const start = new Date(Math.floor(Date.now() / 1000) * 1000 - 90_000);
      const impact = (escalation: string, component = 'users') => ({ ...notification('VigilBusinessImpact', 'firing'), id: `x|${component}|${escalation}`, startsAt: start, labels: { alertname: 'VigilBusinessImpact', service: 'restore-api', component, escalation } });
      writer.notify(impact('1'));
      writer.notify(notification('VigilAmOther', 'firing'));
      writer.notify({ ...impact('0', 'orders'), status: 'resolved', endsAt: new Date(start.getTime() + 1000) });
      await writer.flush(10_000);
      await writer.stop();
      const reader = notifier('reader', { urls: [am.url] });
      const held = (await reader.restore!(2_000)).filter((a) => a.labels.service === 'restore-api');
      // The resolved `orders` one ended in the past (held 15 s from start + 1 s): not active.
      expect(held.map((a) => [a.labels.component, a.labels.escalation, a.startsAt.getTime()])).to.deep.equal([['users', '1', start.getTime()]]);
    });

    /** A stand-in answering GET /api/v2/alerts as `answer` says: for what a real Alertmanager cannot be made to send. */
    async function fakeAm(answer: (res: http.ServerResponse) => void): Promise<string> {
      const server = http.createServer((req, res) => (req.method === 'GET' ? answer(res) : res.writeHead(200).end()));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      cleanups.push(async () => {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      });
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    }

    const cases: Array<[string, (res: http.ServerResponse) => void, RegExp]> = [
      ['not JSON', (res) => res.writeHead(200).end('<html>'), /answer is not JSON/],
      ['not a list of alerts', (res) => res.writeHead(200).end(JSON.stringify([{ labels: { a: 1 }, startsAt: 'soon' }])), /answer is not a list of alerts: at 0\.labels\.a/],
      ['an error status', (res) => res.writeHead(503).end('down'), /HTTP 503/],
      ['over 1 MiB', (res) => res.writeHead(200).end(`[${'{"labels":{},"startsAt":"2026-01-01T00:00:00Z"},'.repeat(30_000)}{}]`), /answer over 1048576 bytes/],
      ['too slow', () => undefined, /timed out/],
    ];
    for (const [what, answer, logged] of cases) {
      it(`${what}: no hints, a warning logged, and it returns within its timeout`, async () => {
        const url = await fakeAm(answer);
        const { logger, text } = captureLogger();
        const n = notifier('am', { urls: [url] }, logger);
        const t0 = Date.now();
        expect(await n.restore!(500)).to.deep.equal([]);
        expect(Date.now() - t0).to.be.lessThan(5_000);
        const warn = text.map((l) => JSON.parse(l)).find((l) => /could not read the alerts/.test(l.msg));
        expect(warn?.err).to.match(logged);
        await n.stop();
      });
    }

    it('at most 1000 alerts are taken', async () => {
      const one = (i: number) => ({ labels: { alertname: 'VigilBusinessImpact', service: 's', component: `c${i}`, escalation: '0' }, startsAt: '2026-01-01T00:00:00Z' });
      const url = await fakeAm((res) => res.writeHead(200).end(JSON.stringify(Array.from({ length: 1500 }, (_, i) => one(i)))));
      const n = notifier('am', { urls: [url] });
      expect(await n.restore!(2_000)).to.have.length(1000);
      await n.stop();
    });
  });

  it('two URLs, one a closed port: the alert arrives through the other, the dead one is retried (health shows it)', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const n = notifier('cluster', { urls: [dead, am.url], retry: { initial: 50, max: 200 } });
    const sent = notification('VigilAmCluster', 'firing');
    n.notify(sent);
    await webhook.waitFor(hasAlert('VigilAmCluster', 'firing'), 15_000);

    const health = await waitFor(() => (n.health().failed >= 3 ? n.health() : undefined), { what: 'retries against the dead URL' });
    expect(health.sent).to.equal(1);
    expect(health.queued).to.equal(1); // waiting for the dead one only
    expect(health.lastError).to.equal(`${dead}: request failed: ECONNREFUSED`);
    expect(health.lastSuccessAt).to.be.instanceOf(Date);

    // flush gives up on the dead one after its timeout, having delivered to the live one.
    const t0 = Date.now();
    await n.flush(300);
    expect(Date.now() - t0).to.be.within(250, 2_000);
  });

  it('an Alertmanager that starts after the alert was notified gets it: original startsAt, exactly once at the webhook', async () => {
    const port = await freePort();
    const { logger, text } = captureLogger();
    // resend 1s: the alert is posted again and again once Alertmanager is up; it must still page once.
    const n = notifier('late', { urls: [`http://127.0.0.1:${port}`], retry: { initial: 100, max: 400 }, resend: '1s' }, logger);
    const sent = notification('VigilAmLate', 'firing', { startsAt: new Date(Date.now() - 5 * 60_000) });
    n.notify(sent);
    await waitFor(() => n.health().failed >= 2, { what: 'failed attempts while Alertmanager is down' });
    expect(n.health()).to.include({ queued: 1, sent: 0 });
    expect(delivered(webhook, 'VigilAmLate')).to.deep.equal([]);

    const late = await startAlertmanagerOn(port, amConfig(webhook.url));
    cleanups.push(late.stop);
    await webhook.waitFor(hasAlert('VigilAmLate', 'firing'), 20_000);
    await n.flush(5_000);
    expect(n.health().sent).to.be.greaterThan(0);

    // Long enough for a second notification if Alertmanager saw a new alert (group_interval 1s, resend 1s).
    await sleep(3_500);
    const got = delivered(webhook, 'VigilAmLate');
    expect(got, JSON.stringify(got)).to.have.length(1);
    expect(Date.parse(got[0].startsAt)).to.equal(sent.startsAt.getTime());
    expect(got[0].labels).to.deep.equal(sent.labels);

    const lines = text.map((l) => JSON.parse(l));
    const target = `http://127.0.0.1:${port}`;
    expect(lines.find((l) => /delivery failed/.test(l.msg))).to.include({ level: 40, notifier: 'late', target, attempt: 1, error: 'request failed: ECONNREFUSED' });
    expect(lines.some((l) => /delivered after retries/.test(l.msg) && l.target === target && l.item === `${sent.id} (firing)`)).to.equal(true);
  });

  describe('resend keeps an alert alive past resolve_timeout', () => {
    let shortAm: Alertmanager;
    before(async () => {
      shortAm = await startAlertmanager({ config: amConfig(webhook.url, '2s') });
    });
    after(async () => {
      await shortAm?.stop();
    });

    it('resent every 500 ms it stays active; without resends (the control) Alertmanager resolves it', async () => {
      const kept = notifier('kept', { urls: [shortAm.url], resend: '500ms' });
      const control = notifier('control', { urls: [shortAm.url], resend: '1h' });
      kept.notify(notification('VigilAmKept', 'firing'));
      control.notify(notification('VigilAmControl', 'firing'));
      await Promise.all([kept.flush(5_000), control.flush(5_000)]);
      const names = async () => (await shortAm.alerts()).filter((a) => a.status?.state === 'active').map((a) => a.labels.alertname).sort();
      expect(await names()).to.deep.equal(['VigilAmControl', 'VigilAmKept']);

      // Three resolve timeouts later.
      await sleep(6_000);
      expect(await names()).to.deep.equal(['VigilAmKept']);
      expect(kept.health().sent).to.be.greaterThan(5);
      await webhook.waitFor(hasAlert('VigilAmControl', 'resolved'), 10_000);
      expect(delivered(webhook, 'VigilAmKept', 'resolved')).to.deep.equal([]);
    });
  });

  it('displayUrl drops credentials from a URL', () => {
    expect(displayUrl('http://user:secret@am.internal:9093/prefix/')).to.equal('http://am.internal:9093/prefix');
    expect(displayUrl('https://am.example.com')).to.equal('https://am.example.com');
  });
});

function captureLogger() {
  const text: string[] = [];
  const logger = pino({ level: 'trace' }, new Writable({ write: (c, _e, cb) => (text.push(String(c)), cb()) }));
  return { logger, text };
}
