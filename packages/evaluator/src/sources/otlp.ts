/**
 * The evaluator's own OTLP/HTTP metrics receiver: a plain node:http handler
 * that accepts `ExportMetricsServiceRequest` in protobuf
 * (`application/x-protobuf`, what OpenTelemetry's proto exporters and most
 * other languages' SDKs send by default) and in JSON (`application/json`),
 * gzipped or not, and turns gauge and sum data points into signals.
 *
 * Both encodings become one shape (proto3 JSON) checked by one schema, and are
 * answered in their own encoding as the OTLP spec says: `ExportMetricsServiceResponse`
 * (with `partial_success` when points were skipped), or a `google.rpc.Status`
 * with a 4xx/5xx. Bad input of any kind gets a 4xx with the reason and never
 * takes the receiver down; a sender whose batches keep being refused gets a
 * `rejected` signal (see {@link SenderTracker}).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createGunzip } from 'node:zlib';
import { z } from 'zod';
import {
  ATTR_DEPLOYMENT_ENVIRONMENT_NAME,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_ROUTE,
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ATTR_VIGIL_COMPONENT,
  METRIC_CHECK_REASON,
  METRIC_PROBE_DURATION,
  METRIC_ROUTE_REMOVAL_INTENDED,
  METRIC_ROUTE_SERVED,
  METRIC_ROUTE_SERVED_OVERFLOW,
  REJECT_REASON,
} from '@vigil/sdk/semconv';
import type { RouteSetReport } from '../releases/tracker.js';
import { tokenMatches } from '@vigil/sdk';
import type { OtlpSource } from '../config/schema.js';
import type { Signal } from '../signals/types.js';
import { attachReasons, isSignalMetric, toReason, toSignal, type Reason } from './mapping.js';
import { otlpProtobuf } from './otlp-protobuf.js';
import { MAX_SERVICES_PER_BATCH, SenderTracker, type RejectReason } from './senders.js';

export interface OtlpReceiverOptions {
  config: z.output<typeof OtlpSource>;
  env: NodeJS.ProcessEnv;
  /** Called once per accepted request that produced signals, with the time it was received. */
  onSignals: (signals: Signal[], receivedAt: number) => void;
  /** Probe latency histograms (`vigil.probe.duration`): cumulative count and sum (seconds) per endpoint. */
  onProbeLatency?: (points: ProbeLatencyPoint[]) => void;
  /** Served route sets (`vigil.route.served` and its companions), one per resource that reported one. */
  onRoutes?: (reports: RouteSetReport[]) => void;
  now?: () => number;
}

export interface OtlpReceiverStats {
  /** Requests handled. */
  requests: number;
  /** Requests answered with an error status. */
  rejected: number;
  /** Gauge and sum data points read from accepted requests. */
  points: number;
  /** When the last request was accepted. */
  lastReceivedAt?: number;
  /** Refused batches that count against their sender, by reason (`error.type`). */
  rejectedBy: Partial<Record<RejectReason, number>>;
  /** Senders with refused batches not yet followed by an accepted one. */
  senders?: number;
}

export interface ProbeLatencyPoint {
  service: string;
  instance: string;
  method: string;
  route: string;
  component: string;
  count: number;
  sumSeconds: number;
}

export interface OtlpReceiver {
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  stats(): OtlpReceiverStats;
  /** Failing `rejected` signals restored from the state file: the sender's next accepted batch clears them. */
  restoreRejected(signals: Signal[]): void;
}

/** The two encodings of OTLP/HTTP, by media type. */
const ENCODINGS: Record<string, Encoding> = { 'application/x-protobuf': 'protobuf', 'application/protobuf': 'protobuf', 'application/json': 'json' };
type Encoding = 'protobuf' | 'json';
const GZIP = new Set(['gzip', 'x-gzip']);

