/**
 * Plain OpenTelemetry, as an app would set it up without Vigil: the NodeSDK
 * with the http and express instrumentations and the exporters Vigil uses
 * (OTLP/HTTP protobuf for metrics and traces, batch span processor, periodic
 * metric reader). Loaded with `node --import` so that the ESM loader hook is in
 * place before express is imported, as `@vigil/sdk/register` does.
 *
 * Reads OTEL_EXPORTER_OTLP_ENDPOINT (via the exporters) and
 * OTEL_METRIC_EXPORT_INTERVAL (default 10 s, Vigil's default).
 */
import { register } from 'node:module';
import { NodeSDK, metrics } from '@opentelemetry/sdk-node';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';

register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);

const interval = Number(process.env.OTEL_METRIC_EXPORT_INTERVAL) || 10_000;
const sdk = new NodeSDK({
  serviceName: process.env.OTEL_SERVICE_NAME ?? 'marketedge-api',
  instrumentations: [new HttpInstrumentation(), new ExpressInstrumentation()],
  traceExporter: new OTLPTraceExporter(),
  metricReaders: [new metrics.PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), exportIntervalMillis: interval, exportTimeoutMillis: Math.min(interval, 10_000) })],
  logRecordProcessors: [],
});
sdk.start();
process.once('beforeExit', () => void sdk.shutdown());
