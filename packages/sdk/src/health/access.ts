/**
 * Who may read the detailed health endpoints: a caller with the bearer token
 * (compared in constant time), or a loopback caller when the config allows it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export interface AccessPolicy {
  /** The expected token, or undefined when none is configured. */
  token: string | undefined;
  allowLoopback: boolean;
}

export type AccessDecision = { allowed: true } | { allowed: false; status: 401; reason: string };

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time comparison; hashing first makes the lengths equal too. */
export function tokenMatches(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export function decideAccess(policy: AccessPolicy, authorization: string | undefined, remoteAddress: string | undefined): AccessDecision {
  const bearer = /^Bearer\s+(.+)$/i.exec(authorization ?? '')?.[1]?.trim();
  if (policy.token && bearer !== undefined && tokenMatches(bearer, policy.token)) return { allowed: true };
  if (policy.allowLoopback && isLoopback(remoteAddress)) return { allowed: true };
  if (bearer !== undefined) return { allowed: false, status: 401, reason: 'the bearer token is not valid' };
  return {
    allowed: false,
    status: 401,
    reason: policy.token
      ? 'detailed health needs a bearer token (Authorization: Bearer <token>)'
      : policy.allowLoopback
        ? 'detailed health is served to loopback callers only; set the health token variable to open it to others'
        : 'detailed health is closed: loopback access is off and no health token is set',
  };
}