// ── The request's shape: lenient about unknown fields, strict about the types of those read ──
// A value of neither type gets the union's own message (zod's default says only "Invalid input").
const Int64 = z.union([z.number().int(), z.string().regex(/^-?\d+$/, 'expected an int64 as a decimal string')], { error: 'expected an int64: a whole number, or a decimal string' });
const UInt64 = z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/, 'expected a uint64 as a decimal string')], { error: 'expected a uint64: a whole number, or a decimal string' });
/** proto3 JSON: a number, or a string holding one (`"NaN"`, `"Infinity"`, `"1.5"`). */
const Double = z.union([z.number(), z.string().regex(/^(?:-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|NaN|-?Infinity)$/, 'expected a double')], { error: 'expected a double: a finite number, or a string ("1.5", "NaN", "Infinity")' });
/** What a JSON value is, for messages. */
function jsonKind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}
/**
 * An array whose items are checked in order up to the first bad one. zod's own
 * array collects an issue for every bad item: a 4 MiB body of two million bad
 * items held the event loop for 5 s, and 200,000 bad data points overflowed the
 * stack inside zod (a 500).
 */
function items<T extends z.ZodType>(item: T) {
  return z
    .custom<Array<z.output<T>>>((v) => Array.isArray(v), { error: (iss) => `expected array, received ${jsonKind(iss.input)}` })
    .superRefine((list, ctx) => {
      for (let i = 0; i < list.length; i++) {
        const result = item.safeParse(list[i]);
        if (result.success) continue;
        for (const issue of result.error.issues.slice(0, 5)) ctx.addIssue({ code: 'custom', message: issue.message, path: [i, ...issue.path] });
        return;
      }
    });
}
const AnyValue = z.looseObject({
  stringValue: z.string().optional(),
  boolValue: z.boolean().optional(),
  intValue: Int64.optional(),
  doubleValue: Double.optional(),
});
// proto3 leaves a field at its default off the wire, and its JSON may too: a missing key or name is "".
const Attributes = items(z.looseObject({ key: z.string().default(''), value: AnyValue.optional() })).optional();
const NumberDataPoint = z.looseObject({
  attributes: Attributes,
  timeUnixNano: UInt64.optional(),
  asInt: Int64.optional(),
  asDouble: Double.optional(),
  flags: z.number().int().nonnegative().optional(),
});
const NumberData = z.looseObject({ dataPoints: items(NumberDataPoint).optional() });
const HistogramDataPoint = z.looseObject({ attributes: Attributes, timeUnixNano: UInt64.optional(), count: UInt64.optional(), sum: Double.optional() });
const Metric = z.looseObject({
  name: z.string().default(''),
  gauge: NumberData.optional(),
  sum: NumberData.optional(),
  histogram: z.looseObject({ dataPoints: items(HistogramDataPoint).optional() }).optional(),
});
export const ExportMetricsServiceRequest = z.looseObject({
  resourceMetrics: items(
    z.looseObject({
      resource: z.looseObject({ attributes: Attributes }).optional(),
      scopeMetrics: items(z.looseObject({ metrics: items(Metric).optional() })).optional(),
    }),
  ).optional(),
});
type ExportRequest = z.output<typeof ExportMetricsServiceRequest>;

/** `DataPointFlags.FLAG_NO_RECORDED_VALUE`: the point marks a series that has no value (not a rejection). */
const FLAG_NO_RECORDED_VALUE = 1;

/**
 * A point stamped further ahead than this of the evaluator's clock was stamped by a wrong clock:
 * its receive time is used instead, or it would stand for its key (the store keeps the newest
 * point per key) until that time — a failure stamped next year would never clear.
 */
export const MAX_AHEAD_MS = 60_000;

// ── Helpers ───────────────────────────────────────────────────────────────

function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

function flatten(attributes: z.output<typeof Attributes>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { key, value } of attributes ?? []) {
    if (!value) continue;
    const v = value.stringValue ?? value.boolValue ?? value.intValue ?? value.doubleValue;
    if (v !== undefined) out[key] = String(v); // arrays, kvlists and bytes are not read
  }
  return out;
}

function nanosToMs(ns: string | number | undefined): number | undefined {
  if (ns === undefined) return undefined;
  const ms = typeof ns === 'number' ? Math.floor(ns / 1e6) : Number(BigInt(ns) / 1_000_000n);
  return ms > 0 ? ms : undefined;
}

function formatIssues(error: z.ZodError): string {
  const shown = error.issues.slice(0, 5).map((i) => {
    const path = i.path.reduce<string>((p, k) => (typeof k === 'number' ? `${p}[${k}]` : p ? `${p}.${String(k)}` : String(k)), '');
    return `${path || '(root)'}: ${i.message}`;
  });
  const more = error.issues.length > shown.length ? `; and ${error.issues.length - shown.length} more` : '';
  return shown.join('; ') + more;
}

