/**
 * Credentials out of spans. The HTTP instrumentation records the query string
 * of every request it sees (`url.query` on server spans, `url.full` on client
 * spans: the monitor's flow steps send captured tokens there when a manifest
 * says so), and it can be configured to record request headers
 * (`http.request.header.authorization`, `…cookie`). `RedactingSpanProcessor`
 * sits in front of the exporting processor and hands it a censored view of
 * every ended span:
 *
 * - an attribute whose key names a credential (`…authorization`, `…cookie`,
 *   `…set-cookie`, `…x-api-key`, `…token`, `…password`, `…secret`, `…session`)
 *   is replaced by `[redacted]`, whatever its value;
 * - in every string (attribute values, `url.query`, the span name, the status
 *   message, event attributes), a query parameter whose name looks like a
 *   credential (token, key, secret, password, code, auth, session, signature,
 *   credential) keeps its name and loses its value: `?token=[redacted]&page=2`;
 *   and a URL's `user:password@` becomes `[redacted]@`.
 *
 * What the instrumentation sets when a span starts is censored on the span
 * itself (so processors after this one see it censored too); what is set
 * later is censored in the view the exporter gets. Vigil registers the processor in front of every exporter of the
 * tracer provider it starts (by `vigil()` or `--import @vigil/sdk/register`).
 */
import type { Context } from '@opentelemetry/api';
import type { Attributes, AttributeValue } from '@opentelemetry/api';
import { boundReason } from '../semconv.js';
import { redact as redactValues } from '../monitor/template.js';
import type { ReadableSpan, Span, SpanProcessor, TimedEvent } from '@opentelemetry/sdk-trace-base';

export const REDACTED = '[redacted]';

/** Query parameter names whose values are credentials. */
export const SECRET_PARAM = /token|key|secret|passw|pwd|code|auth|session|signature|credential|jwt/i;
/** Attribute keys (their last segment) whose values are credentials, whatever they look like. */
const SECRET_KEY = /(^|[._-])(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api[-_]?key|token|access[-_]?token|refresh[-_]?token|password|passwd|secret|session[-_]?id|jwt)$/i;

/** True when an attribute key names a credential (`http.request.header.authorization`, `db.password`, …). */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

const decode = (s: string) => {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
};

/** A value that is a manifest placeholder (`${token}`, `${env:API_KEY}`) is not a secret: it is kept, readable. */
const PLACEHOLDER = /^\$\{[^}]*\}$/;
const keep = (name: string, value: string) => value === '' || value === REDACTED || PLACEHOLDER.test(value) || !SECRET_PARAM.test(decode(name));

/** A query string (`url.query`: `a=1&token=x`) with the values of credential parameters censored: `a=1&token=[redacted]`. */
export function redactQueryString(query: string): string {
  return query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      return eq < 0 || keep(pair.slice(0, eq), pair.slice(eq + 1)) ? pair : `${pair.slice(0, eq)}=${REDACTED}`;
    })
    .join('&');
}

/**
 * `?name=value` and `&name=value` inside a text (a URL, a path, a message or a
 * JSON log line quoting one) with credential values censored. A value ends at
 * `&`, `#`, white space, a quote, `<`, `>`, `)` or a backslash (so a JSON
 * escape is never cut in half).
 */
