/**
 * The evaluator's own telemetry, exported like the SDK's (OTLP, `OTEL_*`
 * variables): the impact it assessed, money at risk, notifications delivered
 * and failed, evaluation time, and an `up` heartbeat Prometheus can page on.
 */
import type { Meter } from '@opentelemetry/api';
import {
  ATTR_ERROR_TYPE,
  ATTR_VIGIL_COMPONENT,
  ATTR_VIGIL_CURRENCY,
  ATTR_VIGIL_NOTIFIER,
  ATTR_VIGIL_RULE,
  ATTR_VIGIL_SERVICE,
  METRIC_EVALUATION_DURATION,
  METRIC_EVALUATOR_UP,
  METRIC_IMPACT_LEVEL,
  METRIC_IMPACT_REVENUE_AT_RISK,
  METRIC_NOTIFICATIONS_FAILED,
  METRIC_NOTIFICATIONS_SENT,
  METRIC_OTLP_REJECTED,
} from '@vigil/sdk/semconv';
import type { Notifier } from './notifiers/types.js';
import { LEVEL_RANK, type AlertState } from './policies/engine.js';

export interface EvaluatorInstruments {
  recordEvaluation(seconds: number): void;
}

export function registerInstruments(
  meter: Meter,
  alerts: () => Iterable<AlertState>,
  notifiers: () => Notifier[],
  /** The OTLP receiver's refused batches by reason (none with the Prometheus source). */
  rejected: () => Partial<Record<string, number>> = () => ({}),
): EvaluatorInstruments {
  const level = meter.createObservableGauge(METRIC_IMPACT_LEVEL, { description: 'Assessed business impact of a firing alert: 4 critical, 3 high, 2 medium, 1 low' });
  const revenue = meter.createObservableGauge(METRIC_IMPACT_REVENUE_AT_RISK, { description: 'Money at risk while the alert fires, in its currency' });
  const sent = meter.createObservableCounter(METRIC_NOTIFICATIONS_SENT, { description: 'Notifications delivered, per notifier' });
  const failed = meter.createObservableCounter(METRIC_NOTIFICATIONS_FAILED, { description: 'Failed delivery attempts (retried), per notifier' });
  const up = meter.createObservableGauge(METRIC_EVALUATOR_UP, { description: '1 while the evaluator runs' });
  const refused = meter.createObservableCounter(METRIC_OTLP_REJECTED, { description: 'OTLP batches the receiver refused, per reason' });
  meter.addBatchObservableCallback(
    (r) => {
      r.observe(up, 1);
      for (const a of alerts()) {
        if (a.state !== 'firing') continue;
        const attrs = { [ATTR_VIGIL_SERVICE]: a.service, [ATTR_VIGIL_COMPONENT]: a.component, [ATTR_VIGIL_RULE]: a.assessment.rule };
        r.observe(level, LEVEL_RANK[a.assessment.impact.level], attrs);
        const money = a.assessment.impact.revenue;
        if (money) r.observe(revenue, money.amount, { ...attrs, [ATTR_VIGIL_CURRENCY]: money.currency });
      }
      for (const n of notifiers()) {
        const h = n.health();
        r.observe(sent, h.sent, { [ATTR_VIGIL_NOTIFIER]: n.name });
        r.observe(failed, h.failed, { [ATTR_VIGIL_NOTIFIER]: n.name });
      }
      for (const [reason, count] of Object.entries(rejected())) r.observe(refused, count ?? 0, { [ATTR_ERROR_TYPE]: reason });
    },
    [level, revenue, sent, failed, up, refused],
  );
  const duration = meter.createHistogram(METRIC_EVALUATION_DURATION, {
    unit: 's',
    description: 'Time to evaluate rules and policies once',
    advice: { explicitBucketBoundaries: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1] },
  });
  return { recordEvaluation: (s) => duration.record(s) };
}
