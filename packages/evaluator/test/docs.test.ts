/**
 * Keeps docs/evaluator.md true to the code, the way packages/sdk/test/docs.test.ts
 * keeps docs/sdk.md: every key of the evaluator config schema has its row (with
 * its default, and "required" in its type exactly when it is) in the table
 * under its heading — no more, no fewer; the signal kinds, and the labels and annotations a notification
 * carries, are listed exactly. (docs/telemetry.md's table of the evaluator's
 * metrics is checked by the SDK's docs test with the other metrics.)
 */
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { z } from 'zod';
import {
  AlertmanagerNotifier,
  Duration,
  Escalation,
  EvaluatorConfig,
  ServiceOptions,
  Impact,
  Match,
  Notifier,
  Policy,
  Rule,
  Source,
  Context,
  WebhookNotifier,
  ReleaseOptions,
  IntendedRemoval,
  type EvaluatorConfigInput,
} from '../src/config/schema.js';
import { step } from '../src/policies/engine.js';
import { assess } from '../src/rules/impact.js';
import { CHECK_PREFIXES, ERROR_RATE_CHECK } from '../src/sources/mapping.js';
import { SIGNAL_KINDS, type Signal } from '../src/signals/types.js';
import { codeSpans, firstTable, rowKey, shapeOf, unwrapped } from '../../../test/helpers/docs.js';

const DOC = readFileSync(new URL('../../../docs/evaluator.md', import.meta.url), 'utf8');


/**
 * Whether the default cell states `value`: a duration as any code span that
 * parses to it (`60s` or `1m`), a string, number or boolean as itself, an empty
 * string as `""`, a list of strings as `[a, b]`. Objects are described in words
 * and not checked (undefined).
 */
function statesDefault(cell: string, value: unknown, schema: z.ZodType): boolean | undefined {
  const spans = codeSpans(cell);
  if (unwrapped(schema) === Duration) return [...spans].some((s) => Duration.safeParse(s).data === value);
  if (value === '') return spans.has('""');
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return spans.has(String(value));
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return spans.has(`[${value.join(', ')}]`);
  return undefined;
}

describe('docs/evaluator.md', () => {
  /** Each config table of evaluator.md and the zod object it documents. */
  const tables: Array<[string, Record<string, z.ZodType>]> = [
    ['### Top level', EvaluatorConfig.shape],
    ['### `server`', shapeOf(EvaluatorConfig.shape.server)],
    ['### `services.<name>`', ServiceOptions.shape],
    ['### `releases`', ReleaseOptions.shape],
    ['#### `releases.intendedRemovals[]`', IntendedRemoval.shape],
    ...Source.options.map((o): [string, Record<string, z.ZodType>] => [`#### \`type: ${o.shape.type.value}\``, o.shape]),
    ['### `rules[]`', Rule.shape],
    ['#### `match`', Match.shape],
    ['#### `impact`', Impact.shape],
    ['##### `impact.revenue`', shapeOf(Impact.shape.revenue)],
    ['### `policies.<level>`', Policy.shape],
    ['#### `escalation[]`', Escalation.shape],
    ['### `contexts.<KEY>`', Context.shape],
    ...Notifier.options.map((o): [string, Record<string, z.ZodType>] => [`#### \`type: ${o.shape.type.value}\``, o.shape]),
    ['#### `retry`', shapeOf(AlertmanagerNotifier.shape.retry)],
  ];

  it('the two notifiers with a retry share its table', () => {
    expect(Object.keys(shapeOf(WebhookNotifier.shape.retry)).sort()).to.deep.equal(Object.keys(shapeOf(AlertmanagerNotifier.shape.retry)).sort());
  });

  it('the policy levels are the table of `policies`', () => {
    expect(Object.keys(shapeOf(EvaluatorConfig.shape.policies))).to.deep.equal(['critical', 'high', 'medium', 'low']);
    const spans = codeSpans(DOC);
    expect(['critical', 'high', 'medium', 'low'].filter((l) => !spans.has(l))).to.deep.equal([]);
  });

  for (const [heading, shape] of tables) {
    const what = heading.replace(/^#+ /, '');

    it(`${what}: one row per schema key, no invented ones`, () => {
      const documented = firstTable(DOC, heading).map(rowKey);
      expect([...documented].sort()).to.deep.equal(Object.keys(shape).sort());
    });

    it(`${what}: the defaults written are the schema's, and required keys say so`, () => {
      const rows = new Map(firstTable(DOC, heading).map((r) => [rowKey(r), r]));
      for (const [key, schema] of Object.entries(shape)) {
        const type = rows.get(key)?.[1] ?? '';
        const cell = rows.get(key)?.[2] ?? '';
        const parsed = schema.safeParse(undefined);
        expect(/\brequired\b/.test(type), `type cell of "${key}" under ${heading} says "required" exactly when the key is: "${type}"`).to.equal(!parsed.success);
        if (!parsed.success) continue;
        if (parsed.data === undefined) continue;
        const stated = statesDefault(cell, parsed.data, schema);
        if (stated === undefined) continue;
        expect(stated, `default of "${key}" under ${heading}: ${JSON.stringify(parsed.data)} in "${cell}"`).to.equal(true);
      }
    });
  }

  it('lists every signal kind, and every check prefix the mapping knows', () => {
    const kinds = firstTable(DOC, '### What becomes a signal').map((r) => rowKey(r));
    expect([...new Set(kinds)].sort()).to.deep.equal([...SIGNAL_KINDS].sort());
    const spans = codeSpans(DOC);
    const missing = [...CHECK_PREFIXES.map((p) => `${p.prefix}…`), ERROR_RATE_CHECK].filter((p) => !spans.has(p));
    expect(missing).to.deep.equal([]);
  });

  /** A notification with every optional label and annotation: context, environment, revenue, customers, runbook. */
  function fullNotification() {
    const config = EvaluatorConfig.parse({
      source: { type: 'otlp' },
      rules: [{ name: 'auth', match: { component: 'authentication' }, impact: { level: 'critical', priority: 'P0', revenue: { amount: 1, currency: 'GBP' }, customers: 'all', context: 'AUTH', runbook: 'https://runbooks.example/auth' } }],
      policies: { critical: { channels: ['pager'] }, high: { channels: ['chat'] }, medium: { channels: ['chat'] }, low: { channels: ['mail'] } },
      contexts: { AUTH: { headline: 'AUTH' } },
      notifiers: { console: { type: 'console' } },
    } satisfies EvaluatorConfigInput);
    const s: Signal = { kind: 'import', service: 'api', instance: 'i', environment: 'prod', component: 'authentication', subject: 'auth', failing: true, labels: {}, observedAt: 0 };
    const current = new Map([['api|authentication', { service: 'api', component: 'authentication', environment: 'prod', assessment: assess(config.rules, config.defaultImpact, [s]) }]]);
    return step(config, new Map(), current, 0).send[0]!;
  }

  it('lists exactly the labels of a notification', () => {
    const documented = firstTable(DOC, '#### Labels').map(rowKey);
    expect([...documented].sort()).to.deep.equal(Object.keys(fullNotification().labels).sort());
  });

  it('lists exactly the annotations of a notification', () => {
    const documented = firstTable(DOC, '#### Annotations').map(rowKey);
    expect([...documented].sort()).to.deep.equal(Object.keys(fullNotification().annotations).sort());
  });
});
