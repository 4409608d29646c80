/**
 * The log as a notifier: for development, and as the last resort that always
 * works when every remote receiver is down. A firing alert is logged at `error`
 * when its severity is critical or high (what would page someone) and at `warn`
 * otherwise; a resolved one at `info`. Labels and annotations are structured
 * fields, so a log pipeline can route on them like Alertmanager does.
 */
import type { Logger } from 'pino';
import type { Notifier, NotifierHealth } from '../types.js';

export interface ConsoleDeps {
  logger: Logger;
  /** Milliseconds since the epoch (lastSuccessAt). */
  now?: () => number;
}

const PAGING_SEVERITIES = new Set(['critical', 'high']);

export function createConsoleNotifier(name: string, deps: ConsoleDeps): Notifier {
  const now = deps.now ?? Date.now;
  const logger = deps.logger.child({ notifier: name, type: 'console' });
  let sent = 0;
  let lastSuccessAt: Date | undefined;

  return {
    name,
    type: 'console',
    notify(n) {
      if (n.quiet) return; // a resolve the policy does not announce
      const level = n.status === 'resolved' ? 'info' : PAGING_SEVERITIES.has(n.labels.severity ?? '') ? 'error' : 'warn';
      const title = n.annotations.summary ?? n.labels.alertname ?? n.id;
      logger[level](
        {
          alert: n.id,
          status: n.status,
          labels: n.labels,
          annotations: n.annotations,
          startsAt: n.startsAt,
          ...(n.endsAt && { endsAt: n.endsAt }),
          ...(n.generatorURL && { generatorURL: n.generatorURL }),
        },
        `${n.status === 'resolved' ? 'RESOLVED' : 'FIRING'}: ${title}`,
      );
      sent++;
      lastSuccessAt = new Date(now());
    },
    // Nothing is ever queued: the log line is written in notify().
    flush: async () => undefined,
    health(): NotifierHealth {
      return { name, type: 'console', queued: 0, sent, failed: 0, ...(lastSuccessAt && { lastSuccessAt }) };
    },
    stop: async () => undefined,
  };
}
