/**
 * Redaction: the span processor in front of the real OTLP/HTTP JSON exporter
 * (what reaches the wire is parsed and searched), the query-string and
 * attribute-key rules, and Vigil's logger (paths, query strings, the values
 * of credential variables).
 */
import http from 'node:http';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { SpanStatusCode } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createLogger, scrubLine, secretValues } from '../src/logger.js';
import { isSecretKey, redactQueries, redactQueryString, RedactingSpanProcessor, redactText } from '../src/telemetry/redact.js';
import { close, listen } from './helpers/servers.js';

const SECRET = 'S3cr3t-unit-9f1c2e';

describe('redaction: query strings and attribute keys', () => {
  const queries: Array<[string, string]> = [
    ['token=abc&page=2', 'token=[redacted]&page=2'],
    ['page=2&access_token=abc', 'page=2&access_token=[redacted]'],
    ['api_key=k&apiKey=k2&X-Api-Key=k3', 'api_key=[redacted]&apiKey=[redacted]&X-Api-Key=[redacted]'],
    ['password=p&passwd=p&pwd=p&secret=s', 'password=[redacted]&passwd=[redacted]&pwd=[redacted]&secret=[redacted]'],
    ['code=oauth-code&state=xyz', 'code=[redacted]&state=xyz'],
    ['session=s&sessionid=s2&auth=a&signature=g&credential=c&jwt=j', 'session=[redacted]&sessionid=[redacted]&auth=[redacted]&signature=[redacted]&credential=[redacted]&jwt=[redacted]'],
    ['%74oken=encoded-name', '%74oken=[redacted]'],
    ['q=hello&sort=asc&flag', 'q=hello&sort=asc&flag'],
    ['token=&page=1', 'token=&page=1'],
  ];
  for (const [input, expected] of queries) {
    it(`url.query ${input} → ${expected}`, () => expect(redactQueryString(input)).to.equal(expected));
  }

  const texts: Array<[string, string]> = [
    ['http://api:8000/v1/users?token=abc&page=2', 'http://api:8000/v1/users?token=[redacted]&page=2'],
    ['/callback?code=xyz#frag', '/callback?code=[redacted]#frag'],
    ['step flags (GET /x?token=abc) failed', 'step flags (GET /x?token=[redacted]) failed'],
    ['{"url":"/x?key=abc","n":1}', '{"url":"/x?key=[redacted]","n":1}'],
    ['{"msg":"quoted \\"/x?token=abc\\" here"}', '{"msg":"quoted \\"/x?token=[redacted]\\" here"}'],
    // A manifest placeholder is not a secret: it stays readable.
    ['GET /flags?token=${token}&k=${env:API_KEY}', 'GET /flags?token=${token}&k=${env:API_KEY}'],
    ['no query here, token=abc is prose', 'no query here, token=abc is prose'],
    ['/search?q=password', '/search?q=password'],
  ];
  for (const [input, expected] of texts) {
    it(`text ${input} → ${expected}`, () => expect(redactQueries(input)).to.equal(expected));
  }

  const urls: Array<[string, string]> = [
    ['export to http://user:p4ss@collector:4318/v1/metrics failed', 'export to http://[redacted]@collector:4318/v1/metrics failed'],
    ['postgres://app:s3cret@db/shop?sslmode=require&password=x', 'postgres://[redacted]@db/shop?sslmode=require&password=[redacted]'],
    ['mail admin@example.com, see https://example.com/a@b', 'mail admin@example.com, see https://example.com/a@b'],
  ];
  for (const [input, expected] of urls) {
    it(`text ${input} → ${expected}`, () => expect(redactText(input)).to.equal(expected));
  }

  it('knows credential attribute keys, and leaves the others', () => {
    for (const k of ['http.request.header.authorization', 'http.request.header.cookie', 'http.response.header.set-cookie', 'http.request.header.x-api-key', 'http.request.header.proxy-authorization', 'db.password', 'app.token', 'app.access_token', 'app.api_key', 'secret']) {
      expect(isSecretKey(k), k).to.equal(true);
    }
    for (const k of ['url.full', 'url.query', 'http.route', 'vigil.check', 'vigil.route.count', 'http.request.header.accept', 'token.count', 'user_agent.original']) {
      expect(isSecretKey(k), k).to.equal(false);
    }
  });
});

