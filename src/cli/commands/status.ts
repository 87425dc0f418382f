/** The `status` command: the distribution matrix of an image build, read only (a reconcile in plan mode). */
import type { Command } from 'commander';
import { renderStatus } from '../format.ts';
import { type AwsCheck, type CommandContext, exitFor, globalsOf } from '../session.ts';
import { checkBuildArn, runReconcile, unreadable } from './reconcile.ts';

const check: AwsCheck = checkBuildArn;

function register(cli: Command, ctx: CommandContext): void {
  cli
    .command('status')
    .description('the distribution matrix of an image build: regions by accounts, each cell at a glance (read only)')
    .argument('<image-build-arn>', 'arn:aws:imagebuilder:<region>:<account>:image/<name>/<x.y.z>/<build>')
    .addHelpText(
      'after',
      `
Each cell shows its status, its AMI, and a mark per check: AMI, name, tags, share (launch permissions),
kms, LT (launch templates), FL (Fast Launch), SSM (parameters), lic (license configurations), S3 (export).

Examples:
  $ imagebuilder-reconciler status arn:aws:imagebuilder:us-east-1:111122223333:image/golden/1.0.0/3
  $ imagebuilder-reconciler status arn:aws:imagebuilder:us-east-1:111122223333:image/golden/1.0.0/3 --json | jq '.cells[] | select(.status != "ok")'`,
    )
    .action(async (arn: string, _opts: unknown, command: Command) => {
      const globals = globalsOf(command);
      const report = await runReconcile(ctx, arn, 'plan', false);
      if (unreadable(ctx, report, globals)) return;
      ctx.io.out(
        globals.json === true ? JSON.stringify(report, null, 2) : renderStatus(report, ctx.colorsFor(globals), ctx.widthFor(globals)),
      );
      ctx.result.code = exitFor(report.outcome);
    });
}

export { check, register };
