/**
 * alertmanager/alertmanager.yml, checked with the real `amtool` (Alertmanager 0.28.1):
 * the config loads, every label set of the alert contract reaches exactly the receivers it
 * should (`amtool config routes test --verify.receivers`), the evaluator's own labels (made by
 * its real code from the example's evaluator.yaml) reach exactly the channels they name, and no
 * secret is in the file. Inhibition cannot be tested with amtool: the real Alertmanager does
 * that in test/e2e/alertmanager-routing.test.ts.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { parse } from 'yaml';
import { loadConfig } from '../../../packages/evaluator/src/config/load.js';
import type { EvaluatorConfig, Impact } from '../../../packages/evaluator/src/config/schema.js';
import { policyFor, toNotification, type AlertState } from '../../../packages/evaluator/src/policies/engine.js';
import { REPO_ROOT, runTool } from '../../helpers/rig.js';

const AM_DIR = path.join(REPO_ROOT, 'alertmanager');
const CONFIG_FILE = path.join(AM_DIR, 'alertmanager.yml');
const SECRETS_DIR = path.join(AM_DIR, 'secrets');
const SECRETS_MOUNT = '/etc/alertmanager/secrets/';
const RULES_FILE = path.join(REPO_ROOT, 'prometheus', 'rules', 'vigil.rules.yml');

type Labels = Record<string, string>;

/** `amtool config routes test` for one label set: the receivers it prints, in route order. */
async function routesTest(labels: Labels, verify?: string[]): Promise<{ code: number | null; receivers: string[]; output: string }> {
  // name="value" with the value quoted: commas (channels) and parentheses ("(service)") stay literal.
  const args = Object.entries(labels).map(([k, v]) => `${k}="${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`);
  const { code, stdout, stderr } = await runTool('amtool', [
    'config',
    'routes',
    'test',
    `--config.file=${CONFIG_FILE}`,
    ...(verify ? [`--verify.receivers=${verify.join(',')}`] : []),
    ...args,
  ]);
  const first = stdout.split('\n')[0]!.trim();
  return { code, receivers: first ? first.split(',') : [], output: stdout + stderr };
}

/** Runs `fn` over `items` with at most `n` at a time (amtool is a process per call). */
async function mapLimit<T, R>(items: T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

// ---------------------------------------------------------------------------------------------
// The table: label sets of the contract (see docs/evaluator.md and the Prometheus rules) and the
// receivers each must reach, in the order of the routes in alertmanager.yml.

const SERVICE = 'marketedge-api';
const evaluatorAlert = (severity: string, extra: Labels = {}): Labels => ({
  alertname: 'VigilBusinessImpact',
  service: SERVICE,
  component: 'orders',
  severity,
  priority: { critical: 'P0', high: 'P1', medium: 'P2', low: 'P3' }[severity] ?? 'P2',
  rule: 'some-rule',
  escalation: '0',
  ...extra,
});
const ruleAlert = (alertname: string, severity: string, extra: Labels = {}): Labels => ({
  alertname,
  source: 'prometheus',
  service: SERVICE,
  component: 'admin',
  severity,
  ...extra,
});

const BY_SEVERITY: Record<string, string[]> = {
  critical: ['webhook', 'pagerduty', 'slack-emergency', 'email-immediate'],
  high: ['webhook', 'slack-alerts', 'email-immediate'],
  medium: ['webhook', 'slack-alerts', 'email-digest'],
  low: ['webhook', 'email-digest'],
};
const CRITICAL_AUTH_0 = ['webhook', 'pagerduty-critical', 'slack-emergency'];
const CRITICAL_AUTH_1 = ['webhook', 'phone-oncall-lead', 'pagerduty-critical', 'slack-emergency'];
const ZEBRA_0 = ['webhook', 'slack-zebra', 'email-account-owner'];
const ZEBRA_1 = ['webhook', 'pagerduty', 'slack-zebra', 'email-account-owner'];

/** The alerts of the committed Prometheus rules (prometheus/rules), but the watchdog. */
const RULE_ALERTS = [
  ...new Set(
    (parse(readFileSync(RULES_FILE, 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string }> }> }).groups
      .flatMap((g) => g.rules.map((r) => r.alert))
      .filter((a): a is string => !!a && a !== 'VigilWatchdog'),
  ),
];

