/** The `status` matrix: a mark for every check a cell has, license configurations and S3 export included. */
import { describe, expect, it } from 'vitest';
import { CHECK_LABELS, colors, renderStatus, visibleWidth } from '../../src/cli/format.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { CHECK_NAMES, type Check } from '../../src/lib/reconcile/types.ts';
import { renderPage } from '../../src/cli/page/html.ts';
import { pageData } from '../../src/cli/page/model.ts';

const IMAGE = 'arn:aws:imagebuilder:us-east-1:111122223333:image/golden/1.0.0/3';

/** A plan-mode report of one cell with these checks. */
function report(checks: Check[], status: ReconcileReport['cells'][number]['status'] = 'ok'): ReconcileReport {
  const cells = { ok: 0, repaired: 0, drift: 0, pending: 0, failed: 0, skipped: 0, total: 1, [status]: 1 };
  return {
    schemaVersion: 1,
    kind: 'reconcile',
    runId: 'run',
    trigger: 'cli',
    mode: 'plan',
    image: {
      arn: IMAGE,
      name: 'golden',
      version: '1.0.0',
      buildNumber: 3,
      platform: 'Linux',
      status: 'AVAILABLE',
      stateReason: null,
      ownerAccountId: '111122223333',
      region: 'us-east-1',
      pipelineArn: null,
      distributionConfigurationArn: null,
      supersededBy: null,
    },
    outcome: status === 'ok' ? 'converged' : 'drift',
    attempt: 1,
    firstSeenAt: '2031-06-15T12:00:00.000Z',
    startedAt: '2031-06-15T12:00:00.000Z',
    finishedAt: '2031-06-15T12:00:01.000Z',
    durationMs: 1000,
    awsCalls: 5,
    counts: { cells, actions: { planned: 0, applied: 0, 'already-done': 0, failed: 0, skipped: 0, total: 0 } },
    cells: [
      { region: 'eu-west-1', accountId: '222233334444', origin: 'target', imageId: 'ami-0123456789abcdef0', status, reasons: [], checks },
    ],
    actions: [],
    notes: [],
    next: { recheck: false, reason: 'nothing pending' },
  };
}

describe('status matrix', () => {
  it('marks the license configuration and S3 export checks, each with its label', () => {
    const out = renderStatus(
      report(
        [
          { check: 'ami', subject: 'ami-0123456789abcdef0', result: 'ok', reason: 'available' },
          {
            check: 'license-configuration',
            subject: 'arn:aws:license-manager:eu-west-1:222233334444:license-configuration:lic-1',
            result: 'drift',
            reason: 'not associated',
          },
          { check: 's3-export', subject: 's3://exports/golden', result: 'ok', reason: 'exported' },
        ],
        'drift',
      ),
      colors(false),
    );
    expect(out).toContain('AMI✓ lic≠ S3✓');
  });

  it('marks a failed VM export (S3✗), in the terminal and on the page, with its reason', () => {
    const failed = report(
      [
        { check: 'ami', subject: 'ami-0123456789abcdef0', result: 'ok', reason: 'available' },
        {
          check: 's3-export',
          subject: 's3://exports/golden',
          result: 'failed',
          reason: 'export task export-ami-1 failed: disk format unsupported',
        },
      ],
      'failed',
    );
    failed.cells[0]?.reasons.push('s3-export s3://exports/golden: failed: export task export-ami-1 failed: disk format unsupported');
    const out = renderStatus(failed, colors(false));
    expect(out).toContain('AMI✓ S3✗');
    expect(out).toContain('eu-west-1/222233334444: s3-export s3://exports/golden: failed: export task export-ami-1 failed');
    const page = renderPage(pageData({ current: [failed], source: 'test', now: new Date(0) }));
    expect(page).toContain('<span class="m m-failed" title="s3-export: failed">S3✗</span>');
  });

  it('stays readable with hundreds of accounts: the summary first, one row per account, never an ID split', () => {
    const big = report([{ check: 'ami', subject: 'ami-0123456789abcdef0', result: 'ok', reason: 'available' }]);
    const cells = [];
    for (let a = 0; a < 200; a += 1)
      for (const region of ['us-east-1', 'eu-west-1', 'ap-southeast-2'])
        cells.push({
          region,
          accountId: String(300000000000 + a),
          origin: 'target' as const,
          imageId: `ami-${(a * 3 + region.length).toString(16).padStart(17, '0')}`,
          status: a === 150 ? ('failed' as const) : ('ok' as const),
          reasons: a === 150 ? ['ami: failed: the AMI is failed'] : [],
          checks: [{ check: 'ami' as const, subject: 'x', result: a === 150 ? ('failed' as const) : ('ok' as const), reason: 'r' }],
        });
    big.cells = cells;
    big.counts.cells = { ok: 597, repaired: 0, drift: 0, pending: 0, failed: 3, skipped: 0, total: 600 };
    big.outcome = 'failed';
    for (const width of [Number.POSITIVE_INFINITY, 80]) {
      const out = renderStatus(big, colors(false), width);
      const lines = out.split('\n');
      expect(lines[0]).toMatch(/^FAILED: 600 cells \(597 ok, 3 failed\)/);
      // every AMI whole on a line, and the worst account first
      for (const cell of cells) expect(out).toContain(cell.imageId);
      expect(out.indexOf('300000000150')).toBeLessThan(out.indexOf('300000000000'));
      // as wide as three regions need, whatever the number of accounts
      expect(Math.max(...lines.map(visibleWidth))).toBeLessThanOrEqual(Number.isFinite(width) ? 80 : 110);
    }
  });

  it('every check but access has a label (a cell without access says "no access")', () => {
    expect(Object.keys(CHECK_LABELS).sort()).toStrictEqual(CHECK_NAMES.filter((c) => c !== 'access').sort());
  });

  it('has a label for every check but access (a cell without access says "no access")', () => {
    const names: Check['check'][] = [
      'ami',
      'name',
      'tags',
      'launch-permission',
      'encryption',
      'launch-template',
      'fast-launch',
      'ssm-parameter',
      'license-configuration',
      's3-export',
    ];
    const out = renderStatus(report(names.map((check) => ({ check, subject: 's', result: 'ok', reason: 'r' }))), colors(false));
    expect(out).toContain(
      Object.values(CHECK_LABELS)
        .map((label) => `${label}✓`)
        .join(' '),
    );
    expect(Object.keys(CHECK_LABELS).sort()).toStrictEqual([...names].sort());
  });
});
