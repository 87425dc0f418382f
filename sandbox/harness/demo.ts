/**
 * The demo (`npm start`) and the explorable sandbox (`npm run sandbox`): the local AWS with the reconciler
 * wired in, narrated with the CLI's own rendering. Bundled apart from the CLI (dist/demo/index.mjs), which
 * loads it only for its `demo` and `sandbox` commands, so that the CLI carries no emulator code.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  GetDistributionConfigurationCommand,
  StartImagePipelineExecutionCommand,
  UpdateDistributionConfigurationCommand,
} from '@aws-sdk/client-imagebuilder';
import { createClientFactory } from '../../src/lib/aws/clients.ts';
import { type Sandbox, projectRoot, startSandbox } from './index.ts';
import { type Scenario, ScenarioError, loadScenario } from './scenario.ts';
import { InputError } from '../../src/lib/core/errors.ts';
import type { PublishedEvent } from '../emulator/state.ts';
import { REPORT_DETAIL_TYPE, type ReconcileReport } from '../../src/lib/reconcile/report.ts';
import type { CleanupReport } from '../../src/lib/cleanup/cleanup.ts';
import type { Invocation } from './wiring/index.ts';
import { type Colors, cleanupSummary, renderCleanup, renderReport, reportSummary, statusColor } from '../../src/cli/format.ts';

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

function defaultScenarioPath(): string {
  return join(projectRoot(), 'sandbox', 'harness', 'scenarios', 'demo.json');
}

/** A scenario that cannot be used, or a port already taken, is bad input of the demo and the sandbox (exit 2). */
async function start(options: Parameters<typeof startSandbox>[0]): Promise<Sandbox> {
  try {
    return await startSandbox(options);
  } catch (error: unknown) {
    if (error instanceof ScenarioError) throw new InputError(error.message, { cause: error });
    if (error instanceof Error && (error as Error & { code?: unknown }).code === 'EADDRINUSE') {
      throw new InputError(`port ${options.port ?? 4566} is in use (is another sandbox running?): stop it, or pass --port <another>`, {
        cause: error,
      });
    }
    throw error;
  }
}

function scenarioFrom(path: string): Scenario {
  try {
    return loadScenario(path);
  } catch (error: unknown) {
    if (error instanceof ScenarioError) throw new InputError(error.message, { cause: error });
    throw error;
  }
}

function requireBundles(): void {
  for (const fn of ['reconcile', 'recheck']) {
    if (!existsSync(join(projectRoot(), 'dist', 'lambda', fn, 'index.mjs'))) {
      throw new Error(`the ${fn} function is not built (dist/lambda/${fn}/index.mjs); run npm run build first`);
    }
  }
}

function isReport(event: PublishedEvent): boolean {
  return event.source === 'imagebuilder-reconciler' && event.detailType === REPORT_DETAIL_TYPE;
}

function elapsed(box: Sandbox, start: number): string {
  const seconds = Math.round((box.clock.now() - start) / 1000);
  return `${String(Math.floor(seconds / 60)).padStart(2, '0')}:${String(seconds % 60).padStart(2, '0')}`;
}

/**
 * The demo: a local AWS with the built-in scenario, the reconciler deployed into it from serverless.yml,
 * two pipeline builds, and the reconciler's work narrated until it converges. Returns the exit code.
 */
