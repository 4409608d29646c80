/**
 * One pino root logger; modules take `logger.child({ module })`. Anything that
 * may carry a credential is redacted before it is written, three ways:
 *
 * 1. fields by name (`REDACT_PATHS`): headers (`authorization`, `cookie`,
 *    `set-cookie`, `x-api-key`), `password`, `token`, `secret`, … at the top
 *    and up to three levels down, and the raw request body an error carries
 *    (Express's body parser puts the text that did not parse, password and
 *    all, on its `SyntaxError`);
 * 2. query parameters named like credentials (`?token=`, `&api_key=`, …) and
 *    a URL's `user:password@`, in any string of the line (a URL in a message);
 * 3. the values of the process's credential variables (names with PASS,
 *    TOKEN, SECRET, KEY, CREDENTIAL or AUTH; 8 characters or longer) wherever
 *    they appear in the line, e.g. quoted in an error message.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { REDACTED, redactText } from './telemetry/redact.js';

export type { Logger };

const credentialFields = ['authorization', 'cookie', '["set-cookie"]', '["x-api-key"]', 'password', 'passwd', 'token', 'accessToken', 'refreshToken', 'apiKey', 'api_key', 'secret', 'clientSecret', 'client_secret'];
/** `field` under `prefix` (`*.*.`) in pino's path syntax: `*.*.token`, `*.*["x-api-key"]`. */
const under = (prefix: string, field: string) => (field.startsWith('[') ? `${prefix.slice(0, -1)}${field}` : `${prefix}${field}`);

/** Paths pino censors wherever they appear in a log object. */
export const REDACT_PATHS = [
  ...['', '*.', '*.*.', '*.*.*.'].flatMap((prefix) => credentialFields.map((f) => under(prefix, f))),
  // Request and response headers as frameworks log them (`req.headers.authorization` is also `*.*.authorization`).
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  // Raw request bodies on errors: body-parser's SyntaxError (`err.body`) and the like.
  'err.body',
  'err.rawBody',
  'error.body',
  'error.rawBody',
  '*.err.body',
  '*.error.body',
];

/** Environment variable names whose values are credentials. */
const SECRET_VARIABLE = /PASS|TOKEN|SECRET|KEY|CREDENTIAL|AUTH/i;

/** The credential values of an environment, longest first (so a secret containing another is censored whole). */
export function secretValues(env: NodeJS.ProcessEnv): string[] {
  const values = Object.entries(env)
    .filter(([name, value]) => SECRET_VARIABLE.test(name) && typeof value === 'string' && value.length >= 8)
    .map(([, value]) => value!);
  return [...new Set(values)].sort((a, b) => b.length - a.length);
}

/** A log line with the known secret values (raw and JSON-escaped) and credential query parameters censored. */
export function scrubLine(line: string, secrets: string[]): string {
  let out = line;
  for (const s of secrets) {
    if (out.includes(s)) out = out.split(s).join(REDACTED);
    const escaped = JSON.stringify(s).slice(1, -1);
    if (escaped !== s && out.includes(escaped)) out = out.split(escaped).join(REDACTED);
  }
  return redactText(out);
}

/** Vigil's logger: JSON lines to stdout (or `destination`), at `VIGIL_LOG_LEVEL`, redacted as above. */
export function createLogger(env: NodeJS.ProcessEnv = process.env, destination?: DestinationStream): Logger {
  const secrets = secretValues(env);
  const options = {
    name: 'vigil',
    level: env.VIGIL_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    hooks: { streamWrite: (line: string) => scrubLine(line, secrets) },
  };
  return destination ? pino(options, destination) : pino(options);
}
