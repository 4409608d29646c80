/**
 * The evaluator's status page in a real (headless) Chromium: the example API
 * with a broken router, then a healthy one, each reporting over OTLP to an
 * in-process evaluator. Asserts by role and text, checks that the page loads
 * nothing from outside 127.0.0.1, and leaves screenshots in `test-results/`.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startExample, type ExampleApp } from '../helpers/example.js';
import { exampleEvaluatorConfig, startEvaluator, type RunningEvaluator } from '../helpers/evaluator.js';
import { REPO_ROOT } from '../helpers/rig.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const RESULTS = path.join(REPO_ROOT, 'test-results');

describe('e2e: the evaluator status page in Chromium', function () {
  this.timeout(120_000);
  let browser: Browser;
  let app: ExampleApp | undefined;
  let ev: RunningEvaluator | undefined;

  before(async () => {
    await mkdir(RESULTS, { recursive: true });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    await app?.stop();
    await ev?.stop();
    app = undefined;
    ev = undefined;
  });

  async function run(env: NodeJS.ProcessEnv): Promise<{ page: Page; requests: string[]; cspErrors: string[] }> {
    ev = await startEvaluator(await exampleEvaluatorConfig({ source: { type: 'otlp' }, notifiers: { console: { type: 'console' } } }));
    app = await startExample({
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: ev.otlpMetricsUrl,
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json',
      OTEL_METRIC_EXPORT_INTERVAL: '1000',
      OTEL_TRACES_EXPORTER: 'none',
      ...env,
    });
    await app.serving();
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    const requests: string[] = [];
    const cspErrors: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
    });
    const res = await page.goto(`${ev.url}/`);
    expect(res?.status()).to.equal(200);
    expect(res?.headers()['content-type']).to.match(/^text\/html/);
    expect(res?.headers()['content-security-policy']).to.match(/default-src 'none'/);
    return { page, requests, cspErrors };
  }

  function onlyLocal(requests: string[]): void {
    expect(requests.length).to.be.greaterThan(1);
    for (const u of requests) expect(new URL(u).hostname, u).to.equal('127.0.0.1');
  }

  it('shows the failing router, the unregistered route and the business impact', async () => {
    const { page, requests, cspErrors } = await run({ VIGIL_DEMO_BREAK: 'user_management' });
    expect(await page.getByRole('heading', { level: 1, name: 'Vigil status' }).count()).to.equal(1);
    const imports = page.getByRole('table', { name: 'Router imports' });
    const failedRow = imports.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'user_management', exact: true }) });
    await failedRow.getByText('FAILED', { exact: true }).waitFor({ timeout: 30_000 });
    expect(await failedRow.innerText()).to.contain('ERR_MODULE_NOT_FOUND');
    // Why, not only that: the import error's first line, in the row's Reason cell.
    const reason = /Cannot find module '[^']*\/models\/user_management_schema\.js' imported from /;
    await failedRow.getByText(reason).waitFor({ timeout: 30_000 });

    const endpoints = page.getByRole('table', { name: 'Endpoint availability' });
    const missing = endpoints.getByRole('row').filter({ has: page.getByRole('rowheader', { name: '/api/v1/user-management', exact: true }) });
    const missingCells = await missing.getByRole('cell').allInnerTexts();
    expect(missingCells.slice(0, 3)).to.deep.equal(['GET', 'user_management', 'NO']);
    // Its probe has not failed three times yet, or has: UNKNOWN or FAIL, never PASS.
    expect(missingCells[3]).to.be.oneOf(['UNKNOWN', 'FAIL']);

    const alerts = page.getByRole('table', { name: 'Active alerts' });
    const alert = alerts.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'user_management', exact: true }) });
    await alert.getByText('FIRING', { exact: true }).waitFor({ timeout: 30_000 });
    const cells = await alert.getByRole('cell').allInnerTexts();
    expect(cells.slice(0, 4)).to.deep.equal(['FIRING', 'high', 'P1', '£925,000']);
    expect(cells.at(-1)).to.match(new RegExp(`^import user_management: ${reason.source}`));
    // The missing route's row says why it is missing.
    expect(await missing.innerText()).to.match(new RegExp(`router failed to import: ${reason.source}`));

    // A reason is untrusted text: markup in one is shown as text, never run or rendered.
    ev!.evaluator.store.ingest(
      [{ kind: 'import', service: 'hostile-api', instance: 'h-1', component: 'payments', subject: 'pay', failing: true, reason: '<img src=x onerror="window.__pwned=1"><b>bold</b>', labels: { 'vigil.router': 'pay' }, observedAt: Date.now() }],
      Date.now(),
    );
    const hostile = page.getByRole('table', { name: 'Router imports' }).getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'pay', exact: true }) });
    await hostile.getByText('<img src=x onerror="window.__pwned=1"><b>bold</b>', { exact: true }).waitFor({ timeout: 15_000 });
    expect(await hostile.locator('img, b').count()).to.equal(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).to.equal(undefined);

    for (const name of ['System status', 'Business impact', 'Technical detail']) expect(await page.getByRole('heading', { level: 2, name }).count()).to.equal(1);
    for (const name of ['Startup validation', 'Runtime checks', 'Dependency health', 'Notifier health']) expect(await page.getByRole('table', { name }).count()).to.be.greaterThan(0);
    const history = page.getByRole('table', { name: /Notification history/ });
    await history.getByText('FIRING', { exact: true }).first().waitFor({ timeout: 15_000 });

    // Probe latencies: the login endpoint's, from the SDK's vigil.probe.duration histogram.
    const login = endpoints.getByRole('row').filter({ has: page.getByRole('rowheader', { name: '/api/v1/auth/login', exact: true }) });
    await login.getByText(/^\d+(\.\d+)? ms$/).waitFor({ timeout: 30_000 });

    await page.screenshot({ path: path.join(RESULTS, 'status-page-broken.png'), fullPage: true });
    onlyLocal(requests);
    expect(requests.filter((u) => u.endsWith('/api/v1/status')).length).to.be.greaterThan(0);
    expect(cspErrors).to.deep.equal([]);
    await page.close();
  });

  it('shows every router OK and no active alert when the API is healthy', async () => {
    const { page, requests, cspErrors } = await run({});
    const imports = page.getByRole('table', { name: 'Router imports' });
    const row = imports.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'user_management', exact: true }) });
    await row.getByText('OK', { exact: true }).waitFor({ timeout: 30_000 });
    expect(await imports.getByText('FAILED', { exact: true }).count()).to.equal(0);
    const endpoints = page.getByRole('table', { name: 'Endpoint availability' });
    expect(await endpoints.getByText('NO', { exact: true }).count()).to.equal(0);
    await page.getByText('No active alert: every business flow is PASS.').waitFor();
    // A refresh later the page still says so (it keeps polling every 2 s).
    const before = requests.filter((u) => u.endsWith('/api/v1/status')).length;
    await page.waitForTimeout(2500);
    expect(requests.filter((u) => u.endsWith('/api/v1/status')).length).to.be.greaterThan(before);
    await page.getByText('No active alert: every business flow is PASS.').waitFor();
    await page.screenshot({ path: path.join(RESULTS, 'status-page-healthy.png'), fullPage: true });
    onlyLocal(requests);
    expect(cspErrors).to.deep.equal([]);
    await page.close();
  });
});
