/**
 * Service level objectives in the manifest: an availability objective (and an
 * optional latency one) on a critical endpoint, an availability objective on a
 * flow, and a manifest-wide default window. `manifest/schema.ts` puts these on
 * its Endpoint, Flow and Manifest; `slo/index.ts` turns them into rules.
 */
import { z } from 'zod';
import { Duration } from '../util/duration.js';
import { HTTP_SERVER_DURATION_BUCKETS } from '../semconv.js';

/**
 * `"99.9%"` or `99.9` (percent): parsed to the ratio 0.999. 100% is refused: an
 * objective of 100% has no error budget, every burn rate is infinite.
 */
export const Objective = z.union([z.number(), z.string()], { error: 'expected an objective in percent, such as "99.9%" or 99.9' }).transform((value, ctx) => {
  const text = typeof value === 'number' ? String(value) : value.trim().replace(/%$/, '');
  const percent = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!(percent >= 50 && percent < 100)) {
    ctx.addIssue({ code: 'custom', message: `expected an objective in percent from 50 up to (not including) 100, such as "99.9%", got ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  // Rounded so that 99.9 / 100 is 0.999, not 0.9990000000000001, in the rules' text.
  return Number((percent / 100).toFixed(10));
});

/** An SLO window in whole days: `28d`, `30d` (1 to 90 days). */
export const SloWindow = z.string().transform((text, ctx) => {
  const m = /^(\d+)d$/.exec(text.trim());
  const days = m ? Number(m[1]) : NaN;
  if (!(days >= 1 && days <= 90)) {
    ctx.addIssue({ code: 'custom', message: `expected a window in whole days from 1d to 90d, such as "28d", got ${JSON.stringify(text)}` });
    return z.NEVER;
  }
  return days;
});

const bucketList = HTTP_SERVER_DURATION_BUCKETS.map((s) => (s < 1 ? `${Math.round(s * 1000)}ms` : `${s}s`)).join(', ');

/**
 * A latency objective: `target` of the requests answer within `threshold`. The
 * threshold must be a bucket boundary of `http.server.request.duration`: between
 * two boundaries the share could only be guessed (interpolated), so it is refused.
 */
export const LatencyObjective = z.strictObject({
  threshold: Duration.refine((ms) => HTTP_SERVER_DURATION_BUCKETS.some((s) => Math.round(s * 1000) === ms), {
    message: `expected a threshold on a bucket boundary of http.server.request.duration (the latency SLI counts the requests in the buckets up to it): ${bucketList}`,
  }),
  target: Objective,
});

/**
 * What a breach costs, carried on the SLO alerts the way the evaluator's impact
 * rules carry it: `customers` and `revenueAtRisk` become the annotations the
 * Alertmanager templates show, `context` the page's `business_context` label
 * (alertmanager/alertmanager.yml routes CRITICAL_AUTH and ZEBRA_ADMIN_ACCESS).
 */
export const SloImpact = z.strictObject({
  customers: z.string().min(1).max(200).optional(),
  revenueAtRisk: z.string().min(1).max(100).optional(),
  context: z.string().regex(/^[A-Z][A-Z0-9_]*$/, 'expected a business context name in capitals, such as "CRITICAL_AUTH"').optional(),
});

/** The SLO of a critical endpoint: availability from its 5xx answers, optional latency. */
export const EndpointSlo = z.strictObject({
  availability: Objective,
  latency: LatencyObjective.optional(),
  /** Default: the manifest's `slo.window`. */
  window: SloWindow.optional(),
  impact: SloImpact.optional(),
});
export type EndpointSlo = z.output<typeof EndpointSlo>;

/** The SLO of a flow: the share of time its runs pass (flows have no latency SLI). */
export const FlowSlo = z.strictObject({
  availability: Objective,
  window: SloWindow.optional(),
  impact: SloImpact.optional(),
});
export type FlowSlo = z.output<typeof FlowSlo>;

/** 28 days: four whole weeks, so every window holds each weekday equally often. */
export const DEFAULT_SLO_WINDOW_DAYS = 28;

/** Manifest-wide SLO settings. */
export const SloDefaults = z.strictObject({
  window: SloWindow.default(DEFAULT_SLO_WINDOW_DAYS),
});
