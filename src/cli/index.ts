/**
 * The command line's entry point (bin: dist/cli/index.mjs): run the program, map what went wrong to one line
 * on stderr and an exit code. The program is ./program.ts, each command in ./commands/.
 */
import { CommanderError } from 'commander';
import { quietSdkNotices } from '../lib/core/config.ts';
import { ReconcilerError, toFailure } from '../lib/core/errors.ts';
import { diagnose, oneLine } from './diagnose.ts';
import { escapeControl } from './format.ts';
import { program } from './program.ts';
import { CannotRunError, EXIT, type Io, type RunState } from './session.ts';

/** What went wrong, as one line on stderr (or none: commander has said it), and the exit code. */
function exitOnError(error: unknown, given: Io, state: RunState): number {
  // what went wrong may echo an argument: its control characters are shown, never sent to the terminal
  const io: Io = { ...given, err: (s) => given.err(escapeControl(s)) };
  if (error instanceof CommanderError) {
    // help asked for (--help, `help`) exits 0; no command at all shows the help on stderr and is bad input
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT.converged;
    if (error.code === 'commander.help') return error.exitCode === 0 ? EXIT.converged : EXIT.badInput;
    return EXIT.badInput;
  }
  if (error instanceof ReconcilerError && error.kind === 'input') {
    io.err(`error: ${error.message}`);
    return EXIT.badInput;
  }
  if (error instanceof CannotRunError) {
    io.err(`error: ${error.message}`);
    return EXIT.cannotRun;
  }
  // a call later in the run that failed for the same reasons (the endpoint went away, the token expired)
  const diagnosis = state.session === undefined ? undefined : diagnose(error, state.session.target);
  if (diagnosis !== undefined) {
    io.err(`error: ${diagnosis.message}`);
    return EXIT.cannotRun;
  }
  io.err(`error: ${oneLine(toFailure(error))}`);
  return EXIT.failed;
}

/**
 * Run the command line. Returns the exit code; never throws. Bad input gets one clear line on stderr,
 * never a stack trace.
 */
async function main(argv: string[], io: Io): Promise<number> {
  const result = { code: EXIT.converged as number };
  const state: RunState = {};
  try {
    await program(io, result, state).parseAsync(argv, { from: 'user' });
    return result.code;
  } catch (error: unknown) {
    return exitOnError(error, io, state);
  }
}

const io: Io = {
  out: (s) => process.stdout.write(`${s}\n`),
  err: (s) => process.stderr.write(`${s}\n`),
  isTTY: process.stdout.isTTY === true,
  errIsTTY: process.stderr.isTTY === true,
  columns: process.stdout.isTTY === true ? process.stdout.columns : undefined,
  progress: (s) => process.stderr.write(s),
};
if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('imagebuilder-reconciler')) {
  quietSdkNotices();
  main(process.argv.slice(2), io).then((code) => {
    process.exitCode = code;
  });
}

export { EXIT, main };
export type { Io };
