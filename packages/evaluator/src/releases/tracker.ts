/**
 * Release over release: the route set each version of a service really serves
 * (`vigil.route.served`, per `service.name` + `deployment.environment.name` +
 * `service.version` of the OTLP resource), compared with the set of the version
 * seen before it. A route the previous version served that no counted instance of
 * the new one serves is a failing `release` signal, "GET /api/v1/users removed
 * since 1.4.2", which goes through impact rules, policies and notifiers like any
 * other signal.
 *
 * - "The new version" is the newest version, by the time its first report was
 *   seen, that has a live instance; "previous" is the version first seen just
 *   before it. First-seen order, not a semver guess (versions are free text). A
 *   rollback to 1.4.2 after 1.5.0 is no new version: once 1.5.0 has no live
 *   instance, 1.4.2 is the newest live one again and has nothing before it.
 * - Settle: an instance of the new version counts once it is live (reported within
 *   `staleAfter`) and has reported its served set for `settle` (first to latest
 *   report). The SDK exports the set only after startup validation, so a starting
 *   instance reports nothing; the settle time also keeps an instance that dies
 *   right after its first export (a crash loop) from deciding anything.
 * - A removal resolves when a counted instance serves the route again, when the
 *   new version's manifest lists it under `removedRoutes` (the SDK exports it as
 *   `vigil.route.removal.intended`), or when the evaluator's config lists it under
 *   `releases.intendedRemovals`.
 * - With no counted instance of the newest version (all gone, or the evaluator just
 *   restarted), the last findings for that version are held.
 * - When a counted instance of the new version hit the SDK's cap (overflow > 0), a
 *   route beyond the cap is unknown, not removed: nothing is paged for it.
 *
 * Bounded: `keepVersions` versions per service, `maxRoutes` routes per set, 50
 * instances per version, 200 services; persisted in the state file.
 */
import { ATTR_SERVICE_VERSION } from '@vigil/sdk/semconv';
import { z } from 'zod';
import type { ReleaseOptions } from '../config/schema.js';
import type { Signal } from '../signals/types.js';

/** One instance's served routes as one export reported them. */
export interface RouteSetReport {
  service: string;
  environment?: string;
  instance: string;
  version: string;
  /** `METHOD /path` → its component ('' when none). */
  routes: Map<string, string>;
  /** Routes beyond the SDK's cap, not named. */
  overflow: number;
  /** `METHOD /path` the app's manifest lists as removed on purpose. */
  intended: Set<string>;
  observedAt: number;
}

const InstanceJson = z.strictObject({
  firstSeen: z.number(),
  lastSeen: z.number(),
  overflow: z.number(),
  routes: z.record(z.string(), z.string()),
  intended: z.array(z.string()),
});
const VersionJson = z.strictObject({ version: z.string(), firstSeen: z.number(), instances: z.record(z.string(), InstanceJson) });
const FindingJson = z.strictObject({ route: z.string(), component: z.string(), since: z.number() });
export const ReleasesJson = z.array(
  z.strictObject({
    service: z.string(),
    environment: z.string().optional(),
    versions: z.array(VersionJson),
    /** The newest version's removals as last computed, with when each was first seen. */
    findings: z.strictObject({ version: z.string(), previous: z.string(), overflow: z.number(), removed: z.array(FindingJson) }).optional(),
  }),
);
export type ReleasesSnapshot = z.output<typeof ReleasesJson>;
type ServiceReleases = ReleasesSnapshot[number];
type VersionSet = z.output<typeof VersionJson>;
type Findings = NonNullable<ServiceReleases['findings']>;

export const MAX_INSTANCES_PER_VERSION = 50;
export const MAX_SERVICES = 200;
/** Longest version string kept (it comes from outside). */
const MAX_VERSION_LENGTH = 100;

export class ReleaseTracker {
  private services = new Map<string, ServiceReleases>();
  /** Services whose sets changed since their last comparison, and what each comparison saw (version and counted instances). */
  private readonly changed = new Set<string>();
  private readonly compared = new Map<string, string>();
  /** Bumped on every change, so the state file is rewritten. */
  revision = 0;

  constructor(
    private readonly options: ReleaseOptions,
    private readonly staleAfter: number,
  ) {}

