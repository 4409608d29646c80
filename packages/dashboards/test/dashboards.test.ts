/**
 * The generated Grafana dashboards: committed JSON equals the code's output,
 * every panel queries the provisioned data source, every metric and label
 * name comes from @vigil/sdk/semconv (checked against docs/telemetry.md too),
 * every query can be made concrete for Prometheus, and the JSON has what
 * Grafana expects (schemaVersion, gridPos inside the 24-column grid without
 * overlaps, unique ids and refIds, variables that exist).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import * as semconv from '@vigil/sdk/semconv';
import type { Dashboard, Panel, RowPanel } from '@grafana/grafana-foundation-sdk/dashboard';
import {
  BUILTIN_VARIABLE_DEFAULTS,
  DASHBOARD_UIDS,
  DATASOURCE_UID,
  EXAMPLE_VARIABLES,
  allPanels,
  alertLabel,
  allDashboards,
  dashboardFileName,
  dashboards,
  sloDashboards,
  panelQueries,
  renderDashboard,
  substituteVariables,
  variableQueries,
} from '../src/index.js';
import { DEFAULT_OUT_DIR, generate } from '../src/generate.js';

const TELEMETRY_DOC = readFileSync(new URL('../../../docs/telemetry.md', import.meta.url), 'utf8');
const PROM_KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan', 'Inf', 'NaN']);

/** Metric names of a PromQL expression: identifiers that are not functions, keywords, labels or strings. */
function metricNames(expr: string): string[] {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  s = s.replace(/\{[^}]*\}/g, ' ');
  s = s.replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const match of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const rest = s.slice(match.index + match[0].length).trimStart();
    if (rest.startsWith('(') || PROM_KEYWORDS.has(match[0])) continue;
    names.push(match[0]);
  }
  return names;
}

/** Label names in matchers and in by/without/on/ignoring lists. */
function labelNames(expr: string): string[] {
  const s = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const names: string[] = [];
  for (const block of s.matchAll(/\{([^}]*)\}/g)) {
    for (const m of block[1]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)) names.push(m[1]!);
  }
  for (const list of s.matchAll(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g)) {
    names.push(...list[1]!.split(',').map((x) => x.trim()).filter(Boolean));
  }
  return names;
}

/**
 * Prometheus names derived from every METRIC_* of semconv the way the OTLP
 * translation does (docs/telemetry.md): the name, `_total` for a counter,
 * `_seconds` and `_bucket`/`_sum`/`_count` for a histogram in seconds — each
 * kept only if telemetry.md documents that Prometheus name.
 */
function allowedMetricNames(): Set<string> {
  const documented = (name: string) => TELEMETRY_DOC.includes(`\`${name}\``);
  const allowed = new Set<string>(['ALERTS']);
  for (const [key, value] of Object.entries(semconv)) {
    if (!key.startsWith('METRIC_') || typeof value !== 'string') continue;
    const base = semconv.promName(value);
    if (documented(base)) allowed.add(base);
    if (documented(`${base}_total`)) allowed.add(`${base}_total`);
    const seconds = semconv.promName(value, 's');
    if (documented(seconds)) for (const suffix of ['_bucket', '_sum', '_count']) allowed.add(`${seconds}${suffix}`);
  }
  return allowed;
}

/** Label names from every ATTR_* of semconv, plus a histogram's `le`. */
function allowedLabelNames(): Set<string> {
  const allowed = new Set<string>(['le']);
  for (const [key, value] of Object.entries(semconv)) {
    if (key.startsWith('ATTR_') && typeof value === 'string') allowed.add(semconv.promLabel(value));
  }
  return allowed;
}

function panelsOf(d: Dashboard): Panel[] {
  return allPanels(d).filter((p): p is Panel => p.type !== 'row');
}

