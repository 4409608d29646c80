/**
 * Release over release (releases/tracker.ts): versions by first-seen time, the
 * settle rule, bounds, intended removals (manifest and config), rollback, and a
 * restart from the state file; then the evaluator turning a removal into a page
 * that names the route and the previous version.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { METRIC_ROUTE_REMOVAL_INTENDED, METRIC_ROUTE_SERVED, METRIC_ROUTE_SERVED_OVERFLOW } from '@vigil/sdk/semconv';
import { pino } from 'pino';
import { EvaluatorConfig, ReleaseOptions, type EvaluatorConfigInput } from '../src/config/schema.js';
import { Evaluator } from '../src/evaluator.js';
import { ReleaseTracker, type RouteSetReport } from '../src/releases/tracker.js';
import { OtlpSource } from '../src/config/schema.js';
import { createOtlpReceiver } from '../src/sources/otlp.js';
import { parseState, serializeState } from '../src/state/persist.js';

const T0 = Date.parse('2030-01-01T10:00:00.000Z');
const STALE = 30_000;
const SETTLE = 10_000;

function report(version: string, routes: string[], at: number, over: Partial<RouteSetReport> = {}): RouteSetReport {
  return { service: 'shop', environment: 'prod', instance: `i-${version}`, version, routes: new Map(routes.map((r) => [r, r.includes('users') ? 'accounts' : ''])), overflow: 0, intended: new Set(), observedAt: at, ...over };
}

const tracker = (over: Partial<ReleaseOptions> = {}) => new ReleaseTracker({ ...ReleaseOptions.parse({ settle: SETTLE }), ...over }, STALE);
const OLD = ['GET /api/v1/users', 'GET /api/v1/orders', 'POST /api/v1/orders'];
const NEW = ['GET /api/v1/orders', 'POST /api/v1/orders'];

/** 1.4.2 reports twice, then 1.5.0 from `t`, reporting every 5 s until `until`. */
function deploy(t: ReleaseTracker, newRoutes: string[], until: number, over: Partial<RouteSetReport> = {}): void {
  t.ingest([report('1.4.2', OLD, T0), report('1.4.2', OLD, T0 + 5000)]);
  for (let at = T0 + 20_000; at <= until; at += 5000) t.ingest([report('1.5.0', newRoutes, at, over)]);
}

