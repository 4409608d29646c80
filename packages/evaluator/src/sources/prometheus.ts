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
 * Prometheus down or erroring marks the source down with the reason; nothing
 * throws, and the next poll that succeeds brings it back up.
 */
import { setMaxListeners } from 'node:events';
import got from 'got';
import { z } from 'zod';
import type { PrometheusSource } from '../config/schema.js';
import type { Signal } from '../signals/types.js';
import { METRIC_CHECK_REASON, promName } from '@vigil/sdk/semconv';
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
  const queries = [...PROM_SIGNAL_METRICS, { metric: METRIC_CHECK_REASON, prom: promName(METRIC_CHECK_REASON) }].map(({ metric, prom }) => {
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
      for (const { metric, values, stamps } of answers) {
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
