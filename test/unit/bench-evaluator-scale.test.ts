/**
 * bench/evaluator-scale.mjs must keep running: its --quick version (a tiny store, 1 s of ingest)
 * end to end on the built packages, and the shape of the JSON it writes. Speed is not asserted.
 */
import { expect } from 'chai';
import { runQuickBench } from '../helpers/bench.js';

describe('bench/evaluator-scale.mjs --quick', function () {
  this.timeout(120_000);
  it('writes one result document: ingest, evaluation time, heap per series and the growth ratios, all finite', async () => {
    const { doc, stderr } = await runQuickBench('evaluator-scale', { tmpPrefix: 'vigil-bench-scale-', timeout: 110_000 });
    expect(stderr).to.match(/\[evaluator-scale\] ingest: /);
    expect(stderr).to.match(/pass 1\/1, 100 × 50: /);
    expect(doc.name).to.equal('evaluator-scale');
    expect(doc.title).to.be.a('string').and.not.empty;
    expect(doc.settings).to.include({ quick: true });
    expect(doc.environment).to.have.keys('node', 'cpus', 'cpuModel', 'loadavg');
    expect(doc.rows).to.be.an('array').with.length(7);
    for (const row of doc.rows) {
      expect(row.metric, JSON.stringify(row)).to.be.a('string').and.not.empty;
      expect(Number.isFinite(row.value), JSON.stringify(row)).to.equal(true);
      expect(row.value, JSON.stringify(row)).to.be.greaterThan(0);
      expect(row.unit).to.be.a('string').and.not.empty;
      if ('ratio' in row) expect(Number.isFinite(row.ratio) && Number.isFinite(row.baseline), JSON.stringify(row)).to.equal(true);
      if ('met' in row) {
        expect(row.met).to.be.a('boolean');
        expect(row.target).to.be.a('string');
      }
    }
    const units = doc.rows.map((r: { unit: string }) => r.unit);
    expect(units).to.include.members(['data points/s', 'ms', 'bytes', '×']);
  });
});
