/**
 * The latest signals per service and instance, with liveness and silence.
 *
 * Every batch a source delivers is a heartbeat of the instances it speaks for.
 * An instance is live while it was seen within `staleAfter`; a service is
 * silent when its newest instance was seen longer than `silentAfter` ago; an
 * instance unseen for `retain` is forgotten with its signals.
 *
 * What counts now, per service and signal key: if a live instance has the key,
 * the key fails when any live instance reports it failing; if none does, the
 * last value of the most recently seen instance that has it stands. So a
 * process that exported "refused to start" and exited keeps its evidence until
 * another instance reports that key healthy, or `retain` passes.
 *
 * Lifecycle (`lifecycle` signals, from `vigil.instance.running`):
 * - an instance whose latest `lifecycle` says it stopped cleanly is STOPPED:
 *   never live, its signals no longer count (its alerts resolve), and it is no
 *   reason for silence. A service whose newest instance stopped cleanly is
 *   retired, not silent; if it is configured `alwaysRunning` and no instance
 *   is live, it gets one `no_instance` signal instead.
 * - an instance not seen for `silentAfter` that did not stop cleanly is GONE
 *   (killed, crashed, cut off): its signals no longer count either, unless it
 *   refused to start (a fail-fast refusal keeps its evidence); if it was the
 *   newest, the service is silent, so a killed instance's alerts become the one
 *   silence alert, which resolves when an instance of the service is heard again.
 *
 * `rejected` signals (the OTLP receiver refusing a sender's batches) are held
 * per service apart from the instances: a refused batch is no heartbeat, and a
 * sender known only by its address is no service that could fall silent.
 */
import { signalKey, type Signal } from '../signals/types.js';

export interface SignalStoreOptions {
  /** No data from any instance of a service for this long → one `silent` signal for the service (ms). */
  silentAfter: number;
  /** An instance not seen for this long is no longer live (ms). */
  staleAfter: number;
  /** An instance not seen for this long is dropped with its signals (ms). */
  retain: number;
  /** Services that must always run: no instance live and the newest stopped cleanly → a `no_instance` signal. Their newest instance is never dropped. */
  alwaysRunning?: (service: string) => boolean;
}

export interface InstanceStatus {
  instance: string;
  environment?: string;
  lastSeen: number;
  live: boolean;
  /** It said it stopped cleanly (its last `vigil.instance.running` was 0). */
  stopped?: boolean;
}

export interface ServiceStatus {
  service: string;
  /** The environment of the most recently seen instance. */
  environment?: string;
  instances: InstanceStatus[];
  /** Newest `lastSeen` of its instances. */
  lastSeen: number;
  silent: boolean;
  /** It must always run (`services.<name>.alwaysRunning`) and no instance runs: its last one stopped cleanly. */
  noInstance?: boolean;
  /** The signal that counts now for each key (failing or not), by component (`''` for process, startup, error rate, …). */
  components: Record<string, Signal[]>;
}

interface InstanceState {
  lastSeen: number;
  environment?: string;
  signals: Map<string, Signal>;
  /** Its latest `lifecycle` signal: failing once it stopped cleanly. */
  lifecycle?: Signal;
}

const isStopped = (st: InstanceState) => st.lifecycle?.failing === true;
/** It exported "refused to start" (`vigil.startup.success` 0). */
const refusedToStart = (st: InstanceState) => [...st.signals.values()].some((s) => s.kind === 'startup' && s.failing);

/** The store as data, for the state file ({@link SignalStore.snapshot}). */
export interface StoreSnapshot {
  services: Array<{ service: string; instances: Array<{ instance: string; lastSeen: number; environment?: string; signals: Signal[] }> }>;
  /** Failing `rejected` signals, one per sender. */
  rejected?: Signal[];
}

/** The subject of the synthetic signal of a silent service. */
export const SILENT_SUBJECT = 'telemetry';
/** The subject of the synthetic signal of an always-running service with no running instance. */
export const NO_INSTANCE_SUBJECT = 'running instance';

export class SignalStore {
  /** service → instance → state. */
  private readonly byService = new Map<string, Map<string, InstanceState>>();
  /** sender (service) → its failing `rejected` signal. */
  private readonly rejected = new Map<string, Signal>();
  private changes = 0;

