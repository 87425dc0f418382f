import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { InputError } from '../lib/errors.ts';
import { partitionOfRegion as partitionOf } from '../lib/arn.ts';
import { type ReconcileInput, toReconcileInput } from '../lib/schemas.ts';
import { reconcile } from '../lib/reconcile/reconcile.ts';
import { PendingNotRequeuedError, summarize } from './summary.ts';
import { ignoreInput, logger, metrics, recordReport, rejectInput, runtimeDeps } from './runtime.ts';

/**
 * Reconcile an image build. Triggered by `EC2 Image Builder Image State Change` (AVAILABLE or FAILED act;
 * other statuses are ignored without an AWS call) or invoked by hand with
 * `{ "imageBuildVersionArn": "…", "mode": "plan" }`. Returns a summary of the report. A malformed event is
 * rejected with a clear error, logged as one bounded line, and not retried (the function returns).
 */
async function reconcileImage(event: unknown, _context: unknown, { signal }: { signal: AbortSignal }) {
  const deps = runtimeDeps();
  let input: ReconcileInput;
  try {
    input = toReconcileInput(event, { partition: partitionOf(deps.config.region) });
  } catch (error: unknown) {
    if (error instanceof InputError) return rejectInput(error, event);
    throw error;
  }
  if (input.kind === 'ignored') return ignoreInput(input.reason, { status: input.status });
  const { request } = input;
  logger.appendKeys({ imageBuildVersionArn: request.imageBuildVersionArn });
  logger.info('reconcile requested', { trigger: request.trigger, status: input.status });
  const report = await reconcile(request, deps, signal);
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
