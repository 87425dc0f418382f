import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { cleanup } from '../lib/cleanup/cleanup.ts';
import { InputError } from '../lib/core/errors.ts';
import { toConfigChange } from '../lib/cleanup/trigger.ts';
import { failedRun, logger, metrics, recordCleanup, rejectInput, runtimeDeps } from './shared/runtime.ts';

/**
 * Cleanup when a distribution configuration changes (CloudTrail `UpdateDistributionConfiguration`), in the
 * deployment's cleanup mode: `off`, `plan` (the default) or `apply`.
 */
async function cleanupOnChange(event: unknown) {
  let arn: string;
  try {
    arn = toConfigChange(event);
  } catch (error: unknown) {
    if (error instanceof InputError) return rejectInput(error, event);
    throw error;
  }
  const deps = runtimeDeps();
  if (deps.config.cleanupMode === 'off') {
    logger.info('cleanup is off (RECONCILER_CLEANUP_MODE=off)', { distributionConfigurationArn: arn });
    return { status: 'off', distributionConfigurationArn: arn };
  }
  let report;
  try {
    report = await cleanup({ distributionConfigurationArn: arn, mode: deps.config.cleanupMode, trigger: 'eventbridge' }, deps);
  } catch (error: unknown) {
    // a problem in AWS (an unreadable configuration): a failed report, not a throw that retries
    return failedRun('cleanup', error, { distributionConfigurationArn: arn });
  }
  recordCleanup(report);
  return { status: report.mode === 'plan' ? 'planned' : 'applied', distributionConfigurationArn: arn, counts: report.counts, gibFreed: report.gibFreed };
}

const handler = middy(cleanupOnChange).use(injectLambdaContext(logger, { clearState: true })).use(logMetrics(metrics));

export { handler };
