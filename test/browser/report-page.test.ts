/**
 * The report page in a real browser: headless Chromium (Debian's `chromium`, which .ci/run installs) driven by
 * playwright-core. What a user checks: the cells per status, a failed cell's reason after a click, the
 * timeline, a pipeline's builds side by side, and a 500-cell build that renders. Screenshots are kept in
 * artifacts/screenshots/ (gitignored).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { renderPage } from '../../src/cli/page/html.ts';
import { pageData } from '../../src/cli/page/model.ts';
import type { CellReport, ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { buildBundles } from '../helpers/build.ts';
import { cli } from '../helpers/cli.ts';
import { demoScenario, finished, startBuild, useSandbox } from '../helpers/sandbox.ts';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = new URL('../../artifacts/screenshots/', import.meta.url).pathname;
const STATUSES = ['ok', 'repaired', 'drift', 'pending', 'failed', 'skipped'] as const;

/** The cells per status the page shows in the visible build. */
async function cellsPerStatus(page: Page): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const s of STATUSES) {
    const n = await page.locator(`section.build:not([hidden]) td.cell[data-status="${s}"]`).count();
    if (n > 0) counts[s] = n;
  }
  return counts;
}

function nonZero(report: ReconcileReport): Record<string, number> {
  return Object.fromEntries(STATUSES.filter((s) => report.counts.cells[s] > 0).map((s) => [s, report.counts.cells[s]]));
}

