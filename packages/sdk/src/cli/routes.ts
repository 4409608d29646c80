/**
 * `vigil routes`: the live route table of the app, built as `vigil preflight`
 * builds it — every route Express has, its component, whether the manifest
 * declares it, the layer that answers it and its router's module. `--json` is
 * the versioned snapshot `vigil diff` compares.
 */
import { formatRouteTable, routeSnapshot } from '../startup/route-table.js';
import { APP_OPTIONS, EXIT, parseCommand, setPhase, withApp } from './app.js';

export const ROUTES_USAGE = `Usage: vigil routes [--manifest vigil.yaml] [--app ./dist/app.js] [--json] [--timeout 60s] [--verbose]

Prints every route Express really has: method, full path, its component, whether
the manifest declares it (yes; NO: undocumented; health, internal or allowed: no
declaration needed), what answers it (route truth) and its router's module.
The app is built as vigil preflight builds it (--manifest, --app, --timeout alike).

  --json           the table as a snapshot for vigil diff:
                   { "vigilRoutes": 1, "service", "version", "generatedAt", "total", "more", "routes": [...] }

Exit codes: 0 printed, 2 bad manifest or usage, 3 timed out, 4 an error in the
app's module or in Vigil.`;

export async function routes(argv: string[]): Promise<number> {
  const parsed = parseCommand({ args: argv, options: APP_OPTIONS }, ROUTES_USAGE);
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  return withApp('routes', values, async (guard, app) => {
    setPhase('listing the routes');
    const snapshot = routeSnapshot(app, guard.manifest);
    const title = `Routes of ${snapshot.service}${snapshot.version ? ` ${snapshot.version}` : ''}`;
    process.stdout.write(values.json ? `${JSON.stringify(snapshot, null, 2)}\n` : `${formatRouteTable(snapshot, title)}\n`);
    return EXIT.ok;
  });
}
