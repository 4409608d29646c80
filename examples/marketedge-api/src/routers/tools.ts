import { Router } from 'express';
import { requireAuth } from '../lib/auth.js';
import { importFault, runtimeFaultFor } from '../lib/demo.js';

await importFault('tools');

export const router = Router();
router.use(runtimeFaultFor('tools'));
router.get('/', requireAuth(), (_req, res) => void res.json({ tools: ['pricing', 'competitors'] }));
