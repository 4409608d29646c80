import { Router } from 'express';
import { requireAuth } from '../lib/auth.js';
import { flakyRoute, importFault, runtimeFaultFor } from '../lib/demo.js';

await importFault('users');

export const router = Router();
router.use(runtimeFaultFor('users'));
router.get('/', flakyRoute, requireAuth(), (_req, res) => void res.json({ users: [{ id: 1 }, { id: 2 }] }));
router.get('/:id', flakyRoute, requireAuth(), (req, res) => void res.json({ id: Number(req.params.id) }));
