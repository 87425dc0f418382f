/** The `lint` command: preflight checks of a distribution configuration, from a JSON file or by ARN. */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseDistributionConfigurationArn } from '../../lib/core/arn.ts';
import { InputError } from '../../lib/core/errors.ts';
import { lintDistributionConfiguration } from '../../lib/preflight/lint.ts';
import { renderFindings } from '../format.ts';
import { type AwsCheck, type CommandContext, EXIT, globalsOf, readDistributionConfiguration } from '../session.ts';

/** Only a configuration given by ARN is read from AWS (a file needs no session check). */
function checkFor(arg: string): AwsCheck | undefined {
  return arg.startsWith('arn:') ? parseDistributionConfigurationArn : undefined;
}

function register(cli: Command, ctx: CommandContext): void {
  cli
    .command('lint')
    .description('preflight checks of a distribution configuration: a JSON file (create/update --cli-input-json) or an ARN')
    .argument('<file-or-arn>', 'path to a JSON file, or arn:aws:imagebuilder:<region>:<account>:distribution-configuration/<name>')
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
      if (target.startsWith('arn:')) {
        config = await readDistributionConfiguration(ctx.session().clients, parseDistributionConfigurationArn(target));
        shape = 'stored';
      } else {
        let text: string;
        try {
          text = await readFile(target, 'utf8');
        } catch (error: unknown) {
          throw new InputError(
            `cannot read ${target}: ${error instanceof Error ? error.message.replace(/^[A-Z]+: /, '') : String(error)}`,
            { cause: error },
          );
        }
        try {
          config = JSON.parse(text);
        } catch (error: unknown) {
          throw new InputError(`${target} is not JSON: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
        }
      }
      const findings = lintDistributionConfiguration(config, { owner: opts.owner, shape });
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
