/**
 * A broken OTLP endpoint must not flood the app's log. OpenTelemetry's global
 * error handler hands a failed export to the diag logger as the JSON of the
 * whole error — stack, code and the endpoint's answer (up to 4 MB) — so a proxy
 * answering 500 with an error page that differs every time (a request id in
 * it) would make every failed export a new message, logged in full. The same
 * errors, passed through OpenTelemetry's own handler, must come out as one short
 * line once a minute. (test/e2e/faults-telemetry.test.ts shows it end to end.)
 */
import { Writable } from 'node:stream';
import { diag, DiagLogLevel } from '@opentelemetry/api';
import { loggingErrorHandler } from '@opentelemetry/core';
import { OTLPExporterError } from '@opentelemetry/otlp-exporter-base';
import { expect } from 'chai';
import { pino } from 'pino';
import { diagToPino, summarizeDiagMessage } from '../src/telemetry/otel.js';

function capture() {
  const lines: string[] = [];
  const logger = pino({ level: 'warn' }, new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
  return { lines, logger };
}

const errorPage = (n: number) => `<html><body>502 upstream collector is broken, request ${n} ${'.'.repeat(100_000)}</body></html>`;

describe('OpenTelemetry errors in the log when the endpoint is broken', () => {
  afterEach(() => diag.disable());

  it('500s with a different error page each time: one short line a minute, without the page', () => {
    const { lines, logger } = capture();
    let t = 0;
    diag.setLogger(diagToPino(logger, () => t), { logLevel: DiagLogLevel.ERROR, suppressOverrideMessage: true });
    const handle = loggingErrorHandler();
    for (let i = 0; i < 50; i++) {
      t += 1000; // one failed export a second
      handle(new OTLPExporterError('Internal Server Error', 500, errorPage(i)));
    }
    expect(lines).to.have.length(1);
    const line = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(line).to.include({ level: 40, module: 'opentelemetry', msg: 'OTLPExporterError: Internal Server Error (code 500)' });
    expect(lines[0]!.length).to.be.below(400);
    t += 60_000;
    handle(new OTLPExporterError('Internal Server Error', 500, errorPage(99)));
    expect(lines).to.have.length(2);
    expect(lines.join('')).not.to.contain('upstream collector is broken');
  });

  it('keeps the first line of an error and its code; cuts any message at 300 characters', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4318'), { code: 'ECONNREFUSED' });
    expect(summarizeDiagMessage(JSON.stringify({ stack: refused.stack, message: refused.message, code: refused.code }))).to.equal('Error: connect ECONNREFUSED 127.0.0.1:4318');
    expect(summarizeDiagMessage('PeriodicExportingMetricReader: metrics export timed out after 1000ms')).to.equal('PeriodicExportingMetricReader: metrics export timed out after 1000ms');
    expect(summarizeDiagMessage(JSON.stringify({ message: 'no stack', code: 413 }))).to.equal('no stack (code 413)');
    expect(summarizeDiagMessage('{"not": "an error"')).to.equal('{"not": "an error"');
    const long = summarizeDiagMessage(`export failed: ${'x'.repeat(10_000)}`);
    expect(long).to.have.length(301);
    expect(long.endsWith('…')).to.equal(true);
  });
});
