/**
 * Alertmanager, API v2: alerts are POSTed to `/api/v2/alerts` of every URL of the
 * cluster (Alertmanager replicas gossip silences and notification logs, not
 * alerts, so each must hear every alert). Each URL has its own queue: one replica
 * down never delays another, and an alert counts as sent to a URL only after a 2xx.
 *
 * Alertmanager resolves an alert posted without `endsAt` once it has not heard of
 * it for `resolve_timeout` (5 m by default). So the alerts firing now are posted
 * again every `resend` (60 s by default) — a still-failing alert never
 * auto-resolves, and an Alertmanager that restarted without its state learns
 * them again — and a resolved one is posted once with its `endsAt`. Every post
 * carries the alert's original `startsAt`: a delivery delayed by an outage is the
 * same incident, not a new one.
 *
 * When an alert ends, its resolved post carries `endsAt = now + resolveHold`: it
 * stays active (and keeps inhibiting the Prometheus rule alerts of the same
 * fault) until those resolve too. A label change (escalation) resolves the old
 * set at once: the new level carries the inhibition on.
 *
 * `restore()` reads back the evaluator's alerts Alertmanager holds, so a replica
 * that starts without them learns their start and escalation level.
 */
import got from 'got';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AlertmanagerNotifier } from '../../config/schema.js';
import { DeliveryQueue, PermanentError, requestFailure, type SetTimer } from '../queue.js';
import type { AlertNotification, HeldAlert, Notifier, NotifierHealth } from '../types.js';

/** Restore reads at most this much of an answer, and this many alerts: anything beyond is refused or cut. */
export const RESTORE_MAX_BYTES = 1024 * 1024;
export const RESTORE_MAX_ALERTS = 1000;
/** Only the evaluator's own alerts, active ones (silenced and inhibited included). */
const RESTORE_QUERY = 'filter=alertname%3D%22VigilBusinessImpact%22&active=true&silenced=true&inhibited=true&unprocessed=true';

/** What restore needs of Alertmanager's `GET /api/v2/alerts` (a list of gettable alerts); the rest is ignored. */
const GettableAlerts = z.array(
  z.object({
    labels: z.record(z.string(), z.string()),
    startsAt: z.iso.datetime({ offset: true }),
  }),
);

export type AlertmanagerConfig = z.output<typeof AlertmanagerNotifier>;

export interface AlertmanagerDeps {
  logger: Logger;
  /** Milliseconds since the epoch; `endsAt` of a resolved alert that came without one. */
  now?: () => number;
  /** Tests: the queues' back-off jitter. */
  random?: () => number;
  /** Tests: the queues' back-off timer. */
  setTimer?: SetTimer;
}

/** The body Alertmanager's `POST /api/v2/alerts` takes, one element per alert. */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt?: string;
  generatorURL?: string;
}

interface QueuedAlert {
  /** The evaluator's alert id, for logs. */
  id: string;
  /** A resolve: when the evaluator resolved it (`body.endsAt` adds the hold); what `pending()` hands back. */
  resolvedAt?: string;
  /** A resolve of a replaced label set (no hold). */
  replaced?: boolean;
  /** Alertmanager's identity of the alert: its label set. Coalescing is per label set. */
  key: string;
  body: PostableAlert;
}

interface Target {
  /** The URL without credentials, for logs and health. */
  display: string;
  endpoint: string;
  queue: DeliveryQueue<QueuedAlert>;
}

/** Alertmanager identifies an alert by its label set; the same set, whatever the key order, is one alert. */
function labelKey(labels: Record<string, string>): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** `scheme://host[:port]/path` without `user:password@`. */
export function displayUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

function iso(d: Date | undefined, fallback: number): string {
  return d instanceof Date && !Number.isNaN(d.getTime()) ? d.toISOString() : new Date(fallback).toISOString();
}