async function runDemo(io: Io, c: Colors, options: { scenario?: string; speed?: number; width?: number }): Promise<number> {
  requireBundles();
  const width = options.width ?? Number.POSITIVE_INFINITY;
  const scenario: Scenario = scenarioFrom(options.scenario ?? defaultScenarioPath());
  const box = await start({ port: 0, scenario, ...(options.speed === undefined ? {} : { clockSpeed: options.speed }) });
  const started = Date.now();
  try {
    // the demo acts as the pipeline's owner would, through the project's one client factory
    const factory = createClientFactory({
      accountId: box.home.account,
      region: box.home.region,
      targetRoleName: 'ImageBuilderReconcilerTarget',
      externalId: undefined,
      concurrencyPerCell: 4,
      sdkMaxAttempts: 3,
      endpoint: box.url,
      credentials: { accessKeyId: box.home.account, secretAccessKey: 'sandbox' },
    });
    const ib = (await factory.forCell(box.home.account, box.home.region)).imagebuilder;
    const pipelineArn = box.refs.get(`pipeline:${scenario.imagebuilder?.pipelines?.[0]?.name ?? ''}`);
    const distributionArn = box.refs.get(`distribution:${scenario.imagebuilder?.distributions?.[0]?.name ?? ''}`);
    if (pipelineArn === undefined || distributionArn === undefined) throw new Error(`scenario ${scenario.name} has no pipeline to run`);
    const fns = box.wiring?.deployment.functions.map((f) => f.name).join(', ') ?? 'none';
    io.out(c.bold('imagebuilder-reconciler demo'));
    io.out(
      `Local AWS sandbox at ${box.url}: ${box.state.accounts.size} accounts × ${box.state.regions.length} regions, clock ×${box.clock.speed}.`,
    );
    io.out(`Reconciler deployed in ${box.home.account}/${box.home.region} from serverless.yml (functions: ${fns}).`);
    io.out(`Report page, live while the demo runs: ${box.url}/_sandbox/report`);
    io.out(c.dim(scenario.description ?? ''));

    let watching: string | undefined;
    let buildStart = box.clock.now();
    let firstReportShown = false;
    box.onEvent = (event) => {
      if (event.detailType === 'EC2 Image Builder Image State Change' && event.resources[0] === watching) {
        const detail = event.detail as { state: { status: string; reason?: string } };
        io.out(
          `  [${elapsed(box, buildStart)}] Image Builder: ${detail.state.status}${detail.state.reason === undefined ? '' : ` (${detail.state.reason})`}`,
        );
      }
      if (event.detailType === 'AWS API Call via CloudTrail') {
        const detail = event.detail as { eventName: string };
        io.out(`  [${elapsed(box, buildStart)}] CloudTrail event on the bus: ${detail.eventName}`);
      }
      if (event.detailType === 'Image Builder Cleanup Report') {
        const report = event.detail as CleanupReport;
        io.out(
          `  [${elapsed(box, buildStart)}] ${c.bold('cleanup')} via EventBridge rule (CloudTrail UpdateDistributionConfiguration), ${report.mode} mode:`,
        );
        io.out(
          renderCleanup(report, c, width - 6)
            .split('\n')
            .map((line) => `      ${line}`)
            .join('\n'),
        );
        io.out(c.dim(`      to act: npx imagebuilder-reconciler cleanup ${report.configuration.arn} --apply`));
      }
      if (isReport(event)) {
        const report = event.detail as ReconcileReport;
        if (report.image.arn !== watching) return;
        const trigger =
          report.trigger === 'eventbridge' ? 'EventBridge rule (Image State Change)' : `SQS recheck, attempt ${report.attempt}`;
        io.out(`  [${elapsed(box, buildStart)}] ${c.bold('reconcile')} via ${trigger}: ${report.awsCalls} AWS calls`);
        if (!firstReportShown && report.counts.actions.total > 0) {
          firstReportShown = true;
          io.out(
            renderReport(report, c, width - 6)
              .split('\n')
              .map((line) => `      ${line}`)
              .join('\n'),
          );
        } else {
          io.out(`      ${reportSummary(report, c)}`);
        }
      }
    };

    // 1. an older build, distributed while ap-northeast-1 was still configured
    io.out('');
    io.out(c.bold('1. An earlier build, distributed to every region of the configuration'));
    buildStart = box.clock.now();
    const first = await ib.send(new StartImagePipelineExecutionCommand({ imagePipelineArn: pipelineArn, clientToken: 'demo-build-1' }));
    watching = first.imageBuildVersionArn ?? '';
    io.out(`  started ${watching}`);
    firstReportShown = true; // keep step 1 short
    const firstFinal = await box.finalReport(watching, 60_000);
    if (firstFinal === undefined) throw new Error('the first build did not finish in time');

    // 2. a region removed from the configuration
    io.out('');
    const removed = scenario.regions.at(-1) ?? '';
    io.out(c.bold(`2. ${removed} is removed from the distribution configuration`));
    const config = await ib.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: distributionArn }));
    const distributions = (config.distributionConfiguration?.distributions ?? []).filter((d) => d.region !== removed);
    io.out(`  the copy in ${removed} stays: Image Builder never removes what it already distributed`);
    await ib.send(
      new UpdateDistributionConfigurationCommand({
        distributionConfigurationArn: distributionArn,
        distributions,
        clientToken: 'demo-update-1',
      }),
    );
    await box.idle();

    // 3. the new build, watched in full
    io.out('');
    io.out(c.bold('3. A new build: what Image Builder leaves undone, and the reconciler finishing it'));
    buildStart = box.clock.now();
    firstReportShown = false;
    const second = await ib.send(new StartImagePipelineExecutionCommand({ imagePipelineArn: pipelineArn, clientToken: 'demo-build-2' }));
    watching = second.imageBuildVersionArn ?? '';
    io.out(`  started ${watching}`);
    const final = await box.finalReport(watching, 60_000);
    await box.idle();
    io.out('');
    if (final === undefined) {
      io.err('the reconcile did not finish within a minute');
      return 1;
    }
    io.out(c.bold('Final report'));
    io.out(renderReport(final, c, width));
    io.out('');
    const reports = box.state.events.filter(isReport).length;
    io.out(
      `${statusColor(c, final.outcome)}: ${reports} reconcile runs, ${box.server.requests.length} AWS calls answered by the sandbox, ${((Date.now() - started) / 1000).toFixed(1)} s.`,
    );
    io.out(
      c.dim(
        `Explore it yourself: npm run sandbox, then the CLI or the AWS CLI against http://127.0.0.1:4566 and the report page at http://127.0.0.1:4566/_sandbox/report (README: Sandbox).`,
      ),
    );
    return final.outcome === 'converged' ? 0 : 1;
  } finally {
    await box.stop();
  }
}

