import { partitionOfRegion as partitionOf } from '../lib/core/regions.ts';
import { type GateInput, runGate, toGateInput } from '../lib/gate/gate.ts';
import { idempotency } from './shared/idempotency.ts';
import { PendingNotRequeuedError, summarize } from './shared/responses.ts';
import { type Invocation, lambdaHandler } from './shared/handler.ts';
import { ignoreInput, logger, recordReport, rejectInput, runtimeDeps } from './shared/runtime.ts';
import { InputError } from '../lib/core/errors.ts';

/** One judgement per EventBridge event: a second delivery of the same event (same `id`) does no work. */
const once = idempotency('gate');

/**
 * The distribution gate (docs/gate.md): `EC2 Image Builder Workflow Step Waiting` for one of the gate's
 * WaitForAction steps (ReconcilerGate<n>) → reconcile the copies made so far → RESUME when every cell
 * converged, STOP with the failed cells' reasons (now, or from the recheck that settles pending cells). A
 * malformed event is rejected with a clear error and not retried; a step of another workflow is ignored.
 */
async function gate(input: GateInput, { context }: Invocation) {
  const deps = runtimeDeps();
  if (input.kind === 'ignored') return ignoreInput(input.reason, {});
  logger.appendKeys({ imageBuildVersionArn: input.imageBuildVersionArn, stepExecutionId: input.stepExecutionId });
  logger.info('gate step waiting', { step: input.stepName, workflowExecutionId: input.workflowExecutionId, eventId: input.eventId });
  let summary: ReturnType<typeof summarize> | undefined;
  let refused: ReturnType<typeof rejectInput> | undefined;
  const outcome = await once.run(deps, { event: input.eventId }, context, async () => {
    let report: Awaited<ReturnType<typeof runGate>>;
    try {
      report = await runGate(input, deps);
    } catch (error: unknown) {
      // a step that cannot be judged (not in its execution, an unknown execution): refused, not retried
      if (!(error instanceof InputError)) throw error;
      refused = rejectInput(error, input);
      return refused;
    }
    recordReport(report);
    if (!report.next.recheck && report.next.requeueFailed === true) throw new PendingNotRequeuedError(report.next.reason);
    summary = { ...summarize(report), ...(report.gate === undefined ? {} : { gate: report.gate }) };
    return { status: summary.status, image: summary.image, counts: summary.counts, next: summary.next, gate: report.gate };
  });
  if (outcome.kind === 'ran') return refused ?? summary ?? outcome.result;
  if (outcome.kind === 'in-progress')
    return { status: 'duplicate', reason: `event ${input.eventId} is being judged by another invocation` };
  return { status: 'duplicate', reason: `event ${input.eventId} was already judged`, result: outcome.result };
}

const handler = lambdaHandler({
  parse: (event) => toGateInput(event, { partition: partitionOf(runtimeDeps().config.region) }),
  run: gate,
  timeoutEarlyInMillis: 10_000,
});

export { handler };
