/**
 * The evaluator: telemetry in (its own OTLP receiver, or PromQL over
 * Prometheus), signals kept with staleness, impact rules and alert policies
 * applied on an interval, notifications out. Stateless apart from what it is
 * currently alerting on, so two replicas can run side by side: Alertmanager
 * deduplicates their identical alerts, whose start comes from the data's own
 * times. A replica that starts without an alert it should hold learns its start
 * and escalation level from Alertmanager (hints, `learnHints`), dropped after
 * the warm-up.
 *
 * With `state.file` that state survives a restart (state/persist.ts): the
 * alerts, the signals and the undelivered notifications are written before
 * any notification can leave, and read back at start. After a restart:
 *
 * - a firing alert stays firing with its `firedAt`, escalation level and
 *   labels: no new page, and escalation at `firedAt + after`;
 * - WARM-UP: until the source has had its chance to speak (OTLP: `staleAfter`
 *   after the start, the longest a live instance goes without exporting;
 *   Prometheus: the first successful poll), a restored alert with no signal
 *   counts as still failing, with its last assessment, instead of resolving
 *   for want of data;
 * - silence is judged only over time the evaluator could hear: a service is
 *   silent when nothing came for `silentAfter` since max(its last data, the
 *   restart with restored state, the Prometheus source's recovery). While it
 *   cannot judge, it raises no silence alert and resolves none it holds.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Meter } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { EvaluatorConfig } from './config/schema.js';
import { createNotifiers } from './notifiers/registry.js';
import type { AlertNotification, HeldAlert, Notifier } from './notifiers/types.js';
import { hintsFrom, policyFor, step, toNotification, type AlertHint, type AlertState } from './policies/engine.js';
import { assess, groupSignals, type Assessment } from './rules/impact.js';
import type { Signal } from './signals/types.js';
import { createOtlpReceiver, type ProbeLatencyPoint } from './sources/otlp.js';
import { createPrometheusSource } from './sources/prometheus.js';
import { StateFile, type EvaluatorState } from './state/persist.js';
import { SignalStore } from './state/store.js';
import { signalKey } from './signals/types.js';
import { registerInstruments, type EvaluatorInstruments } from './telemetry.js';
import { createApiServer } from './api/server.js';
import { ReleaseTracker, type RouteSetReport } from './releases/tracker.js';

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

/** At start, how long the evaluator waits for its notifiers' receivers to say which alerts they hold. */
export const RESTORE_TIMEOUT_MS = 2000;

/** With only signal heartbeats changed (no alert, no queue), the state file is rewritten at most this often. */
export const STATE_SNAPSHOT_EVERY_MS = 5000;

export class Evaluator {
  readonly store: SignalStore;
  /** Each service's served route set per version (release over release). */
  readonly releases: ReleaseTracker;
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
  private readonly stateFile: StateFile | undefined;
  /** Alerts read from the state file, held (counted as still failing) until the warm-up is over. */
  private readonly restoredKeys = new Set<string>();
  /** Undelivered notifications read from the state file, per notifier name: handed back at start. */
  private restoredOutbox: Record<string, AlertNotification[]> = {};
  private restored: { alerts: number; savedAt: number } | undefined;
  /** Start of the evaluation loop (or construction): when the warm-up began. */
  private startedAt: number;
  /** Silence is judged only over time after this (the restart with restored state, the source's recovery). */
  private hearingSince = -Infinity;
  private sourceFailed = false;
  private saved = { alerts: '', outbox: '', revision: -1, at: -Infinity };
  /** What Alertmanager held at start, per group key: used once by a group failing here, dropped after the warm-up. */
  private hints = new Map<string, AlertHint[]>();

