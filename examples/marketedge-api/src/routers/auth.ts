import { Router } from 'express';
import { issueToken, USERS, verifyToken } from '../lib/auth.js';
import { flakyRoute, importFault, runtimeFaultFor } from '../lib/demo.js';

await importFault('auth');

export const router = Router();
router.use(runtimeFaultFor('auth'));

router.post('/login', flakyRoute, (req, res) => {
  const { email, password } = (req.body ?? {}) as { email?: string; password?: string };
  if (typeof email !== 'string' || typeof password !== 'string') {
    return void res.status(400).json({ error: 'email and password are required' });
  }
  const user = USERS.find((u) => u.email === email && u.password === password);
  if (!user) return void res.status(401).json({ error: 'invalid credentials' });
  res.json({ accessToken: issueToken(user.id), refreshToken: issueToken(user.id, 'refresh'), tokenType: 'Bearer' });
});

router.post('/refresh', flakyRoute, (req, res) => {
  const { refreshToken } = (req.body ?? {}) as { refreshToken?: string };
  const claims = typeof refreshToken === 'string' ? verifyToken(refreshToken, 'refresh') : undefined;
  if (!claims) return void res.status(401).json({ error: 'a valid refreshToken is required' });
  res.json({ accessToken: issueToken(claims.sub), tokenType: 'Bearer' });
});

router.post('/logout', flakyRoute, (_req, res) => void res.status(204).end());
