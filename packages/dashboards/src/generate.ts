#!/usr/bin/env node
/**
 * Writes the dashboards to grafana/dashboards/<uid>.json.
 *
 *   npm run dashboards                                   # build, then write
 *   node packages/dashboards/dist/generate.js --check    # exit 1 if a committed file differs
 *   node packages/dashboards/dist/generate.js --out DIR  # another directory
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allDashboards, dashboardFileName, renderDashboard } from './index.js';

/** grafana/dashboards from src/ or dist/ of this package. */
export const DEFAULT_OUT_DIR = fileURLToPath(new URL('../../../grafana/dashboards/', import.meta.url));

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export function generate(args: string[]): number {
  const check = args.includes('--check');
  const outIndex = args.indexOf('--out');
  const outDir = outIndex >= 0 && args[outIndex + 1] ? args[outIndex + 1]! : DEFAULT_OUT_DIR;
  const show = (p: string) => relative(process.cwd(), p) || p;

  const expected = new Map<string, string>();
  for (const d of allDashboards()) expected.set(dashboardFileName(d), renderDashboard(d));

  if (check) {
    const differ: string[] = [];
    for (const [name, text] of expected) {
      const current = readOrUndefined(join(outDir, name));
      if (current !== text) differ.push(`${show(join(outDir, name))}${current === undefined ? ' (missing)' : ''}`);
    }
    let present: string[] = [];
    try {
      present = readdirSync(outDir).filter((f) => f.endsWith('.json'));
    } catch {
      // no directory: every file is missing, listed above
    }
    for (const f of present) if (!expected.has(f)) differ.push(`${show(join(outDir, f))} (not generated: remove it)`);
    if (differ.length) {
      console.error(`dashboards out of date — run \`npm run dashboards\`:\n${differ.map((d) => `  ${d}`).join('\n')}`);
      return 1;
    }
    console.log(`dashboards up to date (${expected.size} files in ${show(outDir)})`);
    return 0;
  }

  mkdirSync(outDir, { recursive: true });
  for (const [name, text] of expected) {
    const path = join(outDir, name);
    const before = readOrUndefined(path);
    if (before === text) {
      console.log(`unchanged  ${show(path)}`);
    } else {
      writeFileSync(path, text);
      console.log(`${before === undefined ? 'created  ' : 'updated  '}  ${show(path)}`);
    }
  }
  console.log(`${expected.size} dashboards in ${show(outDir)}`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = generate(process.argv.slice(2));
}
