import { partitionOfRegion as partitionOf } from '../lib/core/regions.ts';
import { type ReconcileInput, toReconcileInput } from '../lib/reconcile/input.ts';
import { reconcile } from '../lib/reconcile/reconcile.ts';
import { type RevokeRequest, revoke } from '../lib/revoke/revoke.ts';
import { idempotency } from './shared/idempotency.ts';
import { PendingNotRequeuedError, summarize } from './shared/responses.ts';
import { type Invocation, lambdaHandler } from './shared/handler.ts';
import { ignoreInput, logger, recordReport, runtimeDeps } from './shared/runtime.ts';

/** One run per EventBridge event: a second delivery of the same event (same `id`) does no work. */
const once = idempotency('reconcile');

/** What the idempotency record keeps of a run (a duplicate delivery answers with it): small, whatever the report's size. */
function stored(summary: ReturnType<typeof summarize>) {
  return {
    status: summary.status,
    image: summary.image,
    mode: summary.mode,
    attempt: summary.attempt,
    counts: summary.counts,
    next: summary.next,
  };
}

/**
 * Reconcile an image build. Triggered by `EC2 Image Builder Image State Change` (AVAILABLE or FAILED act;
 * other statuses are ignored without an AWS call) or invoked by hand with
 * `{ "imageBuildVersionArn": "…", "mode": "plan" }`. Returns a summary of the report. A malformed event is
 * rejected with a clear error, logged as one bounded line, and not retried (the function returns).
 *
 * An event is reconciled once (idempotency record keyed by the event's `id`, see ./idempotency.ts): a
 * duplicate delivery answers `{ status: "duplicate" }` with what the first one stored, and one that arrives
 * while the first is still running answers the same without waiting for it (the running invocation's own
 * failure, if any, is retried by Lambda). A manual invocation has no event id and always runs: asking again
 * by hand means asking again.
 */
async function reconcileImage(input: ReconcileInput, { context, signal }: Invocation) {
  const deps = runtimeDeps();
  if (input.kind === 'ignored') return ignoreInput(input.reason, { status: input.status });
  if (input.kind === 'revoke') return revokeBuild(input.request);
  const { request } = input;
  logger.appendKeys({ imageBuildVersionArn: request.imageBuildVersionArn });
  logger.info('reconcile requested', { trigger: request.trigger, status: input.status, eventId: input.eventId });
  const run = async () => {
    const report = await reconcile(request, deps, signal);
    recordReport(report);
    if (!report.next.recheck && report.next.requeueFailed === true) {
      // let Lambda's asynchronous retry (then the dead-letter queue) keep the request; the idempotency record
      // is deleted, so the retry runs
      throw new PendingNotRequeuedError(report.next.reason);
    }
    return summarize(report);
  };
  if (input.eventId === undefined) return run();
  const eventId = input.eventId;
  let summary: ReturnType<typeof summarize> | undefined;
  const outcome = await once.run(deps, { event: eventId }, context, async () => {
    summary = await run();
    return stored(summary);
  });
  if (outcome.kind === 'ran') return summary ?? outcome.result;
  if (outcome.kind === 'in-progress') return { status: 'duplicate', reason: `event ${eventId} is being reconciled by another invocation` };
  return { status: 'duplicate', reason: `event ${eventId} was already reconciled`, result: outcome.result };
}

/**
 * A manual revoke or unrevoke (never an event: see toReconcileInput). Always runs (a manual payload has no
 * event id); the report is published like every report, and the answer carries what a user must read.
 */
async function revokeBuild(request: RevokeRequest) {
  const deps = runtimeDeps();
  logger.appendKeys({ imageBuildVersionArn: request.imageBuildVersionArn });
  logger.info(`${request.action} requested`, { mode: request.mode, disable: request.disable === true });
  const report = await revoke(request, deps);
  logger.info(`${request.action} finished`, { outcome: report.outcome, counts: report.counts, mark: report.mark });
  return {
    status: report.outcome,
    kind: report.kind,
    mode: report.mode,
    image: report.image.arn,
    mark: report.mark,
    counts: report.counts,
    notes: report.notes,
    // what did not go as asked, cell by cell (the published report has every pointer's before and after)
    problems: [
      ...(report.error === undefined ? [] : [report.error.message]),
      ...report.cells.flatMap((c) => c.reasons.filter((r) => /: (failed|left): /.test(r)).map((r) => `${c.key}: ${r}`)),
    ],
  };
}

const handler = lambdaHandler({
  // the deployment's partition first: an invalid configuration fails the invocation before the event is read
  parse: (event) => toReconcileInput(event, { partition: partitionOf(runtimeDeps().config.region) }),
  run: reconcileImage,
  timeoutEarlyInMillis: 10_000,
});

export { handler };
