/**
 * Fault injection for the demo and the tests: `VIGIL_DEMO_BREAK=user_management`
 * (comma-separated for several) makes that router fail to import, the way the
 * original incident's router did — an import of a module that is not there.
 * `database` and `cache` break those dependency checks instead.
 */
export function isBroken(name: string): boolean {
  return (process.env.VIGIL_DEMO_BREAK ?? '')
    .split(',')
    .map((s) => s.trim())
    .includes(name);
}

/** Called at the top of each router module: an import error when that router is broken. */
export async function importFault(name: string): Promise<void> {
  if (isBroken(name)) {
    const missing = `../models/${name}_schema.js`; // a module that does not exist, as in the incident
    await import(missing);
  }
}

/**
 * A fault at run time, after a clean start: `kill -USR2 <pid>` toggles it.
 * `VIGIL_DEMO_RUNTIME_FAULT` names the router that then answers 503 (default
 * `auth`), the way a lost database connection would surface.
 */
const runtimeFault = { active: false, router: process.env.VIGIL_DEMO_RUNTIME_FAULT ?? 'auth' };
process.on('SIGUSR2', () => {
  runtimeFault.active = !runtimeFault.active;
  process.stderr.write(`demo: runtime fault on router ${runtimeFault.router} ${runtimeFault.active ? 'ON' : 'OFF'}\n`);
});

/** Middleware for a router: answers 503 while the demo's runtime fault is on for it. */
export function runtimeFaultFor(name: string) {
  return (_req: unknown, res: { status: (n: number) => { json: (b: unknown) => void } }, next: () => void) => {
    if (runtimeFault.active && runtimeFault.router === name) return void res.status(503).json({ error: 'database connection lost (demo fault)' });
    next();
  };
}
