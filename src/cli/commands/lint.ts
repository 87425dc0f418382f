/** The `lint` command: preflight checks of a distribution configuration, from a JSON file or by ARN. */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { GetImagePipelineCommand, GetWorkflowCommand, type ImagePipeline } from '@aws-sdk/client-imagebuilder';
import type { ClientFactory } from '../../lib/aws/clients.ts';
import { parseDistributionConfigurationArn, parseImagePipelineArn } from '../../lib/core/arn.ts';
import { AwsCallError } from '../../lib/core/errors.ts';
import type { Finding } from '../../lib/preflight/lint.ts';
import { lintGateWorkflow, lintPipelineWorkflows } from '../../lib/preflight/lint-workflow.ts';
import { InputError } from '../../lib/core/errors.ts';
import { lintDistributionConfiguration } from '../../lib/preflight/lint.ts';
import { renderFindings } from '../format.ts';
import { type AwsCheck, type CommandContext, EXIT, globalsOf, readDistributionConfiguration } from '../session.ts';

/** Only a configuration given by ARN is read from AWS (a file needs no session check). */
function checkFor(arg: string): AwsCheck | undefined {
  if (/^arn:[^:]+:imagebuilder:[^:]*:[^:]*:image-pipeline\//.test(arg)) return parseImagePipelineArn;
  return arg.startsWith('arn:') ? parseDistributionConfigurationArn : undefined;
}

/** A pipeline's distribution workflow, linted (docs/gate.md): is the build gated, and would the gate hold? */
async function lintPipeline(arn: string, clients: ClientFactory, deadlineMinutes: number): Promise<Finding[]> {
  const parsed = parseImagePipelineArn(arn);
  const cell = await clients.forCell(parsed.accountId, parsed.region);
  let pipeline: ImagePipeline | undefined;
  try {
    pipeline = (await cell.imagebuilder.send(new GetImagePipelineCommand({ imagePipelineArn: arn }))).imagePipeline;
  } catch (error: unknown) {
    throw new AwsCallError('GetImagePipeline', parsed.accountId, parsed.region, error);
  }
  const findings = lintPipelineWorkflows(pipeline ?? {});
  const workflowArn = (pipeline?.workflows ?? []).find((w) => /:workflow\/distribution\//.test(w.workflowArn ?? ''))?.workflowArn;
  if (workflowArn === undefined) return findings;
  try {
    const workflow = (await cell.imagebuilder.send(new GetWorkflowCommand({ workflowBuildVersionArn: workflowArn }))).workflow;
    return [...findings, ...lintGateWorkflow(workflow?.data ?? '', { deadlineMinutes })];
  } catch (error: unknown) {
    throw new AwsCallError('GetWorkflow', parsed.accountId, parsed.region, error);
  }
}

async function readText(target: string): Promise<string> {
  try {
    return await readFile(target, 'utf8');
  } catch (error: unknown) {
    throw new InputError(`cannot read ${target}: ${error instanceof Error ? error.message.replace(/^[A-Z]+: /, '') : String(error)}`, {
      cause: error,
    });
  }
}

function register(cli: Command, ctx: CommandContext): void {
  cli
    .command('lint')
    .description(
      "preflight checks of a distribution configuration (a JSON file or an ARN), or of a pipeline's distribution workflow (a pipeline ARN, or a workflow .yaml)",
    )
    .argument(
      '<file-or-arn>',
      'a JSON file, arn:aws:imagebuilder:<region>:<account>:distribution-configuration/<name>, an image-pipeline ARN, or a workflow document (.yaml)',
    )
    .option(
      '--owner <account>',
      "the account that builds the image (for rules about which accounts hold copies; default: the ARN's account, none for a file)",
    )
    .addHelpText(
      'after',
      `
Checks field names against the service model (with the likely intended name), Fast Launch limits and
pinned template versions, Fast Launch for other accounts, launch templates per region, SSM parameter
accounts, public sharing, duplicate regions and AMI name patterns. Exit 1 when there are errors.

A pipeline ARN or a .yaml workflow document: is the build gated (docs/gate.md), does each stage end in a
ReconcilerGate step, does a gate step abort on failure and wait longer than RECONCILER_DEADLINE_MINUTES.

Examples:
  $ imagebuilder-reconciler lint distribution.json
  $ imagebuilder-reconciler lint arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/golden --json`,
    )
    .action(async (target: string, opts: { owner?: string }, command: Command) => {
      const globals = globalsOf(command);
      if (opts.owner !== undefined && !/^\d{12}$/.test(opts.owner))
        throw new InputError(`--owner must be a 12-digit account ID, got "${opts.owner}"`);
      let config: unknown;
      let shape: 'create' | 'update' | 'stored' | undefined;
      let workflowFindings: Finding[] | undefined;
      if (checkFor(target) === parseImagePipelineArn) {
        const { clients, config: settings } = ctx.session();
        workflowFindings = await lintPipeline(target, clients, settings.deadlineMinutes);
      } else if (/\.ya?ml$/.test(target)) {
        workflowFindings = lintGateWorkflow(await readText(target), { deadlineMinutes: ctx.session().config.deadlineMinutes });
      } else if (target.startsWith('arn:')) {
        config = await readDistributionConfiguration(ctx.session().clients, parseDistributionConfigurationArn(target));
        shape = 'stored';
      } else {
        const text = await readText(target);
        try {
          config = JSON.parse(text);
        } catch (error: unknown) {
          throw new InputError(`${target} is not JSON: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
        }
      }
      const findings = workflowFindings ?? lintDistributionConfiguration(config, { owner: opts.owner, shape });
      const counts = {
        errors: findings.filter((f) => f.severity === 'error').length,
        warnings: findings.filter((f) => f.severity === 'warning').length,
      };
      ctx.io.out(
        globals.json === true
          ? JSON.stringify({ source: target, findings, counts }, null, 2)
          : renderFindings(findings, target, ctx.colorsFor(globals), ctx.widthFor(globals)),
      );
      ctx.result.code = findings.some((f) => f.severity === 'error') ? EXIT.failed : EXIT.converged;
    });
}

export { checkFor, register };
