import { Router } from 'express';
import { requireAuth, USERS } from '../lib/auth.js';
import { flakyRoute, importFault, runtimeFaultFor } from '../lib/demo.js';
import { FLAGS } from './features.js';

await importFault('admin');

export const router = Router();
router.use(runtimeFaultFor('admin'));
router.use(requireAuth('admin'));

router.get('/feature-flags', flakyRoute, (_req, res) => void res.json({ flags: FLAGS }));
router.put('/feature-flags/:key', flakyRoute, (req, res) => {
  const flag = FLAGS.find((f) => f.key === req.params.key);
  if (!flag) return void res.status(404).json({ error: 'no such flag' });
  flag.enabled = Boolean((req.body as { enabled?: unknown })?.enabled);
  res.json(flag);
});

// Nested router: the inventory must follow /api/v1/admin → /dashboard → /stats.
const dashboard = Router();
dashboard.get('/stats', flakyRoute, (_req, res) => void res.json({ users: USERS.length, organisations: 2, activeSessions: 3 }));
router.use('/dashboard', dashboard);
