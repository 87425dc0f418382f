import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { InputError, ReconcilerError, toFailure } from '../lib/core/errors.ts';
import { partitionOfRegion as partitionOf } from '../lib/core/regions.ts';
import { clip } from '../lib/core/input.ts';
import { sendToDeadLetter } from '../lib/aws/outbox.ts';
import { reconcile, type ReconcileDeps, type ReconcileRequest } from '../lib/reconcile/reconcile.ts';
import { toRecheckRequest } from '../lib/reconcile/input.ts';
import { DuplicateInProgressError, idempotency } from './shared/idempotency.ts';
import { PendingNotRequeuedError } from './shared/responses.ts';
import { type Invocation, lambdaHandler } from './shared/handler.ts';
import { logger, metrics, recordReport, rejectInput, runtimeDeps } from './shared/runtime.ts';

/**
 * One run per recheck: the image build, the chain's first-seen time and the attempt name a recheck (two
 * chains of one build differ in their first-seen time), so a second copy of the message does no work.
 */
const once = idempotency('recheck');

/** A malformed recheck message that could not be moved to the dead-letter queue: SQS keeps it (redrive). */
class DeadLetterError extends ReconcilerError {
  constructor(message: string, cause?: unknown) {
    super(message, { kind: 'error', code: 'DeadLetterFailed', cause });
    this.name = 'DeadLetterError';
  }
}

/**
 * A malformed message is never redelivered: it is logged (bounded) and counted, sent to the dead-letter
 * queue with the reason, and acknowledged. Only when that send fails is it reported as a batch failure,
 * so that SQS keeps it and its redrive policy moves it to the same queue after maxReceiveCount.
 */
async function deadLetter(record: SQSRecord, error: InputError, deps: ReconcileDeps): Promise<void> {
  const where = { messageId: record.messageId, receiveCount: record.attributes.ApproximateReceiveCount };
  rejectInput(error, record.body, where);
  const queueUrl = deps.config.recheckDeadLetterQueueUrl;
  if (queueUrl === '')
    throw new DeadLetterError('malformed recheck message kept for the queue redrive: RECONCILER_RECHECK_DLQ_URL is not set', error);
  try {
    await sendToDeadLetter(deps.clients.home(), queueUrl, record.body, {
      reason: clip(error.message, 1000),
      sourceMessageId: record.messageId,
      sourceQueueArn: record.eventSourceARN,
    });
  } catch (sendError: unknown) {
    const failure = toFailure(sendError);
    logger.error('could not move the malformed recheck message to the dead-letter queue', { failure, ...where });
    throw new DeadLetterError(`could not move the malformed message to the dead-letter queue: ${failure.message}`, sendError);
  }
  metrics.addMetric('RecheckDeadLettered', MetricUnit.Count, 1);
}

/**
 * Re-run a pending reconcile from the recheck queue, or reconcile one shard of a build split past
 * RECONCILER_SHARD_MAX_CELLS (the same queue and message, with a `shard`). Each message is one request. A malformed message goes
 * to the dead-letter queue at once; a recheck whose next recheck could not be queued is reported as a
 * partial batch failure, so SQS delivers it again. Each record has its own idempotency record: a copy of a
 * recheck already done does nothing; a copy of one running now, or one whose store cannot be used, is a
 * partial batch failure, delivered again later.
 */
async function recheckRecord(record: SQSRecord, context: Context): Promise<void> {
  const deps = runtimeDeps();
  let request: ReconcileRequest;
  try {
    request = toRecheckRequest(record.body, {
      partition: partitionOf(deps.config.region),
      now: deps.now,
      maxAttempts: deps.config.maxAttempts,
    });
  } catch (error: unknown) {
    if (!(error instanceof InputError)) throw error;
    await deadLetter(record, error, deps);
    return;
  }
  logger.info('recheck', {
    imageBuildVersionArn: request.imageBuildVersionArn,
    attempt: request.attempt,
    messageId: record.messageId,
    ...(request.shard === undefined ? {} : { shard: `${request.shard.index}/${request.shard.count}`, runId: request.shard.runId }),
  });
  // the shards of one run share image, firstSeenAt and attempt: each is its own delivery
  const key = {
    image: request.imageBuildVersionArn,
    firstSeenAt: request.firstSeenAt ?? '',
    attempt: request.attempt ?? 1,
    shard: request.shard === undefined ? '' : `${request.shard.runId}/${request.shard.index}`,
    // a gate's chain is its own (a build's stages each have one)
    ...(request.gate === undefined ? {} : { gate: request.gate.stepExecutionId }),
  };
  const outcome = await once.run(deps, key, context, async () => {
    const report = await reconcile(request, deps);
    recordReport(report);
    if (!report.next.recheck && report.next.requeueFailed === true) {
      throw new PendingNotRequeuedError(report.next.reason);
    }
  });
  if (outcome.kind === 'in-progress') {
    // a partial batch failure: SQS delivers this copy again after the visibility timeout, when the run that
    // holds the record has finished (its stored result then answers) or failed (its record is gone: this runs)
    throw new DuplicateInProgressError(
      `recheck attempt ${key.attempt} of ${key.image} is being handled by another invocation; this copy is delivered again later`,
    );
  }
}

async function recheck(event: SQSEvent, { context }: Invocation) {
  // a processor per batch: it keeps the batch's failures, which must not mix with another batch's
  return processPartialResponse(event, (record: SQSRecord) => recheckRecord(record, context), new BatchProcessor(EventType.SQS), {
    context,
  });
}

// the batch is not rejected whole: each record is parsed on its own, and a malformed one goes to the dead-letter queue
const handler = lambdaHandler({ parse: (event) => event as SQSEvent, run: recheck });

export { handler };
