/** The report page's model (src/cli/page/model.ts): the timeline of a build from its reports, and the pointers of a pipeline. */
import { describe, expect, it } from 'vitest';
import { esc } from '../../src/cli/page/html.ts';
import { pointersOf, timelineOf } from '../../src/cli/page/model.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';

const ARN = 'arn:aws:imagebuilder:us-east-1:111122223333:image/golden/1.0.0/3';
const OLDER = 'arn:aws:imagebuilder:us-east-1:111122223333:image/golden/1.0.0/2';

function report(arn: string, over: Partial<ReconcileReport>): ReconcileReport {
  return {
    kind: 'reconcile',
    image: { arn },
    trigger: 'eventbridge',
    mode: 'apply',
    attempt: 1,
    outcome: 'pending',
    finishedAt: '2031-01-01T00:00:00.000Z',
    counts: {
      cells: { ok: 0, repaired: 0, drift: 0, pending: 2, failed: 0, skipped: 0, total: 2 },
      actions: { planned: 0, applied: 3, 'already-done': 0, failed: 0, skipped: 0, total: 3 },
    },
    cells: [],
    next: { recheck: true, attempt: 2, delaySeconds: 300 },
    ...over,
  } as ReconcileReport;
}

describe('the report page model', () => {
  it("orders a build's reports into its timeline: first run, rechecks, sweeps, and a revoke as it comes", () => {
    const timeline = timelineOf(ARN, [
      report(ARN, {
        attempt: 2,
        outcome: 'converged',
        finishedAt: '2031-01-01T00:05:00.000Z',
        next: { recheck: false, reason: 'nothing pending' },
      }),
      report(ARN, {}),
      report(OLDER, {}),
      {
        kind: 'revoke',
        image: { arn: ARN },
        mode: 'apply',
        outcome: 'revoked',
        finishedAt: '2031-01-02T00:00:00.000Z',
        summary: '4 launch permissions removed',
      },
      report(ARN, {
        trigger: 'schedule',
        outcome: 'converged',
        finishedAt: '2031-01-01T06:00:00.000Z',
        next: { recheck: false, reason: 'nothing pending' },
      }),
      'not a report',
    ]);
    expect(timeline.map((e) => `${e.label} ${e.outcome}`)).toStrictEqual([
      'first run (build event) pending',
      'recheck 2 converged',
      'sweep converged',
      'revoke (apply) revoked',
    ]);
    expect(timeline[0]?.summary).toBe('2 cells (2 pending); 3 applied, 0 failed; recheck in 300 s');
    expect(timeline[3]?.summary).toBe('4 launch permissions removed');
  });

  it('names, for each launch template and parameter, the newest build whose check of it is ok', () => {
    const cell = (result: 'ok' | 'skipped', subject: string) => ({
      region: 'eu-west-1',
      accountId: '222233334444',
      checks: [{ check: 'launch-template', subject, result, reason: result === 'ok' ? 'default' : 'superseded' }],
    });
    const rows = pointersOf([
      report(ARN, { cells: [cell('skipped', 'lt-1'), cell('skipped', 'lt-2')] as ReconcileReport['cells'] }),
      report(OLDER, { cells: [cell('ok', 'lt-1'), cell('skipped', 'lt-2')] as ReconcileReport['cells'] }),
    ]);
    expect(rows.map((r) => [r.subject, r.namesBuild, r.reason])).toStrictEqual([
      ['lt-1', OLDER, 'skipped: superseded'],
      ['lt-2', null, 'skipped: superseded'],
    ]);
  });

  it('escapes markup and control characters of names read from AWS', () => {
    expect(esc('<img src=x onerror=alert(1)>\x1b[31m')).toBe('&lt;img src=x onerror=alert(1)&gt;\\x1b[31m');
  });
});
