/** The `sweep` command: what the scheduled sweep does, from the command line. */
import { randomUUID } from 'node:crypto';
import { type Command, Option } from 'commander';
import { parseImagePipelineArn } from '../../lib/core/arn.ts';
import { type SweepReport, sweep } from '../../lib/sweep/sweep.ts';
import { renderSweep } from '../format.ts';
import { type AwsCheck, type CommandContext, EXIT, globalsOf, quietLog } from '../session.ts';

const check: AwsCheck = (_arg, opts) => (Array.isArray(opts.pipeline) ? opts.pipeline.map(parseImagePipelineArn) : undefined);

/** The worst outcome of a sweep decides its exit code, as a reconcile's outcome does. */
function sweepExit(report: SweepReport): number {
  const outcomes = report.pipelines.map((p) => p.outcome);
  if (outcomes.includes('failed')) return EXIT.failed;
  if (outcomes.includes('pending')) return EXIT.pending;
  if (outcomes.includes('repaired') || outcomes.includes('drift')) return EXIT.changed;
  return EXIT.converged;
}

function register(cli: Command, ctx: CommandContext): void {
  cli
    .command('sweep')
    .description('reconcile the latest AVAILABLE build of every image pipeline (what the scheduled sweep does)')
    .option('--pipeline <arn...>', 'only these pipelines (default: every pipeline of the account in the region)')
    .option('--plan', 'only report what would be done; change nothing')
    .addOption(new Option('--publish', 'also publish each report on the configured EventBridge bus and queue rechecks').default(false))
    .addHelpText(
      'after',
      `
Exit code: the worst outcome of the pipelines (1 failed, 4 pending, 3 changes made or needed, 0 converged).

Examples:
  $ imagebuilder-reconciler sweep --plan
  $ imagebuilder-reconciler sweep --pipeline arn:aws:imagebuilder:us-east-1:111122223333:image-pipeline/golden --json`,
    )
    .action(async (opts: { pipeline?: string[]; plan?: boolean; publish: boolean }, command: Command) => {
      const globals = globalsOf(command);
      const { config, clients } = ctx.session();
      const report = await sweep(
        { pipelineArns: opts.pipeline, mode: opts.plan === true ? 'plan' : undefined, trigger: 'cli' },
        { config, clients, log: quietLog(ctx.io), now: () => new Date(), newRunId: randomUUID, publish: opts.publish },
      );
      ctx.io.out(
        globals.json === true ? JSON.stringify(report, null, 2) : renderSweep(report, ctx.colorsFor(globals), ctx.widthFor(globals)),
      );
      ctx.result.code = sweepExit(report);
    });
}

export { check, register };
