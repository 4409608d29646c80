/**
 * What the `vigil` commands that build the app (`preflight`, `routes`, `diff`)
 * share: their options, finding the manifest, building the app as the
 * deployment does, the timeout, and an exit that comes whatever handles the
 * app's modules leave open.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { pino } from 'pino';
import { EXIT_INVALID_MANIFEST, ManifestError, debugging } from '../errors.js';
import { vigil, type ExpressLike, type VigilGuard } from '../guard.js';
import { formatTimeout, parseDuration } from '../util/duration.js';

/** Taken before any router import can stand in for it (see startup/routers.ts). */
const realExit = process.exit.bind(process);

export const EXIT = { ok: 0, failFast: 1, invalid: EXIT_INVALID_MANIFEST, timeout: 3, error: 4 } as const;
const DEFAULT_TIMEOUT_MS = 60_000;

/** The options of every command that builds the app. */
export const APP_OPTIONS = {
  manifest: { type: 'string' },
  app: { type: 'string' },
  json: { type: 'boolean', default: false },
  timeout: { type: 'string' },
  verbose: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

export interface AppArgs {
  manifest?: string;
  app?: string;
  timeout?: string;
  verbose?: boolean;
  /** Start Vigil's telemetry (`preflight --export`). */
  telemetry?: boolean;
}

/** A mistake in how the command was called: exit 2 with its message. */
export class UsageError extends Error {}

/** What the command is doing, for the timeout's message. */
let phase = 'starting';
export function setPhase(p: string): void {
  phase = p;
}

/**
 * Parses `argv`; on a bad option prints it with `usage` and returns exit 2,
 * on `--help` prints `usage` and returns 0.
 */
export function parseCommand<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>> | number {
  let parsed;
  try {
    parsed = parseArgs(config);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}\n`);
    return EXIT.invalid;
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(`${usage}\n`);
    return EXIT.ok;
  }
  return parsed;
}

/** The manifest given, or vigil.yaml / vigil.manifest.yaml in the current directory. */
export function findManifest(given: string | undefined): string | undefined {
  return given ?? ['vigil.yaml', 'vigil.manifest.yaml'].find((f) => existsSync(f));
}

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

/**
 * Loads the manifest, builds the app (without listening) and hands both to
 * `run`; returns its exit code, or the code of what went wrong on the way
 * (2 bad manifest or usage, 4 an error in the app's module). Past `--timeout`
 * (default 60 s) the process exits 3, whatever hangs.
 */
export async function withApp(command: string, args: AppArgs, run: (guard: VigilGuard, app: ExpressLike) => Promise<number>): Promise<number> {
  const timeoutMs = args.timeout === undefined ? DEFAULT_TIMEOUT_MS : /^\d+$/.test(args.timeout) ? Number(args.timeout) : parseDuration(args.timeout);
  if (!timeoutMs || timeoutMs > 2 ** 31 - 1) {
    process.stderr.write(`--timeout: expected a duration such as "30s" or "2m" (or whole milliseconds, over 0), got ${JSON.stringify(args.timeout)}\n`);
    return EXIT.invalid;
  }
  const verbose = Boolean(args.verbose) || debugging();
  // Whatever hangs (an --app module's top-level await, a dependency, telemetry), the command ends.
  setTimeout(() => {
    process.stderr.write(`vigil ${command}: timed out after ${formatTimeout(timeoutMs)} while ${phase}\n`);
    void exit(EXIT.timeout);
  }, timeoutMs);
  // An error the app's modules throw later (a pool's "error" event, a timer) is reported, not taken for a fail-fast exit 1.
  const escaped = (err: unknown) => {
    process.stderr.write(`vigil ${command}: an error escaped the app's code while ${phase}: ${describe(err, verbose)}\n`);
    void exit(EXIT.error);
  };
  process.on('uncaughtException', escaped);
  process.on('unhandledRejection', escaped);

  const manifest = findManifest(args.manifest);
  if (!manifest) {
    process.stderr.write(`No manifest: pass --manifest, or put vigil.yaml in ${process.cwd()}\n`);
    return EXIT.invalid;
  }
  let guard: VigilGuard;
  try {
    phase = `loading the manifest ${manifest}`;
    // Logs go to stderr so --json output stays machine-readable.
    guard = await vigil({ manifest, telemetry: Boolean(args.telemetry), onInvalidManifest: 'throw', logger: pino({ level: process.env.VIGIL_LOG_LEVEL ?? 'silent' }, pino.destination(2)) });
  } catch (err) {
    if (err instanceof ManifestError) {
      process.stderr.write(`${verbose ? err.stack : err.message}\n`);
      return EXIT.invalid;
    }
    process.stderr.write(`vigil ${command}: ${describe(err, verbose)}\n`);
    return EXIT.error;
  }
  try {
    const app = await buildApp(guard, args.app);
    return await run(guard, app);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      return EXIT.invalid;
    }
    process.stderr.write(`vigil ${command}: ${describe(err, verbose)}\n`);
    return EXIT.error;
  } finally {
    phase = 'shutting down';
    // The output is out: a shutdown that hangs (an export to an unreachable collector) does not hold the exit code.
    await Promise.race([guard.shutdown().catch(() => undefined), new Promise((r) => setTimeout(r, 3000).unref())]);
  }
}

/** An error in one line, or with its stack when asked. */
export function describe(err: unknown, verbose: boolean): string {
  if (!(err instanceof Error)) return String(err);
  return verbose && err.stack ? err.stack : err.message;
}

/** Exits once what was written has reached stdout and stderr: handles the app's modules left open do not keep the command alive. */
export async function exit(code: number): Promise<never> {
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((r) => s.write('', () => r()))));
  return realExit(code);
}
