import { Router } from 'express';
import { importFault, runtimeFaultFor } from '../lib/demo.js';

await importFault('features');

export const FLAGS = [
  { key: 'market-edge-v2', enabled: true },
  { key: 'cinema-sic-59140', enabled: true },
];

export const router = Router();
router.use(runtimeFaultFor('features'));
router.get('/', (_req, res) => void res.json({ flags: FLAGS.filter((f) => f.enabled).map((f) => f.key) }));
