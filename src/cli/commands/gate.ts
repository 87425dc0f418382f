/** The `gate` commands: print or install the distribution gate's workflow (docs/gate.md). */
import type { Command } from 'commander';
import { InputError } from '../../lib/core/errors.ts';
import { installGate, printGate } from '../../lib/gate/install.ts';
import { WAIT_MAX_SECONDS, type StageSpec, parseStage } from '../../lib/gate/workflow.ts';
import { type CommandContext, EXIT, globalsOf, parsePositive } from '../session.ts';

interface GateOptions {
  pipeline?: string;
  distributionConfiguration?: string;
  stage?: string[];
  timeoutMinutes?: number;
}

function stagesOf(opts: GateOptions): StageSpec[] {
  return (opts.stage ?? []).map(parseStage);
}

/** WaitForAction's timeoutSeconds: --timeout-minutes, else the reconciler's deadline and an hour. */
function timeoutOf(opts: GateOptions, deadlineMinutes: number): number {
  const seconds = (opts.timeoutMinutes ?? deadlineMinutes + 60) * 60;
  if (seconds > WAIT_MAX_SECONDS)
    throw new InputError(`--timeout-minutes: WaitForAction waits at most ${WAIT_MAX_SECONDS / 60} minutes (7 days)`);
  if (seconds <= deadlineMinutes * 60)
    throw new InputError(
      `--timeout-minutes ${seconds / 60} is not above the reconciler's deadline (${deadlineMinutes} minutes, RECONCILER_DEADLINE_MINUTES): the step would time out before the gate gives its reasons`,
    );
  return seconds;
}

function register(cli: Command, ctx: CommandContext): void {
  const gate = cli.command('gate').description('the distribution gate: a build is released only when every cell is right (docs/gate.md)');
  const common = (command: Command) =>
    command
      .option(
        '--stage <cells...>',
        'a stage, in order: regions (us-east-1,eu-west-1) or region:account[+account]; the rest is the last stage',
      )
      .option(
        '--timeout-minutes <n>',
        "how long each gate step waits for the reconciler (default: the reconciler's deadline + 60)",
        parsePositive,
      );
  common(
    gate
      .command('print')
      .description("print the gate's workflow document (YAML) for CreateWorkflow, type DISTRIBUTION")
      .option('--pipeline <arn>', 'the pipeline whose distribution configuration the stages are taken from')
      .option('--distribution-configuration <arn>', 'the distribution configuration the stages are taken from'),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ imagebuilder-reconciler gate print
  $ imagebuilder-reconciler gate print --pipeline arn:aws:imagebuilder:us-east-1:111122223333:image-pipeline/golden --stage us-east-1`,
    )
    .action(async (opts: GateOptions) => {
      const { config, clients } = ctx.session();
      const stages = stagesOf(opts);
      if (stages.length > 0 && opts.pipeline === undefined && opts.distributionConfiguration === undefined)
        throw new InputError("--stage needs --pipeline or --distribution-configuration: each stage repeats its regions' settings");
      ctx.io.out(
        await printGate(
          {
            pipelineArn: opts.pipeline,
            distributionConfigurationArn: opts.distributionConfiguration,
            stages,
            timeoutSeconds: timeoutOf(opts, config.deadlineMinutes),
          },
          clients,
        ),
      );
      ctx.result.code = EXIT.converged;
    });
  common(
    gate
      .command('install')
      .description("create the gate's workflow and attach it to a pipeline as its DISTRIBUTION workflow")
      .requiredOption('--pipeline <arn>', 'the pipeline to gate')
      .requiredOption('--execution-role <arn>', "the role Image Builder runs the workflow with (the pipeline's executionRole)")
      .option('--name <name>', 'the workflow name', 'imagebuilder-reconciler-gate')
      .option('--workflow-version <x.y.z>', 'the workflow version', '1.0.0'),
  ).action(
    async (opts: GateOptions & { pipeline: string; executionRole: string; name: string; workflowVersion: string }, command: Command) => {
      const { config, clients } = ctx.session();
      const result = await installGate(
        {
          pipelineArn: opts.pipeline,
          executionRole: opts.executionRole,
          name: opts.name,
          version: opts.workflowVersion,
          stages: stagesOf(opts),
          timeoutSeconds: timeoutOf(opts, config.deadlineMinutes),
        },
        clients,
      );
      if (globalsOf(command).json === true) ctx.io.out(JSON.stringify(result, null, 2));
      else
        ctx.io.out(
          `gate installed: ${result.workflowArn} (${result.stages} stage(s)) is the DISTRIBUTION workflow of ${result.pipelineArn}${result.replaced === undefined ? '' : `, replacing ${result.replaced}`}`,
        );
      ctx.result.code = EXIT.converged;
    },
  );
}

export { register };
