/**
 * Prometheus recording and alert rules for the SLO list, and their promtool unit
 * tests. Label contract as in prometheus/rules/vigil.rules.yml: source
 * "prometheus", severity critical|high|medium, service, component, environment.
 */
import { stringify } from 'yaml';
import { BURN_RATE_ALERTS, SLO_WINDOWS, leValue, type Slo } from './model.js';

export const RECORD_RATIO = (window: string) => `vigil:slo_error_ratio:rate${window}`;
/** The error ratio over the SLO's whole window (28d by default), for the budget left. */
export const RECORD_RATIO_WINDOW = 'vigil:slo_error_ratio:window';
export const RECORD_OBJECTIVE = 'vigil:slo_objective';
export const ALERT_PAGE = 'VigilSLOBurnRatePage';
export const ALERT_TICKET = 'VigilSLOBurnRateTicket';
/** Evaluation interval of the whole-window group: a 28-day ratio need not be recomputed every few seconds. */
export const BUDGET_INTERVAL = '5m';

/** Labels every recorded series of an SLO carries (beside service_name and deployment_environment_name). */
export function sloLabels(s: Slo): Record<string, string> {
  return { slo: s.id, slo_kind: s.kind, vigil_component: s.component };
}

/** Page at `critical` for a fail-fast or business-critical component, else `high`; a ticket is `medium`. */
export function severityOf(s: Slo, kind: 'page' | 'ticket'): string {
  if (kind === 'ticket') return 'medium';
  return s.policy === 'fail-fast' || s.businessCritical ? 'critical' : 'high';
}

const budget = (s: Slo) => Number((1 - s.objective).toFixed(10));
const percent = (ratio: number) => `${Number((ratio * 100).toFixed(6))}%`;

function alertExpr(s: Slo, kind: 'page' | 'ticket'): string {
  const sel = `{slo="${s.id}"}`;
  return BURN_RATE_ALERTS.filter((a) => a.severity === kind)
    .map((a) => `(\n  ${RECORD_RATIO(a.long)}${sel} > (${a.factor} * ${budget(s)})\n    and\n  ${RECORD_RATIO(a.short)}${sel} > (${a.factor} * ${budget(s)})\n)`)
    .join('\nor\n');
}

/** The static labels of an SLO alert (the templated ones are filled from the series). */
export function alertLabels(s: Slo, kind: 'page' | 'ticket'): Record<string, string> {
  const labels: Record<string, string> = {
    severity: severityOf(s, kind),
    source: 'prometheus',
    slo: s.id,
    service: '{{ $labels.service_name }}',
    component: s.component,
    environment: '{{ $labels.deployment_environment_name }}',
  };
  if (s.endpoint) Object.assign(labels, { method: s.endpoint.method, route: s.endpoint.route });
  if (s.flow) labels.flow = s.flow;
  // A business context re-routes to its own receivers (pagers): pages only, never a ticket.
  if (kind === 'page' && s.impact.context) labels.business_context = s.impact.context;
  return labels;
}

export function alertAnnotations(s: Slo, kind: 'page' | 'ticket'): Record<string, string> {
  const pairs = BURN_RATE_ALERTS.filter((a) => a.severity === kind)
    .map((a) => `${a.factor}x over ${a.long} and ${a.short}`)
    .join(', or ');
  const spent = kind === 'page' ? 'at this rate the error budget is gone in days' : 'the error budget will not last the window';
  const annotations: Record<string, string> = {
    summary: `{{ $labels.service_name }}: SLO ${s.id} (${s.title}, ${percent(s.objective)} over ${s.windowDays}d) burns its error budget: ${spent}`,
    description:
      `The ${s.kind === 'flow' ? 'share of time the flow fails' : 'share of bad requests'} of ${s.title} in component ${s.component} ` +
      `has burnt the error budget (${percent(budget(s))}) at ${pairs} times the rate that spends it in exactly ${s.windowDays} days.` +
      (s.description ? ` Component: ${s.description}.` : ''),
    runbook_url: 'docs/operations.md#vigilsloburnrate',
  };
  if (s.impact.customers) annotations.customers = s.impact.customers;
  if (s.impact.revenueAtRisk) annotations.revenue_at_risk = s.impact.revenueAtRisk;
  return annotations;
}

