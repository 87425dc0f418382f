/**
 * Alerts on change (pure): a build's outcome is announced when it changes, not at every report. A report
 * that ends a run (no recheck queued) settles the build as `failed` or `ok` (converged, repaired, drift);
 * the announcement is made when that differs from the last one recorded for the build (and shard): `failed`
 * the first time a build fails, `recovered` when a failed build comes back ok. A build that is ok from the
 * start, or fails again at the next sweep, announces nothing. The record is kept by src/lib/aws/outcomes.ts.
 */
import { type ReconcileReport, hasPending } from './report.ts';

/** Event detail-type of an announcement. */
const OUTCOME_CHANGE_DETAIL_TYPE = 'Image Builder Build Outcome Changed';

type Settled = 'failed' | 'ok';

/** How the run settles the build, or undefined when it does not (a recheck is queued, or it still waits). */
function settledAs(report: ReconcileReport): Settled | undefined {
  if (report.next.recheck || report.outcome === 'pending') return undefined;
  if (report.outcome === 'failed') return 'failed';
  return hasPending(report) ? undefined : 'ok';
}

/** The change a settled outcome makes to the recorded one: what to announce, if anything. */
function changeOf(previous: Settled | undefined, now: Settled): 'failed' | 'recovered' | undefined {
  if (now === 'failed' && previous !== 'failed') return 'failed';
  if (now === 'ok' && previous === 'failed') return 'recovered';
  return undefined;
}

/** At most this many cells are listed in a digest; the rest are counted. */
const DIGEST_CELLS = 10;

interface OutcomeChange {
  schemaVersion: 1;
  kind: 'outcome-change';
  change: 'failed' | 'recovered';
  previous: Settled | null;
  outcome: ReconcileReport['outcome'];
  image: Pick<ReconcileReport['image'], 'arn' | 'name' | 'version' | 'buildNumber' | 'pipelineArn' | 'ownerAccountId' | 'region'>;
  runId: string;
  trigger: ReconcileReport['trigger'];
  attempt: number;
  at: string;
  shard: { index: number; count: number } | null;
  counts: ReconcileReport['counts']['cells'];
  /** The cells that are not ok (every one of them; the digest lists the first few). */
  notOk: { region: string; accountId: string; status: string; reasons: string[] }[];
  /** One message fit for chat or e-mail: what changed, the cells that are not ok, where the full report is. */
  digest: string;
}

/** The announcement of a change: the event's detail, with its digest. Pure. */
function outcomeChange(report: ReconcileReport, change: 'failed' | 'recovered', previous: Settled | undefined): OutcomeChange {
  const img = report.image;
  const notOk = report.cells
    .filter((c) => c.status !== 'ok' && c.status !== 'repaired')
    .map((c) => ({ region: c.region, accountId: c.accountId, status: c.status, reasons: c.reasons }));
  const title = `${img.name} ${img.version}/${img.buildNumber}${report.shard === undefined ? '' : ` (shard ${report.shard.index}/${report.shard.count})`}`;
  const cells = report.counts.cells;
  const head =
    change === 'failed'
      ? `FAILED: ${title}: ${notOk.length} of ${cells.total} cells not ok${report.next.recheck || report.next.reason === 'nothing pending' ? '' : ` (${report.next.reason})`}`
      : `RECOVERED: ${title}: all ${cells.total} cells ok again`;
  const listed = notOk
    .slice(0, DIGEST_CELLS)
    .map(
      (c) =>
        `- ${c.region}/${c.accountId} ${c.status}: ${c.reasons[0] ?? 'no reason given'}${c.reasons.length > 1 ? ` (+${c.reasons.length - 1} more)` : ''}`,
    );
  if (notOk.length > DIGEST_CELLS) listed.push(`- and ${notOk.length - DIGEST_CELLS} more cells`);
  const failedActions = report.actions.filter((a) => a.outcome === 'failed').length;
  const digest = [
    head,
    ...listed,
    ...(failedActions > 0 ? [`${failedActions} action(s) failed.`] : []),
    ...report.notes.slice(0, 3).map((n) => `note: ${n}`),
    `Full report: imagebuilder-reconciler report ${img.arn} --html report.html (or status ${img.arn})`,
  ].join('\n');
  return {
    schemaVersion: 1,
    kind: 'outcome-change',
    change,
    previous: previous ?? null,
    outcome: report.outcome,
    image: {
      arn: img.arn,
      name: img.name,
      version: img.version,
      buildNumber: img.buildNumber,
      pipelineArn: img.pipelineArn,
      ownerAccountId: img.ownerAccountId,
      region: img.region,
    },
    runId: report.runId,
    trigger: report.trigger,
    attempt: report.attempt,
    at: report.finishedAt,
    shard: report.shard === undefined ? null : { index: report.shard.index, count: report.shard.count },
    counts: cells,
    notOk,
    digest,
  };
}

export { OUTCOME_CHANGE_DETAIL_TYPE, changeOf, outcomeChange, settledAs };
export type { OutcomeChange, Settled };