describe.skipIf(!existsSync(CHROMIUM))('the report page in Chromium', () => {
  let browser: Browser;
  let box: Sandbox;
  let first = '';
  let second = '';
  const dir = join(tmpdir(), `report-page-${process.pid}`);
  const sandboxes = useSandbox();
  const at = () => ['--endpoint-url', box.url, '--region', 'us-east-1'];

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    mkdirSync(dir, { recursive: true });
    buildBundles();
    browser = await chromium.launch({ executablePath: CHROMIUM });
    box = await sandboxes.start({ scenario: demoScenario(), wire: true, clockSpeed: 3000 });
    first = await startBuild(box, 'page-1');
    await finished(box, first);
    second = await startBuild(box, 'page-2');
    await finished(box, second);
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('report --html draws every cell with its status; a failed cell shows its reason when clicked', async () => {
    // an account whose role is gone: its cells fail, with the reason
    const roles = box.state.rolesOf('333333333333');
    const role = roles.get('ImageBuilderReconcilerTarget');
    roles.delete('ImageBuilderReconcilerTarget');
    const file = join(dir, 'build.html');
    const run = await cli(['report', second, '--html', file, ...at()]);
    const json = await cli(['status', second, '--json', ...at()]);
    if (role !== undefined) roles.set('ImageBuilderReconcilerTarget', role);
    expect(run.err).toMatch(/^wrote .*build\.html \(\d+ KiB\): open it in a browser/);
    expect(run.code).toBe(1);
    const report = JSON.parse(json.out) as ReconcileReport;
    const html = readFileSync(file, 'utf8');
    expect(html).not.toMatch(/<(script|img|iframe)[^>]+src=|<link[^>]+href=|url\(/); // nothing fetched at view time

    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`file://${file}`);
    expect(await cellsPerStatus(page)).toStrictEqual(nonZero(report));
    const failed = report.cells.find((c) => c.status === 'failed') as CellReport;
    await page.locator(`td.cell[data-status="failed"][title^="${failed.region}/${failed.accountId}"]`).click();
    const details = page.locator('aside#details');
    await expect.poll(() => details.isVisible()).toBe(true);
    expect(await details.locator('ul.reasons').textContent()).toContain(failed.reasons[0]);
    expect(await details.locator('h2').textContent()).toContain(`${failed.region} / ${failed.accountId}`);
    await page.screenshot({ path: join(SHOTS, 'build-failed-cell.png'), fullPage: false });

    // filter: only the failed cells stay; the accounts without one are hidden
    for (const s of ['ok', 'repaired', 'drift', 'pending', 'skipped']) await page.locator(`.filters input[data-status="${s}"]`).uncheck();
    expect(await page.locator('tr.acct:not(.hide)').count()).toBe(
      new Set(report.cells.filter((c) => c.status === 'failed').map((c) => c.accountId)).size,
    );
    // the text filter finds an account
    await page.locator(`.filters input[data-status="ok"]`).check();
    await page.locator('#q').fill('111111111111');
    expect(await page.locator('tr.acct:not(.hide) > th').allInnerTexts()).toStrictEqual(['111111111111']);
    await page.close();
  });

  it('the sandbox serves the page live, with each build and its timeline of attempts and rechecks', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`${box.url}/_sandbox/report`);
    expect(await page.locator('.tabs button').count()).toBe(2);
    const timeline = await page.locator('section.build:not([hidden]) ol.timeline li').allInnerTexts();
    expect(timeline[0]).toMatch(/first run \(build event\) pending/);
    expect(timeline.some((line) => /recheck \d+ converged/.test(line))).toBe(true);
    expect(timeline.length).toBe(box.reports(second).length);
    // the other build's tab
    await page.locator('.tabs button').nth(1).click();
    expect(await page.locator('section.build:not([hidden]) h2').textContent()).toMatch(/golden-windows 1\.0\.0\/1/);
    await page.screenshot({ path: join(SHOTS, 'sandbox-live.png'), fullPage: true });
    await page.close();
  });

  it('report --pipeline puts the last builds side by side, and names the build each pointer names now', async () => {
    const file = join(dir, 'pipeline.html');
    const pipeline = box.refs.get('pipeline:golden-windows') ?? '';
    const run = await cli(['report', '--pipeline', pipeline, '--builds', '2', '--html', file, ...at()]);
    expect(run.err).toMatch(/^wrote /);
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(`file://${file}`);
    expect(await page.locator('table.side thead th').allInnerTexts()).toStrictEqual([
      'Account',
      'Region',
      'golden-windows 1.0.0/2',
      'golden-windows 1.0.0/1',
      'Launch templates and parameters name now',
    ]);
    const pointers = await page.locator('table.side .ptr').allInnerTexts();
    expect(pointers.length).toBeGreaterThan(0);
    // every launch template and parameter that a build owns names the newer one
    expect(pointers.filter((p) => !p.includes('none of these')).every((p) => p.endsWith('golden-windows 1.0.0/2'))).toBe(true);
    await page.locator('table.side').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, 'pipeline-side-by-side.png'), fullPage: true });
    await page.close();
  });

  it('a build of 500 cells renders every cell, grouped, with sticky headers', async () => {
    const regions = ['us-east-1', 'us-west-2', 'eu-west-1', 'eu-central-1', 'ap-southeast-2'];
    const cells: CellReport[] = [];
    for (let a = 0; a < 100; a += 1)
      for (const region of regions) {
        const status = a % 25 === 3 ? 'failed' : a % 10 === 5 ? 'pending' : 'ok';
        cells.push({
          region,
          accountId: String(100000000000 + a),
          origin: 'target',
          imageId: `ami-${(a * 7 + region.length).toString(16).padStart(17, '0')}`,
          status,
          reasons: status === 'failed' ? ['access: failed: AccessDenied: not authorized to perform: sts:AssumeRole'] : [],
          checks: [
            {
              check: 'ami',
              subject: 'ami-x',
              result: status === 'failed' ? 'failed' : status === 'pending' ? 'pending' : 'ok',
              reason: 'r',
            },
          ],
        });
      }
    const count = (s: string) => cells.filter((c) => c.status === s).length;
    const report = {
      schemaVersion: 1,
      kind: 'reconcile',
      runId: 'r',
      trigger: 'cli',
      mode: 'plan',
      image: {
        arn: 'arn:aws:imagebuilder:us-east-1:100000000000:image/big/1.0.0/1',
        name: 'big',
        version: '1.0.0',
        buildNumber: 1,
        platform: 'Linux',
        status: 'AVAILABLE',
        stateReason: null,
        ownerAccountId: '100000000000',
        region: 'us-east-1',
        pipelineArn: null,
        distributionConfigurationArn: null,
        supersededBy: null,
      },
      outcome: 'failed',
      attempt: 1,
      firstSeenAt: '2026-01-01T00:00:00.000Z',
      startedAt: '2026-01-01T00:00:00.000Z',
      finishedAt: '2026-01-01T00:00:01.000Z',
      durationMs: 1000,
      awsCalls: 1,
      counts: {
        cells: { ok: count('ok'), repaired: 0, drift: 0, pending: count('pending'), failed: count('failed'), skipped: 0, total: 500 },
        actions: { planned: 0, applied: 0, 'already-done': 0, failed: 0, skipped: 0, total: 0 },
      },
      cells,
      actions: [],
      notes: [],
      next: { recheck: false, reason: 'plan mode' },
    } satisfies ReconcileReport;
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    await page.setContent(renderPage(pageData({ current: [report], source: 'test', now: new Date(0) })));
    expect(await page.locator('td.cell').count()).toBe(500);
    expect(await cellsPerStatus(page)).toStrictEqual({ ok: count('ok'), pending: count('pending'), failed: count('failed') });
    // the worst group first, then the others
    expect(
      await page
        .locator('tbody.group')
        .evaluateAll((els) => els.map((e) => (e as unknown as { dataset: { group: string } }).dataset.group)),
    ).toStrictEqual(['failed', 'pending', 'ok']);
    // a group folds
    await page.locator('tbody.g-ok button.toggle').click();
    expect(await page.locator('tbody.g-ok tr.acct').first().isVisible()).toBe(false);
    await page.locator('tbody.g-ok button.toggle').click();
    // the header stays in view when the matrix scrolls
    await page.locator('.wrap').evaluate((el) => {
      (el as unknown as { scrollTop: number }).scrollTop = 3000;
    });
    expect(await page.locator('.matrix thead th').first().isVisible()).toBe(true);
    await page.screenshot({ path: join(SHOTS, 'build-500-cells.png') });
    await page.close();
  });
});
