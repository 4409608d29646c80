/**
 * OTLP/HTTP protobuf for the receiver: decoding `ExportMetricsServiceRequest`,
 * encoding `ExportMetricsServiceResponse` and `google.rpc.Status`.
 *
 * The OTLP messages are the classes protobufjs generated from the official
 * opentelemetry-proto definitions, as `@opentelemetry/otlp-transformer`
 * shipped them up to 0.217 (pinned here; from 0.218 on it carries an encoder of
 * its own and no request decoder). `google.rpc.Status` is declared with
 * protobufjs' reflection (fields 1 and 2 of google/rpc/status.proto; `details`
 * is never written). Loaded on the first protobuf request: ~60 ms and 0.5 MB
 * of code a JSON-only deployment never needs.
 */
import { createRequire } from 'node:module';
import type * as Protobuf from 'protobufjs';

/** What the receiver reads: the request as plain data in the proto3 JSON shape (int64s as decimal strings, NaN/Infinity as strings). */
export interface OtlpProtobufCodec {
  /** Throws on bytes that are not an `ExportMetricsServiceRequest`. */
  decodeRequest(body: Uint8Array): unknown;
  encodeResponse(partialSuccess?: { rejectedDataPoints: string; errorMessage: string }): Uint8Array;
  encodeStatus(code: number, message: string): Uint8Array;
}

interface GeneratedType {
  decode(reader: Uint8Array): unknown;
  encode(message: object): { finish(): Uint8Array };
  toObject(message: unknown, options: Protobuf.IConversionOptions): Record<string, unknown>;
}

let codec: OtlpProtobufCodec | undefined;

export function otlpProtobuf(): OtlpProtobufCodec {
  if (codec) return codec;
  const require = createRequire(import.meta.url);
  const generated = require('@opentelemetry/otlp-transformer/build/src/generated/root.js') as {
    opentelemetry: { proto: { collector: { metrics: { v1: { ExportMetricsServiceRequest: GeneratedType; ExportMetricsServiceResponse: GeneratedType } } } } };
  };
  const pb = require('protobufjs') as typeof Protobuf;
  const { ExportMetricsServiceRequest, ExportMetricsServiceResponse } = generated.opentelemetry.proto.collector.metrics.v1;
  const Status = new pb.Type('Status').add(new pb.Field('code', 1, 'int32')).add(new pb.Field('message', 2, 'string'));
  new pb.Root().define('google.rpc').add(Status);
  // The shape proto3 JSON has, so one schema checks both encodings: 64-bit integers as strings, NaN and ±Infinity as strings.
  const asJson: Protobuf.IConversionOptions = { longs: String, bytes: String, json: true };
  codec = {
    decodeRequest: (body) => ExportMetricsServiceRequest.toObject(ExportMetricsServiceRequest.decode(body), asJson),
    encodeResponse: (partialSuccess) => ExportMetricsServiceResponse.encode(partialSuccess ? { partialSuccess } : {}).finish(),
    encodeStatus: (code, message) => Status.encode(Status.create({ code, message })).finish(),
  };
  return codec;
}
