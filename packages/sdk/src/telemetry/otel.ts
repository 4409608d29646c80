/**
 * OpenTelemetry wiring. If the app already started an OpenTelemetry SDK (its
 * own, or `--import @vigil/sdk/register`), Vigil uses it; otherwise it starts
 * OpenTelemetry's own providers configured by the standard `OTEL_*` variables:
 * metrics over OTLP/HTTP (`http/protobuf` by default, `http/json` on request),
 * traces as `OTEL_TRACES_EXPORTER` says, with credentials censored from every
 * span before it is exported (`RedactingSpanProcessor`). Exporters are
 * imported only when chosen, so an app pays at startup only for what it uses.
 */
import { context, diag, DiagLogLevel, metrics, propagation, trace, type DiagLogger, type Meter, type ProxyTracerProvider, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { defaultResource, detectResources, envDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { AggregationTemporality, InstrumentType, MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, ConsoleSpanExporter, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Logger } from 'pino';
import { INSTRUMENTATION_SCOPE } from '../semconv.js';
import { VERSION } from '../version.js';
import { RedactingSpanProcessor } from './redact.js';

export interface TelemetryOptions {
  /** Resource attributes from the manifest; `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_SERVICE_NAME` win over them. */
  resource: Record<string, string>;
  /** Export interval when `OTEL_METRIC_EXPORT_INTERVAL` is not set. */
  exportIntervalMs: number;
  env: NodeJS.ProcessEnv;
  /** Where OpenTelemetry's own errors go (export failures), when Vigil owns the SDK. */
  logger?: Logger;
}

export interface Telemetry {
  meter: Meter;
  tracer: Tracer;
  /** True when Vigil started a provider (and so shuts it down). */
  owned: boolean;
  /** Exports now; resolves after `timeoutMs` at the latest, never rejects. */
  flush(timeoutMs: number): Promise<void>;
  shutdown(timeoutMs: number): Promise<void>;
}

function isNoop(obj: object): boolean {
  return obj.constructor.name.startsWith('Noop');
}

/** Which providers an OpenTelemetry SDK already registered in this process. */
export function registeredProviders(): { meter: boolean; tracer: boolean } {
  const tracerDelegate = (trace.getTracerProvider() as ProxyTracerProvider).getDelegate?.() ?? trace.getTracerProvider();
  return { meter: !isNoop(metrics.getMeterProvider()), tracer: !isNoop(tracerDelegate) };
}

const list = (value: string | undefined, fallback: string) => (value || fallback).split(',').map((s) => s.trim());

function protocolOf(env: NodeJS.ProcessEnv, signal: 'METRICS' | 'TRACES'): 'http/json' | 'http/protobuf' {
  const protocol = (env[`OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`] ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  if (protocol === 'http/json') return protocol;
  if (protocol !== 'http/protobuf') diag.error(`Vigil: OTLP protocol "${protocol}" is not supported; using http/protobuf`);
  return 'http/protobuf';
}

/** The metric exporter `OTEL_METRICS_EXPORTER` names (default `otlp`), or none. */
export async function metricExporterFromEnv(env: NodeJS.ProcessEnv): Promise<PushMetricExporter | undefined> {
  if (!list(env.OTEL_METRICS_EXPORTER, 'otlp').includes('otlp')) return undefined;
  return protocolOf(env, 'METRICS') === 'http/json'
    ? new (await import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter()
    : new (await import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter();
}

/**
 * Gauges are exported as the last collection observed them: DELTA for the two
 * gauge instruments, the exporter's own choice for every other. With the
 * default (cumulative) the SDK re-exports every series a gauge ever observed,
 * at its last value, for the life of the process: a `vigil.check.reason` would
 * outlive its failure. OTLP gauge points carry no temporality, so nothing else
 * changes for a receiver.
 */
export function gaugeTemporality(type: InstrumentType, fallback?: (type: InstrumentType) => AggregationTemporality): AggregationTemporality {
  if (type === InstrumentType.OBSERVABLE_GAUGE || type === InstrumentType.GAUGE) return AggregationTemporality.DELTA;
  return fallback ? fallback(type) : AggregationTemporality.CUMULATIVE;
}

/** The exporter, with {@link gaugeTemporality} in front of its own temporality choice. */
function withGaugeTemporality(exporter: PushMetricExporter): PushMetricExporter {
  const own = exporter.selectAggregationTemporality?.bind(exporter);
  exporter.selectAggregationTemporality = (type) => gaugeTemporality(type, own);
  return exporter;
}

/** The span exporters `OTEL_TRACES_EXPORTER` names (default `otlp`): `otlp`, `console` or `none`. */
export async function spanExportersFromEnv(env: NodeJS.ProcessEnv): Promise<SpanExporter[]> {
  const names = list(env.OTEL_TRACES_EXPORTER, 'otlp');
  if (names.includes('none')) return [];
  const out: SpanExporter[] = [];
  if (names.includes('otlp')) {
    out.push(
      protocolOf(env, 'TRACES') === 'http/json'
        ? new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter()
        : new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter(),
    );
  }
  if (names.includes('console')) out.push(new ConsoleSpanExporter());
  return out;
}

/**
 * The resource: OpenTelemetry's defaults, then the manifest's attributes, then
 * `OTEL_RESOURCE_ATTRIBUTES` / `OTEL_SERVICE_NAME`. Only the env detector: host
 * and process detectors would put command lines (which can hold secrets) and
 * pids (unbounded cardinality) into every series.
 */
export function buildResource(attributes: Record<string, string>): Resource {
  return defaultResource().merge(resourceFromAttributes(attributes)).merge(detectResources({ detectors: [envDetector] }));
}

/** Longest OpenTelemetry message logged, in characters. */
const MAX_DIAG_MESSAGE = 300;

/**
 * OpenTelemetry's global error handler passes an error on as the JSON of all
 * its properties: the stack and, for a refused export, the endpoint's whole
 * answer (up to 4 MB: a proxy's error page, often different every time, so
 * every failed export would be a new message of its own, logged in full). Only
 * the error's first line and its code are kept, and any message is cut at 300
 * characters.
 */
export function summarizeDiagMessage(message: string): string {
  let text = message;
  if (message.startsWith('{"')) {
    try {
      const e = JSON.parse(message) as Record<string, unknown>;
      const head = typeof e.stack === 'string' ? e.stack : typeof e.message === 'string' ? e.message : undefined;
      if (head !== undefined) {
        const code = typeof e.code === 'string' || typeof e.code === 'number' ? String(e.code) : '';
        const first = head.split('\n')[0]!.trim();
        text = code && !first.includes(code) ? `${first} (code ${code})` : first;
      }
    } catch {
      // not an error's JSON: logged as it is
    }
  }
  return text.length > MAX_DIAG_MESSAGE ? `${text.slice(0, MAX_DIAG_MESSAGE)}…` : text;
}

/**
 * OpenTelemetry's errors (a failing export, say) as pino warnings — the app
 * keeps working, so they are not its errors — the
 * same message at most once a minute: a dead collector must be visible in the
 * logs without flooding them. Messages are shortened by
 * {@link summarizeDiagMessage} first, so an endpoint's error pages neither
 * reach the log nor defeat the once-a-minute rule.
 */
export function diagToPino(logger: Logger, now: () => number = Date.now): DiagLogger {
  const lastSeen = new Map<string, number>();
  const log = (raw: string, ...args: unknown[]) => {
    const message = summarizeDiagMessage(raw);
    const t = now();
    if ((lastSeen.get(message) ?? -Infinity) > t - 60_000) return;
    lastSeen.set(message, t);
    if (lastSeen.size > 100) lastSeen.clear();
    const detail = args.map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : '')).filter(Boolean).join(' ');
    logger.warn({ module: 'opentelemetry', detail: detail.slice(0, 500) }, message);
  };
  const ignore = () => undefined;
  // Only errors: the SDK's warnings are configuration chatter ("OTEL_TRACES_EXPORTER contains none").
  return { error: log, warn: ignore, info: ignore, debug: ignore, verbose: ignore };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** Providers as the global API holds them, whoever registered them. */
function providers(): Array<{ forceFlush?: () => Promise<void> }> {
  const tp = trace.getTracerProvider() as ProxyTracerProvider;
  return [metrics.getMeterProvider(), tp.getDelegate?.() ?? tp] as never;
}

/**
 * Starts what is missing: a meter provider unless one is registered, a tracer
 * provider (with context manager and W3C propagator) unless one is; an app's
 * own SDK is used as it is.
 */
export async function startTelemetry(options: TelemetryOptions): Promise<Telemetry> {
  const owned: Array<{ shutdown(): Promise<void> }> = [];
  /** Unregisters the globals Vigil set, once its providers are shut down (see `shutdown`). */
  const unregister: Array<() => void> = [];
  if (options.env.OTEL_SDK_DISABLED !== 'true') {
    const existing = registeredProviders();
    if (options.logger && !existing.meter && !existing.tracer) {
      diag.setLogger(diagToPino(options.logger), { logLevel: DiagLogLevel.ERROR, suppressOverrideMessage: true });
    }
    const resource = buildResource(options.resource);
    if (!existing.meter) {
      const interval = Number(options.env.OTEL_METRIC_EXPORT_INTERVAL) || options.exportIntervalMs;
      const exporter = await metricExporterFromEnv(options.env);
      const meterProvider = new MeterProvider({
        resource,
        readers: exporter
          ? [new PeriodicExportingMetricReader({ exporter: withGaugeTemporality(exporter), exportIntervalMillis: interval, exportTimeoutMillis: Math.min(interval, 10_000) })]
          : [],
      });
      metrics.setGlobalMeterProvider(meterProvider);
      owned.push(meterProvider);
      unregister.push(() => metrics.disable());
    }
    if (!existing.tracer) {
      const tracerProvider = new BasicTracerProvider({
        resource,
        // Every exporter gets spans with credentials censored (see redact.ts).
        spanProcessors: (await spanExportersFromEnv(options.env)).map((e) => new RedactingSpanProcessor(new BatchSpanProcessor(e))),
      });
      trace.setGlobalTracerProvider(tracerProvider);
      const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
      context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
      propagation.setGlobalPropagator(new W3CTraceContextPropagator());
      owned.push(tracerProvider);
      unregister.push(() => (trace.disable(), context.disable(), propagation.disable()));
    }
  }
  const bounded = async (ms: number, work: Promise<unknown>) => {
    await Promise.race([work.catch((err) => diag.error('Vigil: telemetry flush failed', err)), sleep(ms)]);
  };
  return {
    meter: metrics.getMeter(INSTRUMENTATION_SCOPE, VERSION),
    tracer: trace.getTracer(INSTRUMENTATION_SCOPE, VERSION),
    owned: owned.length > 0,
    flush: (ms) => bounded(ms, Promise.all(providers().map((p) => p.forceFlush?.()))),
    shutdown: async (ms) => {
      if (owned.length) await bounded(ms, Promise.all(owned.map((p) => p.shutdown())));
      // A shut-down provider left registered would be taken for the app's own by the next
      // startTelemetry in this process (a restart, a test), which would then export nothing.
      for (const u of unregister.splice(0)) u();
    },
  };
}
