/**
 * The reason travels: each failing series gets a `vigil.check.reason` (1, its
 * attributes plus `vigil.reason.metric` and a bounded, redacted `vigil.reason`)
 * while it fails and none once it passes; `/health/detailed` says the same.
 * Read through an in-process metric reader on the app's own meter provider,
 * with a real Express app, a router that fails to import and an `env` check.
 */
import type { Server } from 'node:http';
import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { expect } from 'chai';
import express from 'express';
import { vigil, type VigilGuard } from '../src/index.js';
import {
  ATTR_HTTP_ROUTE,
  ATTR_VIGIL_CHECK,
  ATTR_VIGIL_COMPONENT,
  ATTR_VIGIL_REASON,
  ATTR_VIGIL_REASON_METRIC,
  ATTR_VIGIL_ROUTER,
  boundReason,
  METRIC_CHECK_REASON,
  METRIC_COMPONENT_HEALTHY,
  METRIC_HEALTH_LEVEL,
  METRIC_ROUTE_REGISTERED,
  METRIC_ROUTER_IMPORT,
  METRIC_STARTUP_CHECK,
  REASON_MAX_LENGTH,
  REASON_METRICS,
} from '../src/semconv.js';
import { REDACTED, reasonText } from '../src/telemetry/redact.js';
import type { CheckOutcome } from '../src/monitor/types.js';
import { InProcessReader } from './helpers/metrics.js';
import { close } from './helpers/servers.js';
import { waitForValue } from './helpers/wait.js';

describe('reasons: bounded, one line, redacted', () => {
  it('keeps the first non-blank line and drops control and format characters', () => {
    expect(boundReason('\n  Cannot find module \'./users.js\'\nRequire stack:\n- /app/x.js')).to.equal("Cannot find module './users.js'");
    expect(boundReason('a\u0000b\u001b[31mc\u202ed\u200be\tf')).to.equal('a b [31mc d e f');
    expect(boundReason(undefined)).to.equal('');
    expect(boundReason(42)).to.equal('42');
  });

  it('cuts at REASON_MAX_LENGTH characters with an ellipsis, never inside a surrogate pair', () => {
    const long = boundReason('x'.repeat(1000));
    expect([...long]).to.have.length(REASON_MAX_LENGTH);
    expect(long.endsWith('…')).to.equal(true);
    const emoji = boundReason('😀'.repeat(500));
    expect([...emoji]).to.have.length(REASON_MAX_LENGTH);
    expect(emoji).to.not.match(/[\ud800-\udbff](?![\udc00-\udfff])/);
    expect(boundReason('y'.repeat(REASON_MAX_LENGTH))).to.equal('y'.repeat(REASON_MAX_LENGTH));
  });

  it('censors URL credentials, bearer tokens, secret pairs, JWTs and the given secret values', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
    const text = reasonText(
      `connect postgres://app:hunter22@db:5432/x?sslpassword=abc failed; Authorization: Bearer abcdefghijklmnop; password=s3cretvalue token: "tok en" ${jwt} via sk_live_9876`,
      ['sk_live_9876'],
    );
    for (const secret of ['hunter22', 'sslpassword=abc', 'abcdefghijklmnop', 's3cretvalue', 'tok en', jwt, 'sk_live_9876']) expect(text).to.not.contain(secret);
    expect(text).to.contain(`postgres://${REDACTED}@db:5432`).and.contain(`Bearer ${REDACTED}`).and.contain(`password=${REDACTED}`);
    // What is no secret stays readable, placeholders included.
    expect(reasonText('missing environment variable(s): JWT_SECRET')).to.equal('missing environment variable(s): JWT_SECRET');
    expect(reasonText('answered 503, expected 2xx')).to.equal('answered 503, expected 2xx');
    expect(reasonText('token=${env:API_TOKEN} was rejected')).to.equal('token=${env:API_TOKEN} was rejected');
    // A secret on a later line is gone with the line; one at the cut is censored before the cut.
    expect(reasonText(`${'a'.repeat(REASON_MAX_LENGTH - 10)} password=${'p'.repeat(40)}`)).to.not.contain('pppp');
    expect(reasonText(`failed\npassword=abc`)).to.equal('failed');
    // What redaction leaves is the text around it, to the character.
    expect(reasonText('step flags (GET /x?token=abc&api_key=def) answered 200, expected 418')).to.equal(`step flags (GET /x?token=${REDACTED}&api_key=${REDACTED}) answered 200, expected 418`);
    expect(reasonText('login failed (password: hunter22)')).to.equal(`login failed (password: ${REDACTED})`);
  });
});

type Attrs = Record<string, unknown>;
interface DataPoint {
  value: number;
  attributes: Attrs;
}

