/**
 * System status: is every router imported, every critical endpoint there and
 * answering, every dependency and component healthy — per service.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import { RowBuilder, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';
import * as statushistory from '@grafana/grafana-foundation-sdk/statushistory';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import {
  COLOR_BACKGROUND,
  dependencyChecksTable,
  DASHBOARD_UIDS,
  DATASOURCE,
  dashboard,
  finish,
  labelValuesVariable,
  statPanel,
  okFail,
  query,
  steps,
  tableTransforms,
} from '../common.js';
import { agg, checkId, eq, healthLevel, label as l, metric as m, re, sel, v } from '../promql.js';

const svc = re(l.service, v.service);

/** The number of 0s among the worst value per `by` group of a 0/1 gauge: 0 when all is well, never empty. */
function failing(selector: string, by: string[]): string {
  return agg('sum', [l.service], `1 - ${agg('min', [l.service, ...by], selector)}`);
}

export function serviceVariable() {
  return labelValuesVariable('service', 'Service', m.routerImport, l.service, { multi: true, all: true });
}

export function systemStatus(): Dashboard {
  const routerImport = sel(m.routerImport, svc);
  const criticalRoute = sel(m.routeRegistered, svc, eq(l.critical, 'true'));
  const componentHealthy = sel(m.componentHealthy, svc);
  const startupCheck = sel(m.startupCheck, svc);

  const d = dashboard(
    DASHBOARD_UIDS.systemStatus,
    'Vigil / System status',
    'Router imports, critical endpoints, dependencies and components of every service Vigil watches.',
    ['status'],
  )
    .withVariable(serviceVariable())

    // ── Overview ────────────────────────────────────────────────────────────
    .withRow(new RowBuilder('Overview'))
    .withPanel(
      statPanel('Startup verdict')
        .description('vigil_startup_success: 1 when no fail-fast component failed at startup (worst instance per service).')
        .withTarget(query(0, agg('min', [l.service], sel(m.startupSuccess, svc)), { instant: true, legend: `{{${l.service}}}` }))
        .mappings(okFail('started', 'refused'))
        .colorMode(common.BigValueColorMode.Background)
        .height(5)
        .span(6),
    )
    .withPanel(
      statPanel('Routers not imported')
        .description('Routers whose import failed or that have no routes.')
        .withTarget(query(0, failing(routerImport, [l.router]), { instant: true, legend: `{{${l.service}}}` }))
        .thresholds(steps([1, 'red']))
        .colorMode(common.BigValueColorMode.Background)
        .height(5)
        .span(6),
    )
    .withPanel(
      statPanel('Critical routes missing')
        .description('Declared endpoints that are not in Express\'s route table.')
        .withTarget(query(0, failing(criticalRoute, [l.method, l.route]), { instant: true, legend: `{{${l.service}}}` }))
        .thresholds(steps([1, 'red']))
        .colorMode(common.BigValueColorMode.Background)
        .height(5)
        .span(6),
    )
    .withPanel(
      statPanel('Components failing')
        .description('Components failing startup validation as re-derived at run time (vigil_component_healthy = 0), whatever their policy.')
        .withTarget(query(0, failing(componentHealthy, [l.component]), { instant: true, legend: `{{${l.service}}}` }))
        .thresholds(steps([1, 'red']))
        .colorMode(common.BigValueColorMode.Background)
        .height(5)
        .span(6),
    )

    // ── Router imports ──────────────────────────────────────────────────────
    .withRow(new RowBuilder('Router imports'))
    .withPanel(
      new table.PanelBuilder()
        .title('Router import status')
        .description('One row per router and instance outcome; error_type says why an import failed.')
        .datasource(DATASOURCE)
        .withTarget(
          query(0, agg('min', [l.service, l.component, l.router, l.outcome, l.errorType], routerImport), {
            instant: true,
            table: true,
          }),
        )
        .transformations(tableTransforms({ Value: 'Imported' }))
        .mappings(okFail('imported', 'failed'))
        .overrideByName('Imported', [{ id: 'custom.cellOptions', value: COLOR_BACKGROUND }])
        .sortBy([new common.TableSortByFieldStateBuilder().displayName('Imported')])
        .height(9)
        .span(12),
    )
    .withPanel(
      new statetimeline.PanelBuilder()
        .title('Router imports over time')
        .datasource(DATASOURCE)
        .withTarget(
          query(0, agg('min', [l.service, l.component, l.router], routerImport), {
            legend: `{{${l.service}}} {{${l.component}}}/{{${l.router}}}`,
          }),
        )
        .mappings(okFail('imported', 'failed'))
        .showValue(common.VisibilityMode.Never)
        .mergeValues(true)
        .height(9)
        .span(12),
    )

    // ── Endpoints ───────────────────────────────────────────────────────────
    .withRow(new RowBuilder('Critical endpoints'))
    .withPanel(
      new table.PanelBuilder()
        .title('Endpoint availability matrix')
        .description(
          'Each declared endpoint: registered in Express (vigil_route_registered), the last probe (vigil_probe_success, raw), and the damped health of its endpoint check (vigil_health_level, level 2) in the panel beside.',
        )
        .datasource(DATASOURCE)
        .withTarget(
          query(0, agg('min', [l.service, l.component, l.method, l.route], criticalRoute), { instant: true, table: true }),
        )
        .withTarget(
          query(1, agg('min', [l.service, l.component, l.method, l.route], sel(m.probeSuccess, svc)), {
            instant: true,
            table: true,
          }),
        )
        .transformations(tableTransforms({ 'Value #A': 'Registered', 'Value #B': 'Last probe' }))
        .mappings(okFail('ok', 'fail'))
        .overrideByName('Registered', [{ id: 'custom.cellOptions', value: COLOR_BACKGROUND }])
        .overrideByName('Last probe', [{ id: 'custom.cellOptions', value: COLOR_BACKGROUND }])
        .height(10)
        .span(12),
    )
    .withPanel(
      new statetimeline.PanelBuilder()
        .title('Endpoint health (damped)')
        .description('The endpoint checks\' published state after flap damping: what alerts are based on.')
        .datasource(DATASOURCE)
        .withTarget(
          query(
            0,
            agg(
              'min',
              [l.service, l.component, l.check],
              sel(m.healthLevel, svc, eq(l.level, healthLevel.endpoints), re(l.check, `${checkId.endpointPrefix}.*`)),
            ),
            { legend: `{{${l.service}}} {{${l.check}}}` },
          ),
        )
        .mappings(okFail('pass', 'fail'))
        .showValue(common.VisibilityMode.Never)
        .mergeValues(true)
        .height(10)
        .span(12),
    )
    .withPanel(
      new statushistory.PanelBuilder()
        .title('Endpoint probes (raw)')
        .description('Every probe result as exported, before damping: a single red cell is one bad probe.')
        .datasource(DATASOURCE)
        .withTarget(
          query(0, agg('min', [l.service, l.component, l.method, l.route], sel(m.probeSuccess, svc)), {
            legend: `{{${l.service}}} {{${l.method}}} {{${l.route}}}`,
          }),
        )
        .mappings(okFail('ok', 'fail'))
        .showValue(common.VisibilityMode.Never)
        .height(9)
        .span(24),
    )

    // ── Dependencies ────────────────────────────────────────────────────────
    .withRow(new RowBuilder('Database and cache (dependency checks)'))
    .withPanel(
      dependencyChecksTable(
        'Dependency checks',
        'vigil_startup_check: the startup result of each dependency check, updated by its runtime re-runs.',
        agg('min', [l.service, l.component, l.check, l.checkType, l.policy], startupCheck),
        12,
      ),
    )
    .withPanel(
      new statetimeline.PanelBuilder()
        .title('Dependency health (damped)')
        .datasource(DATASOURCE)
        .withTarget(
          query(
            0,
            agg('min', [l.service, l.component, l.check], sel(m.healthLevel, svc, re(l.check, `${checkId.dependencyPrefix}.*`))),
            { legend: `{{${l.service}}} {{${l.check}}}` },
          ),
        )
        .mappings(okFail('pass', 'fail'))
        .showValue(common.VisibilityMode.Never)
        .mergeValues(true)
        .height(8)
        .span(12),
    )

    // ── Components ──────────────────────────────────────────────────────────
    .withRow(new RowBuilder('Components'))
    .withPanel(
      new statetimeline.PanelBuilder()
        .title('Component health')
        .description('vigil_component_healthy per component; the policy tells a refusal (fail_fast) from a degradation.')
        .datasource(DATASOURCE)
        .withTarget(
          query(0, agg('min', [l.service, l.component, l.policy], componentHealthy), {
            legend: `{{${l.service}}} {{${l.component}}} ({{${l.policy}}})`,
          }),
        )
        .mappings(okFail('healthy', 'failing'))
        .showValue(common.VisibilityMode.Never)
        .mergeValues(true)
        .height(9)
        .span(12),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Runtime checks failing, by level')
        .description('Runtime checks whose damped state is fail, per health level (1 process and dependencies, 2 endpoints, drift and error rate, 3 flows, 4 integration).')
        .datasource(DATASOURCE)
        .withTarget(
          query(0, agg('sum', [l.service, l.level], `1 - ${sel(m.healthLevel, svc)}`), {
            legend: `{{${l.service}}} level {{${l.level}}}`,
          }),
        )
        .min(0)
        .decimals(0)
        .height(9)
        .span(12),
    )
    .build();
  return finish(d);
}
