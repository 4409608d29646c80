/**
 * Alert policies: the life of an alert. A group of failing signals with its
 * impact becomes `pending`; after the policy's `for` it fires and is sent;
 * unresolved past each escalation step its escalation level rises and it is
 * sent again (Alertmanager calls escalation out of scope: it lives here);
 * reminders repeat it; when the signals clear it resolves. Pure: the clock is
 * passed in, so every transition is table-tested.
 */
import type { Context, EvaluatorConfig, Level, Policy } from '../config/schema.js';
import type { Assessment } from '../rules/impact.js';
import type { AlertNotification } from '../notifiers/types.js';

export const LEVEL_RANK: Record<Level, number> = { low: 1, medium: 2, high: 3, critical: 4 };

export interface AlertState {
  /** service|component */
  key: string;
  service: string;
  component: string;
  environment?: string;
  assessment: Assessment;
  state: 'pending' | 'firing';
  /** When the failure was first seen (the earliest failing observation). */
  since: number;
  firedAt?: number;
  escalationLevel: number;
  lastSentAt?: number;
  /** The labels of the last firing notification, to resolve exactly that one when labels change. */
  sentLabels?: Record<string, string>;
}

export interface PolicyView {
  policy: Policy;
  channels: string[];
  escalation: Policy['escalation'];
  headline?: string;
}

/** The effective policy for an impact: its level's, with a business context's channels and escalation on top. */
export function policyFor(config: Pick<EvaluatorConfig, 'policies' | 'contexts'>, assessment: Assessment): PolicyView {
  const policy = config.policies[assessment.impact.level];
  const context: Context | undefined = assessment.impact.context ? config.contexts[assessment.impact.context] : undefined;
  return {
    policy,
    channels: context?.channels ?? policy.channels,
    escalation: context?.escalation ?? policy.escalation,
    ...(context?.headline ? { headline: context.headline } : {}),
  };
}

/** How many escalation steps have passed for an alert firing since `firedAt`. */
export function escalationLevelAt(escalation: Policy['escalation'], firedAt: number, now: number): number {
  return escalation.filter((e) => now - firedAt >= e.after).length;
}

const money = (amount: number, currency: string) => {
  try {
    return new Intl.NumberFormat('en-GB', { style: 'currency', currency, maximumFractionDigits: 0 }).format(amount);
  } catch {
    return `${amount} ${currency}`;
  }
};

/** `kind subject` per distinct failing fact, with `: reason` when a signal of it carries one (the first, per fact). */
export function failingWithReasons(signals: Assessment['signals']): string[] {
  const out = new Map<string, string | undefined>();
  for (const s of signals) {
    const fact = `${s.kind} ${s.subject}`;
    if (!out.has(fact) || (out.get(fact) === undefined && s.reason)) out.set(fact, s.reason);
  }
  return [...out].map(([fact, reason]) => (reason ? `${fact}: ${reason}` : fact));
}

