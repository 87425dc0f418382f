import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import { InputError } from '../lib/errors.ts';
import { sweep } from '../lib/sweep.ts';
import { logger, metrics, recordReport, rejectInput, runtimeDeps } from './runtime.ts';

/**
 * The scheduled drift sweep (EventBridge schedule `sweepRate`): reconcile the latest AVAILABLE build of every
 * pipeline (or of `RECONCILER_SWEEP_PIPELINES`) in the deployment's sweep mode: `off`, `plan` or `apply`.
 * Each reconcile publishes its report and queues its rechecks like any other. Returns the outcome per pipeline.
 */
async function sweepPipelines(event: unknown) {
  const deps = runtimeDeps();
  if (deps.config.sweepMode === 'off') {
    logger.info('the sweep is off (RECONCILER_SWEEP_MODE=off)');
    return { status: 'off' };
  }
  let report;
  try {
    report = await sweep({ pipelineArns: [...deps.config.sweepPipelines], mode: deps.config.sweepMode, trigger: 'schedule' }, deps);
  } catch (error: unknown) {
    if (error instanceof InputError) return rejectInput(error, event);
    throw error;
  }
  for (const r of report.reports) recordReport(r);
  logger.info('sweep done', { mode: report.mode, counts: report.counts, pipelines: report.pipelines });
  return { status: 'swept', mode: report.mode, counts: report.counts, pipelines: report.pipelines.map((p) => ({ pipeline: p.pipelineArn, build: p.imageBuildVersionArn, outcome: p.outcome, note: p.note })) };
}

const handler = middy(sweepPipelines, { timeoutEarlyInMillis: 10_000 })
  .use(injectLambdaContext(logger, { clearState: true }))
  .use(logMetrics(metrics));

export { handler };