const PAIR = /([?&])([^=&?\s#"'<>\\]+)=([^&\s#"'<>\\)]*)/g;
export function redactQueries(text: string): string {
  if (!text.includes('=')) return text;
  return text.replace(PAIR, (match, sep: string, name: string, value: string) => (keep(name, value) ? match : `${sep}${name}=${REDACTED}`));
}

/** `scheme://user:password@host` → `scheme://[redacted]@host`. */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^/\s:@"'<>\\]+:[^/\s@"'<>\\]+@/gi;

/** A text with URL credentials censored: credential query parameters and `user:password@` userinfo. */
export function redactText(text: string): string {
  const out = redactQueries(text);
  return out.includes('@') ? out.replace(USERINFO, `$1${REDACTED}@`) : out;
}

/** `Bearer <token>`, `password=…`/`token: …` pairs and JWTs inside a message. */
const BEARER = /\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi;
// A value ends where a URL's query value does (so `(…?token=[redacted])` keeps its parenthesis).
const SECRET_PAIR = /\b([\w.-]*(?:passw(?:or)?d|pwd|secret|token|api[_-]?key|credential)s?)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&#"'<>\\)]+)/gi;
const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g;

/**
 * A failure's reason as telemetry may carry it: credentials censored (URL
 * userinfo and query parameters, bearer tokens, `password=…` pairs, JWTs,
 * and each of `secrets` — the values of the variables a check reads — that
 * is 4 characters or longer), then bounded to one short line ({@link boundReason}).
 */
export function reasonText(text: unknown, secrets: Iterable<string> = []): string {
  const raw = typeof text === 'string' ? text : text instanceof Error ? text.message : String(text ?? '');
  const out = redactText(redactValues(raw, secrets))
    .replace(BEARER, (_m, scheme: string) => `${scheme} ${REDACTED}`)
    .replace(SECRET_PAIR, (m, name: string, sep: string, value: string) => (value === REDACTED || PLACEHOLDER.test(value) ? m : `${name}${sep}${REDACTED}`))
    .replace(JWT, REDACTED);
  return boundReason(out);
}

function redactValue(key: string, value: AttributeValue | undefined): AttributeValue | undefined {
  if (value === undefined || value === null) return value;
  if (isSecretKey(key)) return Array.isArray(value) ? value.map(() => REDACTED) : REDACTED;
  if (key === 'url.query' && typeof value === 'string') return redactQueryString(value);
  if (typeof value === 'string') return redactText(value);
  if (Array.isArray(value) && value.some((v) => typeof v === 'string')) {
    return (value as unknown[]).map((v) => (typeof v === 'string' ? redactText(v) : v)) as AttributeValue;
  }
  return value;
}

/** The attributes with credentials censored; the same object when nothing needed it. */
export function redactAttributes(attributes: Attributes): Attributes {
  let out: Attributes | undefined;
  for (const [key, value] of Object.entries(attributes)) {
    const safe = redactValue(key, value);
    if (safe !== value && JSON.stringify(safe) !== JSON.stringify(value)) (out ??= { ...attributes })[key] = safe;
  }
  return out ?? attributes;
}

/** A view of an ended span with its credentials censored (the span itself when it has none). */
export function redactSpan(span: ReadableSpan): ReadableSpan {
  const attributes = redactAttributes(span.attributes);
  const name = redactText(span.name);
  const message = span.status.message === undefined ? undefined : redactText(span.status.message);
  let eventsChanged = false;
  const events: TimedEvent[] = span.events.map((e) => {
    const attrs = e.attributes ? redactAttributes(e.attributes) : e.attributes;
    const eventName = redactText(e.name);
    if (attrs === e.attributes && eventName === e.name) return e;
    eventsChanged = true;
    return { ...e, name: eventName, ...(attrs ? { attributes: attrs } : {}) };
  });
  let linksChanged = false;
  const links = span.links.map((l) => {
    const attrs = l.attributes ? redactAttributes(l.attributes) : l.attributes;
    if (attrs === l.attributes) return l;
    linksChanged = true;
    return { ...l, attributes: attrs };
  });
  if (attributes === span.attributes && name === span.name && message === span.status.message && !eventsChanged && !linksChanged) return span;
  // The exporter reads the span's fields and calls spanContext(): everything else falls through to the span.
  return Object.create(span, {
    attributes: { value: attributes, enumerable: true },
    name: { value: name, enumerable: true },
    status: { value: message === undefined ? span.status : { ...span.status, message }, enumerable: true },
    events: { value: events, enumerable: true },
    links: { value: links, enumerable: true },
  }) as ReadableSpan;
}

/** Wraps the processor that exports: it gets every span censored. */
export class RedactingSpanProcessor implements SpanProcessor {
  constructor(private readonly next: SpanProcessor) {}

  onStart(span: Span, parentContext: Context): void {
    // What the instrumentation set at the start is censored on the span itself, for processors that read it early.
    const safe = redactAttributes(span.attributes);
    if (safe !== span.attributes) span.setAttributes(safe);
    this.next.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    this.next.onEnd(redactSpan(span));
  }

  forceFlush(): Promise<void> {
    return this.next.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.next.shutdown();
  }
}
