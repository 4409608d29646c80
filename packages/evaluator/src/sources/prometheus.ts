/**
 * The production path: poll Prometheus (or anything speaking its HTTP query
 * API) for Vigil's gauges, as the OTLP pipeline (the OpenTelemetry Collector with
 * resource attributes copied to labels) wrote them.
 *
 * Each poll runs, for every metric `toSignal` understands, two instant queries:
 * `m{selector}` for the values and `timestamp(m{selector})` for when each
 * sample was really written. An instant query stamps its result with the
 * evaluation time, and a pushed series without staleness markers keeps
 * answering for ~5 minutes after its process is gone; the sample's own
 * timestamp is what tells a live instance from a dead one. Signals are handed
 * over per instance, with that instance's newest sample time as `receivedAt`.
 *
 * Given `onRoutes`, it also reads the served route sets (`vigil_route_served`
 * and its companions) for the release comparison (`routeSetsFromProm`).
 *
 * Prometheus down or erroring marks the source down with the reason; nothing
 * throws, and the next poll that succeeds brings it back up.
 */
import { setMaxListeners } from 'node:events';
import got from 'got';
import { z } from 'zod';
import type { PrometheusSource } from '../config/schema.js';
import type { Signal } from '../signals/types.js';
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_ROUTE,
  ATTR_SERVICE_VERSION,
  ATTR_VIGIL_COMPONENT,
  METRIC_CHECK_REASON,
  METRIC_ROUTE_REMOVAL_INTENDED,
  METRIC_ROUTE_SERVED,
  METRIC_ROUTE_SERVED_OVERFLOW,
  promLabel,
  promName,
} from '@vigil/sdk/semconv';
import type { RouteSetReport } from '../releases/tracker.js';
import { attachReasons, fromPromLabels, PROM_SIGNAL_METRICS, toReason, toSignal, type Reason } from './mapping.js';

/** What the source logs through (a pino logger fits). */
export interface SourceLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface PrometheusSourceOptions {
  config: z.output<typeof PrometheusSource>;
  /** Called per instance after each successful poll, with the newest sample time of that instance. */
  onSignals: (signals: Signal[], receivedAt: number) => void;
  /** Served route sets (`vigil_route_served` and its companions), one per instance and version; queried only when given. */
  onRoutes?: (reports: RouteSetReport[]) => void;
  now?: () => number;
  logger?: SourceLogger;
}

export interface PrometheusSourceHealth {
  /** The last poll succeeded. */
  up: boolean;
  lastSuccessAt?: number;
  /** Why the current outage: set while down, cleared by the next success. */
  lastError?: string;
  consecutiveFailures: number;
}

export interface PrometheusSourceHandle {
  /** Polls now, then every `interval`; idempotent. */
  start(): void;
  /** Stops polling and aborts a poll in flight. */
  stop(): void;
  /** One poll; resolves (never rejects) when it is done. Joins the poll in flight if there is one. */
  pollOnce(): Promise<void>;
  health(): PrometheusSourceHealth;
}

const Sample = z.object({ metric: z.record(z.string(), z.string()), value: z.tuple([z.number(), z.string()]) });
const QueryAnswer = z.object({
  status: z.literal('success'),
  data: z.object({ resultType: z.literal('vector'), result: z.array(Sample) }),
});
type Sample = z.output<typeof Sample>;

/** `a="b",c=~"d"` from `a="b",c=~"d"` or `{a="b",c=~"d"}`. */
function matchers(selector: string): string {
  const s = selector.trim();
  return s.startsWith('{') && s.endsWith('}') ? s.slice(1, -1).trim() : s;
}

