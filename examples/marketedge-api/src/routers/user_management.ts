import { Router } from 'express';
import { requireAuth } from '../lib/auth.js';
import { flakyRoute, importFault, runtimeFaultFor } from '../lib/demo.js';

await importFault('user_management');

export const router = Router();
router.use(runtimeFaultFor('user_management'));
router.get('/', flakyRoute, requireAuth('admin'), (_req, res) => void res.json({ pendingInvites: 0, roles: ['admin', 'user'] }));
router.post('/invite', flakyRoute, requireAuth('admin'), (_req, res) => void res.status(202).json({ invited: true }));