  /** Takes the reports of one export. Untrusted: bounded here. */
  ingest(reports: RouteSetReport[]): void {
    if (!this.options.enabled) return;
    for (const r of reports) {
      if (!r.version || r.version.length > MAX_VERSION_LENGTH) continue;
      const key = JSON.stringify([r.service, r.environment ?? '']);
      let svc = this.services.get(key);
      if (!svc) {
        if (this.services.size >= MAX_SERVICES) continue;
        svc = { service: r.service, ...(r.environment ? { environment: r.environment } : {}), versions: [] };
        this.services.set(key, svc);
      }
      let v = svc.versions.find((x) => x.version === r.version);
      if (!v) {
        v = { version: r.version, firstSeen: r.observedAt, instances: {} };
        svc.versions.push(v);
        // Oldest first by first-seen time; only the newest `keepVersions` are kept.
        svc.versions.sort((a, b) => a.firstSeen - b.firstSeen);
        if (svc.versions.length > this.options.keepVersions) svc.versions.splice(0, svc.versions.length - this.options.keepVersions);
        if (!svc.versions.includes(v)) continue; // a report older than every kept version
      }
      const had = v.instances[r.instance];
      if (!had && Object.keys(v.instances).length >= MAX_INSTANCES_PER_VERSION) {
        // Full (instances come and go, each with a new id): the one heard from longest ago makes room.
        const oldest = Object.entries(v.instances).reduce((a, b) => (b[1].lastSeen < a[1].lastSeen ? b : a));
        delete v.instances[oldest[0]];
      }
      let routes: Record<string, string> = {};
      let overflow = r.overflow;
      let kept = 0;
      for (const [route, component] of r.routes) {
        if (kept >= this.options.maxRoutes) overflow++;
        else if (routes[route] === undefined) (routes[route] = component), kept++;
      }
      const intended = [...r.intended].slice(0, this.options.maxRoutes);
      const firstSeen = Math.min(had?.firstSeen ?? r.observedAt, r.observedAt);
      const lastSeen = Math.max(had?.lastSeen ?? r.observedAt, r.observedAt);
      // The same set as this instance's last one (the usual export): only the times move, and
      // neither a comparison nor a state-file write is due.
      if (had && had.overflow === overflow && sameRoutes(had.routes, routes) && had.intended.join('\n') === intended.join('\n')) {
        Object.assign(had, { firstSeen, lastSeen });
        continue;
      }
      // Instances of one version mostly serve the same set: it is held once.
      const twin = Object.values(v.instances).find((i) => i !== had && sameRoutes(i.routes, routes));
      if (twin) routes = twin.routes;
      v.instances[r.instance] = { firstSeen, lastSeen, overflow, routes, intended };
      this.revision++;
      this.changed.add(key);
    }
  }

  /** The failing `release` signals as of `now`, one per removed route (at most `maxAlerted` per service, then one that counts the rest). */
  signals(now: number): Signal[] {
    if (!this.options.enabled) return [];
    const out: Signal[] = [];
    for (const [key, svc] of this.services) {
      const findings = this.compare(key, svc, now);
      if (!findings || findings.removed.length === 0) continue;
      const shown = findings.removed.slice(0, this.options.maxAlerted);
      const base = { kind: 'release' as const, service: svc.service, instance: '', ...(svc.environment ? { environment: svc.environment } : {}), failing: true, labels: { [ATTR_SERVICE_VERSION]: findings.version } };
      for (const f of shown) {
        out.push({ ...base, component: f.component, subject: f.route, reason: `${f.route} removed since ${findings.previous} (not served by ${findings.version})`, observedAt: now, failingSince: f.since });
      }
      const rest = findings.removed.length - shown.length;
      if (rest > 0) {
        const since = Math.min(...findings.removed.slice(shown.length).map((f) => f.since));
        out.push({ ...base, component: '', subject: `${rest} more routes`, reason: `${rest} more routes removed since ${findings.previous} (not served by ${findings.version})`, observedAt: now, failingSince: since });
      }
    }
    return out;
  }

