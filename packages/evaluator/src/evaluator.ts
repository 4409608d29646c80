/**
 * The evaluator: telemetry in (its own OTLP receiver, or PromQL over
 * Prometheus), signals kept with staleness, impact rules and alert policies
 * applied on an interval, notifications out. Stateless apart from what it is
 * currently alerting on, so two replicas can run side by side: Alertmanager
 * deduplicates their identical alerts.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Meter } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { EvaluatorConfig } from './config/schema.js';
import { createNotifiers } from './notifiers/registry.js';
import type { AlertNotification, Notifier } from './notifiers/types.js';
import { step, type AlertState } from './policies/engine.js';
import { assess, groupSignals, type Assessment } from './rules/impact.js';
import type { Signal } from './signals/types.js';
import { createOtlpReceiver, type ProbeLatencyPoint } from './sources/otlp.js';
import { createPrometheusSource } from './sources/prometheus.js';
import { SignalStore } from './state/store.js';
import { registerInstruments, type EvaluatorInstruments } from './telemetry.js';
import { createApiServer } from './api/server.js';

export interface EvaluatorDeps {
  logger: Logger;
  env?: NodeJS.ProcessEnv;
  now?: () => number;
  meter?: Meter;
}

export interface SentRecord {
  at: string;
  status: AlertNotification['status'];
  id: string;
  labels: Record<string, string>;
  summary: string;
}

export class Evaluator {
  readonly store: SignalStore;
  readonly notifiers: Notifier[];
  private alerts = new Map<string, AlertState>();
  private readonly history: SentRecord[] = [];
  private readonly receiver: ReturnType<typeof createOtlpReceiver> | undefined;
  private readonly prometheus: ReturnType<typeof createPrometheusSource> | undefined;
  private readonly instruments: EvaluatorInstruments | undefined;
  private timer: NodeJS.Timeout | undefined;
  private server: http.Server | undefined;
  private evaluations = 0;
  /** Probe latency per service and endpoint: the mean over the latest export interval (from cumulative histograms). */
  private readonly latencies = new Map<string, Map<string, { method: string; route: string; component: string; count: number; sum: number; recentMs?: number }>>();
  private readonly now: () => number;

  constructor(
    readonly config: EvaluatorConfig,
    private readonly deps: EvaluatorDeps,
  ) {
    this.now = deps.now ?? Date.now;
    const env = deps.env ?? process.env;
    this.store = new SignalStore({ silentAfter: config.silentAfter, staleAfter: config.staleAfter, retain: config.retain }, this.now);
    this.notifiers = createNotifiers(config.notifiers, { logger: deps.logger, env, now: this.now });
    const onSignals = (signals: Signal[], receivedAt: number) => this.store.ingest(signals, receivedAt);
    const onProbeLatency = (points: ProbeLatencyPoint[]) => this.recordLatency(points);
    if (config.source.type === 'otlp') this.receiver = createOtlpReceiver({ config: config.source, env, onSignals, onProbeLatency, now: this.now });
    else this.prometheus = createPrometheusSource({ config: config.source, onSignals, now: this.now, logger: deps.logger.child({ module: 'prometheus-source' }) });
    if (deps.meter) this.instruments = registerInstruments(deps.meter, () => this.alerts.values(), () => this.notifiers);
  }

  private recordLatency(points: ProbeLatencyPoint[]): void {
    for (const p of points) {
      const perService = this.latencies.get(p.service) ?? new Map();
      this.latencies.set(p.service, perService);
      const key = `${p.instance} ${p.method} ${p.route}`;
      const prev = perService.get(key);
      // Cumulative: the mean of the new observations since the previous export.
      const newCount = p.count - (prev && p.count >= prev.count ? prev.count : 0);
      const newSum = p.sumSeconds - (prev && p.count >= prev.count ? prev.sum : 0);
      const recentMs = newCount > 0 ? (newSum / newCount) * 1000 : prev?.recentMs;
      perService.set(key, { method: p.method, route: p.route, component: p.component, count: p.count, sum: p.sumSeconds, ...(recentMs !== undefined ? { recentMs } : {}) });
    }
  }

  /** One evaluation: current failing signals → impact per component → policy step → notifications. */
  evaluate(): AlertNotification[] {
    const started = performance.now();
    const now = this.now();
    const current = new Map<string, { service: string; component: string; environment?: string; assessment: Assessment }>();
    // With the source down, every service would look silent: no silence pages then (the source alert covers it).
    const sourceDown = this.prometheus !== undefined && !this.prometheus.health().up;
    const active = this.store.active(now).filter((s) => !(sourceDown && s.kind === 'silent'));
    for (const [key, signals] of groupSignals(active)) {
      const first = signals[0]!;
      current.set(key, {
        service: first.service,
        component: first.component,
        ...(first.environment ? { environment: first.environment } : {}),
        assessment: assess(this.config.rules, this.config.defaultImpact, signals),
      });
    }
    const { send, alerts } = step({ ...this.config, publicUrl: this.publicUrl }, this.alerts, current, now);
    this.alerts = alerts;
    for (const n of send) {
      for (const notifier of this.notifiers) notifier.notify(n);
      this.history.push({ at: new Date(now).toISOString(), status: n.status, id: n.id, labels: n.labels, summary: n.annotations.summary ?? '' });
      this.deps.logger[n.status === 'firing' ? 'warn' : 'info']({ alert: n.id, status: n.status, labels: n.labels }, `${n.status}: ${n.annotations.summary}`);
    }
    if (this.history.length > 500) this.history.splice(0, this.history.length - 500);
    this.evaluations++;
    this.instruments?.recordEvaluation((performance.now() - started) / 1000);
    return send;
  }

  get publicUrl(): string | undefined {
    if (this.config.server.publicUrl) return this.config.server.publicUrl;
    const a = this.server?.address() as AddressInfo | null | undefined;
    return a ? `http://${this.config.server.host}:${a.port}` : undefined;
  }

  /** Ready once it has evaluated and its source answers. */
  ready(): { ready: boolean; reason?: string } {
    if (this.evaluations === 0) return { ready: false, reason: 'no evaluation yet' };
    const p = this.prometheus?.health();
    if (p && !p.up) return { ready: false, reason: `prometheus source down: ${p.lastError ?? 'no successful query yet'}` };
    return { ready: true };
  }

  status() {
    const now = this.now();
    return {
      source: this.prometheus ? { type: 'prometheus', ...this.prometheus.health() } : { type: 'otlp', ...this.receiver!.stats() },
      services: this.store.services(now).map((svc) => ({
        ...svc,
        latencies: [...(this.latencies.get(svc.service)?.values() ?? [])].map((l) => ({ method: l.method, route: l.route, component: l.component, probes: l.count, ...(l.recentMs !== undefined ? { recentMs: Math.round(l.recentMs * 10) / 10 } : {}) })),
      })),
      alerts: [...this.alerts.values()].map((a) => ({
        key: a.key,
        service: a.service,
        component: a.component,
        state: a.state,
        since: new Date(a.since).toISOString(),
        ...(a.firedAt ? { firedAt: new Date(a.firedAt).toISOString() } : {}),
        escalationLevel: a.escalationLevel,
        rule: a.assessment.rule,
        impact: a.assessment.impact,
        ...(a.assessment.impact.context ? { contextHeadline: this.config.contexts[a.assessment.impact.context]?.headline } : {}),
        signals: a.assessment.signals.map((s) => ({ kind: s.kind, subject: s.subject, labels: s.labels })),
      })),
      notifiers: this.notifiers.map((n) => n.health()),
      history: this.history.slice(-100),
    };
  }

  /** Starts the HTTP server (status, health, OTLP ingest), the source and the evaluation loop. */
  async start(): Promise<{ url: string }> {
    this.server = createApiServer({ evaluator: this, receiver: this.receiver, otlpPath: this.config.source.type === 'otlp' ? this.config.source.path : undefined });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.config.server.port, this.config.server.host, () => resolve());
    });
    this.prometheus?.start();
    const tick = () => {
      try {
        this.evaluate();
      } catch (err) {
        this.deps.logger.error({ err: err instanceof Error ? err.message : String(err) }, 'evaluation failed');
      }
    };
    tick();
    this.timer = setInterval(tick, this.config.interval);
    this.timer.unref();
    return { url: this.publicUrl! };
  }

  async stop(timeoutMs = 5000): Promise<void> {
    clearInterval(this.timer);
    this.prometheus?.stop();
    await Promise.all(this.notifiers.map((n) => n.flush(timeoutMs)));
    await Promise.all(this.notifiers.map((n) => n.stop()));
    if (this.server) {
      const server = this.server;
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    }
  }
}
