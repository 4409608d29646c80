/**
 * The state file (`state.file`): what the evaluator must not forget when it
 * restarts — the alerts it is raising (state, `firedAt`, escalation level, the
 * labels last sent), the signals it holds (so that the evidence of a process
 * that exited stays), the notifications queued and not delivered yet, and the
 * recent notification history.
 *
 * One JSON document, `{ "format": "vigil-evaluator-state", "version": 1, … }`,
 * replaced atomically: written to `<file>.tmp-<pid>`, fsync'd, renamed over the
 * file, and the directory fsync'd, so a crash at any point leaves either the
 * previous complete file or the new one, never a partial one.
 *
 * Reading never stops the evaluator: a file that is missing starts it empty; a
 * file that cannot be read, is not valid JSON, has the wrong shape or another
 * format version is logged at `error` with its path and the reason, moved aside
 * to `<file>.corrupt-<time>` (or `.unsupported-<time>`) so nothing is lost, and
 * the evaluator starts empty.
 */
import { boundReason } from '@vigil/sdk/semconv';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { Impact } from '../config/schema.js';
import type { SentRecord } from '../evaluator.js';
import type { AlertNotification } from '../notifiers/types.js';
import type { AlertState } from '../policies/engine.js';
import { SIGNAL_KINDS, type SignalKind } from '../signals/types.js';
import type { StoreSnapshot } from './store.js';
import { ReleasesJson, type ReleasesSnapshot } from '../releases/tracker.js';

export const STATE_FORMAT = 'vigil-evaluator-state';
export const STATE_VERSION = 1;

/** What the evaluator keeps across a restart. */
export interface EvaluatorState {
  alerts: AlertState[];
  signals: StoreSnapshot;
  /** Each service's served route set per version (release over release); absent in files of older evaluators. */
  releases?: ReleasesSnapshot;
  /** Per notifier name: notifications queued and not delivered yet, oldest first. */
  outbox: Record<string, AlertNotification[]>;
  history: SentRecord[];
}

// ── The file's shape: checked on load, so a hand-edited or foreign file is refused as a whole ──
const Labels = z.record(z.string(), z.string());
const Time = z.number().finite();
const Iso = z.iso.datetime({ offset: true });

const SignalJson = z.strictObject({
  kind: z.enum(SIGNAL_KINDS as unknown as [SignalKind, ...SignalKind[]]),
  service: z.string(),
  instance: z.string(),
  environment: z.string().optional(),
  component: z.string(),
  subject: z.string(),
  failing: z.boolean(),
  unknown: z.boolean().optional(),
  // Bounded again on load: a hand-edited file is no more trusted than the wire.
  reason: z.string().transform(boundReason).optional(),
  labels: Labels,
  observedAt: Time,
  failingSince: Time.optional(),
});

const AlertJson = z.strictObject({
  key: z.string(),
  service: z.string(),
  component: z.string(),
  environment: z.string().optional(),
  assessment: z.strictObject({ rule: z.string(), impact: Impact, signals: z.array(SignalJson) }),
  state: z.enum(['pending', 'firing']),
  since: Time,
  firedAt: Time.optional(),
  escalationLevel: z.number().int().nonnegative(),
  lastSentAt: Time.optional(),
  sentLabels: Labels.optional(),
});

const NotificationJson = z.strictObject({
  id: z.string(),
  status: z.enum(['firing', 'resolved']),
  labels: Labels,
  annotations: Labels,
  startsAt: Iso,
  endsAt: Iso.optional(),
  generatorURL: z.string().optional(),
  quiet: z.boolean().optional(),
  replaced: z.boolean().optional(),
});

const StateFileJson = z.strictObject({
  format: z.literal(STATE_FORMAT),
  version: z.literal(STATE_VERSION),
  savedAt: Iso,
  alerts: z.array(AlertJson),
  signals: z.strictObject({
    services: z.array(
      z.strictObject({
        service: z.string(),
        instances: z.array(z.strictObject({ instance: z.string(), lastSeen: Time, environment: z.string().optional(), signals: z.array(SignalJson) })),
      }),
    ),
    rejected: z.array(SignalJson).optional(),
  }),
  releases: ReleasesJson.optional(),
  outbox: z.record(z.string(), z.array(NotificationJson)),
  history: z.array(z.strictObject({ at: Iso, status: z.enum(['firing', 'resolved']), id: z.string(), labels: Labels, summary: z.string() })),
});

const toJsonNotification = (n: AlertNotification) => ({
  id: n.id,
  status: n.status,
  labels: n.labels,
  annotations: n.annotations,
  startsAt: n.startsAt.toISOString(),
  ...(n.endsAt && { endsAt: n.endsAt.toISOString() }),
  ...(n.generatorURL !== undefined && { generatorURL: n.generatorURL }),
  ...(n.quiet && { quiet: true }),
  ...(n.replaced && { replaced: true }),
});

