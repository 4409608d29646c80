/**
 * Shared pieces of the dashboards: the data source, query builders, value
 * mappings, variables and the final touches (panel ids, annotations) that the
 * Foundation SDK's builders leave out.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as table from '@grafana/grafana-foundation-sdk/table';
import {
  DashboardBuilder,
  DashboardCursorSync,
  DashboardLinkBuilder,
  DashboardLinkType,
  MappingType,
  QueryVariableBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  VariableRefresh,
  VariableSort,
  type Dashboard,
  type DataSourceRef,
  type DataTransformerConfig,
  type Panel,
  type RowPanel,
  type ValueMapping,
} from '@grafana/grafana-foundation-sdk/dashboard';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';

/** Fixed uid of the provisioned Prometheus data source (grafana/provisioning/datasources). */
export const DATASOURCE_UID = 'vigil-prometheus';
export const DATASOURCE: DataSourceRef = { type: 'prometheus', uid: DATASOURCE_UID };

/** Fixed dashboard uids: links and the provisioning rely on them. */
export const DASHBOARD_UIDS = {
  systemStatus: 'vigil-system-status',
  business: 'vigil-business',
  technical: 'vigil-technical',
  slo: 'vigil-slo',
} as const;

const REF_IDS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

export interface QueryOptions {
  legend?: string;
  /** Instant query (tables, stats); otherwise a range query. */
  instant?: boolean;
  /** Table format (one row per series, labels as columns). */
  table?: boolean;
}

/** One Prometheus query; `index` gives its refId (0 → A). */
export function query(index: number, expr: string, options: QueryOptions = {}): prometheus.DataqueryBuilder {
  const q = new prometheus.DataqueryBuilder()
    .datasource(DATASOURCE)
    .refId(REF_IDS[index] ?? `Q${index}`)
    .expr(expr)
    .editorMode(prometheus.QueryEditorMode.Code);
  if (options.instant) q.instant();
  else q.range();
  if (options.table) q.format(prometheus.PromQueryFormat.Table);
  q.legendFormat(options.legend ?? '__auto');
  return q;
}

/** Value mappings for a 0/1 gauge. */
export function okFail(ok: string, fail: string): ValueMapping[] {
  return [
    {
      type: MappingType.ValueToText,
      options: {
        '0': { text: fail, color: 'red', index: 0 },
        '1': { text: ok, color: 'green', index: 1 },
      },
    },
  ];
}

/** Business impact levels as the evaluator assesses them (0: nothing firing). */
export const IMPACT_MAPPINGS: ValueMapping[] = [
  {
    type: MappingType.ValueToText,
    options: {
      '0': { text: 'none', color: 'green', index: 0 },
      '1': { text: 'low', color: 'blue', index: 1 },
      '2': { text: 'medium', color: 'yellow', index: 2 },
      '3': { text: 'high', color: 'orange', index: 3 },
      '4': { text: 'critical', color: 'red', index: 4 },
    },
  },
];

/** An `ALERTS` series is 1 while it exists. */
export const FIRING_MAPPINGS: ValueMapping[] = [
  { type: MappingType.ValueToText, options: { '1': { text: 'firing', color: 'red', index: 0 } } },
];

/** Red below `limit`, green from it. */
export function redBelow(limit: number): ThresholdsConfigBuilder {
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
    { value: null, color: 'red' },
    { value: limit, color: 'green' },
  ]);
}

/** Green below each step, then the given colours. */
export function steps(...s: Array<[number, string]>): ThresholdsConfigBuilder {
  return new ThresholdsConfigBuilder()
    .mode(ThresholdsMode.Absolute)
    .steps([{ value: null, color: 'green' }, ...s.map(([value, color]) => ({ value, color }))]);
}

/** A stat panel on instant queries: the last value, no sparkline. */
export function statPanel(title: string): stat.PanelBuilder {
  return new stat.PanelBuilder()
    .title(title)
    .datasource(DATASOURCE)
    .reduceOptions(lastValue())
    .graphMode(common.BigValueGraphMode.None);
}