interface Case {
  name: string;
  labels: Labels;
  receivers: string[];
}

const CASES: Case[] = [
  // Evaluator alerts without a business context: by severity, at escalation 0 and 1 alike.
  ...['critical', 'high', 'medium', 'low'].flatMap((sev) =>
    ['0', '1'].map((escalation) => ({
      name: `evaluator ${sev}, escalation ${escalation}`,
      labels: evaluatorAlert(sev, { escalation }),
      receivers: BY_SEVERITY[sev]!,
    })),
  ),
  {
    name: 'evaluator critical, service-level (component "(service)"), with environment',
    labels: evaluatorAlert('critical', { component: '(service)', rule: 'telemetry-silent', environment: 'production' }),
    receivers: BY_SEVERITY.critical!,
  },
  {
    name: 'evaluator high with a business context this config does not know: by severity',
    labels: evaluatorAlert('high', { business_context: 'SOME_OTHER_CONTEXT' }),
    receivers: BY_SEVERITY.high!,
  },
  // CRITICAL_AUTH: its own channels replace the severity's; escalation adds the on-call lead.
  ...[
    ['0', CRITICAL_AUTH_0],
    ['1', CRITICAL_AUTH_1],
    ['2', CRITICAL_AUTH_1],
  ].map(([escalation, receivers]) => ({
    name: `evaluator CRITICAL_AUTH, escalation ${escalation}`,
    labels: evaluatorAlert('critical', { component: 'authentication', business_context: 'CRITICAL_AUTH', escalation: escalation as string }),
    receivers: receivers as string[],
  })),
  // ZEBRA_ADMIN_ACCESS: Slack channel + account owner; escalation adds PagerDuty.
  ...[
    ['0', ZEBRA_0],
    ['1', ZEBRA_1],
  ].map(([escalation, receivers]) => ({
    name: `evaluator ZEBRA_ADMIN_ACCESS, escalation ${escalation}`,
    labels: evaluatorAlert('high', { component: 'admin', business_context: 'ZEBRA_ADMIN_ACCESS', escalation: escalation as string }),
    receivers: receivers as string[],
  })),
  {
    name: 'evaluator ZEBRA_ADMIN_ACCESS at critical: still the context, not the severity',
    labels: evaluatorAlert('critical', { component: 'admin', business_context: 'ZEBRA_ADMIN_ACCESS' }),
    receivers: ZEBRA_0,
  },
  // Prometheus rule alerts: by severity, whatever their name.
  ...RULE_ALERTS.flatMap((alertname) =>
    ['critical', 'high', 'medium', 'low'].map((sev) => ({
      name: `prometheus ${alertname} ${sev}`,
      labels: ruleAlert(alertname, sev, alertname === 'VigilEvaluatorDown' ? { service: 'vigil-evaluator', component: '' } : {}),
      receivers: BY_SEVERITY[sev]!,
    })),
  ),
  {
    name: 'prometheus VigilRouterImportFailed with its router label',
    labels: ruleAlert('VigilRouterImportFailed', 'critical', { component: 'user_management', router: 'user_management' }),
    receivers: BY_SEVERITY.critical!,
  },
  {
    name: 'prometheus VigilCriticalRouteMissing with route and method',
    labels: ruleAlert('VigilCriticalRouteMissing', 'high', { route: '/api/v1/user-management', method: 'GET' }),
    receivers: BY_SEVERITY.high!,
  },
  // The watchdog: the dead man's switch only (and the incident log, like everything).
  { name: 'VigilWatchdog', labels: { alertname: 'VigilWatchdog', source: 'prometheus', severity: 'none' }, receivers: ['webhook', 'deadmansswitch'] },
  {
    name: 'VigilWatchdog even with a severity that would page',
    labels: { alertname: 'VigilWatchdog', source: 'prometheus', severity: 'critical', service: SERVICE },
    receivers: ['webhook', 'deadmansswitch'],
  },
  // Label-contract bugs still reach people.
  { name: 'unknown severity', labels: ruleAlert('VigilHighErrorRate', 'info'), receivers: ['webhook', 'default'] },
  { name: 'no severity at all', labels: { alertname: 'SomethingElse', service: SERVICE }, receivers: ['webhook', 'default'] },
];

