/**
 * Fuzzing the evaluator's rule file with fast-check: mutations of the example
 * (examples/marketedge-api/evaluator.yaml) — wrong types at random paths,
 * unknown keys, deleted keys, bad durations, duplicate rule names, references
 * to contexts and levels that do not exist, email addresses in values that
 * become alert labels, raw text damage. Property: `loadConfig` either returns
 * a config or throws a `ConfigError` whose message names the file, a path into
 * the document (or the line) and what was expected — never a TypeError, never
 * "undefined" or a bare "Invalid input". `vigil-evaluator --config F --check`
 * says the same and exits 2.
 *
 * Reproducible: fixed seed and runs (VIGIL_FUZZ_SEED / VIGIL_FUZZ_RUNS); a
 * failure prints the seed and the shrunk counterexample.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { ConfigError } from '@vigil/sdk';
import { loadConfig } from '../src/config/load.js';
import { DELETE, dotted, fuzzSettings, jsonYaml as yaml, mutate, pathsOf, thrownText, valueAt, type Path } from '../../../test/helpers/fuzz.js';

const { seed: SEED, runs: RUNS, title: FUZZ } = fuzzSettings(20_070_303);
const EXAMPLE_FILE = new URL('../../../examples/marketedge-api/evaluator.yaml', import.meta.url);
const EXAMPLE = readFileSync(EXAMPLE_FILE, 'utf8');
const BASE: any = parse(EXAMPLE);

const PATHS = pathsOf(BASE);
/** Maps whose keys are names of the user's choosing: a new key there is a new entry, not an unknown key. */
const RECORDS = new Set(['contexts', 'notifiers', 'labels', 'headers']);
const OBJECT_PATHS = PATHS.filter((p) => {
  const v = valueAt(BASE, p);
  return v && typeof v === 'object' && !Array.isArray(v) && !RECORDS.has(String(p.at(-1)));
});
/** Durations that are timers (setInterval, request timeouts, retry delays): over 0 and at most Node's longest timer. */
const TIMER_PATHS: Path[] = [
  ['interval'],
  ['notifiers', 'alertmanager', 'resend'],
  ['notifiers', 'alertmanager', 'timeout'],
  ['notifiers', 'alertmanager', 'retry', 'initial'],
  ['notifiers', 'alertmanager', 'retry', 'max'],
];
/** Durations compared with the clock, never set as timers: 0 can make sense (`for: 0s`), and so can 30 days (`retain`). */
const SPAN_PATHS: Path[] = [['silentAfter'], ['staleAfter'], ['retain'], ['policies', 'critical', 'for'], ['policies', 'high', 'escalation', 0, 'after'], ['contexts', 'CRITICAL_AUTH', 'escalation', 0, 'after'], ['policies', 'low', 'reminder']];

