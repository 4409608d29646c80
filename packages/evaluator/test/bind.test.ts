/**
 * Where the evaluator listens and who may feed it. With no `server.host` it
 * binds 127.0.0.1 only: reachable on loopback, refused on the machine's other
 * addresses. With `source.tokenEnv`, its OTLP ingest (on its own server, as
 * the CLI runs it) refuses requests without the token or with a wrong one and
 * takes the real exporter's requests that carry it. `sources-otlp.test.ts`
 * has the receiver's own table of refusals.
 */
import net from 'node:net';
import os from 'node:os';
import { expect } from 'chai';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { pino } from 'pino';
import { METRIC_ROUTER_IMPORT, ATTR_VIGIL_COMPONENT, ATTR_VIGIL_OUTCOME, ATTR_VIGIL_ROUTER } from '@vigil/sdk/semconv';
import { EvaluatorConfig, type EvaluatorConfigInput } from '../src/config/schema.js';
import { Evaluator } from '../src/evaluator.js';

const TOKEN = 'ingest-t0ken-5f0e2a9c';
const policies = { critical: { channels: ['pager'] }, high: { channels: ['chat'] }, medium: { channels: ['chat'] }, low: { channels: ['mail'] } };
/** No `host`: the default is what is tested. */
const config = (over: Partial<EvaluatorConfigInput> = {}): EvaluatorConfigInput => ({ server: { port: 0 }, source: { type: 'otlp' }, policies, notifiers: { log: { type: 'console' } }, ...over });

const boundAddress = (e: Evaluator) => (Reflect.get(e, 'server') as net.Server).address() as net.AddressInfo;
/** Resolves 'connected' or the socket error's code. */
const connect = (host: string, port: number) =>
  new Promise<string>((resolve) => {
    const socket = net.connect({ host, port, timeout: 2000 });
    socket.once('connect', () => (socket.destroy(), resolve('connected')));
    socket.once('timeout', () => (socket.destroy(), resolve('ETIMEDOUT')));
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
const externalIPv4 = () =>
  Object.values(os.networkInterfaces())
    .flat()
    .find((a) => a && !a.internal && a.family === 'IPv4')?.address;

describe('evaluator: bound to loopback, ingest behind a token', () => {
  const running: Evaluator[] = [];
  afterEach(async () => {
    for (const e of running.splice(0)) await e.stop(500);
  });
  async function start(input: EvaluatorConfigInput, env: NodeJS.ProcessEnv = {}) {
    const e = new Evaluator(EvaluatorConfig.parse(input), { logger: pino({ level: 'silent' }), env });
    running.push(e);
    const { url } = await e.start();
    return { e, url };
  }

  it('with no server.host it listens on 127.0.0.1 only', async function () {
    expect(EvaluatorConfig.parse(config()).server.host).to.equal('127.0.0.1');
    expect(EvaluatorConfig.parse({ ...config(), server: undefined }).server).to.deep.include({ host: '127.0.0.1', port: 9464 });
    const { e, url } = await start(config());
    const { address, port } = boundAddress(e);
    expect(address).to.equal('127.0.0.1');
    expect(url).to.equal(`http://127.0.0.1:${port}`);
    expect(await connect('127.0.0.1', port)).to.equal('connected');
    const external = externalIPv4();
    if (!external) return void console.log('      (no non-loopback IPv4 address here: the refusal from outside was not tried)');
    expect(await connect(external, port), `connect to ${external}:${port}`).to.equal('ECONNREFUSED');
  });

  it('listens on every address only when server.host says so', async function () {
    const external = externalIPv4();
    if (!external) this.skip();
    const { e } = await start(config({ server: { host: '0.0.0.0', port: 0 } }));
    const { address, port } = boundAddress(e);
    expect(address).to.equal('0.0.0.0');
    expect(await connect(external!, port)).to.equal('connected');
  });

  describe('source.tokenEnv', () => {
    const post = (url: string, headers: Record<string, string> = {}) =>
      fetch(`${url}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ resourceMetrics: [] }) });

    async function export_(url: string, headers: Record<string, string>) {
      const provider = new MeterProvider({
        resource: resourceFromAttributes({ 'service.name': 'shop', 'service.instance.id': 'pod-1' }),
        readers: [new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter({ url: `${url}/v1/metrics`, headers }), exportIntervalMillis: 60_000 })],
      });
      const gauge = provider.getMeter('t').createGauge(METRIC_ROUTER_IMPORT);
      gauge.record(0, { [ATTR_VIGIL_ROUTER]: 'admin', [ATTR_VIGIL_COMPONENT]: 'admin', [ATTR_VIGIL_OUTCOME]: 'failed' });
      await provider.forceFlush();
      await provider.shutdown();
    }

    it('without the token 401, with a wrong one 401, with it 200; only the authorized export is ingested', async () => {
      const { e, url } = await start(config({ source: { type: 'otlp', tokenEnv: 'VIGIL_INGEST_TOKEN' } }), { VIGIL_INGEST_TOKEN: TOKEN });
      const none = await post(url);
      expect(none.status).to.equal(401);
      expect(none.headers.get('www-authenticate')).to.equal('Bearer');
      expect(await none.text()).not.to.contain(TOKEN);
      expect((await post(url, { authorization: `Bearer ${TOKEN.slice(0, -1)}X` })).status).to.equal(401);
      expect((await post(url, { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` })).status).to.equal(401);
      expect((await post(url, { authorization: `Bearer ${TOKEN}` })).status).to.equal(200);

      // The real exporter: without the header nothing is ingested; with it the service appears.
      await export_(url, {});
      expect(e.status().services).to.deep.equal([]);
      await export_(url, { authorization: `Bearer ${TOKEN}` });
      expect(e.status().services.map((s) => s.service)).to.deep.equal(['shop']);
      expect(JSON.stringify(e.status())).not.to.contain(TOKEN);
    });

    it('the token variable not set: every ingest is refused, naming the variable only', async () => {
      const { url } = await start(config({ source: { type: 'otlp', tokenEnv: 'VIGIL_INGEST_TOKEN' } }), {});
      const res = await post(url, { authorization: `Bearer ${TOKEN}` });
      expect(res.status).to.equal(401);
      expect(await res.text()).to.contain('VIGIL_INGEST_TOKEN is not set').and.not.contain(TOKEN);
    });

    it('without tokenEnv the ingest is open (on loopback)', async () => {
      const { url } = await start(config());
      expect((await post(url)).status).to.equal(200);
    });
  });
});
