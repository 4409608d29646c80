/**
 * OpenAPI 3.0/3.1 as a manifest source: every operation of the app's document
 * becomes an ordinary declared endpoint of a component, so the inventory,
 * probes, health and metrics work on it unchanged. The parser is imported only
 * when a manifest has `openapi`: importing @vigil/sdk does not load it.
 *
 * The files are read and their `$ref`s checked here first: the input is bounded
 * (size, number of files), no `$ref` leaves the document's folder or goes to a
 * URL (nothing is fetched at startup), and a `$ref` that points nowhere is
 * reported where it is written. Then @readme/openapi-parser validates the
 * document against the OpenAPI schema and dereferences it.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import { ManifestError, type ConfigIssue } from '../errors.js';
import { Endpoint, type Manifest, type OpenApiSource } from './schema.js';

/** The most a document may weigh, all its files together. */
export const MAX_OPENAPI_BYTES = 10 * 2 ** 20;
/** The most files a document may be split over. */
export const MAX_OPENAPI_FILES = 100;

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch'] as const;
/** The extensions read; any other `x-vigil-*` is a typo. (`x-vigil-slo` would join them with the manifest's `slo`.) */
const EXTENSIONS = ['x-vigil-component', 'x-vigil-probe', 'x-vigil-slo', 'x-vigil-ignore'] as const;

type Json = Record<string, unknown>;
const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A JSON pointer from keys: `~` and `/` escaped (RFC 6901), `#` in front. */
export function pointer(keys: Array<string | number>): string {
  return `#${keys.map((k) => `/${String(k).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('')}`;
}

function keysOf(ptr: string): string[] {
  const body = ptr.replace(/^#/, '');
  if (body === '') return [];
  return body
    .slice(1)
    .split('/')
    .map((k) => decodeURIComponent(k).replace(/~1/g, '/').replace(/~0/g, '~'));
}

interface ParsedFile {
  data: unknown;
  doc: Document;
  lines: LineCounter;
}

/** Reads the OpenAPI files, checks them, and maps the operations; throws `ManifestError` naming the file and the JSON pointer. */
class Reader {
  readonly files = new Map<string, ParsedFile>();
  bytes = 0;
  /** Files whose `$ref`s are checked (or being checked). */
  private readonly checked: Set<string>;
  constructor(readonly root: string) {
    this.checked = new Set([root]);
  }

  error(file: string, keys: Array<string | number> | string, message: string): ManifestError {
    const ptr = typeof keys === 'string' ? keys : pointer(keys);
    return new ManifestError(file, [{ path: ptr, message, ...this.position(file, keysOf(ptr)) }]);
  }

  /** Line and column of the value at `keys` in `file`, or of its nearest enclosing value. */
  position(file: string, keys: string[]): Pick<ConfigIssue, 'line' | 'column'> {
    const parsed = this.files.get(file);
    if (!parsed) return {};
    for (let n = keys.length; n >= 0; n--) {
      const node = parsed.doc.getIn(keys.slice(0, n), true);
      if (isNode(node) && node.range) {
        const pos = parsed.lines.linePos(node.range[0]);
        return { line: pos.line, column: pos.col };
      }
    }
    return {};
  }

  async read(file: string, from?: { file: string; at: string }): Promise<ParsedFile> {
    const known = this.files.get(file);
    if (known) return known;
    const fail = (message: string) => (from ? this.error(from.file, from.at, message) : new ManifestError(file, [{ path: '', message }]));
    if (this.files.size >= MAX_OPENAPI_FILES) throw fail(`the document is split over more than ${MAX_OPENAPI_FILES} files: expected at most ${MAX_OPENAPI_FILES}`);
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch (err) {
      throw fail(`cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    this.bytes += size;
    if (this.bytes > MAX_OPENAPI_BYTES) throw fail(`the OpenAPI document is over ${MAX_OPENAPI_BYTES / 2 ** 20} MiB (${file} brings it to ${this.bytes} bytes): expected at most ${MAX_OPENAPI_BYTES} bytes`);
    const text = await readFile(file, 'utf8');
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
    const syntax = doc.errors[0];
    if (syntax) {
      const pos = syntax.linePos ? { line: syntax.linePos[0].line, column: syntax.linePos[0].col } : {};
      throw new ManifestError(file, [{ path: '', message: `not valid YAML or JSON: ${syntax.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`, ...pos }]);
    }
    let data: unknown;
    try {
      data = doc.toJS(); // an alias with no anchor, or too many aliases (a "billion laughs"), fails only here
    } catch (err) {
      throw new ManifestError(file, [{ path: '', message: `not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}` }]);
    }
    const parsed = { data, doc, lines };
    this.files.set(file, parsed);
    return parsed;
  }

  /**
   * Every `$ref` of `file`, and of the files they lead to: to a file in the
   * document's folder (no URL, nothing outside it), at a pointer that exists.
   */
  async checkRefs(file: string, value: unknown = undefined, at: Array<string | number> = [], idUrl?: string): Promise<void> {
    const node = at.length === 0 ? (await this.read(file)).data : value;
    if (Array.isArray(node)) {
      for (const [i, v] of node.entries()) await this.checkRefs(file, v, [...at, i], idUrl);
      return;
    }
    if (!isRecord(node)) return;
    // A JSON Schema `$id` that is a URL makes the parser resolve the `$ref`s under it against that URL: a fetch.
    if (typeof node.$id === 'string' && /^[A-Za-z][A-Za-z0-9+.-]*:/.test(node.$id)) idUrl = node.$id;
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') {
        if (idUrl !== undefined) throw this.error(file, [...at, k], `$ref "${v}" is under "$id: ${idUrl}", so it would resolve to a URL: expected no URL $id above a $ref (Vigil fetches nothing at startup)`);
        await this.checkRef(file, v, [...at, k]);
      } else await this.checkRefs(file, v, [...at, k], idUrl);
    }
  }


  async checkRef(file: string, ref: string, at: Array<string | number>): Promise<void> {
    const [target = '', fragment = ''] = ref.split(/#(.*)/s);
    const where = { file, at: pointer(at) };
    let targetFile = file;
    if (target !== '') {
      if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(target)) {
        throw this.error(file, at, `$ref "${ref}" is a URL: expected a file in the document's folder (Vigil fetches nothing at startup)`);
      }
      targetFile = path.resolve(path.dirname(file), decodeURIComponent(target));
      const rel = path.relative(path.dirname(this.root), targetFile);
      if (rel.startsWith('..') || path.isAbsolute(rel)) {
        throw this.error(file, at, `$ref "${ref}" leaves the document's folder ${path.dirname(this.root)}: expected a file inside it`);
      }
    }
    const parsed = await this.read(targetFile, where);
    let cur: unknown = parsed.data;
    for (const key of keysOf(`#${fragment}`)) {
      const next = Array.isArray(cur) && /^\d+$/.test(key) ? cur[Number(key)] : isRecord(cur) && Object.hasOwn(cur, key) ? cur[key] : undefined;
      if (next === undefined) {
        throw this.error(file, at, `$ref "${ref}" points nowhere: expected ${target === '' ? 'this document' : targetFile} to have "${fragment}" ("${key}" is not there)`);
      }
      cur = next;
    }
    if (target !== '' && !this.checked.has(targetFile)) {
      this.checked.add(targetFile);
      await this.checkRefs(targetFile);
    }
  }
}