  constructor(
    readonly config: EvaluatorConfig,
    private readonly deps: EvaluatorDeps,
  ) {
    this.now = deps.now ?? Date.now;
    const env = deps.env ?? process.env;
    this.store = new SignalStore(
      { silentAfter: config.silentAfter, staleAfter: config.staleAfter, retain: config.retain, alwaysRunning: (service) => config.services[service]?.alwaysRunning === true },
      this.now,
    );
    this.releases = new ReleaseTracker(config.releases, config.staleAfter);
    this.notifiers = createNotifiers(config.notifiers, { logger: deps.logger, env, now: this.now });
    const onSignals = (signals: Signal[], receivedAt: number) => this.store.ingest(signals, receivedAt);
    const onProbeLatency = (points: ProbeLatencyPoint[]) => this.recordLatency(points);
    if (config.source.type === 'otlp') this.receiver = createOtlpReceiver({ config: config.source, env, onSignals, onProbeLatency, onRoutes: (reports) => this.releases.ingest(reports), now: this.now });
    else
      this.prometheus = createPrometheusSource({
        config: config.source,
        onSignals,
        ...(config.releases.enabled && { onRoutes: (reports: RouteSetReport[]) => this.releases.ingest(reports) }),
        now: this.now,
        logger: deps.logger.child({ module: 'prometheus-source' }),
      });
    if (deps.meter) this.instruments = registerInstruments(deps.meter, () => this.alerts.values(), () => this.notifiers, () => this.receiver?.stats().rejectedBy ?? {});
    this.startedAt = this.now();
    if (config.state) {
      this.stateFile = new StateFile(config.state.file, deps.logger.child({ module: 'state' }), this.now);
      const loaded = this.stateFile.load();
      if (loaded) this.restore(loaded.state, loaded.savedAt);
    }
    this.receiver?.restoreRejected(this.store.snapshot().rejected ?? []);
  }

  private restore(state: EvaluatorState, savedAt: number): void {
    this.store.restore(state.signals);
    if (state.releases) this.releases.restore(state.releases);
    this.alerts = new Map(state.alerts.map((a) => [a.key, a]));
    for (const key of this.alerts.keys()) this.restoredKeys.add(key);
    this.restoredOutbox = state.outbox;
    this.history.push(...state.history.slice(-500));
    this.restored = { alerts: this.alerts.size, savedAt };
    // OTLP: nothing could be heard while this process was not running.
    if (this.config.source.type === 'otlp') this.hearingSince = this.now();
    const firing = state.alerts.filter((a) => a.state === 'firing').length;
    const queued = Object.values(state.outbox).reduce((n, l) => n + l.length, 0);
    this.deps.logger.info(
      { stateFile: this.stateFile!.file, savedAt: new Date(savedAt).toISOString(), alerts: this.alerts.size, firing, undelivered: queued },
      `restored ${this.alerts.size} alert(s) (${firing} firing) and ${queued} undelivered notification(s) from the state file`,
    );
  }

  /**
   * At start, after a restore: Alertmanager hears every restored firing alert
   * again with its labels and `startsAt` unchanged (the same alert to it, not a
   * new one; its resend timer needs them too), and every notifier gets back
   * what it had not delivered. Webhook and console hear no restored alert again.
   */
  private redeliver(): void {
    const now = this.now();
    for (const notifier of this.notifiers) {
      const list: AlertNotification[] = [];
      if (notifier.type === 'alertmanager') {
        for (const a of this.alerts.values()) {
          if (a.state !== 'firing' || !a.sentLabels) continue;
          list.push({ ...toNotification(a, policyFor(this.config, a.assessment), 'firing', now, this.publicUrl), labels: a.sentLabels, id: `${a.key}|${a.escalationLevel}` });
        }
      }
      list.push(...(this.restoredOutbox[notifier.name] ?? []));
      for (const n of list) notifier.notify(n);
      if (list.length) this.deps.logger.info({ notifier: notifier.name, notifications: list.length }, 'handed restored notifications back to the notifier');
    }
    this.restoredOutbox = {};
  }

  /**
   * What the receivers (Alertmanager) already hold of this evaluator's alerts, as
   * hints (engine `AlertHint`): a replica started without a state file adopts
   * another's start and escalation level. Never blocks start past
   * {@link RESTORE_TIMEOUT_MS}.
   */
  private async learnHints(): Promise<void> {
    const restoring = this.notifiers.filter((n) => n.restore).map((n) => n.restore!(RESTORE_TIMEOUT_MS));
    if (!restoring.length) return;
    let timer: NodeJS.Timeout | undefined;
    // Each notifier bounds its own requests; this bounds a notifier that does not.
    const late = new Promise<HeldAlert[][]>((r) => (timer = setTimeout(() => r([]), RESTORE_TIMEOUT_MS + 500)));
    const held = (await Promise.race([Promise.all(restoring), late])).flat();
    clearTimeout(timer);
    this.hints = hintsFrom(held.map((a) => ({ labels: a.labels, startsAt: a.startsAt.getTime() })));
    if (this.hints.size) this.deps.logger.info({ hints: [...this.hints.keys()] }, `${this.hints.size} alert group(s) held by Alertmanager: a failing group here takes their start and escalation level`);
  }