describe(`evaluator config: fuzzed mutations of the example (${FUZZ})`, function () {
  this.timeout(120_000);
  const dir = mkdtempSync(path.join(tmpdir(), 'vigil-config-fuzz-'));
  const FILE = path.join(dir, 'evaluator.yaml');
  const opts = { seed: SEED, numRuns: RUNS };
  const counts = { accepted: 0, refused: 0 };
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    console.log(`      config fuzz: ${counts.refused} refused with a ConfigError, ${counts.accepted} accepted (seed ${SEED})`);
  });

  async function load(text: string): Promise<{ ok: true } | { ok: false; err: ConfigError }> {
    writeFileSync(FILE, text);
    try {
      await loadConfig(FILE);
      counts.accepted++;
      return { ok: true };
    } catch (err) {
      if (!(err instanceof ConfigError)) throw new Error(`not a ConfigError: ${thrownText(err)}`);
      counts.refused++;
      wellFormed(err);
      return { ok: false, err };
    }
  }

  const EXPECTATION = /expected|unknown key|not valid YAML|is used twice|no context ".*" in "contexts"|looks like an email address/i;
  function wellFormed(err: ConfigError): void {
    expect(err.message).to.contain(FILE);
    expect(err.message, err.message).to.match(/^Invalid evaluator config /);
    // zod's "expected object, received undefined" is a missing key, said at its path; no other "undefined".
    expect(err.message.replace(/expected [\w ]+, received undefined/g, ''), err.message).to.not.match(/\bundefined\b|\[object Object\]|^\s*at /m);
    for (const issue of err.issues) {
      // The root has no path: its issues name the key, or say what the whole file should be.
      expect(issue.path !== '' || issue.line !== undefined || /unknown key|expected object/.test(issue.message), `a path or a line: ${err.message}`).to.equal(true);
      expect(issue.message, err.message).to.match(EXPECTATION);
      expect(issue.message, err.message).to.not.match(/^Invalid input(, got .*)?$/);
    }
  }
  async function refusedAt(text: string, where: string, words?: RegExp): Promise<ConfigError> {
    const r = await load(text);
    expect(r.ok, `expected a refusal at ${where} of:\n${text}`).to.equal(false);
    const err = (r as { err: ConfigError }).err;
    const issue = err.issues.find((i) => i.path === where || i.path.startsWith(`${where}.`));
    expect(issue, `an issue at "${where}" in:\n${err.message}`).to.exist;
    if (words) expect(issue!.message, err.message).to.match(words);
    return err;
  }

  it('the example itself loads', async () => {
    expect((await load(EXAMPLE)).ok).to.equal(true);
    expect((await load(yaml(BASE))).ok).to.equal(true);
    expect((await load(stringify(BASE))).ok).to.equal(true);
  });

  it('a wrong type or value at any path: loads, or a ConfigError naming the file, the path and the expectation', async () => {
    const replacement = fc.oneof(
      { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
      { weight: 1, arbitrary: fc.constantFrom<unknown>('', ' ', '-1', 'NaN', '~', 1e308, -1, 0, 2 ** 53, true, [], {}, [null], { '': 1 }) },
    );
    await fc.assert(fc.asyncProperty(fc.constantFrom(...PATHS), replacement, async (p, value) => void (await load(yaml(mutate(BASE, p, value))))), opts);
  });

  it('a deleted key or item: loads, or a ConfigError', async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom(...PATHS.filter((p) => p.length > 0)), async (p) => void (await load(yaml(mutate(BASE, p, DELETE))))), opts);
  });

  it('an unknown key anywhere → refused, naming the key', async () => {
    const key = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,11}$/);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...OBJECT_PATHS), key, fc.jsonValue({ maxDepth: 1 }), async (p, k, value) => {
        fc.pre(!(k in valueAt(BASE, p)));
        const err = await refusedAt(yaml(mutate(BASE, [...p, k], value)), dotted(p));
        expect(err.message).to.match(new RegExp(`unknown key "${k}"|expected`));
      }),
      opts,
    );
  });

  it('a bad duration → refused at its path; timers also refuse 0 and more than 24 days', async () => {
    const bad = fc.oneof(
      fc.constantFrom<unknown>('5 minutes', '-1s', '1e309s', '1.5.5s', 's', '5', '5S', '5sec', 'Infinity', '5m30s', '', -1, 1.5, 1e309, null, true, [], {}, ['5s']),
      fc.string({ maxLength: 10 }).filter((s) => !/^\s*\d+(\.\d+)?(ms|s|m|h)\s*$/.test(s)),
    );
    const timerOnly = fc.constantFrom<unknown>('0ms', '0s', 0, '0.0001ms', '25d', '600h', '99999999999999999999h', 2 ** 31, 1e300);
    const cases = fc.oneof(fc.tuple(fc.constantFrom(...TIMER_PATHS, ...SPAN_PATHS), bad), fc.tuple(fc.constantFrom(...TIMER_PATHS), timerOnly));
    await fc.assert(fc.asyncProperty(cases, async ([p, value]) => void (await refusedAt(yaml(mutate(BASE, p, value)), dotted(p), /expected/))), opts);
    // 0 and long spans stay allowed where they are not timers (with the file's own ordering rules kept).
    expect((await load(yaml(mutate(BASE, ['policies', 'critical', 'for'], 0)))).ok).to.equal(true);
    expect((await load(yaml(mutate(BASE, ['retain'], '720h')))).ok).to.equal(true);
  });

  it('duplicate rule names, and references to a context or level that does not exist → refused', async () => {
    const RULES = BASE.rules.length as number;
    const arb = fc.oneof(
      fc.tuple(fc.nat({ max: RULES - 1 }), fc.nat({ max: RULES - 1 })).filter(([a, b]) => a !== b).map(([a, b]) => ({ kind: 'duplicate' as const, a, b, name: '' })),
      fc.tuple(fc.nat({ max: RULES - 1 }), fc.stringMatching(/^[A-Z][A-Z0-9_]{0,12}$/)).map(([a, name]) => ({ kind: 'context' as const, a, b: 0, name })),
      fc.stringMatching(/^[A-Z][A-Z0-9_]{0,12}$/).map((name) => ({ kind: 'defaultContext' as const, a: 0, b: 0, name })),
      fc.tuple(fc.nat({ max: RULES - 1 }), fc.constantFrom('urgent', 'CRITICAL', 'P0', 'severe', '')).map(([a, name]) => ({ kind: 'level' as const, a, b: 0, name })),
      fc.constantFrom('critical', 'high', 'medium', 'low').map((name) => ({ kind: 'policy' as const, a: 0, b: 0, name })),
    );
    await fc.assert(
      fc.asyncProperty(arb, async (c) => {
        if (c.kind === 'duplicate') {
          const doc = mutate(BASE, ['rules', c.b, 'name'], BASE.rules[c.a].name);
          await refusedAt(yaml(doc), `rules.${Math.max(c.a, c.b)}.name`, new RegExp(`rule name "${BASE.rules[c.a].name}" is used twice`));
        } else if (c.kind === 'context') {
          fc.pre(!(c.name in BASE.contexts));
          await refusedAt(yaml(mutate(BASE, ['rules', c.a, 'impact', 'context'], c.name)), `rules.${c.a}.impact.context`, new RegExp(`no context "${c.name}" in "contexts"`));
        } else if (c.kind === 'defaultContext') {
          fc.pre(!(c.name in BASE.contexts));
          await refusedAt(yaml(mutate(BASE, ['defaultImpact', 'context'], c.name)), 'defaultImpact.context', new RegExp(`no context "${c.name}" in "contexts"`));
        } else if (c.kind === 'level') {
          await refusedAt(yaml(mutate(BASE, ['rules', c.a, 'impact', 'level'], c.name)), `rules.${c.a}.impact.level`, /expected one of "critical"\|"high"\|"medium"\|"low"/);
        } else {
          // Every level needs its policy: a rule of that level would have nowhere to go.
          await refusedAt(yaml(mutate(BASE, ['policies', c.name], DELETE)), `policies.${c.name}`, /expected object, received undefined/);
        }
      }),
      opts,
    );
  });

  it('an email address in a value that becomes an alert label (rule name, context, channel) → refused', async () => {
    const email = fc.emailAddress().filter((e) => !e.includes('/@') && !e.includes('${'));
    const place = fc.constantFrom<[Path, string]>(
      [['rules', 1, 'name'], 'rules.1.name'],
      [['policies', 'critical', 'channels', 0], 'policies.critical.channels.0'],
      [['contexts', 'CRITICAL_AUTH', 'channels', 1], 'contexts.CRITICAL_AUTH.channels.1'],
      [['policies', 'high', 'escalation', 0, 'channels'], 'policies.high.escalation.0.channels.0'],
    );
    await fc.assert(
      fc.asyncProperty(place, email, async ([p, where], e) => {
        const value = p.at(-1) === 'channels' ? [e] : e;
        await refusedAt(yaml(mutate(BASE, p, value)), where, /looks like an email address; names become alert labels: use an identifier/);
      }),
      opts,
    );
  });

  it('raw text damage (cut, or characters put in): loads, or a ConfigError', async () => {
    const damage = fc.oneof(
      fc.integer({ min: 0, max: EXAMPLE.length }).map((at) => EXAMPLE.slice(0, at)),
      fc.tuple(fc.integer({ min: 0, max: EXAMPLE.length }), fc.constantFrom('{', '[', ':', '- ', '"', "'", '\t', '&a', '*a', '!!int ', '%', '@', '`', '|', '>', '\n  ', '#', '? ')).map(([at, s]) => EXAMPLE.slice(0, at) + s + EXAMPLE.slice(at)),
      fc.tuple(fc.integer({ min: 0, max: EXAMPLE.length }), fc.integer({ min: 1, max: 40 })).map(([at, n]) => EXAMPLE.slice(0, at) + EXAMPLE.slice(at + n)),
    );
    await fc.assert(fc.asyncProperty(damage, async (text) => void (await load(text))), opts);
  });

  it('vigil-evaluator --config F --check: exit 2 and the same message on stderr; exit 0 on the example', async () => {
    const run = promisify(execFile);
    const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
    const check = async (text: string) => {
      writeFileSync(FILE, text);
      try {
        const { stdout } = await run(process.execPath, ['--import', 'tsx', cli, '--config', FILE, '--check']);
        return { code: 0, stdout, stderr: '' };
      } catch (err) {
        const e = err as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
    };
    const ok = await check(EXAMPLE);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.contain(`${FILE}: valid (${(BASE.rules as unknown[]).length} rules, 2 notifiers, source otlp)`);
    const cases: Array<[unknown, RegExp]> = [
      [mutate(BASE, ['interval'], '0s'), /interval: expected a duration over 0/],
      [mutate(BASE, ['rules', 2, 'name'], 'ops@example.com'), /rules\.2\.name: .*looks like an email address/],
      [mutate(BASE, ['rules', 0, 'impact', 'context'], 'NOPE'), /rules\.0\.impact\.context: no context "NOPE" in "contexts"/],
    ];
    for (const [doc, words] of cases) {
      const r = await check(yaml(doc));
      expect(r.code, r.stderr).to.equal(2);
      expect(r.stderr).to.contain(`Invalid evaluator config ${FILE}`);
      expect(r.stderr).to.match(words);
    }
  });
});

