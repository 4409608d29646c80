#!/usr/bin/env node
/**
 * The example API's routers on plain Express, without Vigil: the "bare" and
 * (with `--import ./bench/apps/otel-register.mjs`) "otel" variants of
 * bench/host-overhead.mjs. Mounted as examples/marketedge-api/src/app.ts
 * mounts them (JSON body parser, every router of the manifest at its mount
 * path, a 404 and an error handler), minus Vigil's health endpoints.
 *
 *   VIGIL_MANIFEST=<manifest> PORT=<port> node bench/apps/bare.mjs
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import express from 'express';
import { parse } from 'yaml';
import { EXAMPLE } from '../lib/common.mjs';

const manifestPath = path.resolve(process.env.VIGIL_MANIFEST ?? path.join(EXAMPLE, 'vigil.yaml'));
const manifest = parse(await readFile(manifestPath, 'utf8'));

const app = express();
app.disable('x-powered-by');
app.use(express.json({ limit: '100kb' }));
for (const component of Object.values(manifest.components)) {
  for (const r of component.routers ?? []) {
    const mod = await import(new URL(r.module, pathToFileURL(manifestPath)).href);
    app.use(r.mount ?? '/', mod[r.export ?? 'router'] ?? mod.default);
  }
}
app.use((req, res) => void res.status(404).json({ error: `no route ${req.method} ${req.path}` }));
app.use((err, _req, res, _next) => {
  process.stderr.write(`unhandled error: ${err?.stack ?? err}\n`);
  res.status(500).json({ error: 'internal error' });
});
app.listen(Number(process.env.PORT ?? 8000), process.env.HOST ?? '127.0.0.1');
