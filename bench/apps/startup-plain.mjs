#!/usr/bin/env node
/**
 * One measurement of bench/startup-cost.mjs, without Vigil: import express and
 * the generated plain-app.mjs (static imports of every router module), mount
 * each router on an app. Prints one JSON line: phase times (ms, from this
 * script's first line), heap and RSS after a full GC.
 *
 *   node --expose-gc bench/apps/startup-plain.mjs <generated dir>
 */
const t0 = performance.now();
const path = await import('node:path');
const { pathToFileURL } = await import('node:url');
const dir = path.resolve(process.argv[2]);
const { default: express } = await import('express');
const tExpress = performance.now();

const { mount } = await import(pathToFileURL(path.join(dir, 'plain-app.mjs')).href);
const app = express();
mount(app);
const tEnd = performance.now();

globalThis.gc?.();
const mem = process.memoryUsage();
globalThis.keep = app;
process.stdout.write(
  `${JSON.stringify({ variant: 'plain', totalMs: tEnd - t0, sinceProcessStartMs: tEnd, phases: { express: tExpress - t0, routers: tEnd - tExpress }, heapUsed: mem.heapUsed, rss: mem.rss })}\n`,
);
process.exit(0);