/** The OpenAPI path template `/pets/{petId}` as an Express route `/pets/:petId`; the bad name when there is one. */
export function expressRoute(template: string): { route: string } | { bad: string } {
  let bad: string | undefined;
  const route = template.replace(/\{([^}]*)\}/g, (_, name: string) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) bad ??= name;
    return `:${name}`;
  });
  return bad === undefined ? { route } : { bad };
}

/** The path of `servers[0].url` (its variables at their defaults), without a trailing "/". */
export function serverBasePath(servers: unknown): string {
  const first = Array.isArray(servers) ? servers[0] : undefined;
  if (!isRecord(first) || typeof first.url !== 'string') return '';
  const vars = isRecord(first.variables) ? first.variables : {};
  const url = first.url.replace(/\{([^}]*)\}/g, (whole, name: string) => {
    const v = vars[name];
    return isRecord(v) && typeof v.default === 'string' ? v.default : whole;
  });
  let pathname: string;
  try {
    pathname = new URL(url, 'http://host.invalid').pathname;
  } catch {
    return '';
  }
  return decodeURI(pathname).replace(/\/+$/, '');
}

/** A parameter's example value: `example`, the first of `examples`, or its schema's `example` / first of `examples`. */
function exampleOf(param: Json): string | undefined {
  const schema = isRecord(param.schema) ? param.schema : {};
  const named = isRecord(param.examples) ? Object.values(param.examples).find((e) => isRecord(e) && e.value !== undefined) : undefined;
  const candidates = [param.example, isRecord(named) ? named.value : undefined, schema.example, Array.isArray(schema.examples) ? schema.examples[0] : undefined];
  const v = candidates.find((c) => typeof c === 'string' || typeof c === 'number' || typeof c === 'boolean');
  return v === undefined || v === '' ? undefined : String(v);
}

