/**
 * Does an HTTP answer meet its expectation? Status set ("the route exists": not
 * 404/405 and not 5xx; "success": 2xx or 3xx), JSON body assertions, header
 * patterns.
 */
import type { BodyAssertion } from '../manifest/schema.js';

export interface Answer {
  status: number;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}

/** `exists`: any answer a route gives (not 404/405/5xx); `success`: 2xx or 3xx; or a list of codes. */
export type StatusRule = 'exists' | 'success' | number[];

export interface Expectation {
  status: StatusRule;
  body: BodyAssertion[];
  headers: Record<string, string>;
}

/** `exists`: the route answered as a route does; an unauthenticated 401 passes, a 404 or a 503 does not. */
export function statusMeets(status: number, expected: StatusRule): boolean {
  if (expected === 'exists') return status !== 404 && status !== 405 && status < 500;
  if (expected === 'success') return status >= 200 && status < 400;
  return expected.includes(status);
}

function statusFailure(status: number, expected: StatusRule): string {
  if (expected === 'exists') return `answered ${status}: the route is missing or broken`;
  if (expected === 'success') return status === 401 || status === 403 ? `answered ${status}: a public endpoint refused the request` : `answered ${status}, expected 2xx or 3xx`;
  return `answered ${status}, expected ${expected.join(' or ')}`;
}

/** The value at a dotted path (`data.items[0].id`; a leading `$.` is allowed), or undefined. */
export function valueAt(body: unknown, path: string): unknown {
  const parts = path.replace(/^\$\.?/, '').match(/[^.[\]]+/g) ?? [];
  let cur: unknown = body;
  for (const p of parts) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/** Failures, one line each; empty when the answer meets the expectation. Values are not quoted (they may be secrets). */
export function check(answer: Answer, expected: Expectation): string[] {
  const failures: string[] = [];
  if (!statusMeets(answer.status, expected.status)) failures.push(statusFailure(answer.status, expected.status));
  for (const a of expected.body) {
    const v = valueAt(answer.body, a.path);
    if (a.exists !== undefined && (v !== undefined) !== a.exists) failures.push(`body ${a.path} ${a.exists ? 'is missing' : 'is present'}`);
    if (a.equals !== undefined && JSON.stringify(v) !== JSON.stringify(a.equals)) failures.push(`body ${a.path} does not equal the expected value`);
    if (a.matches !== undefined && (v === undefined || !new RegExp(a.matches).test(typeof v === 'string' ? v : JSON.stringify(v)))) {
      failures.push(`body ${a.path} does not match /${a.matches}/`);
    }
  }
  for (const [name, pattern] of Object.entries(expected.headers)) {
    const raw = answer.headers[name.toLowerCase()];
    const value = Array.isArray(raw) ? raw.join(', ') : raw;
    if (value === undefined) failures.push(`header ${name} is missing`);
    else if (pattern && !new RegExp(pattern).test(value)) failures.push(`header ${name} does not match /${pattern}/`);
  }
  return failures;
}
