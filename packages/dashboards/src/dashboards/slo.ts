/**
 * SLOs: per objective of the manifest (`vigil slo`), the SLI now, the error budget
 * left over its window and the burn rate over each window of the alerts. Built
 * from the same SLO list as the rules, reading the series the rules record
 * (prometheus/slo/*.rules.yml): without those rules loaded it shows no data.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import { RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { BURN_RATE_ALERTS, RECORD_RATIO, RECORD_RATIO_WINDOW, SLO_WINDOWS, type Slo } from '@vigil/sdk/slo';
import { DASHBOARD_UIDS, DATASOURCE, dashboard, finish, query, redBelow, statPanel } from '../common.js';
import { ATTR_DEPLOYMENT_ENVIRONMENT_NAME, promLabel } from '@vigil/sdk/semconv';

const percent = (ratio: number) => `${Number((ratio * 100).toFixed(6))}%`;

export function sloDashboard(slos: Slo[]): Dashboard {
  const service = slos[0]?.service ?? '';
  let d = dashboard(
    DASHBOARD_UIDS.slo,
    `Vigil / SLOs${service ? ` / ${service}` : ''}`,
    'Per SLO of the manifest: the SLI now (5 minutes), the error budget left over the SLO window, and the burn rate over each window of the multi-window, multi-burn-rate alerts (1 = spending the budget in exactly the window).',
    ['slo'],
  ).time({ from: 'now-7d', to: 'now' });
  for (const s of slos) {
    const sel = `{slo="${s.id}"}`;
    const budget = Number((1 - s.objective).toFixed(10));
    const legend = `{{${promLabel(ATTR_DEPLOYMENT_ENVIRONMENT_NAME)}}}`;
    d = d
      .withRow(new RowBuilder(`${s.id}: ${s.title}, ${percent(s.objective)} over ${s.windowDays}d`))
      .withPanel(
        statPanel('SLI now (5m)')
          .description(`Share of good ${s.kind === 'flow' ? 'time' : 'requests'} over the last 5 minutes; red under the objective (${percent(s.objective)}).`)
          .withTarget(query(0, `1 - ${RECORD_RATIO('5m')}${sel}`, { instant: true, legend }))
          .unit('percentunit')
          .decimals(3)
          .thresholds(redBelow(s.objective))
          .colorMode(common.BigValueColorMode.Background)
          .height(6)
          .span(6),
      )
      .withPanel(
        statPanel(`Error budget left (${s.windowDays}d)`)
          .description(`1 - (error ratio over ${s.windowDays} days) / (1 - objective): 100% untouched, 0% spent, negative overspent. Recorded every 5 minutes.`)
          .withTarget(query(0, `1 - ${RECORD_RATIO_WINDOW}${sel} / ${budget}`, { instant: true, legend }))
          .unit('percentunit')
          .decimals(1)
          .thresholds(redBelow(0.25))
          .colorMode(common.BigValueColorMode.Background)
          .height(6)
          .span(6),
      )
      .withPanel(
        new timeseries.PanelBuilder()
          .title('Burn rate per window')
          .description(`Error ratio / error budget over each window. Pages at ${BURN_RATE_ALERTS.filter((a) => a.severity === 'page').map((a) => `${a.factor}x (${a.long} and ${a.short})`).join(' or ')}; tickets at ${BURN_RATE_ALERTS.filter((a) => a.severity === 'ticket').map((a) => `${a.factor}x (${a.long} and ${a.short})`).join(' or ')}.`)
          .datasource(DATASOURCE)
          .targets(SLO_WINDOWS.map((w, i) => query(i, `${RECORD_RATIO(w)}${sel} / ${budget}`, { legend: `${w} ${legend}` })))
          .min(0)
          .height(6)
          .span(12),
      );
  }
  return finish(d.build());
}
