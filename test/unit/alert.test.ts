/** Alerts on change (src/lib/reconcile/alert.ts): when a report settles a build, and what changes are announced. */
import { describe, expect, it } from 'vitest';
import { changeOf, settledAs } from '../../src/lib/reconcile/alert.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';

const report = (outcome: ReconcileReport['outcome'], next: ReconcileReport['next'], waiting = false) =>
  ({ outcome, next, counts: { cells: { pending: 0 } }, cells: waiting ? [{ waiting: true }] : [] }) as unknown as ReconcileReport;

describe('alerts on change', () => {
  it('settles a build only with a report that queues no recheck', () => {
    expect(settledAs(report('failed', { recheck: false, reason: 'nothing pending' }))).toBe('failed');
    expect(settledAs(report('failed', { recheck: false, reason: 'still pending after 240 minutes' }))).toBe('failed');
    expect(settledAs(report('converged', { recheck: false, reason: 'nothing pending' }))).toBe('ok');
    expect(settledAs(report('repaired', { recheck: false, reason: 'nothing pending' }))).toBe('ok');
    expect(settledAs(report('drift', { recheck: false, reason: 'plan mode' }))).toBe('ok');
    // still working: nothing to announce yet
    expect(settledAs(report('failed', { recheck: true, attempt: 2, delaySeconds: 300 }))).toBeUndefined();
    expect(settledAs(report('pending', { recheck: false, reason: 'no recheck queue configured' }))).toBeUndefined();
  });

  it('announces failed the first time, recovered once it is ok again, and nothing in between', () => {
    expect(changeOf(undefined, 'failed')).toBe('failed');
    expect(changeOf('ok', 'failed')).toBe('failed');
    expect(changeOf('failed', 'failed')).toBeUndefined();
    expect(changeOf('failed', 'ok')).toBe('recovered');
    expect(changeOf('ok', 'ok')).toBeUndefined();
    // a build that is ok from the start is no news
    expect(changeOf(undefined, 'ok')).toBeUndefined();
  });
});
