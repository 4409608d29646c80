/**
 * The console notifier: the level follows what the alert means (a page at
 * `error`, the rest at `warn`, a resolution at `info`), labels and annotations
 * are structured fields, and it always succeeds.
 */
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { pino } from 'pino';
import { createConsoleNotifier } from '../src/notifiers/console/console.js';
import type { AlertNotification } from '../src/notifiers/types.js';

function captureLogger() {
  const lines: any[] = [];
  const logger = pino({ level: 'trace' }, new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }));
  return { logger, lines };
}

function alert(status: 'firing' | 'resolved', severity?: string): AlertNotification {
  return {
    id: `orders|db|${severity ?? 'none'}`,
    status,
    labels: { alertname: 'VigilBusinessImpact', service: 'orders', component: 'db', ...(severity && { severity }) },
    annotations: { summary: 'Orders cannot be placed', customers: 'every customer' },
    startsAt: new Date('2025-03-01T10:00:00.000Z'),
    ...(status === 'resolved' && { endsAt: new Date('2025-03-01T10:05:00.000Z') }),
  };
}

describe('notifiers: console', () => {
  const rows: Array<{ status: 'firing' | 'resolved'; severity?: string; level: number; name: string }> = [
    { status: 'firing', severity: 'critical', level: 50, name: 'error' },
    { status: 'firing', severity: 'high', level: 50, name: 'error' },
    { status: 'firing', severity: 'medium', level: 40, name: 'warn' },
    { status: 'firing', severity: 'low', level: 40, name: 'warn' },
    { status: 'firing', level: 40, name: 'warn' },
    { status: 'resolved', severity: 'critical', level: 30, name: 'info' },
    { status: 'resolved', severity: 'low', level: 30, name: 'info' },
  ];
  for (const row of rows) {
    it(`${row.status}, severity ${row.severity ?? '(none)'} → ${row.name}`, () => {
      const { logger, lines } = captureLogger();
      const n = createConsoleNotifier('log', { logger });
      const a = alert(row.status, row.severity);
      n.notify(a);
      expect(lines).to.have.length(1);
      const line = lines[0];
      expect(line.level).to.equal(row.level);
      expect(line).to.include({ notifier: 'log', type: 'console', alert: a.id, status: row.status, startsAt: '2025-03-01T10:00:00.000Z' });
      expect(line.labels).to.deep.equal(a.labels);
      expect(line.annotations).to.deep.equal(a.annotations);
      expect(line.msg).to.equal(`${row.status === 'firing' ? 'FIRING' : 'RESOLVED'}: Orders cannot be placed`);
      if (row.status === 'resolved') expect(line.endsAt).to.equal('2025-03-01T10:05:00.000Z');
      else expect(line).to.not.have.property('endsAt');
    });
  }

  it('always succeeds: counted as sent, nothing queued, flush and stop are immediate', async () => {
    const { logger } = captureLogger();
    const n = createConsoleNotifier('log', { logger, now: () => Date.parse('2025-03-01T11:00:00.000Z') });
    expect(n.health()).to.deep.equal({ name: 'log', type: 'console', queued: 0, sent: 0, failed: 0 });
    n.notify(alert('firing', 'critical'));
    n.notify(alert('resolved', 'critical'));
    await n.flush(10);
    expect(n.health()).to.deep.equal({ name: 'log', type: 'console', queued: 0, sent: 2, failed: 0, lastSuccessAt: new Date('2025-03-01T11:00:00.000Z') });
    await n.stop();
  });

  it('falls back to the alertname, then the id, when there is no summary', () => {
    const { logger, lines } = captureLogger();
    const n = createConsoleNotifier('log', { logger });
    n.notify({ ...alert('firing', 'low'), annotations: {} });
    n.notify({ ...alert('firing', 'low'), annotations: {}, labels: {} });
    expect(lines.map((l) => l.msg)).to.deep.equal(['FIRING: VigilBusinessImpact', 'FIRING: orders|db|low']);
  });
});
