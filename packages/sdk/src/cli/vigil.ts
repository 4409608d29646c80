#!/usr/bin/env node
/**
 * `vigil preflight`: the startup validation of an app, without listening —
 * for a deploy pipeline to run before the server starts. Exit 0 when nothing
 * fail-fast failed (degraded components are reported), 1 on a fail-fast
 * failure (or any degradation with --strict), 2 on a bad manifest or usage.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ManifestError } from '../errors.js';
import { vigil, type ExpressLike, type VigilGuard } from '../guard.js';
import { formatReport, reportToJSON } from '../startup/report.js';
import { formatProbePlan, probePlan } from '../monitor/probe-policy.js';
import { pino } from 'pino';

const USAGE = `Usage: vigil preflight [--manifest vigil.yaml] [--app ./dist/app.js] [--json] [--strict] [--export]

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

Exit codes: 0 passed (or degraded), 1 a fail-fast component failed, 2 bad manifest or usage.`;

type AppFactory = (guard: VigilGuard) => Promise<ExpressLike> | ExpressLike;

async function buildApp(guard: VigilGuard, appModule: string | undefined): Promise<ExpressLike> {
  if (appModule) {
    const mod = (await import(pathToFileURL(path.resolve(appModule)).href)) as Record<string, unknown>;
    const factory = (mod.createApp ?? mod.default) as AppFactory | undefined;
    if (typeof factory !== 'function') throw new UsageError(`${appModule} exports neither createApp nor a default function`);
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
  await guard.mountRouters(app);
  return app;
}

class UsageError extends Error {}

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
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const manifest = values.manifest ?? ['vigil.yaml', 'vigil.manifest.yaml'].find((f) => existsSync(f));
  if (!manifest) {
    process.stderr.write(`No manifest: pass --manifest, or put vigil.yaml in ${process.cwd()}\n`);
    return 2;
  }
  let guard: VigilGuard;
  try {
    // Logs go to stderr so --json output stays machine-readable.
    guard = await vigil({ manifest, telemetry: values.export, logger: pino({ level: process.env.VIGIL_LOG_LEVEL ?? 'silent' }, pino.destination(2)) });
  } catch (err) {
    if (err instanceof ManifestError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  try {
    const app = await buildApp(guard, values.app);
    const report = await guard.validate(app, { throwOnFailure: false, monitor: false });
    const probes = probePlan(guard.manifest);
    process.stdout.write(
      values.json ? `${JSON.stringify({ ...(reportToJSON(report) as object), probes }, null, 2)}\n` : `${formatReport(report)}\n${formatProbePlan(probes)}`,
    );
    if (report.status === 'fail') return 1;
    return values.strict && report.status === 'warn' ? 1 : 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  } finally {
    await guard.shutdown();
  }
}

async function main(): Promise<number> {
  const [command, ...rest] = process.argv.slice(2);
  if (command === 'preflight') return preflight(rest);
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  process.stderr.write(`Unknown command "${command}".\n\n${USAGE}\n`);
  return 2;
}

process.exitCode = await main();
