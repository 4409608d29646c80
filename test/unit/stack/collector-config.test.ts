/**
 * collector-config.yaml and the Collector distribution that runs it (collector/builder-config.yaml,
 * built by scripts/build-collector.sh into .stack/otelcol/vigil-otelcol):
 *   - the real binary's `validate` accepts the file, with the compose defaults and with the
 *     addresses the tests set, and rejects a broken copy (so the check can fail);
 *   - the binary carries exactly the components of the builder manifest, each pinned to one release;
 *   - as a document: the pipelines use only what is defined, memory_limiter first and batch last;
 *     Prometheus gets every resource attribute as a label and a queue that bridges an outage; the
 *     evaluator gets OTLP/HTTP JSON at the receiver evaluator.yaml opens; every address can be
 *     set through the environment; and nothing secret is written in the file.
 * The e2e tests (test/e2e/collector.test.ts and the others) run the same file with the same binary.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { parse, stringify } from 'yaml';
import { COLLECTOR_CONFIG, collectorBin, collectorConfigDefaults, collectorConfigVariables, REPO_ROOT } from '../../helpers/rig.js';

type Components = Record<string, Record<string, any> | null>;
interface Pipeline { receivers?: string[]; processors?: string[]; exporters?: string[] }
interface CollectorConfig {
  extensions?: Components;
  receivers?: Components;
  processors?: Components;
  exporters?: Components;
  connectors?: Components;
  service: { extensions?: string[]; pipelines: Record<string, Pipeline>; telemetry?: any };
}

const MANIFEST = path.join(REPO_ROOT, 'collector/builder-config.yaml');
/** The file with every `${env:VAR:-default}` at its default: what the compose stack runs. */
const config = collectorConfigDefaults() as CollectorConfig;
const pipelines = Object.entries(config.service.pipelines);
/** `otlp_http/evaluator` → `otlp_http`: the component type; the part after `/` only names an instance. */
const typeOf = (id: string) => id.split('/')[0]!;

/** Every string in the document, with its key path. */
function strings(node: unknown, at: string[] = []): Array<{ path: string[]; value: string }> {
  if (typeof node === 'string') return [{ path: at, value: node }];
  if (Array.isArray(node)) return node.flatMap((v, i) => strings(v, [...at, String(i)]));
  if (node && typeof node === 'object') return Object.entries(node).flatMap(([k, v]) => strings(v, [...at, k]));
  return [];
}

/** Runs the Collector binary to completion with exactly `env` (plus PATH and HOME). */
function otelcol(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      collectorBin(),
      args,
      { cwd: REPO_ROOT, timeout: 30_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir(), ...env } },
      (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, out: stdout + stderr });
        if (typeof err.code === 'number') return resolve({ code: err.code, out: stdout + stderr });
        reject(err);
      },
    );
  });
}

