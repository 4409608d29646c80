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
