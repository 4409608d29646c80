/**
 * Config files as code: YAML parsed with positions, validated by a zod schema,
 * and every problem reported with the file, the line, the path inside it and
 * what was expected. Shared by the manifest and the evaluator's rules.
 */
import { LineCounter, parseDocument, isNode, visit, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../errors.js';

type MakeError = (file: string, issues: ConfigIssue[]) => Error;

/** Parses YAML `text` from `file` and validates it with `schema`; throws the error `makeError` builds. */
export function parseYaml<S extends z.ZodType>(text: string, file: string, schema: S, makeError: MakeError = (f, i) => new ConfigError(f, i)): z.output<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw makeError(
      file,
      doc.errors.map((e) => ({
        path: '',
        message: `not valid YAML: ${e.message.split('\n')[0]}`,
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
    throw makeError(file, [{ path: '', message: `not valid YAML: ${String((err as Error).message ?? err).split('\n')[0]}`, ...(pos ? { line: pos.line, column: pos.col } : {}) }]);
  }
  const result = schema.safeParse(data);
  if (!result.success) throw makeError(file, zodIssues(result.error, data, doc, lineCounter));
  return result.data;
}

/** zod issues as `{ path, message }`, with the offending value and its line where known. */
export function zodIssues(error: z.ZodError, data: unknown, doc?: Document, lines?: LineCounter): ConfigIssue[] {
  return error.issues.map((issue) => {
    const keys = issue.path.map((k) => (typeof k === 'symbol' ? String(k) : k));
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    else if (issue.code === 'invalid_key') message = `invalid name "${String(keys.at(-1))}": ${issue.issues[0]?.message ?? issue.message}`;
    else if (issue.code !== 'custom') {
      const got = valueAt(data, keys);
      if (got !== undefined) message += `, got ${preview(got)}`;
    }
    const out: ConfigIssue = { path: keys.join('.'), message };
    if (doc && lines) {
      const node = doc.getIn(keys, true);
      const range = isNode(node) ? node.range : undefined;
      if (range) {
        const pos = lines.linePos(range[0]);
        out.line = pos.line;
        out.column = pos.col;
      }
    }
    return out;
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