/** The notification for an alert: labels Alertmanager routes on, annotations people read. */
export function toNotification(a: AlertState, view: PolicyView, status: 'firing' | 'resolved', now: number, publicUrl?: string): AlertNotification {
  const { impact, rule, signals } = a.assessment;
  const channels = [...new Set([...view.channels, ...view.escalation.slice(0, a.escalationLevel).flatMap((e) => e.channels)])];
  const labels: Record<string, string> = {
    alertname: 'VigilBusinessImpact',
    service: a.service,
    component: a.component || '(service)',
    severity: impact.level,
    priority: impact.priority,
    rule,
    channels: channels.join(','),
    escalation: String(a.escalationLevel),
    ...(impact.context ? { business_context: impact.context } : {}),
    ...(a.environment ? { environment: a.environment } : {}),
  };
  const what = [...new Set(signals.map((s) => `${s.kind} ${s.subject}`))];
  // The same, each with why it fails when the app said (`import users: Cannot find module …`).
  const why = failingWithReasons(signals);
  // With no summary of the rule's own, a group of nothing but refused telemetry, or of no running instance, says so.
  const only = (kind: string) => signals.every((s) => s.kind === kind);
  const fallback = only('rejected')
    ? 'telemetry rejected from {service}: the evaluator refuses its batches'
    : only('no_instance')
      ? '{service} has no running instance: its last instance stopped cleanly, and it must always run'
      : only('release')
        ? '{service}: {reasons}'
        : '{service}: {component} is failing ({signals})';
  // A release signal's reason is the sentence itself: `GET /api/v1/users removed since 1.4.2 (not served by 1.5.0)`.
  const reasons = [...new Set(signals.map((s) => s.reason ?? `${s.kind} ${s.subject}`))];
  const summary = (impact.summary ?? fallback)
    .replaceAll('{service}', a.service)
    .replaceAll('{component}', a.component || 'the service')
    .replaceAll('{signals}', what.slice(0, 5).join('; ') + (what.length > 5 ? `; and ${what.length - 5} more` : ''))
    .replaceAll('{reasons}', reasons.slice(0, 5).join('; ') + (reasons.length > 5 ? `; and ${reasons.length - 5} more` : ''));
  const annotations: Record<string, string> = {
    summary: view.headline ? `${view.headline} — ${summary}` : summary,
    description: `Impact ${impact.level} (${impact.priority}) by rule ${rule}. Failing: ${why.join('; ')}.`,
    impact_level: impact.level,
    priority: impact.priority,
    escalation_level: String(a.escalationLevel),
    ...(impact.revenue ? { revenue_at_risk: money(impact.revenue.amount, impact.revenue.currency), revenue_amount: String(impact.revenue.amount), revenue_currency: impact.revenue.currency } : {}),
    ...(impact.customers ? { customers: impact.customers } : {}),
    ...(impact.runbook ? { runbook_url: impact.runbook } : {}),
    affected: why.join('\n'),
  };
  return {
    id: `${a.key}|${a.escalationLevel}`,
    status,
    labels,
    annotations,
    startsAt: new Date(a.firedAt ?? a.since),
    ...(status === 'resolved' ? { endsAt: new Date(now) } : {}),
    ...(publicUrl ? { generatorURL: `${publicUrl.replace(/\/$/, '')}/api/v1/status#${encodeURIComponent(a.key)}` } : {}),
  };
}

/**
 * What Alertmanager already holds of an alert (another replica sent it): the
 * earliest `startsAt` of its label sets and the highest `escalation` label. A
 * replica that starts without the alert in its state adopts them when it sees
 * the same group failing, so it neither sends a level another replica resolved
 * nor escalates on its own clock.
 */
export interface AlertHint {
  service: string;
  /** `''` for a service-level alert (its label says `(service)`). */
  component: string;
  environment?: string;
  startsAt: number;
  escalationLevel: number;
}

/** The engine's key for a hint: `service|component`, as for alerts. */
export const hintKey = (h: Pick<AlertHint, 'service' | 'component'>) => `${h.service}|${h.component}`;

/** Reduces Alertmanager's `VigilBusinessImpact` alerts to one hint per (service, component, environment): earliest start, highest level. */
export function hintsFrom(alerts: Array<{ labels: Record<string, string>; startsAt: number }>): Map<string, AlertHint[]> {
  const out = new Map<string, AlertHint[]>();
  for (const { labels, startsAt } of alerts) {
    const service = labels.service;
    const level = Number(labels.escalation);
    if (!service || labels.component === undefined || !Number.isInteger(level) || level < 0 || !Number.isFinite(startsAt)) continue;
    const hint: AlertHint = { service, component: labels.component === '(service)' ? '' : labels.component, ...(labels.environment ? { environment: labels.environment } : {}), startsAt, escalationLevel: level };
    const list = out.get(hintKey(hint)) ?? [];
    const same = list.find((h) => h.environment === hint.environment);
    if (same) {
      same.startsAt = Math.min(same.startsAt, startsAt);
      same.escalationLevel = Math.max(same.escalationLevel, level);
    } else list.push(hint);
    out.set(hintKey(hint), list);
  }
  return out;
}

