/**
 * One pino root logger; modules take `logger.child({ module })`. Anything that
 * may carry a credential is redacted before it is written:
 *
 * 1. fields named like credentials — `authorization`, `cookie`, `set-cookie`,
 *    `x-api-key`, `password`, `token`, `secret`, … (`CREDENTIAL_FIELDS`) — at
 *    any depth: pino's `redact` at the top level (whatever the value) and for
 *    the request and response headers frameworks log, and one pass over the
 *    written line for string, number, boolean and string-array values deeper
 *    down (pino's wildcard paths cost ~15 µs a line per level; the pass ~1 µs);
 * 2. the raw request body an error carries (`err.body`: Express's body parser
 *    puts the text that did not parse, password and all, on its `SyntaxError`);
 * 3. query parameters named like credentials (`?token=`, `&api_key=`, …) and a
 *    URL's `user:password@`, in any string of the line (a URL in a message);
 * 4. the values of the process's credential variables (names with PASS,
 *    TOKEN, SECRET, KEY, CREDENTIAL or AUTH; 8 characters or longer) wherever
 *    they appear in the line, e.g. quoted in an error message.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { REDACTED, redactText } from './telemetry/redact.js';

export type { Logger };

/** Field names whose values are credentials (compared case-insensitively in the line pass). */
export const CREDENTIAL_FIELDS = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'password',
  'passwd',
  'token',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'apiKey',
  'api_key',
  'secret',
  'clientSecret',
  'client_secret',
];

const path = (field: string) => (/^[A-Za-z_$][\w$]*$/.test(field) ? field : `["${field}"]`);

/** Paths pino censors (whatever the value: objects too). */
export const REDACT_PATHS = [
  ...CREDENTIAL_FIELDS.map(path),
  // Request and response headers as frameworks log them.
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'headers["x-api-key"]',
  // Raw request bodies on errors: body-parser's SyntaxError (`err.body`) and the like.
  'err.body',
  'err.rawBody',
  'error.body',
  'error.rawBody',
];

/** `"<credential field>":<string, number, boolean or array of strings>` anywhere in a JSON line. */
const FIELD_VALUE = new RegExp(
  `"(${CREDENTIAL_FIELDS.join('|')})":("(?:[^"\\\\]|\\\\.)*"|\\[(?:"(?:[^"\\\\]|\\\\.)*",?)*\\]|-?\\d[\\d.eE+-]*|true|false)`,
  'gi',
);

/** Environment variable names whose values are credentials. */
const SECRET_VARIABLE = /PASS|TOKEN|SECRET|KEY|CREDENTIAL|AUTH/i;

/** The credential values of an environment, longest first (so a secret containing another is censored whole). */
export function secretValues(env: NodeJS.ProcessEnv): string[] {
  const values = Object.entries(env)
    .filter(([name, value]) => SECRET_VARIABLE.test(name) && typeof value === 'string' && value.length >= 8)
    .map(([, value]) => value!);
  return [...new Set(values)].sort((a, b) => b.length - a.length);
}

/** A JSON log line with credential fields at any depth, the known secret values (raw and JSON-escaped), credential query parameters and URL passwords censored. */
export function scrubLine(line: string, secrets: string[]): string {
  let out = line.replace(FIELD_VALUE, `"$1":"${REDACTED}"`);
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
