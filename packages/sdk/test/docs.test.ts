/**
 * Keeps the docs true to the code: every telemetry name of semconv.ts is in
 * docs/telemetry.md (with its Prometheus name), the "emitted today" table lists
 * exactly what the instruments emit, and every manifest field of the zod schema
 * has its row (and its default) in docs/sdk.md — no more, no fewer.
 */
import { readFileSync } from 'node:fs';
import type { Meter } from '@opentelemetry/api';
import { expect } from 'chai';
import type { z } from 'zod';
import * as semconv from '../src/semconv.js';
import {
  Component,
  DependencyCheck,
  Endpoint,
  HealthOptions,
  Manifest,
  Probe,
  RouterSpec,
  ShutdownOptions,
  TelemetryOptions,
} from '../src/manifest/schema.js';
import { registerStartupInstruments } from '../src/telemetry/instruments.js';

const doc = (name: string) => readFileSync(new URL(`../../../docs/${name}`, import.meta.url), 'utf8');
const TELEMETRY = doc('telemetry.md');
const SDK = doc('sdk.md');

/** Every `code span` of a markdown text. */
function codeSpans(md: string): Set<string> {
  return new Set([...md.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!));
}

/** The rows (cells) of the first table after `heading`, before the next heading of the same or a higher level. */
function firstTable(md: string, heading: string): string[][] {
  const lines = md.split('\n');
  const start = lines.indexOf(heading);
  expect(start, `heading "${heading}"`).to.be.greaterThan(-1);
  const level = /^#+/.exec(heading)![0].length;
  const rows: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    const h = /^(#+) /.exec(line);
    if (h && h[1]!.length <= level) break;
    if (line.startsWith('|')) rows.push(line.split('|').slice(1, -1).map((c) => c.trim()));
    else if (rows.length > 0) break;
  }
  expect(rows.length, `a table under "${heading}"`).to.be.greaterThan(2);
  return rows.slice(2); // header and separator
}

/** The key of a row: its first cell, written as `key`. */
function rowKey(row: string[]): string {
  return /^`([^`]+)`$/.exec(row[0]!)?.[1] ?? row[0]!;
}

/** How a default is written in the docs, or undefined for values the tables describe in words. */
function written(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number') return value % 1000 === 0 ? `${value / 1000}s` : `${value}ms`; // numeric defaults are durations
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return `[${value.join(', ')}]`;
  return undefined;
}

describe('docs/telemetry.md', () => {
  const spans = codeSpans(TELEMETRY);
  const names = (Object.entries(semconv) as Array<[string, unknown]>).filter(
    (e): e is [string, string] => /^(METRIC|SPAN|ATTR_VIGIL)_/.test(e[0]) && typeof e[1] === 'string',
  );

  it('finds the names to check', () => {
    expect(names.filter(([k]) => k.startsWith('METRIC_'))).to.have.length.greaterThan(5);
    expect(names.filter(([k]) => k.startsWith('SPAN_'))).to.have.length.greaterThan(3);
    expect(names.filter(([k]) => k.startsWith('ATTR_VIGIL_'))).to.have.length.greaterThan(5);
  });

  for (const [constant, value] of names) {
    it(`names ${constant} (\`${value}\`)`, () => {
      expect(spans.has(value), `\`${value}\` in docs/telemetry.md`).to.equal(true);
    });
  }

  const SECONDS = new Set<string>([semconv.METRIC_STARTUP_DURATION, semconv.METRIC_PROBE_DURATION]);
  for (const [constant, value] of names.filter(([k]) => k.startsWith('METRIC_'))) {
    const prom = semconv.promName(value, SECONDS.has(value) ? 's' : undefined);
    it(`gives the Prometheus name of ${constant} (\`${prom}\`)`, () => {
      expect(spans.has(prom), `\`${prom}\` in docs/telemetry.md`).to.equal(true);
    });
  }

  it('gives the Prometheus label of every Vigil attribute', () => {
    const missing = names.filter(([k]) => k.startsWith('ATTR_VIGIL_')).map(([, v]) => semconv.promLabel(v)).filter((l) => !spans.has(l));
    expect(missing).to.deep.equal([]);
  });

  it('names the synthetic header and the instrumentation scope', () => {
    expect(spans.has(semconv.SYNTHETIC_HEADER)).to.equal(true);
    expect(spans.has(semconv.INSTRUMENTATION_SCOPE)).to.equal(true);
  });

  it('lists as "emitted today" exactly the instruments the SDK creates', () => {
    const created: string[] = [];
    const meter = {
      createObservableGauge: (name: string) => (created.push(name), {}),
      createHistogram: (name: string) => (created.push(name), {}),
      addBatchObservableCallback: () => undefined,
    } as unknown as Meter;
    registerStartupInstruments(meter, { routes: [] });
    const documented = firstTable(TELEMETRY, '### Emitted today').map(rowKey);
    expect([...documented].sort()).to.deep.equal([...created].sort());
  });
});

describe('docs/sdk.md', () => {
  /** Each manifest table of sdk.md and the zod object it documents. */
  const tables: Array<[string, Record<string, z.ZodType>]> = [
    ['### Top level', Manifest.shape],
    ['### `components.<name>`', Component.shape],
    ['### `routers[]`', RouterSpec.shape],
    ['### `endpoints[]`', Endpoint.out.shape],
    ['### `probe`', Probe.shape],
    ...DependencyCheck.options.map((o): [string, Record<string, z.ZodType>] => [`#### \`type: ${o.shape.type.value}\``, o.shape]),
    ['### `health`', HealthOptions.shape],
    ['### `shutdown`', ShutdownOptions.shape],
    ['### `telemetry`', TelemetryOptions.shape],
  ];

  it('documents the top-level keys and the component keys', () => {
    const spans = codeSpans(SDK);
    const keys = [...Object.keys(Manifest.shape), ...Object.keys(Component.shape)];
    expect(keys.filter((k) => !spans.has(k))).to.deep.equal([]);
  });

  for (const [heading, shape] of tables) {
    it(`${heading.replace(/^#+ /, '')}: one row per schema key, no invented ones`, () => {
      const documented = firstTable(SDK, heading).map(rowKey);
      expect([...documented].sort()).to.deep.equal(Object.keys(shape).sort());
    });

    it(`${heading.replace(/^#+ /, '')}: the defaults written are the schema's`, () => {
      const rows = new Map(firstTable(SDK, heading).map((r) => [rowKey(r), r]));
      for (const [key, schema] of Object.entries(shape)) {
        const parsed = schema.safeParse(undefined);
        const text = parsed.success && parsed.data !== undefined ? written(parsed.data) : undefined;
        if (text === undefined) continue;
        const cell = rows.get(key)?.[2] ?? '';
        expect(codeSpans(cell).has(text), `default of "${key}" under ${heading}: \`${text}\` in "${cell}"`).to.equal(true);
      }
    });
  }
});