/** A login is expected: a non-empty security requirement without an empty `{}` (anonymous) alternative. */
function needsLogin(security: unknown): boolean {
  return Array.isArray(security) && security.length > 0 && !security.some((r) => isRecord(r) && Object.keys(r).length === 0);
}

export interface ExpandOptions {
  /** Absolute path of the OpenAPI document. */
  file: string;
  source: OpenApiSource;
}

/**
 * Reads the document and adds its operations to the manifest's components
 * (a copy is returned). A hand-written endpoint with the same method and
 * route wins over the operation's.
 */
export async function expandOpenApi(manifest: Manifest, { file, source }: ExpandOptions): Promise<Manifest> {
  const reader = new Reader(file);
  const { data } = await reader.read(file);
  if (!isRecord(data)) throw reader.error(file, [], 'expected an OpenAPI document (an object with "openapi", "info" and "paths")');
  if (data.swagger !== undefined) {
    throw reader.error(file, ['swagger'], `Swagger ${String(data.swagger)} is not supported: expected an OpenAPI 3.0 or 3.1 document ("openapi: 3.0.x" or "3.1.x"); convert it first, e.g. with swagger2openapi`);
  }
  if (typeof data.openapi !== 'string' || !/^3\.[01]\.\d+/.test(data.openapi)) {
    throw reader.error(file, ['openapi'], `expected "openapi: 3.0.x" or "3.1.x", got ${JSON.stringify(data.openapi ?? null)}`);
  }
  await reader.checkRefs(file);

  const { validate, dereference, compileErrors } = await import('@readme/openapi-parser');
  // No URL is ever read, whatever the checks above missed (the parser's own options cannot turn its HTTP resolver off: canRead can).
  const options = { resolve: { external: true, http: { canRead: false } as unknown as { timeout?: number } }, validate: { errors: { colorize: false } } };
  let doc: Json;
  try {
    const result = await validate(file, options);
    if (!result.valid) {
      // The parser shows where in a JSON rendering of the document (not in the file's own lines): said so, indented under the issue.
      const [first = '', ...frame] = compileErrors(result).replace(/^OpenAPI schema validation failed\.\s*/, '').split('\n');
      const where = frame.some((l) => l.trim()) ? `\n      in the document rendered as JSON:\n${frame.filter((l) => l.trim()).map((l) => `      ${l}`).join('\n')}` : '';
      throw reader.error(file, [], `not a valid OpenAPI ${data.openapi} document: ${first.trim()}${where}`);
    }
    doc = (await dereference(file, options)) as unknown as Json;
  } catch (err) {
    if (err instanceof ManifestError) throw err;
    throw reader.error(file, [], `cannot dereference the document: ${(err as Error).message}`);
  }

  const names = Object.keys(manifest.components);
  const base = source.basePath ?? serverBasePath(doc.servers);
  const handWritten = new Set(Object.values(manifest.components).flatMap((c) => c.endpoints.map((e) => `${e.method} ${e.route}`)));
  const generated = new Map<string, string>();
  // A copy of the endpoint lists only: an object manifest holds functions and clients, which are kept as they are.
  const out: Manifest = { ...manifest, components: Object.fromEntries(Object.entries(manifest.components).map(([k, c]) => [k, { ...c, endpoints: [...c.endpoints] }])) };
  const paths = isRecord(doc.paths) ? doc.paths : {};

  for (const [template, item] of Object.entries(paths)) {
    if (!isRecord(item)) continue;
    const itemAt = ['paths', template];
    checkExtensions(reader, file, item, itemAt);
    for (const method of METHODS) {
      const op = item[method];
      if (!isRecord(op)) continue;
      const at = [...itemAt, method];
      const what = `${method.toUpperCase()} ${template}`;
      checkExtensions(reader, file, op, at);
      const ignore = op['x-vigil-ignore'] ?? item['x-vigil-ignore'];
      if (ignore !== undefined && typeof ignore !== 'boolean') {
        throw reader.error(file, [...at, 'x-vigil-ignore'], `${what}: expected x-vigil-ignore to be true or false, got ${JSON.stringify(ignore)}`);
      }
      if (ignore) continue;

      const component = componentOf(reader, file, op, item, at, what, names, source.component);
      const converted = expressRoute(template);
      if ('bad' in converted) throw reader.error(file, itemAt, `${what}: path parameter "{${converted.bad}}" cannot be an Express route parameter: expected a name of letters, digits and "_"`);
      const route = `${base}${converted.route}` || '/';

      const params: Record<string, string> = {};
      const declared = [...(Array.isArray(item.parameters) ? item.parameters : []), ...(Array.isArray(op.parameters) ? op.parameters : [])];
      for (const p of declared) {
        if (!isRecord(p) || p.in !== 'path' || typeof p.name !== 'string') continue;
        const v = exampleOf(p);
        if (v !== undefined) params[p.name] = v; // the operation's own parameter comes later and wins
      }
      const probeIn = op['x-vigil-probe'];
      if (probeIn !== undefined && !isRecord(probeIn)) throw reader.error(file, [...at, 'x-vigil-probe'], `${what}: expected x-vigil-probe to be an object (the manifest's "probe"), got ${JSON.stringify(probeIn)}`);
      const probe: Json = { ...(probeIn ?? {}) };
      if (probe.params === undefined || isRecord(probe.params)) probe.params = { ...params, ...(probe.params ?? {}) }; // else the schema says what is wrong
      if (probe.auth === undefined && needsLogin(op.security ?? doc.security)) probe.auth = true;

      // x-vigil-slo is the manifest's endpoint `slo`, checked by the same schema (`vigil slo` reads it).
      const slo = op['x-vigil-slo'];
      const parsed = Endpoint.safeParse({ method: method.toUpperCase(), route, probe, ...(slo === undefined ? {} : { slo }) });
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        const ext = issue.path[0] === 'probe' ? 'x-vigil-probe' : issue.path[0] === 'slo' ? 'x-vigil-slo' : undefined;
        const keys = ext ? [...at, ext, ...issue.path.slice(1).map((k) => (typeof k === 'symbol' ? String(k) : k))] : itemAt;
        const what2 = ext ? `${what}: ${ext}${issue.path.slice(1).map((k) => `.${String(k)}`).join('')}` : `${what}: route "${route}"`;
        throw reader.error(file, keys, `${what2}: ${issue.message.replace(/^Invalid (input|option): /, '')}`);
      }
      const key = `${parsed.data.method} ${parsed.data.route}`;
      if (handWritten.has(key)) continue; // the manifest's own declaration of the same route wins
      // `/a/{x}` and `/a/{y}` match the same requests: one route for Express, two verdicts here.
      const shape = key.replace(/:[A-Za-z_][A-Za-z0-9_]*/g, ':');
      const first = generated.get(shape);
      if (first !== undefined) throw reader.error(file, at, `${what} matches the same requests as ${first}: expected one operation per route`);
      generated.set(shape, what);
      out.components[component]!.endpoints.push(parsed.data);
    }
  }
  return out;
}

