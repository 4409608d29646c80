/**
 * Release over release: what one route snapshot removes, adds and changes
 * against another, and which removals the manifest says are intended
 * (`removedRoutes`). A removal is a route (method and path) the old release
 * had and the new one does not — also when the path stays with other methods.
 */
import { readFile, stat } from 'node:fs/promises';
import type { RemovedRoute } from '../manifest/schema.js';
import { RouteSnapshot, type RouteRow } from './route-table.js';

/** The largest snapshot file read: 10,000 rows of long paths stay well under it. */
export const MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024;

/** A snapshot that cannot be used: the message names the file, the place in it and what was expected. */
export class SnapshotError extends Error {}

/** Reads and validates a snapshot written by `vigil routes --json`. */
export async function readSnapshot(file: string): Promise<RouteSnapshot> {
  let text: string;
  try {
    const size = (await stat(file)).size;
    if (size > MAX_SNAPSHOT_BYTES) throw new SnapshotError(`${file}: ${size} bytes, over the ${MAX_SNAPSHOT_BYTES} a route snapshot may have`);
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (err instanceof SnapshotError) throw err;
    throw new SnapshotError(`${file}: cannot read it: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SnapshotError(`${file}: not JSON (${(err as Error).message}): expected a snapshot written by "vigil routes --json"`);
  }
  const parsed = RouteSnapshot.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.length ? issue.path.join('.') : '(the document)';
    throw new SnapshotError(`${file}: ${where}: ${issue.message}${parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more problems)` : ''}`);
  }
  if (parsed.data.more > 0) {
    throw new SnapshotError(`${file}: the snapshot is cut short (${parsed.data.more} of ${parsed.data.total} routes not in it): a diff needs every route`);
  }
  return parsed.data;
}

export interface Removal {
  /** `METHOD /path`. */
  route: string;
  component?: string;
  /** True when the path stays, with other methods (a method change). */
  pathRemains: boolean;
  /** The manifest's reason, when the removal is intended (`removedRoutes`). */
  intended?: string;
}

export interface Addition {
  route: string;
  component?: string;
  pathExisted: boolean;
}

export type Change =
  | { kind: 'methods'; path: string; before: string[]; after: string[] }
  | { kind: 'component'; route: string; before?: string; after?: string };

export interface RouteDiff {
  removed: Removal[];
  added: Addition[];
  changed: Change[];
  /** Removals the manifest does not list as intended: the gate fails on these. */
  unintended: string[];
}

const keyOf = (r: Pick<RouteRow, 'method' | 'path'>) => `${r.method} ${r.path}`;

function methodsByPath(rows: RouteRow[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of rows) out.set(r.path, [...(out.get(r.path) ?? []), r.method]);
  return out;
}

/** Compares two route sets; `intended` are the manifest's `removedRoutes`. */
export function diffRoutes(before: RouteRow[], after: RouteRow[], intended: RemovedRoute[] = []): RouteDiff {
  const old = new Map(before.map((r) => [keyOf(r), r]));
  const now = new Map(after.map((r) => [keyOf(r), r]));
  const oldPaths = methodsByPath(before);
  const newPaths = methodsByPath(after);
  const reasons = new Map(intended.map((i) => [i.route, i.reason]));

  const removed: Removal[] = [...old.values()]
    .filter((r) => !now.has(keyOf(r)))
    .map((r) => {
      const reason = reasons.get(keyOf(r));
      return { route: keyOf(r), ...(r.component ? { component: r.component } : {}), pathRemains: newPaths.has(r.path), ...(reason !== undefined ? { intended: reason } : {}) };
    });
  const added: Addition[] = [...now.values()]
    .filter((r) => !old.has(keyOf(r)))
    .map((r) => ({ route: keyOf(r), ...(r.component ? { component: r.component } : {}), pathExisted: oldPaths.has(r.path) }));
  const changed: Change[] = [];
  for (const [path, was] of oldPaths) {
    const is = newPaths.get(path);
    if (is && [...was].sort().join() !== [...is].sort().join()) changed.push({ kind: 'methods', path, before: was, after: is });
  }
  for (const [key, r] of old) {
    const n = now.get(key);
    if (n && n.component !== r.component) changed.push({ kind: 'component', route: key, ...(r.component ? { before: r.component } : {}), ...(n.component ? { after: n.component } : {}) });
  }
  return { removed, added, changed, unintended: removed.filter((r) => r.intended === undefined).map((r) => r.route) };
}

/** The diff for people: removed, added, changed, and the verdict. */
export function formatDiff(d: RouteDiff, title: string): string {
  const lines = [title];
  const gone = d.removed.filter((r) => !r.pathRemains);
  const component = (c?: string) => (c ? ` (${c})` : '');
  const removal = (r: Removal) => (r.intended !== undefined ? `intended: ${r.intended}` : 'REMOVED');
  lines.push(`Removed (${gone.length}):`, ...gone.map((r) => `  ${r.route}${component(r.component)}  ${removal(r)}`));
  const fresh = d.added.filter((a) => !a.pathExisted);
  lines.push(`Added (${fresh.length}):`, ...fresh.map((a) => `  ${a.route}${component(a.component)}`));
  lines.push(`Changed (${d.changed.length}):`);
  for (const c of d.changed) {
    if (c.kind === 'component') {
      lines.push(`  ${c.route}: component ${c.before ?? '(none)'} → ${c.after ?? '(none)'}`);
      continue;
    }
    const dropped = d.removed.filter((r) => r.pathRemains && r.route.endsWith(` ${c.path}`) && c.before.includes(r.route.split(' ')[0]!));
    const detail = dropped.map((r) => `${r.route.split(' ')[0]} ${removal(r)}`).join(', ');
    lines.push(`  ${c.path}: methods ${c.before.join(', ')} → ${c.after.join(', ')}${detail ? `  (${detail})` : ''}`);
  }
  if (gone.length && fresh.length) lines.push('Note: a renamed route shows as removed + added.');
  lines.push(
    d.unintended.length
      ? `FAIL: ${d.unintended.length} route${d.unintended.length === 1 ? '' : 's'} removed that the manifest does not list in removedRoutes: ${d.unintended.join(', ')}`
      : `OK: nothing removed${d.removed.length ? ' unintentionally' : ''}`,
  );
  return lines.join('\n');
}
