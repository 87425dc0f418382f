import { randomUUID } from 'node:crypto';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { createClientFactory } from '../lib/aws/clients.ts';
import { type Config, cliEnvironment, loadConfig, quietSdkNotices } from '../lib/config.ts';
import { ReconcilerError, toFailure } from '../lib/errors.ts';
import { reconcile } from '../lib/reconcile/reconcile.ts';
import type { ReconcileReport } from '../lib/reconcile/report.ts';
import { runDemo, runSandbox } from './demo.ts';
import { colors, renderCleanup, renderReport } from './format.ts';
import { cleanup } from '../lib/cleanup/cleanup.ts';

/** Exit codes (documented in the README). */
const EXIT = { converged: 0, failed: 1, badInput: 2, changed: 3, pending: 4 } as const;

interface GlobalOptions {
  region?: string;
  profile?: string;
  endpointUrl?: string;
  json?: boolean;
  color: boolean;
}

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  isTTY: boolean;
}

function exitFor(outcome: ReconcileReport['outcome']): number {
  if (outcome === 'converged') return EXIT.converged;
  if (outcome === 'failed') return EXIT.failed;
  if (outcome === 'pending') return EXIT.pending;
  return EXIT.changed;
}

function setup(options: GlobalOptions, overrides: Partial<Config> = {}) {
  const env = cliEnvironment();
  const base = loadConfig();
  const config: Config = Object.freeze({ ...base, ...(options.region === undefined ? {} : { region: options.region }), ...overrides });
  const clients = createClientFactory({
    ...config,
    profile: options.profile ?? env.profile,
    endpoint: options.endpointUrl,
  });
  return { config, clients, env };
}

