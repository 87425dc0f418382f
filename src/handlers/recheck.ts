import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { toRecheckRequest } from '../lib/events.ts';
import { reconcile } from '../lib/reconcile/reconcile.ts';
import { PendingNotRequeuedError } from './summary.ts';
import { logger, metrics, recordReport, runtimeDeps } from './runtime.ts';

const processor = new BatchProcessor(EventType.SQS);

/**
 * Re-run a pending reconcile from the recheck queue. Each message is one request; a message that fails
 * (malformed, or a recheck that could not be queued) is reported as a partial batch failure, so SQS
 * delivers it again and, after the queue's maxReceiveCount, moves it to the dead-letter queue.
 */
async function recheckRecord(record: SQSRecord): Promise<void> {
  const request = toRecheckRequest(record.body);
  logger.info('recheck', { imageBuildVersionArn: request.imageBuildVersionArn, attempt: request.attempt });
  const report = await reconcile(request, runtimeDeps());
  recordReport(report);
  if (!report.next.recheck && report.next.requeueFailed === true) {
    throw new PendingNotRequeuedError(report.next.reason);
  }
}

async function recheck(event: SQSEvent, context: Context) {
  return processPartialResponse(event, recheckRecord, processor, { context });
}

const handler = middy(recheck)
  .use(injectLambdaContext(logger, { clearState: true }))
  .use(logMetrics(metrics));

export { handler };