describe('release over release: the tracker', () => {
  it('names a route the previous version served and the new one does not, with its component and the previous version', () => {
    const t = tracker();
    deploy(t, NEW, T0 + 40_000);
    const s = t.signals(T0 + 40_000);
    expect(s).to.have.length(1);
    expect(s[0]).to.include({ kind: 'release', service: 'shop', environment: 'prod', component: 'accounts', subject: 'GET /api/v1/users', failing: true });
    expect(s[0]!.reason).to.equal('GET /api/v1/users removed since 1.4.2 (not served by 1.5.0)');
    expect(s[0]!.labels['service.version']).to.equal('1.5.0');
  });

  it('says nothing while the new version keeps every route, or while only one version was seen', () => {
    const only = tracker();
    only.ingest([report('1.4.2', OLD, T0), report('1.4.2', OLD, T0 + 20_000)]);
    expect(only.signals(T0 + 20_000)).to.deep.equal([]);
    const same = tracker();
    deploy(same, [...OLD, 'GET /api/v1/new'], T0 + 40_000);
    expect(same.signals(T0 + 40_000)).to.deep.equal([]);
  });

  it('counts an instance of the new version only after it reported for the settle time', () => {
    const t = tracker();
    t.ingest([report('1.4.2', OLD, T0)]);
    t.ingest([report('1.5.0', NEW, T0 + 20_000)]);
    expect(t.signals(T0 + 20_000), 'first report').to.deep.equal([]);
    t.ingest([report('1.5.0', NEW, T0 + 25_000)]);
    expect(t.signals(T0 + 25_000), '5 s of reports (settle 10 s)').to.deep.equal([]);
    t.ingest([report('1.5.0', NEW, T0 + 30_000)]);
    expect(t.signals(T0 + 30_000).map((s) => s.subject)).to.deep.equal(['GET /api/v1/users']);
  });

  it('takes the union of the counted instances: a route one instance of the new version serves is not removed', () => {
    const t = tracker();
    deploy(t, NEW, T0 + 40_000);
    t.ingest([report('1.5.0', OLD, T0 + 20_000, { instance: 'b' }), report('1.5.0', OLD, T0 + 40_000, { instance: 'b' })]);
    expect(t.signals(T0 + 40_000)).to.deep.equal([]);
  });

  it('resolves when the route comes back, and keeps the first detection time while it stays removed', () => {
    const t = tracker();
    deploy(t, NEW, T0 + 40_000);
    const first = t.signals(T0 + 40_000)[0]!;
    t.ingest([report('1.5.0', NEW, T0 + 45_000)]);
    expect(t.signals(T0 + 45_000)[0]!.failingSince).to.equal(first.failingSince);
    t.ingest([report('1.5.0', OLD, T0 + 50_000)]);
    expect(t.signals(T0 + 50_000)).to.deep.equal([]);
  });

  it('does not page a removal the new version lists as intended (manifest removedRoutes), nor one in the config', () => {
    const byManifest = tracker();
    deploy(byManifest, NEW, T0 + 40_000, { intended: new Set(['GET /api/v1/users']) });
    expect(byManifest.signals(T0 + 40_000)).to.deep.equal([]);
    const byConfig = tracker({ intendedRemovals: [{ route: 'GET /api/v1/users', service: 'shop' }] });
    deploy(byConfig, NEW, T0 + 40_000);
    expect(byConfig.signals(T0 + 40_000)).to.deep.equal([]);
    const otherService = tracker({ intendedRemovals: [{ route: 'GET /api/v1/users', service: 'billing' }] });
    deploy(otherService, NEW, T0 + 40_000);
    expect(otherService.signals(T0 + 40_000)).to.have.length(1);
  });

  it('orders versions by first-seen time, not by their names, and a rollback ends the comparison', () => {
    const t = tracker();
    // "1.10.0" after "1.9.0" by time (a string sort would put it first).
    t.ingest([report('1.9.0', OLD, T0), report('1.9.0', OLD, T0 + 5000)]);
    for (let at = T0 + 20_000; at <= T0 + 40_000; at += 5000) t.ingest([report('1.10.0', NEW, at)]);
    expect(t.signals(T0 + 40_000)[0]!.reason).to.equal('GET /api/v1/users removed since 1.9.0 (not served by 1.10.0)');
    // Rolled back: 1.10.0 goes quiet, 1.9.0 reports again; the newest live version has nothing before it.
    t.ingest([report('1.9.0', OLD, T0 + 80_000), report('1.9.0', OLD, T0 + 85_000)]);
    expect(t.signals(T0 + 85_000)).to.deep.equal([]);
  });

  it('holds its findings while no instance of the new version is live', () => {
    const t = tracker();
    deploy(t, NEW, T0 + 40_000);
    expect(t.signals(T0 + 40_000)).to.have.length(1);
    expect(t.signals(T0 + 40_000 + STALE + 1).map((s) => s.subject)).to.deep.equal(['GET /api/v1/users']);
  });

  it('is bounded: versions kept, routes per set, routes named per service; no page when the new set hit the cap', () => {
    const t = tracker({ keepVersions: 2, maxAlerted: 2 });
    const many = Array.from({ length: 5 }, (_, i) => `GET /r${i}`);
    t.ingest([report('1', many, T0), report('2', many, T0 + 1000), report('3', [], T0 + 2000), report('3', [], T0 + 20_000)]);
    const status = t.status(T0 + 20_000)[0]!;
    expect(status.versions.map((v) => v.version)).to.deep.equal(['2', '3']);
    const s = t.signals(T0 + 20_000);
    expect(s.map((x) => x.subject)).to.deep.equal(['GET /r0', 'GET /r1', '3 more routes']);
    expect(s[2]!.reason).to.equal('3 more routes removed since 2 (not served by 3)');

    const capped = tracker({ maxRoutes: 2 });
    capped.ingest([report('1', many, T0)]);
    expect(capped.status(T0)[0]!.versions[0]!.routes).to.equal(2);
    deploy(capped, NEW, T0 + 40_000, { overflow: 3 });
    expect(capped.signals(T0 + 40_000), 'the new set overflowed: a route beyond the cap is unknown').to.deep.equal([]);
  });

  it('keeps at most 50 instances per version: a new one replaces the one heard from longest ago', () => {
    const t = tracker();
    t.ingest([report('1.4.2', OLD, T0), report('1.4.2', OLD, T0 + 5000)]);
    for (let i = 0; i < 60; i++) t.ingest([report('1.5.0', OLD, T0 + 6000 + i, { instance: `old-${i}` })]);
    expect(t.status(T0 + 6000)[0]!.versions[1]!.instances).to.equal(50);
    // Long after those are gone, a new instance of 1.5.0 still counts.
    t.ingest([report('1.5.0', NEW, T0 + 200_000, { instance: 'new' }), report('1.5.0', NEW, T0 + 220_000, { instance: 'new' })]);
    expect(t.signals(T0 + 220_000).map((s) => s.subject)).to.deep.equal(['GET /api/v1/users']);
  });

  it('ignores reports without a version, or with a version too long to be one', () => {
    const t = tracker();
    t.ingest([report('', OLD, T0), report('x'.repeat(101), OLD, T0)]);
    expect(t.status(T0)).to.deep.equal([]);
  });

  it('survives a restart through the state file: the previous release is not forgotten', () => {
    const t = tracker();
    t.ingest([report('1.4.2', OLD, T0), report('1.4.2', OLD, T0 + 5000)]);
    const text = serializeState({ alerts: [], signals: { services: [] }, releases: t.snapshot(), outbox: {}, history: [] }, T0 + 6000);
    const parsed = parseState(text);
    if (!parsed.ok) throw new Error(parsed.reason);
    const after = tracker();
    after.restore(parsed.state.releases!);
    for (let at = T0 + 20_000; at <= T0 + 40_000; at += 5000) after.ingest([report('1.5.0', NEW, at)]);
    expect(after.signals(T0 + 40_000).map((s) => s.reason)).to.deep.equal(['GET /api/v1/users removed since 1.4.2 (not served by 1.5.0)']);
  });

  it('rejects a bad intended removal in the config with the path and what was expected', () => {
    const r = ReleaseOptions.safeParse({ intendedRemovals: [{ route: '/api/v1/users' }] });
    expect(r.success).to.equal(false);
    expect(r.error!.issues[0]!.path).to.deep.equal(['intendedRemovals', 0, 'route']);
    expect(r.error!.issues[0]!.message).to.match(/expected a method and a path such as "GET \/api\/v1\/users"/);
  });
});

