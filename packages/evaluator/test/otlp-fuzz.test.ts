/**
 * Fuzzing the evaluator's OTLP/HTTP receiver (`POST /v1/metrics`) with
 * fast-check, over a real evaluator (its HTTP server, receiver and signal
 * store) on 127.0.0.1: malformed JSON, truncated payloads (plain and gzip),
 * valid JSON of the wrong shape, wrong types deep inside data points, wrong
 * content types and oversized bodies; random and truncated protobuf, plain
 * and gzip, protobuf bombs, and the same requests in both encodings.
 *
 * Every bad request gets a 4xx with a google.rpc.Status in the request's
 * encoding (never a 5xx, never a hang);
 * valid-but-odd payloads get 200 with `partialSuccess` as the OTLP spec says
 * (rejected points counted, or 0 rejected and a warning); after every case a
 * valid payload is accepted and its signal is in the store; nothing escapes as
 * an uncaught exception or unhandled rejection.
 *
 * Reproducible: a fixed seed and number of runs per property (override with
 * VIGIL_FUZZ_SEED / VIGIL_FUZZ_RUNS); a failure prints the seed and the path
 * of the shrunk counterexample.
 */
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import fc from 'fast-check';
import { ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_ROUTE, ATTR_VIGIL_COMPONENT, ATTR_VIGIL_CRITICAL, METRIC_ROUTE_REGISTERED } from '@vigil/sdk/semconv';
import { startEvaluator, exampleEvaluatorConfig, type RunningEvaluator } from '../../../test/helpers/evaluator.js';
import { PROTOBUF_TYPE, responseOf, statusOf, toProtobuf } from '../../../test/helpers/otlp.js';
import { DELETE, fuzzSettings, mutate, pathsOf } from '../../../test/helpers/fuzz.js';

const { seed: SEED, runs: RUNS, title: FUZZ } = fuzzSettings(20_070_301);
const LIMIT = 64 * 1024;
/** The gRPC code of the google.rpc.Status the receiver answers with, by HTTP status. */
const GRPC_CODE: Record<number, number> = { 400: 3, 401: 16, 405: 12, 413: 8, 415: 12 };
/** A request with no answer after this long is a hang. */
const HANG_MS = 10_000;

interface Answer {
  status: number;
  type: string;
  body: any;
  raw: Buffer;
}

/** One POST with node:http (no keep-alive); fails on a hang. The server may answer 413 and close before all is sent. */
function post(url: string, body: Buffer | string, headers: Record<string, string>, o: { chunked?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(url, { method: 'POST', headers, agent: false }, (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(parts);
        const text = raw.toString('utf8');
        let parsed: any = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* keep the text */
        }
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: parsed, raw });
      });
      res.on('error', reject);
    });
    req.setTimeout(HANG_MS, () => req.destroy(new Error(`no answer within ${HANG_MS} ms: the receiver hangs`)));
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    const data = typeof body === 'string' ? Buffer.from(body) : body;
    if (o.chunked) {
      for (let i = 0; i < data.length; i += 16 * 1024) req.write(data.subarray(i, i + 16 * 1024));
      req.end();
    } else req.end(data);
  });
}

const kv = (key: string, value: object) => ({ key, value });

/** A valid ExportMetricsServiceRequest: one critical route, registered (value 1) or missing (0). */
function payload(o: { service?: string; route?: string; value?: number | string; timeUnixNano?: string } = {}) {
  return {
    resourceMetrics: [
      {
        resource: { attributes: [kv('service.name', { stringValue: o.service ?? 'fuzz-target' }), kv('service.instance.id', { stringValue: 'pod-1' })] },
        scopeMetrics: [
          {
            scope: { name: '@vigil/sdk' },
            metrics: [
              {
                name: METRIC_ROUTE_REGISTERED,
                gauge: {
                  dataPoints: [
                    {
                      attributes: [
                        kv(ATTR_HTTP_ROUTE, { stringValue: o.route ?? '/api/v1/auth/login' }),
                        kv(ATTR_HTTP_REQUEST_METHOD, { stringValue: 'POST' }),
                        kv(ATTR_VIGIL_COMPONENT, { stringValue: 'authentication' }),
                        kv(ATTR_VIGIL_CRITICAL, { boolValue: true }),
                      ],
                      timeUnixNano: o.timeUnixNano ?? `${BigInt(Date.now()) * 1_000_000n}`,
                      asInt: o.value ?? '1',
                    },
                  ],
                },
              },
            ],
          },
        ],
      },
    ],
  };
}
const VALID = JSON.stringify(payload());
const JSON_TYPE = { 'content-type': 'application/json' };
const POINT = ['resourceMetrics', 0, 'scopeMetrics', 0, 'metrics', 0, 'gauge', 'dataPoints', 0] as const;

