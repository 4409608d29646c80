/**
 * Config files as code: YAML parsed with positions, validated by a zod schema,
 * and every problem reported with the file, the line, the path inside it and
 * what was expected. Shared by the manifest and the evaluator's rules.
 */
import { LineCounter, parseDocument, isMap, isNode, isScalar, visit, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../errors.js';

type MakeError = (file: string, issues: ConfigIssue[]) => Error;
/** More problems found in data that failed the schema (checks across keys), reported with the schema's. */
type MoreIssues = (data: unknown) => Array<{ path: Array<string | number>; message: string }>;

/**
 * Parses YAML `text` from `file` and validates it with `schema`; throws the
 * error `makeError` builds, with every problem: the schema's and, when given,
 * those `more` finds in the same data.
 */
export function parseYaml<S extends z.ZodType>(text: string, file: string, schema: S, makeError: MakeError = (f, i) => new ConfigError(f, i), more?: MoreIssues): z.output<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw makeError(
      file,
      doc.errors.map((e) => ({
        path: '',
        message: `not valid YAML: ${yamlMessage(e.message)}`,
        ...(e.linePos ? { line: e.linePos[0].line, column: e.linePos[0].col } : {}),
      })),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS();
  } catch (err) {
    // An alias with no anchor before it (`<<: *x`) passes the parser and fails only here.
    let at: [number, number] | undefined;
    visit(doc, {
      Alias(_, node) {
        if (!at && node.range && node.resolve(doc) === undefined) at = [node.range[0], 0];
      },
    });
    const pos = at ? lineCounter.linePos(at[0]) : undefined;
    throw makeError(file, [{ path: '', message: `not valid YAML: ${yamlMessage(String((err as Error).message ?? err))}`, ...(pos ? { line: pos.line, column: pos.col } : {}) }]);
  }
  const result = schema.safeParse(data);
  if (!result.success) {
    const found = zodIssues(result.error, data, doc, lineCounter);
    const extra = (more?.(data) ?? []).map((i) => ({ path: i.path.join('.'), message: i.message, ...positionOf(i.path, doc, lineCounter) }));
    throw makeError(file, byPosition(mergeIssues(found, extra)));
  }
  return result.data;
}

/** The schema's issues, then the extra ones it did not report itself (a cross-check the schema also ran, when only other parts failed, is reported once). */
export function mergeIssues(found: ConfigIssue[], extra: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set(found.map((i) => `${i.path}\0${i.message}`));
  return [...found, ...extra.filter((i) => !seen.has(`${i.path}\0${i.message}`))];
}

/**
 * A YAML error's text without the position (the issue carries it), so it does
 * not end in a dangling "at line 3, column 5:"; the excerpt of the line that
 * the library puts after it is kept, indented under the issue.
 */
function yamlMessage(message: string): string {
  const [first = '', ...rest] = message.split('\n');
  const head = first.replace(/ at line \d+, column \d+:?$/, '').trim();
  const excerpt = rest.filter((l) => l.trim() !== '').map((l) => `      ${l}`);
  return excerpt.length ? `${head}\n${excerpt.join('\n')}` : head;
}

/** Issues in the order of the file (those without a position first, as found). */
function byPosition(issues: ConfigIssue[]): ConfigIssue[] {
  const at = (i: ConfigIssue) => (i.line === undefined ? -1 : i.line * 1e6 + (i.column ?? 0));
  return issues.map((issue, n) => ({ issue, n })).sort((a, b) => at(a.issue) - at(b.issue) || a.n - b.n).map((x) => x.issue);
}

/** The line and column where the value at `keys` starts, when the document has it. */
function positionOf(keys: Array<string | number>, doc: Document, lines: LineCounter): { line?: number; column?: number } {
  const node = doc.getIn(keys, true);
  return startOf(isNode(node) ? node.range : undefined, lines);
}

function startOf(range: readonly number[] | null | undefined, lines: LineCounter): { line?: number; column?: number } {
  if (!range) return {};
  const pos = lines.linePos(range[0]!);
  return { line: pos.line, column: pos.col };
}

/** The position of key `key` itself in the map at `keys` (an unknown key is reported where it is written). */
function keyPositionOf(keys: Array<string | number>, key: string, doc: Document, lines: LineCounter): { line?: number; column?: number } {
  const map = doc.getIn(keys, true);
  const pair = isMap(map) ? map.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === key) : undefined;
  return pair && isNode(pair.key) && pair.key.range ? startOf(pair.key.range, lines) : positionOf(keys, doc, lines);
}

/** zod issues as `{ path, message }`, with the offending value and its line where known. */
export function zodIssues(error: z.ZodError, data: unknown, doc?: Document, lines?: LineCounter): ConfigIssue[] {
  return error.issues.flatMap((issue) => {
    const keys = issue.path.map((k) => (typeof k === 'symbol' ? String(k) : k));
    if (issue.code === 'unrecognized_keys') {
      // One issue per key, each at the line of the key itself, not of the object holding it.
      return issue.keys.map((key) => ({
        path: keys.join('.'),
        message: `unknown key "${key}"`,
        ...(doc && lines ? keyPositionOf(keys, key, doc, lines) : {}),
      }));
    }
    let message = issue.message;
    if (issue.code === 'invalid_key') message = `invalid name "${String(keys.at(-1))}": ${issue.issues[0]?.message ?? issue.message}`;
    else if (issue.code !== 'custom') {
      const got = valueAt(data, keys);
      if (got !== undefined) message += `, got ${preview(got)}`;
    }
    return [{ path: keys.join('.'), message, ...(doc && lines ? positionOf(keys, doc, lines) : {}) }];
  });
}

function valueAt(data: unknown, keys: Array<string | number>): unknown {
  let cur: unknown = data;
  for (const k of keys) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return cur;
}

function preview(v: unknown): string {
  if (typeof v === 'function') return 'a function';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
