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

/** The first line of an error's message, bounded, for reports. */
export function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const line = text.split('\n')[0] ?? '';
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}
