/**
 * The `demo` (npm start) and `sandbox` (npm run sandbox) commands. Both run the local AWS sandbox, which is
 * not part of the CLI: its harness (sandbox/harness/demo.ts) is loaded only when one of them is asked for,
 * from its own bundle (dist/demo/index.mjs) when the CLI runs as dist/cli/index.mjs, from the source otherwise.
 */
import type { Command } from 'commander';
import { InputError } from '../../lib/core/errors.ts';
import type * as Harness from '../../../sandbox/harness/demo.ts';
import { type CommandContext, globalsOf, parsePort, parsePositive } from '../session.ts';

/** Where the harness is, next to this module: the bundle beside the CLI's bundle, or the source in the tree. */
function harnessUrl(self: string): URL {
  return self.endsWith('.mjs') ? new URL('../demo/index.mjs', self) : new URL('../../../sandbox/harness/demo.ts', self);
}

async function loadHarness(): Promise<typeof Harness> {
  // a computed specifier: esbuild leaves it to run time, so that the CLI bundle carries none of the sandbox
  return (await import(harnessUrl(import.meta.url).href)) as typeof Harness;
}

/** Run `work` with the harness; its input errors (a bad scenario, a port in use) are the CLI's bad input (exit 2). */
async function withHarness<T>(work: (harness: typeof Harness) => Promise<T>): Promise<T> {
  const harness = await loadHarness();
  try {
    return await work(harness);
  } catch (error: unknown) {
    if (error instanceof harness.ReconcilerError && error.kind === 'input' && !(error instanceof InputError))
      throw new InputError(error.message, { cause: error });
    throw error;
  }
}

function register(cli: Command, ctx: CommandContext): void {
  cli
    .command('demo')
    .description('run the reconciler on the local AWS sandbox with the built-in scenario and narrate it (npm start)')
    .option('--scenario <file>', 'a scenario file (default: sandbox/harness/scenarios/demo.json)')
    .option('--speed <factor>', "simulated seconds per real second (default: the scenario's clockSpeed)", parsePositive)
    .addHelpText(
      'after',
      `
Prints the address of the live report page, served while it runs.

Examples:
  $ npm start
  $ imagebuilder-reconciler demo --speed 600 --no-color`,
    )
    .action(async (opts: { scenario?: string; speed?: number }, command: Command) => {
      const globals = globalsOf(command);
      ctx.result.code = await withHarness((harness) =>
        harness.runDemo(ctx.io, ctx.colorsFor(globals), { ...opts, width: ctx.widthFor(globals) }),
      );
    });

  cli
    .command('sandbox')
    .description('keep the local AWS sandbox running, with the reconciler wired in, for exploration (npm run sandbox)')
    .option('--scenario <file>', 'a scenario file (default: sandbox/harness/scenarios/demo.json)')
    .option('--speed <factor>', "simulated seconds per real second (default: the scenario's clockSpeed)", parsePositive)
    .option('--port <port>', 'port on 127.0.0.1', parsePort, 4566)
    .option('--no-wire', 'do not run the reconciler functions in the sandbox (default: they run, wired by serverless.yml)')
    .addHelpText(
      'after',
      `
Prints the address of the live report page of every build reported on.

Examples:
  $ npm run sandbox
  $ imagebuilder-reconciler sandbox --port 4567 --scenario my-scenario.json`,
    )
    .action(async (opts: { scenario?: string; speed?: number; port: number; wire: boolean }, command: Command) => {
      const globals = globalsOf(command);
      const box = await withHarness((harness) => harness.runSandbox(ctx.io, ctx.colorsFor(globals), opts));
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await box.stop();
    });
}

export { register };
