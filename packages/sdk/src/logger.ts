/**
 * One pino root logger; modules take `logger.child({ module })`. Anything that
 * may carry a credential is redacted before it is written.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths pino censors wherever they appear in a log object. */
export const REDACT_PATHS = [
  'authorization',
  '*.authorization',
  '*.*.authorization',
  'headers.cookie',
  '*.headers.cookie',
  'password',
  '*.password',
  'token',
  '*.token',
  'secret',
  '*.secret',
];

export function createLogger(env: NodeJS.ProcessEnv = process.env): Logger {
  return pino({
    name: 'vigil',
    level: env.VIGIL_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  });
}
