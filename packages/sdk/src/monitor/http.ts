/**
 * Synthetic requests to the app, over the real network stack: every one
 * carries the probe marker (so it never counts as business traffic) and a
 * W3C `traceparent` of the probe span (so the server span links to it).
 */
import { context, defaultTextMapSetter, trace, type Context } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { Answer } from './expect.js';
import { probeHeaders } from './marker.js';

export interface SyntheticRequest {
  baseUrl: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  json?: unknown;
  timeoutMs: number;
  signal: AbortSignal;
  /** The probe span's context; its trace id goes out as `traceparent`. */
  parent?: Context;
  /** What kind of probe this is: the value of `x-vigil-synthetic`, signed into the marker. */
  kind: string;
}

export interface SyntheticResponse extends Answer {
  durationMs: number;
}

/** A request that got no HTTP answer: refused, reset, timed out. `code` is low-cardinality. */
export class NoAnswerError extends Error {
  override readonly name = 'NoAnswerError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

const propagator = new W3CTraceContextPropagator();

/**
 * The most of an answer's body a probe reads. A probe checks a status and a small JSON body; a
 * target streaming an endless body must not fill the app's memory until the probe's timeout
 * (unbounded, one such probe buffered 1.3 GB in 5 s).
 */
export const MAX_PROBE_BODY_BYTES = 1024 * 1024;

export async function send(req: SyntheticRequest): Promise<SyntheticResponse> {
  const { got } = await import('got');
  const headers: Record<string, string> = { ...req.headers, ...probeHeaders(req.kind) };
  const ctx = req.parent ?? context.active();
  if (trace.getSpan(ctx)?.spanContext().traceId && trace.getSpan(ctx)!.isRecording()) propagator.inject(ctx, headers, defaultTextMapSetter);
  // The path is joined to the base URL's own path (`http://host/prefix` + `/api/x`).
  const url = new URL(req.baseUrl);
  url.pathname = `${url.pathname.replace(/\/$/, '')}${req.path.split('?')[0]}`;
  url.search = req.path.includes('?') ? req.path.slice(req.path.indexOf('?')) : '';
  const started = performance.now();
  try {
    // Inside the probe span's context, so an HTTP client instrumentation makes its span a child of it.
    let tooLarge = false;
    const res = await context.with(ctx, () => {
      const pending = got(url, {
        method: req.method as 'GET',
        headers,
        ...(req.json !== undefined ? { json: req.json } : {}),
        throwHttpErrors: false,
        followRedirect: false,
        retry: { limit: 0 },
        timeout: { request: req.timeoutMs },
        signal: req.signal,
        responseType: 'text',
      });
      pending.on('downloadProgress', (progress) => {
        if (progress.transferred > MAX_PROBE_BODY_BYTES && !tooLarge) {
          tooLarge = true;
          pending.cancel();
        }
      });
      return pending;
    }).catch((err: unknown) => {
      if (tooLarge) throw new NoAnswerError(`answer body over ${MAX_PROBE_BODY_BYTES} bytes: cut off`, 'VIGIL_BODY_TOO_LARGE');
      throw err;
    });
    const type = String(res.headers['content-type'] ?? '');
    let body: unknown = res.body;
    if (type.includes('json') && res.body) {
      try {
        body = JSON.parse(res.body);
      } catch {
        body = res.body; // "garbage" is an answer too: assertions on it will fail
      }
    }
    return { status: res.statusCode, body, headers: res.headers, durationMs: performance.now() - started };
  } catch (err) {
    if (err instanceof NoAnswerError) throw err;
    const code = req.signal.aborted ? 'VIGIL_TIMEOUT' : String((err as { code?: string }).code ?? 'ERR_REQUEST');
    const what = code === 'ETIMEDOUT' || code === 'VIGIL_TIMEOUT' ? `no answer within ${req.timeoutMs}ms` : `no answer (${code})`;
    throw new NoAnswerError(what, code === 'ETIMEDOUT' ? 'VIGIL_TIMEOUT' : code);
  }
}
