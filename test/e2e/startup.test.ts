/**
 * Issue: the incident, end to end. The example API starts with a broken router;
 * its startup validation travels OTLP/protobuf → the OpenTelemetry Collector
 * (collector-config.yaml) → Prometheus, where PromQL must find the failed import and every
 * missing critical route, with the right labels.
 */
import { expect } from 'chai';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_ROUTE,
  ATTR_VIGIL_COMPONENT,
  ATTR_VIGIL_CRITICAL,
  ATTR_VIGIL_OUTCOME,
  ATTR_VIGIL_POLICY,
  ATTR_VIGIL_ROUTER,
  METRIC_COMPONENT_HEALTHY,
  METRIC_ROUTE_REGISTERED,
  METRIC_ROUTER_IMPORT,
  METRIC_STARTUP_DURATION,
  METRIC_STARTUP_SUCCESS,
  promLabel as L,
  promName,
} from '../../packages/sdk/src/semconv.js';
import { startExample, type ExampleApp } from '../helpers/example.js';
import { startPrometheus, startCollector, waitForSeries, type Prometheus, type Collector } from '../helpers/rig.js';

const ROUTER_IMPORT = promName(METRIC_ROUTER_IMPORT);
const ROUTE_REGISTERED = promName(METRIC_ROUTE_REGISTERED);
const STARTUP_SUCCESS = promName(METRIC_STARTUP_SUCCESS);
const COMPONENT_HEALTHY = promName(METRIC_COMPONENT_HEALTHY);

