/**
 * Builds the notifiers named in `evaluator.yaml` (`notifiers:`), one per entry,
 * each with its own queue, so one receiver failing never holds up the others.
 */
import type { Logger } from 'pino';
import type { NotifierConfig } from '../config/schema.js';
import { createAlertmanagerNotifier } from './alertmanager/alertmanager.js';
import { createConsoleNotifier } from './console/console.js';
import type { Notifier } from './types.js';
import { createWebhookNotifier } from './webhook/webhook.js';

export interface NotifierDeps {
  logger: Logger;
  /** Where webhook `${env:NAME}` header values come from. */
  env: NodeJS.ProcessEnv;
  /** Milliseconds since the epoch. */
  now?: () => number;
}

export function createNotifiers(configs: Record<string, NotifierConfig>, deps: NotifierDeps): Notifier[] {
  const common = { logger: deps.logger, ...(deps.now && { now: deps.now }) };
  return Object.entries(configs).map(([name, config]): Notifier => {
    switch (config.type) {
      case 'alertmanager':
        return createAlertmanagerNotifier(name, config, common);
      case 'webhook':
        return createWebhookNotifier(name, config, { ...common, env: deps.env });
      case 'console':
        return createConsoleNotifier(name, common);
    }
  });
}

/**
 * Stops every notifier. With `flushTimeoutMs`, first gives what is queued that
 * long to be delivered (all notifiers at once, so a dead one costs the time once).
 */
export async function stopAll(notifiers: Notifier[], flushTimeoutMs = 0): Promise<void> {
  if (flushTimeoutMs > 0) await Promise.all(notifiers.map((n) => n.flush(flushTimeoutMs).catch(() => undefined)));
  await Promise.all(notifiers.map((n) => n.stop().catch(() => undefined)));
}
