/** The program: the global options, the help, the hook that checks input and opens the session, and each command. */
import { Command } from 'commander';
import pkg from '../../package.json' with { type: 'json' };
import { InputError } from '../lib/core/errors.ts';
import { escapeControl } from './format.ts';
import * as cleanup from './commands/cleanup.ts';
import * as demo from './commands/demo.ts';
import * as doctor from './commands/doctor.ts';
import * as lint from './commands/lint.ts';
import * as reconcile from './commands/reconcile.ts';
import * as report from './commands/report.ts';
import * as revoke from './commands/revoke.ts';
import * as status from './commands/status.ts';
import * as sweep from './commands/sweep.ts';
import { type AwsCheck, type GlobalOptions, type Io, type RunState, commandContext, openSession, preflight } from './session.ts';

/** The commands that call AWS, and the argument each checks before any call is made. */
const AWS_COMMANDS: Record<string, AwsCheck | undefined> = {
  reconcile: reconcile.check,
  status: status.check,
  report: report.check,
  cleanup: cleanup.check,
  sweep: sweep.check,
  doctor: doctor.check,
  revoke: revoke.check,
  unrevoke: revoke.check,
};

/** Build the program. Each command's action sets the exit code in `result`. */
function program(io: Io, result: { code: number }, state: RunState): Command {
  const cli = new Command('imagebuilder-reconciler')
    .description(
      'Finish what EC2 Image Builder distribution leaves undone: verify and repair every (region, account) cell of an image build.',
    )
    .option('--region <region>', 'region of the reconciler (default: AWS_REGION)')
    .option('--profile <name>', 'AWS profile for the own account (default: the standard credential chain)')
    .option('--endpoint-url <url>', 'send every AWS call to this endpoint (e.g. the local sandbox); AWS_ENDPOINT_URL works too')
    .option('--json', 'print machine-readable JSON on stdout')
    .option('--wide', 'tables as wide as their content (default: fit the terminal)')
    .option('--no-color', 'no colour in human output')
    .version(pkg.version, '--version', 'print the version')
    // every command's help lists the global options too
    .configureHelp({ showGlobalOptions: true })
    .configureOutput({
      // help is not wrapped when it is not on a terminal (as tables are not)
      getOutHelpWidth: () => io.columns ?? (io.isTTY ? 80 : 200),
      getErrHelpWidth: () => io.columns ?? (io.errIsTTY === true ? 80 : 200),
      writeOut: (s) => io.out(s.trimEnd()),
      writeErr: (s) => io.err(s.trimEnd()),
      // bad input: one line, with where to look
      outputError: (s, write) => write(`${escapeControl(s.trim())} (see --help)\n`),
    })
    .addHelpText(
      'after',
      `
Exit codes: 0 converged / nothing to do, 1 failed (or lint errors), 2 bad input, 3 changes made
(with --plan: changes needed), 4 pending (AWS is still working; run again later), 5 cannot run
(endpoint unreachable, no or expired credentials, access denied to the first call), 6 not found (the
image build does not exist).

The region is --region, else AWS_REGION, else the profile's region, else us-east-1.

Examples:
  $ npm run sandbox                     # a local AWS on http://127.0.0.1:4566 to try it on
  $ imagebuilder-reconciler --endpoint-url http://127.0.0.1:4566 status arn:aws:imagebuilder:us-east-1:111111111111:image/golden-windows/1.0.0/1
  $ imagebuilder-reconciler lint distribution.json
  $ imagebuilder-reconciler cleanup arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/golden`,
    )
    .exitOverride()
    .hook('preAction', async (_root, action) => {
      const globals = action.optsWithGlobals<GlobalOptions>();
      const arg = String(action.args[0] ?? '');
      const check = AWS_COMMANDS[action.name()] ?? (action.name() === 'lint' ? lint.checkFor(arg) : undefined);
      // a malformed ARN or option is bad input before anything is called
      if (check !== undefined) state.checked = await check(arg, action.opts());
      const cleanupRole =
        action.name() === 'cleanup' || (action.name() === 'doctor' && action.opts<doctor.DoctorOptions>().cleanup === true);
      state.session = await openSession(globals, cleanupRole ? 'cleanup' : 'repair');
      if (action.opts<{ publish?: boolean }>().publish === true && state.session.config.eventBusName === '') {
        throw new InputError(
          "--publish needs an event bus: set RECONCILER_EVENT_BUS to its name (the deployment's eventBusName param; RECONCILER_RECHECK_QUEUE_URL for rechecks)",
        );
      }
      if (check !== undefined) await preflight(state.session);
    });

  const ctx = commandContext(io, result, state);
  // in this order in --help
  for (const command of [reconcile, sweep, status, report, revoke, lint, cleanup, doctor, demo]) command.register(cli, ctx);
  return cli;
}

export { program };
