/**
 * What the fast-check fuzz tests share: a reproducible seed and number of runs
 * (VIGIL_FUZZ_SEED / VIGIL_FUZZ_RUNS override each file's own), and mutations of
 * a JSON document at a path (replace, delete) to derive bad inputs from a good one.
 */

/** The seed and runs per property of a fuzz file, and the words that print them in its describe title. */
export function fuzzSettings(defaultSeed: number, defaultRuns = 300): { seed: number; runs: number; title: string } {
  const seed = Number(process.env.VIGIL_FUZZ_SEED ?? defaultSeed);
  const runs = Number(process.env.VIGIL_FUZZ_RUNS ?? defaultRuns);
  return { seed, runs, title: `fast-check seed ${seed}, ${runs} runs per property` };
}

/** A path into a JSON value: keys and indexes. */
export type Path = Array<string | number>;

/** Every path (keys and indexes) into a JSON value, the root included. */
export function pathsOf(v: unknown, at: Path = []): Path[] {
  const out = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...pathsOf(x, [...at, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...pathsOf(x, [...at, k]));
  return out;
}

/** The value at `path`, or undefined where the path leads nowhere. */
export function valueAt(v: unknown, path: ReadonlyArray<string | number>): any {
  let cur: any = v;
  for (const k of path) cur = cur?.[k];
  return cur;
}

/** As the value of `mutate`: delete the key or item at the path. */
export const DELETE = Symbol('delete');

/**
 * A copy of `doc` with the value at `path` replaced, or deleted when `value` is DELETE
 * (the whole document deleted is null). A missing section on the way is made an empty object.
 */
export function mutate(doc: unknown, path: ReadonlyArray<string | number>, value: unknown): any {
  if (path.length === 0) return value === DELETE ? null : value;
  const copy = structuredClone(doc) as any;
  let cur = copy;
  for (const k of path.slice(0, -1)) cur = cur[k] ??= {};
  const last = path.at(-1)!;
  if (value === DELETE) {
    if (Array.isArray(cur)) cur.splice(last as number, 1);
    else delete cur[last];
  } else cur[last] = value;
  return copy;
}

/** A path as the loaders name it in their issues: `components.auth.endpoints.0`. */
export const dotted = (p: ReadonlyArray<string | number>): string => p.join('.');

/** YAML text of a document: JSON is YAML too, and quicker to write and read than block style (hundreds of runs per property). */
export const jsonYaml = (doc: unknown): string => JSON.stringify(doc, null, 2) ?? 'null';

/** What was thrown, in full, for a failure that says it was not the expected error class. */
export const thrownText = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}\n${err.stack}` : String(err));
