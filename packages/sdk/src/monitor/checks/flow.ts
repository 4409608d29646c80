/**
 * Level 3: a business-critical flow — log in, keep the token, call the admin
 * endpoint with it — run as a real client would, step by step. Credentials come
 * from the environment and captured values are secrets: both are redacted from
 * every output. A custom function is the escape hatch for anything else.
 */
import { context, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import type { Flow, FlowContext } from '../../manifest/schema.js';
import { ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_VIGIL_CHECK, ATTR_VIGIL_COMPONENT, ATTR_VIGIL_SYNTHETIC, SPAN_FLOW, SPAN_PROBE } from '../../semconv.js';
import { check, valueAt } from '../expect.js';
import { NoAnswerError, send } from '../http.js';
import { fill, fillDeep, fillHeaders, redact, type Scope } from '../template.js';
import type { CheckOutcome, MonitorCheck } from '../types.js';

const SECRET_NAME = /PASS|TOKEN|SECRET|KEY|CREDENTIAL/i;
const SECRET_HEADER = /^(authorization|cookie|x-api-key|proxy-authorization)$/i;

export interface FlowCheckOptions {
  component: string;
  name: string;
  flow: Flow;
  baseUrl: () => string | undefined;
  env: NodeJS.ProcessEnv;
  tracer: Tracer;
  intervalMs: number;
}

export function flowCheck(o: FlowCheckOptions): MonitorCheck {
  const stepsTimeout = (o.flow.steps ?? []).reduce((sum, s) => sum + s.timeout, 0);
  return {
    id: `flow:${o.component}/${o.name}`,
    level: 3,
    component: o.component,
    healthKey: `${o.component}:flow ${o.name}`,
    intervalMs: o.flow.interval ?? o.intervalMs,
    timeoutMs: (stepsTimeout || 10_000) + 1000,
    run: (signal) => runFlow(o, signal),
  };
}

async function runFlow(o: FlowCheckOptions, signal: AbortSignal): Promise<CheckOutcome> {
  const baseUrl = o.baseUrl();
  if (!baseUrl) return { status: 'warn', output: 'no address to probe yet' };
  const flowSpan = o.tracer.startSpan(SPAN_FLOW, { attributes: { [ATTR_VIGIL_CHECK]: o.name, [ATTR_VIGIL_COMPONENT]: o.component, [ATTR_VIGIL_SYNTHETIC]: true } });
  const flowCtx = trace.setSpan(context.active(), flowSpan);
  const scope: Scope = { env: o.env, vars: {}, secrets: new Set() };
  const started = performance.now();
  const fail = (output: string, affected?: string) => {
    const safe = redact(output, scope.secrets);
    flowSpan.setStatus({ code: SpanStatusCode.ERROR, message: safe });
    return { status: 'fail' as const, output: safe, observedValue: Math.round(performance.now() - started), observedUnit: 'ms', ...(affected ? { affectedEndpoints: [affected] } : {}) };
  };
  try {
    if (o.flow.check) {
      // A custom flow's credentials are not declared: redact the headers it sends and secret-looking variables.
      for (const [name, value] of Object.entries(o.env)) if (value && SECRET_NAME.test(name)) scope.secrets.add(value);
      const request: FlowContext['request'] = async (method, path, options = {}) => {
        for (const [name, value] of Object.entries(options.headers ?? {})) if (SECRET_HEADER.test(name)) scope.secrets.add(value.replace(/^Bearer\s+/i, ''));
        const res = await send({ baseUrl, method, path, headers: options.headers ?? {}, json: options.json, timeoutMs: 5000, signal, parent: flowCtx, kind: 'flow' });
        return { status: res.status, body: res.body, headers: res.headers };
      };
      const result = await o.flow.check({ request, env: o.env, signal });
      if (result === false) return fail('flow returned false');
      return { status: 'pass', observedValue: Math.round(performance.now() - started), observedUnit: 'ms' };
    }
    for (const step of o.flow.steps ?? []) {
      const path = fill(step.path, scope);
      const where = `${step.method} ${step.path}`;
      const span = o.tracer.startSpan(SPAN_PROBE, { attributes: { [ATTR_HTTP_REQUEST_METHOD]: step.method, [ATTR_VIGIL_CHECK]: `${o.name}/${step.name}`, [ATTR_VIGIL_SYNTHETIC]: true } }, flowCtx);
      try {
        const res = await send({
          baseUrl,
          method: step.method,
          path,
          headers: fillHeaders(step.headers, scope),
          json: step.body === undefined ? undefined : fillDeep(step.body, scope),
          timeoutMs: step.timeout,
          signal,
          parent: trace.setSpan(flowCtx, span),
          kind: 'flow',
        });
        span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.status);
        const failures = check(res, step.expect);
        if (failures.length) {
          span.setStatus({ code: SpanStatusCode.ERROR });
          return fail(`step ${step.name} (${where}) ${failures.join('; ')}`, where);
        }
        for (const [name, at] of Object.entries(step.capture)) {
          const value = valueAt(res.body, at);
          if (value === undefined || value === null) return fail(`step ${step.name} (${where}) captured nothing at ${at}`, where);
          const text = typeof value === 'string' ? value : JSON.stringify(value);
          scope.vars![name] = text;
          scope.secrets.add(text);
        }
      } catch (err) {
        span.setAttribute(ATTR_ERROR_TYPE, err instanceof NoAnswerError ? err.code : 'VIGIL_PROBE_ERROR');
        span.setStatus({ code: SpanStatusCode.ERROR });
        return fail(`step ${step.name} (${where}): ${err instanceof Error ? err.message : String(err)}`, where);
      } finally {
        span.end();
      }
    }
    return { status: 'pass', observedValue: Math.round(performance.now() - started), observedUnit: 'ms' };
  } catch (err) {
    return fail(err instanceof Error ? err.message : String(err));
  } finally {
    flowSpan.end();
  }
}
