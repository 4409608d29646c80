/**
 * bench/startup-cost.mjs must keep running end to end: its --quick version
 * (one process per variant and size) writes a result document of the shared
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

describe('bench/startup-cost.mjs --quick', function () {
  this.timeout(180_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bench-startup-cost-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('validates generated apps of 10, 100 and 1,000 routers against plain imports, and writes the rows', async () => {
    const out = path.join(dir, 'startup-cost.json');
    await run(process.execPath, [path.join(REPO_ROOT, 'bench/startup-cost.mjs'), '--quick', '--out', out], { cwd: REPO_ROOT, timeout: 170_000 });
    const doc = JSON.parse(await readFile(out, 'utf8'));
    expect(doc.name).to.equal('startup-cost');
    expect(doc.title).to.be.a('string');
    expect(doc.settings).to.include({ runs: 1 });
    expect(doc.environment.node).to.equal(process.version);
    expect(doc.rows).to.be.an('array').that.is.not.empty;
    for (const row of doc.rows) {
      expect(row.metric, JSON.stringify(row)).to.be.a('string');
      expect(row.unit, row.metric).to.be.a('string');
      expect(Number.isFinite(row.value), row.metric).to.equal(true);
      if ('baseline' in row) expect(Number.isFinite(row.baseline), row.metric).to.equal(true);
    }
    const metrics = doc.rows.map((r: { metric: string }) => r.metric);
    for (const size of ['10 routers', '100 routers', '1,000 routers', '1,000 routes in 10 routers']) {
      expect(metrics).to.include(`startup overhead, ${size}`);
      expect(metrics).to.include(`heap overhead, ${size}`);
    }
    expect(metrics).to.include('startup overhead growth, 100 → 1,000 routers');
    // Vigil validated every generated route; nothing was missing.
    expect(doc.samples['1000'].vigil[0].routeCount).to.equal(1000);
    expect(doc.samples['10x100'].vigil[0].routeCount).to.equal(1000);
  });
});
