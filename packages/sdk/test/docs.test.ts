/**
 * Keeps the docs true to the code: every telemetry name of semconv.ts is in
 * docs/telemetry.md (with its Prometheus name), the three tables of emitted
 * metrics list exactly what the startup instruments, the runtime monitor and
 * the evaluator (packages/evaluator) create, and every manifest field of the
 * zod schema has its row (and its default) in docs/sdk.md — no more, no fewer.
 * (docs/evaluator.md is checked by packages/evaluator/test/docs.test.ts.)
 */
import { readFileSync } from 'node:fs';
import { trace, type Meter } from '@opentelemetry/api';
import { expect } from 'chai';
import pino from 'pino';
import { z } from 'zod';
import * as semconv from '../src/semconv.js';
import {
  BodyAssertion,
  Component,
  DependencyCheck,
  Endpoint,
  Flow,
  FlowStep,
  HealthOptions,
  Manifest,
  MonitorOptions,
  OpenApiSource,
  Probe,
  Recovery,
  RemovedRoute,
  RouterSpec,
  ShutdownOptions,
  StartupOptions,
  TelemetryOptions,
  UndocumentedRoutes,
} from '../src/manifest/schema.js';
import { Monitor } from '../src/monitor/monitor.js';
import { createRequestTracker } from '../src/monitor/requests.js';
import { registerStartupInstruments } from '../src/telemetry/instruments.js';
import { registerServedRoutes } from '../src/telemetry/served.js';
import { Duration } from '../src/util/duration.js';
import { registerInstruments as registerEvaluatorInstruments } from '../../evaluator/src/telemetry.js';
import { codeSpans, firstTable, rowKey, shapeOf, unwrapped } from '../../../test/helpers/docs.js';

const doc = (name: string) => readFileSync(new URL(`../../../docs/${name}`, import.meta.url), 'utf8');
const TELEMETRY = doc('telemetry.md');
const SDK = doc('sdk.md');


/** How a default is written in the docs, or undefined for values the tables describe in words. */
function written(value: unknown, schema: z.ZodType): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number') {
    if (unwrapped(schema) !== Duration) return String(value); // counts, ratios, status codes
    return value % 1000 === 0 ? `${value / 1000}s` : `${value}ms`;
  }
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return `[${value.join(', ')}]`;
  return undefined;
}

interface Instrument {
  name: string;
  kind: 'gauge' | 'histogram' | 'counter';
  unit: string | undefined;
}

/** A meter that only records which instruments are created. */
function recordingMeter(created: Instrument[]): Meter {
  const make = (kind: Instrument['kind']) => (name: string, options?: { unit?: string }) => {
    created.push({ name, kind, unit: options?.unit });
    return { record: () => undefined, add: () => undefined };
  };
  return {
    createObservableGauge: make('gauge'),
    createHistogram: make('histogram'),
    createCounter: make('counter'),
    createObservableCounter: make('counter'),
    addBatchObservableCallback: () => undefined,
  } as unknown as Meter;
}

/** The instruments of startup validation. */
function startupInstruments(): Instrument[] {
  const created: Instrument[] = [];
  registerStartupInstruments(recordingMeter(created), { routes: [] });
  return created;
}

/** The instruments of the served route set. */
function servedInstruments(): Instrument[] {
  const created: Instrument[] = [];
  registerServedRoutes(recordingMeter(created), { routes: [] }, {}, {});
  return created;
}

/** The instruments the runtime monitor creates (it is built, never started). */
function monitorInstruments(): Instrument[] {
  const created: Instrument[] = [];
  const monitor = new Monitor({
    manifest: Manifest.parse({ service: 'docs', components: { c: { policy: 'degrade' } } }),
    env: {},
    manifestUrl: new URL('file:///'),
    baseUrl: () => undefined,
    app: () => undefined,
    routes: () => [],
    tracer: trace.getTracer('docs'),
    meter: recordingMeter(created),
    logger: pino({ level: 'silent' }),
    requests: createRequestTracker({ windowMs: 1000, routes: () => [] }),
    onChange: () => undefined,
  });
  monitor.stop();
  return created;
}

/** The instruments of the evaluator's own telemetry. */
function evaluatorInstruments(): Instrument[] {
  const created: Instrument[] = [];
  registerEvaluatorInstruments(recordingMeter(created), () => [], () => []);
  return created;
}

