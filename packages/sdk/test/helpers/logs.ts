import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

/** A pino logger (Vigil's redaction included) whose lines are kept in memory. */
export function captureLogs(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}
