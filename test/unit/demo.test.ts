/**
 * The README's first command (`npm start`) must keep showing the incident
 * caught and paged. Runs scripts/demo.mjs --once on the built packages.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { REPO_ROOT } from '../helpers/rig.js';

const run = promisify(execFile);
const demo = (...args: string[]) =>
  run(process.execPath, [path.join(REPO_ROOT, 'scripts/demo.mjs'), '--once', ...args], { env: { ...process.env, VIGIL_DEMO_BREAK: '', DATABASE_URL: '', REDIS_URL: '' }, timeout: 60_000 });

describe('npm start (the demo)', function () {
  this.timeout(70_000);

  it('the incident: the broken user_management router, the missing route, /health still green, and the page', async () => {
    const { stdout } = await demo();
    expect(stdout).to.contain('VIGIL_DEMO_BREAK=user_management');
    expect(stdout).to.match(/router user_management: FAILED ERR_MODULE_NOT_FOUND/);
    expect(stdout).to.contain('MISSING GET /api/v1/user-management');
    // No server needed: the built-in database and cache checks say they are skipped, and why.
    expect(stdout).to.contain('skipped postgres postgres → $DATABASE_URL: DATABASE_URL is not set');
    expect(stdout).to.contain('skipped redis redis → $REDIS_URL: REDIS_URL is not set');
    expect(stdout).to.match(/GET\s+\/health\s+→ 200/);
    expect(stdout).to.match(/GET\s+\/api\/v1\/user-management\s+→ 404/);
    expect(stdout).to.match(/■ PAGE \(high, P1\) → channels slack-alerts,email-immediate/);
    expect(stdout).to.contain('revenue at risk: £925,000');
    expect(stdout).to.contain('customers: Account admins — user onboarding for Zebra Associates is blocked');
    expect(stdout).to.match(/status page: http:\/\/127\.0\.0\.1:\d+\//);
  });

  it('--break auth: the API refuses to start, and the critical page still comes', async () => {
    const { stdout } = await demo('--break', 'auth');
    expect(stdout).to.contain('REFUSING TO START');
    expect(stdout).to.contain('the API process exited with code 1');
    expect(stdout).to.match(/■ PAGE \(critical, P0\) → channels pagerduty-critical,slack-emergency/);
    expect(stdout).to.contain('business context CRITICAL_AUTH');
  });

  it('--healthy: everything passes and nothing pages', async () => {
    const { stdout } = await demo('--healthy');
    expect(stdout).to.contain('all components pass');
    expect(stdout).to.contain('no page: every declared router, route and dependency is there.');
    expect(stdout).not.to.contain('■ PAGE');
  });
});