/** `npm run sandbox`: keep a sandbox with the reconciler wired in running, and say how to use it. */
async function runSandbox(
  io: Io,
  c: Colors,
  options: { scenario?: string; speed?: number; port: number; wire: boolean },
): Promise<Sandbox> {
  if (options.wire) requireBundles();
  const scenario = scenarioFrom(options.scenario ?? defaultScenarioPath());
  const box = await start({
    port: options.port,
    scenario,
    wire: options.wire,
    ...(options.speed === undefined ? {} : { clockSpeed: options.speed }),
  });
  const pipeline = box.refs.get(`pipeline:${scenario.imagebuilder?.pipelines?.[0]?.name ?? ''}`);
  io.out(c.bold(`Local AWS sandbox "${scenario.name}" listening on ${box.url}`));
  io.out(`report page: ${box.url}/_sandbox/report (every build reported on here; reload for the latest)`);
  io.out(
    `accounts: ${[...box.state.accounts].join(', ')} (an access key id of 12 digits acts as that account; any other acts as ${box.state.defaultAccount})`,
  );
  io.out(`regions:  ${box.state.regions.join(', ')}; clock ×${box.clock.speed}`);
  io.out(
    `reconciler: ${options.wire ? `deployed in ${box.home.account}/${box.home.region}, functions ${box.wiring?.deployment.functions.map((f) => f.name).join(', ') ?? ''}` : 'not wired (--no-wire)'}`,
  );
  io.out('');
  io.out('Use it:');
  io.out(
    `  export AWS_ENDPOINT_URL=${box.url} AWS_ACCESS_KEY_ID=${box.home.account} AWS_SECRET_ACCESS_KEY=sandbox AWS_REGION=${box.home.region}`,
  );
  if (pipeline !== undefined) {
    io.out(`  aws --endpoint-url ${box.url} imagebuilder start-image-pipeline-execution --image-pipeline-arn ${pipeline}`);
    io.out(
      `  npx imagebuilder-reconciler status arn:aws:imagebuilder:${box.home.region}:${box.home.account}:image/${scenario.imagebuilder?.recipes?.[0]?.name ?? 'name'}/1.0.0/1`,
    );
  }
  io.out(
    `  curl ${box.url}/_sandbox/health   (also /_sandbox/state, /_sandbox/events, /_sandbox/invocations, POST /_sandbox/faults, POST /_sandbox/clock)`,
  );
  io.out(c.dim('Ctrl-C stops it.'));
  // narrate: each invocation (function, trigger, what it was about, how it ended), and each report it published
  const at = () => c.dim(`[${box.clock.iso().slice(11, 19)}]`);
  box.onInvocation = (invocation) => io.out(`${at()} ${narrateInvocation(invocation, c)}`);
  box.onEvent = (event) => {
    if (isReport(event)) {
      const report = event.detail as ReconcileReport;
      io.out(
        `${at()}   report ${report.image.name} ${report.image.version}/${report.image.buildNumber} (${report.trigger}, attempt ${report.attempt}, ${report.awsCalls} AWS calls): ${reportSummary(report, c)}`,
      );
      for (const cell of report.cells.filter((x) => x.status === 'failed'))
        io.out(`             ${cell.region}/${cell.accountId}: ${cell.reasons.join('; ')}`);
    } else if (event.source === 'imagebuilder-reconciler' && event.detailType === 'Image Builder Cleanup Report') {
      const report = event.detail as CleanupReport;
      io.out(
        `${at()}   cleanup report ${report.configuration.name} (${report.trigger}, ${report.awsCalls} AWS calls): ${cleanupSummary(report, c)}`,
      );
    } else if (event.detailType === 'EC2 Image Builder Image State Change') {
      const detail = event.detail as { state?: { status?: string } };
      io.out(`${at()} Image Builder: ${event.resources[0] ?? ''} ${detail.state?.status ?? ''}`);
    }
  };
  return box;
}

