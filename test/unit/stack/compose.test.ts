/**
 * docker-compose.yml, as far as it can be checked without a Docker engine: the real
 * Compose v2 (Debian trixie's `docker-compose` CLI plugin, fetched into .stack by
 * scripts/fetch-stack.sh) validates and renders it with `config`, and the rendered model is
 * checked against the rest of the stack — the services, the 127.0.0.1-only ports, pinned images,
 * the files each container is given, no committed secret, and the wiring between the Collector,
 * the evaluator, Prometheus and Alertmanager. No image is built or pulled here.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';
import { loadConfig } from '../../../packages/evaluator/src/config/load.js';
import { collectorConfigDefaults, REPO_ROOT, stackBin } from '../../helpers/rig.js';

const COMPOSE_FILE = path.join(REPO_ROOT, 'docker-compose.yml');
const SERVICES = ['api', 'collector', 'prometheus', 'alertmanager', 'grafana', 'evaluator', 'jaeger'];

interface Port { host_ip?: string; target: number; published?: string; protocol?: string }
interface Mount { type: string; source?: string; target: string; read_only?: boolean }
interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string; target?: string };
  command?: string[] | null;
  entrypoint?: string[] | null;
  environment?: Record<string, string | null>;
  ports?: Port[];
  volumes?: Mount[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
  user?: string;
}
interface ComposeModel { name: string; services: Record<string, Service> }

/**
 * Runs the Compose CLI on docker-compose.yml with a clean environment (only `extraEnv` on
 * top of PATH and a scratch HOME) and no .env file, so nothing on the machine changes the result.
 */
function compose(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const bin = stackBin('docker-compose');
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir(), ...extraEnv };
  return new Promise((resolve, reject) => {
    execFile(
      bin,
      ['--env-file', '/dev/null', '-f', COMPOSE_FILE, ...args],
      { cwd: REPO_ROOT, env, timeout: 30_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, stderr });
        if (typeof err.code === 'number') return resolve({ code: err.code, stdout, stderr });
        reject(err);
      },
    );
  });
}

async function render(extraEnv: Record<string, string> = {}, flags: string[] = []): Promise<ComposeModel> {
  const { code, stdout, stderr } = await compose(['config', '--format', 'json', ...flags], extraEnv);
  expect(code, `docker-compose config failed:\n${stderr}`).to.equal(0);
  return JSON.parse(stdout) as ComposeModel;
}

const rel = (p: string) => path.relative(REPO_ROOT, p);

/** The host path behind a path inside a container, through the service's bind mounts. */
function hostPathOf(service: Service, containerPath: string): string | undefined {
  const mounts = (service.volumes ?? []).filter((m) => m.type === 'bind' && m.source);
  // the most specific mount wins (grafana mounts a directory inside a volume)
  mounts.sort((a, b) => b.target.length - a.target.length);
  for (const m of mounts) {
    if (containerPath === m.target) return m.source;
    if (containerPath.startsWith(`${m.target}/`)) return path.join(m.source!, containerPath.slice(m.target.length + 1));
  }
  return undefined;
}

/** `--flag=value` or `--flag value` in a command line. */
function flagValue(args: string[] | null | undefined, flag: string): string | undefined {
  for (let i = 0; i < (args ?? []).length; i++) {
    const a = args![i]!;
    if (a.startsWith(`${flag}=`)) return a.slice(flag.length + 1);
    if (a === flag) return args![i + 1];
  }
  return undefined;
}

