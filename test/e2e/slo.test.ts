/**
 * The generated SLO rules in the real Prometheus of the test rig, on days of data.
 *
 * How, and why this way: burn-rate alerts look back up to 3 days, which no test can
 * wait for. So the test writes 3 days and 1 hour of the HTTP server histogram's
 * `_count` series (as the Collector writes them: http_route, http_request_method,
 * http_response_status_code, service_name, deployment_environment_name) ending at
 * the present, for four endpoints of one service, each with an availability SLO of
 * 99.9%, as OpenMetrics; `promtool tsdb create-blocks-from openmetrics` turns it into
 * blocks in a fresh data directory; Prometheus starts on it with the generated rules
 * (evaluation every second) and the test reads its alerts API (/api/v1/alerts):
 *   * fast:       5% errors (50x the budget) for the last 70 minutes → the page fires;
 *   * slow:       0.5% errors (5x) all along → the ticket fires, the page does not;
 *   * healthy:    0.02% errors (0.2x) → nothing;
 *   * recovering: a burst of 100% errors for 90 s that ended 2¾ minutes before the
 *     data's end → the page fires (1h: 2.5% > 14.4 x 0.1%; 5m: 30%), and RESOLVES by
 *     itself once real time has moved the burst out of the 5-minute window, about
 *     2¼ minutes after the data's end; 90 s is under 6x over 6 hours (0.42% < 0.6%),
 *     so the 6h/30m pair does not keep it firing. The rules evaluate on real time
 *     here: nothing is simulated after the backfill.
 * The SLO dashboard (packages/dashboards, built from the same SLO list) is checked on the
 * same Prometheus: every query has data. Only change to the generated rules: the
 * whole-window group evaluates every second instead of every 5 minutes.
 * The test fails, not passes, if the machine is so slow that Prometheus is not
 * evaluating before the burst has left the 5-minute window (it must see the page first).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { parseManifestText } from '../../packages/sdk/src/manifest/load.js';
import { sloList } from '../../packages/sdk/src/slo/model.js';
import { ALERT_PAGE, ALERT_TICKET, BUDGET_INTERVAL, renderPrometheusRules } from '../../packages/sdk/src/slo/prometheus.js';
import { allPanels, sloDashboard } from '../../packages/dashboards/src/index.js';
import type { Dashboard, Panel } from '@grafana/grafana-foundation-sdk/dashboard';
import { makeTempDir, removeTempDir, runTool, startPrometheus, type Prometheus } from '../helpers/rig.js';
import { waitFor } from '../helpers/wait.js';

const SERVICE = 'slo-shop';
const MANIFEST = `
service: ${SERVICE}
components:
  shop:
    policy: degrade
    endpoints:
${['fast', 'slow', 'healthy', 'recovering'].map((n) => `      - { method: GET, route: /${n}, slo: { availability: 99.9% } }`).join('\n')}
`;
const PER_MIN = 600;

/** Error share of each endpoint at `ago` seconds before the data's end. */
const ERRORS: Record<string, (ago: number) => number> = {
  fast: (ago) => (ago <= 70 * 60 ? 0.05 : 0),
  slow: () => 0.005,
  healthy: () => 0.0002,
  recovering: (ago) => (ago <= 255 && ago > 165 ? 1 : 0),
};

function openMetrics(end: number): string {
  const lines = ['# TYPE http_server_request_duration_seconds_count unknown'];
  const start = end - (3 * 24 + 1) * 3600;
  // Every minute for the days, every 15 s in the last two hours (the 5-minute windows need several points).
  const times: number[] = [];
  for (let t = start; t < end - 7200; t += 60) times.push(t);
  for (let t = end - 7200; t <= end; t += 15) times.push(t);
  for (const [route, share] of Object.entries(ERRORS)) {
    let ok = 0;
    let bad = 0;
    const series = (code: number) => `http_server_request_duration_seconds_count{service_name="${SERVICE}",deployment_environment_name="e2e",http_route="/${route}",http_request_method="GET",http_response_status_code="${code}"}`;
    const okLines: string[] = [];
    const badLines: string[] = [];
    let prev = start;
    for (const t of times) {
      const requests = (PER_MIN * (t - prev)) / 60;
      bad += requests * share(end - t);
      ok += requests * (1 - share(end - t));
      prev = t;
      okLines.push(`${series(200)} ${ok.toFixed(3)} ${t}`);
      badLines.push(`${series(500)} ${bad.toFixed(3)} ${t}`);
    }
    lines.push(...okLines, ...badLines);
  }
  lines.push('# EOF');
  return `${lines.join('\n')}\n`;
}

interface Alert {
  labels: Record<string, string>;
  state: string;
}

