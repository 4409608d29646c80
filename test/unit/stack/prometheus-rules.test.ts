/**
 * prometheus: the config and the alert rules pass promtool (check config, check rules,
 * and the rules' own unit tests in prometheus/tests), and every metric and label name the
 * rules use is derived from the telemetry contract (packages/sdk/src/semconv.ts), never retyped.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';
import * as semconv from '../../../packages/sdk/src/semconv.js';
import { POLICY_VALUE, ROUTER_OUTCOME, promLabel, promName } from '../../../packages/sdk/src/semconv.js';
import { collectorConfigDefaults, REPO_ROOT, runTool } from '../../helpers/rig.js';

const PROM_DIR = path.join(REPO_ROOT, 'prometheus');
const CONFIG = 'prometheus/prometheus.yml';
const RULES = 'prometheus/rules/vigil.rules.yml';
const TEST_DIR = 'prometheus/tests';

/** The alert names of the label contract (docs and Alertmanager routing rely on them). */
const CONTRACT_ALERTS = [
  'VigilRouterImportFailed',
  'VigilCriticalRouteMissing',
  'VigilEndpointProbeFailing',
  'VigilStartupValidationFailed',
  'VigilTelemetrySilent',
  'VigilEvaluatorDown',
  'VigilWatchdog',
];
const OPTIONAL_ALERTS = ['VigilHighErrorRate'];
/** Labels the contract adds to particular alerts, on top of severity/source/service. */
const EXTRA_LABELS: Record<string, string[]> = {
  VigilRouterImportFailed: ['component', 'router'],
  VigilCriticalRouteMissing: ['component', 'route', 'method'],
  VigilEndpointProbeFailing: ['component', 'route', 'method', 'check'],
  VigilStartupValidationFailed: ['component'],
  VigilTelemetrySilent: ['component'],
  VigilEvaluatorDown: ['component'],
};
const SEVERITIES = ['critical', 'high', 'medium', 'low', 'none'];

// ── Names derived from semconv ────────────────────────────────────────────────────────────────

const constants: [string, string][] = Object.entries(semconv as Record<string, unknown>).flatMap(([key, value]) =>
  typeof value === 'string' ? [[key, value] as [string, string]] : [],
);

/** Every Prometheus series name a METRIC_* constant can take (docs/telemetry.md, "Prometheus names"). */
const KNOWN_METRICS = new Set<string>();
for (const [key, value] of constants) {
  if (!key.startsWith('METRIC_')) continue;
  const base = promName(value);
  const seconds = promName(value, 's');
  for (const n of [base, `${base}_total`, seconds, `${seconds}_bucket`, `${seconds}_sum`, `${seconds}_count`]) {
    KNOWN_METRICS.add(n);
  }
}

/** Every Prometheus label an ATTR_* constant becomes (resource attributes included). */
const KNOWN_LABELS = new Set(constants.filter(([key]) => key.startsWith('ATTR_')).map(([, v]) => promLabel(v)));
/** Labels of Prometheus itself, not of the telemetry contract. */
const PROMETHEUS_LABELS = new Set(['__name__', 'le', 'job', 'instance', 'quantile']);

/** The values the contract gives for some labels (matchers with `=` / `!=` must use one). */
const LABEL_VALUES: Record<string, string[]> = {
  [promLabel(semconv.ATTR_VIGIL_POLICY)]: Object.values(POLICY_VALUE),
  [promLabel(semconv.ATTR_VIGIL_OUTCOME)]: Object.values(ROUTER_OUTCOME),
  [promLabel(semconv.ATTR_VIGIL_CRITICAL)]: ['true', 'false'],
};

// ── A small PromQL scanner: which identifiers are metrics, which are labels ───────────────────

const AGGREGATIONS = new Set([
  'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile',
  'limitk', 'limit_ratio',
]);
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan', 'start', 'end']);

interface Matcher {
  label: string;
  op: string;
  value: string;
}
interface ExprNames {
  /** Bare series names (and `__name__="…"` values). */
  metrics: string[];
  /** Label names in matchers, grouping clauses (by/without/on/ignoring/group_*) and label_* string arguments. */
  labels: string[];
  matchers: Matcher[];
}