  /** Restored alerts are held until the source has had its chance to deliver. */
  private warmingUp(now: number): boolean {
    return this.restoredKeys.size > 0 && !this.sourceHeard(now);
  }

  /** The source has had its chance to deliver since the start: OTLP `staleAfter`, Prometheus its first successful poll. */
  private sourceHeard(now: number): boolean {
    if (this.prometheus) {
      const { lastSuccessAt } = this.prometheus.health();
      return lastSuccessAt !== undefined && lastSuccessAt >= this.startedAt;
    }
    return now - this.startedAt >= this.config.staleAfter;
  }

  /** A Prometheus source that failed and answers again: silence is judged afresh from its recovery. */
  private trackSource(now: number): void {
    if (!this.prometheus) return;
    const h = this.prometheus.health();
    if (!h.up) {
      if (h.consecutiveFailures > 0) this.sourceFailed = true;
    } else if (this.sourceFailed) {
      this.sourceFailed = false;
      this.hearingSince = h.lastSuccessAt ?? now;
    }
  }

  /** Whether absence can be judged now: the source is up and could hear for `silentAfter` (so an instance unseen that long is gone). */
  private canJudgeAbsence(now: number): boolean {
    const sourceDown = this.prometheus !== undefined && !this.prometheus.health().up;
    return !sourceDown && now - this.hearingSince > this.config.silentAfter;
  }

  /** Whether a `silent` signal counts now; one that cannot be judged still holds a silence alert already raised. */
  private silenceCounts(s: Signal, now: number): boolean {
    if (this.canJudgeAbsence(now)) return true;
    const held = this.alerts.get(`${s.service}|${s.component}`);
    return held !== undefined && held.assessment.signals.some((x) => x.kind === 'silent');
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
    this.trackSource(now);
    // With the source down (or just back, or the evaluator just restarted), every service would
    // look silent: no new silence alert then, and none held is resolved for it.
    // Nor is an instance unheard of meanwhile taken for gone: its evidence stands.
    const all = this.store.active(now, this.canJudgeAbsence(now));
    // A service whose batches are refused is not silent: the rejection says why nothing arrives.
    const refused = new Set(all.filter((s) => s.kind === 'rejected').map((s) => s.service));
    const active = all.filter((s) => s.kind !== 'silent' || (!refused.has(s.service) && this.silenceCounts(s, now)));
    // Release over release: removed routes are signals of the evaluator's own, computed now.
    active.push(...this.releases.signals(now));
    for (const [key, signals] of groupSignals(active)) {
      const first = signals[0]!;
      current.set(key, {
        service: first.service,
        component: first.component,
        ...(first.environment ? { environment: first.environment } : {}),
        assessment: assess(this.config.rules, this.config.defaultImpact, signals),
      });
    }
    if (this.restoredKeys.size) {
      if (this.warmingUp(now)) {
        for (const key of this.restoredKeys) {
          const a = this.alerts.get(key);
          if (!a || current.has(key)) continue;
          current.set(key, { service: a.service, component: a.component, ...(a.environment ? { environment: a.environment } : {}), assessment: a.assessment });
        }
      } else {
        this.deps.logger.info({ held: [...this.restoredKeys].filter((k) => this.alerts.has(k) && !current.has(k)) }, 'warm-up over: restored alerts now follow the signals');
        this.restoredKeys.clear();
      }
    }
    const { send, alerts } = step({ ...this.config, publicUrl: this.publicUrl }, this.alerts, current, now, this.hints);
    this.alerts = alerts;
    if (this.hints.size && this.sourceHeard(now)) {
      // A hint no group here matched by now is another evaluator's alert (or one that ended): nothing is sent for it.
      this.deps.logger.info({ unused: [...this.hints.keys()] }, 'warm-up over: hints from Alertmanager no group here matched are dropped');
      this.hints.clear();
    }
    for (const n of send) {
      for (const notifier of this.notifiers) notifier.notify(n);
      this.history.push({ at: new Date(now).toISOString(), status: n.status, id: n.id, labels: n.labels, summary: n.annotations.summary ?? '' });
      this.deps.logger[n.status === 'firing' ? 'warn' : 'info']({ alert: n.id, status: n.status, labels: n.labels }, `${n.status}: ${n.annotations.summary}`);
    }
    if (this.history.length > 500) this.history.splice(0, this.history.length - 500);
    // Synchronously, before the event loop can put a byte of these notifications on the wire.
    this.persist(now, send.length > 0);
    this.evaluations++;
    this.instruments?.recordEvaluation((performance.now() - started) / 1000);
    return send;
  }

