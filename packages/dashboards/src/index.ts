/**
 * @vigil/dashboards — Vigil's Grafana dashboards as code.
 *
 * `dashboards()` builds the three dashboards with the Grafana Foundation SDK;
 * `npm run dashboards` (src/generate.ts) writes them to grafana/dashboards/<uid>.json,
 * where Grafana's file provider (grafana/provisioning/dashboards) loads them.
 *
 * For tests that run the queries against a real Prometheus:
 *
 * ```ts
 * import { panelQueries, substituteVariables } from '@vigil/dashboards';
 * for (const q of panelQueries()) {
 *   const promql = substituteVariables(q.expr, { service: 'marketedge-api' });
 *   // GET /api/v1/query?query=<promql>  — expect a non-empty result
 * }
 * ```
 */
import type { Dashboard, Panel, RowPanel, VariableModel } from '@grafana/grafana-foundation-sdk/dashboard';
import { business } from './dashboards/business.js';
import { systemStatus } from './dashboards/system-status.js';
import { technical } from './dashboards/technical.js';
import { sloDashboard } from './dashboards/slo.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseManifestText } from '@vigil/sdk';
import { sloList } from '@vigil/sdk/slo';

export { sloDashboard };

export { DASHBOARD_UIDS, DATASOURCE, DATASOURCE_UID } from './common.js';
export { alertLabel, checkId, label, metric } from './promql.js';

/** The three dashboards, freshly built (System status, Business, Technical). */
export function dashboards(): Dashboard[] {
  return [systemStatus(), business(), technical()];
}

/** The MarketEdge example's manifest, whose SLOs the committed SLO dashboard shows. */
export const EXAMPLE_MANIFEST = fileURLToPath(new URL('../../../examples/marketedge-api/vigil.yaml', import.meta.url));

/** The SLO dashboard of a manifest's SLOs (default: the MarketEdge example's). */
export function sloDashboards(manifestFile = EXAMPLE_MANIFEST): Dashboard[] {
  return [sloDashboard(sloList(parseManifestText(readFileSync(manifestFile, 'utf8'), manifestFile)))];
}

/** Every dashboard generate.ts writes: the three, and the SLO dashboard of the example. */
export function allDashboards(): Dashboard[] {
  return [...dashboards(), ...sloDashboards()];
}

/** File name of a dashboard under grafana/dashboards. */
export function dashboardFileName(d: Dashboard): string {
  if (!d.uid) throw new Error(`dashboard ${d.title} has no uid`);
  return `${d.uid}.json`;
}

/** Recursively sorted object keys (arrays keep their order), so the output never depends on build order. */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/** The committed form of a dashboard: sorted keys, 2-space indent, final newline. */
export function renderDashboard(d: Dashboard): string {
  return `${JSON.stringify(sortKeys(d), null, 2)}\n`;
}

/** Top-level panels and the panels of rows, in layout order. */
export function allPanels(d: Dashboard): Array<Panel | RowPanel> {
  const out: Array<Panel | RowPanel> = [];
  for (const p of d.panels ?? []) {
    out.push(p);
    if (p.type === 'row') out.push(...((p as RowPanel).panels ?? []));
  }
  return out;
}

export interface PanelQuery {
  /** Dashboard uid. */
  dashboard: string;
  /** Panel title. */
  panel: string;
  panelId: number | undefined;
  refId: string;
  /** PromQL with Grafana variables (`$service`, `$__rate_interval`, …): see `substituteVariables`. */
  expr: string;
  /** True for an instant query (stat, table); false for a range query. */
  instant: boolean;
}

/** Every PromQL expression of every panel of every dashboard. */
export function panelQueries(): PanelQuery[] {
  const out: PanelQuery[] = [];
  for (const d of dashboards()) {
    for (const p of allPanels(d)) {
      if (p.type === 'row') continue;
      for (const t of (p as Panel).targets ?? []) {
        const target = t as { refId?: string; expr?: string; instant?: boolean };
        if (typeof target.expr !== 'string') continue;
        out.push({
          dashboard: d.uid ?? '',
          panel: (p as Panel).title ?? '',
          panelId: p.id,
          refId: target.refId ?? '',
          expr: target.expr,
          instant: target.instant === true,
        });
      }
    }
  }
  return out;
}

export interface VariableQuery {
  dashboard: string;
  variable: string;
  /** As Grafana stores it: `label_values(<selector>, <label>)`. */
  query: string;
  /** The series selector (may hold other variables, e.g. `$service`). */
  selector: string;
  label: string;
}

/** The `label_values` query of every template variable. */
export function variableQueries(): VariableQuery[] {
  const out: VariableQuery[] = [];
  for (const d of dashboards()) {
    for (const variable of (d.templating?.list ?? []) as VariableModel[]) {
      if (variable.type !== 'query' || typeof variable.query !== 'string') continue;
      const match = /^label_values\((.*),\s*(\w+)\)$/.exec(variable.query);
      if (!match) throw new Error(`${d.uid}: variable ${variable.name} is not a label_values() query: ${variable.query}`);
      out.push({ dashboard: d.uid ?? '', variable: variable.name, query: variable.query, selector: match[1]!, label: match[2]! });
    }
  }
  return out;
}

/** Values of Grafana's built-in interval variables used when the caller gives none. */
export const BUILTIN_VARIABLE_DEFAULTS: Readonly<Record<string, string>> = {
  __rate_interval: '1m',
  __interval: '15s',
  __range: '1h',
};

/** The dashboards' own variables with the values that suit the MarketEdge example. */
export const EXAMPLE_VARIABLES: Readonly<Record<string, string>> = {
  service: 'marketedge-api',
  auth_component: 'authentication',
  admin_component: 'admin',
};

function escapeRegex(s: string): string {
  return s.replace(/[\\^$*+?.()|{}[\]]/g, '\\$&');
}

/**
 * Replace Grafana variables in a PromQL expression by concrete values, so it
 * can be sent to Prometheus directly — what Grafana does before it queries:
 *
 * * `$name`, `${name}` and `[[name]]` (a `${name:format}` suffix is ignored)
 *   are replaced by `values[name]`;
 * * the built-ins `$__rate_interval`, `$__interval`, `$__range` take
 *   `values.__rate_interval` etc., else `BUILTIN_VARIABLE_DEFAULTS`
 *   (1m, 15s, 1h: pick a rate interval of at least two export intervals);
 * * a string value is inserted as it is; an array becomes a regex
 *   alternation `(a|b)` of escaped values, as Grafana formats a multi-value
 *   variable for Prometheus. Every variable of these dashboards is used in
 *   `=~` matchers, so `.*` stands for "All";
 * * an unknown variable throws, so nothing with a `$` reaches Prometheus.
 *
 * ```ts
 * substituteVariables(expr, { service: 'marketedge-api', auth_component: 'authentication', admin_component: 'admin' })
 * substituteVariables(expr, { ...EXAMPLE_VARIABLES, __rate_interval: '30s' })
 * ```
 */
export function substituteVariables(expr: string, values: Readonly<Record<string, string | readonly string[]>>): string {
  const lookup = (name: string): string => {
    const value = values[name] ?? BUILTIN_VARIABLE_DEFAULTS[name];
    if (value === undefined) throw new Error(`no value for variable $${name} in: ${expr}`);
    if (typeof value === 'string') return value;
    const list = value as readonly string[];
    return list.length === 1 ? escapeRegex(list[0]!) : `(${list.map(escapeRegex).join('|')})`;
  };
  return expr.replace(
    /\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)/g,
    (_all, braced?: string, bracketed?: string, plain?: string) => lookup((braced ?? bracketed ?? plain)!),
  );
}