describe('collector-config.yaml on the Collector built from collector/builder-config.yaml', function () {
  this.timeout(60_000);

  describe('the binary (scripts/build-collector.sh)', () => {
    it('`validate` accepts collector-config.yaml as the compose stack runs it (no variable set)', async () => {
      const { code, out } = await otelcol(['validate', '--config', COLLECTOR_CONFIG]);
      expect(code, out).to.equal(0);
    });

    it('`validate` accepts it with the 127.0.0.1 addresses the end-to-end tests set', async () => {
      const { code, out } = await otelcol(['validate', '--config', COLLECTOR_CONFIG], {
        VIGIL_COLLECTOR_OTLP_HTTP_ENDPOINT: '127.0.0.1:14318',
        VIGIL_COLLECTOR_OTLP_GRPC_ENDPOINT: '127.0.0.1:14317',
        VIGIL_COLLECTOR_HEALTH_ENDPOINT: '127.0.0.1:14133',
        VIGIL_COLLECTOR_TELEMETRY_HOST: '127.0.0.1',
        VIGIL_COLLECTOR_TELEMETRY_PORT: '18888',
        VIGIL_PROMETHEUS_REMOTE_WRITE_URL: 'http://127.0.0.1:19090/api/v1/write',
        VIGIL_EVALUATOR_OTLP_URL: 'http://127.0.0.1:19464/v1/metrics',
        VIGIL_INGEST_TOKEN: 'not-a-real-token',
      });
      expect(code, out).to.equal(0);
    });

    it('`validate` refuses a copy whose pipeline names an exporter that is not defined, naming it', async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'vigil-collector-validate-'));
      try {
        const broken = parse(readFileSync(COLLECTOR_CONFIG, 'utf8'));
        broken.service.pipelines.metrics.exporters.push('otlp_http/nowhere');
        const file = path.join(dir, 'broken.yaml');
        await writeFile(file, stringify(broken));
        const { code, out } = await otelcol(['validate', '--config', file]);
        expect(code, out).to.not.equal(0);
        expect(out).to.include('otlp_http/nowhere');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('carries exactly the components of the builder manifest, and the config uses only those', async () => {
      const { code, out } = await otelcol(['components']);
      expect(code, out).to.equal(0);
      const built = parse(out) as Record<string, Array<{ name: string; module: string }>>;
      const manifest = parse(readFileSync(MANIFEST, 'utf8')) as Record<string, Array<{ gomod: string }>>;
      for (const kind of ['receivers', 'processors', 'exporters', 'extensions'] as const) {
        const modules = (built[kind] ?? []).map((c) => c.module).sort();
        expect(modules, kind).to.deep.equal(manifest[kind]!.map((m) => m.gomod).sort());
        const names = (built[kind] ?? []).map((c) => c.name);
        for (const id of Object.keys(config[kind] ?? {})) expect(names, `${kind}: ${id}`).to.include(typeOf(id));
      }
    });
  });

  describe('the builder manifest (collector/builder-config.yaml)', () => {
    const manifest = parse(readFileSync(MANIFEST, 'utf8')) as Record<string, any>;
    const modules: string[] = ['receivers', 'processors', 'exporters', 'extensions', 'providers'].flatMap((k) => (manifest[k] ?? []).map((m: { gomod: string }) => m.gomod));

    it('pins every module to one release: core v0.165.0 (stable modules v1.71.0), contrib v0.165.1', () => {
      expect(modules).to.not.be.empty;
      for (const m of modules) {
        const [mod, version] = m.split(' ');
        if (mod!.startsWith('github.com/open-telemetry/opentelemetry-collector-contrib/')) expect(version, m).to.equal('v0.165.1');
        else if (mod!.startsWith('go.opentelemetry.io/collector/confmap/')) expect(version, m).to.equal('v1.71.0');
        else if (mod!.startsWith('go.opentelemetry.io/collector/')) expect(version, m).to.equal('v0.165.0');
        else expect.fail(`${m} is not an OpenTelemetry Collector module`);
      }
      // ocb is the core release too
      expect(readFileSync(path.join(REPO_ROOT, 'scripts/build-collector.sh'), 'utf8')).to.match(/^OCB_VERSION=v0\.165\.0$/m);
    });

    it('has the otlp receiver, memory_limiter and batch, remote write, otlp_http, debug and healthcheckv2', () => {
      for (const want of [
        'receiver/otlpreceiver',
        'processor/memorylimiterprocessor',
        'processor/batchprocessor',
        'exporter/prometheusremotewriteexporter',
        'exporter/otlphttpexporter',
        'exporter/debugexporter',
        'extension/healthcheckv2extension',
      ]) {
        expect(modules.some((m) => m.split(' ')[0]!.endsWith(want)), want).to.equal(true);
      }
    });
  });

  describe('the document', () => {
    it('has a metrics and a traces pipeline', () => {
      expect(Object.keys(config.service.pipelines)).to.include.members(['metrics', 'traces']);
    });

    it('references only receivers, processors, exporters and extensions it defines, and defines none it does not use', () => {
      const used = { receivers: new Set<string>(), processors: new Set<string>(), exporters: new Set<string>() };
      for (const [name, p] of pipelines) {
        for (const kind of ['receivers', 'processors', 'exporters'] as const) {
          for (const id of p[kind] ?? []) {
            expect(config[kind] ?? {}, `pipeline ${name}: ${kind} "${id}" is not defined`).to.have.property(id);
            used[kind].add(id);
          }
        }
        expect(p.receivers, `pipeline ${name} has no receiver`).to.not.be.empty;
        expect(p.exporters, `pipeline ${name} has no exporter`).to.not.be.empty;
      }
      for (const kind of ['receivers', 'processors', 'exporters'] as const) {
        expect([...used[kind]].sort(), kind).to.deep.equal(Object.keys(config[kind] ?? {}).sort());
      }
      expect(Object.keys(config.extensions ?? {}).sort()).to.deep.equal([...(config.service.extensions ?? [])].sort());
    });

    it('runs memory_limiter first and batch last in every pipeline', () => {
      for (const [name, p] of pipelines) {
        const types = (p.processors ?? []).map(typeOf);
        expect(types[0], `pipeline ${name}`).to.equal('memory_limiter');
        expect(types[types.length - 1], `pipeline ${name}`).to.equal('batch');
      }
    });

    it('receives OTLP over gRPC (4317) and HTTP (4318) and serves its health on 13133 by default, each settable by a variable', () => {
      expect(config.receivers!.otlp!.protocols.grpc.endpoint).to.equal('0.0.0.0:4317');
      expect(config.receivers!.otlp!.protocols.http.endpoint).to.equal('0.0.0.0:4318');
      expect(config.extensions!.healthcheckv2!.http.endpoint).to.equal('0.0.0.0:13133');
      for (const [name, p] of pipelines) expect(p.receivers, `pipeline ${name}`).to.include('otlp');
      const vars = collectorConfigVariables();
      expect(Object.fromEntries(vars)).to.deep.include({
        VIGIL_COLLECTOR_OTLP_GRPC_ENDPOINT: '0.0.0.0:4317',
        VIGIL_COLLECTOR_OTLP_HTTP_ENDPOINT: '0.0.0.0:4318',
        VIGIL_COLLECTOR_HEALTH_ENDPOINT: '0.0.0.0:13133',
        VIGIL_PROMETHEUS_REMOTE_WRITE_URL: 'http://prometheus:9090/api/v1/write',
        VIGIL_EVALUATOR_OTLP_URL: 'http://evaluator:9464/v1/metrics',
      });
      // the header comment lists every variable the file reads
      const header = readFileSync(COLLECTOR_CONFIG, 'utf8').split('\n').filter((l) => l.startsWith('#')).join('\n');
      for (const v of vars.keys()) expect(header, `${v} is not listed in the header`).to.include(v.replace(/_(HOST|PORT)$/, ''));
    });

    it('remote-writes to Prometheus with resource attributes as labels, suffixes, in order, and a queue with retries for an outage', () => {
      const prw = config.exporters!.prometheus_remote_write!;
      expect(prw.http.endpoint).to.equal('http://prometheus:9090/api/v1/write');
      // service_name, service_instance_id, deployment_environment_name on every series (docs/telemetry.md)
      expect(prw.resource_constant_labels?.included).to.deep.equal(['*']);
      // `_seconds` on histograms in seconds and `_total` on counters, as in docs/telemetry.md
      expect(prw.translation_strategy).to.equal('UnderscoreEscapingWithSuffixes');
      // one request at a time: Prometheus refuses out-of-order samples
      expect(prw.remote_write_queue.enabled).to.equal(true);
      expect(prw.remote_write_queue.num_consumers ?? 1, 'more than one needs a feature gate and out-of-order ingestion').to.equal(1);
      expect(prw.max_batch_request_parallelism).to.equal(1);
      // a batch is retried for longer than the 60 s outage test/e2e/collector.test.ts makes
      expect(prw.retry_on_failure.enabled).to.equal(true);
      expect(prw.retry_on_failure.max_elapsed_time).to.match(/^\d+m$/);
      expect(parseInt(prw.retry_on_failure.max_elapsed_time, 10)).to.be.at.least(2);
      expect(config.service.pipelines.metrics!.exporters).to.include('prometheus_remote_write');
    });

    it('sends metrics to the evaluator as OTLP/HTTP JSON, at the receiver evaluator.yaml opens', () => {
      const ev = config.exporters!['otlp_http/evaluator']!;
      expect(ev.encoding, 'the evaluator in the stack is fed JSON').to.equal('json');
      expect(ev.compression ?? 'gzip', 'the evaluator accepts gzip or nothing').to.be.oneOf(['gzip', 'none']);
      expect(config.service.pipelines.metrics!.exporters).to.include('otlp_http/evaluator');

      const evaluator = parse(readFileSync(path.join(REPO_ROOT, 'evaluator.yaml'), 'utf8'));
      expect(evaluator.source.type).to.equal('otlp');
      const port = evaluator.server?.port ?? 9464;
      const receiverPath = evaluator.source.path ?? '/v1/metrics';
      expect(ev.metrics_endpoint).to.equal(`http://evaluator:${port}${receiverPath}`);

      // the ingest token, when the evaluator asks for one, is read from the environment
      const auth = ev.headers?.Authorization;
      if (auth !== undefined) expect(auth).to.match(/^Bearer \$\{env:[A-Za-z_][A-Za-z0-9_]*\}$/);
      if (evaluator.source.tokenEnv) expect(auth).to.equal(`Bearer \${env:${evaluator.source.tokenEnv}}`);
    });

    it('sends traces to Jaeger over OTLP gRPC, and logs a line per metrics batch (debug)', () => {
      const jaeger = config.exporters!['otlp_grpc/jaeger']!;
      expect(jaeger.endpoint).to.equal('jaeger:4317');
      expect(jaeger.tls?.insecure).to.equal(true);
      expect(config.service.pipelines.traces!.exporters).to.deep.equal(['otlp_grpc/jaeger']);
      expect(config.exporters!.debug!.verbosity).to.equal('basic');
    });

    it('holds no literal secret: credentials only as ${env:…}', () => {
      const raw = parse(readFileSync(COLLECTOR_CONFIG, 'utf8'));
      const secretKey = /pass(word)?|secret|token|api[_-]?key|authorization|bearer|credential/i;
      for (const { path: at, value } of strings(raw)) {
        const key = at[at.length - 1] ?? '';
        if (secretKey.test(key)) {
          expect(value, at.join('.')).to.match(/^(Bearer |Basic )?\$\{env:[A-Za-z_][A-Za-z0-9_]*\}$/);
        }
        expect(value, at.join('.')).to.not.match(/^(Bearer|Basic) (?!\$\{env:)/);
        expect(value, `${at.join('.')}: credentials in a URL`).to.not.match(/:\/\/[^/\s]+:[^/\s@]+@/);
      }
      const text = readFileSync(COLLECTOR_CONFIG, 'utf8');
      expect(text).to.not.match(/^\s*(password|token|api_key|client_secret)\s*:/im);
    });
  });
});
