import { Router } from 'express';
import { requireAuth } from '../lib/auth.js';
import { importFault, runtimeFaultFor } from '../lib/demo.js';

await importFault('users');

export const router = Router();
router.use(runtimeFaultFor('users'));
router.get('/', requireAuth(), (_req, res) => void res.json({ users: [{ id: 1 }, { id: 2 }] }));
router.get('/:id', requireAuth(), (req, res) => void res.json({ id: Number(req.params.id) }));
