/**
 * bench/host-overhead.mjs must keep running end to end: its --quick version
 * (one round of one second per variant) writes a result document of the shared
 * bench shape. Speed is not asserted: that is the benchmark's own report.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { REPO_ROOT } from '../helpers/rig.js';

const run = promisify(execFile);

describe('bench/host-overhead.mjs --quick', function () {
  this.timeout(180_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bench-host-overhead-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the same route bare, with OpenTelemetry and with Vigil, and writes the rows', async () => {
    const out = path.join(dir, 'host-overhead.json');
    const { stderr } = await run(process.execPath, [path.join(REPO_ROOT, 'bench/host-overhead.mjs'), '--quick', '--out', out], {
      cwd: REPO_ROOT,
      timeout: 170_000,
      // Spans leave every 100 ms whatever the load, so the one-second run always exports some.
      env: { ...process.env, OTEL_BSP_SCHEDULE_DELAY: '100' },
    });
    expect(stderr).to.match(/round 1\/1 bare/);
    expect(stderr).to.match(/round 1\/1 vigil /);
    const doc = JSON.parse(await readFile(out, 'utf8'));
    expect(doc.name).to.equal('host-overhead');
    expect(doc.title).to.be.a('string');
    expect(doc.settings).to.include({ rounds: 1, seconds: 1 });
    expect(doc.environment.node).to.equal(process.version);
    expect(doc.environment.cpus).to.be.a('number');
    expect(doc.rows).to.be.an('array').that.is.not.empty;
    for (const row of doc.rows) {
      expect(row.metric, JSON.stringify(row)).to.be.a('string');
      expect(row.unit, row.metric).to.be.a('string');
      expect(Number.isFinite(row.value), row.metric).to.equal(true);
      if ('baseline' in row) expect(Number.isFinite(row.baseline), row.metric).to.equal(true);
      if ('ratio' in row) expect(Number.isFinite(row.ratio), row.metric).to.equal(true);
      if ('target' in row) expect(row.met, row.metric).to.be.a('boolean');
    }
    const target = doc.rows.find((r: { target?: string }) => r.target);
    expect(target.metric).to.match(/vs OpenTelemetry alone/);
    expect(target.target).to.equal('≥ 0.97');
    // Every variant answered the load; otel and Vigil exported spans to the sink.
    for (const v of ['bare', 'otel', 'vigil', 'vigil-quiet']) expect(doc.samples[v][0].rps, v).to.be.greaterThan(0);
    for (const v of ['otel', 'vigil']) expect(doc.samples[v][0].sink['/v1/traces']?.bytes ?? 0, v).to.be.greaterThan(0);
  });
});
