/**
 * `vigil diff OLD [NEW]`: what a release removes, adds and changes in the route
 * table — a CI gate before deploy. OLD and NEW are snapshots of `vigil routes
 * --json`; without NEW, the app as it is now (built as `vigil routes` builds
 * it). A removal the manifest does not list in `removedRoutes` exits 1.
 */
import { ManifestError } from '../errors.js';
import { loadManifest } from '../manifest/load.js';
import type { RemovedRoute } from '../manifest/schema.js';
import { diffRoutes, formatDiff, readSnapshot, SnapshotError } from '../startup/route-diff.js';
import { routeTable, type RouteRow, type RouteSnapshot } from '../startup/route-table.js';
import { APP_OPTIONS, EXIT, findManifest, parseCommand, setPhase, UsageError, withApp } from './app.js';

export const DIFF_USAGE = `Usage: vigil diff OLD.json [NEW.json] [--manifest vigil.yaml] [--app ./dist/app.js] [--json] [--timeout 60s] [--verbose]

Compares the route table of two releases: prints the routes removed, added and
changed (a path whose methods changed, a route whose component changed; a renamed
route shows as removed + added). OLD and NEW are snapshots written by
"vigil routes --json"; without NEW, the app as it is now, built as vigil routes
builds it (--manifest, --app, --timeout alike). Removals listed in the manifest's
removedRoutes are shown as intended (with two snapshots, the manifest is read
only for them: --manifest, else vigil.yaml here if there is one).

  --json           print the diff as JSON

Exit codes: 0 nothing removed (or only intended removals), 1 a route removed that
the manifest does not list as intended, 2 bad input or usage (a snapshot that cannot
be read, naming the file and what is wrong), 3 timed out, 4 an error in the app's
module or in Vigil.`;

/** Prints the diff of `old` and the routes of `now`; the exit code is the gate's verdict. */
function report(old: RouteSnapshot, oldName: string, now: RouteRow[], nowName: string, intended: RemovedRoute[], json: boolean): number {
  const d = diffRoutes(old.routes, now, intended);
  const title = `Route diff: ${oldName} → ${nowName}`;
  process.stdout.write(json ? `${JSON.stringify({ old: oldName, new: nowName, ...d }, null, 2)}\n` : `${formatDiff(d, title)}\n`);
  return d.unintended.length ? EXIT.failFast : EXIT.ok;
}

const label = (file: string, s: RouteSnapshot) => `${file} (${s.service}${s.version ? ` ${s.version}` : ''}, ${s.generatedAt})`;

export async function diff(argv: string[]): Promise<number> {
  const parsed = parseCommand({ args: argv, options: APP_OPTIONS, allowPositionals: true }, DIFF_USAGE);
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const usage = (message: string) => {
    process.stderr.write(`${message}\n\n${DIFF_USAGE}\n`);
    return EXIT.invalid;
  };
  if (positionals.length < 1 || positionals.length > 2) return usage(`vigil diff: expected one or two snapshot files, got ${positionals.length}`);
  if (positionals.length === 2 && values.app) return usage('vigil diff: --app builds the new side; give one snapshot with it, not two');
  const [oldFile, newFile] = positionals as [string, string | undefined];
  try {
    const old = await readSnapshot(oldFile);
    if (newFile !== undefined) {
      const now = await readSnapshot(newFile);
      const manifest = findManifest(values.manifest);
      const intended = manifest ? (await loadManifest(manifest)).manifest.removedRoutes : [];
      return report(old, label(oldFile, old), now.routes, label(newFile, now), intended, values.json);
    }
    return await withApp('diff', values, async (guard, app) => {
      setPhase('listing the routes');
      const now = routeTable(app, guard.manifest);
      if (now.more) throw new UsageError(`vigil diff: the app has ${now.total} routes, over the ${now.routes.length} a route table holds: a diff needs every route`);
      return report(old, label(oldFile, old), now.routes, `the app now (${guard.manifest.service}${guard.manifest.version ? ` ${guard.manifest.version}` : ''})`, guard.manifest.removedRoutes, values.json);
    });
  } catch (err) {
    if (!(err instanceof SnapshotError || err instanceof ManifestError)) throw err;
    process.stderr.write(`vigil diff: ${err.message}\n`);
    return EXIT.invalid;
  }
}