describe('reasons: vigil.check.reason on a real app', function () {
  this.timeout(20_000);
  let reader: InProcessReader;
  let guard: VigilGuard | undefined;
  let server: Server | undefined;
  let failing = true;

  beforeEach(() => {
    reader = new InProcessReader();
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    failing = true;
  });
  afterEach(async () => {
    await guard?.shutdown();
    if (server) await close(server);
    guard = undefined;
    server = undefined;
    metrics.disable();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  async function points(metric: string): Promise<DataPoint[]> {
    const { resourceMetrics } = await reader.collect();
    const m = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).filter((x) => x.descriptor.name === metric);
    return m.flatMap((x) => x.dataPoints as DataPoint[]);
  }
  const reasonsFor = async (metric: string) => (await points(METRIC_CHECK_REASON)).filter((p) => p.attributes[ATTR_VIGIL_REASON_METRIC] === metric);
  /** The attributes of the series a reason explains: its own minus the two reason attributes. */
  const explained = (p: DataPoint) => Object.fromEntries(Object.entries(p.attributes).filter(([k]) => k !== ATTR_VIGIL_REASON && k !== ATTR_VIGIL_REASON_METRIC));

  async function start(): Promise<VigilGuard> {
    guard = await vigil({
      manifest: {
        service: 'reasons',
        components: {
          users: {
            policy: 'degrade',
            routers: [{ name: 'users', mount: '/users', module: './fixtures/routers/throws.mjs' }],
            endpoints: [{ method: 'GET', route: '/users', probe: { enabled: false } }],
          },
          auth: { policy: 'degrade', dependencies: { jwt: { type: 'env', vars: ['JWT_SECRET', 'HOME_OF_NOTHING'] } } },
          healthy: { policy: 'degrade', dependencies: { home: { type: 'env', vars: ['PRESENT'] } } },
        },
        monitor: { failureThreshold: 1, successThreshold: 1 },
      } as never,
      baseUrl: new URL('./', import.meta.url),
      env: { VIGIL_LOG_LEVEL: 'silent', OTEL_TRACES_EXPORTER: 'none', PRESENT: 'yes', HOME_OF_NOTHING: 'set' },
      telemetry: true,
    });
    guard.addCheck({
      id: 'flow:checkout',
      level: 3,
      component: 'healthy',
      healthKey: 'healthy:checkout',
      intervalMs: 20,
      timeoutMs: 1000,
      run: async (): Promise<CheckOutcome> => (failing ? { status: 'fail', output: 'step pay answered 503, expected 2xx\n  at stack frame' } : { status: 'pass' }),
    });
    const app = express();
    await guard.mountRouters(app as never);
    guard.mountHealth(app as never);
    server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server!.once('listening', r));
    await guard.validate(app as never, { server, throwOnFailure: false });
    return guard;
  }

  it('a failed import, the routes it took with it and a missing variable each carry their reason; passing series carry none', async () => {
    await start();
    const [router] = await reasonsFor(METRIC_ROUTER_IMPORT);
    expect(router!.value).to.equal(1);
    expect(router!.attributes[ATTR_VIGIL_REASON]).to.match(/^Cannot find module '.*missing-schema\.mjs' imported from /);
    // The reason names a series that exists, with exactly its attributes, and it is 0.
    const imports = await points(METRIC_ROUTER_IMPORT);
    expect(imports.filter((p) => JSON.stringify(p.attributes) === JSON.stringify(explained(router!))).map((p) => p.value)).to.deep.equal([0]);

    const [route] = await reasonsFor(METRIC_ROUTE_REGISTERED);
    expect(route!.attributes[ATTR_HTTP_ROUTE]).to.equal('/users');
    expect(route!.attributes[ATTR_VIGIL_REASON]).to.match(/^router failed to import: Cannot find module /);

    const checks = await reasonsFor(METRIC_STARTUP_CHECK);
    expect(checks.map((p) => [p.attributes[ATTR_VIGIL_CHECK], p.attributes[ATTR_VIGIL_REASON]])).to.deep.equal([['jwt', 'missing environment variable(s): JWT_SECRET']]);

    const components = await reasonsFor(METRIC_COMPONENT_HEALTHY);
    expect(components.map((p) => p.attributes[ATTR_VIGIL_COMPONENT]).sort()).to.deep.equal(['auth', 'users']);

    for (const p of await points(METRIC_CHECK_REASON)) {
      expect(REASON_METRICS as readonly string[]).to.include(p.attributes[ATTR_VIGIL_REASON_METRIC]);
      expect(String(p.attributes[ATTR_VIGIL_REASON]).length).to.be.within(1, REASON_MAX_LENGTH);
      expect(p.attributes[ATTR_VIGIL_COMPONENT], 'no reason for the healthy component').to.not.equal('healthy');
      expect(p.attributes[ATTR_VIGIL_ROUTER] ?? '').to.not.equal('healthy');
    }
  });

  it('a failing runtime check has its reason while it fails and none once it passes; /health/detailed says the same', async () => {
    await start();
    const runtime = async () => (await reasonsFor(METRIC_HEALTH_LEVEL)).filter((p) => p.attributes[ATTR_VIGIL_CHECK] === 'flow:checkout');
    const [r] = await waitForValue(async () => ((await runtime()).length ? runtime() : undefined), 5000, 'the flow reason');
    expect(r!.attributes[ATTR_VIGIL_REASON]).to.equal('step pay answered 503, expected 2xx');
    expect(explained(r!)).to.deep.equal({ 'vigil.level': 3, [ATTR_VIGIL_CHECK]: 'flow:checkout', [ATTR_VIGIL_COMPONENT]: 'healthy' });

    const { port } = server!.address() as { port: number };
    const body = (await (await fetch(`http://127.0.0.1:${port}/health/detailed`)).json()) as { checks: Record<string, Array<{ output?: string; status: string }>>; output?: string };
    expect(body.checks['healthy:checkout']![0]).to.include({ status: 'fail', output: 'step pay answered 503, expected 2xx' });
    expect(body.checks['auth:jwt']![0]!.output).to.equal('missing environment variable(s): JWT_SECRET');
    expect(body.checks['users:router-import']![0]!.output).to.match(/^ERR_MODULE_NOT_FOUND: Cannot find module '.*missing-schema\.mjs' imported from /);
    expect(body.output).to.contain('flow:checkout: step pay answered 503, expected 2xx');

    failing = false;
    await waitForValue(async () => ((await points(METRIC_HEALTH_LEVEL)).find((p) => p.attributes[ATTR_VIGIL_CHECK] === 'flow:checkout')?.value === 1 ? true : undefined), 5000, 'the flow passing');
    await waitForValue(async () => ((await runtime()).length === 0 ? true : undefined), 5000, 'the flow reason gone');
    const level = (await points(METRIC_HEALTH_LEVEL)).find((p) => p.attributes[ATTR_VIGIL_CHECK] === 'flow:checkout');
    expect(level!.value).to.equal(1);
  });
});

