#!/usr/bin/env node
/**
 * The `vigil` command. `vigil preflight`: the startup validation of an app,
 * without listening — for a deploy pipeline to run before the server starts.
 * `vigil routes` (cli/routes.ts): the live route table. `vigil diff`
 * (cli/diff.ts): what a release removes. Each always exits, with a code saying
 * what happened (see its usage), whatever handles the app's modules leave open.
 */
import { formatReport, reportToJSON } from '../startup/report.js';
import { formatProbePlan, probePlan } from '../monitor/probe-policy.js';
import { APP_OPTIONS, EXIT, exit, parseCommand, setPhase, withApp } from './app.js';
import { diff, DIFF_USAGE } from './diff.js';
import { routes, ROUTES_USAGE } from './routes.js';
import { slo, SLO_USAGE } from './slo.js';

const USAGE = `Usage: vigil preflight [--manifest vigil.yaml] [--app ./dist/app.js] [--json] [--strict] [--export] [--timeout 60s] [--verbose]

Runs Vigil's startup validation without listening: imports each router of the
manifest in isolation, inventories the routes Express registers, runs the
dependency checks and applies each component's policy.

  --manifest FILE  the manifest (default: vigil.yaml or vigil.manifest.yaml here)
  --app MODULE     a module exporting createApp(guard) (or a default function) that
                   builds the Express app without listening; without it, the
                   manifest's routers are mounted on a fresh Express app
  --json           print the report as JSON
  --strict         exit 1 when any component is degraded, not only on fail-fast
  --export         export the results over OTLP (OTEL_EXPORTER_OTLP_* variables)
  --timeout TIME   give up after this long, e.g. 30s or 2m (default 60s)
  --verbose        print the stack of an error (as does VIGIL_DEBUG=1)

Exit codes: 0 passed (or degraded), 1 a fail-fast component failed, 2 bad manifest
or usage, 3 timed out, 4 an error in the app's module or in Vigil.`;

export async function preflight(argv: string[]): Promise<number> {
  const parsed = parseCommand({ args: argv, options: { ...APP_OPTIONS, strict: { type: 'boolean', default: false }, export: { type: 'boolean', default: false } } }, USAGE);
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  return withApp('preflight', { ...values, telemetry: values.export }, async (guard, app) => {
    setPhase('validating (route inventory and dependency checks)');
    const report = await guard.validate(app, { throwOnFailure: false, monitor: false });
    const probes = probePlan(guard.manifest);
    process.stdout.write(
      values.json ? `${JSON.stringify({ ...(reportToJSON(report) as object), probes }, null, 2)}\n` : `${formatReport(report)}\n${formatProbePlan(probes)}`,
    );
    if (report.status === 'fail') return EXIT.failFast;
    return values.strict && report.status === 'warn' ? EXIT.failFast : EXIT.ok;
  });
}

const ALL_USAGE = [USAGE, ROUTES_USAGE, DIFF_USAGE, SLO_USAGE].join('\n\n');

async function main(): Promise<number> {
  const [command, ...rest] = process.argv.slice(2);
  if (command === 'preflight') return preflight(rest);
  if (command === 'routes') return routes(rest);
  if (command === 'diff') return diff(rest);
  if (command === 'slo') return slo(rest);
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${ALL_USAGE}\n`);
    return command === undefined ? EXIT.invalid : EXIT.ok;
  }
  process.stderr.write(`Unknown command "${command}".\n\n${ALL_USAGE}\n`);
  return EXIT.invalid;
}

await exit(await main());
