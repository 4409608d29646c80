/**
 * `evaluator.yaml`: where the telemetry comes from, what a failure means for the
 * business (impact rules), how it is alerted (policies), and where alerts go
 * (notifiers). The zod schemas are the types.
 */
import { z } from 'zod';
import { Duration as SdkDuration } from '@vigil/sdk';

/** `500ms`, `30s`, `5m`, `1h`, or whole milliseconds: the same durations as the manifest's (zod alone says "Invalid input" for null, a list, a map). */
export const Duration = z.union([z.number(), z.string()], { error: 'expected a duration such as "500ms", "5s" or "2m" (or whole milliseconds)' }).pipe(SdkDuration);

/** Node's longest timer: a longer delay fires after 1 ms (a loop with no pause). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** A duration set as a timer (an interval, a request timeout, a retry delay): over 0 and at most {@link MAX_TIMER_MS}. On the default, so the field's schema stays `Duration`. */
function timer(schema: z.ZodDefault<typeof Duration>): z.ZodDefault<typeof Duration> {
  return schema
    .refine((ms) => ms > 0, { message: 'expected a duration over 0 (e.g. "500ms"): 0 would run in a loop with no pause' })
    .refine((ms) => ms <= MAX_TIMER_MS, { message: `expected a duration of at most 24 days (${MAX_TIMER_MS} ms, the longest timer Node.js can set)` });
}