/** `vigil-slo-<service>` (burn rates and alerts) and `vigil-slo-<service>-budget` (the whole windows). */
export function prometheusRules(slos: Slo[]): object {
  const service = slos[0]?.service ?? 'none';
  const rules: object[] = [];
  const budgetRules: object[] = [];
  for (const s of slos) {
    const labels = sloLabels(s);
    for (const w of SLO_WINDOWS) rules.push({ record: RECORD_RATIO(w), expr: s.errorRatio(w), labels });
    for (const kind of ['page', 'ticket'] as const) {
      rules.push({ alert: kind === 'page' ? ALERT_PAGE : ALERT_TICKET, expr: alertExpr(s, kind), labels: alertLabels(s, kind), annotations: alertAnnotations(s, kind) });
    }
    budgetRules.push({ record: RECORD_OBJECTIVE, expr: `vector(${s.objective})`, labels: { ...labels, service_name: s.service } });
    budgetRules.push({ record: RECORD_RATIO_WINDOW, expr: s.errorRatio(`${s.windowDays}d`), labels: { ...labels, slo_window: `${s.windowDays}d` } });
  }
  return {
    groups: [
      { name: `vigil-slo-${service}`, rules },
      { name: `vigil-slo-${service}-budget`, interval: BUDGET_INTERVAL, rules: budgetRules },
    ],
  };
}

const HEADER = (service: string, what: string) => `# ${what} of the SLOs of ${service}, generated by \`vigil slo\` from its manifest
# (packages/sdk/src/slo/). Do not edit: change the manifest's \`slo\` and generate again.
`;

/** The rules file as text. */
export function renderPrometheusRules(slos: Slo[]): string {
  return HEADER(slos[0]?.service ?? 'none', 'Prometheus recording and alert rules') + stringify(prometheusRules(slos), { lineWidth: 0, aliasDuplicateObjects: false });
}

// ── promtool unit tests ──────────────────────────────────────────────────────

/** Per-minute traffic of the test series: enough requests that one bad one in a thousand is a whole number. */
const PER_MIN = 1000;

interface Scenario {
  /** The deployment environment of its series: every scenario of every SLO runs in one test, side by side. */
  env: string;
  /** Bad share per minute, per phase: [minutes, bad share]. */
  phases: Array<[number, number]>;
  /** A flow's bad minutes of the first phase come together at its end (an outage), not spread out. */
  burst?: boolean;
  /** The alert expected at each check time (none: silent). */
  fires: Partial<Record<CheckTime, 'page' | 'ticket'>>;
}

/** When the test looks: the fast burn at its height, 35 min after it stopped, and after a day of slow burn. */
const CHECKS = ['60m', '95m', '26h'] as const;
type CheckTime = (typeof CHECKS)[number];
const TEST_MINUTES = 26 * 60;

/**
 * Fast burn pages (and resolves once it stops), slow burn tickets without paging,
 * healthy stays silent. A flow's SLI counts whole minutes: a slow burn is only
 * possible when one bad minute in the ticket's 2-hour short window stays under
 * the page's rates, i.e. for objectives up to about 99.8%; above, a flow gets the
 * fast-burn and healthy cases only.
 */
function scenarios(s: Slo): Scenario[] {
  const b = budget(s);
  const out: Scenario[] = [
    // 20x the budget for 1h: pages at 60m; 35 min after it stopped both page pairs' short windows are clean.
    { env: 'fast-burn', phases: [[60, Math.min(1, 20 * b)], [TEST_MINUTES - 60, 0]], burst: true, fires: { '60m': 'page' } },
    // Half the budget: never an alert.
    { env: 'healthy', phases: [[TEST_MINUTES, b / 2]], fires: {} },
  ];
  // 4x the budget for 26h: over 3x for the ticket's 1d and 2h windows, under 6x and 14.4x.
  if (s.kind !== 'flow' || 4 * b * 120 >= 2) out.push({ env: 'slow-burn', phases: [[TEST_MINUTES, 4 * b]], fires: { '26h': 'ticket' } });
  return out;
}

/** promtool's expanding notation for a counter growing by `step` per minute for `n` minutes after `start`. */
function counterPhases(phases: Array<[number, number]>, perMin: (bad: number) => number): string {
  let value = 0;
  const parts: string[] = [];
  phases.forEach(([minutes, bad], i) => {
    const step = perMin(bad);
    // Each phase after the first starts where the last ended, so skip its first point.
    parts.push(i === 0 ? `${value}+${step}x${minutes}` : `${value + step}+${step}x${minutes - 1}`);
    value += step * minutes;
  });
  return parts.join(' ');
}

const OUTAGE_MINUTES = 5;

