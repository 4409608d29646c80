#!/usr/bin/env node
/**
 * `vigil preflight`: the startup validation of an app, without listening —
 * for a deploy pipeline to run before the server starts. It always exits, with
 * a code saying what happened (see USAGE), whatever handles the app's modules
 * leave open.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { EXIT_INVALID_MANIFEST, ManifestError, debugging } from '../errors.js';
import { vigil, type ExpressLike, type VigilGuard } from '../guard.js';
import { formatReport, reportToJSON } from '../startup/report.js';
import { formatProbePlan, probePlan } from '../monitor/probe-policy.js';
import { formatTimeout, parseDuration } from '../util/duration.js';
import { pino } from 'pino';
import { slo } from './slo.js';

/** Taken before any router import can stand in for it (see startup/routers.ts). */
const realExit = process.exit.bind(process);

const EXIT = { ok: 0, failFast: 1, invalid: EXIT_INVALID_MANIFEST, timeout: 3, error: 4 } as const;
const DEFAULT_TIMEOUT_MS = 60_000;

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

type AppFactory = (guard: VigilGuard) => Promise<ExpressLike> | ExpressLike;

async function buildApp(guard: VigilGuard, appModule: string | undefined): Promise<ExpressLike> {
  if (appModule) {
    phase = `importing the --app module ${appModule}`;
    const mod = (await import(pathToFileURL(path.resolve(appModule)).href)) as Record<string, unknown>;
    const factory = (mod.createApp ?? mod.default) as AppFactory | undefined;
    if (typeof factory !== 'function') throw new UsageError(`${appModule} exports neither createApp nor a default function`);
    phase = `building the app with ${appModule} (router imports included)`;
    return factory(guard);
  }
  // No app module: mount the manifest's routers on a fresh app of the app's own Express.
  let express: () => ExpressLike;
  try {
    const mod = (await import(pathToFileURL(createRequire(guard.baseUrl).resolve('express')).href)) as { default: () => ExpressLike };
    express = mod.default;
  } catch {
    throw new UsageError('express is not installed beside the manifest; pass --app with a module that builds your app');
  }
  const app = express();
  phase = 'importing the routers';
  await guard.mountRouters(app);
  return app;
}

class UsageError extends Error {}

/** What preflight is doing, for the timeout's message. */
let phase = 'starting';

export async function preflight(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        manifest: { type: 'string' },
        app: { type: 'string' },
        json: { type: 'boolean', default: false },
        strict: { type: 'boolean', default: false },
        export: { type: 'boolean', default: false },
        timeout: { type: 'string' },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    return EXIT.invalid;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const timeoutMs = values.timeout === undefined ? DEFAULT_TIMEOUT_MS : /^\d+$/.test(values.timeout) ? Number(values.timeout) : parseDuration(values.timeout);
  if (!timeoutMs || timeoutMs > 2 ** 31 - 1) {
    process.stderr.write(`--timeout: expected a duration such as "30s" or "2m" (or whole milliseconds, over 0), got ${JSON.stringify(values.timeout)}\n`);
    return EXIT.invalid;
  }
  const verbose = values.verbose || debugging();
  // Whatever hangs (an --app module's top-level await, a dependency, telemetry), preflight ends.
  setTimeout(() => {
    process.stderr.write(`vigil preflight: timed out after ${formatTimeout(timeoutMs)} while ${phase}\n`);
    void exit(EXIT.timeout);
  }, timeoutMs);
  // An error the app's modules throw later (a pool's "error" event, a timer) is reported, not taken for a fail-fast exit 1.
  const escaped = (err: unknown) => {
    process.stderr.write(`vigil preflight: an error escaped the app's code while ${phase}: ${describe(err, verbose)}\n`);
    void exit(EXIT.error);
  };
  process.on('uncaughtException', escaped);
  process.on('unhandledRejection', escaped);

  const manifest = values.manifest ?? ['vigil.yaml', 'vigil.manifest.yaml'].find((f) => existsSync(f));
  if (!manifest) {
    process.stderr.write(`No manifest: pass --manifest, or put vigil.yaml in ${process.cwd()}\n`);
    return EXIT.invalid;
  }
  let guard: VigilGuard;
  try {
    phase = `loading the manifest ${manifest}`;
    // Logs go to stderr so --json output stays machine-readable.
    guard = await vigil({ manifest, telemetry: values.export, onInvalidManifest: 'throw', logger: pino({ level: process.env.VIGIL_LOG_LEVEL ?? 'silent' }, pino.destination(2)) });
  } catch (err) {
    if (err instanceof ManifestError) {
      process.stderr.write(`${verbose ? err.stack : err.message}\n`);
      return EXIT.invalid;
    }
    process.stderr.write(`vigil preflight: ${describe(err, verbose)}\n`);
    return EXIT.error;
  }
  try {
    const app = await buildApp(guard, values.app);
    phase = 'validating (route inventory and dependency checks)';
    const report = await guard.validate(app, { throwOnFailure: false, monitor: false });
    const probes = probePlan(guard.manifest);
    process.stdout.write(
      values.json ? `${JSON.stringify({ ...(reportToJSON(report) as object), probes }, null, 2)}\n` : `${formatReport(report)}\n${formatProbePlan(probes)}`,
    );
    if (report.status === 'fail') return EXIT.failFast;
    return values.strict && report.status === 'warn' ? EXIT.failFast : EXIT.ok;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      return EXIT.invalid;
    }
    process.stderr.write(`vigil preflight: ${describe(err, verbose)}\n`);
    return EXIT.error;
  } finally {
    phase = 'shutting down';
    // The report is out: a shutdown that hangs (an export to an unreachable collector) does not hold the exit code.
    await Promise.race([guard.shutdown().catch(() => undefined), new Promise((r) => setTimeout(r, 3000).unref())]);
  }
}

/** An error in one line, or with its stack when asked. */
function describe(err: unknown, verbose: boolean): string {
  if (!(err instanceof Error)) return String(err);
  return verbose && err.stack ? err.stack : err.message;
}

/** Exits once what was written has reached stdout and stderr: handles the app's modules left open do not keep preflight alive. */
async function exit(code: number): Promise<never> {
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((r) => s.write('', () => r()))));
  return realExit(code);
}

async function main(): Promise<number> {
  const [command, ...rest] = process.argv.slice(2);
  if (command === 'preflight') return preflight(rest);
  if (command === 'slo') return slo(rest);
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? EXIT.invalid : EXIT.ok;
  }
  process.stderr.write(`Unknown command "${command}".\n\n${USAGE}\n`);
  return EXIT.invalid;
}

await exit(await main());
