import { z } from 'zod';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/** Parses `250ms`, `5s`, `2m`, `1h` into milliseconds; `undefined` if malformed. */
export function parseDuration(text: string): number | undefined {
  const match = DURATION_RE.exec(text.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * UNIT_MS[match[2]!]!);
}

/**
 * A duration in a config file: a string with a unit (`300ms`, `5s`, `2m`) or a
 * number of milliseconds. Parsed to milliseconds.
 */
export const Duration = z.union([z.number(), z.string()], { error: 'expected a duration such as "500ms", "5s" or "2m" (or whole milliseconds)' }).transform((value, ctx) => {
  const ms = typeof value === 'number' ? (Number.isInteger(value) && value >= 0 ? value : undefined) : parseDuration(value);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a duration such as "500ms", "5s" or "2m" (or whole milliseconds), got ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  return ms;
});

/** A timeout as the manifest would write it: `500ms`, `10s`, `1.5s`. */
export function formatTimeout(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${Number((ms / 1000).toFixed(3))}s`;
}

/** Formats milliseconds for people: `850ms`, `1.2s`, `3m`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  return `${(ms / 60_000).toFixed(1)}m`;
}
