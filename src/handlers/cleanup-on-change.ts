import { cleanup } from '../lib/cleanup/cleanup.ts';
import { toConfigChange } from '../lib/cleanup/trigger.ts';
import { lambdaHandler } from './shared/handler.ts';
import { failedRun, logger, recordCleanup, runtimeDeps } from './shared/runtime.ts';

/**
 * Cleanup when a distribution configuration changes (CloudTrail `UpdateDistributionConfiguration`), in the
 * deployment's cleanup mode: `off`, `plan` (the default) or `apply`.
 */
async function cleanupOnChange(arn: string) {
  const deps = runtimeDeps();
  if (deps.config.cleanupMode === 'off') {
    logger.info('cleanup is off (RECONCILER_CLEANUP_MODE=off)', { distributionConfigurationArn: arn });
    return { status: 'off', distributionConfigurationArn: arn };
  }
  let report: Awaited<ReturnType<typeof cleanup>>;
  try {
    report = await cleanup({ distributionConfigurationArn: arn, mode: deps.config.cleanupMode, trigger: 'eventbridge' }, deps);
  } catch (error: unknown) {
    // a problem in AWS (an unreadable configuration): a failed report, not a throw that retries
    return failedRun('cleanup', error, { distributionConfigurationArn: arn });
  }
  recordCleanup(report);
  return {
    status: report.mode === 'plan' ? 'planned' : 'applied',
    distributionConfigurationArn: arn,
    counts: report.counts,
    gibFreed: report.gibFreed,
  };
}

const handler = lambdaHandler({ parse: toConfigChange, run: cleanupOnChange });

export { handler };