/** `host:port` of a URL or of a plain `host:port` string. */
function hostPort(target: string): { host: string; port: number } {
  const u = new URL(/^[a-z]+:\/\//.test(target) ? target : `tcp://${target}`);
  return { host: u.hostname, port: Number(u.port) };
}

const SECRET_KEY = /pass(word)?|secret|token|api[_-]?key|private[_-]?key|credential|authorization/i;

describe('docker-compose.yml', function () {
  this.timeout(60_000);
  let model: ComposeModel;
  let raw: ComposeModel;

  before(async () => {
    model = await render();
    raw = await render({}, ['--no-interpolate']);
  });

  it('is a valid Compose file: `docker-compose config -q` exits 0', async () => {
    const { code, stderr } = await compose(['config', '-q']);
    expect(code, stderr).to.equal(0);
  });

  it('has the seven services of the stack, in project "vigil"', () => {
    expect(model.name).to.equal('vigil');
    expect(Object.keys(model.services)).to.have.members(SERVICES);
  });

  it('publishes every port on 127.0.0.1 only', () => {
    for (const [name, s] of Object.entries(model.services)) {
      for (const p of s.ports ?? []) {
        expect(p.host_ip, `${name}: port ${p.target} is published on every address`).to.equal('127.0.0.1');
      }
    }
    // the UIs and APIs a user opens from the host
    const published = Object.fromEntries(Object.entries(model.services).map(([n, s]) => [n, (s.ports ?? []).map((p) => p.target)]));
    expect(published).to.deep.include({ api: [8000], evaluator: [9464], prometheus: [9090], alertmanager: [9093], grafana: [3000], jaeger: [16686] });
    expect(published.collector).to.include.members([4317, 4318]);
  });

  it('pins every image to a version tag (never latest, never untagged)', () => {
    for (const [name, s] of Object.entries(model.services)) {
      expect(s.image, `${name} has no image`).to.be.a('string');
      const image = s.image!;
      const lastSegment = image.slice(image.lastIndexOf('/') + 1);
      const tag = lastSegment.includes('@') ? undefined : lastSegment.split(':')[1];
      expect(tag ?? (image.includes('@sha256:') ? 'digest' : undefined), `${name}: ${image} has no tag`).to.be.a('string');
      expect(tag, `${name}: ${image}`).to.not.equal('latest');
      expect(tag, `${name}: ${image}`).to.match(/\d/);
    }
    expect(model.services.collector!.image).to.match(/^vigil\/otelcol:/);
    expect(model.services.jaeger!.image).to.match(/^jaegertracing\/all-in-one:/);
  });

  it('builds the API, the evaluator and the Collector from the repository with Dockerfile, as non-root', () => {
    const dockerfile = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
    const stages = [...dockerfile.matchAll(/^FROM\s+\S+\s+AS\s+(\S+)\s*$/gim)].map((m) => m[1]);
    for (const name of ['api', 'evaluator', 'collector']) {
      const b = model.services[name]!.build;
      expect(b, `${name} is not built`).to.be.an('object');
      expect(b!.context, name).to.equal(REPO_ROOT);
      expect(path.join(b!.context, b!.dockerfile ?? 'Dockerfile'), name).to.equal(path.join(REPO_ROOT, 'Dockerfile'));
      expect(stages, `${name}: target ${b!.target} is not a stage of Dockerfile`).to.include(b!.target);
    }
    expect(dockerfile).to.match(/^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
    expect(dockerfile).to.match(/^USER node$/m);
    // the Collector: the manifest and ocb release scripts/build-collector.sh builds with, not root
    expect(model.services.collector!.build!.target).to.equal('collector');
    const ocb = /^OCB_VERSION=(\S+)$/m.exec(readFileSync(path.join(REPO_ROOT, 'scripts/build-collector.sh'), 'utf8'))?.[1];
    expect(dockerfile).to.include(`go install go.opentelemetry.io/collector/cmd/builder@${ocb}`);
    expect(dockerfile).to.match(/^RUN .*\n?.*builder --config collector\/builder-config\.yaml/m);
    expect(dockerfile).to.match(/^USER 10001$/m);
    const dockerignore = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(dockerignore).to.include.members(['**/node_modules', '**/dist', '**/*.tsbuildinfo', '.stack', '.git', '**/test-results']);
  });

  it('mounts only files and directories that exist in the repository', () => {
    for (const [name, s] of Object.entries(model.services)) {
      for (const m of (s.volumes ?? []).filter((v) => v.type === 'bind')) {
        expect(m.source!.startsWith(`${REPO_ROOT}/`), `${name}: ${m.source} is outside the repository`).to.equal(true);
        expect(existsSync(m.source!), `${name}: ${rel(m.source!)} (mounted at ${m.target}) does not exist`).to.equal(true);
        expect(m.read_only, `${name}: ${m.target} should be mounted read-only`).to.equal(true);
      }
    }
  });

  it('gives each service the config file its command line names', () => {
    const files: Array<[string, string | undefined]> = [
      ['prometheus', flagValue(model.services.prometheus!.command, '--config.file')],
      ['alertmanager', flagValue(model.services.alertmanager!.command, '--config.file')],
      ['collector', flagValue(model.services.collector!.command, '--config')],
      ['evaluator', flagValue(model.services.evaluator!.command, '--config')],
    ];
    const expected: Record<string, string> = {
      prometheus: 'prometheus/prometheus.yml',
      alertmanager: 'alertmanager/alertmanager.yml',
      collector: 'collector-config.yaml',
      evaluator: 'evaluator.yaml',
    };
    for (const [name, inContainer] of files) {
      expect(inContainer, `${name}: no config flag`).to.be.a('string');
      const onHost = hostPathOf(model.services[name]!, inContainer!);
      expect(onHost && rel(onHost), `${name}: ${inContainer}`).to.equal(expected[name]);
      expect(statSync(onHost!).isFile(), `${expected[name]} does not exist`).to.equal(true);
    }
  });

  it("mounts the directories Alertmanager's config reads its secret files from", () => {
    const am = model.services.alertmanager!;
    const config = readFileSync(path.join(REPO_ROOT, 'alertmanager/alertmanager.yml'), 'utf8');
    const files = [...config.matchAll(/^[ \t]*(?:-[ \t]*)?\w+_file:[ \t]*["']?(\/[^\s"']+)/gm)].map((m) => m[1]!);
    for (const f of files) {
      const onHost = hostPathOf(am, f);
      expect(onHost, `${f} is not inside a mount of the alertmanager service`).to.be.a('string');
      // the secret files themselves are the operator's (not committed); their directory is
      expect(existsSync(path.dirname(onHost!)), `${rel(path.dirname(onHost!))} does not exist`).to.equal(true);
    }
  });

  it('gives Grafana its provisioning and dashboards, wired to the mounts and to Prometheus', () => {
    const grafana = model.services.grafana!;
    const provisioning = hostPathOf(grafana, '/etc/grafana/provisioning');
    const dashboards = hostPathOf(grafana, '/var/lib/grafana/dashboards');
    expect(provisioning && rel(provisioning)).to.equal('grafana/provisioning');
    expect(dashboards && rel(dashboards)).to.equal('grafana/dashboards');
    const yamlsIn = (dir: string) =>
      existsSync(dir) ? readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).map((f) => parse(readFileSync(path.join(dir, f), 'utf8'))) : [];

    // every dashboard provider reads from the directory compose mounts the dashboards at
    const providers = yamlsIn(path.join(provisioning!, 'dashboards')).flatMap((d) => d?.providers ?? []);
    expect(providers, 'no dashboard provider in grafana/provisioning/dashboards/').to.not.be.empty;
    for (const p of providers) {
      expect(String(p.options?.path), `provider ${p.name}`).to.match(/^\/var\/lib\/grafana\/dashboards(\/|$)/);
    }
    expect(readdirSync(dashboards!).filter((f) => f.endsWith('.json')), 'no dashboard JSON in grafana/dashboards/').to.not.be.empty;

    // a Prometheus data source at the compose service
    const datasources = yamlsIn(path.join(provisioning!, 'datasources')).flatMap((d) => d?.datasources ?? []);
    const prom = datasources.filter((d: { type?: string }) => d.type === 'prometheus');
    expect(prom, 'no Prometheus data source in grafana/provisioning/datasources/').to.not.be.empty;
    for (const d of prom) expect(d.url, d.name).to.equal('http://prometheus:9090');
  });

  it('commits no secret: every password/token/key setting is empty or comes from the environment', () => {
    const offenders: string[] = [];
    for (const [name, s] of Object.entries(raw.services)) {
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        if (!SECRET_KEY.test(key)) continue;
        // allowed: passed through (null), empty, or `${VAR}` / `${VAR:-}` with an empty default
        if (value === null || value === '' || /^\$\{[A-Za-z_][A-Za-z0-9_]*(:?-)?\}$/.test(value)) continue;
        offenders.push(`${name}: ${key}=${value}`);
      }
    }
    expect(offenders).to.deep.equal([]);
    // and none slips in as a literal anywhere else in the file
    const text = readFileSync(COMPOSE_FILE, 'utf8');
    expect(text).to.not.match(/^[ \t]*(?:-[ \t]*)?[\w.-]*(password|secret|token|api_?key)[\w.-]*[ \t]*[:=][ \t]*["']?[^$\s"'#{]/im);
    // rendered with an empty environment, nothing secret has a value
    for (const [name, s] of Object.entries(model.services)) {
      for (const [key, value] of Object.entries(s.environment ?? {})) {
        if (SECRET_KEY.test(key)) expect(value ?? '', `${name}: ${key}`).to.equal('');
      }
    }
  });

  it('passes VIGIL_DEMO_BREAK through to the API, empty by default', async () => {
    expect(model.services.api!.environment!.VIGIL_DEMO_BREAK).to.equal('');
    const broken = await render({ VIGIL_DEMO_BREAK: 'user_management' });
    expect(broken.services.api!.environment!.VIGIL_DEMO_BREAK).to.equal('user_management');
  });

  it('points the API and the evaluator at the Collector, under the service name of the manifest', () => {
    const collector = collectorConfigDefaults();
    const otlpHttpPort = hostPort(collector.receivers.otlp.protocols.http.endpoint).port;
    const manifest = parse(readFileSync(path.join(REPO_ROOT, 'examples/marketedge-api/vigil.yaml'), 'utf8'));
    const api = model.services.api!.environment!;
    expect(api.OTEL_EXPORTER_OTLP_ENDPOINT).to.equal(`http://collector:${otlpHttpPort}`);
    expect(api.OTEL_EXPORTER_OTLP_PROTOCOL).to.equal('http/protobuf');
    expect(api.OTEL_SERVICE_NAME).to.equal(manifest.service);
    expect(api.HOST, 'the API must listen on every address of its container').to.equal('0.0.0.0');
    expect(model.services.api!.ports![0]!.target).to.equal(Number(api.PORT));
    // the evaluator's own metrics (vigil_evaluator_up) reach Prometheus through the Collector
    expect(model.services.evaluator!.environment!.OTEL_EXPORTER_OTLP_ENDPOINT).to.equal(`http://collector:${otlpHttpPort}`);
  });

  it('sends the Collector to services that exist, and Prometheus accepts its remote write', () => {
    const collector = collectorConfigDefaults();
    const targets = [
      collector.exporters.prometheus_remote_write.http.endpoint,
      collector.exporters['otlp_http/evaluator'].metrics_endpoint,
      collector.exporters['otlp_grpc/jaeger'].endpoint,
    ];
    for (const t of targets) expect(SERVICES, t).to.include(hostPort(t).host);
    expect(model.services.prometheus!.command).to.include('--web.enable-remote-write-receiver');
  });

  it('evaluator.yaml: a valid config for the stack (otlp source, 0.0.0.0, Alertmanager at the service)', async () => {
    const config = await loadConfig(path.join(REPO_ROOT, 'evaluator.yaml'));
    expect(config.server.host).to.equal('0.0.0.0');
    expect(config.source.type).to.equal('otlp');
    expect(model.services.evaluator!.ports!.map((p) => p.target)).to.include(config.server.port);
    const notifiers = Object.values(config.notifiers);
    expect(notifiers.map((n) => n.type)).to.include.members(['alertmanager', 'console']);
    for (const n of notifiers) {
      if (n.type !== 'alertmanager') continue;
      for (const url of n.urls) expect(url).to.equal('http://alertmanager:9093');
    }
    // the same rules, policies and contexts as the example's evaluator
    const example = await loadConfig(path.join(REPO_ROOT, 'examples/marketedge-api/evaluator.yaml'));
    expect(config.rules).to.deep.equal(example.rules);
    expect(config.policies).to.deep.equal(example.policies);
    expect(config.contexts).to.deep.equal(example.contexts);
  });

  it('Prometheus alerts the Alertmanager service', () => {
    const prom = parse(readFileSync(path.join(REPO_ROOT, 'prometheus/prometheus.yml'), 'utf8'));
    const targets: string[] = (prom.alerting?.alertmanagers ?? []).flatMap((a: { static_configs?: Array<{ targets?: string[] }> }) =>
      (a.static_configs ?? []).flatMap((c) => c.targets ?? []),
    );
    expect(targets).to.deep.equal(['alertmanager:9093']);
  });

  it('waits only on services that have a health check, with no dependency cycle', () => {
    for (const [name, s] of Object.entries(model.services)) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(SERVICES, `${name} depends on unknown ${dep}`).to.include(dep);
        if (condition === 'service_healthy') {
          const hc = model.services[dep]!.healthcheck;
          expect(hc?.test && !hc.disable, `${name} waits for ${dep} to be healthy, which has no health check`).to.equal(true);
        }
      }
    }
    const visiting = new Set<string>();
    const done = new Set<string>();
    const visit = (n: string, trail: string[]): void => {
      if (done.has(n)) return;
      expect(visiting.has(n), `dependency cycle: ${[...trail, n].join(' → ')}`).to.equal(false);
      visiting.add(n);
      for (const d of Object.keys(model.services[n]!.depends_on ?? {})) visit(d, [...trail, n]);
      visiting.delete(n);
      done.add(n);
    };
    for (const n of SERVICES) visit(n, []);
  });
});
