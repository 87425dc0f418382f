/**
 * One reconciler run in its own process, as the CLI or a Lambda invocation runs it: the bench starts it
 * with the sandbox's endpoint and the run to do, and reads one JSON line from its stdout.
 * Usage: node dist/bench/runner.mjs '{"kind":"reconcile","arn":"…","endpoint":"http://…","mode":"apply"}'
 */
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { createClientFactory } from '../src/lib/aws/clients.ts';
import { applyEnvironment, loadConfig, quietSdkNotices } from '../src/lib/core/config.ts';
import { cleanup } from '../src/lib/cleanup/cleanup.ts';
import { reconcile } from '../src/lib/reconcile/reconcile.ts';

interface RunnerInput {
  /** `bundle`: the reconcile function's deployed bundle (dist/lambda/reconcile), imported and invoked by hand. */
  kind: 'reconcile' | 'cleanup' | 'bundle';
  /** The bundle to import (kind `bundle`). */
  bundle?: string;
  arn: string;
  endpoint: string;
  mode: 'apply' | 'plan';
  /** The reconciler's own account: the sandbox acts as the account a 12-digit access key names. */
  account: string;
  /** The reconciler's settings (the variables of the README's Configuration section). */
  environment: Record<string, string>;
}

interface RunnerOutput {
  wallMs: number;
  awsCalls: number;
  outcome: string;
  cells: number;
  /** Cells that failed with a throttling error in their reasons. */
  cellsFailedByThrottling: number;
  candidates: number;
  /** Resident set size when the run started, and the process's peak (bytes). */
  rssBefore: number;
  peakRss: number;
  /** Heap in use when the run started, and the most seen while it ran (sampled, bytes). */
  heapBefore: number;
  peakHeap: number;
  /**
   * Heap in use after a full garbage collection once the run is over, with its report still held: what the
   * run keeps (the report and every cell's state), without the garbage the collector had not yet returned
   * (bytes; equal to heapBefore's basis, also taken after a collection).
   */
  retainedHeap: number;
  /** CPU time the run took in this process (user + system, ms). */
  cpuMs: number;
}

const THROTTLED = /RequestLimitExceeded|Throttling|Rate exceeded|throttled/i;