describe('release over release: the evaluator pages a removed route', () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(path.join(tmpdir(), 'vigil-releases-'))));
  after(async () => rm(dir, { recursive: true, force: true }));

  const config = (file: string): EvaluatorConfigInput => ({
    source: { type: 'otlp' },
    releases: { settle: '10s' },
    rules: [{ name: 'accounts-api', match: { component: 'accounts' }, impact: { level: 'critical', priority: 'P0', customers: 'everyone signing in' } }],
    policies: { critical: { channels: ['pager'], for: 0 }, high: { channels: ['chat'] }, medium: { channels: ['chat'] }, low: { channels: ['mail'] } },
    notifiers: { console: { type: 'console' } },
    state: { file },
  });

  it('fires through the impact rules with the route and the previous version, and a restarted evaluator still knows 1.4.2', async () => {
    let now = T0;
    const file = path.join(dir, 'state.json');
    const logger = pino({ level: 'silent' });
    const first = new Evaluator(EvaluatorConfig.parse(config(file)), { logger, now: () => now });
    first.releases.ingest([report('1.4.2', OLD, T0), report('1.4.2', OLD, T0 + 5000)]);
    now = T0 + 6000;
    expect(first.evaluate()).to.deep.equal([]);
    await first.stop();

    const second = new Evaluator(EvaluatorConfig.parse(config(file)), { logger, now: () => now });
    for (let at = T0 + 20_000; at <= T0 + 40_000; at += 5000) second.releases.ingest([report('1.5.0', NEW, at)]);
    now = T0 + 40_000;
    const sent = second.evaluate();
    expect(sent).to.have.length(1);
    expect(sent[0]!.status).to.equal('firing');
    expect(sent[0]!.labels).to.include({ service: 'shop', component: 'accounts', severity: 'critical', rule: 'accounts-api' });
    expect(sent[0]!.annotations.summary).to.equal('shop: GET /api/v1/users removed since 1.4.2 (not served by 1.5.0)');
    // The route served again by 1.5.0 resolves the alert.
    second.releases.ingest([report('1.5.0', OLD, T0 + 45_000)]);
    now = T0 + 45_000;
    expect(second.evaluate().map((n) => n.status)).to.deep.equal(['resolved']);
    await second.stop();
  });
});