describe('redaction: the span processor in front of the OTLP/HTTP JSON exporter', () => {
  let server: http.Server;
  let url: string;
  const bodies: string[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString('utf8'));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    url = `http://127.0.0.1:${await listen(server)}/v1/traces`;
  });
  after(() => close(server));

  type OtlpKv = { key: string; value: { stringValue?: string; arrayValue?: { values: Array<{ stringValue?: string }> }; intValue?: number } };
  type OtlpSpan = { name: string; traceId: string; spanId: string; attributes: OtlpKv[]; status: { code?: number; message?: string }; events: Array<{ name: string; attributes: OtlpKv[] }>; links: Array<{ attributes: OtlpKv[] }> };
  const flat = (kvs: OtlpKv[]) => Object.fromEntries(kvs.map((kv) => [kv.key, kv.value.stringValue ?? kv.value.arrayValue?.values.map((v) => v.stringValue) ?? kv.value.intValue]));

  it('exports every span with credentials censored and everything else as recorded', async () => {
    bodies.length = 0;
    const seen = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      // A processor after ours sees the span itself: what was set at the start is censored there too.
      spanProcessors: [new RedactingSpanProcessor(new SimpleSpanProcessor(new OTLPTraceExporter({ url }))), new SimpleSpanProcessor(seen)],
    });
    const tracer = provider.getTracer('redaction-test');
    const other = tracer.startSpan('other');
    other.end();
    const span = tracer.startSpan(`GET /v1/users?token=${SECRET}`, {
      attributes: {
        'http.request.method': 'GET',
        'url.path': '/v1/users',
        'url.query': `token=${SECRET}&page=2`,
        'http.request.header.authorization': [`Bearer ${SECRET}`],
      },
      links: [{ context: other.spanContext(), attributes: { 'link.url': `http://x/?api_key=${SECRET}` } }],
    });
    // Set after the start, as the instrumentation does with the client's answer.
    span.setAttributes({
      'url.full': `http://api.internal/v1/users?token=${SECRET}&page=2`,
      'server.url': `http://svc:${SECRET}@api.internal/`,
      'http.request.header.cookie': [`session=${SECRET}`],
      'http.response.header.set-cookie': [`session=${SECRET}; HttpOnly`],
      'http.request.header.x-api-key': [SECRET],
      'app.password': SECRET,
      'http.response.status_code': 500,
      'http.route': '/v1/users',
    });
    span.addEvent('exception', { 'exception.message': `request to http://api.internal/v1?password=${SECRET} failed` });
    span.setStatus({ code: SpanStatusCode.ERROR, message: `GET http://api.internal/v1?access_token=${SECRET} answered 500` });
    span.end();
    await provider.forceFlush();
    const recorded = seen.getFinishedSpans().find((s) => s.name.startsWith('GET '))!;
    await provider.shutdown();

    const wire = bodies.join('\n');
    expect(wire, 'what reached the wire').not.to.contain(SECRET);
    const spans = bodies.flatMap((b) => (JSON.parse(b) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> }).resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)));
    const exported = spans.find((s) => s.name.startsWith('GET '))!;
    expect(exported.name).to.equal('GET /v1/users?token=[redacted]');
    expect(flat(exported.attributes)).to.deep.equal({
      'http.request.method': 'GET',
      'url.path': '/v1/users',
      'url.query': 'token=[redacted]&page=2',
      'http.request.header.authorization': ['[redacted]'],
      'url.full': 'http://api.internal/v1/users?token=[redacted]&page=2',
      'server.url': 'http://[redacted]@api.internal/',
      'http.request.header.cookie': ['[redacted]'],
      'http.response.header.set-cookie': ['[redacted]'],
      'http.request.header.x-api-key': ['[redacted]'],
      'app.password': '[redacted]',
      'http.response.status_code': 500,
      'http.route': '/v1/users',
    });
    expect(exported.status).to.deep.equal({ code: 2, message: 'GET http://api.internal/v1?access_token=[redacted] answered 500' });
    expect(exported.events.map((e) => flat(e.attributes))).to.deep.equal([{ 'exception.message': 'request to http://api.internal/v1?password=[redacted] failed' }]);
    expect(flat(exported.links[0]!.attributes)).to.deep.equal({ 'link.url': 'http://x/?api_key=[redacted]' });
    // Identity survives the view: same trace, same span id as recorded.
    expect(exported.spanId).to.equal(recorded.spanContext().spanId);
    expect(exported.traceId).to.equal(recorded.spanContext().traceId);
    // The processor after ours saw the span: censored at the start, as recorded after it.
    expect(recorded.attributes['url.query']).to.equal('token=[redacted]&page=2');
    expect(recorded.attributes['http.request.header.authorization']).to.deep.equal(['[redacted]']);
    // A span with nothing to censor is exported as it is.
    expect(spans.find((s) => s.name === 'other')!.attributes).to.deep.equal([]);
  });
});