describe('evaluator config: the refusals the fuzzing added (one case each)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vigil-config-cases-'));
  const FILE = path.join(dir, 'evaluator.yaml');
  after(() => rmSync(dir, { recursive: true, force: true }));

  // What is wrong, the change (a path and a value), the path the error must name, words it must contain.
  const cases: Array<[string, Path, unknown, string, RegExp]> = [
    ['an evaluation interval of 0', ['interval'], '0s', 'interval', /^expected a duration over 0 \(e\.g\. "500ms"\): 0 would run in a loop with no pause$/],
    ['a retry delay of 0', ['notifiers', 'alertmanager', 'retry'], { initial: 0 }, 'notifiers.alertmanager.retry.initial', /expected a duration over 0/],
    ['a timer past 24 days', ['notifiers', 'alertmanager', 'resend'], '600h', 'notifiers.alertmanager.resend', /at most 24 days \(2147483647 ms, the longest timer Node\.js can set\)/],
    ['a duration that is not text or a number', ['silentAfter'], null, 'silentAfter', /^expected a duration such as "500ms", "5s" or "2m" \(or whole milliseconds\), got null$/],
    ['a match that is neither a name nor a list', ['rules', 1, 'match', 'component'], { name: 'x' }, 'rules.1.match.component', /^expected a component name or a list of them, got/],
    ['a signal kind that does not exist', ['rules', 0, 'match', 'signal'], 5, 'rules.0.match.signal', /^expected a signal kind or a list of them: import, route/],
    ['a URL that is not one', ['notifiers', 'alertmanager', 'urls'], ['127.0.0.1:9093'], 'notifiers.alertmanager.urls.0', /^expected an absolute URL such as "http:\/\/127\.0\.0\.1:9093", got "127\.0\.0\.1:9093"$/],
    ['an email address as a rule name', ['rules', 2, 'name'], 'jane.doe@example.com', 'rules.2.name', /^this name looks like an email address; names become alert labels: use an identifier/],
    ['an email address as a channel', ['policies', 'critical', 'channels'], ['pagerduty', 'oncall@example.com'], 'policies.critical.channels.1', /^this channel looks like an email address; names become alert labels: use an identifier/],
    ['an email address as a context', ['contexts'], { 'OPS@EXAMPLE.COM': { headline: 'x' }, ...BASE.contexts }, 'contexts.OPS@EXAMPLE.COM', /this context looks like an email address; names become alert labels/],
  ];
  for (const [name, at, value, where, words] of cases) {
    it(`refuses ${name}, naming the file, the line, the path and the expectation`, async () => {
      writeFileSync(FILE, stringify(mutate(BASE, at, value)));
      const err = await loadConfig(FILE).then(
        () => expect.fail('expected a ConfigError'),
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(ConfigError);
      const { issues, message } = err as ConfigError;
      const issue = issues.find((i) => i.path === where);
      expect(issue, `an issue at "${where}" in:\n${message}`).to.exist;
      expect(issue!.message).to.match(words);
      expect(message).to.contain(`${FILE}:${issue!.line}:`);
    });
  }

  it('keeps email addresses where they are not labels: summaries, customers, headlines', async () => {
    let doc = mutate(BASE, ['rules', 0, 'impact', 'customers'], 'Ask ops@example.com');
    doc = mutate(doc, ['contexts', 'CRITICAL_AUTH', 'headline'], 'CRITICAL: mail security@example.com');
    writeFileSync(FILE, stringify(doc));
    const config = await loadConfig(FILE);
    expect(config.rules[0]!.impact.customers).to.equal('Ask ops@example.com');
  });
});