// ---------------------------------------------------------------------------------------------

describe('alertmanager/alertmanager.yml (amtool)', function () {
  this.timeout(60_000);

  const configText = readFileSync(CONFIG_FILE, 'utf8');
  const config = parse(configText) as {
    global: Record<string, unknown>;
    receivers: Array<Record<string, unknown> & { name: string }>;
    inhibit_rules: Array<{ source_matchers: string[]; target_matchers: string[]; equal: string[] }>;
  };
  const receiverNames = config.receivers.map((r) => r.name);

  it('passes `amtool check-config`', async () => {
    const { code, stdout, stderr } = await runTool('amtool', ['check-config', CONFIG_FILE]);
    expect(code, stdout + stderr).to.equal(0);
    expect(stdout).to.contain('SUCCESS');
    expect(stdout).to.contain(`${config.inhibit_rules.length} inhibit rules`);
    expect(stdout).to.contain(`${receiverNames.length} receivers`);
  });

  it('passes it with no secret file present (they are read at send time, not at load)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'vigil-am-check-'));
    try {
      const copy = path.join(dir, 'alertmanager.yml');
      await writeFile(copy, configText.replaceAll(SECRETS_MOUNT, path.join(dir, 'no-such-dir') + '/'));
      const { code, stdout, stderr } = await runTool('amtool', ['check-config', copy]);
      expect(code, stdout + stderr).to.equal(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  describe(`routes: ${CASES.length} label sets, each to exactly its receivers`, () => {
    const results = new Map<string, string[]>();

    before(async () => {
      const outcomes = await mapLimit(CASES, 4, (c) => routesTest(c.labels, c.receivers));
      CASES.forEach((c, i) => {
        const { code, receivers, output } = outcomes[i]!;
        results.set(c.name, code === 0 ? receivers : [`amtool exit ${code}: ${output.trim()}`]);
      });
    });

    for (const c of CASES) {
      it(`${c.name} → ${c.receivers.join(', ')}`, () => {
        // --verify.receivers made amtool exit non-zero on any other list; compare the printed one too.
        expect(results.get(c.name), JSON.stringify(c.labels)).to.deep.equal(c.receivers);
      });
    }

    it('every alert also reaches the generic `webhook` (incident log), first', () => {
      for (const c of CASES) expect(results.get(c.name)?.[0], c.name).to.equal('webhook');
    });

    it('every receiver defined is reached by at least one case, and no undefined one is named', () => {
      const reached = new Set([...results.values()].flat());
      expect([...reached].sort()).to.deep.equal([...receiverNames].sort());
    });

    it('a wrong expectation makes `--verify.receivers` fail (the check is real)', async () => {
      const { code, output } = await routesTest(evaluatorAlert('critical'), ['webhook', 'pagerduty']);
      expect(code, output).to.not.equal(0);
      expect(output).to.contain('Expected receivers did not match');
    });
  });

  describe("the evaluator's own labels (its code, the example's evaluator.yaml) reach exactly the channels they name", () => {
    let evaluatorConfig: EvaluatorConfig;
    const made: Array<{ name: string; labels: Labels }> = [];

    before(async () => {
      evaluatorConfig = await loadConfig(path.join(REPO_ROOT, 'examples', 'marketedge-api', 'evaluator.yaml'));
      const impacts: Array<{ rule: string; component: string; impact: Impact }> = [
        ...evaluatorConfig.rules.map((r) => {
          const c = r.match.component;
          return { rule: r.name, component: (Array.isArray(c) ? c[0] : c) ?? '', impact: r.impact };
        }),
        { rule: 'default', component: 'orders', impact: evaluatorConfig.defaultImpact },
        // Every level's policy, also those no rule of the example uses.
        ...(['critical', 'high', 'medium', 'low'] as const).map((level) => ({
          rule: `synthetic-${level}`,
          component: 'orders',
          impact: { level, priority: 'P2', customers: 'synthetic' } satisfies Impact,
        })),
      ];
      for (const { rule, component, impact } of impacts) {
        const assessment = { rule, impact, signals: [] };
        const view = policyFor(evaluatorConfig, assessment);
        for (let level = 0; level <= view.escalation.length; level++) {
          const state: AlertState = {
            key: `${SERVICE}|${component}`,
            service: SERVICE,
            component,
            assessment,
            state: 'firing',
            since: 0,
            firedAt: 0,
            escalationLevel: level,
          };
          const { labels } = toNotification(state, view, 'firing', 0);
          made.push({ name: `rule ${rule} (${impact.level}${impact.context ? `, ${impact.context}` : ''}), escalation ${level}`, labels });
        }
      }
    });

    it('covers both business contexts at escalation 0 and 1, and every level', () => {
      const seen = new Set(made.map((m) => `${m.labels.business_context ?? m.labels.severity}/${m.labels.escalation}`));
      for (const k of ['CRITICAL_AUTH/0', 'CRITICAL_AUTH/1', 'ZEBRA_ADMIN_ACCESS/0', 'ZEBRA_ADMIN_ACCESS/1', 'critical/0', 'critical/1', 'high/0', 'medium/0', 'low/0']) {
        expect(seen, k).to.include(k);
      }
    });

    it('receivers = webhook + the `channels` label, for every rule and escalation level', async () => {
      const outcomes = await mapLimit(made, 4, (m) => routesTest(m.labels));
      const wrong: string[] = [];
      made.forEach((m, i) => {
        const got = [...outcomes[i]!.receivers].sort();
        const want = ['webhook', ...m.labels.channels!.split(',')].sort();
        if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`${m.name}: channels ${m.labels.channels} → ${got.join(',')}`);
      });
      expect(wrong, wrong.join('\n')).to.deep.equal([]);
      expect(made.length).to.be.greaterThan(10);
    });
  });

  it('every alert rule in prometheus/rules/vigil.rules.yml reaches a real receiver (not `default`)', async function () {
    const rules = parse(readFileSync(RULES_FILE, 'utf8'), { merge: true }) as { groups: Array<{ rules: Array<{ alert?: string; labels?: Labels }> }> };
    const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert);
    expect(alerts.length).to.be.greaterThan(0);
    const outcomes = await mapLimit(alerts, 4, (r) => {
      // Static labels only: templated ones ({{ $labels.x }}) become a plain value here.
      const labels: Labels = { alertname: r.alert!, service: SERVICE, component: 'admin' };
      for (const [k, v] of Object.entries(r.labels ?? {})) labels[k] = String(v).includes('{{') ? 'templated' : String(v);
      return routesTest(labels).then((res) => ({ alert: r.alert!, labels, ...res }));
    });
    for (const o of outcomes) {
      expect(o.labels.source, `${o.alert}: source label`).to.equal('prometheus');
      const want = o.alert === 'VigilWatchdog' ? ['webhook', 'deadmansswitch'] : BY_SEVERITY[o.labels.severity!];
      expect(o.receivers, `${o.alert} (severity ${o.labels.severity})`).to.deep.equal(want);
    }
  });

  describe('secrets', () => {
    const fileKeys: Array<{ where: string; key: string; value: string }> = [];
    const walk = (node: unknown, where: string) => {
      if (Array.isArray(node)) node.forEach((n, i) => walk(n, `${where}[${i}]`));
      else if (node && typeof node === 'object') {
        for (const [k, v] of Object.entries(node)) {
          if (k.endsWith('_file') && typeof v === 'string') fileKeys.push({ where, key: k, value: v });
          walk(v, `${where}.${k}`);
        }
      }
    };
    walk(config, '');

    it('no secret inline: every key, webhook URL and password is a *_file under /etc/alertmanager/secrets/', () => {
      const inline = ['routing_key', 'service_key', 'api_url', 'url', 'auth_password', 'smtp_auth_password', 'slack_api_url', 'auth_secret', 'bot_token'];
      const found: string[] = [];
      const scan = (node: unknown, where: string) => {
        if (Array.isArray(node)) node.forEach((n, i) => scan(n, `${where}[${i}]`));
        else if (node && typeof node === 'object') {
          for (const [k, v] of Object.entries(node)) {
            if (inline.includes(k)) found.push(`${where}.${k}`);
            scan(v, `${where}.${k}`);
          }
        }
      };
      scan(config, '');
      expect(found, 'inline secrets').to.deep.equal([]);
      expect(fileKeys.length).to.be.greaterThan(8);
      for (const f of fileKeys) expect(f.value, `${f.where}.${f.key}`).to.match(new RegExp(`^${SECRETS_MOUNT}[a-z0-9-]+$`));
      expect(configText).to.not.match(/hooks\.slack\.com/);
      // The public endpoint of PagerDuty is no secret: it is what tests override.
      expect(config.global.pagerduty_url).to.equal('https://events.pagerduty.com/v2/enqueue');
    });

    it('each secret file has a <name>.example placeholder and a row in secrets/README.md', () => {
      const readme = readFileSync(path.join(SECRETS_DIR, 'README.md'), 'utf8');
      for (const name of new Set(fileKeys.map((f) => path.basename(f.value)))) {
        expect(existsSync(path.join(SECRETS_DIR, `${name}.example`)), `${name}.example`).to.equal(true);
        expect(readme, `README row for ${name}`).to.match(new RegExp(`\\|\\s*\`${name}\`\\s*\\|`));
      }
    });

    it('git ignores a real secret file in secrets/ but not the README, the .gitignore and the examples', async () => {
      const ignored = async (rel: string) => {
        try {
          await promisify(execFile)('git', ['check-ignore', '--no-index', '-q', rel], { cwd: REPO_ROOT });
          return true;
        } catch (err) {
          if ((err as { code?: number }).code === 1) return false;
          throw err;
        }
      };
      for (const name of new Set(fileKeys.map((f) => path.basename(f.value)))) {
        expect(await ignored(`alertmanager/secrets/${name}`), name).to.equal(true);
      }
      expect(await ignored('alertmanager/secrets/anything-else.txt')).to.equal(true);
      for (const keep of ['README.md', '.gitignore', 'slack-alerts-webhook-url.example']) {
        expect(await ignored(`alertmanager/secrets/${keep}`), keep).to.equal(false);
      }
    });
  });

  it('inhibition rules: none targets the watchdog or the evaluator-down alert by accident', () => {
    // A static guard only; the behaviour is tested against the real Alertmanager in e2e.
    for (const r of config.inhibit_rules) {
      const target = r.target_matchers.join(',');
      expect(target).to.satisfy((t: string) => t.includes('alertname!="VigilWatchdog"') || t.includes('alertname!~"VigilWatchdog|') || /alertname="Vigil(?!Watchdog)/.test(t), target);
      expect(r.source_matchers.join(','), 'the watchdog is never a source').to.not.contain('VigilWatchdog');
    }
  });
});