/** `status` 0: the client went away before the body was complete (there is nobody to answer). */
type BodyResult = { ok: true; body: Buffer } | { ok: false; status: number; error: string };

/** Reads the body up to `limit` bytes, before and after gunzip; stops reading at the first byte over. */
function readBody(req: IncomingMessage, gzip: boolean, limit: number): Promise<BodyResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let raw = 0;
    let size = 0;
    let settled = false;
    const gunzip = gzip ? createGunzip() : undefined;
    const tooLarge = (what: string): BodyResult => ({ ok: false, status: 413, error: `${what} is larger than the limit of ${limit} bytes (maxBodyBytes)` });
    const finish = (result: BodyResult) => {
      if (settled) return;
      settled = true;
      req.off('data', onRaw);
      if (gunzip) {
        req.unpipe(gunzip);
        gunzip.off('data', onData);
        gunzip.on('error', () => undefined);
        gunzip.destroy();
      } else {
        req.off('data', onData);
      }
      if (!result.ok) req.pause(); // stop reading
      resolve(result);
    };
    const onRaw = (chunk: Buffer) => {
      raw += chunk.length;
      if (raw > limit) finish(tooLarge('the request body'));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return finish(tooLarge(gzip ? 'the decompressed request body' : 'the request body'));
      chunks.push(chunk);
    };
    req.on('data', onRaw);
    req.on('error', () => finish({ ok: false, status: 0, error: 'the client went away' }));
    req.on('close', () => {
      if (!req.complete) finish({ ok: false, status: 0, error: 'the client went away' });
    });
    if (gunzip) {
      gunzip.on('data', onData);
      gunzip.on('end', () => finish({ ok: true, body: Buffer.concat(chunks) }));
      gunzip.on('error', (err) => finish({ ok: false, status: 400, error: `the gzip body could not be decompressed: ${err.message}` }));
      req.pipe(gunzip);
    } else {
      req.on('data', onData);
      req.on('end', () => finish({ ok: true, body: Buffer.concat(chunks) }));
    }
  });
}

// ── The receiver ──────────────────────────────────────────────────────────

/** The gRPC code of the `google.rpc.Status` an error answers with, by HTTP status. */
const GRPC_CODE: Record<number, number> = { 400: 3, 401: 16, 405: 12, 413: 8, 415: 12, 500: 13 };

/** `service.name` of the first resources of a refused body that was read that far (bounded, untrusted: a label only). */
function servicesOf(body: unknown): string[] {
  const list = (body as { resourceMetrics?: unknown } | null)?.resourceMetrics;
  if (!Array.isArray(list)) return [];
  const out: string[] = [];
  for (const rm of list.slice(0, MAX_SERVICES_PER_BATCH)) {
    const attributes = (rm as { resource?: { attributes?: unknown } } | null)?.resource?.attributes;
    if (!Array.isArray(attributes)) continue;
    const name = attributes.find((a) => (a as { key?: unknown } | null)?.key === ATTR_SERVICE_NAME)?.value?.stringValue;
    if (typeof name === 'string') out.push(name);
  }
  return out;
}

/** Why a refusal happened, for the `rejected` signal; undefined when it is no fault of the sender's batch. */
function reasonOf(status: number, decoded: boolean): RejectReason | undefined {
  if (status === 415) return REJECT_REASON.unsupportedMediaType;
  if (status === 401) return REJECT_REASON.unauthorized;
  if (status === 413) return REJECT_REASON.tooLarge;
  if (status === 400) return decoded ? REJECT_REASON.invalid : REJECT_REASON.undecodable;
  return undefined; // 405 (not an export), 500 (the evaluator's fault)
}