/** The file's text for a state saved at `savedAt`. */
export function serializeState(state: EvaluatorState, savedAt: number): string {
  const doc: z.input<typeof StateFileJson> = {
    format: STATE_FORMAT,
    version: STATE_VERSION,
    savedAt: new Date(savedAt).toISOString(),
    alerts: state.alerts,
    signals: state.signals,
    ...(state.releases && { releases: state.releases }),
    outbox: Object.fromEntries(Object.entries(state.outbox).map(([name, list]) => [name, list.map(toJsonNotification)])),
    history: state.history,
  };
  return `${JSON.stringify(doc)}\n`;
}

export type ParseResult = { ok: true; state: EvaluatorState; savedAt: number } | { ok: false; kind: 'corrupt' | 'unsupported'; reason: string };

/** Reads the file's text: the state, or why it cannot be used. */
export function parseState(text: string): ParseResult {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { ok: false, kind: 'corrupt', reason: `not valid JSON (${(err as Error).message})` };
  }
  const head = (doc ?? {}) as { format?: unknown; version?: unknown };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc) || head.format !== STATE_FORMAT) {
    return { ok: false, kind: 'corrupt', reason: `not a Vigil evaluator state file (expected "format": "${STATE_FORMAT}")` };
  }
  if (head.version !== STATE_VERSION) {
    return { ok: false, kind: 'unsupported', reason: `format version ${JSON.stringify(head.version)}, this evaluator reads version ${STATE_VERSION} only` };
  }
  const parsed = StateFileJson.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return { ok: false, kind: 'corrupt', reason: `${issue.path.join('.') || '(root)'}: ${issue.message}` };
  }
  const d = parsed.data;
  return {
    ok: true,
    savedAt: Date.parse(d.savedAt),
    state: {
      alerts: d.alerts as AlertState[],
      signals: d.signals,
      ...(d.releases && { releases: d.releases }),
      outbox: Object.fromEntries(
        Object.entries(d.outbox).map(([name, list]) => [
          name,
          list.map(({ startsAt, endsAt, ...n }): AlertNotification => ({ ...n, startsAt: new Date(startsAt), ...(endsAt !== undefined && { endsAt: new Date(endsAt) }) })),
        ]),
      ),
      history: d.history,
    },
  };
}

/**
 * Replaces `file` with `text` so that a crash at any moment leaves either the
 * old complete file or the new one: temp file, fsync, rename, fsync of the directory.
 */
export function writeFileAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  // The rename itself is durable only once the directory is (not possible on every platform).
  try {
    const dir = openSync(path.dirname(file), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    /* best effort */
  }
}

const stamp = (at: number) => new Date(at).toISOString().replace(/[:.]/g, '-');

/** The state file of one evaluator: load once at start, save whenever the evaluator asks. Never throws. */
export class StateFile {
  readonly file: string;
  lastSavedAt: number | undefined;
  lastError: string | undefined;
  private failing = false;

  constructor(
    file: string,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.file = path.resolve(file);
  }

  /** The saved state, or undefined (missing, or unusable: logged and moved aside). */
  load(): { state: EvaluatorState; savedAt: number } | undefined {
    this.removeStaleTemps();
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        this.logger.info({ stateFile: this.file }, 'no state file yet: starting with no alerts');
        return undefined;
      }
      this.setAside('corrupt', `cannot be read (${code ?? (err as Error).message})`);
      return undefined;
    }
    const result = parseState(text);
    if (!result.ok) {
      this.setAside(result.kind, result.reason);
      return undefined;
    }
    return { state: result.state, savedAt: result.savedAt };
  }

  /** Writes the state now (atomically). A failure is logged once until a save succeeds again. */
  save(state: EvaluatorState): boolean {
    const at = this.now();
    try {
      mkdirSync(path.dirname(this.file), { recursive: true });
      writeFileAtomic(this.file, serializeState(state, at));
    } catch (err) {
      this.lastError = `${(err as NodeJS.ErrnoException).code ?? 'error'}: ${(err as Error).message}`;
      if (!this.failing) this.logger.error({ stateFile: this.file, err: this.lastError }, 'cannot write the state file: a restart now would forget the alerts');
      this.failing = true;
      return false;
    }
    if (this.failing) this.logger.info({ stateFile: this.file }, 'state file written again');
    this.failing = false;
    this.lastError = undefined;
    this.lastSavedAt = at;
    return true;
  }

  private setAside(kind: 'corrupt' | 'unsupported', reason: string): void {
    const aside = `${this.file}.${kind}-${stamp(this.now())}`;
    let kept: string | undefined;
    try {
      renameSync(this.file, aside);
      kept = aside;
    } catch (err) {
      this.logger.error({ stateFile: this.file, err: (err as Error).message }, 'could not move the unusable state file aside: it will be overwritten');
    }
    this.logger.error(
      { stateFile: this.file, reason, ...(kept && { keptAs: kept }) },
      `state file ${this.file} ${kind === 'unsupported' ? 'has an unsupported format' : 'is unusable'}: ${reason}; starting with no alerts${kept ? ` (the file is kept as ${kept})` : ''}`,
    );
  }

  /** Temp files of writers that died mid-write: never the state, safe to delete. */
  private removeStaleTemps(): void {
    const dir = path.dirname(this.file);
    const prefix = `${path.basename(this.file)}.tmp-`;
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) if (name.startsWith(prefix)) rmSync(path.join(dir, name), { force: true });
  }
}
