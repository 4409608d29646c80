/**
 * Fuzzing the manifest loader with fast-check: mutations of the example
 * manifest (examples/marketedge-api/vigil.yaml) — wrong types at random paths,
 * unknown keys, deleted keys, bad durations, duplicates, dangling references,
 * and raw text damage. Property: loading either succeeds or throws a
 * `ManifestError` whose message names the file, a path into the document (or
 * the line, for YAML syntax) and what was expected — never a TypeError, never
 * "undefined" or "Invalid input" alone. Classes that must be refused are
 * asserted refused, at the right path.
 *
 * Reproducible: fixed seed and runs (VIGIL_FUZZ_SEED / VIGIL_FUZZ_RUNS); a
 * failure prints the seed and the shrunk counterexample.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import fc from 'fast-check';
import { parseDocument, stringify } from 'yaml';
import { ManifestError } from '../src/errors.js';
import { parseManifestText } from '../src/manifest/load.js';
import { DELETE, dotted, fuzzSettings, jsonYaml as yaml, mutate, pathsOf, thrownText, valueAt, type Path } from '../../../test/helpers/fuzz.js';

const { seed: SEED, runs: RUNS, title: FUZZ } = fuzzSettings(20_070_302);
const FILE = '/srv/marketedge-api/vigil.yaml';
const EXAMPLE = readFileSync(new URL('../../../examples/marketedge-api/vigil.yaml', import.meta.url), 'utf8');
const BASE: any = parseDocument(EXAMPLE).toJS();

const PATHS = pathsOf(BASE);
const OBJECT_PATHS = PATHS.filter((p) => {
  const v = valueAt(BASE, p);
  return v && typeof v === 'object' && !Array.isArray(v);
});
/** Keys whose values are durations in the schema. */
const DURATION_KEYS = new Set(['timeout', 'interval', 'latencyWarn', 'drainDelay', 'backoff', 'exportInterval', 'flushTimeout', 'endpoints', 'flows', 'dependencies', 'process', 'errorRate', 'drift', 'integration', 'window']);
/** Durations where 0 means "none" (no drain, no wait, no back-off); every other one must be over 0. */
const ZERO_OK = new Set(['drainDelay', 'shutdown.timeout', 'flushTimeout', 'backoff']);
const zeroOk = (p: Path) => ZERO_OK.has(String(p.at(-1))) || ZERO_OK.has(p.join('.'));
const DURATION_PATHS: Path[] = [
  ...PATHS.filter((p) => DURATION_KEYS.has(String(p.at(-1))) && typeof valueAt(BASE, p) === 'string'),
  // Durations the example leaves to their defaults.
  ['shutdown', 'timeout'],
  ['telemetry', 'exportInterval'],
  ['monitor', 'intervals', 'drift'],
  ['components', 'admin', 'flows', 'admin-panel', 'interval'],
  ['components', 'authentication', 'endpoints', 1, 'probe', 'interval'],
];

/** Loads the text: the manifest, or the ManifestError (anything else thrown fails the property). */
function load(text: string): { ok: true } | { ok: false; err: ManifestError } {
  try {
    parseManifestText(text, FILE);
    return { ok: true };
  } catch (err) {
    if (!(err instanceof ManifestError)) throw new Error(`not a ManifestError: ${thrownText(err)}`);
    return { ok: false, err };
  }
}

/** What every refusal must say: the file, per issue a path (or a line for YAML syntax) and an expectation in words. */
const EXPECTATION = /expected|unknown key|not valid YAML|already declared|is used twice|no component ".*" in|looks like an email address/i;
function wellFormed(err: ManifestError): void {
  expect(err.message).to.contain(FILE);
  expect(err.message, err.message).to.not.match(/\bundefined\b|\[object Object\]|^\s*at /m);
  expect(err.issues.length, err.message).to.be.greaterThan(0);
  for (const issue of err.issues) {
    // The root has no path: its issues say what they are about (an unknown key, an empty file) or give the line.
    expect(issue.path !== '' || issue.line !== undefined || /unknown key|the file is empty/.test(issue.message), `a path or a line: ${err.message}`).to.equal(true);
    expect(issue.message, err.message).to.match(EXPECTATION);
    expect(issue.message, err.message).to.not.match(/^Invalid input$/);
  }
}