export function createOtlpReceiver(opts: OtlpReceiverOptions): OtlpReceiver {
  const { config, env, onSignals, onProbeLatency, onRoutes } = opts;
  const now = opts.now ?? Date.now;
  const counters: OtlpReceiverStats = { requests: 0, rejected: 0, points: 0, rejectedBy: {} };
  const senders = new SenderTracker(config.rejectedAfter, (signals, at) => {
    try {
      onSignals(signals, at);
    } catch {
      // the store refused: the next refusal or acceptance says it again
    }
  });

  const write = (res: ServerResponse, status: number, type: string, body: Uint8Array | string, headers: Record<string, string>) => {
    if (res.headersSent || res.writableEnded || res.destroyed) return;
    res.writeHead(status, { 'content-type': type, 'content-length': String(Buffer.byteLength(body)), ...headers });
    res.end(body);
  };
  /** 200 with an `ExportMetricsServiceResponse` in the request's encoding. */
  const accept = (res: ServerResponse, encoding: Encoding, partialSuccess?: { rejectedDataPoints: string; errorMessage: string }) => {
    if (encoding === 'protobuf') return write(res, 200, 'application/x-protobuf', otlpProtobuf().encodeResponse(partialSuccess), {});
    write(res, 200, 'application/json', JSON.stringify(partialSuccess ? { partialSuccess } : {}), {});
  };
  /**
   * An error status with a `google.rpc.Status` in the request's encoding (JSON when it has none we speak).
   * `from` says who sent it, when the refusal counts against the sender.
   */
  const reject = (
    res: ServerResponse,
    encoding: Encoding | undefined,
    status: number,
    message: string,
    headers: Record<string, string> = {},
    from?: { req: IncomingMessage; services?: string[]; decoded?: boolean },
  ) => {
    counters.rejected++;
    const reason = reasonOf(status, from?.decoded ?? false);
    if (reason) counters.rejectedBy[reason] = (counters.rejectedBy[reason] ?? 0) + 1;
    if (from && reason) senders.rejected(from.services ?? [], peerOf(from.req), { status, reason }, now());
    const code = GRPC_CODE[status] ?? 2;
    if (encoding === 'protobuf') {
      try {
        return write(res, status, 'application/x-protobuf', otlpProtobuf().encodeStatus(code, message), headers);
      } catch {
        // fall through to JSON: an answer in the other encoding beats none
      }
    }
    write(res, status, 'application/json', JSON.stringify({ code, message }), headers);
  };

  /** Undefined when allowed, else the reason for a 401. */
  const unauthorized = (req: IncomingMessage): string | undefined => {
    if (!config.tokenEnv) return undefined;
    const expected = env[config.tokenEnv];
    if (!expected) return `ingest is closed: it needs a bearer token, and ${config.tokenEnv} is not set on the evaluator`;
    const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1]?.trim();
    if (bearer === undefined) return 'ingest needs a bearer token (Authorization: Bearer <token>)';
    return tokenMatches(bearer, expected) ? undefined : 'the bearer token is not valid';
  };

  const ingest = (req: IncomingMessage, res: ServerResponse, encoding: Encoding, request: ExportRequest, receivedAt: number) => {
    const signals: Signal[] = [];
    const explained: Reason[] = [];
    const latencies: ProbeLatencyPoint[] = [];
    const routeSets: RouteSetReport[] = [];
    const services = new Set<string>();
    let points = 0;
    const skipped = { noService: 0, noValue: 0 };
    // timeUnixNano is wall-clock time: ahead of both the receiver's clock and the wall clock is ahead.
    const latest = Math.max(receivedAt, Date.now()) + MAX_AHEAD_MS;
    let ahead = 0;
    for (const rm of request.resourceMetrics ?? []) {
      const resource = flatten(rm.resource?.attributes);
      const service = resource[ATTR_SERVICE_NAME];
      if (service) services.add(service);
      const environment = resource[ATTR_DEPLOYMENT_ENVIRONMENT_NAME];
      const from = service ? { service, instance: resource[ATTR_SERVICE_INSTANCE_ID] ?? '', ...(environment ? { environment } : {}) } : undefined;
      const version = resource[ATTR_SERVICE_VERSION];
      if (from && version && onRoutes) {
        const set = routeSetOf(rm.scopeMetrics, { ...from, version }, receivedAt);
        if (set) routeSets.push(set);
      }
      for (const sm of rm.scopeMetrics ?? []) {
        for (const m of sm.metrics ?? []) {
          if (m.name === METRIC_PROBE_DURATION && from && onProbeLatency) {
            for (const dp of m.histogram?.dataPoints ?? []) {
              const a = flatten(dp.attributes);
              const count = Number(dp.count ?? 0);
              const sum = Number(dp.sum ?? 0);
              if (!a[ATTR_HTTP_ROUTE] || !Number.isFinite(count) || !Number.isFinite(sum)) continue;
              latencies.push({ service: from.service, instance: from.instance, method: a[ATTR_HTTP_REQUEST_METHOD] ?? '', route: a[ATTR_HTTP_ROUTE], component: a[ATTR_VIGIL_COMPONENT] ?? '', count, sumSeconds: sum });
            }
          }
          for (const dp of [...(m.gauge?.dataPoints ?? []), ...(m.sum?.dataPoints ?? [])]) {
            points++;
            const isReason = m.name === METRIC_CHECK_REASON;
            if (!isSignalMetric(m.name) && !isReason) continue;
            if (((dp.flags ?? 0) & FLAG_NO_RECORDED_VALUE) !== 0) continue;
            if (!from) {
              skipped.noService++;
              continue;
            }
            const raw = dp.asDouble ?? dp.asInt;
            const value = raw === undefined ? NaN : Number(raw);
            if (!Number.isFinite(value)) {
              skipped.noValue++;
              continue;
            }
            let observedAt = nanosToMs(dp.timeUnixNano) ?? receivedAt;
            if (observedAt > latest) {
              ahead++;
              observedAt = receivedAt;
            }
            if (isReason) {
              const reason = toReason(flatten(dp.attributes), from, observedAt);
              if (reason) explained.push(reason);
              continue;
            }
            const signal = toSignal(m.name, value, flatten(dp.attributes), from, observedAt);
            if (signal) signals.push(signal);
          }
        }
      }
    }
    attachReasons(signals, explained);
    if (latencies.length > 0) {
      try {
        onProbeLatency?.(latencies);
      } catch {
        // latencies are for display: never a reason to refuse the request
      }
    }
    if (routeSets.length > 0) {
      try {
        onRoutes?.(routeSets);
      } catch {
        // route sets feed the release comparison: never a reason to refuse the request
      }
    }
    if (signals.length > 0) {
      try {
        onSignals(signals, receivedAt);
      } catch (err) {
        return reject(res, encoding, 500, `the signals could not be stored: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    senders.accepted([...services], peerOf(req), receivedAt);
    counters.points += points;
    counters.lastReceivedAt = receivedAt;
    const rejected = skipped.noService + skipped.noValue;
    if (rejected === 0 && ahead === 0) return accept(res, encoding);
    const reasons = [
      skipped.noService ? `${skipped.noService} without ${ATTR_SERVICE_NAME} in their resource` : '',
      skipped.noValue ? `${skipped.noValue} without a finite asDouble or asInt` : '',
    ].filter(Boolean);
    // OTLP: rejected points are counted; accepted with a warning is 0 rejected and a message.
    const messages = [
      rejected ? `skipped data points of Vigil metrics: ${reasons.join(', ')}` : '',
      ahead ? `data points stamped more than ${MAX_AHEAD_MS / 1000} s ahead of the evaluator's clock: ${ahead} (the time they were received was used)` : '',
    ].filter(Boolean);
    accept(res, encoding, { rejectedDataPoints: String(rejected), errorMessage: messages.join('; ') });
  };

  /** The body as one shape (proto3 JSON), or the reason it is not one. */
  const decode = (encoding: Encoding, body: Buffer): { ok: true; value: unknown } | { ok: false; error: string } => {
    try {
      if (encoding === 'protobuf') return { ok: true, value: otlpProtobuf().decodeRequest(body) };
      return { ok: true, value: JSON.parse(body.toString('utf8')) };
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      return { ok: false, error: encoding === 'protobuf' ? `malformed protobuf: not an OTLP ExportMetricsServiceRequest: ${why}` : `malformed JSON: ${why}` };
    }
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    counters.requests++;
    const type = mediaType(req.headers['content-type']);
    const encoding = ENCODINGS[type];
    try {
      if (req.method !== 'POST') return reject(res, encoding, 405, `the OTLP receiver answers POST only, not ${req.method}`, { allow: 'POST' });
      const denied = unauthorized(req);
      if (denied) return reject(res, encoding, 401, denied, { 'www-authenticate': 'Bearer' }, { req });
      if (!encoding) {
        return reject(
          res,
          undefined,
          415,
          `expected Content-Type: application/x-protobuf (OTLP/HTTP protobuf) or application/json (OTLP/HTTP JSON), got ${type ? JSON.stringify(type) : 'none'}`,
          {},
          { req },
        );
      }
      const contentEncoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
      const gzip = GZIP.has(contentEncoding);
      if (!gzip && contentEncoding !== 'identity') return reject(res, encoding, 415, `unsupported Content-Encoding ${JSON.stringify(contentEncoding)}: send gzip or none`, {}, { req });
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > config.maxBodyBytes) {
        return reject(res, encoding, 413, `the request body (${declared} bytes) is larger than the limit of ${config.maxBodyBytes} bytes (maxBodyBytes)`, { connection: 'close' }, { req });
      }
      readBody(req, gzip, config.maxBodyBytes)
        .then((body) => {
          if (!body.ok) {
            if (body.status === 0) counters.rejected++; // the client went away: nobody to answer
            // Whatever is left of the body stays unread: the connection closes after the answer.
            else reject(res, encoding, body.status, body.error, req.complete ? {} : { connection: 'close' }, { req });
            return;
          }
          const receivedAt = now();
          const parsed = decode(encoding, body.body);
          if (!parsed.ok) return reject(res, encoding, 400, parsed.error, {}, { req });
          const shape = ExportMetricsServiceRequest.safeParse(parsed.value);
          if (!shape.success) {
            const what = encoding === 'protobuf' ? 'protobuf' : 'JSON';
            return reject(res, encoding, 400, `expected an OTLP ExportMetricsServiceRequest in ${what}: ${formatIssues(shape.error)}`, {}, { req, services: servicesOf(parsed.value), decoded: true });
          }
          ingest(req, res, encoding, shape.data, receivedAt);
        })
        .catch((err: unknown) => reject(res, encoding, 500, `internal error: ${err instanceof Error ? err.message : String(err)}`));
    } catch (err) {
      reject(res, encoding, 500, `internal error: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  return { handler, stats: () => ({ ...counters, rejectedBy: { ...counters.rejectedBy }, senders: senders.size() }), restoreRejected: (signals) => senders.restore(signals) };
}

/**
 * The served route set one resource reported: present once the SDK observed
 * `vigil.route.served.overflow` (it does so, with 0, whenever it exports the set),
 * so an instance still starting (no set yet) reports none.
 */
function routeSetOf(scopes: NonNullable<ExportRequest['resourceMetrics']>[number]['scopeMetrics'], from: { service: string; instance: string; environment?: string; version: string }, receivedAt: number): RouteSetReport | undefined {
  const routes = new Map<string, string>();
  const intended = new Set<string>();
  let overflow: number | undefined;
  for (const sm of scopes ?? []) {
    for (const m of sm.metrics ?? []) {
      if (m.name !== METRIC_ROUTE_SERVED && m.name !== METRIC_ROUTE_SERVED_OVERFLOW && m.name !== METRIC_ROUTE_REMOVAL_INTENDED) continue;
      for (const dp of m.gauge?.dataPoints ?? []) {
        const value = Number(dp.asDouble ?? dp.asInt);
        if (!Number.isFinite(value) || ((dp.flags ?? 0) & FLAG_NO_RECORDED_VALUE) !== 0) continue;
        if (m.name === METRIC_ROUTE_SERVED_OVERFLOW) {
          overflow = Math.max(0, Math.floor(value));
          continue;
        }
        const a = flatten(dp.attributes);
        const method = a[ATTR_HTTP_REQUEST_METHOD];
        const route = a[ATTR_HTTP_ROUTE];
        if (!method || !route || value !== 1) continue;
        if (m.name === METRIC_ROUTE_SERVED) routes.set(`${method} ${route}`, a[ATTR_VIGIL_COMPONENT] ?? '');
        else intended.add(`${method} ${route}`);
      }
    }
  }
  if (overflow === undefined) return undefined;
  return { ...from, routes, intended, overflow, observedAt: receivedAt };
}

/** The peer's address (`::ffff:` taken off an IPv4 one): the sender's name when its body names none. */
function peerOf(req: IncomingMessage): string {
  const address = req.socket?.remoteAddress ?? 'unknown';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
