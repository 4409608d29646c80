/**
 * bench/startup-cost.mjs must keep running end to end: its --quick version
 * (one process per variant and size) writes a result document of the shared
 * bench shape. Speed is not asserted: that is the benchmark's own report.
 */
import { expect } from 'chai';
import { expectBenchDoc, runQuickBench } from '../helpers/bench.js';

describe('bench/startup-cost.mjs --quick', function () {
  this.timeout(180_000);
  it('validates generated apps of 10, 100 and 1,000 routers against plain imports, and writes the rows', async () => {
    const { doc } = await runQuickBench('startup-cost', { tmpPrefix: 'bench-startup-cost-', timeout: 170_000 });
    expectBenchDoc(doc, 'startup-cost');
    expect(doc.settings).to.include({ runs: 1 });
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
