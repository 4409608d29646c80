import express, { type NextFunction, type Request, type Response } from 'express';
import type { VigilGuard } from '@vigil/sdk';
import { jitterMiddleware, noise, noiseEnabled, noiseStats } from './lib/demo.js';

/**
 * Builds the API without listening, so `vigil preflight --app` can validate it
 * before a deploy, exactly as the server would start it.
 */
export async function createApp(guard: VigilGuard): Promise<express.Express> {
  const demoNoise = noiseEnabled(noise()); // a bad VIGIL_DEMO_* value throws here, before anything is mounted
  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '100kb' }));
  guard.mountHealth(app);
  if (demoNoise) app.use('/api/v1', jitterMiddleware); // VIGIL_DEMO_JITTER_MS (and the counters of /demo/noise)
  await guard.mountRouters(app); // each router imported in isolation; a broken one is reported, not fatal
  if (demoNoise) app.get('/demo/noise', (_req, res) => void res.json(noiseStats()));

  app.use((req, res) => void res.status(404).json({ error: `no route ${req.method} ${req.path}` }));
  app.use((err: Error & { status?: number; expose?: boolean; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
    // body-parser's errors (bad JSON, too large) are the client's: a 4xx. The JSON parser's own
    // message can quote the body, so it is not echoed.
    if (err.status && err.status >= 400 && err.status < 500 && err.expose) {
      res.status(err.status).json({ error: err.type === 'entity.parse.failed' ? 'the request body is not valid JSON' : err.message });
      return;
    }
    guard.logger.error({ err }, 'unhandled error');
    res.status(500).json({ error: 'internal error' });
  });
  return app;
}