describe('@vigil/dashboards', () => {
  const built = dashboards();

  describe('committed JSON', () => {
    const committed = allDashboards();
    for (const d of committed) {
      it(`grafana/dashboards/${dashboardFileName(d)} is what the code generates`, () => {
        let committed: string | undefined;
        try {
          committed = readFileSync(join(DEFAULT_OUT_DIR, dashboardFileName(d)), 'utf8');
        } catch {
          committed = undefined;
        }
        expect(committed, `${dashboardFileName(d)} is missing: run \`npm run dashboards\``).to.be.a('string');
        expect(committed === renderDashboard(d), `${dashboardFileName(d)} differs from the generated dashboard (edited by hand, or the code changed): run \`npm run dashboards\` and commit the result`).to.equal(true);
      });
    }

    it('holds no JSON file that the code does not generate', () => {
      const expected = committed.map(dashboardFileName).sort();
      const present = readdirSync(DEFAULT_OUT_DIR).filter((f) => f.endsWith('.json')).sort();
      expect(present, 'run `npm run dashboards` and remove stale files').to.deep.equal(expected);
    });

    it('renders with sorted keys, 2-space indent and a final newline, the same every time', () => {
      for (const d of built) {
        const text = renderDashboard(d);
        expect(text.endsWith('}\n')).to.equal(true);
        expect(text).to.equal(renderDashboard(dashboards().find((x) => x.uid === d.uid)!));
        expect(Object.keys(JSON.parse(text))).to.deep.equal(Object.keys(JSON.parse(text)).sort());
        expect(text.split('\n')[1]).to.match(/^ {2}"/);
      }
    });

    it('generate --check exits 1 on a hand-edited file and names it; 0 when up to date', () => {
      const dir = mkdtempSync(join(tmpdir(), 'vigil-dashboards-'));
      const log = console.log;
      const error = console.error;
      const messages: string[] = [];
      console.log = (...a: unknown[]) => void messages.push(a.join(' '));
      console.error = (...a: unknown[]) => void messages.push(a.join(' '));
      try {
        expect(generate(['--check', '--out', dir])).to.equal(1);
        expect(generate(['--out', dir])).to.equal(0);
        expect(generate(['--check', '--out', dir])).to.equal(0);
        const file = join(dir, `${DASHBOARD_UIDS.business}.json`);
        writeFileSync(file, readFileSync(file, 'utf8').replace('"Revenue at risk"', '"Revenue at risk (edited)"'));
        messages.length = 0;
        expect(generate(['--check', '--out', dir])).to.equal(1);
        expect(messages.join('\n')).to.include(`${DASHBOARD_UIDS.business}.json`).and.to.include('npm run dashboards');
        expect(messages.join('\n')).not.to.include(`${DASHBOARD_UIDS.technical}.json`);
      } finally {
        console.log = log;
        console.error = error;
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('dashboards', () => {
    it('are the three with fixed uids', () => {
      expect(built.map((d) => d.uid)).to.deep.equal(['vigil-system-status', 'vigil-business', 'vigil-technical']);
      expect(Object.values(DASHBOARD_UIDS)).to.deep.equal([...built, ...sloDashboards()].map((d) => d.uid));
    });

    it('every panel has targets, each on the provisioned Prometheus data source (uid vigil-prometheus)', () => {
      for (const d of built) {
        for (const p of panelsOf(d)) {
          const where = `${d.uid} / ${p.title}`;
          expect(p.targets ?? [], where).to.not.be.empty;
          expect(p.datasource?.uid, where).to.equal(DATASOURCE_UID);
          for (const t of p.targets ?? []) {
            expect((t as { datasource?: { uid?: string; type?: string } }).datasource, where).to.deep.equal({
              type: 'prometheus',
              uid: DATASOURCE_UID,
            });
          }
        }
        for (const v of d.templating?.list ?? []) expect(v.datasource?.uid, `${d.uid} $${v.name}`).to.equal(DATASOURCE_UID);
      }
    });

    it('the provisioning files name the same data source uid and the dashboards folder', () => {
      const ds = readFileSync(new URL('../../../grafana/provisioning/datasources/prometheus.yml', import.meta.url), 'utf8');
      expect(ds).to.match(/^\s+uid: vigil-prometheus$/m);
      expect(ds).to.match(/^\s+url: http:\/\/prometheus:9090$/m);
      expect(ds).to.match(/^\s+isDefault: true$/m);
      const provider = readFileSync(new URL('../../../grafana/provisioning/dashboards/vigil.yml', import.meta.url), 'utf8');
      expect(provider).to.match(/^\s+path: \/var\/lib\/grafana\/dashboards$/m);
    });
  });

  describe('SLO dashboard (from the manifest\'s SLO list; its queries run on real Prometheus in test/e2e/slo.test.ts)', () => {
    const [slo] = sloDashboards();
    it('one row per SLO of the example, with the SLI now, the budget left and the burn rate over every window', () => {
      const rows = (slo!.panels ?? []).filter((p) => p.type === 'row');
      expect(rows.map((r) => (r as RowPanel).title!.split(':')[0])).to.deep.equal([
        'authentication-post-api-v1-auth-login-availability',
        'authentication-post-api-v1-auth-login-latency',
        'admin-get-api-v1-admin-feature-flags-availability',
        'admin-admin-panel-flow',
        'user-management-get-api-v1-users-availability',
      ]);
      const panels = allPanels(slo!).filter((p) => p.type !== 'row') as Panel[];
      expect(panels).to.have.length(rows.length * 3);
      const exprs = (p: Panel) => (p.targets ?? []).map((t) => (t as { expr?: string }).expr ?? '');
      const burn = panels.find((p) => p.title === 'Burn rate per window')!;
      expect(exprs(burn).map((e) => /:rate(\w+)\{/.exec(e)![1])).to.deep.equal(['5m', '30m', '1h', '2h', '6h', '1d', '3d']);
      expect(exprs(burn)[0]).to.equal('vigil:slo_error_ratio:rate5m{slo="authentication-post-api-v1-auth-login-availability"} / 0.001');
      const budget = panels.find((p) => p.title === 'Error budget left (28d)')!;
      expect(exprs(budget)[0]).to.equal('1 - vigil:slo_error_ratio:window{slo="authentication-post-api-v1-auth-login-availability"} / 0.001');
    });
  });

  describe('queries', () => {
    const queries = panelQueries();
    const allowedMetrics = allowedMetricNames();
    const allowedLabels = allowedLabelNames();

    it('panelQueries() lists every target of every panel', () => {
      let targets = 0;
      for (const d of built) for (const p of panelsOf(d)) targets += (p.targets ?? []).length;
      expect(queries).to.have.length(targets);
      expect(new Set(queries.map((q) => q.dashboard))).to.deep.equal(new Set(built.map((d) => d.uid)));
    });

    it('the metric-name extraction of this test finds what it should', () => {
      expect(metricNames('histogram_quantile(0.95, sum by (le, http_route) (rate(a_bucket{x=~"$y"}[$__rate_interval])))')).to.deep.equal(['a_bucket']);
      expect(metricNames('max(b{c="d or e"}) or on() vector(0)')).to.deep.equal(['b']);
      expect(metricNames('sum by (s) (1 - min by (s, r) (c))')).to.deep.equal(['c']);
      expect(labelNames('sum by (s) (c{a="1", b=~"x"}) or on() vector(0)')).to.deep.equal(['a', 'b', 's']);
    });

    it('every metric name is a Prometheus name derived from @vigil/sdk/semconv and documented in docs/telemetry.md (or ALERTS)', () => {
      expect(allowedMetrics.size).to.be.greaterThan(20);
      for (const q of queries) {
        const names = metricNames(q.expr);
        expect(names, `${q.dashboard} / ${q.panel} ${q.refId}: no metric in ${q.expr}`).to.not.be.empty;
        for (const n of names) expect(allowedMetrics.has(n), `${q.dashboard} / ${q.panel} ${q.refId}: ${n} in ${q.expr}`).to.equal(true);
      }
      for (const v of variableQueries()) {
        for (const n of metricNames(v.selector)) expect(allowedMetrics.has(n), `$${v.variable}: ${n}`).to.equal(true);
        expect(allowedLabels.has(v.label), `$${v.variable}: ${v.label}`).to.equal(true);
      }
    });

    it('every label name is derived from a semconv attribute (or le), or is an alert label in a query on ALERTS', () => {
      const alertLabels = new Set<string>(Object.values(alertLabel));
      for (const q of queries) {
        const onAlerts = metricNames(q.expr).every((n) => n === 'ALERTS');
        for (const n of labelNames(q.expr)) {
          const ok = onAlerts ? alertLabels.has(n) || allowedLabels.has(n) : allowedLabels.has(n);
          expect(ok, `${q.dashboard} / ${q.panel} ${q.refId}: label ${n} in ${q.expr}`).to.equal(true);
        }
      }
    });

    it('substituteVariables() leaves no $ in any query, with the example values', () => {
      for (const q of queries) {
        const concrete = substituteVariables(q.expr, EXAMPLE_VARIABLES);
        expect(concrete, `${q.dashboard} / ${q.panel} ${q.refId}`).not.to.include('$');
        expect(concrete).not.to.include('[[');
      }
      for (const v of variableQueries()) expect(substituteVariables(v.query, EXAMPLE_VARIABLES)).not.to.include('$');
    });

    it('every variable a query uses is a template variable of its dashboard or a Grafana built-in', () => {
      for (const d of built) {
        const defined = new Set([...(d.templating?.list ?? []).map((v) => v.name), ...Object.keys(BUILTIN_VARIABLE_DEFAULTS)]);
        const exprs = [
          ...queries.filter((q) => q.dashboard === d.uid).map((q) => q.expr),
          ...variableQueries().filter((v) => v.dashboard === d.uid).map((v) => v.query),
        ];
        for (const e of exprs) {
          for (const m of e.matchAll(/\$\{?(\w+)/g)) expect(defined.has(m[1]!), `${d.uid}: $${m[1]} in ${e}`).to.equal(true);
        }
      }
      expect(Object.keys(EXAMPLE_VARIABLES).sort()).to.deep.equal(['admin_component', 'auth_component', 'service']);
    });

    it('substituteVariables(): $var, ${var}, [[var]], built-ins, multi-values, and unknown names throw', () => {
      expect(substituteVariables('a{s=~"$service"}[$__rate_interval]', { service: 'x' })).to.equal('a{s=~"x"}[1m]');
      expect(substituteVariables('a{s=~"${service}"}[${__range}]', { service: 'x', __range: '2h' })).to.equal('a{s=~"x"}[2h]');
      expect(substituteVariables('a{s=~"[[service]]"}', { service: ['a.b', 'c'] })).to.equal('a{s=~"(a\\.b|c)"}');
      expect(substituteVariables('a{s=~"${service:regex}"}', { service: '.*' })).to.equal('a{s=~".*"}');
      expect(() => substituteVariables('a{s="$nope"}', {})).to.throw(/\$nope/);
    });
  });

  describe('Grafana structure', () => {
    it('schemaVersion, title, tags, time range, version', () => {
      for (const d of built) {
        expect(d.schemaVersion, d.uid).to.be.a('number').and.to.be.at.least(39);
        expect(d.title, d.uid).to.match(/^Vigil \//);
        expect(d.tags, d.uid).to.include('vigil');
        expect(d.time, d.uid).to.deep.equal({ from: 'now-1h', to: 'now' });
        expect(d.version, d.uid).to.equal(1);
        expect(d.annotations?.list ?? [], d.uid).to.have.length(1);
      }
    });

    it('panel ids are unique positive integers; every panel has a type, a title and a gridPos inside the 24-column grid', () => {
      for (const d of built) {
        const ids = allPanels(d).map((p) => p.id);
        for (const id of ids) expect(Number.isInteger(id) && id! > 0, `${d.uid}: id ${id}`).to.equal(true);
        expect(new Set(ids).size, `${d.uid}: duplicate ids`).to.equal(ids.length);
        for (const p of allPanels(d)) {
          const where = `${d.uid} / ${p.title}`;
          expect(p.type, where).to.be.a('string').and.not.be.empty;
          expect(p.title, where).to.be.a('string').and.not.be.empty;
          const g = p.gridPos;
          expect(g, where).to.be.an('object');
          for (const k of ['x', 'y', 'w', 'h'] as const) expect(Number.isInteger(g![k]), `${where}: gridPos.${k}`).to.equal(true);
          expect(g!.w, where).to.be.within(1, 24);
          expect(g!.h, where).to.be.at.least(1);
          expect(g!.x + g!.w, where).to.be.at.most(24);
          if (p.type === 'row') expect(g, where).to.include({ x: 0, w: 24, h: 1 });
        }
      }
    });

    it('panels do not overlap, and rows sit above their panels', () => {
      for (const d of built) {
        const ps = allPanels(d) as Array<Panel | RowPanel>;
        for (let i = 0; i < ps.length; i++) {
          for (let j = i + 1; j < ps.length; j++) {
            const a = ps[i]!.gridPos!;
            const b = ps[j]!.gridPos!;
            const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
            expect(overlap, `${d.uid}: "${ps[i]!.title}" overlaps "${ps[j]!.title}"`).to.equal(false);
          }
        }
        const ys = ps.map((p) => p.gridPos!.y);
        expect(ys, `${d.uid}: panels in layout order`).to.deep.equal([...ys].sort((a, b) => a - b));
      }
    });

    it('refIds are non-empty and unique within each panel; every panel type is a core Grafana panel', () => {
      const core = new Set(['row', 'stat', 'table', 'timeseries', 'state-timeline', 'status-history', 'bargauge']);
      for (const d of built) {
        for (const p of allPanels(d)) expect(core.has(p.type), `${d.uid}: ${p.type}`).to.equal(true);
        for (const p of panelsOf(d)) {
          const refIds = (p.targets ?? []).map((t) => (t as { refId?: string }).refId);
          for (const r of refIds) expect(r, `${d.uid} / ${p.title}`).to.match(/^[A-Z]$/);
          expect(new Set(refIds).size, `${d.uid} / ${p.title}`).to.equal(refIds.length);
        }
      }
    });

    it('template variables: $service (multi, All = .*) everywhere; auth and admin components default to authentication and admin', () => {
      for (const d of built) {
        const service = (d.templating?.list ?? []).find((v) => v.name === 'service');
        expect(service, d.uid).to.include({ type: 'query', multi: true, includeAll: true, allValue: '.*' });
        expect(service!.query).to.equal(`label_values(${semconv.promName(semconv.METRIC_ROUTER_IMPORT)}, ${semconv.promLabel(semconv.ATTR_SERVICE_NAME)})`);
      }
      const business = built.find((d) => d.uid === DASHBOARD_UIDS.business)!;
      const byName = new Map((business.templating?.list ?? []).map((v) => [v.name, v]));
      expect(byName.get('auth_component')?.current).to.deep.include({ value: 'authentication' });
      expect(byName.get('admin_component')?.current).to.deep.include({ value: 'admin' });
    });
  });
});

