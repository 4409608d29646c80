/**
 * A plain JSON webhook: every state change of an alert is POSTed as
 *
 *   { "version": "1", "status": "firing" | "resolved",
 *     "alert": { "id", "labels", "annotations", "startsAt", "endsAt" } }
 *
 * (`endsAt` is null while firing; dates are ISO 8601). Receivers key on `alert.id`.
 *
 * Header values may be credentials: `${env:NAME}` in a value is replaced by that
 * variable at send time (so a rotated secret is picked up, and the config file
 * holds none). Header values are never logged and never put in an error; a
 * variable that is not set fails the delivery (retried, shown in health) instead
 * of crashing anything. The URL's path may be a secret too (chat webhooks put the
 * token there), so logs and health name only its origin.
 */
import got from 'got';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { WebhookNotifier } from '../../config/schema.js';
import { DeliveryQueue, PermanentError, requestFailure, type SetTimer } from '../queue.js';
import type { AlertNotification, AlertStatus, Notifier, NotifierHealth } from '../types.js';

export type WebhookConfig = z.output<typeof WebhookNotifier>;

export interface WebhookDeps {
  logger: Logger;
  /** Where `${env:NAME}` header values come from; read on every send. */
  env: NodeJS.ProcessEnv;
  /** Milliseconds since the epoch; `endsAt` of a resolved alert that came without one. */
  now?: () => number;
  /** Tests: the queue's back-off jitter. */
  random?: () => number;
  /** Tests: the queue's back-off timer. */
  setTimer?: SetTimer;
}

/** The body POSTed to the webhook. */
export interface WebhookPayload {
  version: '1';
  status: AlertStatus;
  alert: {
    id: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    startsAt: string;
    endsAt: string | null;
  };
}

const ENV_REF = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Header values with `${env:NAME}` filled in; throws naming the header and variable (never a value). */
export function resolveHeaders(headers: Record<string, string>, env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [header, value] of Object.entries(headers)) {
    out[header] = value.replace(ENV_REF, (_ref, variable: string) => {
      const v = env[variable];
      if (v === undefined || v === '') throw new Error(`header ${header}: environment variable ${variable} is not set`);
      return v;
    });
  }
  return out;
}

function iso(d: Date | undefined, fallback: number): string {
  return d instanceof Date && !Number.isNaN(d.getTime()) ? d.toISOString() : new Date(fallback).toISOString();
}

export function createWebhookNotifier(name: string, config: WebhookConfig, deps: WebhookDeps): Notifier {
  const now = deps.now ?? Date.now;
  const origin = new URL(config.url).origin;
  const logger = deps.logger.child({ notifier: name, type: 'webhook', target: origin });
  let stopped = false;

  async function post(payload: WebhookPayload, signal: AbortSignal): Promise<void> {
    // Read now, not at startup; an error here names the variable, never a value.
    const headers = resolveHeaders(config.headers, deps.env);
    let res;
    try {
      res = await got.post(config.url, {
        json: payload,
        headers,
        throwHttpErrors: false,
        // The queue retries, with back-off.
        retry: { limit: 0 },
        // A redirect is a misconfiguration to see in health, not to follow with the credentials.
        followRedirect: false,
        timeout: { request: config.timeout },
        signal,
      });
    } catch (err) {
      // Not err.message: it could quote a header (e.g. an invalid character in a token).
      throw new Error(requestFailure(err));
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return;
    // Only the status: a receiver's error page may echo the request, headers included.
    const detail = `HTTP ${res.statusCode}`;
    // The receiver refuses this payload as such: every retry would be refused and block later alerts.
    if (res.statusCode === 400 || res.statusCode === 413 || res.statusCode === 422) throw new PermanentError(detail);
    throw new Error(detail);
  }

  const queue = new DeliveryQueue<WebhookPayload>({
    deliver: post,
    retry: config.retry,
    logger,
    keyOf: (p) => p.alert.id,
    describe: (p) => `${p.alert.id} (${p.status})`,
    now,
    ...(deps.random && { random: deps.random }),
    ...(deps.setTimer && { setTimer: deps.setTimer }),
  });

  function payloadOf(n: AlertNotification): WebhookPayload {
    const startsAt = iso(n.startsAt, now());
    let endsAt: string | null = null;
    if (n.status === 'resolved') {
      endsAt = iso(n.endsAt, now());
      if (Date.parse(endsAt) < Date.parse(startsAt)) endsAt = startsAt;
    }
    return {
      version: '1',
      status: n.status,
      alert: { id: n.id, labels: { ...n.labels }, annotations: { ...n.annotations }, startsAt, endsAt },
    };
  }

  return {
    name,
    type: 'webhook',
    notify(n) {
      if (n.quiet) return; // a resolve the policy does not announce
      if (stopped) {
        logger.warn({ alert: n.id }, 'notification after stop: not delivered');
        return;
      }
      queue.push(payloadOf(n));
    },
    flush: (timeoutMs) => queue.flush(timeoutMs),
    pending(): AlertNotification[] {
      return queue.items().map((p) => ({
        id: p.alert.id,
        status: p.status,
        labels: { ...p.alert.labels },
        annotations: { ...p.alert.annotations },
        startsAt: new Date(p.alert.startsAt),
        ...(p.alert.endsAt !== null && { endsAt: new Date(p.alert.endsAt) }),
      }));
    },
    health(): NotifierHealth {
      const s = queue.stats();
      return {
        name,
        type: 'webhook',
        queued: s.queued,
        sent: s.sent,
        failed: s.failed,
        ...(s.lastError !== undefined && { lastError: s.lastError }),
        ...(s.lastSuccessAt && { lastSuccessAt: s.lastSuccessAt }),
      };
    },
    async stop() {
      stopped = true;
      await queue.stop();
    },
  };
}