export interface Step {
  /** Notifications to send now. */
  send: AlertNotification[];
  /** Alerts after this step. */
  alerts: Map<string, AlertState>;
}

/**
 * One evaluation: the current assessments (by group key) against the alerts so
 * far. Returns the notifications to send and the new alert states.
 */
export function step(
  config: Pick<EvaluatorConfig, 'policies' | 'contexts'> & { publicUrl?: string },
  previous: Map<string, AlertState>,
  current: Map<string, { service: string; component: string; environment?: string; assessment: Assessment }>,
  now: number,
  /** From Alertmanager at start; a hint used is removed from the map. */
  hints?: Map<string, AlertHint[]>,
): Step {
  const alerts = new Map<string, AlertState>();
  const send: AlertNotification[] = [];
  for (const [key, cur] of current) {
    const prev = previous.get(key);
    // The earliest failing point's own time (not this replica's clock, unless the point is from its future).
    let since = prev?.since ?? Math.min(now, ...cur.assessment.signals.map((s) => s.failingSince ?? s.observedAt));
    const hint = prev?.state === 'firing' ? undefined : takeHint(hints, key, cur.environment);
    if (hint) since = Math.min(since, hint.startsAt);
    const a: AlertState = {
      ...(prev ?? { key, state: 'pending', escalationLevel: 0 }),
      key,
      service: cur.service,
      component: cur.component,
      ...(cur.environment ? { environment: cur.environment } : {}),
      assessment: cur.assessment,
      since,
    } as AlertState;
    const view = policyFor(config, cur.assessment);
    if (hint) {
      // Another replica fired it already: its start and level, whatever this one's `for` says.
      a.state = 'firing';
      a.firedAt = hint.startsAt;
      a.escalationLevel = Math.max(a.escalationLevel, hint.escalationLevel);
    } else if (a.state === 'pending' && now - since >= view.policy.for) {
      a.state = 'firing';
      // When the policy's `for` was met by the signals' own times: replicas fed the same points agree.
      a.firedAt = since + view.policy.for;
    }
    if (a.state === 'firing') {
      const level = escalationLevelAt(view.escalation, a.firedAt!, now);
      const escalated = level > a.escalationLevel;
      const impactChanged = prev?.state === 'firing' && prev.assessment.rule !== cur.assessment.rule;
      a.escalationLevel = Math.max(a.escalationLevel, level);
      const reminderDue = view.policy.reminder !== undefined && a.lastSentAt !== undefined && now - a.lastSentAt >= view.policy.reminder;
      if (!prev || prev.state !== 'firing' || escalated || impactChanged || reminderDue) {
        const n = toNotification(a, view, 'firing', now, config.publicUrl);
        // A label change (escalation, impact) is a new alert for Alertmanager: resolve the old one.
        if (a.sentLabels && JSON.stringify(a.sentLabels) !== JSON.stringify(n.labels) && prev) {
          send.push({ ...toNotification(prev, policyFor(config, prev.assessment), 'resolved', now, config.publicUrl), labels: a.sentLabels, id: `${key}|${prev.escalationLevel}`, replaced: true });
        }
        send.push(n);
        a.sentLabels = n.labels;
        a.lastSentAt = now;
      }
    }
    alerts.set(key, a);
  }
  for (const [key, prev] of previous) {
    if (current.has(key) || prev.state !== 'firing') continue;
    const view = policyFor(config, prev.assessment);
    send.push({
      ...toNotification(prev, view, 'resolved', now, config.publicUrl),
      ...(prev.sentLabels ? { labels: prev.sentLabels } : {}),
      ...(view.policy.resolve ? {} : { quiet: true }),
    });
  }
  return { send, alerts };
}

function takeHint(hints: Map<string, AlertHint[]> | undefined, key: string, environment: string | undefined): AlertHint | undefined {
  const list = hints?.get(key);
  const i = list?.findIndex((h) => h.environment === environment) ?? -1;
  if (i < 0) return undefined;
  const [hint] = list!.splice(i, 1);
  if (list!.length === 0) hints!.delete(key);
  return hint;
}
