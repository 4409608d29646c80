/**
 * `node --import @vigil/sdk/register server.js`: starts OpenTelemetry with the
 * http and express instrumentations before the app imports express, which ESM
 * requires (the instrumentation hooks must be in place first). `vigil()` then
 * finds this SDK and uses it instead of starting a second.
 *
 * Service name, version, environment and export interval come from the manifest
 * named by `VIGIL_MANIFEST` (default `./vigil.yaml`); `OTEL_SERVICE_NAME`,
 * `OTEL_RESOURCE_ATTRIBUTES` and `VIGIL_ENVIRONMENT` override them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { register } from 'node:module';
import { randomUUID } from 'node:crypto';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { parse } from 'yaml';
import { metrics } from '@opentelemetry/api';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { startTelemetry } from './telemetry/otel.js';
import { createLogger } from './logger.js';
import { ATTR_DEPLOYMENT_ENVIRONMENT_NAME, ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from './semconv.js';
import { probeKind } from './monitor/marker.js';
import { parseDuration } from './util/duration.js';

register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);

/** What the manifest says about the service, read leniently: vigil() reports a bad manifest properly. */
function manifestIdentity(): { resource: Record<string, string>; exportIntervalMs: number } {
  const file = process.env.VIGIL_MANIFEST ?? 'vigil.yaml';
  let doc: { service?: unknown; version?: unknown; environment?: unknown; telemetry?: { exportInterval?: unknown } } = {};
  try {
    if (existsSync(file)) doc = (parse(readFileSync(file, 'utf8')) as typeof doc) ?? {};
  } catch {
    doc = {};
  }
  const environment = process.env.VIGIL_ENVIRONMENT ?? (typeof doc.environment === 'string' ? doc.environment : undefined);
  const interval = doc.telemetry?.exportInterval;
  return {
    resource: {
      ...(typeof doc.service === 'string' ? { [ATTR_SERVICE_NAME]: doc.service } : {}),
      ...(typeof doc.version === 'string' ? { [ATTR_SERVICE_VERSION]: doc.version } : {}),
      ...(environment ? { [ATTR_DEPLOYMENT_ENVIRONMENT_NAME]: environment } : {}),
    },
    exportIntervalMs: (typeof interval === 'string' ? parseDuration(interval) : typeof interval === 'number' ? interval : undefined) ?? 10_000,
  };
}

if (process.env.OTEL_SDK_DISABLED !== 'true') {
  // Instrumentations first (they patch on import), then the providers they report to.
  const instrumentations = [
    new HttpInstrumentation({
      // Vigil's own probes are not business traffic.
      ignoreIncomingRequestHook: (req) => probeKind(req) !== undefined,
    }),
    new ExpressInstrumentation(),
  ];
  registerInstrumentations({ instrumentations });
  const identity = manifestIdentity();
  const telemetry = await startTelemetry({
    resource: { ...identity.resource, [ATTR_SERVICE_INSTANCE_ID]: randomUUID() },
    exportIntervalMs: identity.exportIntervalMs,
    env: process.env,
    logger: createLogger(process.env).child({ module: 'vigil-register' }),
  });
  // The instrumentations took their meter when they were created, before any meter provider
  // existed (the API has no proxy for meters, unlike tracers): without this, the http
  // instrumentation's own metrics (http.server.request.duration, …) were never exported.
  for (const i of instrumentations) i.setMeterProvider(metrics.getMeterProvider());
  process.once('beforeExit', () => void telemetry.shutdown(5000));
}
