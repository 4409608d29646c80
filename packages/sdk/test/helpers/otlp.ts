/**
 * A real OTLP/HTTP JSON endpoint on 127.0.0.1 that records what an exporter
 * sends, flattened to `{ metric, attributes, value, resource }` data points.
 */
import http from 'node:http';
import { close, listen } from './servers.js';

export interface Point {
  metric: string;
  value: number;
  attributes: Record<string, unknown>;
  resource: Record<string, unknown>;
  /** Milliseconds since the capture server started, when its export request arrived (one value per request). */
  at: number;
}

type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
type KeyValue = { key: string; value: AnyValue };

const flat = (kvs: KeyValue[] = []) =>
  Object.fromEntries(kvs.map((kv) => [kv.key, kv.value.stringValue ?? kv.value.boolValue ?? Number(kv.value.intValue ?? kv.value.doubleValue)]));

export interface OtlpCapture {
  url: string;
  points: Point[];
  spans: Array<{ name: string; attributes: Record<string, unknown>; parentSpanId?: string; spanId: string; status?: { code?: number } }>;
  latest(metric: string, match?: Record<string, unknown>): Point | undefined;
  stop(): Promise<void>;
}

export async function otlpCapture(): Promise<OtlpCapture> {
  const t0 = Date.now();
  const points: Point[] = [];
  const spans: OtlpCapture['spans'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}');
      // One time for the whole export: taken per point, an export read across a millisecond
      // boundary looked like two, and "the latest export" of a test lost its first metrics.
      const at = Date.now() - t0;
      for (const rm of body.resourceMetrics ?? []) {
        const resource = flat(rm.resource?.attributes);
        for (const sm of rm.scopeMetrics ?? []) {
          for (const m of sm.metrics ?? []) {
            const dps = m.gauge?.dataPoints ?? m.sum?.dataPoints ?? m.histogram?.dataPoints ?? [];
            for (const dp of dps) {
              points.push({ metric: m.name, value: Number(dp.asInt ?? dp.asDouble ?? dp.count), attributes: flat(dp.attributes), resource, at });
            }
          }
        }
      }
      for (const rs of body.resourceSpans ?? []) {
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) spans.push({ name: s.name, attributes: flat(s.attributes), parentSpanId: s.parentSpanId, spanId: s.spanId, status: s.status });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    points,
    spans,
    latest(metric, match = {}) {
      return points.filter((p) => p.metric === metric && Object.entries(match).every(([k, v]) => p.attributes[k] === v)).at(-1);
    },
    stop: () => close(server),
  };
}
