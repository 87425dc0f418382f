import { InputError } from '../lib/core/errors.ts';
import { sweep } from '../lib/sweep/sweep.ts';
import { idempotency } from './shared/idempotency.ts';
import { type Invocation, lambdaHandler } from './shared/handler.ts';
import { logger, recordReport, rejectInput, runtimeDeps } from './shared/runtime.ts';

/** One sweep per schedule event: a second delivery of the same tick (same event `id`) does no work. */
const once = idempotency('sweep');

/** The `id` of the EventBridge event that started the sweep, if it is one. */
function eventIdOf(event: unknown): string | undefined {
  const id = typeof event === 'object' && event !== null ? (event as { id?: unknown }).id : undefined;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

/**
 * The scheduled drift sweep (EventBridge schedule `sweepRate`): reconcile the latest AVAILABLE build of every
 * pipeline (or of `RECONCILER_SWEEP_PIPELINES`) in the deployment's sweep mode: `off`, `plan` or `apply`.
 * Each reconcile publishes its report and queues its rechecks like any other. Returns the outcome per pipeline.
 * A schedule event is swept once (idempotency record keyed by its `id`, see ./idempotency.ts).
 */
async function sweepPipelines(eventId: string | undefined, { event, context }: Invocation) {
  const deps = runtimeDeps();
  if (deps.config.sweepMode === 'off') {
    logger.info('the sweep is off (RECONCILER_SWEEP_MODE=off)');
    return { status: 'off' };
  }
  if (eventId === undefined) return sweepOnce(event);
  const outcome = await once.run(deps, { event: eventId }, context, () => sweepOnce(event));
  if (outcome.kind === 'ran') return outcome.result;
  return {
    status: 'duplicate',
    reason:
      outcome.kind === 'in-progress'
        ? `schedule event ${eventId} is being swept by another invocation`
        : `schedule event ${eventId} was already swept`,
  };
}

async function sweepOnce(event: unknown) {
  const deps = runtimeDeps();
  const mode = deps.config.sweepMode;
  if (mode === 'off') return { status: 'off' };
  let report: Awaited<ReturnType<typeof sweep>>;
  try {
    report = await sweep({ pipelineArns: [...deps.config.sweepPipelines], mode, trigger: 'schedule' }, deps);
  } catch (error: unknown) {
    if (error instanceof InputError) return rejectInput(error, event);
    throw error;
  }
  for (const r of report.reports) recordReport(r);
  logger.info('sweep done', { mode: report.mode, counts: report.counts, pipelines: report.pipelines });
  return {
    status: 'swept',
    mode: report.mode,
    counts: report.counts,
    pipelines: report.pipelines.map((p) => ({ pipeline: p.pipelineArn, build: p.imageBuildVersionArn, outcome: p.outcome, note: p.note })),
  };
}

// a schedule event is never rejected: what it carries beyond its id is not read
const handler = lambdaHandler({ parse: eventIdOf, run: sweepPipelines, timeoutEarlyInMillis: 10_000 });

export { handler };
