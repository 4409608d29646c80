/**
 * SLOs from the manifest (packages/sdk/src/slo/, `vigil slo`): the schema's
 * errors, the generated rules (every window, every burn-rate pair), OpenSLO's
 * shape, and the committed example files under prometheus/slo: current (generated
 * again and compared), accepted by `promtool check rules`, and their generated
 * unit tests passing in `promtool test rules`.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { parse, parseAllDocuments } from 'yaml';
import { parseManifestText } from '../../../packages/sdk/src/manifest/load.js';
import { ManifestError } from '../../../packages/sdk/src/errors.js';
import { BURN_RATE_ALERTS, SLO_WINDOWS, sloList } from '../../../packages/sdk/src/slo/model.js';
import { ALERT_PAGE, ALERT_TICKET, prometheusRules, renderPrometheusRules, renderPromtoolTests } from '../../../packages/sdk/src/slo/prometheus.js';
import { renderOpenSlo } from '../../../packages/sdk/src/slo/openslo.js';
import { HTTP_SERVER_DURATION_BUCKETS } from '../../../packages/sdk/src/semconv.js';
import { REPO_ROOT, runTool } from '../../helpers/rig.js';

const EXAMPLE = path.join(REPO_ROOT, 'examples/marketedge-api/vigil.yaml');
const SLO_DIR = path.join(REPO_ROOT, 'prometheus/slo');
const CLI = path.join(REPO_ROOT, 'packages/sdk/src/cli/vigil.ts');

const manifest = (slo: string, flowSlo = '', top = '') => `
service: shop
components:
  checkout:
    policy: degrade
    endpoints:
      - method: POST
        route: /api/orders
        slo: ${slo}
    flows:
      buy:
        steps: [{ name: order, method: GET, path: /api/orders }]
        ${flowSlo}
${top}`;

function issuesOf(text: string): string {
  try {
    parseManifestText(text, 'vigil.yaml');
  } catch (err) {
    expect(err).to.be.instanceOf(ManifestError);
    return (err as Error).message;
  }
  throw new Error('expected a ManifestError');
}

describe('SLOs from the manifest', () => {
  describe('schema', () => {
    it('parses objectives in percent, the latency threshold, and the default and own windows', () => {
      const m = parseManifestText(manifest('{ availability: 99.9%, latency: { threshold: 250ms, target: 99 }, window: 7d }', 'slo: { availability: "99.5%" }'), 'vigil.yaml');
      expect(m.components.checkout!.endpoints[0]!.slo).to.deep.equal({ availability: 0.999, latency: { threshold: 250, target: 0.99 }, window: 7 });
      expect(m.slo.window).to.equal(28);
      const slos = sloList(m);
      expect(slos.map((s) => [s.id, s.kind, s.objective, s.windowDays])).to.deep.equal([
        ['checkout-post-api-orders-availability', 'availability', 0.999, 7],
        ['checkout-post-api-orders-latency', 'latency', 0.99, 7],
        ['checkout-buy-flow', 'flow', 0.995, 28],
      ]);
    });

    it('names the file, the path and what was expected for each bad field', () => {
      expect(issuesOf(manifest('{ availability: 100% }'))).to.include('components.checkout.endpoints.0.slo.availability').and.include('from 50 up to (not including) 100');
      expect(issuesOf(manifest('{ availability: high }'))).to.include('"99.9%"');
      expect(issuesOf(manifest('{ availability: 99.9%, window: 4w }'))).to.include('slo.window').and.include('whole days');
      expect(issuesOf(manifest('{ availability: 99.9%, avail: 1 }'))).to.include('avail');
      expect(issuesOf(manifest('{ availability: 99.9%, impact: { context: critical-auth } }'))).to.include('slo.impact.context');
      expect(issuesOf(manifest('{ availability: 99.9% }', 'slo: { availability: 99%, latency: { threshold: 1s, target: 99% } }'))).to.include('components.checkout.flows.buy.slo');
      expect(issuesOf(manifest('{ availability: 99.9% }', '', 'slo: { window: 0d }'))).to.include('slo.window');
    });

    it('refuses a latency threshold between bucket boundaries and lists the boundaries', () => {
      const message = issuesOf(manifest('{ availability: 99.9%, latency: { threshold: 300ms, target: 99% } }'));
      expect(message).to.include('vigil.yaml').and.include('components.checkout.endpoints.0.slo.latency.threshold');
      expect(message).to.include('250ms, 500ms');
      expect(HTTP_SERVER_DURATION_BUCKETS).to.include(0.25);
    });
  });

  describe('generated rules', () => {
    const slos = sloList(parseManifestText(manifest('{ availability: 99.9%, latency: { threshold: 500ms, target: 99% } }', 'slo: { availability: 99.5% }'), 'vigil.yaml'));
    const groups = (prometheusRules(slos) as { groups: Array<{ name: string; interval?: string; rules: Array<Record<string, any>> }> }).groups;
    const [burn, budget] = groups;

    it('records the error ratio of every SLO over 5m, 30m, 1h, 2h, 6h, 1d and 3d, and the whole window every 5m', () => {
      for (const s of slos) {
        const windows = burn!.rules.filter((r) => r.record && r.labels.slo === s.id).map((r) => r.record);
        expect(windows).to.deep.equal(SLO_WINDOWS.map((w) => `vigil:slo_error_ratio:rate${w}`));
        expect(budget!.rules.find((r) => r.record === 'vigil:slo_error_ratio:window' && r.labels.slo === s.id)!.expr).to.include(`[${s.windowDays}d`);
      }
      expect(budget!.interval).to.equal('5m');
    });

    it('reads the real metric names and labels: 5xx of the route, the bucket at the threshold, the flow\'s level-3 check', () => {
      const expr = (id: string) => burn!.rules.find((r) => r.record === 'vigil:slo_error_ratio:rate1h' && r.labels.slo === id)!.expr as string;
      expect(expr(slos[0]!.id)).to.include('http_server_request_duration_seconds_count{service_name="shop", http_route="/api/orders", http_request_method="POST", http_response_status_code=~"5.."}[1h]');
      expect(expr(slos[1]!.id)).to.include('le="0.5"');
      expect(expr(slos[2]!.id)).to.include('vigil_health_level{service_name="shop", vigil_level="3", vigil_check="flow:checkout/buy"}');
    });

    it('pages on 14.4x (1h & 5m) or 6x (6h & 30m) and tickets on 3x (1d & 2h) or 1x (3d & 6h) of the budget', () => {
      expect(BURN_RATE_ALERTS.map((a) => [a.severity, a.factor, a.long, a.short])).to.deep.equal([
        ['page', 14.4, '1h', '5m'], ['page', 6, '6h', '30m'], ['ticket', 3, '1d', '2h'], ['ticket', 1, '3d', '6h'],
      ]);
      const page = burn!.rules.find((r) => r.alert === ALERT_PAGE && r.labels.slo === slos[0]!.id)!;
      const ticket = burn!.rules.find((r) => r.alert === ALERT_TICKET && r.labels.slo === slos[0]!.id)!;
      for (const [rule, pairs] of [[page, BURN_RATE_ALERTS.slice(0, 2)], [ticket, BURN_RATE_ALERTS.slice(2)]] as const) {
        for (const p of pairs) {
          expect(rule.expr).to.include(`vigil:slo_error_ratio:rate${p.long}{slo="${slos[0]!.id}"} > (${p.factor} * 0.001)`);
          expect(rule.expr).to.include(`vigil:slo_error_ratio:rate${p.short}{slo="${slos[0]!.id}"} > (${p.factor} * 0.001)`);
        }
      }
      expect(page.labels).to.include({ severity: 'high', source: 'prometheus', slo: slos[0]!.id, component: 'checkout', service: '{{ $labels.service_name }}', method: 'POST', route: '/api/orders' });
      expect(ticket.labels.severity).to.equal('medium');
    });

    it('pages at critical for a fail-fast or business-critical component, and carries the impact (context on pages only)', () => {
      const text = manifest('{ availability: 99.9%, impact: { customers: All buyers, revenueAtRisk: "£10K", context: CRITICAL_AUTH } }').replace('policy: degrade', 'policy: fail-fast');
      const [s] = sloList(parseManifestText(text, 'vigil.yaml'));
      const rules = (prometheusRules([s!]) as any).groups[0].rules as Array<Record<string, any>>;
      const page = rules.find((r) => r.alert === ALERT_PAGE)!;
      const ticket = rules.find((r) => r.alert === ALERT_TICKET)!;
      expect(page.labels).to.include({ severity: 'critical', business_context: 'CRITICAL_AUTH' });
      expect(ticket.labels).to.not.have.property('business_context');
      expect(page.annotations).to.include({ customers: 'All buyers', revenue_at_risk: '£10K' });
      expect(page.annotations.runbook_url).to.match(/^docs\/operations\.md#/);
    });

    it('is plain YAML (no anchors) that promtool accepts', async () => {
      const text = renderPrometheusRules(slos);
      expect(text).to.not.match(/[&*]a\d/);
      const dir = await import('node:fs/promises').then((fs) => fs.mkdtemp(path.join(REPO_ROOT, '.stack', 'slo-')));
      try {
        await import('node:fs/promises').then((fs) => fs.writeFile(path.join(dir, 'shop.rules.yml'), text));
        const r = await runTool('promtool', ['check', 'rules', path.join(dir, 'shop.rules.yml')]);
        expect(r.code, r.stdout + r.stderr).to.equal(0);
      } finally {
        await import('node:fs/promises').then((fs) => fs.rm(dir, { recursive: true, force: true }));
      }
    });
  });

  describe('OpenSLO', () => {
    it('one openslo/v1 SLO per objective, with a ratioMetric of Prometheus queries and its objective', () => {
      const slos = sloList(parseManifestText(readFileSync(EXAMPLE, 'utf8'), EXAMPLE));
      const docs = parseAllDocuments(renderOpenSlo(slos)).map((d) => d.toJS());
      expect(docs).to.have.length(slos.length);
      docs.forEach((d, i) => {
        expect(d).to.include({ apiVersion: 'openslo/v1', kind: 'SLO' });
        expect(d.metadata.name).to.equal(slos[i]!.id).and.match(/^[a-z0-9-]+$/);
        expect(d.spec.service).to.equal('marketedge-api');
        expect(d.spec.timeWindow).to.deep.equal([{ duration: '28d', isRolling: true }]);
        const ratio = d.spec.indicator.spec.ratioMetric;
        expect(ratio.bad.metricSource.type).to.equal('Prometheus');
        expect(ratio.total.metricSource.spec.query).to.be.a('string').and.not.empty;
        expect(d.spec.objectives[0].target).to.equal(slos[i]!.objective);
        expect(d.spec.budgetingMethod).to.equal(slos[i]!.kind === 'flow' ? 'Timeslices' : 'Occurrences');
      });
    });
  });

  describe('the committed example under prometheus/slo', () => {
    const files = {
      prometheus: 'marketedge-api.rules.yml',
      'promtool-tests': 'marketedge-api.rules.test.yml',
      openslo: 'marketedge-api.openslo.yml',
    } as const;

    for (const [format, file] of Object.entries(files)) {
      it(`${file} is what \`vigil slo --format ${format}\` generates from examples/marketedge-api/vigil.yaml`, async () => {
        const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', CLI, 'slo', '--manifest', EXAMPLE, '--format', format, '--rules', files.prometheus], { cwd: REPO_ROOT });
        expect(stdout, `regenerate: vigil slo --manifest examples/marketedge-api/vigil.yaml --format ${format} --out prometheus/slo/${file}`).to.equal(readFileSync(path.join(SLO_DIR, file), 'utf8'));
      });
    }

    it('promtool check rules accepts the rules', async () => {
      const r = await runTool('promtool', ['check', 'rules', path.join(SLO_DIR, files.prometheus)]);
      expect(r.code, r.stdout + r.stderr).to.equal(0);
      expect(r.stdout).to.match(/SUCCESS: \d+ rules found/);
    });

    it('promtool test rules: a fast burn pages and resolves, a slow burn tickets, a healthy series stays silent', async function () {
      this.timeout(180_000);
      const tests = parse(readFileSync(path.join(SLO_DIR, files['promtool-tests']), 'utf8'));
      const checks = tests.tests[0].alert_rule_test as Array<{ eval_time: string; alertname: string; exp_alerts: Array<{ exp_labels: Record<string, string> }> }>;
      const envs = (t: string, a: string) => checks.find((c) => c.eval_time === t && c.alertname === a)!.exp_alerts.map((e) => e.exp_labels.deployment_environment_name);
      expect(new Set(envs('60m', ALERT_PAGE))).to.deep.equal(new Set(['fast-burn']));
      expect(envs('95m', ALERT_PAGE)).to.deep.equal([]);
      expect(envs('26h', ALERT_PAGE)).to.deep.equal([]);
      expect(new Set(envs('26h', ALERT_TICKET))).to.deep.equal(new Set(['slow-burn']));
      const r = await runTool('promtool', ['test', 'rules', files['promtool-tests']], { cwd: SLO_DIR, timeoutMs: 170_000 });
      expect(r.code, r.stdout + r.stderr).to.equal(0);
    });

    it('the promtool tests fail against rules whose page threshold is wrong (they can fail)', async function () {
      this.timeout(180_000);
      const fs = await import('node:fs/promises');
      const dir = await fs.mkdtemp(path.join(REPO_ROOT, '.stack', 'slo-'));
      try {
        const slos = sloList(parseManifestText(readFileSync(EXAMPLE, 'utf8'), EXAMPLE));
        await fs.writeFile(path.join(dir, 'r.yml'), renderPrometheusRules(slos).replaceAll('> (14.4 *', '> (40 *').replaceAll('> (6 *', '> (40 *'));
        await fs.writeFile(path.join(dir, 't.yml'), renderPromtoolTests(slos, 'r.yml'));
        const r = await runTool('promtool', ['test', 'rules', 't.yml'], { cwd: dir, timeoutMs: 170_000 });
        expect(r.code).to.equal(1);
        expect(r.stdout + r.stderr).to.include(ALERT_PAGE);
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    });
  });
});
