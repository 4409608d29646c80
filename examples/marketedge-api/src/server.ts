/**
 * The MarketEdge API's bootstrap, wired with Vigil. `VIGIL_DEMO_BREAK=<router>`
 * reproduces the incident; `VIGIL_DEMO_BREAK=auth` makes the process refuse to
 * start (authentication is fail-fast) after exporting why. `VIGIL_DEMO_JITTER_MS`
 * and `VIGIL_DEMO_FLAKY` make it a healthy but noisy API (lib/demo.ts).
 */
import { once } from 'node:events';
import { vigil, VigilStartupError } from '@vigil/sdk';
import { createApp } from './app.js';
import { DemoConfigError, noise } from './lib/demo.js';

try {
  noise(); // the demo knobs, checked before anything starts
} catch (err) {
  if (!(err instanceof DemoConfigError)) throw err;
  process.stderr.write(`marketedge-api: ${err.message}\n`);
  process.exit(2);
}

// The demo's own users stand in for a probe account; a real app sets these in its secret store.
process.env.PROBE_ADMIN_EMAIL ??= 'admin@marketedge.example';
process.env.PROBE_ADMIN_PASSWORD ??= 'demo-admin';

const guard = await vigil({ manifest: process.env.VIGIL_MANIFEST ?? new URL('../vigil.yaml', import.meta.url) });
const app = await createApp(guard);
const server = app.listen(Number(process.env.PORT ?? 8000), process.env.HOST ?? '127.0.0.1');
await once(server, 'listening');

try {
  const report = await guard.validate(app, { server });
  const address = server.address();
  const where = typeof address === 'object' && address ? `http://${address.address}:${address.port}` : String(address);
  guard.logger.info({ url: where, status: report.status }, `marketedge-api listening on ${where}`);
} catch (err) {
  if (!(err instanceof VigilStartupError)) throw err;
  guard.logger.fatal({ missingEndpoints: err.report.missingEndpoints }, err.message);
  await guard.shutdown();
  process.exitCode = 1;
}
