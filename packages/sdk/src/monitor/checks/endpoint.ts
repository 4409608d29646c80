/**
 * Level 2: a critical endpoint probed over the network, as a client would call
 * it. `fail` when it does not answer as expected or not within its timeout;
 * `warn` when it answers right but slower than its latency budget.
 */
import { context, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import type { Endpoint } from '../../manifest/schema.js';
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_VIGIL_COMPONENT,
  ATTR_VIGIL_SYNTHETIC,
  ATTR_ERROR_TYPE,
  SPAN_PROBE,
} from '../../semconv.js';
import { check } from '../expect.js';
import { NoAnswerError, send } from '../http.js';
import { fillDeep, fillHeaders, redact, TemplateError, type Scope } from '../template.js';
import type { CheckOutcome, MonitorCheck } from '../types.js';

export interface EndpointCheckOptions {
  component: string;
  endpoint: Endpoint;
  baseUrl: () => string | undefined;
  env: NodeJS.ProcessEnv;
  tracer: Tracer;
  intervalMs: number;
  /** Receives every probe's measurements, for the probe metrics. */
  record?: (m: { success: boolean; durationMs: number; statusCode?: number }) => void;
}

export function endpointCheck(o: EndpointCheckOptions): MonitorCheck {
  const { endpoint: e, component } = o;
  const name = `${e.method} ${e.route}`;
  return {
    id: `endpoint:${name}`,
    level: 2,
    component,
    healthKey: `${component}:endpoint ${name}`,
    intervalMs: e.probe.interval ?? o.intervalMs,
    // The scheduler's bound sits a little above the request timeout, which reports more precisely.
    timeoutMs: e.probe.timeout + 1000,
    run: (signal) => probe(o, name, signal),
  };
}

async function probe(o: EndpointCheckOptions, name: string, signal: AbortSignal): Promise<CheckOutcome> {
  const { endpoint: e } = o;
  const affectedEndpoints = [name];
  const baseUrl = o.baseUrl();
  if (!baseUrl) return { status: 'warn', output: 'no address to probe yet', affectedEndpoints };
  const attributes = { [ATTR_HTTP_ROUTE]: e.route, [ATTR_HTTP_REQUEST_METHOD]: e.method, [ATTR_VIGIL_COMPONENT]: o.component, [ATTR_VIGIL_SYNTHETIC]: true };
  const span = o.tracer.startSpan(SPAN_PROBE, { kind: SpanKind.INTERNAL, attributes });
  const scope: Scope = { env: o.env, secrets: new Set() };
  const started = performance.now();
  try {
    const headers = fillHeaders(e.probe.headers, scope);
    const json = e.probe.body === undefined ? undefined : fillDeep(e.probe.body, scope);
    const res = await send({ baseUrl, method: e.method, path: e.route, headers, json, timeoutMs: e.probe.timeout, signal, parent: trace.setSpan(context.active(), span), kind: 'probe' });
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.status);
    const failures = check(res, e.probe.expect);
    const slow = e.probe.latencyWarn !== undefined && res.durationMs > e.probe.latencyWarn;
    const outcome: CheckOutcome = {
      status: failures.length ? 'fail' : slow ? 'warn' : 'pass',
      observedValue: Math.round(res.durationMs),
      observedUnit: 'ms',
      details: { statusCode: res.status },
      ...(failures.length || slow ? { affectedEndpoints } : {}),
      ...(failures.length
        ? { output: redact(failures.join('; '), scope.secrets) }
        : slow
          ? { output: `answered in ${Math.round(res.durationMs)}ms, over the ${e.probe.latencyWarn}ms budget` }
          : {}),
    };
    o.record?.({ success: failures.length === 0, durationMs: res.durationMs, statusCode: res.status });
    if (failures.length) span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.output ?? 'probe failed' });
    return outcome;
  } catch (err) {
    const code = err instanceof NoAnswerError ? err.code : err instanceof TemplateError ? 'VIGIL_PROBE_CONFIG' : 'VIGIL_PROBE_ERROR';
    const output = redact(err instanceof Error ? err.message : String(err), scope.secrets);
    span.setAttribute(ATTR_ERROR_TYPE, code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: output });
    o.record?.({ success: false, durationMs: performance.now() - started });
    return { status: 'fail', output, affectedEndpoints, details: { errorType: code } };
  } finally {
    span.end();
  }
}
