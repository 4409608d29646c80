import { readFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import type { z } from 'zod';
import { ManifestError, type ConfigIssue } from '../errors.js';
import { Manifest, type ManifestInput } from './schema.js';

export interface LoadedManifest {
  manifest: Manifest;
  /** Where it came from, for messages: a file path, or `<object>`. */
  source: string;
  /** Relative module specifiers in the manifest resolve against this URL. */
  baseUrl: URL;
}

export interface LoadManifestOptions {
  /** Base for relative `module` specifiers of an object manifest; default: the current directory. */
  baseUrl?: URL | string;
}

/**
 * Reads and validates a manifest: a path or `file:` URL of a YAML (or JSON)
 * file, or an object. Throws `ManifestError` naming the file, the path inside
 * it and what was expected.
 */
export async function loadManifest(
  input: string | URL | ManifestInput,
  options: LoadManifestOptions = {},
): Promise<LoadedManifest> {
  if (typeof input === 'string' || input instanceof URL) {
    const file = input instanceof URL ? fileURLToPath(input) : path.resolve(input);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new ManifestError(file, [{ path: '', message: `cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)})` }]);
    }
    return { manifest: parseManifestText(text, file), source: file, baseUrl: pathToFileURL(file) };
  }
  const result = Manifest.safeParse(input);
  if (!result.success) throw new ManifestError('<object>', zodIssues(result.error, input));
  const base = options.baseUrl ?? pathToFileURL(path.join(process.cwd(), '/'));
  return { manifest: result.data, source: '<object>', baseUrl: new URL(base) };
}

/** Parses manifest YAML text; `file` is only used in messages and positions. */
export function parseManifestText(text: string, file: string): Manifest {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ManifestError(
      file,
      doc.errors.map((e) => ({
        path: '',
        message: `not valid YAML: ${e.message.split('\n')[0]}`,
        ...(e.linePos ? { line: e.linePos[0].line, column: e.linePos[0].col } : {}),
      })),
    );
  }
  const data: unknown = doc.toJS();
  const result = Manifest.safeParse(data);
  if (!result.success) throw new ManifestError(file, zodIssues(result.error, data, doc, lineCounter));
  return result.data;
}

/** zod issues as `{ path, message }`, with the offending value and its line where known. */
function zodIssues(error: z.ZodError, data: unknown, doc?: Document, lines?: LineCounter): ConfigIssue[] {
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