describe('e2e: a router that fails to import is visible in Prometheus', function () {
  this.timeout(60_000);
  let prom: Prometheus;
  let collector: Collector;
  let app: ExampleApp | undefined;

  before(async () => {
    prom = await startPrometheus();
    collector = await startCollector({ remoteWriteUrl: prom.remoteWriteUrl });
  });
  afterEach(async () => {
    await app?.stop();
    app = undefined;
  });
  after(async () => {
    await collector?.stop();
    await prom?.stop();
  });

  const otlpEnv = () => ({
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: collector.otlpMetricsUrl,
    OTEL_TRACES_EXPORTER: 'none',
  });

  it('user_management broken (degrade): the app serves, and PromQL finds the failed import and each missing route', async () => {
    app = await startExample({ ...otlpEnv(), VIGIL_DEMO_BREAK: 'user_management', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e-degrade' });
    const sel = `${L('deployment.environment.name')}="e2e-degrade"`;
    const failed = await waitForSeries(prom, `${ROUTER_IMPORT}{${sel}, ${L(ATTR_VIGIL_ROUTER)}="user_management"} == 0`);
    const queryableMs = performance.now() - app.spawnedAt;
    console.log(`      process start → failed import queryable in Prometheus: ${(queryableMs / 1000).toFixed(2)} s`);

    expect(failed).to.have.length(1);
    expect(failed[0]!.metric).to.include({
      service_name: 'marketedge-api',
      service_version: '1.4.0',
      [L(ATTR_VIGIL_COMPONENT)]: 'user_management',
      [L(ATTR_VIGIL_OUTCOME)]: 'failed',
      [L(ATTR_ERROR_TYPE)]: 'ERR_MODULE_NOT_FOUND',
    });
    expect(failed[0]!.metric.service_instance_id).to.match(/^[0-9a-f-]{36}$/);

    // Every other router loaded.
    const ok = await prom.query(`${ROUTER_IMPORT}{${sel}} == 1`);
    expect(ok.map((s) => s.metric[L(ATTR_VIGIL_ROUTER)]).sort()).to.deep.equal(
      ['admin', 'auth', 'features', 'market_edge', 'module_management', 'organisations', 'tools', 'users'],
    );

    // Exactly the critical routes the broken router served are missing.
    const missing = await prom.query(`${ROUTE_REGISTERED}{${sel}, ${L(ATTR_VIGIL_CRITICAL)}="true"} == 0`);
    expect(missing.map((s) => `${s.metric[L(ATTR_HTTP_REQUEST_METHOD)]} ${s.metric[L(ATTR_HTTP_ROUTE)]}`)).to.deep.equal(['GET /api/v1/user-management']);
    expect(missing[0]!.metric[L(ATTR_VIGIL_COMPONENT)]).to.equal('user_management');
    const present = await prom.query(`${ROUTE_REGISTERED}{${sel}, ${L(ATTR_VIGIL_CRITICAL)}="true"} == 1`);
    expect(present).to.have.length(6);

    // The component is degraded, not refused; startup as a whole succeeded; the API still serves.
    const component = await prom.query(`${COMPONENT_HEALTHY}{${sel}, ${L(ATTR_VIGIL_COMPONENT)}="user_management"}`);
    expect(component[0]!.value[1]).to.equal('0');
    expect(component[0]!.metric[L(ATTR_VIGIL_POLICY)]).to.equal('degrade');
    expect((await prom.query(`${STARTUP_SUCCESS}{${sel}}`))[0]!.value[1]).to.equal('1');
    expect((await prom.query(`${promName(METRIC_STARTUP_DURATION, 's')}_count{${sel}}`))[0]!.value[1]).to.equal('1');
    await app.serving();
    expect((await fetch(`${app.url}/ready`)).status).to.equal(200);
    expect((await fetch(`${app.url}/api/v1/user-management`)).status).to.equal(404);
  });

  it('auth broken (fail-fast): the process refuses to start, exits non-zero, and the failure is in Prometheus', async () => {
    app = await startExample({ ...otlpEnv(), VIGIL_DEMO_BREAK: 'auth', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e-failfast' });
    const { code } = await app.exited;
    expect(code, app.output()).to.equal(1);
    expect(app.output()).to.contain('Vigil startup validation failed: fail-fast component(s) authentication failed');

    const sel = `${L('deployment.environment.name')}="e2e-failfast"`;
    // The process is gone: all of this was exported before it exited.
    const failed = await waitForSeries(prom, `${ROUTER_IMPORT}{${sel}, ${L(ATTR_VIGIL_ROUTER)}="auth"} == 0`);
    expect(failed[0]!.metric).to.include({ [L(ATTR_VIGIL_COMPONENT)]: 'authentication', [L(ATTR_VIGIL_OUTCOME)]: 'failed' });
    const missing = await prom.query(`${ROUTE_REGISTERED}{${sel}, ${L(ATTR_VIGIL_CRITICAL)}="true"} == 0`);
    expect(missing.map((s) => s.metric[L(ATTR_HTTP_ROUTE)]).sort()).to.deep.equal(['/api/v1/auth/login', '/api/v1/auth/refresh']);
    expect((await prom.query(`${STARTUP_SUCCESS}{${sel}}`))[0]!.value[1]).to.equal('0');
    const auth = await prom.query(`${COMPONENT_HEALTHY}{${sel}, ${L(ATTR_VIGIL_COMPONENT)}="authentication"}`);
    expect(auth[0]!.metric[L(ATTR_VIGIL_POLICY)]).to.equal('fail_fast');
    expect(auth[0]!.value[1]).to.equal('0');
  });

  it('a healthy start: every router imported, every critical route registered', async () => {
    app = await startExample({ ...otlpEnv(), OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e-healthy' });
    const sel = `${L('deployment.environment.name')}="e2e-healthy"`;
    await waitForSeries(prom, `${STARTUP_SUCCESS}{${sel}} == 1`);
    expect(await prom.query(`${ROUTER_IMPORT}{${sel}} == 0`)).to.deep.equal([]);
    expect(await prom.query(`${ROUTE_REGISTERED}{${sel}} == 0`)).to.deep.equal([]);
    expect(await prom.query(`${ROUTER_IMPORT}{${sel}} == 1`)).to.have.length(9);
  });
});
