/**
 * What notifiers deliver: an alert's state change. Each notifier has its own
 * queue and retries; one that fails never blocks the others, and an alert
 * counts as sent to a notifier only after that notifier succeeded.
 */

export type AlertStatus = 'firing' | 'resolved';

export interface AlertNotification {
  /** Stable identity: the same alert on every evaluator replica (Alertmanager deduplicates on labels). */
  id: string;
  status: AlertStatus;
  /** Routing labels: alertname, service, component, severity, priority, channels, escalation, … */
  labels: Record<string, string>;
  /** Human text: summary, description, revenue_at_risk, customers, runbook_url, … */
  annotations: Record<string, string>;
  startsAt: Date;
  /** Set when resolved. */
  endsAt?: Date;
  /** A link back to the evaluator's status for this alert. */
  generatorURL?: string;
  /**
   * A resolve the policy does not announce (`resolve: false`): Alertmanager
   * still learns the alert ended (its own `send_resolved` decides what people
   * see); the webhook and console notifiers stay quiet.
   */
  quiet?: boolean;
  /**
   * A resolve because the alert's labels changed (escalation, a new rule): the
   * new label set, sent with it, carries the alert on. Alertmanager's resolve
   * hold is for an alert that ends, not for this.
   */
  replaced?: boolean;
}

export interface NotifierHealth {
  name: string;
  type: string;
  /** Notifications waiting to be delivered (being retried). */
  queued: number;
  sent: number;
  failed: number;
  lastError?: string;
  lastSuccessAt?: Date;
  /** Alertmanager: resolved alerts posted with `endsAt` in the future (the resolve hold), until when. */
  held?: Array<{ alert: string; until: string }>;
}

/** An alert a notifier's receiver already holds (Alertmanager's active alerts): its labels and start. */
export interface HeldAlert {
  labels: Record<string, string>;
  startsAt: Date;
}

export interface Notifier {
  readonly name: string;
  readonly type: string;
  /** Queues a notification; returns at once. Delivery and retries happen in the background. */
  notify(n: AlertNotification): void;
  /** Resolves when everything queued so far was delivered or `timeoutMs` passed. */
  flush(timeoutMs: number): Promise<void>;
  health(): NotifierHealth;
  /**
   * The notifications queued and not delivered yet, oldest first (a notifier
   * that writes at once, like the console, has none). The evaluator persists
   * them so that a restart delivers them instead of losing them.
   */
  pending?(): AlertNotification[];
  /**
   * At start: the evaluator's alerts the receiver already holds (sent by another
   * replica, or by this one before a restart), as hints. Bounded by `timeoutMs`;
   * never rejects: a failure is logged and gives none.
   */
  restore?(timeoutMs: number): Promise<HeldAlert[]>;
  stop(): Promise<void>;
}
