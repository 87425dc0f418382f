/**
 * The gate's judgement of a stage and its answer to the waiting step (docs/gate.md). The decision is pure;
 * the answer is one `SendWorkflowStepAction` in the image's account and region, with a client token made
 * from the step and the action, so a retried answer is the same request.
 */
import { SendWorkflowStepActionCommand } from '@aws-sdk/client-imagebuilder';
import type { ClientFactory } from '../aws/clients.ts';
import { cellKey } from '../core/cells.ts';
import type { DesiredImage, RecordedAmi } from '../core/desired.ts';
import { AwsCallError, type Failure, toFailure } from '../core/errors.ts';
import { type ReconcileReport, hasPending } from '../reconcile/report.ts';
import type { GateSpec } from './stage.ts';

/** What the gate did with a stage, as the report shows it. */
interface GateReport {
  stepExecutionId: string;
  stepName: string;
  workflowExecutionId: string;
  /** The cells judged: every copy made so far, and the shared cells of fully distributed regions. */
  cells: number;
  /** RESUME or STOP sent; null: no answer yet (a recheck is queued) or none in plan mode. */
  answer: 'RESUME' | 'STOP' | null;
  reason: string;
  /** The answer could not be sent (the step then times out and the build fails). */
  error?: Failure;
}

type Decision = { action: 'RESUME' | 'STOP'; reason: string } | { action: 'wait' | 'none'; reason: string };

/** SendWorkflowStepAction's `reason`: 1–1,024 characters (the model's NonEmptyString, the API reference). */
const REASON_MAX = 1024;

/**
 * The answer a report of the stage's cells calls for (`settled`: after the recheck was decided): STOP as soon as a cell failed (with the failed cells'
 * reasons), RESUME when every cell is ok, repaired or skipped, wait while a recheck is queued, and no answer
 * in plan mode (plan changes nothing: the step waits for a person or its timeout).
 */
function decide(report: ReconcileReport, settled: boolean): Decision {
  if (report.mode === 'plan')
    return { action: 'none', reason: 'plan mode does not answer the gate: the step waits for an answer or its timeout' };
  const failed = report.cells.filter((c) => c.status === 'failed');
  if (failed.length > 0) {
    const reasons = failed.map((c) => `${c.accountId}/${c.region}: ${c.reasons.join('; ') || 'failed'}`).join(' | ');
    return { action: 'STOP', reason: clipReason(`${failed.length} of ${report.cells.length} cell(s) failed: ${reasons}`) };
  }
  if (report.cells.length === 0)
    return { action: 'STOP', reason: 'no distributed copy to judge: the stage made no copy the reconciler could find' };
  // before the recheck is decided, pending cells mean wait; after it, a queued recheck does
  if (!settled && hasPending(report)) return { action: 'wait', reason: `${report.counts.cells.pending} cell(s) pending` };
  if (report.next.recheck) return { action: 'wait', reason: `${report.counts.cells.pending} cell(s) pending: rechecking` };
  const unsettled = report.cells.filter((c) => !['ok', 'repaired', 'skipped'].includes(c.status));
  if (unsettled.length > 0) {
    const why = report.next.recheck === false ? report.next.reason : 'not settled';
    return {
      action: 'STOP',
      reason: clipReason(
        `${unsettled.length} cell(s) not converged (${unsettled.map((c) => `${c.accountId}/${c.region} ${c.status}`).join(', ')}): ${why}`,
      ),
    };
  }
  return {
    action: 'RESUME',
    reason: clipReason(
      `all ${report.cells.length} cell(s) converged (${report.counts.cells.ok} ok, ${report.counts.cells.repaired} repaired)`,
    ),
  };
}

function clipReason(reason: string): string {
  return reason.length <= REASON_MAX ? reason : `${reason.slice(0, REASON_MAX - 1)}…`;
}

/**
 * The build as the gate judges it: only the cells of the copies made so far (their recorded AMI taken from the
 * step outputs where Image Builder has not recorded one yet), and the shared cells of the regions whose every
 * copy is made. With no copies (outputs unreadable): the cells Image Builder recorded an AMI for.
 */
function gateScoped(whole: DesiredImage, gate: GateSpec): DesiredImage {
  if (gate.copies.length === 0) {
    return { ...whole, cells: whole.cells.filter((c) => c.recorded !== undefined), unexpectedAmis: [] };
  }
  const copies = new Map(gate.copies.map((c) => [cellKey(c.region, c.accountId), c]));
  const holders = whole.cells.filter((c) => c.origin === 'target' || c.origin === 'owner' || c.origin === 'build');
  const complete = new Set(
    [...new Set(holders.map((c) => c.region))].filter((region) =>
      holders.filter((c) => c.region === region).every((c) => copies.has(c.key)),
    ),
  );
  const recordedOf = (key: string): RecordedAmi | undefined => {
    const copy = copies.get(key);
    if (copy === undefined) return undefined;
    return { region: copy.region, accountId: copy.accountId, imageId: copy.amiId, name: undefined, status: undefined, reason: undefined };
  };
  const cells = whole.cells.flatMap((cell) => {
    if (copies.has(cell.key)) return [{ ...cell, recorded: cell.recorded ?? recordedOf(cell.key) }];
    if (cell.origin !== 'shared' || !complete.has(cell.region)) return [];
    const sharedImages =
      (cell.sharedImages ?? []).length > 0
        ? cell.sharedImages
        : gate.copies.filter((c) => c.region === cell.region).flatMap((c) => recordedOf(cellKey(c.region, c.accountId)) ?? []);
    return [{ ...cell, sharedImages }];
  });
  return { ...whole, cells, unexpectedAmis: [] };
}

/** Send the answer; never throws. A step that no longer waits (answered, timed out) is reported as such. */
async function sendAnswer(
  report: ReconcileReport,
  gate: GateSpec,
  decision: { action: 'RESUME' | 'STOP'; reason: string },
  clients: ClientFactory,
): Promise<GateReport> {
  const base = {
    stepExecutionId: gate.stepExecutionId,
    stepName: gate.stepName,
    workflowExecutionId: gate.workflowExecutionId,
    cells: report.cells.length,
  };
  const account = report.image.ownerAccountId;
  const region = report.image.region;
  try {
    const cell = await clients.forCell(account, region);
    await cell.imagebuilder.send(
      new SendWorkflowStepActionCommand({
        stepExecutionId: gate.stepExecutionId,
        imageBuildVersionArn: report.image.arn,
        action: decision.action,
        reason: decision.reason,
        // one answer per step and action: the step id (41 characters) and the action fit the 64 allowed
        clientToken: `${gate.stepExecutionId}-${decision.action}`,
      }),
    );
    return { ...base, answer: decision.action, reason: decision.reason };
  } catch (error: unknown) {
    const failure = toFailure(new AwsCallError('SendWorkflowStepAction', account, region, error));
    return {
      ...base,
      answer: null,
      reason: `could not answer ${decision.action} (${decision.reason}): ${failure.message}`,
      error: failure,
    };
  }
}

export { decide, gateScoped, sendAnswer };
export type { Decision, GateReport };
