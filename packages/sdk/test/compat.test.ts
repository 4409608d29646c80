import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
// @ts-expect-error express4 is an npm alias of express@4 with no types of its own
import express4 from 'express4';
import { pino } from 'pino';
import { vigil } from '../src/guard.js';
import { otlpCapture } from './helpers/otlp.js';
import { close, listen } from './helpers/servers.js';
import { waitForValue } from './helpers/wait.js';

const fixtures = new URL('./fixtures/', import.meta.url);

describe('compatibility', function () {
  this.timeout(30_000);

  it('a CommonJS app can require("@vigil/sdk") and validate CommonJS routers', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [fileURLToPath(new URL('cjs-app.cjs', fixtures))], { env: { ...process.env, VIGIL_LOG_LEVEL: 'silent' } });
    expect(JSON.parse(stdout.trim().split('\n').at(-1)!)).to.deep.equal({ status: 'pass', missing: [], routes: 6 }); // the app's route and five health routes (/health/routes included)
  });

  it('runs the whole startup on an Express 4 app with Express 4 routers', async () => {
    const guard = await vigil({
      manifest: {
        service: 'old-app',
        components: { api: { policy: 'fail-fast', routers: [{ module: './routers/express4.cjs', mount: '/v1' }], endpoints: ['GET /v1/things', 'POST /v1/things'] } },
      },
      baseUrl: fixtures,
      telemetry: false,
      logger: pino({ level: 'silent' }),
    });
    const app = (express4 as () => import('express').Express)();
    guard.mountHealth(app);
    const [router] = await guard.mountRouters(app);
    expect(router).to.deep.include({ outcome: 'success', routeCount: 1 });
    const report = await guard.validate(app, { throwOnFailure: false });
    expect(report.missingEndpoints).to.deep.equal(['POST /v1/things']);
    const server = (await import('node:http')).createServer(app);
    const port = await listen(server);
    const res = await fetch(`http://127.0.0.1:${port}/health/detailed`);
    expect(res.status).to.equal(503);
    expect(((await res.json()) as { affectedEndpoints: string[] }).affectedEndpoints).to.deep.equal(['POST /v1/things']);
    expect((await fetch(`http://127.0.0.1:${port}/v1/things`)).status).to.equal(200);
    await close(server);
    await guard.shutdown();
  });

  it('an app that registered only a tracer provider still gets the Vigil metrics', async () => {
    const otlp = await otlpCapture();
    try {
      await promisify(execFile)(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('tracer-only-app.ts', fixtures))], {
        env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_METRICS_EXPORTER: 'otlp', VIGIL_LOG_LEVEL: 'silent' },
      });
      expect(otlp.latest('vigil.router.import', { 'vigil.router': 'api' })).to.deep.include({ value: 1 });
      expect(otlp.spans).to.deep.equal([]); // the app's tracer provider has no exporter; Vigil did not add one
    } finally {
      await otlp.stop();
    }
  });

  it('with --import @vigil/sdk/register, vigil() reuses that SDK and the app gets http and express spans', async () => {
    const otlp = await otlpCapture();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--import', fileURLToPath(new URL('../src/register.ts', import.meta.url)), fileURLToPath(new URL('register-app.ts', fixtures))],
      {
        env: {
          ...process.env,
          OTEL_SERVICE_NAME: 'registered-app',
          OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
          OTEL_BSP_SCHEDULE_DELAY: '200',
          OTEL_METRIC_EXPORT_INTERVAL: '60000',
          VIGIL_LOG_LEVEL: 'silent',
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const port = await waitForValue(() => /LISTENING (\d+)/.exec(out)?.[1], 20_000, 'the app to listen');
      // The express instrumentation wraps the router slots: the inventory must still see the routes behind them.
      expect(out).to.contain('STATUS pass');
      await fetch(`http://127.0.0.1:${port}/api/items`);
      await fetch(`http://127.0.0.1:${port}/api/items`, { headers: { 'x-vigil-synthetic': 'probe' } });
      const serverSpan = await waitForValue(() => otlp.spans.find((s) => s.attributes['http.route'] === '/api/items'), 10_000, 'an http server span with http.route');
      expect(serverSpan).to.exist;
      // Metrics came through the one SDK that register started: its resource, one instance.
      const imp = await waitForValue(() => otlp.latest('vigil.router.import'), 10_000, 'vigil.router.import');
      expect(imp.resource['service.name']).to.equal('registered-app');
      expect(new Set(otlp.points.map((p) => p.resource['service.instance.id'])).size).to.equal(1);
      expect(otlp.spans.some((s) => s.name === 'vigil.startup')).to.equal(true);
      // A client cannot hide from tracing by sending x-vigil-synthetic: only the monitor's marker does that.
      const serverSpans = await waitForValue(() => {
        const found = otlp.spans.filter((s) => s.attributes['http.request.method'] === 'GET' && s.attributes['http.route'] === '/api/items' && s.name.startsWith('GET'));
        return found.length >= 2 ? found : undefined;
      }, 10_000, 'a server span for the request with a forged synthetic header');
      expect(serverSpans).to.have.length(2);
    } finally {
      child.kill('SIGKILL');
      await otlp.stop();
    }
  });
});
