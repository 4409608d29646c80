import { access, readFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { LineCounter, isNode, parseDocument } from 'yaml';
import { z } from 'zod';
import { Duration } from '../util/duration.js';
import { mergeIssues, parseYaml, zodIssues } from '../util/config.js';
import { ManifestError, type ConfigIssue } from '../errors.js';
import { crossChecks, Endpoint, Flow, Manifest, RouterSpec, type Component, type CrossCheckIssue, type ManifestInput } from './schema.js';
import { DRIVERS, locateDriver } from '../startup/builtin.js';
import { expandOpenApi } from './openapi.js';

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
    const baseUrl = pathToFileURL(file);
    const manifest = await withOpenApi(parseManifestText(text, file), baseUrl, file, text);
    const missing = missingDrivers(manifest, baseUrl);
    if (missing.length) throw new ManifestError(file, withPositions(missing, text));
    return { manifest, source: file, baseUrl };
  }
  const result = Manifest.safeParse(input);
  if (!result.success) {
    const more = salvagedCrossChecks(input).map((i) => ({ path: i.path.join('.'), message: i.message }));
    throw new ManifestError('<object>', clarify(mergeIssues(zodIssues(result.error, input), more)));
  }
  const baseUrl = new URL(options.baseUrl ?? pathToFileURL(path.join(process.cwd(), '/')));
  const manifest = await withOpenApi(result.data, baseUrl, '<object>');
  const missing = missingDrivers(manifest, baseUrl);
  if (missing.length) throw new ManifestError('<object>', missing);
  return { manifest, source: '<object>', baseUrl };
}

/**
 * The manifest with the operations of its `openapi` document added as endpoints
 * (the file relative to `baseUrl`). The OpenAPI parser is imported only then,
 * so a manifest without `openapi` costs nothing more.
 */
async function withOpenApi(manifest: Manifest, baseUrl: URL, source: string, text?: string): Promise<Manifest> {
  if (!manifest.openapi) return manifest;
  const fail = (issue: ConfigIssue) => new ManifestError(source, text === undefined ? [issue] : withPositions([issue], text));
  const names = Object.keys(manifest.components);
  if (manifest.openapi.component !== undefined && !names.includes(manifest.openapi.component)) {
    throw fail({ path: 'openapi.component', message: `no component "${manifest.openapi.component}" in "components": expected one of ${names.join(', ')}` });
  }
  const file = path.resolve(fileURLToPath(new URL('.', baseUrl)), manifest.openapi.file);
  try {
    await access(file);
  } catch (err) {
    throw fail({ path: 'openapi.file', message: `cannot read the OpenAPI document ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}): expected a YAML or JSON file, relative to the manifest` });
  }
  return expandOpenApi(manifest, { file, source: manifest.openapi });
}

/**
 * `pg` and `redis` are optional peer dependencies: a check that needs one that
 * is not installed is a manifest error saying what to install (found, not
 * loaded: the driver is imported on the check's first run).
 */
function missingDrivers(manifest: Manifest, baseUrl: URL): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const [component, spec] of Object.entries(manifest.components)) {
    for (const [name, check] of Object.entries(spec.dependencies)) {
      const needs = (check.type === 'postgres' && !check.pool) || (check.type === 'redis' && !check.client) ? DRIVERS[check.type] : undefined;
      if (needs && !locateDriver(needs, baseUrl)) {
        issues.push({
          path: `components.${component}.dependencies.${name}.type`,
          message: `a "${check.type}" check needs the "${needs}" package, which is not installed: run \`npm install ${needs}\` in the app (an optional peer dependency of @vigil/sdk)`,
        });
      }
    }
  }
  return issues;
}

/**
 * Parses manifest YAML text; `file` is only used in messages and positions. An
 * `openapi` document is not read here (it needs the file system): `loadManifest` reads it.
 */
export function parseManifestText(text: string, file: string): Manifest {
  return parseYaml(text, file, Manifest, (f, issues) => new ManifestError(f, clarify(withPositions(issues, text))), salvagedCrossChecks);
}

/**
 * {@link parseManifestText} with the endpoints of its `openapi` document added, and nothing
 * else checked or imported (for tools such as `vigil slo` that read the manifest only).
 */
