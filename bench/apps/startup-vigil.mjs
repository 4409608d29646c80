#!/usr/bin/env node
/**
 * One measurement of bench/startup-cost.mjs, with Vigil: import express and
 * @vigil/sdk, `vigil({ manifest })`, `guard.mountRouters(app)` (which imports
 * every router module in isolation) and `guard.validate(app)` (route inventory
 * against every declared endpoint). Run with OTEL_SDK_DISABLED=true; the
 * manifest turns the monitor off. Prints one JSON line like startup-plain.mjs
 * (after Vigil's own log lines, which go to stdout as well).
 *
 *   OTEL_SDK_DISABLED=true node --expose-gc bench/apps/startup-vigil.mjs <generated dir>
 */
const t0 = performance.now();
const path = await import('node:path');
const dir = path.resolve(process.argv[2]);
const { default: express } = await import('express');
const tExpress = performance.now();
const { vigil } = await import('@vigil/sdk');
const tSdk = performance.now();

const guard = await vigil({ manifest: path.join(dir, 'vigil.yaml') });
const tVigil = performance.now();
const app = express();
await guard.mountRouters(app);
const tMount = performance.now();
const report = await guard.validate(app);
const tEnd = performance.now();
if (report.status !== 'pass') throw new Error(`validation did not pass: ${JSON.stringify(report).slice(0, 2000)}`);

globalThis.gc?.();
const mem = process.memoryUsage();
globalThis.keep = { app, guard };
process.stdout.write(
  `${JSON.stringify({
    variant: 'vigil',
    totalMs: tEnd - t0,
    sinceProcessStartMs: tEnd,
    phases: { express: tExpress - t0, sdkImport: tSdk - tExpress, vigil: tVigil - tSdk, mountRouters: tMount - tVigil, validate: tEnd - tMount },
    heapUsed: mem.heapUsed,
    rss: mem.rss,
    routeCount: report.routeCount,
    validateDurationMs: report.durationMs,
  })}\n`,
);
process.exit(0);