/** Splits a PromQL expression's identifiers into metric names and label names. */
function promqlNames(expr: string): ExprNames {
  const out: ExprNames = { metrics: [], labels: [], matchers: [] };
  let i = 0;
  let inBraces = false;
  let pendingGroup = false; // saw by/on/…: a `(` opens a label list
  let inGroup = false;
  const isSpace = (c: string | undefined) => c !== undefined && /\s/.test(c);
  const skipSpace = () => {
    while (isSpace(expr[i])) i++;
  };
  const readString = (): string => {
    const quote = expr[i++];
    let s = '';
    while (i < expr.length && expr[i] !== quote) {
      if (expr[i] === '\\' && quote !== '`') {
        s += expr[i + 1];
        i += 2;
      } else s += expr[i++];
    }
    if (i >= expr.length) throw new Error(`unterminated string in ${expr}`);
    i++;
    return s;
  };
  const readIdent = (): string => {
    const m = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(expr.slice(i))!;
    i += m[0].length;
    return m[0];
  };

  while (i < expr.length) {
    skipSpace();
    if (i >= expr.length) break;
    const c = expr[i]!;
    if (pendingGroup && c !== '(') pendingGroup = false;
    if (c === '#') {
      while (i < expr.length && expr[i] !== '\n') i++;
    } else if (c === '"' || c === "'" || c === '`') {
      const s = readString();
      // Outside a selector a bare-identifier string is a label_replace / label_join label name.
      if (/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(s)) out.labels.push(s);
    } else if (c === '[') {
      while (i < expr.length && expr[i] !== ']') i++; // range or subquery: durations only
      i++;
    } else if (c === '{') {
      inBraces = true;
      i++;
      for (;;) {
        skipSpace();
        if (expr[i] === '}') break;
        if (expr[i] === ',') {
          i++;
          continue;
        }
        if (i >= expr.length) throw new Error(`unterminated selector in ${expr}`);
        const label = expr[i] === '"' ? readString() : readIdent();
        skipSpace();
        const op = /^(=~|!~|!=|=)/.exec(expr.slice(i))?.[0];
        if (!op) throw new Error(`expected a matcher operator after ${label} in ${expr}`);
        i += op.length;
        skipSpace();
        const value = readString();
        out.matchers.push({ label, op, value });
        if (label === '__name__' && op === '=') out.metrics.push(value);
        else out.labels.push(label);
      }
      inBraces = false;
      i++;
    } else if (c === '(') {
      if (pendingGroup) inGroup = true;
      pendingGroup = false;
      i++;
    } else if (c === ')') {
      inGroup = false;
      i++;
    } else if (/[0-9.]/.test(c)) {
      i += /^[0-9.][0-9a-zA-Z_.]*/.exec(expr.slice(i))![0].length; // numbers and durations
    } else if (/[a-zA-Z_:]/.test(c)) {
      const ident = readIdent();
      if (inGroup) out.labels.push(ident);
      else if (GROUPING.has(ident)) pendingGroup = true;
      else if (KEYWORDS.has(ident.toLowerCase()) || AGGREGATIONS.has(ident)) continue;
      else {
        skipSpace();
        if (expr[i] !== '(') out.metrics.push(ident); // a function call otherwise
      }
    } else i++; // operators, commas
  }
  if (inBraces) throw new Error(`unterminated selector in ${expr}`);
  return out;
}

/** Every `vigil_…` word in a text, whatever its role. */
const vigilWords = (text: string): string[] => text.match(/\bvigil_[a-z0-9_]+\b/g) ?? [];
/** Label names a template reads through `$labels.NAME`. */
const templateLabels = (text: string): string[] => [...text.matchAll(/\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)/g)].map((m) => m[1]!);

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const readYaml = (file: string, merge = true): any => parse(readFileSync(path.join(REPO_ROOT, file), 'utf8'), { merge });
/** The rules as a YAML 1.2 parser without merge keys reads them (the test below checks it is what Prometheus reads). */
const loadRules = (): Rule[] => (readYaml(RULES, false).groups as { rules: Rule[] }[]).flatMap((g) => g.rules);
const loadAlerts = (): Rule[] => loadRules().filter((r) => r.record === undefined);

