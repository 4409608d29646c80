/**
 * Placeholders in probe and flow requests: `${env:NAME}` reads a secret from
 * the environment at run time; `${name}` is a value an earlier flow step
 * captured. Every substituted value is collected as a secret, so outputs can be
 * redacted before they reach a log, a span or a health body.
 */
import type { FromEnv } from '../manifest/schema.js';

const PLACEHOLDER = /\$\{(env:)?([A-Za-z_][A-Za-z0-9_]*)\}/g;

export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

export interface Scope {
  env: NodeJS.ProcessEnv;
  /** Values captured by earlier flow steps. */
  vars?: Record<string, string>;
  /** Collects every value substituted (they are secrets). */
  secrets: Set<string>;
}

/** Substitutes the placeholders of one string; a missing variable is an error naming it. */
export function fill(text: string, scope: Scope): string {
  return text.replace(PLACEHOLDER, (_m, isEnv: string | undefined, name: string) => {
    const value = isEnv ? scope.env[name] : scope.vars?.[name];
    if (value === undefined || value === '') {
      throw new TemplateError(isEnv ? `environment variable ${name} is not set` : `no captured value "${name}" (capture it in an earlier step)`);
    }
    scope.secrets.add(value);
    return value;
  });
}

/** Substitutes placeholders in every string of a JSON value. */
export function fillDeep(value: unknown, scope: Scope): unknown {
  if (typeof value === 'string') return fill(value, scope);
  if (Array.isArray(value)) return value.map((v) => fillDeep(v, scope));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fillDeep(v, scope)]));
  }
  return value;
}

/** Request headers: strings with placeholders, or `{ env, prefix }` references. */
export function fillHeaders(headers: Record<string, string | FromEnv>, scope: Scope): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value === 'string') out[name] = fill(value, scope);
    else {
      const secret = scope.env[value.env];
      if (!secret) throw new TemplateError(`environment variable ${value.env} is not set`);
      scope.secrets.add(secret);
      out[name] = `${value.prefix ?? ''}${secret}`;
    }
  }
  return out;
}

/** Replaces every secret in `text` by `[redacted]`; short values are left alone to keep outputs readable. */
export function redact(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('[redacted]');
  return out;
}
