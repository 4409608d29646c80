import { Router } from 'express';
import { requireAuth } from '../lib/auth.js';
import { importFault, runtimeFaultFor } from '../lib/demo.js';

await importFault('module_management');

export const router = Router();
router.use(runtimeFaultFor('module_management'));
router.get('/', requireAuth('admin'), (_req, res) => void res.json({ modules: ['market_edge', 'tools'] }));