function gaugePhases(phases: Array<[number, number]>, burst: boolean): string {
  // A flow is failing (0) for a whole minute or passing (1): `bad` of the minutes.
  const values: number[] = [];
  phases.forEach(([minutes, bad], p) => {
    if (burst && p === 0) {
      const failing = Math.round(bad * minutes);
      for (let i = 0; i < minutes; i++) values.push(i >= minutes - failing ? 0 : 1);
      return;
    }
    // Spread out in outages of 5 minutes: a flow's damped state fails for several runs at
    // once, and the 1d and 3d windows sample it every 5 minutes (model.ts, subqueryStep).
    let owed = 0;
    for (let i = 0; i < minutes; i++) {
      owed += bad;
      if (owed >= OUTAGE_MINUTES - 1e-9) {
        for (let k = 1; k < OUTAGE_MINUTES && values.length > 0; k++) values.pop(); // this minute and the 4 before it
        for (let k = 0; k < OUTAGE_MINUTES; k++) values.push(0);
        owed -= OUTAGE_MINUTES;
      } else values.push(1);
    }
  });
  // Runs of equal values in promtool's notation: `1x59 0x0 …` (NxK: K+1 samples).
  const out: string[] = [];
  for (let i = 0; i < values.length; ) {
    let j = i;
    while (j + 1 < values.length && values[j + 1] === values[i]) j++;
    out.push(`${values[i]}x${j - i}`);
    i = j + 1;
  }
  return out.join(' ');
}

const TEST_INSTANCE = 'promtool-1';

function inputSeries(s: Slo, sc: Scenario): Array<{ series: string; values: string }> {
  const common = `service_name="${s.service}", service_instance_id="${TEST_INSTANCE}", deployment_environment_name="${sc.env}"`;
  if (s.kind === 'flow') {
    return [{ series: `vigil_health_level{${common}, vigil_level="3", vigil_check="flow:${s.component}/${s.flow}", vigil_component="${s.component}"}`, values: gaugePhases(sc.phases, sc.burst ?? false) }];
  }
  const ep = `${common}, http_route="${s.endpoint!.route}", http_request_method="${s.endpoint!.method}"`;
  const name = 'http_server_request_duration_seconds';
  if (s.kind === 'availability') {
    return [
      { series: `${name}_count{${ep}, http_response_status_code="200"}`, values: counterPhases(sc.phases, (bad) => PER_MIN * (1 - bad)) },
      { series: `${name}_count{${ep}, http_response_status_code="500"}`, values: counterPhases(sc.phases, (bad) => PER_MIN * bad) },
    ];
  }
  // Latency: every request answers 200; `bad` of them take longer than the threshold.
  return [
    { series: `${name}_count{${ep}, http_response_status_code="200"}`, values: counterPhases(sc.phases, () => PER_MIN) },
    { series: `${name}_bucket{${ep}, http_response_status_code="200", le="${leValue(s.thresholdSeconds!)}"}`, values: counterPhases(sc.phases, (bad) => PER_MIN * (1 - bad)) },
  ];
}

function expectedAlert(s: Slo, kind: 'page' | 'ticket', env: string) {
  const labels = { ...alertLabels(s, kind), service: s.service, environment: env, ...sloLabels(s), service_name: s.service, deployment_environment_name: env };
  const annotations = Object.fromEntries(Object.entries(alertAnnotations(s, kind)).map(([k, v]) => [k, v.replaceAll('{{ $labels.service_name }}', s.service)]));
  return { exp_labels: labels, exp_annotations: annotations };
}

/**
 * promtool `test rules` file for the rules file `rulesFile` (a path relative to
 * the test file): one test in which every SLO gets a fast-burn, a slow-burn and a
 * healthy environment, checked for exactly the alerts expected at each time.
 */
export function promtoolTests(slos: Slo[], rulesFile: string): object {
  const input: Array<{ series: string; values: string }> = [];
  const expected = new Map<string, object[]>();
  // Pages are checked at every time; tickets after the day of slow burn only (before it, a
  // test series younger than the 1d window makes the fast burn's ticket fire too, as it should).
  for (const t of CHECKS) expected.set(`${t} ${ALERT_PAGE}`, []);
  expected.set(`26h ${ALERT_TICKET}`, []);
  for (const s of slos) {
    for (const sc of scenarios(s)) {
      input.push(...inputSeries(s, sc));
      for (const [t, kind] of Object.entries(sc.fires)) expected.get(`${t} ${kind === 'page' ? ALERT_PAGE : ALERT_TICKET}`)!.push(expectedAlert(s, kind, sc.env));
    }
  }
  const alert_rule_test = [...expected].map(([key, exp_alerts]) => {
    const [eval_time, alertname] = key.split(' ');
    return { eval_time, alertname, exp_alerts };
  });
  const test = { name: 'every SLO: a fast burn pages and resolves, a slow burn opens a ticket, a healthy series stays silent', interval: '1m', input_series: input, alert_rule_test };
  // 5m: the 26-hour test stays quick; the check times are multiples of it.
  return { rule_files: [rulesFile], evaluation_interval: '5m', tests: [test] };
}

export function renderPromtoolTests(slos: Slo[], rulesFile: string): string {
  return HEADER(slos[0]?.service ?? 'none', 'promtool unit tests (`promtool test rules`)') + stringify(promtoolTests(slos, rulesFile), { lineWidth: 0, aliasDuplicateObjects: false });
}