/** Rule names, context keys and channels become alert labels: an email address there would put personal data into every alert. */
const EMAIL_RE = /[^\s@/\\,;:<>()[\]"]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/;
const label = (what: string) => z.string().refine((v) => !(v.includes('@') && EMAIL_RE.test(v)), { message: `${what} looks like an email address; names become alert labels: use an identifier` });

const Name = label('this name').regex(/^[a-z][a-z0-9_-]*$/, 'expected a lowercase name: letters, digits, "_" or "-", starting with a letter');
const ContextKey = label('this context').regex(/^[A-Z][A-Z0-9_]*$/, 'expected an UPPER_CASE key');
const Channel = label('this channel').min(1);
/** zod alone says "Invalid URL". */
const Url = z.url({ error: 'expected an absolute URL such as "http://127.0.0.1:9093"' });
const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name');

// ── Sources ──────────────────────────────────────────────────────────────────
export const OtlpSource = z.strictObject({
  type: z.literal('otlp'),
  /** Where the receiver listens; 127.0.0.1 by default (the API server's port is shared). */
  path: z.string().startsWith('/').default('/v1/metrics'),
  /** Largest request body accepted. */
  maxBodyBytes: z.number().int().min(1024).default(4 * 1024 * 1024),
  /** When set, ingest requires `Authorization: Bearer <value of this variable>`. */
  tokenEnv: EnvName.optional(),
  /** Refused batches in a row from one sender before it gets a failing `rejected` signal ("telemetry rejected from <service>"). */
  rejectedAfter: z.number().int().min(1).default(3),
});

export const PrometheusSource = z.strictObject({
  type: z.literal('prometheus'),
  url: Url,
  /** How often to query. */
  interval: timer(Duration.default(5000)),
  /** Extra label matchers put into every query, e.g. `deployment_environment_name="production"`. */
  selector: z.string().default(''),
  timeout: timer(Duration.default(5000)),
});

export const Source = z.discriminatedUnion('type', [OtlpSource, PrometheusSource]);
export type Source = z.output<typeof Source>;

// ── Impact rules ─────────────────────────────────────────────────────────────
/** The kinds a rule can match: every signal kind but `lifecycle`, which the store consumes and never alerts on. */
export const SIGNAL_KIND_NAMES = ['import', 'route', 'probe', 'flow', 'dependency', 'startup', 'error_rate', 'process', 'integration', 'silent', 'no_instance', 'rejected', 'release'] as const;

export const Match = z.strictObject({
  /** Service names (`service.name`); any when omitted. */
  service: z.union([z.string(), z.array(z.string()).min(1)], { error: 'expected a service name or a list of them' }).optional(),
  /** Component names; any when omitted. */
  component: z.union([z.string(), z.array(z.string()).min(1)], { error: 'expected a component name or a list of them' }).optional(),
  /** Signal kinds; any when omitted. */
  signal: z.union([z.enum(SIGNAL_KIND_NAMES), z.array(z.enum(SIGNAL_KIND_NAMES)).min(1)], { error: `expected a signal kind or a list of them: ${SIGNAL_KIND_NAMES.join(', ')}` }).optional(),
  /** Labels the signal must carry, with a value (exact) or `/regex/`. */
  labels: z
    .record(
      z.string(),
      z.string().refine((v) => {
        const re = /^\/(.*)\/$/.exec(v);
        if (!re) return true;
        try {
          new RegExp(re[1]!);
          return true;
        } catch {
          return false;
        }
      }, 'expected a value, or a valid regular expression between slashes'),
    )
    .default({}),
});
export type Match = z.output<typeof Match>;

export const LEVELS = ['critical', 'high', 'medium', 'low'] as const;
export const Level = z.enum(LEVELS);
export type Level = z.output<typeof Level>;

export const Impact = z.strictObject({
  level: Level,
  priority: z.enum(['P0', 'P1', 'P2', 'P3']),
  /** Money at risk while this lasts. */
  revenue: z.strictObject({ amount: z.number().nonnegative(), currency: z.string().regex(/^[A-Z]{3}$/, 'expected an ISO 4217 code such as GBP') }).optional(),
  /** Who is affected, in words. */
  customers: z.string().optional(),
  /** A business context key (`ZEBRA_ADMIN_ACCESS`) that selects its own channels and escalation. */
  context: ContextKey.optional(),
  runbook: Url.optional(),
  /** The alert's summary; `{service}`, `{component}`, `{signals}` are filled in. */
  summary: z.string().optional(),
});
export type Impact = z.output<typeof Impact>;

export const Rule = z.strictObject({
  name: Name,
  match: Match.default(() => Match.parse({})),
  impact: Impact,
});
export type Rule = z.output<typeof Rule>;

// ── Alert policies ───────────────────────────────────────────────────────────
export const Escalation = z.strictObject({
  /** Unresolved this long after firing → the escalation level rises by one and the alert is sent again. */
  after: Duration,
  /** Extra channels from this escalation level on. */
  channels: z.array(Channel).default([]),
});

export const Policy = z.strictObject({
  /** Routing labels (`channels`) put on the alert: Alertmanager routes on them. */
  channels: z.array(Channel).min(1),
  /** The failure must last this long before the alert fires (flap damping on top of the SDK's). */
  for: Duration.default(0),
  escalation: z.array(Escalation).default([]),
  /** Send a firing alert again this often to the webhook and console notifiers (Alertmanager has its own repeat_interval). */
  reminder: Duration.optional(),
  /** Send a resolved notification when it clears. */
  resolve: z.boolean().default(true),
});
export type Policy = z.output<typeof Policy>;

/** A business context's own routing: replaces the level's channels and escalation when an impact names it. */
export const Context = z.strictObject({
  channels: z.array(Channel).min(1).optional(),
  escalation: z.array(Escalation).optional(),
  /** A headline put before the summary, e.g. "ZEBRA ALERT: admin access failure — £925K opportunity at risk". */
  headline: z.string().optional(),
});
export type Context = z.output<typeof Context>;

// ── Notifiers ────────────────────────────────────────────────────────────────
/** `retry`: the back-off of failed deliveries, with a notifier type's own defaults. */
const retryOf = (initial: number, max: number) =>
  z.strictObject({
    /** First retry after this; doubles up to `max`. Delivery is retried until it succeeds. */
    initial: timer(Duration.default(initial)),
    max: timer(Duration.default(max)),
  });
const Retry = retryOf(1000, 60_000);
/**
 * Alertmanager's retry caps at 2 s, under the 5 s `group_wait` of the committed
 * routes (alertmanager/alertmanager.yml): after an Alertmanager restart the
 * evaluator's alert is posted again within ~2 s of it answering, before the
 * group of held-back Prometheus rule alerts is flushed, so the inhibition it
 * carries is in place first. One small POST every 2 s to a local Alertmanager
 * while it is down costs nothing; a 60 s cap delayed the page by 11–16 s.
 */
const AlertmanagerRetry = retryOf(500, 2000);

export const AlertmanagerNotifier = z.strictObject({
  type: z.literal('alertmanager'),
  /** One or more Alertmanager base URLs (a cluster): every alert goes to each. */
  urls: z.array(Url).min(1),
  /** Active alerts are posted again this often, well within Alertmanager's resolve_timeout (5 m). */
  resend: timer(Duration.default(60_000)),
  timeout: timer(Duration.default(5000)),
  retry: AlertmanagerRetry.default(() => AlertmanagerRetry.parse({})),
  /**
   * A resolved alert is posted with `endsAt` this far in the future, so it stays
   * active in Alertmanager — and keeps inhibiting the Prometheus rule alerts of the
   * same fault — until those resolve too: they trail by a remote write (~1 s), the
   * rules' 5 s evaluation and Prometheus's notifier (~1 s), ~7–8 s, doubled for
   * load. Not on escalation: the new level carries the inhibition on. 0 turns it off.
   */
  resolveHold: Duration.default(15_000).refine((ms) => ms <= 3_600_000, { message: 'expected a duration of at most 1h' }),
});

export const WebhookNotifier = z.strictObject({
  type: z.literal('webhook'),
  url: Url,
  /** Headers; a value `${env:NAME}` is read from the environment. */
  headers: z.record(z.string(), z.string()).default({}),
  timeout: timer(Duration.default(5000)),
  retry: Retry.default(() => Retry.parse({})),
});

export const ConsoleNotifier = z.strictObject({
  type: z.literal('console'),
});

export const Notifier = z.discriminatedUnion('type', [AlertmanagerNotifier, WebhookNotifier, ConsoleNotifier]);
export type NotifierConfig = z.output<typeof Notifier>;

/** What the evaluator knows of a service beyond its telemetry. */
export const ServiceOptions = z.strictObject({
  /** With no running instance left (the last one stopped cleanly), page "no running instance" instead of retiring the service quietly. */
  alwaysRunning: z.boolean().default(false),
});
export type ServiceOptions = z.output<typeof ServiceOptions>;

/** A route removed on purpose: `GET /api/v1/users`, for one service or (without `service`) every one. */
export const IntendedRemoval = z.strictObject({
  route: z.string().regex(/^[A-Z]+ \/\S*$/, 'expected a method and a path such as "GET /api/v1/users"'),
  service: z.string().min(1).optional(),
  reason: z.string().optional(),
});

/** Release over release (releases/tracker.ts): a route the previous version served and the new one does not pages. */
export const ReleaseOptions = z.strictObject({
  /** Compare versions at all. */
  enabled: z.boolean().default(true),
  /** An instance of the new version counts once it has reported its served routes for this long (first to latest export). */
  settle: Duration.default(30_000),
  /** Versions kept per service and environment (the newest and those before it, by first-seen time). */
  keepVersions: z.number().int().min(2).max(10).default(2),
  /** Routes kept per instance's set (the SDK exports at most 2000 by default). */
  maxRoutes: z.number().int().min(1).max(20_000).default(2000),
  /** Removed routes named per service (each a signal); the rest are counted in one more signal. */
  maxAlerted: z.number().int().min(1).max(500).default(20),
  /** Removals acknowledged here do not page (besides those the app's manifest lists under `removedRoutes`). */
  intendedRemovals: z.array(IntendedRemoval).default([]),
});
export type ReleaseOptions = z.output<typeof ReleaseOptions>;

// ── The file ─────────────────────────────────────────────────────────────────
export const EvaluatorConfig = z
  .strictObject({
    /** The evaluator's HTTP server (status API, health, the OTLP receiver). */
    server: z
      .strictObject({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(9464),
        /** The base URL alerts link back to (`generatorURL`); default `http://host:port`. */
        publicUrl: Url.optional(),
      })
      .default({ host: '127.0.0.1', port: 9464 }),
    source: Source,
    /** How often rules and policies run. */
    interval: timer(Duration.default(1000)),
    /** A service with no telemetry for this long raises a "telemetry silent" signal (a dead-man's switch). */
    silentAfter: Duration.default(60_000),
    /** An instance with no telemetry for this long no longer counts as live (its last state is kept for `retain`). */
    staleAfter: Duration.default(30_000),
    /** How long the last state of an instance that stopped reporting is kept. */
    retain: Duration.default(3_600_000),
    /** Per service (`service.name`): e.g. `alwaysRunning`. */
    services: z.record(z.string().min(1), ServiceOptions).default({}),
    rules: z.array(Rule).default([]),
    /** The impact when no rule matches. */
    defaultImpact: Impact.default({ level: 'medium', priority: 'P2', customers: 'a subset of functionality' }),
    policies: z.strictObject({ critical: Policy, high: Policy, medium: Policy, low: Policy }),
    contexts: z.record(ContextKey, Context).default({}),
    notifiers: z.record(Name, Notifier).refine((n) => Object.keys(n).length > 0, 'expected at least one notifier'),
    /** Release over release: pages a route the previous version served and the new one does not. */
    releases: ReleaseOptions.default(() => ReleaseOptions.parse({})),
    /** Keep the alerts, the signals and undelivered notifications in this file across restarts; off when omitted. */
    state: z
      .strictObject({
        /** The state file (relative to the working directory); written atomically, read at start. */
        file: z.string().trim().min(1, 'expected the path of the state file'),
      })
      .optional(),
  })
  .superRefine((c, ctx) => {
    const names = new Set<string>();
    c.rules.forEach((r, i) => {
      if (names.has(r.name)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'name'], message: `rule name "${r.name}" is used twice` });
      names.add(r.name);
      if (r.impact.context && !(r.impact.context in c.contexts)) {
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'impact', 'context'], message: `no context "${r.impact.context}" in "contexts"` });
      }
    });
    if (c.staleAfter > c.silentAfter) ctx.addIssue({ code: 'custom', path: ['staleAfter'], message: 'expected staleAfter <= silentAfter' });
    if (c.retain <= c.silentAfter) ctx.addIssue({ code: 'custom', path: ['retain'], message: 'expected retain > silentAfter (a silent service must be remembered long enough to page)' });
    if (c.defaultImpact.context && !(c.defaultImpact.context in c.contexts)) {
      ctx.addIssue({ code: 'custom', path: ['defaultImpact', 'context'], message: `no context "${c.defaultImpact.context}" in "contexts"` });
    }
    const increasing = (steps: Array<{ after: number }>, path: Array<string | number>) => {
      steps.forEach((e, i) => {
        if (i > 0 && e.after <= steps[i - 1]!.after) ctx.addIssue({ code: 'custom', path: [...path, i, 'after'], message: 'expected escalation steps in increasing "after" order' });
      });
    };
    for (const [level, p] of Object.entries(c.policies)) increasing(p.escalation, ['policies', level, 'escalation']);
    for (const [name, context] of Object.entries(c.contexts)) increasing(context.escalation ?? [], ['contexts', name, 'escalation']);
  });
export type EvaluatorConfig = z.output<typeof EvaluatorConfig>;
export type EvaluatorConfigInput = z.input<typeof EvaluatorConfig>;
