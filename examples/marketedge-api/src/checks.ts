/**
 * Dependency checks named in vigil.yaml. The demo has no real database or
 * cache: these stand in for a pool ping, and fail when the demo breaks them.
 */
import { isBroken } from './lib/demo.js';

export async function database(): Promise<void> {
  if (isBroken('database')) throw new Error('connection to postgres refused (demo fault)');
}

export async function cache(): Promise<void> {
  if (isBroken('cache')) throw new Error('redis PING timed out (demo fault)');
}
