/**
 * bench/host-overhead.mjs must keep running end to end: its --quick version
 * (one round of one second per variant) writes a result document of the shared
 * bench shape. Speed is not asserted: that is the benchmark's own report.
 */
import { expect } from 'chai';
import { expectBenchDoc, runQuickBench } from '../helpers/bench.js';

describe('bench/host-overhead.mjs --quick', function () {
  this.timeout(180_000);
  it('serves the same route bare, with OpenTelemetry and with Vigil, and writes the rows', async () => {
    const { doc, stderr } = await runQuickBench('host-overhead', {
      tmpPrefix: 'bench-host-overhead-',
      timeout: 170_000,
      // Spans leave every 100 ms whatever the load, so the one-second run always exports some.
      env: { ...process.env, OTEL_BSP_SCHEDULE_DELAY: '100' },
    });
    expect(stderr).to.match(/round 1\/1 bare/);
    expect(stderr).to.match(/round 1\/1 vigil /);
    expectBenchDoc(doc, 'host-overhead');
    expect(doc.settings).to.include({ rounds: 1, seconds: 1 });
    expect(doc.environment.cpus).to.be.a('number');
    for (const row of doc.rows) {
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
