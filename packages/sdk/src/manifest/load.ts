import { readFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { parseYaml, zodIssues } from '../util/config.js';
import { ManifestError } from '../errors.js';
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
  return parseYaml(text, file, Manifest, (f, issues) => new ManifestError(f, issues));
}
