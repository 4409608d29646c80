/**
 * Level 2: a critical endpoint probed over the network, as a client would call
 * it. `fail` when it does not answer as expected or not within its timeout, or
 * when the answer came from a fallback (the app's route table says a catch-all
 * answers it, or an HTML page came back where JSON was asked for); `warn` when
 * it answers right but slower than its latency budget; `unknown` (not probed)
 * when the route has a parameter the manifest gives no value for, or its method
 * is not a safe one and the manifest does not opt in (see probe-policy.ts).
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
import { resolveRoute } from '../../startup/inventory.js';
import { check, type StatusRule } from '../expect.js';
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
  /** The app, to tell whether the endpoint's own route or a fallback answers the probe. */
  app?: () => unknown;
  /** Why the probe must not run (an unsafe method not opted in): the check then stays `unknown` and says so. */
  notProbed?: string;
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

/** The path to probe: `probe.path`, or the route with `probe.params` put in; or the parameters no value was given for. */
export function probePath(e: Pick<Endpoint, 'route' | 'probe'>): { path: string } | { missing: string[] } {
  if (e.probe.path) return { path: e.probe.path };
  const missing: string[] = [];
  const path = e.route.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (whole, name: string) => {
    const v = e.probe.params[name];
    if (v === undefined) missing.push(whole);
    return v === undefined ? whole : encodeURIComponent(v);
  });
  return missing.length ? { missing } : { path };
}

/** The status a probe expects: as written, else 2xx/3xx, or 401/403 for an auth endpoint probed without credentials. */
export function expectedStatus(e: Pick<Endpoint, 'probe'>): StatusRule {
  if (e.probe.expect.status !== undefined) return e.probe.expect.status;
  return e.probe.auth && Object.keys(e.probe.headers).length === 0 ? [401, 403] : 'success';
}

/** Why the answer looks like a fallback's, or undefined. */
function fallbackFailure(o: EndpointCheckOptions, headers: Record<string, string>, answer: { headers: Record<string, string | string[] | undefined> }): string | undefined {
  const e = o.endpoint;
  const app = o.app?.();
  if (app) {
    const r = resolveRoute(app, e.method, e.route, e.probe.params);
    if (r.verdict !== 'registered' && r.answeredBy) return `answered by a fallback, not by the endpoint's route: ${r.reason}`;
  }
  const type = String(answer.headers['content-type'] ?? '');
  const accept = Object.entries(headers).find(([k]) => k.toLowerCase() === 'accept')?.[1] ?? '';
  if (/^text\/html/i.test(type) && !/html|\*\/\*/i.test(accept)) return 'answered with an HTML page where JSON was asked for: a fallback (an SPA catch-all?) answered';
  return undefined;
}

async function probe(o: EndpointCheckOptions, name: string, signal: AbortSignal): Promise<CheckOutcome> {
  const { endpoint: e } = o;
  const affectedEndpoints = [name];
  if (o.notProbed) return { status: 'unknown', output: o.notProbed };
  const target = probePath(e);
  if ('missing' in target) return { status: 'unknown', output: `not probed: needs a value for ${target.missing.join(', ')} (probe.params or probe.path)` };
  const baseUrl = o.baseUrl();
  if (!baseUrl) return { status: 'warn', output: 'no address to probe yet', affectedEndpoints };
  const attributes = { [ATTR_HTTP_ROUTE]: e.route, [ATTR_HTTP_REQUEST_METHOD]: e.method, [ATTR_VIGIL_COMPONENT]: o.component, [ATTR_VIGIL_SYNTHETIC]: true };
  const span = o.tracer.startSpan(SPAN_PROBE, { kind: SpanKind.INTERNAL, attributes });
  const scope: Scope = { env: o.env, secrets: new Set() };
  const started = performance.now();
  try {
    // JSON unless the manifest asks otherwise: an HTML answer is then a fallback's.
    const given = fillHeaders(e.probe.headers, scope);
    const headers = Object.keys(given).some((k) => k.toLowerCase() === 'accept') ? given : { accept: 'application/json', ...given };
    const json = e.probe.body === undefined ? undefined : fillDeep(e.probe.body, scope);
    const res = await send({ baseUrl, method: e.method, path: target.path, headers, json, timeoutMs: e.probe.timeout, signal, parent: trace.setSpan(context.active(), span), kind: 'probe' });
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.status);
    const failures = check(res, { ...e.probe.expect, status: expectedStatus(e) });
    const fallback = fallbackFailure(o, headers, res);
    if (fallback) failures.unshift(fallback);
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
