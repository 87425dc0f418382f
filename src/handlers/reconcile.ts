import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { InputError } from '../lib/errors.ts';
import { eventStatus, toReconcileRequest } from '../lib/events.ts';
import { reconcile } from '../lib/reconcile/reconcile.ts';
import { PendingNotRequeuedError, summarize } from './summary.ts';
import { logger, metrics, recordReport, rejectInput, runtimeDeps } from './runtime.ts';

/**
 * Reconcile an image build. Triggered by `EC2 Image Builder Image State Change` (AVAILABLE or FAILED) or
 * invoked by hand with `{ "imageBuildVersionArn": "…", "mode": "plan" }`. Returns a summary of the report.
 * A malformed event is rejected with a clear error and not retried.
 */
async function reconcileImage(event: unknown, _context: unknown, { signal }: { signal: AbortSignal }) {
  let request;
  try {
    request = toReconcileRequest(event);
  } catch (error: unknown) {
    if (error instanceof InputError) return rejectInput(error, event);
    throw error;
  }
  logger.appendKeys({ imageBuildVersionArn: request.imageBuildVersionArn });
  logger.info('reconcile requested', { trigger: request.trigger, status: eventStatus(event) });
  const report = await reconcile(request, runtimeDeps(), signal);
  recordReport(report);
  if (!report.next.recheck && report.next.requeueFailed === true) {
    // let Lambda's asynchronous retry (then the dead-letter queue) keep the request
    throw new PendingNotRequeuedError(report.next.reason);
  }
  return summarize(report);
}

const handler = middy(reconcileImage, { timeoutEarlyInMillis: 10_000 })
  .use(injectLambdaContext(logger, { clearState: true }))
  .use(logMetrics(metrics));

export { handler };
