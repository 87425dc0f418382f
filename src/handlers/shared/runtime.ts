import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, Metrics } from '@aws-lambda-powertools/metrics';
import { createClientFactory } from '../../lib/aws/clients.ts';
import { type AmbientCredentials, type Config, lambdaCredentials, loadConfig } from '../../lib/core/config.ts';
import { ConfigError, type Failure, toFailure } from '../../lib/core/errors.ts';
import { clip, describeInput } from '../../lib/core/input.ts';
import type { ReconcileDeps } from '../../lib/reconcile/reconcile.ts';
import type { ReconcileReport } from '../../lib/reconcile/report.ts';
import type { CleanupReport } from '../../lib/cleanup/cleanup.ts';

/**
 * Dependencies shared by the Lambda handlers, built once per container (warm starts reuse clients and
 * cached credentials). A configuration error is kept and raised on each invocation with its message, so
 * the function fails clearly instead of crashing at init.
 */
const logger = new Logger({ serviceName: 'imagebuilder-reconciler' });

let config: Config | undefined;
let configError: ConfigError | undefined;
let credentials: AmbientCredentials | undefined;
try {
  config = loadConfig();
  credentials = lambdaCredentials();
} catch (error: unknown) {
  configError = error instanceof ConfigError ? error : new ConfigError('invalid configuration', { cause: error });
}

/**
 * Powertools Metrics' own messages go through the structured logger. An invocation that records no metric (a
 * duplicate delivery answered from the idempotency record, an event refused) is not a problem: Metrics' warning
 * for it ("No application metrics to publish") is logged at debug, every other warning as a warning.
 */
const metricsLogger = {
  debug: (...args: unknown[]) => logger.debug(String(args[0]), { detail: args.slice(1) }),
  info: (...args: unknown[]) => logger.info(String(args[0]), { detail: args.slice(1) }),
  warn: (...args: unknown[]) =>
    String(args[0]).startsWith('No application metrics to publish')
      ? logger.debug(String(args[0]))
      : logger.warn(String(args[0]), { detail: args.slice(1) }),
  error: (...args: unknown[]) => logger.error(String(args[0]), { detail: args.slice(1) }),
};

const metrics = new Metrics({
  namespace: config?.metricsNamespace ?? 'ImageBuilderReconciler',
  serviceName: 'imagebuilder-reconciler',
  logger: metricsLogger,
});

/**
 * X-Ray tracing of every AWS call, when the deployment's `tracing` param is Active (the function's TracingConfig
 * then makes the segments; the Tracer adds a subsegment per call). Powertools disables it outside Lambda.
 * Powertools Tracer is imported only then: importing it loads aws-xray-sdk-core, whose async hook (its
 * context propagation) makes every promise of the process dearer even with tracing off, so a PassThrough
 * deployment must not load it at all. The bundle keeps the module, evaluated only by this import.
 */
async function loadTracing(): Promise<((client: object) => void) | undefined> {
  if (config?.tracing !== 'Active') return undefined;
  const { Tracer } = await import('@aws-lambda-powertools/tracer');
  const tracer = new Tracer({ serviceName: 'imagebuilder-reconciler', enabled: true });
  return tracer.isTracingEnabled() ? (client) => tracer.captureAWSv3Client(client) : undefined;
}

const captureClient = await loadTracing();

let deps: ReconcileDeps | undefined;

function runtimeDeps(): ReconcileDeps {
  if (configError !== undefined || config === undefined) {
    logger.error('invalid configuration', { error: configError?.message });
    throw configError ?? new ConfigError('configuration not loaded');
  }
  if (deps !== undefined) return deps;
  deps = {
    config,
    clients: createClientFactory({
      ...config,
      ...(credentials === undefined ? {} : { credentials }),
      onClient: captureClient,
    }),
    log: logger,
    now: () => new Date(),
    newRunId: randomUUID,
    // a build past RECONCILER_SHARD_MAX_CELLS is split: each invocation takes at most that many cells
    fanOut: true,
  };
  return deps;
}

/** Log the report as one structured line and count it as metrics. */
function recordReport(report: ReconcileReport): void {
  const { cells, actions } = report.counts;
  logger.info('reconcile report', { report });
  metrics.addMetric('CellsOk', MetricUnit.Count, cells.ok);
  metrics.addMetric('CellsRepaired', MetricUnit.Count, cells.repaired);
  metrics.addMetric('CellsPending', MetricUnit.Count, cells.pending);
  metrics.addMetric('CellsFailed', MetricUnit.Count, cells.failed);
  metrics.addMetric('ActionsApplied', MetricUnit.Count, actions.applied);
  metrics.addMetric('ActionsFailed', MetricUnit.Count, actions.failed);
  metrics.addMetric('AwsCalls', MetricUnit.Count, report.awsCalls);
  metrics.addMetric('ReconcileDuration', MetricUnit.Milliseconds, report.durationMs);
}

/** Log the cleanup report as one structured line and count it as metrics. */
function recordCleanup(report: CleanupReport): void {
  logger.info('cleanup report', { report });
  metrics.addMetric('CleanupCandidates', MetricUnit.Count, report.counts.candidates);
  metrics.addMetric('CleanupDeregistered', MetricUnit.Count, report.counts.deregistered);
  metrics.addMetric('CleanupSkipped', MetricUnit.Count, report.counts.skipped);
  metrics.addMetric('CleanupFailed', MetricUnit.Count, report.counts.failed);
  metrics.addMetric('CleanupGiBFreed', MetricUnit.Count, report.gibFreed);
}

/**
 * Log a rejected input as one bounded line (its shape and an excerpt, never the input whole) and count it;
 * the caller returns without throwing, so nothing retries it.
 */
function rejectInput(error: unknown, event: unknown, extra: Record<string, unknown> = {}): { status: 'rejected'; error: string } {
  const failure = toFailure(error);
  const message = clip(failure.message, 1000);
  logger.error('rejected input', { failure: { ...failure, message }, input: describeInput(event), ...extra });
  metrics.addMetric('RejectedInputs', MetricUnit.Count, 1);
  return { status: 'rejected', error: message };
}

/** Log an input that is well formed but not acted on (an Image State Change to BUILDING, …). */
function ignoreInput(reason: string, extra: Record<string, unknown>): { status: 'ignored'; reason: string } {
  logger.info('ignored input', { reason, ...extra });
  metrics.addMetric('IgnoredInputs', MetricUnit.Count, 1);
  return { status: 'ignored', reason };
}

/**
 * A run that hit a problem in AWS before it could build its report (a cleanup whose configuration cannot
 * be read): logged and answered as a failed report, never thrown, so the trigger does not retry it.
 */
function failedRun(what: string, error: unknown, extra: Record<string, unknown>): { status: 'failed'; error: Failure } {
  const failure = toFailure(error);
  const bounded = { ...failure, message: clip(failure.message, 1000) };
  logger.error(`${what} failed`, { failure: bounded, ...extra });
  metrics.addMetric('FailedRuns', MetricUnit.Count, 1);
  return { status: 'failed', error: bounded, ...extra };
}

export { failedRun, ignoreInput, logger, metrics, recordCleanup, recordReport, rejectInput, runtimeDeps };