export async function readManifestText(text: string, file: string): Promise<Manifest> {
  return withOpenApi(parseManifestText(text, file), pathToFileURL(file), file, text);
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The cross-checks (a route declared twice, …) of a manifest that failed the
 * schema, run on every endpoint, router and flow that parses on its own (kept at
 * its index), so that they are reported together with the schema's errors.
 */
function salvagedCrossChecks(data: unknown): CrossCheckIssue[] {
  const raw = isRecord(data) && isRecord(data.components) ? data.components : {};
  const each = <T>(list: unknown, schema: z.ZodType<T>): T[] => {
    const out: T[] = []; // sparse: an item that does not parse leaves a hole, so the others keep their index
    if (Array.isArray(list)) list.forEach((item, i) => {
      const r = schema.safeParse(item);
      if (r.success) out[i] = r.data;
    });
    return out;
  };
  const components: Record<string, Component> = {};
  for (const [name, c] of Object.entries(raw)) {
    if (!isRecord(c)) continue;
    const flows = Object.fromEntries(Object.entries(isRecord(c.flows) ? c.flows : {}).flatMap(([k, f]) => {
      const r = Flow.safeParse(f);
      return r.success ? [[k, r.data]] : [];
    }));
    components[name] = { endpoints: each(c.endpoints, Endpoint), routers: each(c.routers, RouterSpec), flows } as unknown as Component;
  }
  const monitor = isRecord(data) && isRecord(data.monitor) ? data.monitor : {};
  return crossChecks({ components, monitor: { integration: isRecord(monitor.integration) ? monitor.integration : {} }, componentNames: Object.keys(raw) });
}

/**
 * An issue about a key that is not written (a missing key, the route of a
 * `"GET /x"` shorthand) gets the position of the nearest enclosing value.
 */
function withPositions(issues: ConfigIssue[], text: string): ConfigIssue[] {
  if (issues.every((i) => i.line !== undefined || i.path === '')) return issues;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  return issues.map((issue) => {
    if (issue.line !== undefined || issue.path === '') return issue;
    const keys = issue.path.split('.').map((k) => (/^\d+$/.test(k) ? Number(k) : k));
    for (let n = keys.length - 1; n >= 0; n--) {
      const node = doc.getIn(keys.slice(0, n), true);
      if (isNode(node) && node.range) {
        const pos = lines.linePos(node.range[0]);
        return { ...issue, line: pos.line, column: pos.col };
      }
    }
    return issue;
  });
}

/**
 * zod's words, said plainly: a key that is not there is missing (not "received
 * undefined"), the value shown once ("expected string, got 5" rather than
 * "received number, got 5"), a duration that is neither text nor a number says
 * so (not "Invalid input"), and an empty file is called empty.
 */
export function clarify(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.map((issue) => {
    const bare = /^Invalid input(, got .*)?$/s.exec(issue.message);
    if (bare && schemaAt(Manifest, issue.path) === Duration) {
      return { ...issue, message: `expected a duration such as "500ms", "5s" or "2m" (or whole milliseconds)${bare[1] ?? ''}` };
    }
    const unknownKey = /^unknown key "[^"]*"$/.test(issue.message) ? schemaAt(Manifest, issue.path) : undefined;
    if (unknownKey instanceof z.ZodObject) {
      return { ...issue, message: `${issue.message}: expected one of ${Object.keys(unknownKey.shape).map((k) => `"${k}"`).join(', ')}` };
    }
    let message = issue.message.replace(/^Invalid (input|option): /, '');
    const missing = /^expected (.+), received undefined$/.exec(message);
    if (missing) message = `missing: expected ${missing[1]}`;
    // An option is shown with ", got <value>" (see zodIssues) unless there is no value.
    else if (/^Invalid option: expected one of [^,]+$/.test(issue.message)) message = `missing: ${message}`;
    else if (issue.path === '' && /^expected object, received null\b/.test(message)) message = 'the file is empty: expected a manifest with "service" and "components"';
    else message = message.replace(/^(expected .+?), received \w+(, got .+)$/s, '$1$2');
    return { ...issue, message };
  });
}

/** The schema of the value at a dotted path (defaults, optionals and preprocessing unwrapped), when it can be told. */
function schemaAt(root: z.ZodType, path: string): unknown {
  const unwrap = (schema: unknown): unknown => {
    let s = schema;
    for (;;) {
      if (s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = s.unwrap();
      else if (s instanceof z.ZodPipe && s !== Duration) s = s.out; // z.preprocess: the schema after it
      else return s;
    }
  };
  let s: unknown = root;
  for (const key of path === '' ? [] : path.split('.')) {
    const cur = unwrap(s);
    if (cur instanceof z.ZodObject) s = cur.shape[key];
    else if (cur instanceof z.ZodRecord) s = cur.valueType;
    else if (cur instanceof z.ZodArray) s = cur.element;
    else if (cur instanceof z.ZodUnion) s = (cur.options as unknown[]).map(unwrap).find((o): o is z.ZodObject => o instanceof z.ZodObject && key in o.shape)?.shape[key];
    else return undefined;
    if (s === undefined) return undefined;
  }
  return unwrap(s);
}