/** Whole-run figures of the process, measured around `work`. */
async function measured(
  work: () => Promise<
    Omit<RunnerOutput, 'wallMs' | 'rssBefore' | 'peakRss' | 'heapBefore' | 'peakHeap' | 'retainedHeap' | 'cpuMs'> & { held: unknown }
  >,
): Promise<RunnerOutput> {
  const collect = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
  collect();
  const heapBefore = process.memoryUsage().heapUsed;
  const rssBefore = process.memoryUsage.rss();
  let peakHeap = heapBefore;
  const sampler = setInterval(() => {
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  }, 5);
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const { held, ...output } = await work();
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  clearInterval(sampler);
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  collect();
  const retainedHeap = process.memoryUsage().heapUsed;
  if (held === undefined) throw new Error('the run returned no report');
  return {
    ...output,
    wallMs,
    rssBefore,
    peakRss: process.resourceUsage().maxRSS * 1024,
    heapBefore,
    peakHeap,
    retainedHeap,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

/**
 * The reconcile function as deployed: its bundle imported with the function's environment (everything it
 * loads at import included: Powertools, the SDK, the X-Ray SDK when tracing is on), then invoked by hand
 * with `{ imageBuildVersionArn, mode }`, as `serverless invoke` does; only the invocation is measured.
 */
async function runBundle(input: RunnerInput): Promise<void> {
  applyEnvironment({
    ...input.environment,
    RECONCILER_ACCOUNT_ID: input.account,
    AWS_ENDPOINT_URL: input.endpoint,
    AWS_ACCESS_KEY_ID: input.account,
    AWS_SECRET_ACCESS_KEY: 'sandbox',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
    AWS_LAMBDA_FUNCTION_NAME: 'imagebuilder-reconciler-bench-reconcile',
  });
  const module = (await import(pathToFileURL(input.bundle ?? '').href)) as {
    handler: (event: unknown, context: unknown) => Promise<{ status?: string; counts?: { cells?: { total?: number; failed?: number } } }>;
  };
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'imagebuilder-reconciler-bench-reconcile',
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:${input.account}:function:imagebuilder-reconciler-bench-reconcile`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/imagebuilder-reconciler-bench-reconcile',
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => 900_000,
  };
  const result = await measured(async () => {
    const summary = await module.handler({ imageBuildVersionArn: input.arn, mode: input.mode }, context);
    return {
      held: summary,
      awsCalls: 0,
      outcome: summary.status ?? 'unknown',
      cells: summary.counts?.cells?.total ?? 0,
      cellsFailedByThrottling: 0,
      candidates: 0,
    };
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

async function main(): Promise<void> {
  quietSdkNotices();
  const input = JSON.parse(process.argv[2] ?? '{}') as RunnerInput;
  if (input.kind === 'bundle') {
    await runBundle(input);
    return;
  }
  const loaded = loadConfig({ ...input.environment, RECONCILER_ACCOUNT_ID: input.account });
  // cleanup assumes the cleanup role in target accounts, as the deployed cleanup functions do
  const config = { ...loaded, mode: input.mode, ...(input.kind === 'reconcile' ? {} : { targetRoleName: loaded.cleanupRoleName }) };
  const clients = createClientFactory({
    ...config,
    endpoint: input.endpoint,
    credentials: { accessKeyId: input.account, secretAccessKey: 'sandbox' },
  });
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const deps = { config, clients, log, now: () => new Date(), newRunId: randomUUID, publish: false };

  // the bench starts this process with --expose-gc, so that what the run keeps can be told from garbage
  const collect = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
  collect();
  const heapBefore = process.memoryUsage().heapUsed;
  const rssBefore = process.memoryUsage.rss();
  let peakHeap = heapBefore;
  const sampler = setInterval(() => {
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  }, 5);
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  let output: Omit<RunnerOutput, 'wallMs' | 'rssBefore' | 'peakRss' | 'heapBefore' | 'peakHeap' | 'retainedHeap' | 'cpuMs'>;
  let held: unknown;
  if (input.kind === 'reconcile') {
    const report = await reconcile({ imageBuildVersionArn: input.arn, trigger: 'cli', mode: input.mode }, deps);
    held = report;
    output = {
      awsCalls: report.awsCalls,
      outcome: report.outcome,
      cells: report.cells.length,
      cellsFailedByThrottling: report.cells.filter((c) => c.status === 'failed' && c.reasons.some((r) => THROTTLED.test(r))).length,
      candidates: 0,
    };
  } else {
    const report = await cleanup({ distributionConfigurationArn: input.arn, mode: input.mode, trigger: 'cli' }, deps);
    held = report;
    const outside = new Set(report.configuration.currentCells);
    output = {
      awsCalls: report.awsCalls,
      outcome: report.problems.length === 0 ? 'ok' : `${report.problems.length} problem(s): ${report.problems[0] ?? ''}`,
      cells: new Set(report.candidates.map((c) => `${c.region}/${c.accountId}`)).size,
      cellsFailedByThrottling: report.problems.filter((p) => THROTTLED.test(p)).length,
      candidates: report.candidates.filter((c) => !outside.has(`${c.region}/${c.accountId}`)).length,
    };
  }
  const wallMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  clearInterval(sampler);
  peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  collect();
  const retainedHeap = process.memoryUsage().heapUsed;
  if (held === undefined) throw new Error('the run returned no report');
  const result: RunnerOutput = {
    ...output,
    wallMs,
    rssBefore,
    peakRss: process.resourceUsage().maxRSS * 1024,
    heapBefore,
    peakHeap,
    retainedHeap,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench runner: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});

export type { RunnerInput, RunnerOutput };
