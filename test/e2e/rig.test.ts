/**
 * Proves the end-to-end rig itself: real OpenTelemetry Collector (collector-config.yaml) → Prometheus, real Alertmanager → webhook,
 * real promtool. If one of these fails, every e2e test built on the rig would be meaningless.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import {
  runTool,
  startAlertmanager,
  startPrometheus,
  startCollector,
  startWebhookReceiver,
  waitForSeries,
  type Alertmanager,
  type Prometheus,
  type Collector,
  type WebhookReceiver,
} from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

describe('e2e rig: real Prometheus, OpenTelemetry Collector, Alertmanager, promtool', function () {
  this.timeout(60_000);

  describe('OTLP/HTTP protobuf → the Collector → Prometheus remote write', () => {
    let prom: Prometheus | undefined;
    let collector: Collector | undefined;
    let provider: MeterProvider | undefined;

    before(async () => {
      prom = await startPrometheus();
      collector = await startCollector({ remoteWriteUrl: prom.remoteWriteUrl });
    });

    after(async () => {
      await provider?.shutdown().catch(() => undefined);
      await collector?.stop();
      await prom?.stop();
    });

    it('turns an OpenTelemetry gauge into a Prometheus series with resource labels', async () => {
      const reader = new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: collector!.otlpMetricsUrl }),
        exportIntervalMillis: 60_000, // only the explicit forceFlush below exports
      });
      provider = new MeterProvider({
        resource: resourceFromAttributes({ 'service.name': 'vigil-rig-test', 'service.instance.id': 'rig-1' }),
        readers: [reader],
      });
      const gauge = provider.getMeter('vigil-rig').createGauge('vigil.rig.check');
      gauge.record(42, { 'vigil.case': 'otlp' });
      await provider.forceFlush();

      let samples;
      try {
        samples = await waitForSeries(prom!, 'vigil_rig_check', 20_000);
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- collector ---\n${collector!.logs(20)}\n--- prometheus ---\n${prom!.logs(20)}`);
      }
      expect(samples).to.have.length(1);
      const [sample] = samples;
      expect(sample!.metric).to.include({
        __name__: 'vigil_rig_check',
        service_name: 'vigil-rig-test',
        service_instance_id: 'rig-1',
        vigil_case: 'otlp',
      });
      expect(Number(sample!.value[1])).to.equal(42);

      // A selector on the converted labels finds it too, and a new value arrives on the next push.
      gauge.record(7, { 'vigil.case': 'otlp' });
      await provider.forceFlush();
      const updated = await waitFor(
        async () => {
          const r = await prom!.query('vigil_rig_check{service_name="vigil-rig-test",vigil_case="otlp"}');
          return r.length === 1 && r[0]!.value[1] === '7' ? r : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 250, what: 'vigil_rig_check to become 7' },
      );
      expect(updated[0]!.metric.service_name).to.equal('vigil-rig-test');
    });
  });

  describe('pushed samples out of order', () => {
    let prom: Prometheus | undefined;
    let collector: Collector | undefined;
    before(async () => {
      prom = await startPrometheus();
      collector = await startCollector({ remoteWriteUrl: prom.remoteWriteUrl });
    });
    after(async () => {
      await collector?.stop();
      await prom?.stop();
    });

    /** One OTLP/JSON request with a gauge point per `[case, value, time]`. */
    async function push(points: Array<[string, number, number]>): Promise<void> {
      const dataPoints = points.map(([c, v, t]) => ({
        attributes: [{ key: 'vigil.case', value: { stringValue: c } }],
        timeUnixNano: String(BigInt(t) * 1_000_000n),
        asDouble: v,
      }));
      const body = {
        resourceMetrics: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'vigil-rig-order' } }, { key: 'service.instance.id', value: { stringValue: 'order-1' } }] },
            scopeMetrics: [{ scope: { name: 'vigil-rig' }, metrics: [{ name: 'vigil.rig.order', gauge: { dataPoints } }] }],
          },
        ],
      };
      const res = await fetch(collector!.otlpMetricsUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(res.status, await res.text()).to.equal(200);
    }

    // Prometheus refuses a remote-write request whole at its first sample older than the series'
    // newest; with the stack's out_of_order_time_window the late sample is stored and the request's
    // other samples land. Without the window, case "fresh" below never reaches Prometheus.
    it('a late sample does not take the other samples of its request down', async () => {
      const now = Date.now();
      await push([['late', 2, now]]);
      await waitForSeries(prom!, 'vigil_rig_order{vigil_case="late"}', 20_000);
      await push([
        ['late', 1, now - 60_000],
        ['fresh', 3, now],
      ]);
      let fresh;
      try {
        fresh = await waitForSeries(prom!, 'vigil_rig_order{vigil_case="fresh"}', 20_000);
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- collector ---\n${collector!.logs(20)}\n--- prometheus ---\n${prom!.logs(20)}`);
      }
      expect(Number(fresh[0]!.value[1])).to.equal(3);
      // The late sample went into the past: the instant value is still the newest one.
      const late = await prom!.query('vigil_rig_order{vigil_case="late"}');
      expect(Number(late[0]!.value[1])).to.equal(2);
    });
  });

  describe('Alertmanager → webhook receiver', () => {
    let webhook: WebhookReceiver | undefined;
    let am: Alertmanager | undefined;

    afterEach(async () => {
      await am?.stop();
      await webhook?.stop();
      am = undefined;
      webhook = undefined;
    });

    it('delivers a POSTed alert to the webhook, firing, with its labels', async () => {
      webhook = await startWebhookReceiver();
      am = await startAlertmanager({
        config: [
          'route:',
          '  receiver: rig-webhook',
          "  group_by: ['alertname']",
          '  group_wait: 1s',
          '  group_interval: 1s',
          '  repeat_interval: 1h',
          'receivers:',
          '  - name: rig-webhook',
          '    webhook_configs:',
          `      - url: '${webhook.url}/alert'`,
          '        send_resolved: true',
          '',
        ].join('\n'),
      });

      const labels = { alertname: 'VigilRigCheck', severity: 'page', service_name: 'vigil-rig-test' };
      const res = await fetch(`${am.url}/api/v2/alerts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify([{ labels, annotations: { summary: 'rig check' } }]),
      });
      expect(res.status, await res.text()).to.equal(200);

      const held = await am.alerts();
      expect(held.map((a) => a.labels)).to.deep.include(labels);

      const delivery = await webhook.waitFor(
        (r) => r.body?.alerts?.some((a: any) => a.labels?.alertname === 'VigilRigCheck'),
        15_000,
      );
      expect(delivery.path).to.equal('/alert');
      expect(delivery.method).to.equal('POST');
      expect(delivery.headers['content-type']).to.match(/application\/json/);
      expect(delivery.body.receiver).to.equal('rig-webhook');
      expect(delivery.body.status).to.equal('firing');
      expect(delivery.body.alerts).to.have.length(1);
      expect(delivery.body.alerts[0].status).to.equal('firing');
      expect(delivery.body.alerts[0].labels).to.deep.equal(labels);
      expect(delivery.body.alerts[0].annotations).to.deep.equal({ summary: 'rig check' });
    });

    it('reports a startup failure with the process output', async () => {
      let error: Error | undefined;
      try {
        am = await startAlertmanager({ config: 'route:\n  receiver: nobody\nreceivers: []\n' });
      } catch (err) {
        error = err as Error;
      }
      expect(error, 'startAlertmanager should reject on a broken config').to.be.instanceOf(Error);
      expect(error!.message).to.match(/alertmanager failed to start: it exited during startup/);
      expect(error!.message).to.include('--- last output of alertmanager ---');
      expect(error!.message).to.match(/undefined receiver .*nobody/);
    });
  });

  describe('promtool and Prometheus configuration', () => {
    let prom: Prometheus | undefined;
    let dir: string | undefined;

    after(async () => {
      await prom?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('generates a prometheus.yml that `promtool check config` accepts, with rules and Alertmanager wired', async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'vigil-rig-test-'));
      const rules = path.join(dir, 'rules.yml');
      await writeFile(
        rules,
        [
          'groups:',
          '  - name: vigil-rig',
          '    rules:',
          '      - alert: VigilRigAlwaysFiring',
          '        expr: vector(1)',
          '        labels: { severity: info }',
          '',
        ].join('\n'),
      );
      prom = await startPrometheus({
        ruleFiles: [rules],
        alertmanagerUrl: 'http://127.0.0.1:9/',
        evaluationInterval: '1s',
        scrapeConfigs: [{ job_name: 'self', static_configs: [{ targets: ['127.0.0.1:9'] }] }],
      });

      const check = await runTool('promtool', ['check', 'config', prom.configFile]);
      expect(check.code, check.stdout + check.stderr).to.equal(0);
      expect(check.stdout + check.stderr).to.match(/SUCCESS/);
      expect(check.stdout + check.stderr).to.include('rules.yml');

      // The rule file is loaded and evaluated every second.
      const firing = await waitForSeries(prom, 'ALERTS{alertname="VigilRigAlwaysFiring",alertstate="firing"}');
      expect(firing[0]!.metric.severity).to.equal('info');
    });

    it('`promtool check config` rejects a broken file (promtool really checks)', async () => {
      const broken = path.join(dir!, 'broken.yml');
      await writeFile(broken, 'global:\n  scrape_interval: not-a-duration\n');
      const check = await runTool('promtool', ['check', 'config', broken]);
      expect(check.code).to.not.equal(0);
      expect(check.stdout + check.stderr).to.match(/FAILED/);
    });

    it('stop() ends Prometheus and frees its port', async () => {
      const url = prom!.url;
      await prom!.stop();
      prom = undefined;
      let refused = false;
      try {
        await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) });
      } catch {
        refused = true;
      }
      expect(refused, `${url} still answers after stop()`).to.equal(true);
    });
  });
});