  /** The notifications each notifier still has to deliver. */
  private outbox(): Record<string, AlertNotification[]> {
    const out: Record<string, AlertNotification[]> = {};
    for (const n of this.notifiers) {
      const pending = n.pending?.() ?? [];
      if (pending.length) out[n.name] = pending;
    }
    return out;
  }

  private collect(outbox = this.outbox()): EvaluatorState {
    return { alerts: [...this.alerts.values()], signals: this.store.snapshot(), releases: this.releases.snapshot(), outbox, history: this.history.slice(-100) };
  }

  /**
   * Writes the state file when an alert changed state (or notifications were
   * sent), when a notifier's queue changed (queued, delivered), and otherwise at
   * most every {@link STATE_SNAPSHOT_EVERY_MS} when only signals changed.
   */
  private persist(now: number, urgent: boolean): void {
    if (!this.stateFile) return;
    const alerts = JSON.stringify(
      [...this.alerts.values()].map((a) => [a.key, a.state, a.since, a.firedAt, a.escalationLevel, a.lastSentAt, a.sentLabels, a.assessment.rule, a.assessment.signals.map(signalKey)]),
    );
    const outbox = this.outbox();
    const outboxText = JSON.stringify(outbox);
    const revision = this.store.revision + this.releases.revision;
    const changed = urgent || alerts !== this.saved.alerts || outboxText !== this.saved.outbox;
    if (!changed && (revision === this.saved.revision || now - this.saved.at < STATE_SNAPSHOT_EVERY_MS)) return;
    if (this.stateFile.save(this.collect(outbox))) this.saved = { alerts, outbox: outboxText, revision, at: now };
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
        signals: a.assessment.signals.map((s) => ({ kind: s.kind, subject: s.subject, ...(s.reason ? { reason: s.reason } : {}), labels: s.labels })),
      })),
      releases: this.releases.status(now),
      notifiers: this.notifiers.map((n) => n.health()),
      history: this.history.slice(-100),
      ...(this.stateFile && {
        state: {
          file: this.stateFile.file,
          ...(this.stateFile.lastSavedAt !== undefined && { savedAt: new Date(this.stateFile.lastSavedAt).toISOString() }),
          ...(this.stateFile.lastError !== undefined && { lastError: this.stateFile.lastError }),
          ...(this.restored && { restored: { alerts: this.restored.alerts, savedAt: new Date(this.restored.savedAt).toISOString() } }),
          warmingUp: this.warmingUp(now),
        },
      }),
      ...(this.hints.size && { hints: [...this.hints.values()].flat().map((h) => ({ ...h, startsAt: new Date(h.startsAt).toISOString() })) }),
    };
  }

  /** Starts the HTTP server (status, health, OTLP ingest), the source and the evaluation loop. */
  async start(): Promise<{ url: string }> {
    this.server = createApiServer({ evaluator: this, receiver: this.receiver, otlpPath: this.config.source.type === 'otlp' ? this.config.source.path : undefined });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.config.server.port, this.config.server.host, () => resolve());
    });
    await this.learnHints();
    this.startedAt = this.now();
    this.redeliver();
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
    // Taken before the queues stop: the delivery in flight is aborted by stop() and would drop out.
    const outbox = this.outbox();
    await Promise.all(this.notifiers.map((n) => n.stop()));
    if (this.stateFile && this.stateFile.save(this.collect(outbox))) {
      this.deps.logger.info({ stateFile: this.stateFile.file, alerts: this.alerts.size, undelivered: Object.values(outbox).reduce((n, l) => n + l.length, 0) }, 'state saved');
    }
    if (this.server) {
      const server = this.server;
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    }
  }
}