/** A series' identity without its name: `timestamp()` drops `__name__`, nothing else. */
function seriesKey(labels: Record<string, string>): string {
  return JSON.stringify(
    Object.entries(labels)
      .filter(([k]) => k !== '__name__')
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export function createPrometheusSource(opts: PrometheusSourceOptions): PrometheusSourceHandle {
  const { config, onSignals, logger } = opts;
  const now = opts.now ?? Date.now;
  const queryUrl = new URL('api/v1/query', config.url.endsWith('/') ? config.url : `${config.url}/`).toString();
  const sel = matchers(config.selector);
  // The signal metrics, then the reasons that explain their failing series.
  const routeMetrics = opts.onRoutes ? [METRIC_ROUTE_SERVED, METRIC_ROUTE_SERVED_OVERFLOW, METRIC_ROUTE_REMOVAL_INTENDED].map((metric) => ({ metric, prom: promName(metric) })) : [];
  const queries = [...PROM_SIGNAL_METRICS, { metric: METRIC_CHECK_REASON, prom: promName(METRIC_CHECK_REASON) }, ...routeMetrics].map(({ metric, prom }) => {
    const vector = sel ? `${prom}{${sel}}` : prom;
    return { metric, values: vector, stamps: `timestamp(${vector})` };
  });

  const state: PrometheusSourceHealth = { up: false, consecutiveFailures: 0 };
  let inFlight: Promise<void> | undefined;
  let controller: AbortController | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running = false;

  async function query(expr: string, signal: AbortSignal): Promise<Sample[]> {
    const res = await got.get(queryUrl, {
      searchParams: { query: expr },
      timeout: { request: config.timeout },
      retry: { limit: 0 },
      throwHttpErrors: false,
      followRedirect: false,
      signal,
    });
    let body: unknown;
    try {
      body = JSON.parse(res.body);
    } catch {
      throw new Error(`${queryUrl} answered HTTP ${res.statusCode} with no JSON: ${res.body.slice(0, 200)}`);
    }
    const answer = QueryAnswer.safeParse(body);
    if (answer.success && res.statusCode === 200) return answer.data.data.result;
    const b = (body ?? {}) as { errorType?: unknown; error?: unknown };
    if (typeof b.error === 'string') throw new Error(`Prometheus answered HTTP ${res.statusCode}: ${String(b.errorType ?? 'error')}: ${b.error} (query ${expr})`);
    throw new Error(`Prometheus answered HTTP ${res.statusCode} with no instant vector for ${expr}`);
  }

  async function poll(): Promise<void> {
    const ac = new AbortController();
    // Every query of a poll listens on this one signal (two per metric): more than Node's default warning limit of 10.
    setMaxListeners(2 * queries.length + 2, ac.signal);
    controller = ac;
    try {
      const answers = await Promise.all(
        queries.map(async (q) => {
          const [values, stamps] = await Promise.all([query(q.values, ac.signal), query(q.stamps, ac.signal)]);
          return { metric: q.metric, values, stamps };
        }),
      );
      // Per instance: its signals and its newest sample time (every series counts as a heartbeat).
      const instances = new Map<string, { signals: Signal[]; receivedAt: number }>();
      const reasons: Reason[] = [];
      const routeAnswers = answers.filter((a) => ROUTE_METRICS.has(a.metric));
      for (const { metric, values, stamps } of answers.filter((a) => !ROUTE_METRICS.has(a.metric))) {
        const writtenAt = new Map(stamps.map((s) => [seriesKey(s.metric), Math.round(Number(s.value[1]) * 1000)]));
        for (const sample of values) {
          const { attrs, resource } = fromPromLabels(sample.metric);
          if (!resource) continue;
          const at = writtenAt.get(seriesKey(sample.metric)) ?? Math.round(sample.value[0] * 1000);
          if (metric === METRIC_CHECK_REASON) {
            // Not a heartbeat: a reason series lingers ~5 minutes after its check passes (no staleness markers).
            const reason = toReason(attrs, resource, at);
            if (reason) reasons.push(reason);
            continue;
          }
          const key = JSON.stringify([resource.service, resource.instance]);
          let group = instances.get(key);
          if (!group) instances.set(key, (group = { signals: [], receivedAt: at }));
          group.receivedAt = Math.max(group.receivedAt, at);
          const signal = toSignal(metric, Number(sample.value[1]), attrs, resource, at);
          if (signal) group.signals.push(signal);
        }
      }
      if (!state.up) logger?.info({ url: config.url }, 'Prometheus source up');
      state.up = true;
      state.lastSuccessAt = now();
      state.consecutiveFailures = 0;
      delete state.lastError;
      attachReasons([...instances.values()].flatMap((g) => g.signals), reasons);
      if (opts.onRoutes && routeAnswers.length) {
        const reports = routeSetsFromProm(routeAnswers);
        try {
          if (reports.length) opts.onRoutes(reports);
        } catch (err) {
          logger?.error({ err: message(err) }, 'Prometheus source: the route sets could not be stored');
        }
      }
      for (const { signals, receivedAt } of instances.values()) {
        if (signals.length === 0) continue;
        try {
          onSignals(signals, receivedAt);
        } catch (err) {
          logger?.error({ err: message(err) }, 'Prometheus source: the signals could not be stored');
        }
      }
    } catch (err) {
      if (ac.signal.aborted && !running) return; // stopped: not a failure of Prometheus
      const reason = message(err);
      if (state.up || state.consecutiveFailures === 0) logger?.warn({ url: config.url, err: reason }, 'Prometheus source down');
      state.up = false;
      state.lastError = reason;
      state.consecutiveFailures++;
    } finally {
      if (controller === ac) controller = undefined;
    }
  }

  function pollOnce(): Promise<void> {
    inFlight ??= poll().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  function schedule(delay: number): void {
    timer = setTimeout(() => {
      const started = Date.now();
      void pollOnce().then(() => {
        if (running) schedule(Math.max(0, config.interval - (Date.now() - started)));
      });
    }, delay);
    timer.unref();
  }

  return {
    start() {
      if (running) return;
      running = true;
      schedule(0);
    },
    stop() {
      running = false;
      clearTimeout(timer);
      timer = undefined;
      controller?.abort();
    },
    pollOnce,
    health: () => ({ ...state }),
  };
}

const ROUTE_METRICS = new Set<string>([METRIC_ROUTE_SERVED, METRIC_ROUTE_SERVED_OVERFLOW, METRIC_ROUTE_REMOVAL_INTENDED]);
const LABEL_VERSION = promLabel(ATTR_SERVICE_VERSION);
/**
 * A pushed series lingers ~5 minutes after its last sample: a route gone from the
 * instance's export would still answer. Only the series written with the instance's
 * newest `vigil_route_served_overflow` sample (one export writes all of them at one
 * time) count, give or take this much.
 */
export const ROUTE_SET_SKEW_MS = 1000;

/** The served route set of each instance and version, from the answers of the three route metrics. */
export function routeSetsFromProm(answers: Array<{ metric: string; values: Sample[]; stamps: Sample[] }>): RouteSetReport[] {
  const sets = new Map<string, RouteSetReport>();
  const idOf = (labels: Record<string, string>) => {
    const { resource } = fromPromLabels(labels);
    const version = labels[LABEL_VERSION];
    return resource && version ? { id: JSON.stringify([resource.service, resource.instance, resource.environment ?? '', version]), resource, version } : undefined;
  };
  const samples = (metric: string) => {
    const answer = answers.find((a) => a.metric === metric);
    if (!answer) return [];
    const writtenAt = new Map(answer.stamps.map((s) => [seriesKey(s.metric), Math.round(Number(s.value[1]) * 1000)]));
    return answer.values.map((s) => ({ labels: s.metric, value: Number(s.value[1]), at: writtenAt.get(seriesKey(s.metric)) ?? Math.round(s.value[0] * 1000) }));
  };
  // The overflow gauge says a set was exported, and when: the newest one per instance and version.
  for (const s of samples(METRIC_ROUTE_SERVED_OVERFLOW)) {
    const who = idOf(s.labels);
    if (!who || !Number.isFinite(s.value)) continue;
    const had = sets.get(who.id);
    if (had && had.observedAt >= s.at) continue;
    sets.set(who.id, { ...who.resource, version: who.version, routes: new Map(), intended: new Set(), overflow: Math.max(0, Math.floor(s.value)), observedAt: s.at });
  }
  for (const [metric, into] of [
    [METRIC_ROUTE_SERVED, 'routes'],
    [METRIC_ROUTE_REMOVAL_INTENDED, 'intended'],
  ] as const) {
    for (const s of samples(metric)) {
      const who = idOf(s.labels);
      const set = who && sets.get(who.id);
      if (!set || s.value !== 1 || s.at < set.observedAt - ROUTE_SET_SKEW_MS) continue;
      const { attrs } = fromPromLabels(s.labels);
      const method = attrs[ATTR_HTTP_REQUEST_METHOD];
      const route = attrs[ATTR_HTTP_ROUTE];
      if (!method || !route) continue;
      if (into === 'routes') set.routes.set(`${method} ${route}`, attrs[ATTR_VIGIL_COMPONENT] ?? '');
      else set.intended.add(`${method} ${route}`);
    }
  }
  return [...sets.values()];
}
