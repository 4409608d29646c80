import { createHmac, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

/** Demo users; a real API would use its identity provider. */
export const USERS = [
  { id: 1, email: 'admin@marketedge.example', password: 'demo-admin', role: 'admin', orgId: 1 },
  { id: 2, email: 'analyst@zebra.example', password: 'demo-analyst', role: 'user', orgId: 2 },
];

const SECRET = process.env.JWT_SECRET ?? 'marketedge-demo-secret';

export function issueToken(userId: number, kind: 'access' | 'refresh' = 'access'): string {
  const payload = Buffer.from(JSON.stringify({ sub: userId, kind, iat: Date.now() })).toString('base64url');
  const sig = createHmac('sha256', SECRET).update(payload).digest('base64url');
  return `${payload}.${sig}`;
}

export function verifyToken(token: string, kind: 'access' | 'refresh' = 'access'): { sub: number } | undefined {
  const [payload, sig] = token.split('.');
  if (!payload || !sig) return undefined;
  const expected = createHmac('sha256', SECRET).update(payload).digest();
  const given = Buffer.from(sig, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  const data = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sub: number; kind: string };
  return data.kind === kind ? { sub: data.sub } : undefined;
}

/** Requires a valid access token; `role` restricts to that role. */
export function requireAuth(role?: string) {
  return (req: Request, res: Response, next: NextFunction) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const claims = token ? verifyToken(token) : undefined;
    const user = claims && USERS.find((u) => u.id === claims.sub);
    if (!user) return void res.status(401).json({ error: 'authentication required' });
    if (role && user.role !== role) return void res.status(403).json({ error: `role ${role} required` });
    res.locals.user = user;
    next();
  };
}