  /** The newest version's removals, recomputed when a counted instance exists, else the last ones held. */
  private compare(key: string, svc: ServiceReleases, now: number): Findings | undefined {
    const live = (i: VersionSet['instances'][string]) => now - i.lastSeen <= this.staleAfter;
    // The newest version (by first-seen time) that has a live instance: after a rollback to a
    // version already known, the one rolled back from is no longer "the new version".
    const at = svc.versions.findLastIndex((v) => Object.values(v.instances).some(live));
    if (at < 0) return svc.findings; // nothing live (all gone, or the evaluator just restarted): held
    const current = svc.versions[at]!;
    const previous = svc.versions[at - 1];
    if (!previous) {
      if (svc.findings) this.revision++;
      delete svc.findings;
      return undefined;
    }
    const ids = Object.keys(current.instances).filter((id) => this.counts(current.instances[id]!, now));
    if (ids.length === 0) return svc.findings?.version === current.version ? svc.findings : undefined;
    // Recomputed only when a set changed or other instances count: not every evaluation.
    const seen = JSON.stringify([previous.version, current.version, ids]);
    if (!this.changed.has(key) && this.compared.get(key) === seen && svc.findings?.version === current.version) return svc.findings;
    this.changed.delete(key);
    this.compared.set(key, seen);
    const counted = ids.map((id) => current.instances[id]!);
    const served = new Set<string>();
    for (const routes of new Set(counted.map((i) => i.routes))) for (const route in routes) served.add(route);
    const intended = new Set(counted.flatMap((i) => i.intended));
    for (const r of this.options.intendedRemovals) if (!r.service || r.service === svc.service) intended.add(r.route);
    const overflow = Math.max(...counted.map((i) => i.overflow));
    const before = new Map<string, string>();
    for (const routes of new Set(Object.values(previous.instances).map((i) => i.routes))) for (const route in routes) if (!before.get(route)) before.set(route, routes[route]!);
    const old = new Map((svc.findings?.version === current.version ? svc.findings.removed : []).map((f) => [f.route, f.since]));
    const removed =
      overflow > 0
        ? [] // a route beyond the cap is unknown, not removed
        : [...before]
            .filter(([route]) => !served.has(route) && !intended.has(route))
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(([route, component]) => ({ route, component, since: old.get(route) ?? now }));
    const findings: Findings = { version: current.version, previous: previous.version, overflow, removed };
    if (JSON.stringify(findings) !== JSON.stringify(svc.findings)) {
      svc.findings = findings;
      this.revision++;
    }
    return findings;
  }

  /** The settle rule: an instance counts while it is live and once it has reported its set for `settle`. */
  private counts(i: VersionSet['instances'][string], now: number): boolean {
    return now - i.lastSeen <= this.staleAfter && i.lastSeen - i.firstSeen >= this.options.settle;
  }

  /** For `/api/status`: each service's versions (oldest first: instances, those counted now, routes) and the newest one's removals. */
  status(now: number): Array<{ service: string; environment?: string; versions: Array<{ version: string; firstSeen: string; instances: number; counted: number; routes: number }>; removed?: string[]; previous?: string }> {
    return [...this.services.values()].map((s) => ({
      service: s.service,
      ...(s.environment ? { environment: s.environment } : {}),
      versions: s.versions.map((v: VersionSet) => ({
        version: v.version,
        firstSeen: new Date(v.firstSeen).toISOString(),
        instances: Object.keys(v.instances).length,
        counted: Object.values(v.instances).filter((i) => this.counts(i, now)).length,
        routes: new Set(Object.values(v.instances).flatMap((i) => Object.keys(i.routes))).size,
      })),
      ...(s.findings ? { previous: s.findings.previous, removed: s.findings.removed.map((f) => f.route) } : {}),
    }));
  }

  snapshot(): ReleasesSnapshot {
    return structuredClone([...this.services.values()]);
  }

  restore(snapshot: ReleasesSnapshot): void {
    this.compared.clear();
    this.services = new Map(
      snapshot.slice(0, MAX_SERVICES).map((s) => [JSON.stringify([s.service, s.environment ?? '']), { ...structuredClone(s), versions: structuredClone(s.versions).slice(-this.options.keepVersions) }]),
    );
  }
}

/** Whether two route sets hold the same routes with the same components. */
function sameRoutes(a: Record<string, string>, b: Record<string, string>): boolean {
  if (a === b) return true;
  let n = 0;
  for (const k in b) {
    if (a[k] !== b[k]) return false;
    n++;
  }
  return n === Object.keys(a).length;
}