/**
 * Each rule with the names recorded BEFORE it in its own group: the only recorded names it may read.
 * Groups run concurrently and the rules of one group in order at one timestamp, so a rule that reads
 * a name recorded later or in another group sees the previous evaluation's value.
 */
const rulesInScope = (): [Rule, Set<string>][] =>
  (readYaml(RULES, false).groups as { rules: Rule[] }[]).flatMap((g) => {
    const recorded = new Set<string>();
    return g.rules.map((rule): [Rule, Set<string>] => {
      const scope = new Set(recorded);
      if (rule.record !== undefined) recorded.add(rule.record);
      return [rule, scope];
    });
  });

/** A recording rule's name: `vigil:` and one snake_case word, no semconv name to collide with. */
const RECORD_NAME = /^vigil:[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

/** Contract violations of one rule: names not derived from semconv (or recorded before it), label values outside its sets. */
function contractViolations(rule: Rule, recorded: Set<string> = new Set()): string[] {
  const where = rule.alert ?? rule.record ?? '?';
  const problems: string[] = [];
  if (rule.record !== undefined && !RECORD_NAME.test(rule.record)) {
    problems.push(`${where}: a recorded name must be vigil:<snake_case>`);
  }
  const names = promqlNames(rule.expr);
  for (const m of names.metrics) {
    if (recorded.has(m)) continue;
    if (m.includes(':')) problems.push(`${where}: ${m} is not recorded earlier in the same group`);
    else if (!KNOWN_METRICS.has(m)) problems.push(`${where}: metric ${m} is not a Prometheus name of a METRIC_* constant`);
  }
  for (const l of names.labels) {
    if (!KNOWN_LABELS.has(l) && !PROMETHEUS_LABELS.has(l)) problems.push(`${where}: label ${l} is not promLabel() of an ATTR_* constant`);
  }
  for (const w of vigilWords(rule.expr)) {
    if (!KNOWN_METRICS.has(w) && !KNOWN_LABELS.has(w)) problems.push(`${where}: ${w} in expr is neither a metric nor a label of semconv`);
  }
  for (const { label, op, value } of names.matchers) {
    const allowed = LABEL_VALUES[label];
    if (allowed && (op === '=' || op === '!=') && !allowed.includes(value)) {
      problems.push(`${where}: ${label}${op}"${value}" is not one of ${allowed.join(', ')}`);
    }
  }
  const templates = [...Object.values(rule.labels ?? {}), ...Object.values(rule.annotations ?? {})].join('\n');
  for (const l of templateLabels(templates)) {
    if (!KNOWN_LABELS.has(l) && !PROMETHEUS_LABELS.has(l)) problems.push(`${where}: template reads $labels.${l}, not promLabel() of an ATTR_* constant`);
  }
  for (const w of vigilWords(templates.replace(/\$labels\.[a-zA-Z0-9_]+/g, ''))) {
    if (!KNOWN_METRICS.has(w) && !KNOWN_LABELS.has(w)) problems.push(`${where}: ${w} in a label or annotation is neither a metric nor a label of semconv`);
  }
  return problems;
}

const show = (r: { code: number | null; stdout: string; stderr: string }) => `exit ${r.code}\n${r.stdout}${r.stderr}`;

describe('Prometheus config and alert rules (prometheus)', function () {
  this.timeout(60_000);

  it('promtool check config accepts prometheus.yml and finds the rule file', async () => {
    const r = await runTool('promtool', ['check', 'config', CONFIG]);
    expect(r.code, show(r)).to.equal(0);
    expect(r.stdout, show(r)).to.match(/SUCCESS: 1 rule files found/);
  });

  it('promtool check rules accepts vigil.rules.yml', async () => {
    const r = await runTool('promtool', ['check', 'rules', RULES]);
    expect(r.code, show(r)).to.equal(0);
    expect(r.stdout, show(r)).to.match(/SUCCESS: \d+ rules found/);
  });

  it('promtool test rules: the rules\' unit tests pass', async () => {
    const files = readdirSync(path.join(REPO_ROOT, TEST_DIR)).filter((f) => /\.ya?ml$/.test(f)).sort();
    expect(files, 'test files in prometheus/tests').to.not.be.empty;
    const r = await runTool('promtool', ['test', 'rules', ...files.map((f) => `${TEST_DIR}/${f}`)], { timeoutMs: 50_000 });
    expect(r.code, show(r)).to.equal(0);
    expect(r.stdout + r.stderr, show(r)).to.not.match(/FAILED/);
  });

  it('vigil.rules.yml is plain YAML: no anchors, aliases or merge keys, so every parser reads the same labels', () => {
    const text = readFileSync(path.join(REPO_ROOT, RULES), 'utf8');
    expect(text).to.not.match(/^\s*<<:|:\s+[&*][A-Za-z]/m);
    expect(readYaml(RULES, false)).to.deep.equal(readYaml(RULES, true));
  });

  it('prometheus.yml: rules/*.yml, alertmanager:9093, scrapes itself, Alertmanager and the Collector, rules evaluated at least as often as scrapes', () => {
    const config = readYaml(CONFIG);
    expect(config.rule_files).to.deep.equal(['rules/*.yml']);
    const amTargets = config.alerting.alertmanagers.flatMap((a: any) => a.static_configs.flatMap((s: any) => s.targets));
    expect(amTargets).to.deep.equal(['alertmanager:9093']);
    const jobs = Object.fromEntries(
      config.scrape_configs.map((s: any) => [s.job_name, s.static_configs.flatMap((c: any) => c.targets)]),
    );
    expect(jobs).to.have.keys('prometheus', 'alertmanager', 'collector');
    expect(jobs.alertmanager).to.deep.equal(['alertmanager:9093']);
    // the Collector's own metrics, at the port collector-config.yaml serves them on by default
    const telemetry = collectorConfigDefaults().service.telemetry.metrics.readers[0].pull.exporter.prometheus;
    expect(jobs.collector).to.deep.equal([`collector:${telemetry.port}`]);
    const seconds = (d: string) => Number(/^(\d+)s$/.exec(d)?.[1] ?? NaN);
    expect(seconds(config.global.scrape_interval)).to.equal(15);
    expect(seconds(config.global.evaluation_interval)).to.be.at.most(15);
    expect(config.global.external_labels, 'external labels would change every alert').to.equal(undefined);
  });

  describe('the telemetry contract (semconv.ts)', () => {
    it('the scanner tells metrics from labels, and sees the names the rules are about', () => {
      const names = promqlNames(
        'count by (service_name, vigil_component) (rate(vigil_probe_duration_seconds_count{http_route=~"/a.*", vigil_critical="true"}[5m])) ' +
          'and on (service_name) group_left (vigil_policy) label_replace(vigil_component_healthy, "vigil_check", "$1", "vigil_router", "(.*)") > 0.5',
      );
      expect(names.metrics).to.deep.equal(['vigil_probe_duration_seconds_count', 'vigil_component_healthy']);
      expect(names.labels).to.have.members([
        'service_name', 'vigil_component', 'http_route', 'vigil_critical', 'service_name', 'vigil_policy', 'vigil_check', 'vigil_router',
      ]);
      const used = new Set(loadRules().flatMap((r) => promqlNames(r.expr).metrics));
      for (const metric of [
        semconv.METRIC_ROUTER_IMPORT, semconv.METRIC_ROUTE_REGISTERED, semconv.METRIC_STARTUP_SUCCESS, semconv.METRIC_COMPONENT_HEALTHY,
        semconv.METRIC_HEALTH_LEVEL, semconv.METRIC_EVALUATOR_UP, semconv.METRIC_HTTP_ERROR_RATIO,
      ]) {
        expect(used, `no rule reads ${promName(metric)}`).to.include(promName(metric));
      }
    });

    it('every metric and label in the rules (exprs, label templates, annotations) is derived from a semconv constant', () => {
      const problems = rulesInScope().flatMap(([rule, recorded]) => contractViolations(rule, recorded));
      expect(problems, problems.join('\n')).to.deep.equal([]);
    });

    it('a typed-by-hand name is caught (vigil_router_imports, vigil_componet, a policy spelled as in the manifest, a recorded name misspelt or read too early)', () => {
      const scoped = rulesInScope();
      const [rule, recorded] = scoped.find(([r]) => r.alert === 'VigilRouterImportFailed')!;
      const [record, recordScope] = scoped.find(([r]) => r.record === 'vigil:router_import_failed')!;
      const typo = (from: RegExp, to: string, r = rule): Rule => ({ ...r, expr: r.expr.replace(from, to) });
      expect(contractViolations(typo(/vigil_router_import\b/, 'vigil_router_imports', record), recordScope).join('\n')).to.contain(
        'metric vigil_router_imports is not',
      );
      expect(contractViolations(typo(/vigil_component\b/, 'vigil_componet'), recorded).join('\n')).to.contain('label vigil_componet is not');
      expect(contractViolations(typo(/fail_fast/, 'fail-fast'), recorded).join('\n')).to.contain('vigil_policy="fail-fast" is not one of');
      expect(contractViolations(typo(/vigil:router_import_failed/, 'vigil:router_import_fail'), recorded).join('\n')).to.contain(
        'vigil:router_import_fail is not recorded earlier in the same group',
      );
      // read before it is recorded: the rule would see the previous evaluation's value
      expect(contractViolations(typo(/vigil:instance_refused/g, 'vigil:router_import_failed', record), recordScope).join('\n')).to.contain(
        'vigil:router_import_failed is not recorded earlier',
      );
      expect(contractViolations({ ...record, record: 'vigil_router_import_failed' }, recordScope).join('\n')).to.contain(
        'a recorded name must be vigil:<snake_case>',
      );
      expect(
        contractViolations({ ...rule, annotations: { summary: '{{ $labels.vigil_routr }}' } }).join('\n'),
      ).to.contain('$labels.vigil_routr');
    });
  });

  it('every alert has severity, source="prometheus", service and a summary; the contract\'s alert names and labels are there', () => {
    const rules = loadAlerts();
    const names = new Set<string>();
    for (const rule of rules) {
      expect(rule.alert, `a recording rule or an unnamed rule: ${rule.expr}`).to.be.a('string');
      const name = rule.alert!;
      names.add(name);
      const labels = rule.labels ?? {};
      expect(SEVERITIES, `${name} severity`).to.include(labels.severity);
      expect(labels.severity === 'none', `${name}: severity none is for the watchdog only`).to.equal(name === 'VigilWatchdog');
      expect(labels.source, `${name} source`).to.equal('prometheus');
      if (name !== 'VigilWatchdog') expect(labels.service, `${name} service`).to.be.a('string').and.not.empty;
      for (const extra of EXTRA_LABELS[name] ?? []) expect(labels[extra], `${name} label ${extra}`).to.be.a('string').and.not.empty;
      expect(rule.annotations?.summary, `${name} summary`).to.be.a('string').and.not.empty;
      expect(rule.annotations?.description, `${name} description`).to.be.a('string').and.not.empty;
      expect([...CONTRACT_ALERTS, ...OPTIONAL_ALERTS], 'alert names outside the contract').to.include(name);
    }
    for (const name of CONTRACT_ALERTS) expect([...names], 'the contract\'s alerts').to.include(name);
    const watchdog = rules.find((r) => r.alert === 'VigilWatchdog')!;
    expect(watchdog.expr.trim()).to.equal('vector(1)');
  });

  it('every alert has promtool unit tests where it fires and where it stays quiet', () => {
    const fires = new Set<string>();
    const quiet = new Set<string>();
    for (const file of readdirSync(path.join(REPO_ROOT, TEST_DIR)).filter((f) => /\.ya?ml$/.test(f))) {
      const doc = readYaml(`${TEST_DIR}/${file}`);
      for (const rf of doc.rule_files) expect(path.resolve(PROM_DIR, 'tests', rf), `${file} rule_files`).to.equal(path.join(REPO_ROOT, RULES));
      for (const t of doc.tests) {
        for (const a of t.alert_rule_test ?? []) (a.exp_alerts?.length ? fires : quiet).add(a.alertname);
      }
    }
    for (const name of new Set(loadAlerts().map((r) => r.alert!))) {
      expect([...fires], `a test where ${name} fires`).to.include(name);
      if (name !== 'VigilWatchdog') expect([...quiet], `a test where ${name} stays quiet`).to.include(name);
    }
  });
});