export function lastValue(): common.ReduceDataOptionsBuilder {
  return new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false);
}

export function tableLegend(...calcs: string[]): common.VizLegendOptionsBuilder {
  return new common.VizLegendOptionsBuilder()
    .showLegend(true)
    .displayMode(common.LegendDisplayMode.Table)
    .placement(common.LegendPlacement.Bottom)
    .calcs(calcs);
}

export const COLOR_BACKGROUND: common.TableCellOptions = {
  type: common.TableCellDisplayMode.ColorBackground,
  mode: common.TableCellBackgroundDisplayMode.Basic,
};

/** Merge the instant queries of a table into one row per label set, then rename and hide columns. */
export function tableTransforms(rename: Record<string, string>, hide: string[] = []): DataTransformerConfig[] {
  const excludeByName: Record<string, boolean> = { Time: true };
  for (const h of hide) excludeByName[h] = true;
  return [
    { id: 'merge', options: {} },
    { id: 'organize', options: { excludeByName, indexByName: {}, renameByName: rename } },
  ];
}

/** A query variable on label values: `label_values(<selector>, <label>)`. */
export function labelValuesVariable(
  name: string,
  labelText: string,
  selector: string,
  labelName: string,
  options: { multi?: boolean; all?: boolean; current?: string } = {},
): QueryVariableBuilder {
  const b = new QueryVariableBuilder(name)
    .label(labelText)
    .datasource(DATASOURCE)
    .query(`label_values(${selector}, ${labelName})`)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc)
    .multi(options.multi ?? false)
    .includeAll(options.all ?? false);
  if (options.all) {
    b.allValue('.*');
    b.current({ selected: true, text: 'All', value: '$__all' });
  } else if (options.current !== undefined) {
    b.current({ selected: true, text: options.current, value: options.current });
  }
  return b;
}

/** Dashboard defaults shared by the three dashboards. */
export function dashboard(uid: string, title: string, description: string, tags: string[]): DashboardBuilder {
  return new DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(['vigil', ...tags])
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .time({ from: 'now-1h', to: 'now' })
    .refresh('30s')
    .timezone('browser')
    .link(
      new DashboardLinkBuilder('Vigil dashboards')
        .type(DashboardLinkType.Dashboards)
        .tags(['vigil'])
        .asDropdown(true)
        .icon('external link')
        .includeVars(true)
        .keepTime(true)
        .targetBlank(false)
        .tooltip('')
        .url(''),
    );
}

/**
 * What the builders leave out: unique panel ids (1, 2, … in layout order,
 * rows included), the built-in annotation of Grafana's own alerts, and a
 * fixed `version`.
 */
export function finish(d: Dashboard): Dashboard {
  let id = 0;
  for (const p of d.panels ?? []) {
    (p as Panel | RowPanel).id = ++id;
    if (p.type === 'row') for (const inner of (p as RowPanel).panels ?? []) inner.id = ++id;
  }
  d.annotations = {
    list: [
      {
        builtIn: 1,
        datasource: { type: 'grafana', uid: '-- Grafana --' },
        enable: true,
        hide: true,
        iconColor: 'rgba(0, 211, 255, 1)',
        name: 'Annotations & Alerts',
        type: 'dashboard',
      },
    ],
  };
  d.version = 1;
  return d;
}

/**
 * The table of dependency checks (`vigil_startup_check` by service, component, check, type and
 * policy): "database and cache health" on System status, "startup validation results" on Technical.
 */
export function dependencyChecksTable(title: string, description: string, expr: string, span: number): table.PanelBuilder {
  return new table.PanelBuilder()
    .title(title)
    .description(description)
    .datasource(DATASOURCE)
    .withTarget(query(0, expr, { instant: true, table: true }))
    .transformations(tableTransforms({ Value: 'Passing' }))
    .mappings(okFail('pass', 'fail'))
    .overrideByName('Passing', [{ id: 'custom.cellOptions', value: COLOR_BACKGROUND }])
    .height(8)
    .span(span);
}
