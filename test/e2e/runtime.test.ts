/**
 * A fault at run time, end to end: the example API starts clean, then its login
 * endpoint starts answering 503 (SIGUSR2 toggles the demo fault). The monitor's
 * probes see it; Prometheus (through collector) must show vigil_probe_success == 0
 * for that route, and 1 again once the fault is gone.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { ATTR_HTTP_ROUTE, ATTR_VIGIL_CHECK, METRIC_HEALTH_LEVEL, METRIC_PROBE_DURATION, METRIC_PROBE_SUCCESS, promLabel as L, promName } from '../../packages/sdk/src/semconv.js';
import { startExample, type ExampleApp } from '../helpers/example.js';
import { waitFor } from '../helpers/wait.js';
import { REPO_ROOT, startPrometheus, startCollector, waitForSeries, type Prometheus, type Collector } from '../helpers/rig.js';

const EXAMPLE_DIR = path.join(REPO_ROOT, 'examples/marketedge-api');

describe('e2e: a critical endpoint that fails at run time shows in Prometheus', function () {
  this.timeout(90_000);
  let prom: Prometheus;
  let collector: Collector;
  let app: ExampleApp | undefined;
  // A copy of the example's manifest with fast probes, beside it so its module paths still resolve.
  const manifest = path.join(EXAMPLE_DIR, `.vigil.e2e-${process.pid}.yaml`);

  before(async () => {
    const text = await readFile(path.join(EXAMPLE_DIR, 'vigil.yaml'), 'utf8');
    await writeFile(manifest, text.replace('endpoints: 30s', 'endpoints: 1s').replace('flows: 60s', 'flows: 2s'));
    prom = await startPrometheus();
    collector = await startCollector({ remoteWriteUrl: prom.remoteWriteUrl });
  });
  after(async () => {
    await app?.stop();
    await collector?.stop();
    await prom?.stop();
    await rm(manifest, { force: true });
  });

  it('login answering 503 → vigil_probe_success == 0 for /api/v1/auth/login, then 1 again', async () => {
    app = await startExample({
      VIGIL_MANIFEST: manifest,
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: collector.otlpMetricsUrl,
      OTEL_TRACES_EXPORTER: 'none',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=e2e-runtime',
    });
    await app.serving();
    const sel = `${L('deployment.environment.name')}="e2e-runtime", ${L(ATTR_HTTP_ROUTE)}="/api/v1/auth/login"`;
    const success = promName(METRIC_PROBE_SUCCESS);
    await waitForSeries(prom, `${success}{${sel}} == 1`, 30_000);
    // The business flows of the example ran against the real API and pass.
    const flowsPass = await waitForSeries(prom, `${promName(METRIC_HEALTH_LEVEL)}{${L('deployment.environment.name')}="e2e-runtime", vigil_level="3"} == 1`, 15_000);
    expect(flowsPass.map((s) => s.metric[L(ATTR_VIGIL_CHECK)]).sort()).to.deep.equal(['flow:admin/admin-panel', 'flow:organisations/tenant-switch']);
    // A flow entry gets its observedValue (run time, ms) from a run: wait for both to have really run.
    type Body = { checks: Record<string, Array<{ status: string; level?: number; observedValue?: number }>> };
    const before = await waitFor(async () => {
      const body = (await (await fetch(`${app!.url}/health/detailed`)).json()) as Body;
      const ran = ['admin:flow admin-panel', 'organisations:flow tenant-switch'].every((k) => typeof body.checks[k]?.[0]?.observedValue === 'number');
      return ran ? body : undefined;
    }, { timeoutMs: 15_000, intervalMs: 250, what: 'both example flows to run' });
    expect(before.checks['admin:flow admin-panel']![0]).to.deep.include({ status: 'pass', level: 3 });
    expect(before.checks['organisations:flow tenant-switch']![0]).to.deep.include({ status: 'pass', level: 3 });

    const faultAt = performance.now();
    app.proc.kill('SIGUSR2');
    const down = await waitForSeries(prom, `${success}{${sel}} == 0`, 30_000);
    console.log(`      runtime fault → vigil_probe_success == 0 in Prometheus: ${((performance.now() - faultAt) / 1000).toFixed(2)} s (probe interval 1 s, 3 failures to flip)`);
    expect(down[0]!.metric).to.include({ vigil_component: 'authentication', http_request_method: 'POST', service_name: 'marketedge-api' });
    // The damped level-2 state is exported too: the endpoint check is failing.
    const level = await waitForSeries(prom, `${promName(METRIC_HEALTH_LEVEL)}{${L('deployment.environment.name')}="e2e-runtime", ${L(ATTR_VIGIL_CHECK)}="endpoint:POST /api/v1/auth/login"} == 0`, 15_000);
    expect(level[0]!.metric.vigil_level).to.equal('2');
    // The probe latency histogram carries the status code it saw.
    const codes = await prom.query(`sum by (http_response_status_code) (${promName(METRIC_PROBE_DURATION, 's')}_count{${sel}})`);
    expect(codes.map((s) => s.metric.http_response_status_code).sort()).to.include.members(['401', '503']);

    const detailed = (await (await fetch(`${app.url}/health/detailed`)).json()) as { status: string; affectedEndpoints: string[] };
    expect(detailed.status).to.equal('fail'); // authentication is fail-fast
    expect(detailed.affectedEndpoints).to.include('POST /api/v1/auth/login');

    app.proc.kill('SIGUSR2'); // fault off
    await waitForSeries(prom, `${success}{${sel}} == 1`, 30_000);
  });
});
