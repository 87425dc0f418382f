import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { cleanup } from '../lib/cleanup/cleanup.ts';
import { ConfigError, InputError } from '../lib/core/errors.ts';
import { parseCleanupRequest } from '../lib/cleanup/request.ts';
import { failedRun, logger, metrics, recordCleanup, rejectInput, runtimeDeps } from './shared/runtime.ts';

/**
 * Manual cleanup: `serverless invoke -f cleanup --data '{"distributionConfigurationArn":"…","mode":"plan"}'`.
 * Plans by default; `"mode": "apply"` acts. Returns the cleanup report. The payload is strict (see
 * `parseCleanupRequest`): an unknown key, a wrong type, or an override that would loosen a deployment guard
 * is rejected, naming the field, before any AWS call.
 */
async function cleanupHandler(event: unknown) {
  let request;
  try {
    request = parseCleanupRequest(event, 'manual');
  } catch (error: unknown) {
    if (error instanceof InputError) return rejectInput(error, event);
    throw error;
  }
  let report;
  try {
    report = await cleanup(request, runtimeDeps());
  } catch (error: unknown) {
    // an override that would loosen a deployment guard: refused before any AWS call
    if (error instanceof InputError) return rejectInput(error, event);
    if (error instanceof ConfigError) throw error;
    // a problem in AWS (an unreadable configuration): a failed report, not a throw that retries
    return failedRun('cleanup', error, { distributionConfigurationArn: request.distributionConfigurationArn });
  }
  recordCleanup(report);
  return report;
}

const handler = middy(cleanupHandler).use(injectLambdaContext(logger, { clearState: true })).use(logMetrics(metrics));

export { handler };