export function createAlertmanagerNotifier(name: string, config: AlertmanagerConfig, deps: AlertmanagerDeps): Notifier {
  const now = deps.now ?? Date.now;
  const logger = deps.logger.child({ notifier: name, type: 'alertmanager' });
  /** Firing alerts by evaluator id: what the resend timer posts again. */
  const active = new Map<string, QueuedAlert>();
  let stopped = false;

  const targets: Target[] = config.urls.map((url) => {
    const display = displayUrl(url);
    const endpoint = `${url.replace(/\/+$/, '')}/api/v2/alerts`;
    const queue = new DeliveryQueue<QueuedAlert>({
      deliver: (a, signal) => post(endpoint, a.body, signal),
      retry: config.retry,
      logger: logger.child({ target: display }),
      keyOf: (a) => a.key,
      describe: (a) => `${a.id} (${a.body.endsAt ? 'resolved' : 'firing'})`,
      now,
      ...(deps.random && { random: deps.random }),
      ...(deps.setTimer && { setTimer: deps.setTimer }),
    });
    return { display, endpoint, queue };
  });

  async function post(endpoint: string, body: PostableAlert, signal: AbortSignal): Promise<void> {
    let res;
    try {
      res = await got.post(endpoint, {
        json: [body],
        throwHttpErrors: false,
        // The queue retries, with back-off and without blocking the other URLs.
        retry: { limit: 0 },
        followRedirect: false,
        timeout: { request: config.timeout },
        signal,
      });
    } catch (err) {
      throw new Error(requestFailure(err));
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return;
    // Alertmanager explains a refusal in the body ("start time must be before end time").
    const detail = `HTTP ${res.statusCode}${res.body ? `: ${String(res.body).trim().slice(0, 200)}` : ''}`;
    // 400/422: this alert is invalid and always will be; retrying would block every later alert.
    if (res.statusCode === 400 || res.statusCode === 422) throw new PermanentError(detail);
    throw new Error(detail);
  }

  function enqueue(a: QueuedAlert): void {
    for (const t of targets) t.queue.push(a);
  }

  function toQueued(n: AlertNotification, endsAt?: string): QueuedAlert {
    const body: PostableAlert = {
      labels: { ...n.labels },
      annotations: { ...n.annotations },
      startsAt: iso(n.startsAt, now()),
      ...(endsAt !== undefined && { endsAt }),
      ...(n.generatorURL && { generatorURL: n.generatorURL }),
    };
    return { id: n.id, key: labelKey(body.labels), body };
  }

  /** Alertmanager refuses an `endsAt` before `startsAt` (400). */
  function endOf(startsAt: string, endsAt: Date | undefined): string {
    const end = iso(endsAt, now());
    return Date.parse(end) < Date.parse(startsAt) ? startsAt : end;
  }

  /** Resolved label sets posted with the hold, until their `endsAt` (for health). */
  const held = new Map<string, { alert: string; until: string }>();

  /** One URL's active `VigilBusinessImpact` alerts; [] (logged) when it fails, is slow, or answers too much or wrongly. */
  async function fetchActive(t: Target, timeoutMs: number): Promise<HeldAlert[]> {
    const url = `${t.endpoint}?${RESTORE_QUERY}`;
    const ac = new AbortController();
    let tooBig = false;
    try {
      const res = await got
        .get(url, { throwHttpErrors: false, retry: { limit: 0 }, followRedirect: false, timeout: { request: Math.max(1, timeoutMs) }, signal: ac.signal })
        .on('downloadProgress', (p) => {
          if (p.transferred > RESTORE_MAX_BYTES && !tooBig) {
            tooBig = true;
            ac.abort();
          }
        });
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
      if (res.body.length > RESTORE_MAX_BYTES) throw new Error(`answer over ${RESTORE_MAX_BYTES} bytes`);
      let body: unknown;
      try {
        body = JSON.parse(res.body);
      } catch {
        throw new Error('answer is not JSON');
      }
      const parsed = GettableAlerts.safeParse(body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new Error(`answer is not a list of alerts: at ${issue.path.join('.') || '(root)'}: ${issue.message}`);
      }
      if (parsed.data.length > RESTORE_MAX_ALERTS) logger.warn({ target: t.display, alerts: parsed.data.length }, `Alertmanager holds over ${RESTORE_MAX_ALERTS} alerts of the evaluator: the rest are ignored`);
      return parsed.data.slice(0, RESTORE_MAX_ALERTS).map((a) => ({ labels: a.labels, startsAt: new Date(a.startsAt) }));
    } catch (err) {
      const why = tooBig ? `answer over ${RESTORE_MAX_BYTES} bytes` : err instanceof Error && !('code' in err) ? err.message : requestFailure(err);
      logger.warn({ target: t.display, err: why }, 'could not read the alerts Alertmanager holds: starting without hints from it');
      return [];
    }
  }

  /** The same alert under an old label set (e.g. its escalation label changed): resolve it now, or Alertmanager keeps it firing until resolve_timeout. */
  function resolveStale(prev: QueuedAlert | undefined, key: string): void {
    if (!prev || prev.key === key) return;
    enqueue({ ...prev, body: { ...prev.body, endsAt: endOf(prev.body.startsAt, new Date(now())) } });
  }

  const resendTimer = setInterval(() => {
    if (active.size === 0) return;
    logger.debug({ alerts: active.size }, 'resending firing alerts');
    for (const a of active.values()) enqueue(a);
  }, Math.max(config.resend, 1));
  resendTimer.unref();

  return {
    name,
    type: 'alertmanager',

    notify(n) {
      if (stopped) {
        logger.warn({ alert: n.id }, 'notification after stop: not delivered');
        return;
      }
      const prev = active.get(n.id);
      if (n.status === 'firing') {
        // Never an endsAt while firing: the resend keeps it alive, and an evaluator that dies
        // lets it resolve after resolve_timeout instead of firing forever.
        const a = toQueued(n);
        resolveStale(prev, a.key);
        held.delete(a.key);
        active.set(n.id, a);
        enqueue(a);
      } else {
        active.delete(n.id);
        const a = toQueued(n);
        a.resolvedAt = endOf(a.body.startsAt, n.endsAt);
        // An alert that ends is held: it stays active (inhibiting) until the rule alerts of the same
        // fault resolved too. A replaced label set is not: the new one carries the inhibition on.
        const hold = n.replaced ? 0 : config.resolveHold;
        a.body.endsAt = new Date(Date.parse(a.resolvedAt) + hold).toISOString();
        if (n.replaced) a.replaced = true;
        if (hold > 0) held.set(a.key, { alert: n.id, until: a.body.endsAt });
        enqueue(a);
        resolveStale(prev, a.key);
      }
    },

    async restore(timeoutMs) {
      const started = now();
      const found = await Promise.all(targets.map((t) => fetchActive(t, timeoutMs)));
      const alerts = found.flat().slice(0, RESTORE_MAX_ALERTS);
      if (alerts.length) logger.info({ alerts: alerts.length, ms: now() - started }, 'Alertmanager holds alerts of the evaluator: taken as hints');
      return alerts;
    },

    async flush(timeoutMs) {
      await Promise.all(targets.map((t) => t.queue.flush(timeoutMs)));
    },

    pending(): AlertNotification[] {
      // Each URL has its own queue: what any of them still has to post, once per label set and state.
      const out = new Map<string, AlertNotification>();
      for (const t of targets) {
        for (const a of t.queue.items()) {
          const status = a.body.endsAt === undefined ? 'firing' : 'resolved';
          out.set(`${a.key} ${status}`, {
            id: a.id,
            status,
            labels: { ...a.body.labels },
            annotations: { ...a.body.annotations },
            startsAt: new Date(a.body.startsAt),
            ...(a.body.endsAt !== undefined && { endsAt: new Date(a.resolvedAt ?? a.body.endsAt) }),
            ...(a.replaced && { replaced: true }),
            ...(a.body.generatorURL !== undefined && { generatorURL: a.body.generatorURL }),
          });
        }
      }
      return [...out.values()];
    },

    health(): NotifierHealth {
      const h: NotifierHealth = { name, type: 'alertmanager', queued: 0, sent: 0, failed: 0 };
      const failing: string[] = [];
      let latest: { at: Date; text: string } | undefined;
      for (const t of targets) {
        const s = t.queue.stats();
        h.queued += s.queued;
        h.sent += s.sent;
        h.failed += s.failed;
        if (s.lastSuccessAt && (!h.lastSuccessAt || s.lastSuccessAt > h.lastSuccessAt)) h.lastSuccessAt = s.lastSuccessAt;
        if (s.lastError === undefined) continue;
        const text = `${t.display}: ${s.lastError}`;
        if (s.failing) failing.push(text);
        if (!latest || s.lastErrorAt! > latest.at) latest = { at: s.lastErrorAt!, text };
      }
      // With a cluster, which replica fails is the useful part: every URL failing now, else
      // the most recent error of any.
      if (failing.length) h.lastError = failing.join('; ');
      else if (latest) h.lastError = latest.text;
      const t = now();
      for (const [key, v] of held) if (Date.parse(v.until) <= t) held.delete(key);
      if (held.size) h.held = [...held.values()];
      return h;
    },

    async stop() {
      stopped = true;
      clearInterval(resendTimer);
      await Promise.all(targets.map((t) => t.queue.stop()));
    },
  };
}