describe("redaction: Vigil's logger", () => {
  const capture = (env: NodeJS.ProcessEnv) => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    return { logger: createLogger({ VIGIL_LOG_LEVEL: 'debug', ...env }, stream), lines };
  };

  it('censors credential fields at any depth: request and response headers, nested tokens and passwords, raw bodies on errors', () => {
    const { logger, lines } = capture({});
    logger.info({ req: { method: 'GET', url: '/x', headers: { authorization: `Bearer ${SECRET}`, cookie: `session=${SECRET}`, 'x-api-key': SECRET, accept: 'application/json' } } }, 'request');
    logger.info({ res: { statusCode: 200, headers: { 'set-cookie': [`session=${SECRET}`] } } }, 'response');
    logger.info({ a: { b: { c: { d: { token: SECRET, password: SECRET, accessToken: SECRET, apiKey: SECRET, secret: SECRET, Authorization: SECRET, 'Set-Cookie': [SECRET, SECRET], client_secret: 12345678, refresh_token: `esc"aped\\${SECRET}` } } } } }, 'nested');
    logger.info({ password: { value: SECRET }, token: SECRET, authorization: SECRET, cookie: SECRET, 'x-api-key': SECRET, 'set-cookie': SECRET, tokenEnv: 'VIGIL_HEALTH_TOKEN' }, 'top level');
    // What Express's JSON body parser throws for a body that does not parse: the text is on err.body.
    const err = Object.assign(new SyntaxError('Unexpected end of JSON input'), { body: `{"password":"${SECRET}"`, status: 400, type: 'entity.parse.failed' });
    logger.error({ err }, 'unhandled error');
    const text = lines.join('');
    expect(text).not.to.contain(SECRET);
    const [req, res, nested, top, error] = lines.map((l) => JSON.parse(l));
    expect(req.req.headers).to.deep.equal({ authorization: '[redacted]', cookie: '[redacted]', 'x-api-key': '[redacted]', accept: 'application/json' });
    expect(res.res.headers['set-cookie']).to.equal('[redacted]');
    expect(nested.a.b.c.d).to.deep.equal({ token: '[redacted]', password: '[redacted]', accessToken: '[redacted]', apiKey: '[redacted]', secret: '[redacted]', Authorization: '[redacted]', 'Set-Cookie': '[redacted]', client_secret: '[redacted]', refresh_token: '[redacted]' });
    // At the top level whatever the value (an object too); fields that only start like a credential are kept.
    expect(top).to.include({ password: '[redacted]', token: '[redacted]', authorization: '[redacted]', cookie: '[redacted]', 'x-api-key': '[redacted]', 'set-cookie': '[redacted]', tokenEnv: 'VIGIL_HEALTH_TOKEN' });
    expect(error.err).to.include({ type: 'SyntaxError', message: 'Unexpected end of JSON input', body: '[redacted]', status: 400 });
  });

  it('censors credential query parameters and URL passwords in messages and fields, keeping the rest of the URL', () => {
    const { logger, lines } = capture({});
    logger.warn({ url: `http://api/v1/users?token=${SECRET}&page=2`, target: `https://bot:${SECRET}@hooks.example/x` }, `fetch http://api/v1/x?api_key=${SECRET} failed`);
    const line = JSON.parse(lines[0]!);
    expect(line.url).to.equal('http://api/v1/users?token=[redacted]&page=2');
    expect(line.target).to.equal('https://[redacted]@hooks.example/x');
    expect(line.msg).to.equal('fetch http://api/v1/x?api_key=[redacted] failed');
  });

  it("censors the values of the process's credential variables wherever they appear, raw or JSON-escaped", () => {
    const quoted = `p"w\\${SECRET}`;
    const { logger, lines } = capture({ PROBE_ADMIN_PASSWORD: SECRET, OTHER_API_KEY: quoted, SHORT_TOKEN: 'abc', HOME: '/home/someone-long' });
    logger.error({ detail: `login failed for ${SECRET}` }, `the error quoted ${SECRET} and ${quoted}`);
    logger.info({ home: '/home/someone-long', short: 'abc' }, 'not credentials');
    const [first, second] = lines.map((l) => JSON.parse(l));
    expect(first.detail).to.equal('login failed for [redacted]');
    expect(first.msg).to.equal('the error quoted [redacted] and [redacted]');
    // Variables not named like credentials, and values shorter than 8 characters, are left alone.
    expect(second).to.include({ home: '/home/someone-long', short: 'abc' });
  });

  it('secretValues: credential-named variables of 8+ characters, longest first', () => {
    expect(secretValues({ A_PASSWORD: 'longer-password', B_TOKEN: 'token-12', C_KEY: 'short', PATH: '/usr/bin:/bin', D_SECRET: 'longer-password', E_AUTH: 'auth-value-1' })).to.deep.equal(['longer-password', 'auth-value-1', 'token-12']);
    expect(scrubLine('a longer-password b', ['longer-password'])).to.equal('a [redacted] b');
  });

});
