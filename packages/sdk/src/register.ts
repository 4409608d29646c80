/**
 * `node --import @vigil/sdk/register server.js`: starts OpenTelemetry with the
 * http and express instrumentations before the app imports express, which ESM
 * requires (the instrumentation hooks must be in place first). `vigil()` then
 * finds this SDK and uses it instead of starting a second.
 *
 * Service name and version come from `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`,
 * or from the manifest named by `VIGIL_MANIFEST` (default `./vigil.yaml`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { register } from 'node:module';
import { randomUUID } from 'node:crypto';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { parse } from 'yaml';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { startTelemetry } from './telemetry/otel.js';
import { createLogger } from './logger.js';
import { ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION, SYNTHETIC_HEADER } from './semconv.js';

register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);

function manifestIdentity(): Record<string, string> {
  const file = process.env.VIGIL_MANIFEST ?? 'vigil.yaml';
  if (!existsSync(file)) return {};
  try {
    const doc = parse(readFileSync(file, 'utf8')) as { service?: unknown; version?: unknown };
    return {
      ...(typeof doc.service === 'string' ? { [ATTR_SERVICE_NAME]: doc.service } : {}),
      ...(typeof doc.version === 'string' ? { [ATTR_SERVICE_VERSION]: doc.version } : {}),
    };
  } catch {
    return {}; // vigil() reports a bad manifest properly; here it only names the service
  }
}

// Instrumentations first (they patch on import), then the providers they report to.
registerInstrumentations({
  instrumentations: [
    new HttpInstrumentation({
      // Vigil's own probes are not business traffic.
      ignoreIncomingRequestHook: (req) => req.headers[SYNTHETIC_HEADER] !== undefined,
    }),
    new ExpressInstrumentation(),
  ],
});
const telemetry = await startTelemetry({
  resource: { ...manifestIdentity(), [ATTR_SERVICE_INSTANCE_ID]: randomUUID() },
  exportIntervalMs: 10_000,
  env: process.env,
  logger: createLogger(process.env).child({ module: 'vigil-register' }),
});
process.once('beforeExit', () => void telemetry.shutdown(5000));
