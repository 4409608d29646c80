/**
 * The webhook notifier against real HTTP servers on 127.0.0.1: the exact payload,
 * headers from the environment (and the secret nowhere in logs or health),
 * retries through the queue, and what it does when a variable is missing.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { pino } from 'pino';
import { WebhookNotifier } from '../src/config/schema.js';
import type { AlertNotification, Notifier } from '../src/notifiers/types.js';
import { createWebhookNotifier, resolveHeaders } from '../src/notifiers/webhook/webhook.js';
import { freePort, startWebhookReceiver, type WebhookReceiver } from '../../../test/helpers/rig.js';
import { waitFor } from '../../../test/helpers/wait.js';

const SECRET = 'tok-3f9c1e7a-never-log-me';

function captureLogger() {
  const text: string[] = [];
  const logger = pino({ level: 'trace' }, new Writable({ write: (c, _e, cb) => (text.push(String(c)), cb()) }));
  return { logger, text, lines: () => text.map((l) => JSON.parse(l)) };
}

const STARTS = new Date('2025-03-01T10:00:00.000Z');
const ENDS = new Date('2025-03-01T10:07:30.250Z');

function alert(status: 'firing' | 'resolved', id = 'checkout-api|payments'): AlertNotification {
  return {
    id,
    status,
    labels: { alertname: 'VigilBusinessImpact', service: 'checkout-api', component: 'payments', severity: 'critical', priority: 'P0' },
    annotations: { summary: 'Payments are failing', revenue_at_risk: 'GBP 12000/h' },
    startsAt: STARTS,
    ...(status === 'resolved' && { endsAt: ENDS }),
    generatorURL: 'http://evaluator.internal:9464/status',
  };
}

/** An HTTP server that answers with the next status of `statuses` (the last one forever). */
async function scriptedServer(statuses: number[]) {
  const requests: Array<{ headers: http.IncomingHttpHeaders; body: any; status: number }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = statuses[Math.min(requests.length, statuses.length - 1)]!;
      requests.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')), status });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : `echo: ${req.headers.authorization}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('notifiers: webhook', () => {
  let receiver: WebhookReceiver | undefined;
  const notifiers: Notifier[] = [];
  const stoppers: Array<() => Promise<void>> = [];

  afterEach(async () => {
    await Promise.all(notifiers.splice(0).map((n) => n.stop()));
    await Promise.all(stoppers.splice(0).map((s) => s()));
    await receiver?.stop();
    receiver = undefined;
  });

  function webhook(name: string, input: Record<string, unknown>, deps: { logger?: pino.Logger; env?: NodeJS.ProcessEnv } = {}) {
    const n = createWebhookNotifier(name, WebhookNotifier.parse({ type: 'webhook', ...input }), {
      logger: deps.logger ?? pino({ level: 'silent' }),
      env: deps.env ?? {},
    });
    notifiers.push(n);
    return n;
  }

  it('POSTs the exact JSON payload, firing then resolved, with headers from the environment', async () => {
    receiver = await startWebhookReceiver();
    const { logger, text } = captureLogger();
    const n = webhook(
      'ops-hook',
      {
        url: `${receiver.url}/hooks/vigil?channel=ops`,
        headers: { Authorization: 'Bearer ${env:VIGIL_HOOK_TOKEN}', 'X-Team': 'payments', 'X-Region': '${env:REGION}-1' },
      },
      { logger, env: { VIGIL_HOOK_TOKEN: SECRET, REGION: 'eu-west' } },
    );

    n.notify(alert('firing'));
    await n.flush(5_000);
    n.notify(alert('resolved'));
    await n.flush(5_000);

    expect(receiver.received).to.have.length(2);
    const [firing, resolved] = receiver.received;
    expect(firing!.method).to.equal('POST');
    expect(firing!.path).to.equal('/hooks/vigil?channel=ops');
    expect(firing!.headers['content-type']).to.match(/^application\/json/);
    expect(firing!.headers.authorization).to.equal(`Bearer ${SECRET}`);
    expect(firing!.headers['x-team']).to.equal('payments');
    expect(firing!.headers['x-region']).to.equal('eu-west-1');
    expect(firing!.body).to.deep.equal({
      version: '1',
      status: 'firing',
      alert: {
        id: 'checkout-api|payments',
        labels: { alertname: 'VigilBusinessImpact', service: 'checkout-api', component: 'payments', severity: 'critical', priority: 'P0' },
        annotations: { summary: 'Payments are failing', revenue_at_risk: 'GBP 12000/h' },
        startsAt: '2025-03-01T10:00:00.000Z',
        endsAt: null,
      },
    });
    expect(resolved!.body).to.deep.equal({
      version: '1',
      status: 'resolved',
      alert: { ...firing!.body.alert, endsAt: '2025-03-01T10:07:30.250Z' },
    });

    const health = n.health();
    expect(health).to.include({ name: 'ops-hook', type: 'webhook', queued: 0, sent: 2, failed: 0 });
    expect(health.lastSuccessAt).to.be.instanceOf(Date);
    expect(text.join('')).to.not.include(SECRET);
    expect(JSON.stringify(health)).to.not.include(SECRET);
  });

  it('a receiver answering 500 twice then 200: delivered once after two retries; the secret is in no log line, error or health', async () => {
    const server = await scriptedServer([500, 500, 200]);
    stoppers.push(server.stop);
    const { logger, text, lines } = captureLogger();
    const n = webhook(
      'flaky',
      { url: `${server.url}/secret-path-token-xyz`, headers: { Authorization: 'Bearer ${env:TOKEN}' }, retry: { initial: 200, max: 400 } },
      { logger, env: { TOKEN: SECRET } },
    );
    n.notify(alert('firing'));
    await waitFor(() => n.health().failed >= 1 && n.health(), { what: 'a failed attempt', intervalMs: 10 });
    const during = n.health();
    expect(during).to.include({ queued: 1, sent: 0, lastError: 'HTTP 500' });

    await n.flush(5_000);
    expect(server.requests.map((r) => r.status)).to.deep.equal([500, 500, 200]);
    // The same payload each time, with the credential.
    for (const r of server.requests) {
      expect(r.body).to.deep.equal(server.requests[2]!.body);
      expect(r.headers.authorization).to.equal(`Bearer ${SECRET}`);
    }
    const health = n.health();
    expect(health).to.include({ queued: 0, sent: 1, failed: 2 });
    expect(health.lastSuccessAt).to.be.instanceOf(Date);

    const log = text.join('');
    expect(log).to.not.include(SECRET);
    expect(log, 'the URL path may be a credential too').to.not.include('secret-path-token-xyz');
    expect(JSON.stringify(health)).to.not.include(SECRET);
    const failures = lines().filter((l) => /delivery failed/.test(l.msg));
    expect(failures).to.have.length(2);
    expect(failures[0]).to.include({ level: 40, target: server.url, error: 'HTTP 500', attempt: 1 });
    expect(lines().some((l) => /delivered after retries/.test(l.msg) && l.attempts === 3)).to.equal(true);
  });

  it('a missing variable is an error in health, not a crash; read at send time, so setting it delivers', async () => {
    receiver = await startWebhookReceiver();
    const env: NodeJS.ProcessEnv = {};
    const { logger, text } = captureLogger();
    const n = webhook('late-secret', { url: receiver.url, headers: { Authorization: 'Bearer ${env:LATE_TOKEN}' }, retry: { initial: 20, max: 50 } }, { logger, env });
    n.notify(alert('firing'));
    const failing = await waitFor(() => n.health().failed >= 2 && n.health(), { what: 'failed attempts' });
    expect(failing).to.include({ queued: 1, sent: 0, lastError: 'header Authorization: environment variable LATE_TOKEN is not set' });
    expect(receiver.received).to.have.length(0);

    env.LATE_TOKEN = SECRET;
    await n.flush(5_000);
    expect(receiver.received).to.have.length(1);
    expect(receiver.received[0]!.headers.authorization).to.equal(`Bearer ${SECRET}`);
    expect(n.health()).to.include({ queued: 0, sent: 1 });
    expect(text.join('')).to.not.include(SECRET);
  });

  it('a receiver that is down: retried until it is up, latest state sent once (coalesced)', async () => {
    const port = await freePort();
    const n = webhook('down', { url: `http://127.0.0.1:${port}/`, retry: { initial: 20, max: 100 } });
    n.notify(alert('firing', 'a'));
    await waitFor(() => n.health().failed >= 1, { what: 'a failed attempt' });
    expect(n.health().lastError).to.equal('request failed: ECONNREFUSED');
    // While the first is being retried, "b" changes state twice: only its latest is sent.
    n.notify(alert('firing', 'b'));
    n.notify(alert('resolved', 'b'));
    expect(n.health().queued).to.equal(2);

    const requests: any[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        requests.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    stoppers.push(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
    await n.flush(5_000);
    expect(requests.map((b) => [b.alert.id, b.status])).to.deep.equal([
      ['a', 'firing'],
      ['b', 'resolved'],
    ]);
  });

  it('400 (the receiver refuses this payload) is not retried forever: dropped, and the next alert goes out', async () => {
    const server = await scriptedServer([400, 200]);
    stoppers.push(server.stop);
    const n = webhook('strict', { url: server.url, retry: { initial: 20, max: 50 } });
    n.notify(alert('firing', 'a'));
    n.notify(alert('firing', 'b'));
    await n.flush(5_000);
    expect(server.requests.map((r) => [r.body.alert.id, r.status])).to.deep.equal([
      ['a', 400],
      ['b', 200],
    ]);
    expect(n.health()).to.include({ queued: 0, sent: 1, failed: 1, lastError: 'HTTP 400' });
  });

  it('resolveHeaders fills every ${env:NAME}, names a missing one without any value', () => {
    const env = { A: 'x', B: 'y' };
    expect(resolveHeaders({ h: '${env:A}-${env:B}', plain: 'v', dollar: '$A {env:A}' }, env)).to.deep.equal({ h: 'x-y', plain: 'v', dollar: '$A {env:A}' });
    expect(() => resolveHeaders({ h: '${env:A}', Authorization: 'Bearer ${env:NOPE}' }, env)).to.throw('header Authorization: environment variable NOPE is not set');
    expect(() => resolveHeaders({ h: '${env:EMPTY}' }, { EMPTY: '' })).to.throw(/EMPTY is not set/);
  });
});
