/**
 * The README's first command (`npm start`) must keep showing the incident caught.
 * Runs scripts/demo.mjs --once on the built example.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { REPO_ROOT } from '../helpers/rig.js';

const run = promisify(execFile);
const demo = (...args: string[]) =>
  run(process.execPath, [path.join(REPO_ROOT, 'scripts/demo.mjs'), '--once', ...args], { env: { ...process.env, VIGIL_DEMO_BREAK: '' }, timeout: 30_000 });

describe('npm start (the demo)', function () {
  this.timeout(40_000);

  it('shows the broken user_management router, the missing route, and /health still green', async () => {
    const { stdout } = await demo();
    expect(stdout).to.contain('VIGIL_DEMO_BREAK=user_management');
    expect(stdout).to.match(/router user_management: FAILED ERR_MODULE_NOT_FOUND/);
    expect(stdout).to.contain('MISSING GET /api/v1/user-management');
    expect(stdout).to.match(/GET\s+\/health\s+→ 200/);
    expect(stdout).to.match(/GET\s+\/api\/v1\/user-management\s+→ 404/);
    expect(stdout).to.contain('/health/detailed: status "warn", affectedEndpoints ["GET /api/v1/user-management"]');
  });

  it('--break auth: the API refuses to start', async () => {
    const { stdout } = await demo('--break', 'auth');
    expect(stdout).to.contain('REFUSING TO START');
    expect(stdout).to.contain('exit code 1');
    expect(stdout).to.contain('the API process exited with code 1');
  });

  it('--healthy: everything passes', async () => {
    const { stdout } = await demo('--healthy');
    expect(stdout).to.contain('all components pass');
    expect(stdout).to.contain('/health/detailed: status "pass"');
  });
});
