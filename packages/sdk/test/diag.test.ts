import { expect } from 'chai';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { diagToPino } from '../src/telemetry/otel.js';

describe('OpenTelemetry diagnostics in the log', () => {
  it('logs an export failure once a minute, not on every attempt', () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
    let t = 0;
    const diag = diagToPino(logger, () => t);
    diag.error('metrics export failed', new Error('connect ECONNREFUSED 127.0.0.1:4318'));
    t = 10_000;
    diag.error('metrics export failed', new Error('connect ECONNREFUSED 127.0.0.1:4318'));
    diag.error('another message');
    diag.warn('OTEL_TRACES_EXPORTER contains "none"');
    t = 61_000;
    diag.error('metrics export failed', new Error('connect ECONNREFUSED 127.0.0.1:4318'));
    diag.info('chatter');
    expect(lines).to.have.length(3);
    expect(JSON.parse(lines[0]!)).to.include({ level: 40, module: 'opentelemetry', msg: 'metrics export failed', detail: 'connect ECONNREFUSED 127.0.0.1:4318' });
    expect(JSON.parse(lines[1]!)).to.include({ level: 40, msg: 'another message' });
  });
});
