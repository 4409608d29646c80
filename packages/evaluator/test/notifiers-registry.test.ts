/**
 * Notifiers built from `evaluator.yaml`'s `notifiers:` section (as the config
 * schema parses it), and stopAll.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { pino } from 'pino';
import { z } from 'zod';
import { Notifier as NotifierSchema } from '../src/config/schema.js';
import { createNotifiers, stopAll } from '../src/notifiers/registry.js';
import { freePort } from '../../../test/helpers/rig.js';

const Notifiers = z.record(z.string(), NotifierSchema);

describe('notifiers: registry', () => {
  it('builds one notifier per entry, named by its key, with the schema defaults', async () => {
    const notifiers = createNotifiers(
      Notifiers.parse({
        am: { type: 'alertmanager', urls: ['http://127.0.0.1:1', 'http://127.0.0.1:2'] },
        hook: { type: 'webhook', url: 'http://127.0.0.1:3/hook', headers: { Authorization: 'Bearer ${env:T}' } },
        log: { type: 'console' },
      }),
      { logger: pino({ level: 'silent' }), env: { T: 'x' } },
    );
    try {
      expect(notifiers.map((n) => [n.name, n.type])).to.deep.equal([
        ['am', 'alertmanager'],
        ['hook', 'webhook'],
        ['log', 'console'],
      ]);
      for (const n of notifiers) expect(n.health()).to.include({ name: n.name, type: n.type, queued: 0, sent: 0, failed: 0 });
    } finally {
      await stopAll(notifiers);
    }
  });

  it('stopAll with a flush time: delivers what it can, gives up on a dead receiver after that time, stops all', async () => {
    const received: any[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => (received.push(JSON.parse(Buffer.concat(chunks).toString('utf8'))), res.writeHead(200).end()));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const live = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const dead = `http://127.0.0.1:${await freePort()}`;
    const notifiers = createNotifiers(
      Notifiers.parse({
        live: { type: 'webhook', url: live },
        dead: { type: 'webhook', url: dead, retry: { initial: 20, max: 50 } },
      }),
      { logger: pino({ level: 'silent' }), env: {} },
    );
    for (const n of notifiers) {
      n.notify({ id: 'a', status: 'firing', labels: { alertname: 'X' }, annotations: {}, startsAt: new Date() });
    }
    const t0 = Date.now();
    await stopAll(notifiers, 300);
    expect(Date.now() - t0).to.be.within(250, 3_000);
    expect(received.map((b) => b.alert.id)).to.deep.equal(['a']);
    expect(notifiers[1]!.health()).to.include({ sent: 0 });
    expect(notifiers[1]!.health().failed).to.be.greaterThan(0);
    await new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r())));
  });
});
