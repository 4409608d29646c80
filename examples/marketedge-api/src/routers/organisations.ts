import { Router } from 'express';
import { requireAuth } from '../lib/auth.js';
import { flakyRoute, importFault, runtimeFaultFor } from '../lib/demo.js';

await importFault('organisations');

export const router = Router();
router.use(runtimeFaultFor('organisations'));
const ORGS = [{ id: 1, name: 'MarketEdge' }, { id: 2, name: 'Zebra Associates', sic: '59140' }];
router.get('/', flakyRoute, requireAuth(), (_req, res) => void res.json({ organisations: ORGS }));
router.post('/switch', flakyRoute, requireAuth(), (req, res) => {
  const org = ORGS.find((o) => o.id === Number((req.body as { orgId?: unknown })?.orgId));
  if (!org) return void res.status(404).json({ error: 'no such organisation' });
  res.json({ currentOrganisation: org });
});
