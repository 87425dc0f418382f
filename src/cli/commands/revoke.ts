/** The `revoke` and `unrevoke` commands: take a bad build out of circulation everywhere, planned by default. */
import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { parseImageBuildArn } from '../../lib/core/arn.ts';
import { InputError } from '../../lib/core/errors.ts';
import { type RevokeReport, revoke } from '../../lib/revoke/revoke.ts';
import { renderRevoke } from '../format.ts';
import { type AwsCheck, type CommandContext, EXIT, exitFor, globalsOf, quietLog } from '../session.ts';

interface RevokeOptions {
  apply?: boolean;
  reason?: string;
  disable?: boolean;
  publish?: boolean;
}

/** The build ARN and the reason, checked before any AWS call. */
const check: AwsCheck = (arg, opts) => {
  const reason = (opts as RevokeOptions).reason;
  if (reason !== undefined && reason.length > 200) throw new InputError('--reason: at most 200 characters (it is kept in a tag)');
  return parseImageBuildArn(arg);
};

/** 0 nothing to do; 3 changes made (apply) or needed (plan); 1 failed: as every command. */
function revokeExit(report: RevokeReport): number {
  if (report.outcome === 'drift') return EXIT.changed;
  return exitFor(report.outcome);
}

function register(cli: Command, ctx: CommandContext): void {
  const run = async (action: 'revoke' | 'unrevoke', arn: string, opts: RevokeOptions, command: Command) => {
    const globals = globalsOf(command);
    const { config, clients } = ctx.session();
    const report = await revoke(
      {
        action,
        imageBuildVersionArn: arn,
        mode: opts.apply === true ? 'apply' : 'plan',
        reason: opts.reason,
        disable: opts.disable,
        trigger: 'cli',
      },
      { config, clients, log: quietLog(ctx.io), now: () => new Date(), newRunId: randomUUID, publish: opts.publish === true },
    );
    ctx.io.out(
      globals.json === true ? JSON.stringify(report, null, 2) : renderRevoke(report, ctx.colorsFor(globals), ctx.widthFor(globals)),
    );
    ctx.result.code = revokeExit(report);
  };
  cli
    .command('revoke')
    .description('revoke a bad build everywhere: mark it, move every pointer back to the last good build, retire its AMIs; plan by default')
    .argument('<image-build-arn>', 'arn:aws:imagebuilder:<region>:<account>:image/<name>/<x.y.z>/<build>')
    .option('--apply', 'act (default: plan only, nothing changed)')
    .option('--reason <text>', 'why, and by whom: kept in the mark on the build (at most 200 characters)')
    .option('--disable', 'disable the AMIs (DisableImage, launch permissions recorded first) instead of deprecating them')
    .option('--publish', 'also publish the report on the configured EventBridge bus')
    .addHelpText(
      'after',
      `
The build is marked (tag imagebuilder-reconciler:revoked on its Image Builder image) before anything
else: from then on no reconcile, recheck, sweep or roll-forward treats it as current. Each launch template
default and SSM parameter naming one of its AMIs moves to the AMI of the newest good build (AVAILABLE, not
revoked) in that cell; where there is none, the pointer is left and the cell says so. Its AMIs get Fast
Launch disabled where configured, then are deprecated now (or disabled with --disable); never deregistered.

Examples:
  $ imagebuilder-reconciler revoke arn:aws:imagebuilder:us-east-1:111122223333:image/golden/2.0.0/1
  $ imagebuilder-reconciler revoke arn:aws:imagebuilder:us-east-1:111122223333:image/golden/2.0.0/1 --apply --reason "CVE-2026-1234, alice"`,
    )
    .action((arn: string, opts: RevokeOptions, command: Command) => run('revoke', arn, opts, command));
  cli
    .command('unrevoke')
    .description('lift the revoked mark of a build: the next reconcile or sweep decides again; plan by default')
    .argument('<image-build-arn>', 'arn:aws:imagebuilder:<region>:<account>:image/<name>/<x.y.z>/<build>')
    .option('--apply', 'act (default: plan only, nothing changed)')
    .option('--publish', 'also publish the report on the configured EventBridge bus')
    .addHelpText(
      'after',
      `
Only the mark is removed: pointers, Fast Launch and deprecation stay as they are until the next reconcile
or sweep (a deprecated AMI stays deprecated: DisableImageDeprecation undoes that by hand).

Example:
  $ imagebuilder-reconciler unrevoke arn:aws:imagebuilder:us-east-1:111122223333:image/golden/2.0.0/1 --apply`,
    )
    .action((arn: string, opts: RevokeOptions, command: Command) => run('unrevoke', arn, opts, command));
}

export { check, register };