function checkExtensions(reader: Reader, file: string, obj: Json, at: Array<string | number>): void {
  for (const key of Object.keys(obj)) {
    if (key.startsWith('x-vigil-') && !(EXTENSIONS as readonly string[]).includes(key)) {
      throw reader.error(file, [...at, key], `unknown extension "${key}": expected one of ${EXTENSIONS.join(', ')}`);
    }
  }
}

/** `x-vigil-component` (operation, then path item), else the first tag naming a component (any case), else the default. */
function componentOf(reader: Reader, file: string, op: Json, item: Json, at: Array<string | number>, what: string, names: string[], fallback: string | undefined): string {
  for (const [obj, keys] of [
    [op, at],
    [item, at.slice(0, -1)],
  ] as const) {
    const c = obj['x-vigil-component'];
    if (c === undefined) continue;
    if (typeof c !== 'string' || !names.includes(c)) {
      throw reader.error(file, [...keys, 'x-vigil-component'], `${what}: x-vigil-component is ${JSON.stringify(c)}: expected a component of the manifest (${names.join(', ')})`);
    }
    return c;
  }
  const tags = Array.isArray(op.tags) ? op.tags.filter((t): t is string => typeof t === 'string') : [];
  const byTag = tags.map((t) => names.find((n) => n === t.toLowerCase())).find((n) => n !== undefined);
  if (byTag) return byTag;
  if (fallback !== undefined) return fallback;
  throw reader.error(
    file,
    at,
    `${what} belongs to no component: expected "x-vigil-component", a tag naming a component of the manifest (${names.join(', ')}), or "openapi.component" in the manifest`,
  );
}