describe('SLO rules in the real Prometheus, on 3 days of backfilled data', function () {
  this.timeout(300_000);
  let dir: string;
  let prometheus: Prometheus | undefined;
  let dashboard: Dashboard;

  before(async function () {
    dir = await makeTempDir('slo-e2e');
    const slos = sloList(parseManifestText(MANIFEST, 'vigil.yaml'));
    const rules = path.join(dir, 'slo.rules.yml');
    // The whole-window group runs every 5 minutes; here every second, so that the SLO
    // dashboard's budget panels have data before the backfilled 5-minute windows run dry.
    const text = renderPrometheusRules(slos);
    expect(text).to.include(`interval: ${BUDGET_INTERVAL}`);
    await writeFile(rules, text.replace(`interval: ${BUDGET_INTERVAL}`, 'interval: 1s'));
    dashboard = sloDashboard(slos);
    const end = Math.floor(Date.now() / 1000);
    await writeFile(path.join(dir, 'data.om'), openMetrics(end));
    await mkdir(path.join(dir, 'tsdb'));
    const r = await runTool('promtool', ['tsdb', 'create-blocks-from', 'openmetrics', path.join(dir, 'data.om'), path.join(dir, 'tsdb')], { timeoutMs: 120_000 });
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    prometheus = await startPrometheus({ ruleFiles: [rules], dataDir: path.join(dir, 'tsdb') });
  });

  after(async () => {
    await prometheus?.stop();
    await removeTempDir(dir);
  });

  async function alerts(): Promise<Alert[]> {
    const res = await fetch(`${prometheus!.url}/api/v1/alerts`);
    const body = (await res.json()) as { data: { alerts: Alert[] } };
    return body.data.alerts.filter((a) => a.state === 'firing');
  }
  const firing = (list: Alert[], route: string, alertname: string) => list.some((a) => a.labels.route === `/${route}` && a.labels.alertname === alertname);

  it('the backfilled series are there, 3 days deep', async () => {
    const [sample] = await prometheus!.query(`count_over_time(http_server_request_duration_seconds_count{http_route="/slow", http_response_status_code="200"}[3d])`);
    expect(Number(sample!.value[1])).to.be.greaterThan(4000);
  });

  it('fast burn pages, slow burn tickets without paging, the healthy endpoint stays silent, and the burst pages', async () => {
    const list = await waitFor(
      async () => {
        const l = await alerts();
        return firing(l, 'fast', ALERT_PAGE) && firing(l, 'slow', ALERT_TICKET) && firing(l, 'recovering', ALERT_PAGE) && l;
      },
      { what: 'the page of /fast and /recovering and the ticket of /slow', timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(firing(list, 'slow', ALERT_PAGE), 'slow burn must not page').to.equal(false);
    expect(list.filter((a) => a.labels.route === '/healthy'), 'healthy: no alert').to.deep.equal([]);
    const page = list.find((a) => a.labels.route === '/fast' && a.labels.alertname === ALERT_PAGE)!;
    expect(page.labels).to.include({ severity: 'high', source: 'prometheus', service: SERVICE, component: 'shop', slo: 'shop-get-fast-availability', environment: 'e2e', method: 'GET' });
    const ticket = list.find((a) => a.labels.route === '/slow' && a.labels.alertname === ALERT_TICKET)!;
    expect(ticket.labels.severity).to.equal('medium');
  });

  it('every query of the SLO dashboard built from the same SLO list has data', async () => {
    const exprs = allPanels(dashboard).flatMap((p) => ((p as Panel).targets ?? []).map((t) => (t as { expr?: string }).expr)).filter((e): e is string => Boolean(e));
    expect(exprs).to.have.length(4 * (1 + 1 + 7));
    await waitFor(
      async () => {
        for (const e of exprs) if ((await prometheus!.query(e)).length === 0) return false;
        return true;
      },
      { what: 'data for every SLO dashboard query', timeoutMs: 30_000, intervalMs: 1000 },
    );
    const [budgetLeft] = await prometheus!.query(exprs.find((e) => e.includes('window{slo="shop-get-healthy-availability"}'))!);
    expect(Number(budgetLeft!.value[1])).to.be.within(0.7, 0.9); // errors at 0.2x the budget rate: 1 - 0.2 = 80% left
  });

  it('the burst\'s page resolves once the errors have left the 5-minute window; the fast burn keeps paging', async () => {
    await waitFor(async () => !firing(await alerts(), 'recovering', ALERT_PAGE), { what: 'the page of /recovering to resolve', timeoutMs: 240_000, intervalMs: 1000 });
    // Still within 5 minutes of the data's end: /fast's 5-minute window still holds its errors.
    expect(firing(await alerts(), 'fast', ALERT_PAGE)).to.equal(true);
  });
});
