/**
 * The SLO list of a manifest: one entry per objective (an endpoint's
 * availability, its latency, a flow's availability), each with the PromQL of its
 * error ratio over a window. The Prometheus rules, their promtool tests, the
 * OpenSLO documents and the Grafana SLO dashboard are all generated from it.
 */
import type { Manifest } from '../manifest/schema.js';
import {
  ATTR_DEPLOYMENT_ENVIRONMENT_NAME,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVICE_NAME,
  ATTR_VIGIL_CHECK,
  ATTR_VIGIL_LEVEL,
  HTTP_SERVER_REQUEST_DURATION,
  METRIC_HEALTH_LEVEL,
  promLabel,
  promName,
} from '../semconv.js';

/** The windows whose error ratio is recorded: the short and long windows of the alerts below. */
export const SLO_WINDOWS = ['5m', '30m', '1h', '2h', '6h', '1d', '3d'] as const;
export type SloWindowName = (typeof SLO_WINDOWS)[number];

/**
 * The Google SRE workbook's multi-window, multi-burn-rate alerts (chapter 5,
 * "Alerting on SLOs"), as Sloth and Pyrra generate them: an alert needs the burn
 * rate over both its long and its short window (the short one makes it resolve
 * soon after the errors stop).
 */
export const BURN_RATE_ALERTS = [
  { severity: 'page', factor: 14.4, long: '1h', short: '5m' },
  { severity: 'page', factor: 6, long: '6h', short: '30m' },
  { severity: 'ticket', factor: 3, long: '1d', short: '2h' },
  { severity: 'ticket', factor: 1, long: '3d', short: '6h' },
] as const satisfies ReadonlyArray<{ severity: 'page' | 'ticket'; factor: number; long: SloWindowName; short: SloWindowName }>;

export type SloKind = 'availability' | 'latency' | 'flow';

export interface Slo {
  /** `<component>-<method>-<route>-<kind>` or `<component>-<flow>-flow`, lowercase: the `slo` label and the OpenSLO name. */
  id: string;
  kind: SloKind;
  service: string;
  component: string;
  /** The component's policy and flag, which set the page's severity. */
  policy: 'fail-fast' | 'degrade';
  businessCritical: boolean;
  /** The component's description, carried on the alerts. */
  description?: string;
  /** What is measured, in words: `POST /api/v1/auth/login answers without a 5xx`. */
  title: string;
  /** The target ratio, e.g. 0.999. */
  objective: number;
  windowDays: number;
  endpoint?: { method: string; route: string };
  flow?: string;
  /** Latency: the bucket boundary in seconds. */
  thresholdSeconds?: number;
  /**
   * PromQL of the share of bad events (or bad time, for a flow) over `window`, by
   * {@link SLO_GROUP_BY}.
   */
  errorRatio: (window: string) => string;
  /** From the SLO's `impact`: annotations, and the page's `business_context` label. */
  impact: { customers?: string; revenueAtRisk?: string; context?: string };
  /** For OpenSLO: bad and total event queries over 5m (the flow: bad time and all time). */
  ratio: { bad: string; total: string };
}

/** The labels the SLIs keep: one SLO per service and environment. */
export const SLO_GROUP_BY = [promLabel(ATTR_SERVICE_NAME), promLabel(ATTR_DEPLOYMENT_ENVIRONMENT_NAME)] as const;

const HTTP_DURATION = promName(HTTP_SERVER_REQUEST_DURATION, 's');
const L = {
  service: promLabel(ATTR_SERVICE_NAME),
  route: promLabel(ATTR_HTTP_ROUTE),
  method: promLabel(ATTR_HTTP_REQUEST_METHOD),
  status: promLabel(ATTR_HTTP_RESPONSE_STATUS_CODE),
  check: promLabel(ATTR_VIGIL_CHECK),
  level: promLabel(ATTR_VIGIL_LEVEL),
};

/** A PromQL string literal. */
export function quote(value: string): string {
  return JSON.stringify(value);
}
const by = `by (${SLO_GROUP_BY.join(', ')})`;
const sumRate = (selector: string, window: string) => `sum ${by} (rate(${selector}[${window}]))`;

/** A Prometheus `le` value as the Collector writes it (Go's FormatFloat 'f', -1): `0.25`, `1`, `10`. */
export function leValue(seconds: number): string {
  return String(seconds);
}

