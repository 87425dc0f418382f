import { randomUUID } from 'node:crypto';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { createClientFactory } from '../lib/aws/clients.ts';
import { type Config, cliEnvironment, loadConfig, quietSdkNotices } from '../lib/config.ts';
import { ReconcilerError, toFailure } from '../lib/errors.ts';
import { reconcile } from '../lib/reconcile/reconcile.ts';
import type { ReconcileReport } from '../lib/reconcile/report.ts';
import { runDemo, runSandbox } from './demo.ts';
import { colors, renderCleanup, renderFindings, renderReport, renderStatus } from './format.ts';
import { readFile } from 'node:fs/promises';
import { GetDistributionConfigurationCommand } from '@aws-sdk/client-imagebuilder';
import { parseDistributionConfigurationArn } from '../lib/arn.ts';
import { InputError } from '../lib/errors.ts';
import { lintDistributionConfiguration } from '../lib/lint.ts';
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
  /** stderr is a terminal: progress may be shown there. */
  errIsTTY?: boolean;
  /** Write to stderr without a newline (progress). */
  progress?: (text: string) => void;
}

/** A counter on stderr while cells are observed; only on a terminal, never on stdout. */
function progress(io: Io): { onProgress?: (done: number, total: number) => void; end: () => void } {
  if (io.errIsTTY !== true || io.progress === undefined) return { end: () => undefined };
  const write = io.progress;
  let shown = false;
  return {
    onProgress: (done, total) => {
      shown = true;
      write(`\rchecking cells: ${done}/${total}`);
    },
    end: () => {
      if (shown) write('\r\x1b[K');
    },
  };
}

function exitFor(outcome: ReconcileReport['outcome']): number {
  if (outcome === 'converged') return EXIT.converged;
  if (outcome === 'failed') return EXIT.failed;
  if (outcome === 'pending') return EXIT.pending;
  return EXIT.changed;
}

/** Config and clients for a command; `cleanup` assumes the cleanup role in target accounts. */
function setup(options: GlobalOptions, overrides: Partial<Config> = {}, role: 'repair' | 'cleanup' = 'repair') {
  const env = cliEnvironment();
  const loaded = loadConfig();
  const base = role === 'cleanup' ? { ...loaded, targetRoleName: loaded.cleanupRoleName } : loaded;
  const config: Config = Object.freeze({ ...base, ...(options.region === undefined ? {} : { region: options.region }), ...overrides });
  const clients = createClientFactory({
    ...config,
    profile: options.profile ?? env.profile,
    endpoint: options.endpointUrl,
  });
  return { config, clients };
}