/** One line per invocation: the function, its trigger, the image / configuration / messages, the outcome. */
function narrateInvocation(invocation: Invocation, c: Colors): string {
  const result = (invocation.result ?? {}) as {
    status?: string;
    image?: string;
    distributionConfigurationArn?: string;
    counts?: { pipelines?: number; cells?: { total: number }; actions?: { applied: number; planned: number; failed: number } };
    batchItemFailures?: unknown[];
    error?: string;
  };
  const event = (invocation.event ?? {}) as {
    Records?: { body?: string }[];
    resources?: string[];
    detail?: { requestParameters?: { distributionConfigurationArn?: string } };
  };
  const subject =
    result.image ??
    result.distributionConfigurationArn ??
    (event.Records !== undefined
      ? `${event.Records.length} recheck message(s): ${event.Records.map((r) => /"imageBuildVersionArn":"([^"]+)"/.exec(r.body ?? '')?.[1] ?? '?').join(', ')}`
      : (event.resources?.[0] ?? event.detail?.requestParameters?.distributionConfigurationArn ?? 'manual payload'));
  const retry = invocation.attempt > 1 ? ` (retry ${invocation.attempt - 1})` : '';
  let outcome: string;
  if (invocation.error !== undefined) outcome = c.red(`error: ${invocation.error}`);
  else if (result.batchItemFailures !== undefined)
    outcome =
      result.batchItemFailures.length === 0
        ? c.green('batch done')
        : c.yellow(`${result.batchItemFailures.length} batch item failure(s), redelivered later`);
  else if (result.status === 'rejected') outcome = c.red(`rejected: ${result.error ?? ''}`);
  else {
    const counts = result.counts;
    const detail =
      counts?.pipelines !== undefined
        ? `${counts.pipelines} pipeline(s)`
        : counts?.cells !== undefined && counts.actions !== undefined
          ? `${counts.cells.total} cells, ${counts.actions.applied} applied, ${counts.actions.planned} planned, ${counts.actions.failed} failed`
          : '';
    outcome = `${statusColor(c, result.status ?? 'done')}${detail === '' ? '' : ` (${detail})`}`;
  }
  return `${c.bold(invocation.function)} via ${invocation.trigger}${retry}, ${invocation.durationMs} ms: ${subject} → ${outcome}`;
}

// the CLI loads this module apart (its own bundle, its own copy of the error classes): it recognises the input
// errors thrown here by this class, and turns them into its own (exit 2)
export { ReconcilerError } from '../../src/lib/core/errors.ts';
export { defaultScenarioPath, narrateInvocation, runDemo, runSandbox };
export type { Io };