/**
 * A flow's SLI samples its 0/1 state in a subquery: every minute up to 6h windows,
 * every 5 minutes up to 3 days, hourly for the whole SLO window, so that a query
 * stays under a few thousand points per series (promtool's test engine stops at 10,000).
 */
export function subqueryStep(window: string): string {
  const m = /^(\d+)([mhd])$/.exec(window);
  const minutes = m ? Number(m[1]) * { m: 1, h: 60, d: 1440 }[m[2] as 'm' | 'h' | 'd'] : Infinity;
  return minutes <= 360 ? '1m' : minutes <= 3 * 1440 ? '5m' : '1h';
}

function slug(...parts: string[]): string {
  return parts
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** Every objective the manifest declares, in manifest order. Throws if two get the same id. */
export function sloList(manifest: Manifest): Slo[] {
  const out: Slo[] = [];
  const service = manifest.service;
  const svc = `${L.service}=${quote(service)}`;
  for (const [component, spec] of Object.entries(manifest.components)) {
    const base = { service, component, policy: spec.policy, businessCritical: spec.businessCritical, description: spec.description };
    for (const e of spec.endpoints) {
      if (!e.slo) continue;
      const windowDays = e.slo.window ?? manifest.slo.window;
      const requests = `${HTTP_DURATION}_count{${svc}, ${L.route}=${quote(e.route)}, ${L.method}=${quote(e.method)}}`;
      const errors = `${HTTP_DURATION}_count{${svc}, ${L.route}=${quote(e.route)}, ${L.method}=${quote(e.method)}, ${L.status}=~"5.."}`;
      out.push({
        ...base,
        id: slug(component, e.method, e.route, 'availability'),
        kind: 'availability',
        title: `${e.method} ${e.route} answers without a 5xx`,
        objective: e.slo.availability,
        windowDays,
        impact: e.slo.impact ?? {},
        endpoint: { method: e.method, route: e.route },
        // `or 0 * …`: with no 5xx at all the error series does not exist; the ratio is then 0, not empty.
        errorRatio: (w) => `(${sumRate(errors, w)} or 0 * ${sumRate(requests, w)})\n/\n${sumRate(requests, w)}`,
        ratio: { bad: errors, total: requests },
      });
      if (e.slo.latency) {
        const seconds = e.slo.latency.threshold / 1000;
        const fast = `${HTTP_DURATION}_bucket{${svc}, ${L.route}=${quote(e.route)}, ${L.method}=${quote(e.method)}, le=${quote(leValue(seconds))}}`;
        out.push({
          ...base,
          id: slug(component, e.method, e.route, 'latency'),
          kind: 'latency',
          title: `${e.method} ${e.route} answers within ${e.slo.latency.threshold} ms`,
          objective: e.slo.latency.target,
          windowDays,
          impact: e.slo.impact ?? {},
          endpoint: { method: e.method, route: e.route },
          thresholdSeconds: seconds,
          errorRatio: (w) => `1 - (\n${sumRate(fast, w)}\n/\n${sumRate(requests, w)}\n)`,
          ratio: { bad: `${requests} - ${fast}`, total: requests },
        });
      }
    }
    for (const [name, flow] of Object.entries(spec.flows)) {
      if (!flow.slo) continue;
      // Flows export no run counter: their SLI is the share of time the flow's damped state
      // is fail (vigil_health_level 0), over the samples where it is known (-1 = unknown is left out).
      const level = `${promName(METRIC_HEALTH_LEVEL)}{${svc}, ${L.level}="3", ${L.check}=${quote(`flow:${component}/${name}`)}}`;
      out.push({
        ...base,
        id: slug(component, name, 'flow'),
        kind: 'flow',
        title: `flow ${name} passes`,
        objective: flow.slo.availability,
        windowDays: flow.slo.window ?? manifest.slo.window,
        impact: flow.slo.impact ?? {},
        flow: name,
        errorRatio: (w) => `avg_over_time(avg ${by} ((${level} >= 0) == bool 0)[${w}:${subqueryStep(w)}])`,
        ratio: { bad: `${level} == 0`, total: `${level} >= 0` },
      });
    }
  }
  const seen = new Map<string, Slo>();
  for (const s of out) {
    const other = seen.get(s.id);
    if (other) throw new Error(`two objectives get the id "${s.id}" (${other.title}; ${s.title}): rename a route or flow`);
    seen.set(s.id, s);
  }
  return out;
}
