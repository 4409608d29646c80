/**
 * OTLP/HTTP protobuf for tests, with the same generated classes of the official
 * opentelemetry-proto definitions the receiver decodes with: a request in the
 * proto3 JSON shape → protobuf bytes, and the receiver's protobuf answers →
 * plain data. `google.rpc.Status` is declared here on its own (fields 1 and 2
 * of google/rpc/status.proto), so a wrong field number in the receiver shows.
 */
import { createRequire } from 'node:module';
import type * as Protobuf from 'protobufjs';

const require = createRequire(new URL('../../packages/evaluator/package.json', import.meta.url));

interface GeneratedType {
  fromObject(object: object): unknown;
  encode(message: unknown): { finish(): Uint8Array };
  decode(bytes: Uint8Array): unknown;
  toObject(message: unknown, options: Protobuf.IConversionOptions): Record<string, any>;
}

const generated = require('@opentelemetry/otlp-transformer/build/src/generated/root.js') as {
  opentelemetry: { proto: { collector: { metrics: { v1: { ExportMetricsServiceRequest: GeneratedType; ExportMetricsServiceResponse: GeneratedType } } } } };
};
const { ExportMetricsServiceRequest, ExportMetricsServiceResponse } = generated.opentelemetry.proto.collector.metrics.v1;
const pb = require('protobufjs') as typeof Protobuf;
const Status = new pb.Type('Status').add(new pb.Field('code', 1, 'int32')).add(new pb.Field('message', 2, 'string'));
new pb.Root().define('google.rpc').add(Status);

export const PROTOBUF_TYPE = { 'content-type': 'application/x-protobuf' } as const;

/** An `ExportMetricsServiceRequest` written in the proto3 JSON shape, as protobuf bytes. */
export function toProtobuf(request: object): Buffer {
  return Buffer.from(ExportMetricsServiceRequest.encode(ExportMetricsServiceRequest.fromObject(request)).finish());
}

/** A 200's body: `{}` or `{ partialSuccess: { rejectedDataPoints, errorMessage } }` (int64 as a string), as the JSON answer has it. */
export function responseOf(body: Buffer): Record<string, any> {
  const out = ExportMetricsServiceResponse.toObject(ExportMetricsServiceResponse.decode(body), { longs: String });
  // proto3 drops a zero: a partial success with 0 rejected points (a warning) reads as "0".
  if (out.partialSuccess) out.partialSuccess = { rejectedDataPoints: out.partialSuccess.rejectedDataPoints ?? '0', errorMessage: out.partialSuccess.errorMessage ?? '' };
  return out;
}

/** An error's body: a `google.rpc.Status`. */
export function statusOf(body: Buffer): { code: number; message: string } {
  const s = Status.toObject(Status.decode(body), { defaults: true }) as { code: number; message: string };
  return { code: s.code, message: s.message };
}
