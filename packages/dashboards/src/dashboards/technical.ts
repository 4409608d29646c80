/**
 * Technical: startup validation, error ratios, probe latency, the alerts
 * Prometheus fired, and what the evaluator sent.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import { RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import {
  dependencyChecksTable,
  DASHBOARD_UIDS,
  DATASOURCE,
  FIRING_MAPPINGS,
  dashboard,
  finish,
  statPanel,
  okFail,
  query,
  redBelow,
  steps,
  tableLegend,
  tableTransforms,
} from '../common.js';
import { agg, alertLabel as a, checkId, eq, label as l, metric as m, orZero, re, sel, v } from '../promql.js';
import { serviceVariable } from './system-status.js';

const svc = re(l.service, v.service);

/** `histogram_quantile(q, sum by (le, …) (rate(bucket[$__rate_interval])))` */
function quantile(q: number, bucket: string, by: string[]): string {
  return `histogram_quantile(${q}, ${agg('sum', ['le', ...by], `rate(${bucket}[${v.rateInterval}])`)})`;
}

export function technical(): Dashboard {
  const firing = sel(m.alerts, eq(a.state, 'firing'));
  const d = dashboard(
    DASHBOARD_UIDS.technical,
    'Vigil / Technical',
    'Startup validation, error ratios, probe latency, alert history and the evaluator\'s notifications.',
    ['technical'],
  )
    .withVariable(serviceVariable())

    // ── Startup validation ──────────────────────────────────────────────────
    .withRow(new RowBuilder('Startup validation'))
    .withPanel(
      statPanel('Startup verdict per instance')
        .description('vigil_startup_success of each process: set once at startup. A refused start lingers ~5 minutes after the process exits.')
        .withTarget(
          query(0, agg('min', [l.service, l.instance], sel(m.startupSuccess, svc)), {
            instant: true,
            legend: `{{${l.service}}} {{${l.instance}}}`,
          }),
        )
        .mappings(okFail('started', 'refused'))
        .colorMode(common.BigValueColorMode.Background)
        .textMode(common.BigValueTextMode.ValueAndName)
        .height(8)
        .span(6),
    )
    .withPanel(
      dependencyChecksTable(
        'Startup checks',
        'Each dependency check with its type and its component\'s policy.',
        agg('min', [l.service, l.component, l.check, l.checkType, l.policy], sel(m.startupCheck, svc)),
        10,
      ),
    )
    .withPanel(
      statPanel('Startup duration')
        .description('Time spent in startup validation (router imports and validate()), per process.')
        .withTarget(
          query(
            0,
            agg(
              'max',
              [l.service, l.instance],
              `${sel(m.startupDuration.sum, svc)} / ${sel(m.startupDuration.count, svc)}`,
            ),
            { instant: true, legend: `{{${l.service}}} {{${l.instance}}}` },
          ),
        )
        .unit('s')
        .thresholds(steps([1, 'yellow'], [5, 'red']))
        .height(8)
        .span(8),
    )

    // ── Error rates ─────────────────────────────────────────────────────────
    .withRow(new RowBuilder('Error rates'))
    .withPanel(
      new timeseries.PanelBuilder()
        .title('5xx ratio by route')
        .description(
          'Share of 5xx answers in the app\'s own traffic over the error-rate window, per route (synthetic requests not counted). (unmatched): no route handled the request. 0 when no route had traffic.',
        )
        .datasource(DATASOURCE)
        .withTarget(
          query(0, orZero(agg('max', [l.service, l.method, l.route], sel(m.httpErrorRatio, svc))), {
            legend: `{{${l.service}}} {{${l.method}}} {{${l.route}}}`,
          }),
        )
        .unit('percentunit')
        .min(0)
        .max(1)
        .legend(tableLegend('max', 'lastNotNull'))
        .height(8)
        .span(16),
    )
    .withPanel(
      new statetimeline.PanelBuilder()
        .title('Error-rate check (damped)')
        .datasource(DATASOURCE)
        .withTarget(
          query(0, agg('min', [l.service], sel(m.healthLevel, svc, eq(l.check, checkId.errorRate))), {
            legend: `{{${l.service}}}`,
          }),
        )
        .mappings(okFail('pass', 'fail'))
        .showValue(common.VisibilityMode.Never)
        .mergeValues(true)
        .height(8)
        .span(8),
    )

    // ── Response times ──────────────────────────────────────────────────────
    .withRow(new RowBuilder('Response times (endpoint probes)'))
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Probe latency p50 / p95 / p99 by route')
        .description('From vigil_probe_duration_seconds: every endpoint probe, up to the answer or the failure.')
        .datasource(DATASOURCE)
        .withTarget(query(0, quantile(0.5, sel(m.probeDuration.bucket, svc), [l.route]), { legend: `p50 {{${l.route}}}` }))
        .withTarget(query(1, quantile(0.95, sel(m.probeDuration.bucket, svc), [l.route]), { legend: `p95 {{${l.route}}}` }))
        .withTarget(query(2, quantile(0.99, sel(m.probeDuration.bucket, svc), [l.route]), { legend: `p99 {{${l.route}}}` }))
        .unit('s')
        .min(0)
        .legend(tableLegend('mean', 'max', 'lastNotNull'))
        .height(9)
        .span(16),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Probe answers by status code')
        .description('Probes per route and status code over the interval; no code when the probe got no answer.')
        .datasource(DATASOURCE)
        .withTarget(
          query(
            0,
            agg('sum', [l.route, l.statusCode], `increase(${sel(m.probeDuration.count, svc)}[${v.rateInterval}])`),
            { legend: `{{${l.route}}} {{${l.statusCode}}}` },
          ),
        )
        .min(0)
        .drawStyle(common.GraphDrawStyle.Bars)
        .stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal))
        .height(9)
        .span(8),
    )

    // ── Alerts ──────────────────────────────────────────────────────────────
    .withRow(new RowBuilder('Alerts (Prometheus rules)'))
    .withPanel(
      new statetimeline.PanelBuilder()
        .title('Alert history')
        .description('Firing alerts of the Prometheus rules over time (ALERTS). VigilWatchdog always fires: it proves the alerting pipeline runs.')
        .datasource(DATASOURCE)
        .withTarget(
          query(0, agg('max', [a.name, a.service, a.component, a.severity], firing), {
            legend: `{{${a.name}}} {{${a.service}}} {{${a.component}}} ({{${a.severity}}})`,
          }),
        )
        .mappings(FIRING_MAPPINGS)
        .showValue(common.VisibilityMode.Never)
        .mergeValues(true)
        .height(9)
        .span(14),
    )
    .withPanel(
      new table.PanelBuilder()
        .title('Firing alerts now')
        .datasource(DATASOURCE)
        .withTarget(
          query(0, agg('max', [a.name, a.service, a.component, a.severity, a.source], firing), {
            instant: true,
            table: true,
          }),
        )
        .transformations(tableTransforms({}, ['Value']))
        .height(9)
        .span(10),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Firing alerts by severity')
        .datasource(DATASOURCE)
        .withTarget(query(0, agg('count', [a.severity], firing), { legend: `{{${a.severity}}}` }))
        .min(0)
        .decimals(0)
        .drawStyle(common.GraphDrawStyle.Bars)
        .stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal))
        .height(8)
        .span(24),
    )

    // ── Evaluator ───────────────────────────────────────────────────────────
    .withRow(new RowBuilder('Evaluator notifications'))
    .withPanel(
      statPanel('Evaluators reporting')
        .description('Evaluator processes exporting vigil_evaluator_up; 0 when none is (the series lingers ~5 minutes after a process ends).')
        .withTarget(query(0, orZero(agg('count', [], sel(m.evaluatorUp))), { instant: true }))
        .thresholds(redBelow(1))
        .colorMode(common.BigValueColorMode.Background)
        .height(8)
        .span(4),
    )
    .withPanel(
      statPanel('Notifications over the range')
        .description('Delivered notifications and failed delivery attempts (a retried notification counts each attempt), per notifier.')
        .withTarget(
          query(0, agg('sum', [l.notifier], `increase(${sel(m.notificationsSent)}[${v.range}])`), {
            instant: true,
            legend: `sent {{${l.notifier}}}`,
          }),
        )
        .withTarget(
          query(1, agg('sum', [l.notifier], `increase(${sel(m.notificationsFailed)}[${v.range}])`), {
            instant: true,
            legend: `failed {{${l.notifier}}}`,
          }),
        )
        .decimals(0)
        .textMode(common.BigValueTextMode.ValueAndName)
        .overrideByRegexp('^failed', [
          { id: 'thresholds', value: steps([1, 'red']).build() },
          { id: 'color', value: { mode: 'thresholds' } },
        ])
        .height(8)
        .span(6),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Notifications sent / failed')
        .datasource(DATASOURCE)
        .withTarget(
          query(0, agg('sum', [l.notifier], `increase(${sel(m.notificationsSent)}[${v.rateInterval}])`), {
            legend: `sent {{${l.notifier}}}`,
          }),
        )
        .withTarget(
          query(1, agg('sum', [l.notifier], `increase(${sel(m.notificationsFailed)}[${v.rateInterval}])`), {
            legend: `failed {{${l.notifier}}}`,
          }),
        )
        .min(0)
        .overrideByRegexp('^failed', [{ id: 'color', value: { mode: 'fixed', fixedColor: 'red' } }])
        .height(8)
        .span(8),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Evaluation duration p95')
        .datasource(DATASOURCE)
        .withTarget(query(0, quantile(0.95, sel(m.evaluationDuration.bucket), []), { legend: 'p95' }))
        .unit('s')
        .min(0)
        .height(8)
        .span(6),
    )
    .build();
  return finish(d);
}
