import { createRequire } from 'node:module';

/**
 * Resolves a module specifier the way the app would see it: relative ones
 * against `baseUrl` (the manifest's location), bare ones from `baseUrl`'s
 * node_modules, so a manifest means the same wherever the SDK is installed.
 */
export function resolveSpecifier(specifier: string, baseUrl: URL): string {
  if (specifier.startsWith('file:') || specifier.startsWith('node:')) return specifier;
  if (specifier.startsWith('.') || specifier.startsWith('/')) return new URL(specifier, baseUrl).href;
  try {
    return new URL(`file://${createRequire(baseUrl).resolve(specifier)}`).href;
  } catch {
    return specifier; // ESM-only package without a "require" condition: let import() resolve it
  }
}

/** Picks an export: the named one, else `fallbacks` in order; CommonJS `module.exports` objects included. */
export function pickExport(mod: Record<string, unknown>, name: string | undefined, fallbacks: string[]): unknown {
  const names = name ? [name] : fallbacks;
  const def = mod.default as Record<string, unknown> | undefined;
  for (const n of names) {
    if (n === 'default' && def !== undefined) return def;
    if (mod[n] !== undefined) return mod[n];
    if (def && (typeof def === 'object' || typeof def === 'function') && def[n] !== undefined) return def[n];
  }
  return undefined;
}

/** A short, low-cardinality name for an error: its code (`ERR_MODULE_NOT_FOUND`) or class (`TypeError`). */
export function errorType(err: unknown): string {
  if (err && typeof err === 'object') {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z0-9_]+$/.test(code)) return code;
    const name = (err as { name?: unknown }).name;
    if (typeof name === 'string' && name) return name;
  }
  return typeof err === 'string' ? 'Error' : '_OTHER';
}

const bounded = (line: string, max = 300) => (line.length > max ? `${line.slice(0, max - 3)}...` : line);
/** Modules of a CommonJS "Require stack" kept in a report: the first ones say who required what. */
const REQUIRE_STACK_KEPT = 5;

/**
 * The first line of an error's message, bounded, for reports. A CommonJS load
 * error keeps its "Require stack" (the modules that required the missing one,
 * the nearest first), up to five entries: without it, "Cannot find module 'x'"
 * does not say which file needs it.
 */
export function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const [first = '', ...rest] = text.split('\n');
  const at = rest.findIndex((l) => l.trim() === 'Require stack:');
  if (at < 0) return bounded(first);
  const stack = rest.slice(at + 1).filter((l) => l.trim().startsWith('- '));
  const kept = stack.slice(0, REQUIRE_STACK_KEPT).map((l) => bounded(l.trim()));
  if (stack.length > REQUIRE_STACK_KEPT) kept.push(`- … ${stack.length - REQUIRE_STACK_KEPT} more`);
  return [bounded(first), 'Require stack:', ...kept].join('\n');
}