describe('reasons: Vigil\'s own exporter drops a reason with its failure', function () {
  this.timeout(20_000);
  const OTEL = { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: '', OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json', OTEL_METRIC_EXPORT_INTERVAL: '100', OTEL_TRACES_EXPORTER: 'none' };
  const saved: Record<string, string | undefined> = {};

  it('exported while the check fails, absent from every export after it passes (gauges as last observed)', async () => {
    const { otlpCapture } = await import('./helpers/otlp.js');
    const otlp = await otlpCapture();
    // The OTLP exporter reads its endpoint from process.env, as in an app.
    for (const [k, v] of Object.entries({ ...OTEL, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${otlp.url}/v1/metrics` })) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    let failing = true;
    const guard = await vigil({
      manifest: { service: 'reasons-export', components: { shop: { policy: 'degrade' } }, monitor: { failureThreshold: 1, successThreshold: 1 } } as never,
      env: { ...process.env, VIGIL_LOG_LEVEL: 'silent' },
    });
    const app = express();
    const server = app.listen(0, '127.0.0.1');
    try {
      guard.addCheck({
        id: 'flow:shop/checkout',
        level: 3,
        component: 'shop',
        healthKey: 'shop:checkout',
        intervalMs: 20,
        timeoutMs: 1000,
        run: async (): Promise<CheckOutcome> => (failing ? { status: 'fail', output: 'step pay answered 503, expected 2xx' } : { status: 'pass' }),
      });
      guard.mountHealth(app as never);
      await new Promise((r) => server.once('listening', r));
      await guard.validate(app as never, { server, throwOnFailure: false });
      const reasonOf = (p: { metric: string; attributes: Attrs }) => p.metric === METRIC_CHECK_REASON && p.attributes[ATTR_VIGIL_CHECK] === 'flow:shop/checkout';
      const exported = await waitForValue(() => otlp.points.find(reasonOf), 5000, 'the reason in an export');
      expect(exported.attributes[ATTR_VIGIL_REASON]).to.equal('step pay answered 503, expected 2xx');

      failing = false;
      const passedAt = await waitForValue(() => {
        const i = otlp.points.findIndex((p, j) => j > otlp.points.indexOf(exported) && p.metric === METRIC_HEALTH_LEVEL && p.attributes[ATTR_VIGIL_CHECK] === 'flow:shop/checkout' && p.value === 1);
        return i >= 0 ? i : undefined;
      }, 5000, 'the check passing in an export');
      // Several exports later (every 100 ms), no reason of that check came again.
      await new Promise((r) => setTimeout(r, 600));
      const levelsAfter = otlp.points.slice(passedAt).filter((p) => p.metric === METRIC_HEALTH_LEVEL && p.attributes[ATTR_VIGIL_CHECK] === 'flow:shop/checkout');
      expect(levelsAfter.length, 'exports after it passed').to.be.greaterThan(2);
      expect(otlp.points.slice(passedAt).filter(reasonOf)).to.deep.equal([]);
    } finally {
      await guard.shutdown();
      if (server.listening) await close(server);
      await otlp.stop();
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
      else process.env[k] = v;
      metrics.disable();
      trace.disable();
      context.disable();
      propagation.disable();
    }
  });
});
