/**
 * The probe marker: proof, on a request, that this process's monitor sent it.
 *
 * `x-vigil-synthetic` says what kind of request it is, but any client can send
 * it; trusting it let a client hide from the error accounting and from a rate
 * limiter. So every synthetic request also carries `x-vigil-probe:
 * <unix seconds>.<mac>`, the mac an HMAC-SHA256 of the kind and the time under a
 * secret drawn at random when the process starts. The secret never leaves the
 * process (not even in the header); a marker seen in a log is worth at most
 * `MAX_AGE_S`, for the kind it was made for.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { PROBE_HEADER, SYNTHETIC_HEADER } from '../semconv.js';

const SECRET = randomBytes(32);
/** How old (or, for a clock stepped back, how far ahead) a marker may be. Probes arrive within their timeout. */
const MAX_AGE_S = 120;
/** Longer values are not markers: nothing is computed for them. */
const MAX_LENGTH = 64;
/**
 * The kind of the rate-limit check's requests: they are meant to meet the limiter as a
 * client's would, so `isProbe` does not vouch for them (the accounting still skips them).
 */
export const LIMITER_KIND = 'rate-limit';

const verified = new WeakMap<object, string | false>();

function mac(kind: string, seconds: string): Buffer {
  return createHmac('sha256', SECRET).update(`${kind}\n${seconds}`).digest();
}

/** The headers that mark a synthetic request of `kind` as this process's. */
export function probeHeaders(kind: string, nowMs = Date.now()): Record<string, string> {
  const seconds = String(Math.floor(nowMs / 1000));
  return { [SYNTHETIC_HEADER]: kind, [PROBE_HEADER]: `${seconds}.${mac(kind, seconds).toString('base64url')}` };
}

/**
 * The kind of a request this process's monitor sent, or `undefined` for any other
 * (no marker, a forged or stale one, `x-vigil-synthetic` alone). Constant-time
 * in the mac; remembered per request, so several callers cost one HMAC.
 */
export function probeKind(req: Pick<IncomingMessage, 'headers'>, nowMs = Date.now()): string | undefined {
  const value = req.headers[PROBE_HEADER];
  if (value === undefined) return undefined;
  const known = verified.get(req);
  if (known !== undefined) return known || undefined;
  const kind = check(value, req.headers[SYNTHETIC_HEADER], nowMs);
  verified.set(req, kind ?? false);
  return kind;
}

function check(value: string | string[], kindHeader: string | string[] | undefined, nowMs: number): string | undefined {
  if (typeof value !== 'string' || typeof kindHeader !== 'string' || value.length > MAX_LENGTH || kindHeader.length > MAX_LENGTH) return undefined;
  const dot = value.indexOf('.');
  const seconds = value.slice(0, dot);
  if (dot < 1 || !/^\d{1,12}$/.test(seconds) || Math.abs(nowMs / 1000 - Number(seconds)) > MAX_AGE_S) return undefined;
  const given = Buffer.from(value.slice(dot + 1), 'base64url');
  const expected = mac(kindHeader, seconds);
  return given.length === expected.length && timingSafeEqual(given, expected) ? kindHeader : undefined;
}

/**
 * True when this process's monitor sent the request: for handlers and for rate
 * limiters' skip options (`skip: (req) => guard.isProbe(req)`). False for the
 * rate-limit check's requests, which must meet the limiter.
 */
export function isProbe(req: Pick<IncomingMessage, 'headers'>): boolean {
  const kind = probeKind(req);
  return kind !== undefined && kind !== LIMITER_KIND;
}