/** Build the program. Each command's action sets `process.exitCode`-style results through `result`. */
function program(io: Io, result: { code: number }): Command {
  const cli = new Command('imagebuilder-reconciler')
    .description('Finish what EC2 Image Builder distribution leaves undone: verify and repair every (region, account) cell of an image build.')
    .option('--region <region>', 'region of the reconciler (default: AWS_REGION)')
    .option('--profile <name>', 'AWS profile for the own account (default: the standard credential chain)')
    .option('--endpoint-url <url>', 'send every AWS call to this endpoint (e.g. the local sandbox); AWS_ENDPOINT_URL works too')
    .option('--json', 'print machine-readable JSON on stdout')
    .option('--no-color', 'no colour in human output')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .exitOverride();

  cli
    .command('reconcile')
    .description('reconcile an image build now: check every cell and repair what differs')
    .argument('<image-build-arn>', 'arn:aws:imagebuilder:<region>:<account>:image/<name>/<x.y.z>/<build>')
    .option('--plan', 'only report what would be done; change nothing')
    .addOption(new Option('--publish', 'also publish the report on the configured EventBridge bus and queue rechecks').default(false))
    .addHelpText(
      'after',
      `
Examples:
  $ imagebuilder-reconciler reconcile arn:aws:imagebuilder:us-east-1:111122223333:image/golden/1.0.0/3 --plan
  $ imagebuilder-reconciler reconcile arn:aws:imagebuilder:us-east-1:111122223333:image/golden/1.0.0/3 --json > report.json`,
    )
    .action(async (arn: string, opts: { plan?: boolean; publish: boolean }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const { config, clients, env } = setup(globals, opts.plan === true ? { mode: 'plan' } : {});
      const report = await reconcile(
        { imageBuildVersionArn: arn, trigger: 'cli' },
        { config, clients, log: quietLog(io), now: () => new Date(), newRunId: randomUUID, publish: opts.publish },
      );
      io.out(globals.json === true ? JSON.stringify(report, null, 2) : renderReport(report, colors(globals.color && io.isTTY && !env.noColor)));
      result.code = exitFor(report.outcome);
    });

  cli
    .command('cleanup')
    .description('find AMIs left in cells removed from a distribution configuration; plan by default, --apply acts')
    .argument('<distribution-configuration-arn>', 'arn:aws:imagebuilder:<region>:<account>:distribution-configuration/<name>')
    .option('--apply', 'act on the AMIs every guard lets go (default: plan only)')
    .addOption(new Option('--strategy <strategy>', 'what apply does').choices(['deregister', 'disable', 'deprecate']))
    .option('--min-age-days <days>', 'keep AMIs younger than this', parseNonNegative)
    .option('--keep-tag <key>', 'keep AMIs carrying this tag key')
    .option('--include-shared', 'treat AMIs shared with other accounts like the rest (default: keep them)')
    .option('--build <arn...>', 'also consider these image build ARNs')
    .option('--publish', 'also publish the report on the configured EventBridge bus')
    .addHelpText(
      'after',
      `
Guards (every AMI kept says which): still in a current cell; not the AMI the build recorded; referenced
(instances, launch templates, SSM parameters, recipes); deregistration protection; the keep tag; younger
than the minimum age; shared with other accounts; any guard that cannot be evaluated.

Examples:
  $ imagebuilder-reconciler cleanup arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/golden
  $ imagebuilder-reconciler cleanup arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/golden --apply --json`,
    )
    .action(async (arn: string, opts: { apply?: boolean; strategy?: 'deregister' | 'disable' | 'deprecate'; minAgeDays?: number; keepTag?: string; includeShared?: boolean; build?: string[]; publish?: boolean }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const { config, clients, env } = setup(globals);
      const report = await cleanup(
        {
          distributionConfigurationArn: arn,
          mode: opts.apply === true ? 'apply' : 'plan',
          trigger: 'cli',
          imageBuildArns: opts.build,
          settings: {
            ...(opts.strategy === undefined ? {} : { strategy: opts.strategy }),
            ...(opts.minAgeDays === undefined ? {} : { minAgeDays: opts.minAgeDays }),
            ...(opts.keepTag === undefined ? {} : { keepTagKey: opts.keepTag }),
            ...(opts.includeShared === true ? { shared: 'include' as const } : {}),
          },
        },
        { config, clients, log: quietLog(io), now: () => new Date(), newRunId: randomUUID, publish: opts.publish === true },
      );
      io.out(globals.json === true ? JSON.stringify(report, null, 2) : renderCleanup(report, colors(globals.color && io.isTTY && !env.noColor)));
      result.code = report.counts.failed > 0 ? EXIT.failed : report.mode === 'apply' ? (report.counts.deregistered + report.counts.disabled + report.counts.deprecated > 0 ? EXIT.changed : EXIT.converged) : report.counts.planned > 0 ? EXIT.changed : EXIT.converged;
    });

  cli
    .command('demo')
    .description('run the reconciler on the local AWS sandbox with the built-in scenario and narrate it (npm start)')
    .option('--scenario <file>', 'a scenario file (default: sandbox/scenarios/demo.json)')
    .option('--speed <factor>', 'simulated seconds per real second', parsePositive)
    .action(async (opts: { scenario?: string; speed?: number }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      result.code = await runDemo(io, colors(globals.color && io.isTTY && !cliEnvironment().noColor), opts);
    });

  cli
    .command('sandbox')
    .description('keep the local AWS sandbox running, with the reconciler wired in, for exploration (npm run sandbox)')
    .option('--scenario <file>', 'a scenario file (default: sandbox/scenarios/demo.json)')
    .option('--speed <factor>', 'simulated seconds per real second', parsePositive)
    .option('--port <port>', 'port on 127.0.0.1', parsePositive, 4566)
    .option('--no-wire', 'do not run the reconciler functions in the sandbox')
    .action(async (opts: { scenario?: string; speed?: number; port: number; wire: boolean }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const box = await runSandbox(io, colors(globals.color && io.isTTY && !cliEnvironment().noColor), opts);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await box.stop();
    });

  return cli;
}

function parseNonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number of days, got "${value}"`);
  return n;
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number, got "${value}"`);
  return n;
}

function quietLog(io: Io) {
  return {
    info: () => undefined,
    warn: (message: string) => io.err(`warning: ${message}`),
    error: (message: string, ...extra: Record<string, unknown>[]) => io.err(`error: ${message} ${extra.length > 0 ? JSON.stringify(extra) : ''}`),
  };
}

/**
 * Run the command line. Returns the exit code; never throws. Bad input gets one clear line on stderr,
 * never a stack trace.
 */
async function main(argv: string[], io: Io): Promise<number> {
  const result = { code: EXIT.converged as number };
  try {
    await program(io, result).parseAsync(argv, { from: 'user' });
    return result.code;
  } catch (error: unknown) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return EXIT.converged;
      return EXIT.badInput;
    }
    if (error instanceof ReconcilerError && error.kind === 'input') {
      io.err(`error: ${error.message}`);
      return EXIT.badInput;
    }
    const failure = toFailure(error);
    io.err(`error: ${failure.code}: ${failure.message}`);
    return EXIT.failed;
  }
}

const io: Io = { out: (s) => process.stdout.write(`${s}\n`), err: (s) => process.stderr.write(`${s}\n`), isTTY: process.stdout.isTTY === true };
if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('imagebuilder-reconciler')) {
  quietSdkNotices();
  main(process.argv.slice(2), io).then((code) => {
    process.exitCode = code;
  });
}

export { EXIT, main };
export type { Io };
