/**
 * deploy/collector-config.yaml, checked as a document: no OpenTelemetry Collector binary exists
 * on this machine (neither Debian nor npm packages one, see TEST-RIG.md), so these tests cannot
 * run `otelcol-contrib validate`. With Docker, the real check is
 *
 *   docker run --rm -v "$PWD/deploy/collector-config.yaml:/c.yaml:ro" \
 *     otel/opentelemetry-collector-contrib:0.120.0 validate --config=/c.yaml
 *
 * What is checked here: the pipelines reference only components that are defined, in the order
 * the Collector's docs recommend (memory_limiter first, batch last); Prometheus gets every
 * resource attribute as a label, as on the vmagent path that Vigil's rules and the evaluator
 * expect; the evaluator gets OTLP/HTTP JSON at the address of its receiver in
 * deploy/evaluator.yaml; and nothing secret is written in the file.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';
import { REPO_ROOT } from '../../helpers/rig.js';

type Components = Record<string, Record<string, any> | null>;
interface Pipeline { receivers?: string[]; processors?: string[]; exporters?: string[] }
interface CollectorConfig {
  extensions?: Components;
  receivers?: Components;
  processors?: Components;
  exporters?: Components;
  connectors?: Components;
  service: { extensions?: string[]; pipelines: Record<string, Pipeline> };
}

const FILE = path.join(REPO_ROOT, 'deploy/collector-config.yaml');
const config = parse(readFileSync(FILE, 'utf8')) as CollectorConfig;
const pipelines = Object.entries(config.service.pipelines);
/** `otlphttp/evaluator` → `otlphttp`: the component type; the part after `/` only names an instance. */
const typeOf = (id: string) => id.split('/')[0];

/** Every string in the document, with its key path. */
function strings(node: unknown, at: string[] = []): Array<{ path: string[]; value: string }> {
  if (typeof node === 'string') return [{ path: at, value: node }];
  if (Array.isArray(node)) return node.flatMap((v, i) => strings(v, [...at, String(i)]));
  if (node && typeof node === 'object') return Object.entries(node).flatMap(([k, v]) => strings(v, [...at, k]));
  return [];
}

describe('deploy/collector-config.yaml', () => {
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
    for (const id of config.service.extensions ?? []) {
      expect(config.extensions ?? {}, `extension "${id}" is not defined`).to.have.property(id);
    }
    expect(Object.keys(config.extensions ?? {}).sort()).to.deep.equal([...(config.service.extensions ?? [])].sort());
  });

  it('runs memory_limiter first and batch last in every pipeline', () => {
    for (const [name, p] of pipelines) {
      const types = (p.processors ?? []).map(typeOf);
      expect(types[0], `pipeline ${name}`).to.equal('memory_limiter');
      expect(types[types.length - 1], `pipeline ${name}`).to.equal('batch');
      expect(types, `pipeline ${name}`).to.include('resourcedetection');
    }
  });

  it('receives OTLP over gRPC (4317) and HTTP (4318) on every address, and serves health_check on 13133', () => {
    expect(config.receivers!.otlp!.protocols.grpc.endpoint).to.equal('0.0.0.0:4317');
    expect(config.receivers!.otlp!.protocols.http.endpoint).to.equal('0.0.0.0:4318');
    expect(config.extensions!.health_check!.endpoint).to.equal('0.0.0.0:13133');
    for (const [name, p] of pipelines) expect(p.receivers, `pipeline ${name}`).to.include('otlp');
  });

  it('never overwrites the resource attributes the app sent (service.name, service.instance.id, …)', () => {
    const rd = config.processors!.resourcedetection!;
    expect(rd.detectors).to.include.members(['env', 'system']);
    expect(rd.override, 'resourcedetection must not override: service_name is what every rule keys on').to.equal(false);
  });

  it('remote-writes metrics to Prometheus with resource attributes as labels and Prometheus suffixes', () => {
    const prw = config.exporters!.prometheusremotewrite!;
    expect(prw.endpoint).to.equal('http://prometheus:9090/api/v1/write');
    // service_name, service_instance_id, deployment_environment_name on every series, as on the
    // vmagent path (docs/telemetry.md); otherwise only on target_info
    expect(prw.resource_to_telemetry_conversion?.enabled).to.equal(true);
    // `_seconds` on histograms in seconds and `_total` on counters, as in docs/telemetry.md
    expect(prw.add_metric_suffixes ?? true).to.equal(true);
    expect(config.service.pipelines.metrics!.exporters).to.include('prometheusremotewrite');
  });

  it('sends metrics to the evaluator as OTLP/HTTP JSON, at the receiver deploy/evaluator.yaml opens', () => {
    const ids = Object.keys(config.exporters ?? {}).filter((id) => id === 'otlphttp/evaluator');
    expect(ids).to.have.length(1);
    const ev = config.exporters!['otlphttp/evaluator']!;
    expect(ev.encoding, 'the evaluator refuses protobuf with 415').to.equal('json');
    expect(ev.compression ?? 'gzip', 'the evaluator accepts gzip or nothing').to.be.oneOf(['gzip', 'none']);
    expect(config.service.pipelines.metrics!.exporters).to.include('otlphttp/evaluator');

    const evaluator = parse(readFileSync(path.join(REPO_ROOT, 'deploy/evaluator.yaml'), 'utf8'));
    expect(evaluator.source.type).to.equal('otlp');
    const port = evaluator.server?.port ?? 9464;
    const receiverPath = evaluator.source.path ?? '/v1/metrics';
    const url = ev.metrics_endpoint ?? `${String(ev.endpoint).replace(/\/$/, '')}/v1/metrics`;
    expect(url).to.equal(`http://evaluator:${port}${receiverPath}`);

    // the ingest token, when the evaluator asks for one, is read from the environment
    const auth = ev.headers?.Authorization;
    if (auth !== undefined) expect(auth).to.match(/^Bearer \$\{env:[A-Za-z_][A-Za-z0-9_]*\}$/);
    if (evaluator.source.tokenEnv) expect(auth).to.equal(`Bearer \${env:${evaluator.source.tokenEnv}}`);
  });

  it('sends traces to Jaeger over OTLP gRPC', () => {
    const jaeger = config.exporters!['otlp/jaeger']!;
    expect(jaeger.endpoint).to.equal('jaeger:4317');
    expect(jaeger.tls?.insecure).to.equal(true);
    expect(config.service.pipelines.traces!.exporters).to.deep.equal(['otlp/jaeger']);
  });

  it('holds no literal secret: credentials only as ${env:…}', () => {
    const secretKey = /pass(word)?|secret|token|api[_-]?key|authorization|bearer|credential/i;
    for (const { path: at, value } of strings(config)) {
      const key = at[at.length - 1] ?? '';
      if (secretKey.test(key)) {
        expect(value, at.join('.')).to.match(/^(Bearer |Basic )?\$\{env:[A-Za-z_][A-Za-z0-9_]*\}$/);
      }
      expect(value, at.join('.')).to.not.match(/^(Bearer|Basic) (?!\$\{env:)/);
      expect(value, `${at.join('.')}: credentials in a URL`).to.not.match(/:\/\/[^/\s]+:[^/\s@]+@/);
    }
    // no file-based credential may point into the repository either
    const text = readFileSync(FILE, 'utf8');
    expect(text).to.not.match(/^\s*(password|token|api_key|client_secret)\s*:/im);
  });
});
