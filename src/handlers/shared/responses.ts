import { ReconcilerError } from '../../lib/core/errors.ts';
import type { ReconcileReport } from '../../lib/reconcile/report.ts';
import { cellKey } from '../../lib/core/cells.ts';

/** The function's response: the outcome, counts and what went wrong (the full report is on the bus and in the log). */
function summarize(report: ReconcileReport) {
  return {
    status: report.outcome,
    image: report.image.arn,
    mode: report.mode,
    attempt: report.attempt,
    counts: report.counts,
    problems: report.cells
      .filter((cell) => cell.status === 'failed' || cell.status === 'pending')
      .map((cell) => ({
        cell: cellKey(cell.region, cell.accountId),
        status: cell.status,
        reasons: cell.reasons,
      })),
    notes: report.notes,
    // a split build: this summary is of shard 1 only; the others publish their own reports
    ...(report.shard === undefined ? {} : { shard: report.shard }),
    next: report.next,
  };
}

/** A pending reconcile whose recheck could not be queued: thrown so the trigger's own retry keeps it. */
class PendingNotRequeuedError extends ReconcilerError {
  constructor(reason: string) {
    super(`reconcile is pending and ${reason}`, { kind: 'error', code: 'RecheckNotQueued' });
    this.name = 'PendingNotRequeuedError';
  }
}

export { PendingNotRequeuedError, summarize };