function refusedAt(text: string, where: string, words?: RegExp): ManifestError {
  const r = load(text);
  expect(r.ok, `expected a refusal at ${where} of:\n${text}`).to.equal(false);
  const err = (r as { err: ManifestError }).err;
  wellFormed(err);
  const issue = err.issues.find((i) => i.path === where || i.path.startsWith(`${where}.`));
  expect(issue, `an issue at "${where}" in:\n${err.message}`).to.exist;
  if (words) expect(issue!.message).to.match(words);
  return err;
}

const replacement: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '-1', 'NaN', 'null', '~', 'yes', 1e308, -1, 0, 2 ** 53, true, [], {}, [null], { '': 1 }) },
);

describe(`manifest: fuzzed mutations of the example (${FUZZ})`, function () {
  this.timeout(120_000);
  const opts = { seed: SEED, numRuns: RUNS };
  const counts = { accepted: 0, refused: 0 };
  after(() => console.log(`      manifest fuzz: ${counts.refused} refused with a ManifestError, ${counts.accepted} accepted (seed ${SEED})`));

  function either(text: string): void {
    const r = load(text);
    if (r.ok) counts.accepted++;
    else {
      counts.refused++;
      wellFormed(r.err);
    }
  }

  it('the example itself loads', () => {
    expect(load(EXAMPLE).ok).to.equal(true);
    expect(load(yaml(BASE)).ok).to.equal(true);
    expect(load(stringify(BASE)).ok).to.equal(true);
  });

  it('a wrong type or value at any path: loads, or a ManifestError naming the file, the path and the expectation', () => {
    fc.assert(
      fc.property(fc.constantFrom(...PATHS), replacement, (path, value) => either(yaml(mutate(BASE, path, value)))),
      opts,
    );
  });

  it('a deleted key or item: loads, or a ManifestError', () => {
    fc.assert(fc.property(fc.constantFrom(...PATHS.filter((p) => p.length > 0)), (path) => either(yaml(mutate(BASE, path, DELETE)))), opts);
  });

  it('an unknown key anywhere → refused, naming the key', () => {
    const key = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,11}$/);
    fc.assert(
      fc.property(fc.constantFrom(...OBJECT_PATHS), key, fc.jsonValue({ maxDepth: 1 }), (path, k, value) => {
        const obj = valueAt(BASE, path);
        // Records (components, flows, dependencies, headers, capture) take any name: a new entry there is not an unknown key.
        fc.pre(!(k in obj) && !['components', 'flows', 'dependencies', 'headers', 'capture', 'body'].includes(String(path.at(-1))) && !path.includes('body'));
        const err = refusedAt(yaml(mutate(BASE, [...path, k], value)), dotted(path));
        expect(err.message).to.match(new RegExp(`unknown key "${k}"|expected`));
      }),
      opts,
    );
  });

  it('a bad duration at any duration key → refused at that path', () => {
    const bad = fc.oneof(
      fc.constantFrom<unknown>('5 minutes', '-1s', '1e309s', '1.5.5s', 's', '5', '5S', '5sec', '0x10ms', 'Infinity', '∞', '5m30s', '', -1, 1.5, 1e309, -0.5, 'NaN ms', null, true, [], {}, ['5s']),
      // Past Node's longest timer (2^31-1 ms ≈ 24.8 days) a timer fires after 1 ms: a loop with no pause.
      fc.constantFrom<unknown>('25d', '600h', '99999999999999999999h', 2 ** 31, 1e300),
      fc.string({ maxLength: 10 }).filter((s) => !/^\s*\d+(\.\d+)?(ms|s|m|h)\s*$/.test(s)),
    );
    // An interval or timeout of 0 probes in a loop with no pause, or times out before sending.
    const zero = fc.constantFrom<unknown>('0ms', '0s', 0, '0.0001ms', '0.4ms');
    const cases = fc.oneof(
      fc.tuple(fc.constantFrom(...DURATION_PATHS), bad),
      fc.tuple(fc.constantFrom(...DURATION_PATHS.filter((p) => !zeroOk(p))), zero),
    );
    fc.assert(
      fc.property(cases, ([path, value]) => {
        refusedAt(yaml(mutate(BASE, path, value)), dotted(path), /expected/);
      }),
      opts,
    );
    // … and 0 stays allowed where it means "none".
    for (const path of DURATION_PATHS.filter(zeroOk)) expect(load(yaml(mutate(BASE, path, '0s'))).ok, dotted(path)).to.equal(true);
  });

  const COMPONENTS = Object.keys(BASE.components) as string[];
  const ENDPOINTS: Array<[string, number]> = COMPONENTS.flatMap((c) => (BASE.components[c].endpoints ?? []).map((_: unknown, i: number) => [c, i] as [string, number]));
  const ROUTERS: Array<[string, number]> = COMPONENTS.flatMap((c) => (BASE.components[c].routers ?? []).map((_: unknown, i: number) => [c, i] as [string, number]));
  const FLOWS: Array<[string, string]> = COMPONENTS.flatMap((c) => Object.keys(BASE.components[c].flows ?? {}).map((f) => [c, f] as [string, string]));

  it('the same endpoint declared twice (any spelling: shorthand, lower-case method) → refused at the second, naming the first owner', () => {
    const arb = fc.record({
      from: fc.constantFrom(...ENDPOINTS),
      to: fc.constantFrom(...COMPONENTS),
      at: fc.nat(),
      spelling: fc.constantFrom('object', 'shorthand', 'lower'),
    });
    fc.assert(
      fc.property(arb, ({ from: [c, i], to, at, spelling }) => {
        const e = BASE.components[c].endpoints[i];
        const method = typeof e === 'string' ? e.split(' ')[0] : e.method;
        const route = typeof e === 'string' ? e.split(' ')[1] : e.route;
        const copy = spelling === 'shorthand' ? `${method} ${route}` : { method: spelling === 'lower' ? method.toLowerCase() : method, route };
        const list = [...(BASE.components[to].endpoints ?? [])];
        // After the original when in the same component, so the copy is the second declaration.
        const pos = to === c ? i + 1 + (at % (list.length - i)) : at % (list.length + 1);
        list.splice(pos, 0, copy);
        // Components are read in the file's order: the one declared second is refused, naming the first.
        const copyIsSecond = COMPONENTS.indexOf(to) >= COMPONENTS.indexOf(c);
        const [where, owner] = copyIsSecond ? [`components.${to}.endpoints.${pos}`, c] : [`components.${c}.endpoints.${i}`, to];
        refusedAt(yaml(mutate(BASE, ['components', to, 'endpoints'], list)), where, new RegExp(`endpoint "${method.toUpperCase()} ${route}" is already declared by component "${owner}"`));
      }),
      opts,
    );
  });

  it('a duplicate router (same module twice in a component), flow step name or check name → refused', () => {
    const arb = fc.oneof(
      fc.constantFrom(...ROUTERS).map(([c, i]) => ({ kind: 'router' as const, c, i, f: '' })),
      fc.constantFrom(...FLOWS).map(([c, f]) => ({ kind: 'step' as const, c, i: 0, f })),
      fc.constantFrom(...COMPONENTS.filter((c) => BASE.components[c].dependencies)).map((c) => ({ kind: 'check' as const, c, i: 0, f: '' })),
    );
    fc.assert(
      fc.property(arb, ({ kind, c, i, f }) => {
        if (kind === 'router') {
          const routers = [...BASE.components[c].routers, { ...BASE.components[c].routers[i], mount: '/elsewhere' }];
          refusedAt(yaml(mutate(BASE, ['components', c, 'routers'], routers)), `components.${c}.routers.${routers.length - 1}.name`, /is used twice in this component/);
        } else if (kind === 'step') {
          const steps = structuredClone(BASE.components[c].flows[f].steps);
          steps.at(-1).name = steps[0].name;
          refusedAt(yaml(mutate(BASE, ['components', c, 'flows', f, 'steps'], steps)), `components.${c}.flows.${f}.steps.${steps.length - 1}.name`, /step name ".+" is used twice in this flow/);
        } else {
          // Check names are map keys: a second one with the same name is a YAML error, never "the last one wins".
          const text = yaml(BASE);
          const name = Object.keys(BASE.components[c].dependencies)[0]!;
          const entry = `"${name}": ${JSON.stringify(BASE.components[c].dependencies[name])}`;
          const doubled = text.replace(new RegExp(`("${name}": \\{)`), `${entry},\n$1`);
          expect(doubled).to.not.equal(text);
          const r = load(doubled);
          expect(r.ok).to.equal(false);
          wellFormed((r as { err: ManifestError }).err);
          expect((r as { err: ManifestError }).err.message).to.match(/not valid YAML: Map keys must be unique/);
        }
      }),
      opts,
    );
  });

  it('a dangling reference → refused: an integration check naming no component, a ${capture} no earlier step captures, a malformed placeholder', () => {
    const integration = fc.record({
      check: fc.constantFrom('cors', 'rateLimit', 'jwt', 'errorHandler'),
      component: fc.stringMatching(/^[a-z][a-z0-9_-]{0,10}$/).filter((n) => !COMPONENTS.includes(n)),
    });
    const capture = fc.record({
      flow: fc.constantFrom(...FLOWS),
      name: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/),
      field: fc.constantFrom('path', 'header', 'body'),
      // Used in the first step (nothing captured yet), or in a later step under a name never captured.
      first: fc.boolean(),
    });
    const probe = fc.record({ endpoint: fc.constantFrom(...ENDPOINTS), name: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/), field: fc.constantFrom('header', 'body') });
    const malformed = fc.record({ flow: fc.constantFrom(...FLOWS), text: fc.constantFrom('${}', '${env:}', '${env:bad-name}', '${ token }', '${env: X}', '${1abc}', '${a.b}') });
    const arb = fc.oneof(
      integration.map((v) => ({ kind: 'integration' as const, ...v })),
      capture.map((v) => ({ kind: 'capture' as const, ...v })),
      probe.map((v) => ({ kind: 'probe' as const, ...v })),
      malformed.map((v) => ({ kind: 'malformed' as const, ...v })),
    );
    fc.assert(
      fc.property(arb, (c) => {
        if (c.kind === 'integration') {
          const value = c.check === 'cors' ? { path: '/x', origin: 'https://a.test', component: c.component } : c.check === 'rateLimit' ? { path: '/x', component: c.component } : { component: c.component };
          refusedAt(yaml(mutate(BASE, ['monitor', 'integration', c.check], value)), `monitor.integration.${c.check}.component`, new RegExp(`no component "${c.component}" in "components"`));
        } else if (c.kind === 'capture') {
          const [comp, flow] = c.flow;
          const steps = BASE.components[comp].flows[flow].steps as any[];
          const captured = new Set(steps.flatMap((st) => Object.keys(st.capture ?? {})));
          fc.pre(c.first || !captured.has(c.name));
          const i = c.first ? 0 : steps.length - 1;
          const at: Path = ['components', comp, 'flows', flow, 'steps', i];
          const field: Path = c.field === 'path' ? ['path'] : c.field === 'header' ? ['headers', 'x-fuzz'] : ['body', 'value'];
          const value = c.field === 'path' ? `/api/v1/items/\${${c.name}}` : `Bearer \${${c.name}}`;
          refusedAt(yaml(mutate(BASE, [...at, ...field], value)), dotted([...at, ...field]), new RegExp(`"\\$\\{${c.name}\\}" is not captured by an earlier step: expected`));
        } else if (c.kind === 'probe') {
          const [comp, i] = c.endpoint;
          const e = BASE.components[comp].endpoints[i];
          const endpoint = typeof e === 'string' ? { method: e.split(' ')[0], route: e.split(' ')[1] } : structuredClone(e);
          endpoint.probe ??= {};
          if (c.field === 'header') endpoint.probe.headers = { authorization: `Bearer \${${c.name}}` };
          else endpoint.probe.body = { token: `\${${c.name}}` };
          const at = `components.${comp}.endpoints.${i}.probe.${c.field === 'header' ? 'headers.authorization' : 'body.token'}`;
          refusedAt(yaml(mutate(BASE, ['components', comp, 'endpoints', i], endpoint)), at, /a probe captures nothing, expected \$\{env:NAME\}/);
        } else {
          const [comp, flow] = c.flow;
          const at: Path = ['components', comp, 'flows', flow, 'steps', 0, 'headers', 'x-fuzz'];
          refusedAt(yaml(mutate(BASE, at, `v ${c.text}`)), dotted(at), /expected a placeholder \$\{env:NAME\} or \$\{capture\}/);
        }
      }),
      opts,
    );
    // Secrets from the environment stay allowed everywhere a request is written.
    expect(load(yaml(mutate(BASE, ['components', 'authentication', 'endpoints', 0, 'probe', 'headers'], { authorization: 'Bearer ${env:PROBE_TOKEN}', 'x-key': { env: 'PROBE_KEY' } }))).ok).to.equal(true);
  });

  it('an email address (any RFC 5322 form) in a value that becomes a label → refused with "looks like an email address"', () => {
    // "/" right before "@" reads as a path segment ("/@me"), and "${…}" as a placeholder: both are left out.
    const email = fc.emailAddress().filter((e) => !e.includes('/@') && !e.includes('${'));
    const place = fc.constantFrom<[Path, (e: string) => unknown]>(
      [['service'], (e) => e],
      [['environment'], (e) => e],
      [['components', 'admin', 'routers', 0, 'name'], (e) => e],
      [['components', 'admin', 'routers', 0, 'module'], (e) => `./dist/routers/${e}.js`],
      [['components', 'admin', 'endpoints', 0, 'route'], (e) => `/api/v1/admin/${e}`],
      [['components', 'admin', 'flows', 'admin-panel', 'steps', 1, 'path'], (e) => `/api/v1/users/${e}`],
      [['components', 'admin', 'flows', 'admin-panel', 'steps', 1, 'name'], (e) => e],
    );
    fc.assert(
      fc.property(place, email, ([path, make], e) => {
        refusedAt(yaml(mutate(BASE, path, make(e))), dotted(path), /looks like an email address; names become metric labels: use an identifier/);
      }),
      opts,
    );
    // As a key: a component, a flow, a check.
    fc.assert(
      fc.property(fc.constantFrom<Path>(['components'], ['components', 'admin', 'flows'], ['components', 'cache', 'dependencies']), email, (at, e) => {
        const record = { ...valueAt(BASE, at) };
        const [first] = Object.keys(record);
        record[e] = record[first!];
        delete record[first!];
        refusedAt(yaml(mutate(BASE, at, record)), dotted([...at, e]), /looks like an email address; names become metric labels/);
      }),
      { ...opts, numRuns: Math.ceil(RUNS / 3) },
    );
  });

  it('raw text damage (cut, or characters put in): loads, or a ManifestError with the line', () => {
    const damage = fc.oneof(
      fc.integer({ min: 0, max: EXAMPLE.length }).map((at) => EXAMPLE.slice(0, at)),
      fc.tuple(fc.integer({ min: 0, max: EXAMPLE.length }), fc.constantFrom('{', '[', ':', '- ', '"', "'", '\t', '&a', '*a', '!!int ', '%', '@', '`', '|', '>', '\n  ', '#', '? ', '<<: *x')).map(([at, s]) => EXAMPLE.slice(0, at) + s + EXAMPLE.slice(at)),
      fc.tuple(fc.integer({ min: 0, max: EXAMPLE.length }), fc.integer({ min: 1, max: 40 })).map(([at, n]) => EXAMPLE.slice(0, at) + EXAMPLE.slice(at + n)),
    );
    fc.assert(fc.property(damage, (text) => either(text)), opts);
  });
});

