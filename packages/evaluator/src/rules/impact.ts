/**
 * Impact rules: which failure means what for the business. Rules are tried in
 * order and the first that matches one of a component's failing signals wins;
 * the default impact applies when none does. Table-tested like a condition.
 */
import type { Impact, Match, Rule } from '../config/schema.js';
import type { Signal } from '../signals/types.js';

const asList = <T>(v: T | T[] | undefined): T[] | undefined => (v === undefined ? undefined : Array.isArray(v) ? v : [v]);

/** A label condition: an exact value, or `/regex/`. */
function labelMatches(expected: string, actual: string | undefined): boolean {
  if (actual === undefined) return false;
  const re = /^\/(.*)\/$/.exec(expected);
  return re ? new RegExp(re[1]!).test(actual) : expected === actual;
}

export function matches(match: Match, s: Signal): boolean {
  try {
    return matchesUnsafe(match, s);
  } catch {
    return false; // a rule that cannot be evaluated never stops the others (the schema already rejects bad regexes)
  }
}

function matchesUnsafe(match: Match, s: Signal): boolean {
  const services = asList(match.service);
  const components = asList(match.component);
  const kinds = asList(match.signal);
  if (services && !services.includes(s.service)) return false;
  if (components && !components.includes(s.component)) return false;
  if (kinds && !(kinds as readonly string[]).includes(s.kind)) return false;
  return Object.entries(match.labels).every(([k, v]) => labelMatches(v, s.labels[k]));
}

export interface Assessment {
  /** The rule that decided, or `default`. */
  rule: string;
  impact: Impact;
  /** The signals the rule matched (all failing signals of the group for the default). */
  signals: Signal[];
}

/** The impact of a group of failing signals (one service's component). */
export function assess(rules: Rule[], defaultImpact: Impact, signals: Signal[]): Assessment {
  for (const rule of rules) {
    const hit = signals.filter((s) => matches(rule.match, s));
    if (hit.length) return { rule: rule.name, impact: rule.impact, signals: hit };
  }
  return { rule: 'default', impact: defaultImpact, signals };
}

/** Groups failing signals by service and component: one alert per group. */
export function groupSignals(signals: Signal[]): Map<string, Signal[]> {
  const groups = new Map<string, Signal[]>();
  for (const s of signals) {
    if (!s.failing) continue;
    const key = `${s.service}|${s.component}`;
    const list = groups.get(key) ?? [];
    list.push(s);
    groups.set(key, list);
  }
  return groups;
}
