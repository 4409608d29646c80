/**
 * Business: what the evaluator says is at stake (impact per component,
 * revenue at risk), and whether customers can log in and admins work.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import { RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import {
  DASHBOARD_UIDS,
  DATASOURCE,
  IMPACT_MAPPINGS,
  dashboard,
  finish,
  labelValuesVariable,
  lastValue,
  statPanel,
  query,
  redBelow,
  steps,
  tableLegend,
} from '../common.js';
import { agg, eq, label as l, metric as m, orZero, re, sel, v } from '../promql.js';
import { serviceVariable } from './system-status.js';

/** The evaluator's metrics name the watched service in `vigil_service` (its own service_name is the evaluator's). */
const watched = re(l.watchedService, v.service);

/**
 * Impact level per component: the evaluator's assessment where an alert
 * fires, 0 for every other component the app reports (from
 * vigil_component_healthy), so the panel lists all components in any state.
 */
function impactByComponent(): string {
  const assessed = agg('max', [l.component], sel(m.impactLevel, watched));
  const known = agg('max', [l.component], `0 * ${sel(m.componentHealthy, re(l.service, v.service))}`);
  return `${assessed} or ${known}`;
}

/** A row on the availability of one component's endpoints (its variable holds the component). */
function availabilityRow(b: ReturnType<typeof dashboard>, title: string, component: string): void {
  const probes = sel(m.probeSuccess, re(l.service, v.service), eq(l.component, component));
  const checks = sel(m.healthLevel, re(l.service, v.service), eq(l.component, component));
  b.withRow(new RowBuilder(title))
    .withPanel(
      statPanel(`${title}: probe success over the range`)
        .description(`Share of successful probes of the endpoints of ${component} over the dashboard's time range.`)
        .withTarget(query(0, agg('avg', [], `avg_over_time(${probes}[${v.range}])`), { instant: true, legend: component }))
        .unit('percentunit')
        .decimals(2)
        .thresholds(redBelow(0.99))
        .colorMode(common.BigValueColorMode.Background)
        .height(8)
        .span(6),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title(`${title}: success rate`)
        .description(
          `Probe success rate of each endpoint of ${component} (raw probes, averaged over the interval), and the share of its runtime checks passing after damping (endpoints, flows, drift).`,
        )
        .datasource(DATASOURCE)
        .withTarget(
          query(0, agg('avg', [l.method, l.route], `avg_over_time(${probes}[${v.rateInterval}])`), {
            legend: `{{${l.method}}} {{${l.route}}}`,
          }),
        )
        .withTarget(query(1, agg('avg', [], checks), { legend: 'checks passing (damped)' }))
        .unit('percentunit')
        .min(0)
        .max(1)
        .legend(tableLegend('mean', 'min', 'lastNotNull'))
        .height(8)
        .span(18),
    );
}

export function business(): Dashboard {
  const revenue = sel(m.revenueAtRisk, watched);
  const b = dashboard(
    DASHBOARD_UIDS.business,
    'Vigil / Business impact',
    'Business impact assessed by the Vigil evaluator, revenue at risk, and the availability of authentication and admin.',
    ['business'],
  )
    .withVariable(serviceVariable())
    .withVariable(
      labelValuesVariable('auth_component', 'Authentication component', sel(m.probeSuccess, re(l.service, v.service)), l.component, {
        current: 'authentication',
      }),
    )
    .withVariable(
      labelValuesVariable('admin_component', 'Admin component', sel(m.probeSuccess, re(l.service, v.service)), l.component, {
        current: 'admin',
      }),
    )

    // ── Impact ──────────────────────────────────────────────────────────────
    .withRow(new RowBuilder('Impact'))
    .withPanel(
      statPanel('Highest impact now')
        .description('The highest business impact among firing alerts (vigil_impact_level from the evaluator); none when nothing fires.')
        .withTarget(query(0, orZero(agg('max', [], sel(m.impactLevel, watched))), { instant: true }))
        .mappings(IMPACT_MAPPINGS)
        .colorMode(common.BigValueColorMode.Background)
        .height(6)
        .span(6),
    )
    .withPanel(
      statPanel('Revenue at risk')
        .description('Sum of the revenue named by the impact of every firing alert, per currency; 0 when nothing at risk.')
        .withTarget(query(0, orZero(agg('sum', [l.currency], revenue)), { instant: true, legend: `{{${l.currency}}}` }))
        .thresholds(steps([1, 'red']))
        .decimals(0)
        .colorMode(common.BigValueColorMode.Value)
        .height(6)
        .span(6),
    )
    .withPanel(
      new bargauge.PanelBuilder()
        .title('Impact by component')
        .description('Current impact level per component: 0 none, 1 low, 2 medium, 3 high, 4 critical. An alert on the whole service has no component.')
        .datasource(DATASOURCE)
        .withTarget(query(0, impactByComponent(), { instant: true, legend: `{{${l.component}}}` }))
        .mappings(IMPACT_MAPPINGS)
        .min(0)
        .max(4)
        .thresholds(steps([1, 'blue'], [2, 'yellow'], [3, 'orange'], [4, 'red']))
        .reduceOptions(lastValue())
        .displayMode(common.BarGaugeDisplayMode.Basic)
        .orientation(common.VizOrientation.Horizontal)
        .height(6)
        .span(12),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Impact by component over time')
        .datasource(DATASOURCE)
        .withTarget(query(0, impactByComponent(), { legend: `{{${l.component}}}` }))
        .mappings(IMPACT_MAPPINGS)
        .min(0)
        .max(4)
        .decimals(0)
        .lineInterpolation(common.LineInterpolation.StepAfter)
        .height(8)
        .span(12),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Revenue at risk over time')
        .description('Per component and currency while alerts fire; 0 otherwise.')
        .datasource(DATASOURCE)
        .withTarget(
          query(0, orZero(agg('sum', [l.component, l.currency], revenue)), {
            legend: `{{${l.component}}} {{${l.currency}}}`,
          }),
        )
        .min(0)
        .decimals(0)
        .lineInterpolation(common.LineInterpolation.StepAfter)
        .height(8)
        .span(12),
    );

  availabilityRow(b, 'Authentication', v.authComponent);
  availabilityRow(b, 'Admin', v.adminComponent);
  return finish(b.build());
}