  constructor(
    readonly options: SignalStoreOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** Grows with every ingest and every instance forgotten: a cheap "has it changed since". */
  get revision(): number {
    return this.changes;
  }

  /** Everything the store holds, as plain data. */
  snapshot(): StoreSnapshot {
    return {
      services: [...this.byService].map(([service, instances]) => ({
        service,
        instances: [...instances].map(([instance, st]) => ({
          instance,
          lastSeen: st.lastSeen,
          ...(st.environment ? { environment: st.environment } : {}),
          signals: st.lifecycle ? [...st.signals.values(), st.lifecycle] : [...st.signals.values()],
        })),
      })),
      rejected: [...this.rejected.values()],
    };
  }

  /** Puts a snapshot's instances back (each keeps its `lastSeen`); a newer state already held wins. */
  restore(snapshot: StoreSnapshot): void {
    for (const s of snapshot.rejected ?? []) if (s.kind === 'rejected' && s.failing && !this.rejected.has(s.service)) this.rejected.set(s.service, s);
    for (const { service, instances } of snapshot.services) {
      for (const { instance, lastSeen, environment, signals } of instances) {
        let byInstance = this.byService.get(service);
        if (!byInstance) this.byService.set(service, (byInstance = new Map()));
        let inst = byInstance.get(instance);
        if (!inst) byInstance.set(instance, (inst = { lastSeen, signals: new Map() }));
        inst.lastSeen = Math.max(inst.lastSeen, lastSeen);
        if (environment && !inst.environment) inst.environment = environment;
        for (const s of signals) {
          if (s.kind === 'silent' || s.kind === 'no_instance') continue;
          if (s.kind === 'lifecycle') {
            if (!inst.lifecycle || s.observedAt > inst.lifecycle.observedAt) inst.lifecycle = s;
            continue;
          }
          const key = signalKey(s);
          const held = inst.signals.get(key);
          if (!held || s.observedAt > held.observedAt) inst.signals.set(key, s);
        }
      }
    }
    this.changes++;
  }

  /** Keeps the latest signal per (service, instance, key); every instance in the batch was seen at `receivedAt`. */
  ingest(signals: Signal[], receivedAt: number): void {
    if (signals.length) this.changes++;
    for (const s of signals) {
      if (s.kind === 'silent' || s.kind === 'no_instance') continue; // the store's own conclusions, never an input
      if (s.kind === 'rejected') {
        if (s.failing) this.rejected.set(s.service, s);
        else this.rejected.delete(s.service);
        continue;
      }
      let instances = this.byService.get(s.service);
      if (!instances) this.byService.set(s.service, (instances = new Map()));
      let inst = instances.get(s.instance);
      if (!inst) instances.set(s.instance, (inst = { lastSeen: receivedAt, signals: new Map() }));
      // Batches may arrive out of order: lastSeen never goes back, nor does a key's value.
      inst.lastSeen = Math.max(inst.lastSeen, receivedAt);
      if (s.environment) inst.environment = s.environment;
      if (s.kind === 'lifecycle') {
        // Out of order too: a late "running" never undoes a newer "stopped".
        if (!inst.lifecycle || s.observedAt >= inst.lifecycle.observedAt) inst.lifecycle = s;
        continue;
      }
      const key = signalKey(s);
      const previous = inst.signals.get(key);
      if (!previous || s.observedAt >= previous.observedAt) inst.signals.set(key, withFailingSince(s, previous));
    }
  }

  /**
   * The failing signals that count now (one per service and key), plus a
   * `silent` or `no_instance` signal per service that has one. With
   * `judgeGone` false (the caller could not hear lately: its source was down,
   * or it just restarted), an instance unseen for `silentAfter` is not taken
   * for gone: its evidence stands as a stale instance's does.
   */
  active(now: number = this.now(), judgeGone = true): Signal[] {
    this.prune(now);
    const out: Signal[] = [];
    for (const [service, instances] of this.byService) {
      for (const s of this.resolve(instances, now, judgeGone).values()) if (s.failing) out.push(s);
      const newest = newestInstance(instances);
      if (!newest) continue;
      const absence = this.absence(service, instances, now);
      if (absence) {
        out.push({
          kind: absence,
          service,
          instance: '',
          ...(newest[1].environment ? { environment: newest[1].environment } : {}),
          component: '',
          subject: absence === 'silent' ? SILENT_SUBJECT : NO_INSTANCE_SUBJECT,
          failing: true,
          labels: {},
          observedAt: absence === 'silent' ? newest[1].lastSeen : newest[1].lifecycle!.observedAt,
          // Silent from when the silence counts (last data + silentAfter): an alert's start and escalation
          // count from there, the same on every replica that heard the same data.
          ...(absence === 'silent' && { failingSince: newest[1].lastSeen + this.options.silentAfter }),
        });
      }
    }
    out.push(...this.rejected.values());
    return out;
  }

  /** Every service as it stands now, for the status API. */
  services(now: number = this.now()): ServiceStatus[] {
    this.prune(now);
    const out: ServiceStatus[] = [];
    for (const [service, instances] of this.byService) {
      const newest = newestInstance(instances);
      if (!newest) continue;
      const components: Record<string, Signal[]> = {};
      const current = [...this.resolve(instances, now).values()].sort((a, b) => signalKey(a).localeCompare(signalKey(b)));
      const rejected = this.rejected.get(service);
      for (const s of rejected ? [...current, rejected] : current) (components[s.component] ??= []).push(s);
      const absence = this.absence(service, instances, now);
      out.push({
        service,
        ...(newest[1].environment ? { environment: newest[1].environment } : {}),
        instances: [...instances]
          .map(([instance, st]) => ({ instance, ...(st.environment ? { environment: st.environment } : {}), lastSeen: st.lastSeen, live: this.isLive(st, now), ...(isStopped(st) ? { stopped: true } : {}) }))
          .sort((a, b) => b.lastSeen - a.lastSeen || a.instance.localeCompare(b.instance)),
        lastSeen: newest[1].lastSeen,
        silent: absence === 'silent',
        ...(absence === 'no_instance' ? { noInstance: true } : {}),
        components,
      });
    }
    return out.sort((a, b) => a.service.localeCompare(b.service));
  }

  private isLive(st: InstanceState, now: number): boolean {
    return !isStopped(st) && now - st.lastSeen <= this.options.staleAfter;
  }

  /** Killed, crashed or cut off: not seen for `silentAfter`, and it never said it stopped. */
  private isGone(st: InstanceState, now: number): boolean {
    return !isStopped(st) && now - st.lastSeen > this.options.silentAfter;
  }

  /**
   * Why a service has no instance to hear from, if it has none: `silent` when
   * its newest instance is gone (not stopped cleanly); `no_instance` when the
   * newest stopped cleanly, none is live, and the service must always run.
   */
  private absence(service: string, instances: Map<string, InstanceState>, now: number): 'silent' | 'no_instance' | undefined {
    const newest = newestInstance(instances);
    if (!newest) return undefined;
    if (!isStopped(newest[1])) return now - newest[1].lastSeen > this.options.silentAfter ? 'silent' : undefined;
    if (!this.options.alwaysRunning?.(service)) return undefined;
    for (const st of instances.values()) if (this.isLive(st, now)) return undefined;
    return 'no_instance';
  }

  /** The signal that counts for each key of a service. */
  private resolve(instances: Map<string, InstanceState>, now: number, judgeGone = true): Map<string, Signal> {
    const live = new Map<string, Signal>(); // key → the live verdict (a failing signal wins)
    const fallback = new Map<string, { signal: Signal; lastSeen: number }>(); // key → the most recently seen instance's value
    for (const st of instances.values()) {
      // A stopped instance's signals end with it, and so do a gone one's, unless it refused to start:
      // a fail-fast refusal keeps its evidence (the process was never up to be killed).
      if (isStopped(st)) continue;
      if (judgeGone && this.isGone(st, now) && !refusedToStart(st)) continue;
      const isLive = this.isLive(st, now);
      for (const [key, s] of st.signals) {
        if (isLive) {
          const cur = live.get(key);
          if (!cur || better(s, cur)) live.set(key, s);
        } else {
          const cur = fallback.get(key);
          if (!cur || st.lastSeen > cur.lastSeen || (st.lastSeen === cur.lastSeen && s.observedAt > cur.signal.observedAt)) fallback.set(key, { signal: s, lastSeen: st.lastSeen });
        }
      }
    }
    const out = new Map(live);
    for (const [key, { signal }] of fallback) if (!out.has(key)) out.set(key, signal);
    return out;
  }

  /** Drops instances not seen for `retain`, and services left with none. */
  private prune(now: number): void {
    for (const [service, instances] of this.byService) {
      // An always-running service keeps its newest instance: its absence pages until one comes back.
      const keep = this.options.alwaysRunning?.(service) ? newestInstance(instances)?.[0] : undefined;
      for (const [id, st] of instances) {
        if (id !== keep && now - st.lastSeen > this.options.retain) {
          instances.delete(id);
          this.changes++;
        }
      }
      if (instances.size === 0) this.byService.delete(service);
    }
    // A refused sender heartbeats with every refused batch: one quiet for `retain` is forgotten.
    for (const [service, s] of this.rejected) {
      if (now - s.observedAt > this.options.retain) {
        this.rejected.delete(service);
        this.changes++;
      }
    }
  }
}

/** A failing point continues its key's failing run (keeps when it began) or starts one; a passing or unknown one ends it. */
function withFailingSince(s: Signal, previous: Signal | undefined): Signal {
  const { failingSince: _, ...rest } = s;
  if (!s.failing || s.unknown) return rest;
  const continued = previous?.failing && !previous.unknown ? (previous.failingSince ?? previous.observedAt) : undefined;
  return { ...rest, failingSince: continued !== undefined ? Math.min(continued, s.observedAt) : s.observedAt };
}

/** Among live instances' values of one key: failing beats passing, passing beats unknown; then the most recent observation. */
function better(candidate: Signal, current: Signal): boolean {
  if (candidate.failing !== current.failing) return candidate.failing;
  if (Boolean(candidate.unknown) !== Boolean(current.unknown)) return !candidate.unknown;
  return candidate.observedAt > current.observedAt;
}

function newestInstance(instances: Map<string, InstanceState>): [string, InstanceState] | undefined {
  let newest: [string, InstanceState] | undefined;
  for (const entry of instances) if (!newest || entry[1].lastSeen > newest[1].lastSeen) newest = entry;
  return newest;
}