/** Build the program. Each command's action sets `process.exitCode`-style results through `result`. */
function program(io: Io, result: { code: number }): Command {
  const colorsFor = (globals: GlobalOptions) => colors(globals.color && io.isTTY && !cliEnvironment().noColor);

  /** Reconcile from the command line (reconcile, status), with a progress counter on stderr. */
  const runReconcile = async (arn: string, globals: GlobalOptions, mode: 'plan' | undefined, publish: boolean): Promise<ReconcileReport> => {
    const { config, clients } = setup(globals, mode === undefined ? {} : { mode });
    const counter = progress(io);
    try {
      return await reconcile(
        { imageBuildVersionArn: arn, trigger: 'cli', mode },
        { config, clients, log: quietLog(io), now: () => new Date(), newRunId: randomUUID, publish, onProgress: counter.onProgress },
      );
    } finally {
      counter.end();
    }
  };

  const cli = new Command('imagebuilder-reconciler')
    .description('Finish what EC2 Image Builder distribution leaves undone: verify and repair every (region, account) cell of an image build.')
    .option('--region <region>', 'region of the reconciler (default: AWS_REGION)')
    .option('--profile <name>', 'AWS profile for the own account (default: the standard credential chain)')
    .option('--endpoint-url <url>', 'send every AWS call to this endpoint (e.g. the local sandbox); AWS_ENDPOINT_URL works too')
    .option('--json', 'print machine-readable JSON on stdout')
    .option('--no-color', 'no colour in human output')
    .configureOutput({
      writeOut: (s) => io.out(s.trimEnd()),
      writeErr: (s) => io.err(s.trimEnd()),
      // bad input: one line, with where to look
      outputError: (s, write) => write(`${s.trim()} (see --help)\n`),
    })
    .addHelpText(
      'after',
      `
Exit codes: 0 converged / nothing to do, 1 failed (or lint errors), 2 bad input, 3 changes made
(with --plan: changes needed), 4 pending (AWS is still working; run again later).

Examples:
  $ npm run sandbox                     # a local AWS on http://127.0.0.1:4566 to try it on
  $ imagebuilder-reconciler --endpoint-url http://127.0.0.1:4566 status arn:aws:imagebuilder:us-east-1:111111111111:image/golden-windows/1.0.0/1
  $ imagebuilder-reconciler lint distribution.json
  $ imagebuilder-reconciler cleanup arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/golden`,
    )
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
      const report = await runReconcile(arn, globals, opts.plan === true ? 'plan' : undefined, opts.publish);
      io.out(globals.json === true ? JSON.stringify(report, null, 2) : renderReport(report, colorsFor(globals)));
      result.code = exitFor(report.outcome);
    });

  cli
    .command('status')
    .description('the distribution matrix of an image build: regions by accounts, each cell at a glance (read only)')
    .argument('<image-build-arn>', 'arn:aws:imagebuilder:<region>:<account>:image/<name>/<x.y.z>/<build>')
    .addHelpText(
      'after',
      `
Each cell shows its status, its AMI, and a mark per check: AMI, name, tags, share (launch permissions),
kms, LT (launch templates), FL (Fast Launch), SSM (parameters).

Examples:
  $ imagebuilder-reconciler status arn:aws:imagebuilder:us-east-1:111122223333:image/golden/1.0.0/3
  $ imagebuilder-reconciler status arn:aws:imagebuilder:us-east-1:111122223333:image/golden/1.0.0/3 --json | jq '.cells[] | select(.status != "ok")'`,
    )
    .action(async (arn: string, _opts: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const report = await runReconcile(arn, globals, 'plan', false);
      io.out(globals.json === true ? JSON.stringify(report, null, 2) : renderStatus(report, colorsFor(globals)));
      result.code = exitFor(report.outcome);
    });

  cli
    .command('lint')
    .description('preflight checks of a distribution configuration: a JSON file (create/update --cli-input-json) or an ARN')
    .argument('<file-or-arn>', 'path to a JSON file, or arn:aws:imagebuilder:<region>:<account>:distribution-configuration/<name>')
    .option('--owner <account>', 'the account that builds the image (for rules about which accounts hold copies)')
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
      const globals = command.optsWithGlobals<GlobalOptions>();
      if (opts.owner !== undefined && !/^\d{12}$/.test(opts.owner)) throw new InputError(`--owner must be a 12-digit account ID, got "${opts.owner}"`);
      let config: unknown;
      let shape: 'create' | 'update' | 'stored' | undefined;
      if (target.startsWith('arn:')) {
        const arn = parseDistributionConfigurationArn(target);
        const { clients } = setup(globals);
        const cell = await clients.forCell(arn.accountId, arn.region);
        config = (await cell.imagebuilder.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: arn.arn }))).distributionConfiguration;
        shape = 'stored';
      } else {
        let text: string;
        try {
          text = await readFile(target, 'utf8');
        } catch (error: unknown) {
          throw new InputError(`cannot read ${target}: ${error instanceof Error ? error.message.replace(/^[A-Z]+: /, '') : String(error)}`);
        }
        try {
          config = JSON.parse(text);
        } catch (error: unknown) {
          throw new InputError(`${target} is not JSON: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
      const findings = lintDistributionConfiguration(config, { owner: opts.owner, shape });
      io.out(globals.json === true ? JSON.stringify({ source: target, findings, counts: { errors: findings.filter((f) => f.severity === 'error').length, warnings: findings.filter((f) => f.severity === 'warning').length } }, null, 2) : renderFindings(findings, target, colorsFor(globals)));
      result.code = findings.some((f) => f.severity === 'error') ? EXIT.failed : EXIT.converged;
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
      const { config, clients } = setup(globals, {}, 'cleanup');
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
      io.out(globals.json === true ? JSON.stringify(report, null, 2) : renderCleanup(report, colorsFor(globals)));
      result.code = report.counts.failed > 0 ? EXIT.failed : report.mode === 'apply' ? (report.counts.deregistered + report.counts.disabled + report.counts.deprecated > 0 ? EXIT.changed : EXIT.converged) : report.counts.planned > 0 ? EXIT.changed : EXIT.converged;
    });

  cli
    .command('demo')
    .description('run the reconciler on the local AWS sandbox with the built-in scenario and narrate it (npm start)')
    .option('--scenario <file>', 'a scenario file (default: sandbox/scenarios/demo.json)')
    .option('--speed <factor>', 'simulated seconds per real second', parsePositive)
    .action(async (opts: { scenario?: string; speed?: number }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      result.code = await runDemo(io, colorsFor(globals), opts);
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
      const box = await runSandbox(io, colorsFor(globals), opts);
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

const io: Io = {
  out: (s) => process.stdout.write(`${s}\n`),
  err: (s) => process.stderr.write(`${s}\n`),
  isTTY: process.stdout.isTTY === true,
  errIsTTY: process.stderr.isTTY === true,
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
