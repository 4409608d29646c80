import { Router } from 'express';
import { requireAuth } from '../lib/auth.js';
import { importFault, runtimeFaultFor } from '../lib/demo.js';

await importFault('market_edge');

export const router = Router();
router.use(runtimeFaultFor('market_edge'));
router.get('/markets', requireAuth(), (_req, res) => void res.json({ markets: [{ sic: '59140', name: 'Cinema' }] }));
