/**
 * bench/mttd.mjs must keep running: its --quick version (one run of each scenario, on the real
 * Prometheus, Alertmanager and OpenTelemetry Collector) end to end, and the shape of the JSON it
 * writes. Too slow for the unit tests (about 3 min: the Prometheus paths wait for Alertmanager's
 * committed group_wait, the probe rule for its `for: 1m`). Detection times are not asserted: the
 * benchmark reports them.
 */
import { expect } from 'chai';
import { runQuickBench } from '../helpers/bench.js';

describe('e2e: bench/mttd.mjs --quick', function () {
  this.timeout(480_000);
  it('pages once through each path and writes one result document with a finite time per scenario', async () => {
    const { doc, stderr } = await runQuickBench('mttd', { tmpPrefix: 'vigil-bench-mttd-', timeout: 460_000, maxBuffer: 16 * 1024 * 1024 });
    expect(stderr).to.match(/\[mttd\] round 1\/1 startup-embedded: /);
    expect(stderr).not.to.match(/FAILED/);
    expect(doc.name).to.equal('mttd');
    expect(doc.title).to.be.a('string').and.not.empty;
    expect(doc.settings).to.include({ runs: 1, quick: true });
    expect(doc.environment).to.include.keys('node', 'cpus', 'cpuModel');
    expect(doc.rows).to.be.an('array').with.length(6);
    // the direct path and the one through the Collector → Prometheus → Alertmanager, for both faults
    const labels = doc.rows.map((r: { metric: string }) => r.metric).join('\n');
    expect(labels).to.match(/startup fault, embedded/).and.match(/startup fault, via the Prometheus rules alone \(Collector → Prometheus → Alertmanager/);
    expect(labels).to.match(/runtime fault .*embedded/).and.match(/runtime fault .*via the Prometheus rules alone \(Collector → Prometheus → Alertmanager/);
    for (const row of doc.rows) {
      expect(row.metric, JSON.stringify(row)).to.match(/^MTTD /);
      expect(row.unit).to.equal('s');
      expect(Number.isFinite(row.value) && row.value > 0, JSON.stringify(row)).to.equal(true);
      expect(row.target).to.match(/^≤ \d+ s$/);
      expect(row.met).to.be.a('boolean');
      expect(row.note).to.match(/median of 1/);
    }
  });
});