const VALID_PATHS = pathsOf(payload());

/** JSON text with number literals JSON.stringify cannot write (`1e309`, `-0`, 400-digit integers) put in for marker strings. */
const RAW = ['1e309', '-1e309', '-0', '1e-400', '9'.repeat(400), '123456789012345678901234567890'] as const;
const rawMarker = (i: number) => `@@raw${i}@@`;
function toJsonText(doc: unknown): string {
  let text = JSON.stringify(doc) ?? 'null';
  RAW.forEach((literal, i) => (text = text.replaceAll(JSON.stringify(rawMarker(i)), literal)));
  return text;
}

/** A replacement value: any JSON, a deletion, a raw number literal, or the strings proto3 JSON gives special meaning. */
const replacement: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: fc.constant(DELETE) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: RAW.length - 1 }).map(rawMarker) },
  {
    weight: 2,
    arbitrary: fc.constantFrom('NaN', 'Infinity', '-Infinity', 'nan', '1.5', '', ' 1', '0x10', '1e5', '-1', '18446744073709551616', Number.MAX_VALUE, -Number.MAX_VALUE, 2 ** 53 + 2, 1.5, -1, 0, true, null, [], {}),
  },
);

describe(`sources/otlp: fuzzed bad input (${FUZZ})`, function () {
  this.timeout(300_000);
  let ev: RunningEvaluator;
  let url: string;
  const escaped: unknown[] = [];
  const onEscape = (err: unknown) => escaped.push(err);
  let canary = 0;
  let cases = 0;

  before(async () => {
    process.on('uncaughtException', onEscape);
    process.on('unhandledRejection', onEscape);
    ev = await startEvaluator(
      await exampleEvaluatorConfig({ source: { type: 'otlp', maxBodyBytes: LIMIT }, notifiers: { console: { type: 'console' } } }),
    );
    url = ev.otlpMetricsUrl;
  });

  after(async () => {
    await ev?.stop();
    process.off('uncaughtException', onEscape);
    process.off('unhandledRejection', onEscape);
    console.log(`      otlp fuzz: ${cases} fuzzed requests (seed ${SEED}), each followed by a valid payload that was stored`);
  });

  afterEach(() => {
    expect(escaped, 'uncaught exceptions or unhandled rejections').to.deep.equal([]);
  });

  /** A valid payload is accepted and its signal is in the evaluator's store. */
  async function stillServing(target: RunningEvaluator = ev): Promise<void> {
    const route = `/canary/${++canary}`;
    const res = await post(target.otlpMetricsUrl, JSON.stringify(payload({ service: 'fuzz-canary', route })), JSON_TYPE);
    expect(res.status, `a valid payload after a fuzzed one: ${JSON.stringify(res.body)}`).to.equal(200);
    expect(res.body).to.deep.equal({});
    const svc = target.evaluator.store.services().find((s) => s.service === 'fuzz-canary');
    const subjects = (svc?.components.authentication ?? []).map((s) => s.subject);
    expect(subjects, 'the valid payload\'s signal is in the store').to.include(`POST ${route}`);
  }

  /** A refusal: the status, a google.rpc.Status in JSON with its gRPC code and a non-empty reason matching `reason`. */
  function refused(res: Answer, status: number, reason: RegExp): void {
    expect(res.status, JSON.stringify(res.body)).to.equal(status);
    expect(res.type).to.match(/^application\/json/);
    expect(res.body?.code, JSON.stringify(res.body)).to.equal(GRPC_CODE[status]);
    expect(res.body?.message, JSON.stringify(res.body)).to.be.a('string').and.match(reason);
  }

  /** The same in protobuf: `Content-Type: application/x-protobuf` and a google.rpc.Status message. */
  function refusedInProtobuf(res: Answer, status: number, reason: RegExp): void {
    expect(res.status, res.raw.toString('hex')).to.equal(status);
    expect(res.type).to.equal('application/x-protobuf');
    const s = statusOf(res.raw);
    expect(s.code).to.equal(GRPC_CODE[status]);
    expect(s.message).to.match(reason);
  }

  /** 200 and an ExportMetricsServiceResponse in protobuf: empty, or a well-formed partial success. */
  function acceptedInProtobuf(res: Answer): Record<string, any> {
    expect(res.status, res.raw.toString('utf8')).to.equal(200);
    expect(res.type).to.equal('application/x-protobuf');
    const body = responseOf(res.raw);
    if (body.partialSuccess) expect(body.partialSuccess.errorMessage).to.be.a('string').and.not.equal('');
    return body;
  }

  /** 200 and either `{}` or a well-formed `partialSuccess` (rejectedDataPoints a uint64 string; a non-empty errorMessage). */
  function acceptedPerSpec(res: Answer): void {
    expect(res.status, JSON.stringify(res.body)).to.equal(200);
    expect(res.type).to.match(/^application\/json/);
    if (res.body && Object.keys(res.body).length === 0) return;
    expect(Object.keys(res.body)).to.deep.equal(['partialSuccess']);
    expect(res.body.partialSuccess.rejectedDataPoints).to.match(/^\d+$/);
    expect(res.body.partialSuccess.errorMessage).to.be.a('string').and.not.equal('');
  }

  async function check<T>(arb: fc.Arbitrary<T>, run: (input: T) => Promise<void>): Promise<void> {
    await fc.assert(
      fc.asyncProperty(arb, async (input) => {
        cases++;
        await run(input);
        await stillServing();
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: false },
    );
  }

  it('malformed JSON → 400 "malformed JSON: …"', async () => {
    const notJson = fc
      .oneof(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.string({ maxLength: 200 }).map((s) => `{${s}`),
        fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
        fc.constantFrom('', ' ', '{resourceMetrics: []}', "{'resourceMetrics':[]}", '{"resourceMetrics":[],}', 'NaN', 'undefined', '\uFEFF{}', '[' .repeat(20_000)),
      )
      .filter((s) => {
        try {
          JSON.parse(s.toString());
          return false;
        } catch {
          return true;
        }
      });
    await check(fc.tuple(notJson, fc.boolean()), async ([body, gzip]) => {
      const res = await post(url, gzip ? gzipSync(body) : body, gzip ? { ...JSON_TYPE, 'content-encoding': 'gzip' } : JSON_TYPE);
      refused(res, 400, /^malformed JSON: \S/);
    });
  });

  it('a valid payload cut at any offset → 400 (malformed JSON, or a gzip stream that ends early)', async () => {
    const gz = gzipSync(VALID);
    await check(fc.oneof(fc.integer({ min: 0, max: VALID.length - 1 }).map((at) => ({ gzip: false, at })), fc.integer({ min: 0, max: gz.length - 1 }).map((at) => ({ gzip: true, at }))), async ({ gzip, at }) => {
      if (gzip) {
        const res = await post(url, gz.subarray(0, at), { ...JSON_TYPE, 'content-encoding': 'gzip' });
        // A cut inside the 8-byte trailer still inflates the whole JSON: zlib reports the missing trailer as an early end.
        refused(res, 400, /^the gzip body could not be decompressed: \S/);
      } else {
        refused(await post(url, VALID.slice(0, at), JSON_TYPE), 400, /^malformed JSON: \S/);
      }
    });
  });

  it('valid JSON of the wrong shape, at the root or at any path of a valid payload → 400 naming the path, or 200 per spec', async () => {
    const doc = fc.oneof(
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => ({ v, path: [] as Array<string | number> })) },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => ({ v: { resourceMetrics: v }, path: ['resourceMetrics'] as Array<string | number> })) },
      { weight: 4, arbitrary: fc.tuple(fc.constantFrom(...VALID_PATHS), replacement).map(([path, value]) => ({ v: mutate(payload(), path, value), path })) },
    );
    let refusedCount = 0;
    let acceptedCount = 0;
    await check(doc, async ({ v }) => {
      const text = toJsonText(v);
      const res = await post(url, text, JSON_TYPE);
      if (res.status === 400) {
        refusedCount++;
        // The path of the first problem, then what was expected there.
        refused(res, 400, /^expected an OTLP ExportMetricsServiceRequest in JSON: (\(root\)|resourceMetrics[\w.[\]]*): .*expected/);
      } else acceptedPerSpec(res);
      if (res.status === 200) acceptedCount++;
    });
    console.log(`      wrong shapes: ${refusedCount} refused with 400, ${acceptedCount} accepted with 200`);
    expect(refusedCount, 'most wrong shapes are refused').to.be.greaterThan(RUNS / 4);
  });

  it('wrong types and odd values in a data point: 400 naming the field, or 200 with partialSuccess for the points that carry no number', async () => {
    type Case = { field: 'asInt' | 'asDouble' | 'timeUnixNano' | 'attributes' | 'flags'; value: unknown; expect: 'ok' | 'partial' | 'refused' };
    const cases: fc.Arbitrary<Case> = fc.oneof(
      // proto3 JSON: NaN and ±Infinity are doubles written as strings — accepted, but no finite value: rejected points.
      fc.constantFrom('NaN', 'Infinity', '-Infinity').map((value): Case => ({ field: 'asDouble', value, expect: 'partial' })),
      fc.constant<Case>({ field: 'asDouble', value: DELETE, expect: 'partial' }),
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((value): Case => ({ field: 'asDouble', value, expect: 'ok' })),
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((value): Case => ({ field: 'asDouble', value: String(value), expect: 'ok' })),
      fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }).map((value): Case => ({ field: 'asInt', value: String(value), expect: 'ok' })),
      fc.integer().map((value): Case => ({ field: 'asInt', value, expect: 'ok' })),
      // Not numbers at all, or numbers of the wrong kind: the request is malformed.
      fc.string({ maxLength: 12 }).filter((s) => !/^(-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|NaN|-?Infinity)$/.test(s)).map((value): Case => ({ field: 'asDouble', value, expect: 'refused' })),
      fc.string({ maxLength: 12 }).filter((s) => !/^-?\d+$/.test(s)).map((value): Case => ({ field: 'asInt', value, expect: 'refused' })),
      fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isSafeInteger(d)).map((value): Case => ({ field: 'asInt', value, expect: 'refused' })),
      fc.constantFrom(true, null, [], {}, rawMarker(0), rawMarker(1)).map((value): Case => ({ field: 'asDouble', value, expect: 'refused' })),
      fc.constantFrom(-1, 1.5, '-5', 'now', '1e18', true).map((value): Case => ({ field: 'timeUnixNano', value, expect: 'refused' })),
      fc.constantFrom('x', 5, { key: 7 }, [{ key: 'a', value: { stringValue: 5 } }], [{ key: 'a', value: 5 }]).map((value): Case => ({ field: 'attributes', value, expect: 'refused' })),
      fc.constantFrom(-1, 0.5, '1').map((value): Case => ({ field: 'flags', value, expect: 'refused' })),
    );
    await check(cases, async (c) => {
      // The value of asInt and asDouble is the only number: drop asInt when the case is about asDouble.
      let doc = c.field === 'asDouble' ? mutate(payload(), [...POINT, 'asInt'], DELETE) : payload();
      doc = mutate(doc, [...POINT, c.field], c.value);
      const res = await post(url, toJsonText(doc), JSON_TYPE);
      const where = `resourceMetrics[0].scopeMetrics[0].metrics[0].gauge.dataPoints[0].${c.field}`;
      if (c.expect === 'refused') refused(res, 400, new RegExp(`^expected an OTLP ExportMetricsServiceRequest in JSON: ${where.replace(/[.[\]]/g, '\\$&')}[\\w.[\\]]*: `));
      else if (c.expect === 'partial') {
        acceptedPerSpec(res);
        expect(res.body.partialSuccess).to.deep.equal({ rejectedDataPoints: '1', errorMessage: 'skipped data points of Vigil metrics: 1 without a finite asDouble or asInt' });
      } else {
        acceptedPerSpec(res);
        expect(res.body).to.deep.equal({});
      }
    });
  });

  it('bodies up to the default 4 MiB limit made of many bad items → 400 naming the first bad one (not a 500, not seconds of blocked event loop)', async () => {
    // Before: zod collected an issue per bad item — two million bad resourceMetrics held the event loop ~4 s,
    // 200,000 bad data points overflowed the stack inside zod and answered 500.
    const big = await startEvaluator(await exampleEvaluatorConfig({ source: { type: 'otlp' }, notifiers: { console: { type: 'console' } } }));
    const times: number[] = [];
    try {
      const BAD: Record<'resourceMetrics' | 'dataPoints' | 'attributes', unknown[]> = {
        resourceMetrics: [1, 'x', null, [], { resource: 5 }, { scopeMetrics: {} }],
        dataPoints: [1, null, [], { asDouble: 'x' }, { asInt: 1.5 }, { timeUnixNano: -1 }],
        attributes: [1, null, { key: 5 }, { key: 'a', value: [] }, { key: 'a', value: { stringValue: 5 } }],
      };
      const arb = fc.constantFrom('resourceMetrics', 'dataPoints', 'attributes').chain((where) =>
        fc.record({
          where: fc.constant(where),
          good: fc.integer({ min: 0, max: 50 }),
          bad: fc.constantFrom(...BAD[where]),
          fill: fc.double({ min: 0.5, max: 0.95, noNaN: true }),
        }),
      );
      await fc.assert(
        fc.asyncProperty(arb, async ({ where, good, bad, fill }) => {
          cases++;
          const point = payload().resourceMetrics[0]!.scopeMetrics[0]!.metrics[0]!.gauge.dataPoints[0]!;
          const item = where === 'resourceMetrics' ? payload().resourceMetrics[0] : where === 'dataPoints' ? point : point.attributes[0];
          const one = JSON.stringify(bad).length + 1;
          const count = Math.floor((4 * 1024 * 1024 * fill) / one);
          const list = `[${[...Array(good).fill(JSON.stringify(item)), ...Array(count).fill(JSON.stringify(bad))].join(',')}]`;
          const prefix = { resourceMetrics: ['resourceMetrics'], dataPoints: [...POINT.slice(0, -1)], attributes: [...POINT, 'attributes'] }[where];
          const text = toJsonText(mutate(payload(), prefix, '@@list@@')).replace('"@@list@@"', list);
          const started = performance.now();
          const res = await post(big.otlpMetricsUrl, text, JSON_TYPE);
          times.push(performance.now() - started);
          const path = prefix.reduce<string>((p, k) => (typeof k === 'number' ? `${p}[${k}]` : p ? `${p}.${k}` : k), '');
          refused(res, 400, new RegExp(`^expected an OTLP ExportMetricsServiceRequest in JSON: ${`${path}[${good}]`.replace(/[.[\]]/g, '\\$&')}[\\w.[\\]]*: [^;]*expected`));
          await stillServing(big);
        }),
        { seed: SEED, numRuns: Math.min(RUNS, 20) },
      );
    } finally {
      await big.stop();
    }
    times.sort((a, b) => a - b);
    console.log(`      ${times.length} bodies of ${(4 * 0.5).toFixed(0)}–${(4 * 0.95).toFixed(1)} MiB: answered in median ${times[times.length >> 1]!.toFixed(0)} ms, max ${times.at(-1)!.toFixed(0)} ms`);
  });

  it('a point stamped in the future does not pin its signal: the next point of the same key counts', async () => {
    // Any uint64 time from an hour ahead to the largest uint64: it is someone's wrong clock, not when the point was observed.
    const hourAheadNs = (BigInt(Date.now()) + 3_600_000n) * 1_000_000n;
    await check(fc.bigInt({ min: hourAheadNs, max: 2n ** 64n - 1n }), async (ns) => {
      const route = `/future/${canary}`;
      const ahead = await post(url, JSON.stringify(payload({ service: 'fuzz-clock', route, value: '0', timeUnixNano: String(ns) })), JSON_TYPE);
      expect(ahead.status).to.equal(200);
      const now = await post(url, JSON.stringify(payload({ service: 'fuzz-clock', route, value: '1' })), JSON_TYPE);
      expect(now.status).to.equal(200);
      expect(now.body).to.deep.equal({});
      const signal = ev.evaluator.store.services().find((s) => s.service === 'fuzz-clock')?.components.authentication?.find((s) => s.subject === `POST ${route}`);
      expect(signal, 'the signal of the second point').to.exist;
      expect(signal!.failing, 'the second point (registered) replaced the first (missing, stamped in the future)').to.equal(false);
      expect(signal!.observedAt).to.be.at.most(Date.now());
      // Accepted with a warning (OTLP partial success: 0 rejected, a message).
      expect(ahead.body.partialSuccess, JSON.stringify(ahead.body)).to.deep.equal({
        rejectedDataPoints: '0',
        errorMessage: 'data points stamped more than 60 s ahead of the evaluator\'s clock: 1 (the time they were received was used)',
      });
    });
  });

  it('wrong content types → 415 naming both encodings, and wrong encodings → 415', async () => {
    const types = fc.oneof(
      fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'json', 'application/json-seq', 'text/json', '*/*', 'application/grpc', 'application/x-protobuf2'),
      fc.stringMatching(/^[a-z]{1,10}\/[a-z+.-]{1,12}$/).filter((t) => !['application/json', 'application/protobuf', 'application/x-protobuf'].includes(t)),
    );
    const encodings = fc.constantFrom('br', 'deflate', 'compress', 'zstd', 'gzip, br', 'identity;q=0');
    const arb = fc.oneof(types.map((type) => ({ type, encoding: undefined as string | undefined })), encodings.map((encoding) => ({ type: 'application/json', encoding })));
    await check(fc.tuple(arb, fc.constantFrom(VALID, '', '{'), fc.boolean()), async ([{ type, encoding }, body, charset]) => {
      const headers: Record<string, string> = { 'content-type': charset ? `${type}; charset=utf-8` : type };
      if (encoding) headers['content-encoding'] = encoding;
      const res = await post(url, body, headers);
      if (encoding) refused(res, 415, /^unsupported Content-Encoding ".+": send gzip or none$/);
      else refused(res, 415, /^expected Content-Type: application\/x-protobuf \(OTLP\/HTTP protobuf\) or application\/json \(OTLP\/HTTP JSON\), got ".+"$/);
    });
  });

  it('bodies over maxBodyBytes → 413, declared or chunked, plain or as a gzip bomb', async () => {
    const arb = fc.record({
      size: fc.integer({ min: LIMIT + 1, max: 4 * LIMIT }),
      mode: fc.constantFrom('declared', 'chunked', 'gzip'),
      fill: fc.constantFrom(' ', 'a', '{', '['),
    });
    await check(arb, async ({ size, mode, fill }) => {
      const raw = Buffer.concat([Buffer.from('{"resourceMetrics":['), Buffer.alloc(size, fill)]);
      if (mode === 'gzip') {
        refused(await post(url, gzipSync(raw), { ...JSON_TYPE, 'content-encoding': 'gzip' }), 413, /^the decompressed request body is larger than the limit of 65536 bytes \(maxBodyBytes\)$/);
      } else if (mode === 'declared') {
        refused(await post(url, raw, JSON_TYPE), 413, /^the request body \(\d+ bytes\) is larger than the limit of 65536 bytes \(maxBodyBytes\)$/);
      } else {
        refused(await post(url, raw, JSON_TYPE, { chunked: true }), 413, /^the request body is larger than the limit of 65536 bytes \(maxBodyBytes\)$/);
      }
    });
  });

  // ── Protobuf ────────────────────────────────────────────────────────────────

  const VALID_PB = toProtobuf(payload());

  it('random bytes, a valid protobuf payload cut or with one byte changed, plain or gzip → 400 with a protobuf google.rpc.Status, or 200 with an ExportMetricsServiceResponse', async () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
      fc.integer({ min: 0, max: VALID_PB.length - 1 }).map((at) => VALID_PB.subarray(0, at)),
      fc.tuple(fc.integer({ min: 0, max: VALID_PB.length - 1 }), fc.integer({ min: 0, max: 255 })).map(([at, byte]) => {
        const b = Buffer.from(VALID_PB);
        b[at] = byte;
        return b;
      }),
      fc.constantFrom(Buffer.from(VALID), Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), Buffer.from([0x0f]), Buffer.alloc(50, 0xff)),
    );
    let refusedCount = 0;
    let acceptedCount = 0;
    await check(fc.tuple(bytes, fc.boolean()), async ([body, gzip]) => {
      const res = await post(url, gzip ? gzipSync(body) : body, gzip ? { ...PROTOBUF_TYPE, 'content-encoding': 'gzip' } : PROTOBUF_TYPE);
      if (res.status === 400) {
        refusedCount++;
        refusedInProtobuf(res, 400, /^(malformed protobuf: not an OTLP ExportMetricsServiceRequest: \S|expected an OTLP ExportMetricsServiceRequest in protobuf: \S)/);
      } else {
        acceptedCount++;
        acceptedInProtobuf(res);
      }
    });
    console.log(`      protobuf bytes: ${refusedCount} refused with 400, ${acceptedCount} accepted with 200`);
    expect(refusedCount, 'undecodable bodies are refused').to.be.greaterThan(0);
  });

  it('the same request in protobuf and in JSON → the same answer and the same signal', async () => {
    // proto3 JSON writes NaN and ±Infinity as strings, int64 as decimal strings.
    const jsonDouble = (d: number) => (Number.isFinite(d) ? d : String(d));
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const point = fc.oneof(
      fc.double().map((d) => ({ asDouble: jsonDouble(d) })),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((i) => ({ asInt: String(i) })),
    );
    // From 1 s after the epoch: an earlier stamp (ms 0) is replaced by the time the request was received.
    const arb = fc.record({ point, time: fc.bigInt({ min: 1_000_000_000n, max: nowNs }), flags: fc.constantFrom(0, 1), service: fc.boolean() });
    let n = 0;
    await check(arb, async ({ point: value, time, flags, service }) => {
      const route = `/both/${++n}`;
      const request = (svc: string) => {
        let doc = payload({ service: svc, route, timeUnixNano: String(time) });
        doc = mutate(doc, [...POINT, 'asInt'], DELETE);
        for (const [k, v] of Object.entries(value)) doc = mutate(doc, [...POINT, k], v);
        doc = mutate(doc, [...POINT, 'flags'], flags);
        // Without service.name: the points are skipped and counted as rejected, in both encodings.
        return service ? doc : mutate(doc, ['resourceMetrics', 0, 'resource', 'attributes', 0], DELETE);
      };
      const json = await post(url, JSON.stringify(request('fuzz-json')), JSON_TYPE);
      const proto = await post(url, toProtobuf(request('fuzz-proto')), PROTOBUF_TYPE);
      expect(proto.status).to.equal(json.status);
      expect(json.status, JSON.stringify(json.body)).to.equal(200);
      expect(acceptedInProtobuf(proto)).to.deep.equal(json.body);
      const stored = (svc: string) =>
        ev.evaluator.store
          .services()
          .find((s) => s.service === svc)
          ?.components.authentication?.filter((s) => s.subject === `POST ${route}`)
          .map(({ service: _s, instance: _i, ...rest }) => rest);
      expect(stored('fuzz-proto')).to.deep.equal(stored('fuzz-json'));
    });
  });

  it('protobuf bodies over maxBodyBytes → 413 with a protobuf google.rpc.Status, declared or as a gzip bomb', async () => {
    const arb = fc.record({ size: fc.integer({ min: LIMIT + 1, max: 4 * LIMIT }), gzip: fc.boolean(), fill: fc.constantFrom(0x00, 0x0a, 0xff) });
    await check(arb, async ({ size, gzip, fill }) => {
      const raw = Buffer.alloc(size, fill);
      if (gzip) refusedInProtobuf(await post(url, gzipSync(raw), { ...PROTOBUF_TYPE, 'content-encoding': 'gzip' }), 413, /^the decompressed request body is larger than the limit of 65536 bytes \(maxBodyBytes\)$/);
      else refusedInProtobuf(await post(url, raw, PROTOBUF_TYPE), 413, /^the request body \(\d+ bytes\) is larger than the limit of 65536 bytes \(maxBodyBytes\)$/);
    });
  });
});
