#!/usr/bin/env node
/**
 * What Vigil's startup validation costs, and how it grows with the number of
 * routers. For each size, generated router modules (one route each, and a
 * variant with 1,000 routes in 10 routers) and a manifest declaring them
 * (10 routers per component, every route a critical endpoint, monitor off) are
 * written to a temporary directory; then, in a fresh node process per
 * measurement, alternated:
 *
 *   plain   import express and a module importing every router statically, mount each
 *           (bench/apps/startup-plain.mjs)
 *   vigil   import express and @vigil/sdk, vigil({ manifest }), guard.mountRouters(app),
 *           guard.validate(app), with OTEL_SDK_DISABLED=true     (bench/apps/startup-vigil.mjs)
 *
 * Reported: the medians' difference vigil − plain in time and in heap / RSS
 * after a full GC, per size, and how the part that depends on the size (the
 * overhead without the fixed cost of importing @vigil/sdk) grows from 10 to
 * 100 to 1,000 routers.
 *
 *   node bench/startup-cost.mjs [--quick] [--out file] [--runs 5] [--sizes 10,100,1000]
 *        [--no-wide] [--keep (leave the generated apps in the temporary directory)]
 */
import { execFile } from 'node:child_process';
import { rmSync, symlinkSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { cli, median, progress, ROOT, round, writeResult } from './lib/common.mjs';

const NAME = 'startup-cost';
const args = cli(NAME, { runs: { type: 'string' }, sizes: { type: 'string', default: '10,100,1000' }, 'no-wide': { type: 'boolean', default: false }, keep: { type: 'boolean', default: false } });
const settings = {
  runs: Number(args.runs ?? (args.quick ? 1 : 5)),
  sizes: args.sizes.split(',').map(Number),
  // The extra shape: 1,000 routes in 10 routers (100 routes each).
  wide: !args['no-wide'] ? { routers: 10, routesPerRouter: 100 } : null,
  routersPerComponent: 10,
  telemetry: 'OTEL_SDK_DISABLED=true',
  monitor: 'off',
};
if (settings.sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`bad --sizes ${args.sizes}`);

const shapes = settings.sizes.map((n) => ({ key: `${n}`, label: `${n.toLocaleString('en')} routers`, routers: n, routesPerRouter: 1 }));
if (settings.wide) {
  const { routers, routesPerRouter } = settings.wide;
  shapes.push({ key: `${routers}x${routesPerRouter}`, label: `${(routers * routesPerRouter).toLocaleString('en')} routes in ${routers} routers`, routers, routesPerRouter });
}

const tmp = await mkdtemp(path.join(os.tmpdir(), 'vigil-bench-startup-'));
if (args.keep) progress(`keeping the generated apps in ${tmp}`);
else process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
// The generated modules import express: resolve it from the repository.
symlinkSync(path.join(ROOT, 'node_modules'), path.join(tmp, 'node_modules'), 'dir');

/** Writes routers/r<i>.mjs, plain-app.mjs (for plain) and vigil.yaml (for vigil); returns the directory. */
async function generate(shape) {
  const dir = path.join(tmp, shape.key);
  await mkdir(path.join(dir, 'routers'), { recursive: true });
  const routers = [];
  const yaml = ['service: startup-bench', 'version: 1.0.0', 'components:'];
  for (let i = 0; i < shape.routers; i++) {
    const routes = Array.from({ length: shape.routesPerRouter }, (_, j) => `/r${i * shape.routesPerRouter + j}`);
    const file = `routers/r${i}.mjs`;
    const mount = `/api/m${i}`;
    await writeFile(
      path.join(dir, file),
      [`import { Router } from 'express';`, `const router = Router();`, ...routes.map((r) => `router.get('${r}', (_req, res) => void res.json({ route: '${r}' }));`), `export default router;`, ''].join('\n'),
    );
    routers.push({ file, mount });
    if (i % settings.routersPerComponent === 0) yaml.push(`  c${i / settings.routersPerComponent}:`, '    policy: degrade', '    routers:');
    yaml.push(`      - { module: ./${file}, mount: ${mount} }`);
    const last = i % settings.routersPerComponent === settings.routersPerComponent - 1 || i === shape.routers - 1;
    if (last) {
      yaml.push('    endpoints:');
      const first = i - (i % settings.routersPerComponent);
      for (let k = first; k <= i; k++) {
        for (let j = 0; j < shape.routesPerRouter; j++) yaml.push(`      - GET /api/m${k}/r${k * shape.routesPerRouter + j}`);
      }
    }
  }
  yaml.push('monitor:', '  enabled: false', '');
  await writeFile(path.join(dir, 'vigil.yaml'), yaml.join('\n'));
  // What an app without Vigil has: static imports of its routers, mounted one by one.
  await writeFile(
    path.join(dir, 'plain-app.mjs'),
    [...routers.map((r, i) => `import r${i} from './${r.file}';`), 'export function mount(app) {', ...routers.map((r, i) => `  app.use('${r.mount}', r${i});`), '}', ''].join('\n'),
  );
  return dir;
}

const run = promisify(execFile);
const env = { ...process.env, OTEL_SDK_DISABLED: 'true' };
for (const k of Object.keys(env)) if (k.startsWith('VIGIL_DEMO_') || k === 'NODE_OPTIONS' || k === 'VIGIL_LOG_LEVEL') delete env[k];

async function measure(variant, dir) {
  const { stdout } = await run(process.execPath, ['--expose-gc', path.join(ROOT, `bench/apps/startup-${variant}.mjs`), dir], { cwd: ROOT, env, timeout: 120_000, maxBuffer: 64 * 2 ** 20 });
  const line = stdout.split('\n').find((l) => l.startsWith('{"variant"'));
  if (!line) throw new Error(`${variant} ${dir}: no result line in\n${stdout.slice(-2000)}`);
  return JSON.parse(line);
}

const dirs = {};
for (const shape of shapes) {
  progress(`generating ${shape.label} (${shape.routers * shape.routesPerRouter} routes)`);
  dirs[shape.key] = await generate(shape);
}

const samples = Object.fromEntries(shapes.map((s) => [s.key, { plain: [], vigil: [] }]));
progress(`${NAME}: ${shapes.map((s) => s.label).join(', ')}; ${settings.runs} process(es) per variant and size, alternated`);
for (let r = 0; r < settings.runs; r++) {
  for (const shape of shapes) {
    for (const variant of r % 2 ? ['vigil', 'plain'] : ['plain', 'vigil']) {
      const s = await measure(variant, dirs[shape.key]);
      samples[shape.key][variant].push(s);
      const phases = Object.entries(s.phases).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ');
      progress(`run ${r + 1}/${settings.runs} ${shape.label.padEnd(26)} ${variant.padEnd(5)} ${s.totalMs.toFixed(0).padStart(5)} ms (${phases})  heap ${(s.heapUsed / 2 ** 20).toFixed(1)} MB  rss ${(s.rss / 2 ** 20).toFixed(1)} MB`);
    }
  }
}

const MB = 2 ** 20;
const summary = {};
for (const shape of shapes) {
  const { plain, vigil } = samples[shape.key];
  const med = (xs, f) => median(xs.map(f));
  summary[shape.key] = {
    plainMs: med(plain, (s) => s.totalMs),
    vigilMs: med(vigil, (s) => s.totalMs),
    sdkImportMs: med(vigil, (s) => s.phases.sdkImport),
    validateMs: med(vigil, (s) => s.phases.validate),
    mountRoutersMs: med(vigil, (s) => s.phases.mountRouters),
    vigilCallMs: med(vigil, (s) => s.phases.vigil),
    plainRoutersMs: med(plain, (s) => s.phases.routers),
    // The size-dependent part: vigil() + mountRouters + validate against plain's import + mount.
    scaledMs: med(vigil, (s) => s.phases.vigil + s.phases.mountRouters + s.phases.validate) - med(plain, (s) => s.phases.routers),
    plainHeapMB: med(plain, (s) => s.heapUsed) / MB,
    vigilHeapMB: med(vigil, (s) => s.heapUsed) / MB,
    plainRssMB: med(plain, (s) => s.rss) / MB,
    vigilRssMB: med(vigil, (s) => s.rss) / MB,
  };
}

const rows = [];
for (const shape of shapes) {
  const s = summary[shape.key];
  rows.push({
    metric: `startup overhead, ${shape.label}`,
    value: round(s.vigilMs - s.plainMs, 1),
    unit: 'ms',
    baseline: round(s.plainMs, 1),
    note: `vigil ${s.vigilMs.toFixed(0)} ms vs plain ${s.plainMs.toFixed(0)} ms (median of ${settings.runs}); of which importing @vigil/sdk ${s.sdkImportMs.toFixed(0)} ms, vigil() ${s.vigilCallMs.toFixed(0)} ms, mountRouters ${s.mountRoutersMs.toFixed(0)} ms (plain import + mount ${s.plainRoutersMs.toFixed(0)} ms), validate() ${s.validateMs.toFixed(0)} ms`,
  });
}
for (const shape of shapes) {
  const s = summary[shape.key];
  rows.push({
    metric: `heap overhead, ${shape.label}`,
    value: round(s.vigilHeapMB - s.plainHeapMB, 2),
    unit: 'MB',
    baseline: round(s.plainHeapMB, 2),
    note: `heap used after GC: vigil ${s.vigilHeapMB.toFixed(1)} MB vs plain ${s.plainHeapMB.toFixed(1)} MB; RSS vigil ${s.vigilRssMB.toFixed(1)} MB vs plain ${s.plainRssMB.toFixed(1)} MB (+${(s.vigilRssMB - s.plainRssMB).toFixed(1)} MB)`,
  });
}
const one = shapes.filter((s) => s.routesPerRouter === 1);
for (let i = 1; i < one.length; i++) {
  const [a, b] = [summary[one[i - 1].key], summary[one[i].key]];
  const factor = one[i].routers / one[i - 1].routers;
  rows.push({
    metric: `startup overhead growth, ${one[i - 1].routers.toLocaleString('en')} → ${one[i].routers.toLocaleString('en')} routers`,
    value: round(b.scaledMs / a.scaledMs, 2),
    unit: '×',
    note: `size-dependent part (vigil() + mountRouters + validate() − plain import + mount): ${a.scaledMs.toFixed(1)} ms → ${b.scaledMs.toFixed(1)} ms; linear growth would be ${factor}×`,
  });
}
await writeResult(args.out, { name: NAME, title: 'Startup validation cost by number of routers', settings, rows, summary, samples });
for (const row of rows) progress(`${row.metric}: ${row.value} ${row.unit}${row.note ? ` — ${row.note}` : ''}`);
