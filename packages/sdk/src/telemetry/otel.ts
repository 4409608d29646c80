/**
 * OpenTelemetry wiring. If the app already started an OpenTelemetry SDK (its
 * own, or `--import @vigil/sdk/register`), Vigil uses it; otherwise it starts
 * one `NodeSDK` configured by the standard `OTEL_*` variables: metrics over
 * OTLP/HTTP (`http/protobuf` by default, `http/json` on request) and traces as
 * `OTEL_TRACES_EXPORTER` says.
 */
import { diag, DiagLogLevel, metrics, trace, type DiagLogger, type Meter, type ProxyTracerProvider, type Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { OTLPMetricExporter as OTLPMetricExporterJson } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as OTLPMetricExporterProto } from '@opentelemetry/exporter-metrics-otlp-proto';
import { envDetector, resourceFromAttributes, type ResourceDetector } from '@opentelemetry/resources';
import { PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { Instrumentation } from '@opentelemetry/instrumentation';
import { INSTRUMENTATION_SCOPE } from '../semconv.js';
import { VERSION } from '../version.js';

export interface TelemetryOptions {
  /** Resource attributes from the manifest; `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_SERVICE_NAME` win over them. */
  resource: Record<string, string>;
  /** Export interval when `OTEL_METRIC_EXPORT_INTERVAL` is not set. */
  exportIntervalMs: number;
  env: NodeJS.ProcessEnv;
  instrumentations?: Instrumentation[];
  /** Where OpenTelemetry's own warnings go (export failures), when Vigil owns the SDK. */
  logger?: Logger;
}

export interface Telemetry {
  meter: Meter;
  tracer: Tracer;
  /** True when Vigil started the SDK (and so shuts it down). */
  owned: boolean;
  /** Exports now; resolves after `timeoutMs` at the latest, never rejects. */
  flush(timeoutMs: number): Promise<void>;
  shutdown(timeoutMs: number): Promise<void>;
}

function isNoop(obj: object): boolean {
  return obj.constructor.name.startsWith('Noop');
}

/** True when an OpenTelemetry SDK already registered a meter or tracer provider in this process. */
export function otelAlreadyStarted(): boolean {
  const tracerDelegate = (trace.getTracerProvider() as ProxyTracerProvider).getDelegate?.() ?? trace.getTracerProvider();
  return !isNoop(metrics.getMeterProvider()) || !isNoop(tracerDelegate);
}

function metricExporter(env: NodeJS.ProcessEnv): PushMetricExporter | undefined {
  const exporters = (env.OTEL_METRICS_EXPORTER ?? 'otlp').split(',').map((s) => s.trim());
  if (exporters.includes('none')) return undefined;
  const protocol = (env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  if (protocol === 'http/json') return new OTLPMetricExporterJson();
  if (protocol !== 'http/protobuf') diag.warn(`Vigil: OTLP protocol "${protocol}" is not supported; using http/protobuf`);
  return new OTLPMetricExporterProto();
}

/** Builds the NodeSDK Vigil owns (also used by `@vigil/sdk/register`). */
export function createNodeSdk(options: TelemetryOptions): NodeSDK {
  const exporter = metricExporter(options.env);
  const interval = Number(options.env.OTEL_METRIC_EXPORT_INTERVAL) || options.exportIntervalMs;
  // Only the env detector: host and process detectors would put command lines
  // (which can hold secrets) and pids (unbounded cardinality) into every series.
  const detectors: ResourceDetector[] = [envDetector];
  return new NodeSDK({
    resource: resourceFromAttributes(options.resource),
    resourceDetectors: detectors,
    metricReaders: exporter
      ? [new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: interval, exportTimeoutMillis: Math.min(interval, 10_000) })]
      : [],
    instrumentations: options.instrumentations ?? [],
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** Providers as the global API holds them, whoever registered them. */
function providers(): Array<{ forceFlush?: () => Promise<void>; shutdown?: () => Promise<void> }> {
  const tp = trace.getTracerProvider() as ProxyTracerProvider;
  return [metrics.getMeterProvider(), tp.getDelegate?.() ?? tp] as never;
}

/**
 * OpenTelemetry's errors (a failing export, say) as pino warnings — the app
 * keeps working, so they are not its errors — the
 * same message at most once a minute: a dead collector must be visible in the
 * logs without flooding them.
 */
export function diagToPino(logger: Logger, now: () => number = Date.now): DiagLogger {
  const lastSeen = new Map<string, number>();
  const log = (message: string, ...args: unknown[]) => {
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

export function startTelemetry(options: TelemetryOptions): Telemetry {
  let sdk: NodeSDK | undefined;
  if (!otelAlreadyStarted() && options.env.OTEL_SDK_DISABLED !== 'true') {
    if (options.logger) diag.setLogger(diagToPino(options.logger), { logLevel: DiagLogLevel.ERROR, suppressOverrideMessage: true });
    sdk = createNodeSdk(options);
    sdk.start();
  }
  const bounded = async (ms: number, work: Promise<unknown>) => {
    await Promise.race([work.catch((err) => diag.error('Vigil: telemetry flush failed', err)), sleep(ms)]);
  };
  return {
    meter: metrics.getMeter(INSTRUMENTATION_SCOPE, VERSION),
    tracer: trace.getTracer(INSTRUMENTATION_SCOPE, VERSION),
    owned: sdk !== undefined,
    flush: (ms) => bounded(ms, Promise.all(providers().map((p) => p.forceFlush?.()))),
    shutdown: async (ms) => {
      if (sdk) await bounded(ms, sdk.shutdown());
    },
  };
}