describe('release over release: the OTLP receiver reads the served set', () => {
  /** Exports once, through the real OTLP/HTTP protobuf exporter, what `observe` observes under `resource`; returns the reports the receiver made. */
  async function exportOnce(resource: Record<string, string>, observe: { served: Array<[string, string, string?]>; overflow?: number; intended?: Array<[string, string]> }): Promise<RouteSetReport[]> {
    const reports: RouteSetReport[] = [];
    const receiver = createOtlpReceiver({ config: OtlpSource.parse({ type: 'otlp' }), env: {}, onSignals: () => undefined, onRoutes: (r) => reports.push(...r) });
    const server = http.createServer(receiver.handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/metrics`;
    const reader = new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter({ url }), exportIntervalMillis: 3_600_000 });
    const provider = new MeterProvider({ resource: resourceFromAttributes(resource), readers: [reader] });
    const meter = provider.getMeter('test');
    const served = meter.createObservableGauge(METRIC_ROUTE_SERVED);
    const overflow = meter.createObservableGauge(METRIC_ROUTE_SERVED_OVERFLOW);
    const intended = meter.createObservableGauge(METRIC_ROUTE_REMOVAL_INTENDED);
    meter.addBatchObservableCallback((result) => {
      for (const [method, route, component] of observe.served) result.observe(served, 1, { 'http.request.method': method, 'http.route': route, ...(component ? { 'vigil.component': component } : {}) });
      if (observe.overflow !== undefined) result.observe(overflow, observe.overflow);
      for (const [method, route] of observe.intended ?? []) result.observe(intended, 1, { 'http.request.method': method, 'http.route': route });
    }, [served, overflow, intended]);
    try {
      await reader.forceFlush();
      return [...reports]; // the shutdown below exports once more
    } finally {
      await provider.shutdown();
      await new Promise((r) => server.close(r));
    }
  }
  const RESOURCE = { 'service.name': 'shop', 'service.instance.id': 'pod-1', 'service.version': '1.5.0', 'deployment.environment.name': 'prod' };

  it('one report per resource: version, instance, routes with their component, overflow, intended removals', async () => {
    const [r, ...more] = await exportOnce(RESOURCE, { served: [['GET', '/api/v1/orders'], ['GET', '/api/v1/profile', 'accounts']], overflow: 0, intended: [['GET', '/api/v1/users']] });
    expect(more).to.deep.equal([]);
    expect(r).to.include({ service: 'shop', instance: 'pod-1', version: '1.5.0', environment: 'prod', overflow: 0 });
    expect([...r!.routes]).to.deep.equal([['GET /api/v1/orders', ''], ['GET /api/v1/profile', 'accounts']]);
    expect([...r!.intended]).to.deep.equal(['GET /api/v1/users']);
  });

  it('no report without service.version, nor without the overflow gauge (a set the SDK did not finish)', async () => {
    const { ['service.version']: _, ...unversioned } = RESOURCE;
    expect(await exportOnce(unversioned, { served: [['GET', '/a']], overflow: 0 })).to.deep.equal([]);
    expect(await exportOnce(RESOURCE, { served: [['GET', '/a']] })).to.deep.equal([]);
  });
});