describe('manifest: the refusals the fuzzing added (one case each)', () => {
  const VALID = `
service: shop
components:
  auth:
    policy: fail-fast
    endpoints:
      - POST /api/auth/login
      - method: GET
        route: /api/auth/me
        probe: { timeout: 750ms, headers: { authorization: "Bearer \${env:TOKEN}" } }
    flows:
      login:
        steps:
          - name: login
            method: POST
            path: /api/auth/login
            capture: { token: accessToken }
          - name: me
            method: GET
            path: /api/auth/me
            headers: { authorization: "Bearer \${token}" }
shutdown: { drainDelay: 0s }
`;
  // What is wrong, the change, the path the error must name, words it must contain.
  const cases: Array<[string, string, string, string, RegExp]> = [
    ['a zero timeout', '750ms', '0ms', 'components.auth.endpoints.1.probe.timeout', /expected a duration over 0/],
    ['a zero monitor interval', 'shutdown:', 'monitor: { intervals: { endpoints: 0 } }\nshutdown:', 'monitor.intervals.endpoints', /expected a duration over 0/],
    ['a duration past the longest timer', '750ms', '600h', 'components.auth.endpoints.1.probe.timeout', /at most 24 days \(2147483647 ms, the longest timer Node.js can set\)/],
    ['a duration that is not text or a number', '750ms', '[1s]', 'components.auth.endpoints.1.probe.timeout', /^expected a duration such as "500ms", "5s" or "2m" \(or whole milliseconds\), got \["1s"\]$/],
    ['a status that is neither "exists" nor codes', 'timeout: 750ms,', 'expect: { status: { ok: 200 } }, timeout: 750ms,', 'components.auth.endpoints.1.probe.expect.status', /^expected "exists" or a list of HTTP status codes/],
    ['a header that is neither text nor { env }', '"Bearer ${env:TOKEN}"', '{ value: x }', 'components.auth.endpoints.1.probe.headers.authorization', /^expected text \(it may hold \$\{env:NAME\}\) or \{ env: NAME, prefix: "Bearer " \}, got/],
    ['a placeholder no step captures', 'capture: { token: accessToken }', 'capture: { jwt: accessToken }', 'components.auth.flows.login.steps.1.headers.authorization', /"\$\{token\}" is not captured by an earlier step: expected "capture: \{ token: <path in the answer> \}" before it, or \$\{env:NAME\}/],
    ['a capture used in a probe', '"Bearer ${env:TOKEN}"', '"Bearer ${token}"', 'components.auth.endpoints.1.probe.headers.authorization', /a probe captures nothing, expected \$\{env:NAME\}/],
    ['a malformed placeholder', '"Bearer ${env:TOKEN}"', '"Bearer ${env:api-token}"', 'components.auth.endpoints.1.probe.headers.authorization', /expected a placeholder \$\{env:NAME\} or \$\{capture\}, got "\$\{env:api-token\}"/],
    ['a step name used twice', '- name: me', '- name: login', 'components.auth.flows.login.steps.1.name', /step name "login" is used twice in this flow \(steps\.0 has it\)/],
    ['a missing key', '    policy: fail-fast\n', '', 'components.auth.policy', /^missing: expected /],
  ];
  for (const [name, from, to, where, words] of cases) {
    it(`refuses ${name}, naming the file, the line, the path and the expectation`, () => {
      const text = VALID.replace(from, to);
      expect(text).to.not.equal(VALID);
      expect(load(VALID).ok).to.equal(true);
      const r = load(text);
      expect(r.ok, text).to.equal(false);
      const err = (r as { err: ManifestError }).err;
      const issue = err.issues.find((i) => i.path === where);
      expect(issue, `an issue at "${where}" in:\n${err.message}`).to.exist;
      expect(issue!.message).to.match(words);
      expect(issue!.line, err.message).to.be.a('number');
      expect(err.message).to.contain(`${FILE}:${issue!.line}:`);
    });
  }

  it('calls an empty file empty', () => {
    const r = load('');
    expect(r.ok).to.equal(false);
    expect((r as { err: ManifestError }).err.message).to.contain('(root): the file is empty: expected a manifest with "service" and "components"');
  });
});