/** The Prometheus name of an instrument: `_seconds` for unit `s`, `_total` for a counter (the Collector's prometheus_remote_write exporter). */
function promNameOf(i: Instrument): string {
  return `${semconv.promName(i.name, i.unit === 's' ? 's' : undefined)}${i.kind === 'counter' ? '_total' : ''}`;
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

  const startup = startupInstruments();
  const served = servedInstruments();
  const runtime = monitorInstruments();
  const evaluator = evaluatorInstruments();
  const instruments = new Map([...startup, ...served, ...runtime, ...evaluator].map((i) => [i.name, i]));

  it('finds the instruments to check', () => {
    expect(startup).to.have.length.greaterThan(5);
    expect(runtime).to.have.length.greaterThan(5);
    expect(evaluator).to.have.length.greaterThan(5);
  });

  for (const [constant, value] of names.filter(([k]) => k.startsWith('METRIC_'))) {
    const instrument = instruments.get(value);
    const prom = instrument ? promNameOf(instrument) : semconv.promName(value);
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

  const emitted: Array<[string, Instrument[]]> = [
    ['### Startup validation', startup],
    ['### Served routes (release over release)', served],
    ['### Runtime monitor', runtime],
    ['### Evaluator', evaluator],
  ];
  for (const [heading, created] of emitted) {
    const what = heading.replace(/^#+ /, '');
    it(`lists under "${what}" exactly the instruments it creates`, () => {
      const documented = firstTable(TELEMETRY, heading).map(rowKey);
      expect([...documented].sort()).to.deep.equal(created.map((i) => i.name).sort());
    });

    it(`gives under "${what}" each instrument's Prometheus name`, () => {
      for (const row of firstTable(TELEMETRY, heading)) {
        const instrument = instruments.get(rowKey(row));
        if (!instrument) continue; // reported by the test above
        expect(codeSpans(row[1] ?? '').has(promNameOf(instrument)), `\`${promNameOf(instrument)}\` in the row of ${instrument.name}`).to.equal(true);
      }
    });
  }
});

describe('docs/sdk.md', () => {
  /** Each manifest table of sdk.md and the zod object it documents. */
  const tables: Array<[string, Record<string, z.ZodType>]> = [
    ['### Top level', Manifest.shape],
    ['### `components.<name>`', Component.shape],
    ['### `routers[]`', RouterSpec.shape],
    ['### `endpoints[]`', Endpoint.out.shape],
    ['### `openapi`', OpenApiSource.out.shape],
    ['### `probe`', Probe.shape],
    ['#### `probe.expect`', shapeOf(Probe.shape.expect)],
    ['#### `expect.body[]`', BodyAssertion.shape],
    ...DependencyCheck.options.map((o): [string, Record<string, z.ZodType>] => [`#### \`type: ${o.shape.type.value}\``, o.shape]),
    ['### `flows.<name>`', Flow.shape],
    ['#### `steps[]`', FlowStep.shape],
    ['### `recovery`', Recovery.shape],
    ['### `startup`', StartupOptions.shape],
    ['### `health`', HealthOptions.shape],
    ['### `shutdown`', ShutdownOptions.shape],
    ['### `telemetry`', TelemetryOptions.shape],
    ['### `monitor`', MonitorOptions.shape],
    ['#### `monitor.intervals`', shapeOf(MonitorOptions.shape.intervals)],
    ['#### `monitor.process`', shapeOf(MonitorOptions.shape.process)],
    ['#### `monitor.errorRate`', shapeOf(MonitorOptions.shape.errorRate)],
    ['#### `monitor.integration`', shapeOf(MonitorOptions.shape.integration)],
    ...Object.entries(shapeOf(MonitorOptions.shape.integration)).map(([key, schema]): [string, Record<string, z.ZodType>] => [`##### \`integration.${key}\``, shapeOf(schema)]),
    ['### `undocumentedRoutes`', UndocumentedRoutes.shape],
    ['### `removedRoutes[]`', RemovedRoute.shape],
  ];

  it('flow steps expect what probes expect', () => {
    expect(Object.keys(shapeOf(FlowStep.shape.expect)).sort()).to.deep.equal(Object.keys(shapeOf(Probe.shape.expect)).sort());
  });

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
        const text = parsed.success && parsed.data !== undefined ? written(parsed.data, schema) : undefined;
        if (text === undefined) continue;
        const cell = rows.get(key)?.[2] ?? '';
        expect(codeSpans(cell).has(text), `default of "${key}" under ${heading}: \`${text}\` in "${cell}"`).to.equal(true);
      }
    });
  }
});
