import { randomUUID } from 'node:crypto';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import pkg from '../../package.json' with { type: 'json' };
import { type ClientFactory, createClientFactory } from '../lib/aws/clients.ts';
import { type Config, cliEnvironment, loadConfig, quietSdkNotices } from '../lib/core/config.ts';
import { ReconcilerError, toFailure } from '../lib/core/errors.ts';
import { parseImageBuildArn, parseImagePipelineArn } from '../lib/core/arn.ts';
import { type SweepReport, latestBuildOf, sweep } from '../lib/sweep/sweep.ts';
import { diagnose, oneLine } from './diagnose.ts';
import { type ResolvedTarget, resolveTarget } from './target.ts';
import { reconcile } from '../lib/reconcile/reconcile.ts';
import type { ReconcileReport } from '../lib/reconcile/report.ts';
import { runDemo, runSandbox } from './demo.ts';
import { colors, renderCleanup, renderFindings, renderReport, renderStatus, renderSweep } from './format.ts';
import { readFile } from 'node:fs/promises';
import { GetDistributionConfigurationCommand } from '@aws-sdk/client-imagebuilder';
import { parseDistributionConfigurationArn } from '../lib/core/arn.ts';
import { InputError } from '../lib/core/errors.ts';
import { lintDistributionConfiguration } from '../lib/preflight/lint.ts';
import { type CleanupReport, cleanup } from '../lib/cleanup/cleanup.ts';
import { type CleanupRequest, type PlannedCandidate, effectiveSettings, parseCleanupRequest } from '../lib/cleanup/request.ts';
import { writeFile } from 'node:fs/promises';
import { type DoctorOptions, checkDoctorOptions, commaList, doctor, renderDoctor } from './commands/doctor.ts';

/** Exit codes (documented in the README and in --help). */
const EXIT = { converged: 0, failed: 1, badInput: 2, changed: 3, pending: 4, cannotRun: 5 } as const;

interface GlobalOptions {
  region?: string;
  profile?: string;
  endpointUrl?: string;
  json?: boolean;
  color: boolean;
  wide?: boolean;
}

/**
 * The command could not talk to AWS at all (endpoint unreachable, no or expired credentials, access denied to
 * the first call): nothing about the image is known, so no report is shown. Exit 5.
 */
class CannotRunError extends Error {
  constructor(message: string, options: { cause: unknown }) {
    super(message, { cause: options.cause });
    this.name = 'CannotRunError';
  }
}

/** What every AWS-touching command works with: the settings, the one client factory, where it points. */
interface Session {
  config: Config;
  clients: ClientFactory;
  target: ResolvedTarget;
}

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  isTTY: boolean;
  /** stderr is a terminal: progress may be shown there. */
  errIsTTY?: boolean;
  /** Write to stderr without a newline (progress). */
  progress?: (text: string) => void;
  /** Width of the terminal stdout is (tables fit it); default COLUMNS, else 80. */
  columns?: number | undefined;
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

/**
 * Where the command points (region, profile, endpoint), checked; the settings; the one client factory.
 * `cleanup` assumes the cleanup role in target accounts, every other command the repair role.
 */
async function openSession(globals: GlobalOptions, role: 'repair' | 'cleanup' = 'repair'): Promise<Session> {
  const env = cliEnvironment();
  const target = await resolveTarget({
    regionFlag: globals.region,
    regionEnv: env.region,
    profile: globals.profile ?? env.profile,
    endpoint: globals.endpointUrl ?? env.endpointUrl,
  });
  // the CLI runs with the caller's credentials: their account comes from STS, never from RECONCILER_ACCOUNT_ID
  const loaded = loadConfig();
  const config: Config = Object.freeze({ ...loaded, ...(role === 'cleanup' ? { targetRoleName: loaded.cleanupRoleName } : {}), region: target.region, accountId: '' });
  const clients = createClientFactory({ ...config, profile: target.profile, endpoint: target.endpoint, s3ForcePathStyle: config.s3ForcePathStyle || target.endpoint !== undefined });
  return { config, clients, target };
}

/** The commands that call AWS, and the argument each checks before any call is made. */
const AWS_COMMANDS: Record<string, ((arg: string, opts: Record<string, unknown>) => unknown) | undefined> = {
  reconcile: (arg, opts) => {
    if (opts.pipeline === undefined) return parseImageBuildArn(arg);
    if (arg !== '') throw new InputError('give an image build ARN or --pipeline <arn>, not both');
    return parseImagePipelineArn(opts.pipeline);
  },
  status: parseImageBuildArn,
  cleanup: (arg, opts) => cleanupRequestFrom(arg, opts as CleanupOptions),
  sweep: (_arg, opts) => (Array.isArray(opts.pipeline) ? opts.pipeline.map(parseImagePipelineArn) : undefined),
  doctor: (_arg, opts) => checkDoctorOptions(opts as DoctorOptions),
};

/** The worst outcome of a sweep decides its exit code, as a reconcile's outcome does. */
function sweepExit(report: SweepReport): number {
  const outcomes = report.pipelines.map((p) => p.outcome);
  if (outcomes.includes('failed')) return EXIT.failed;
  if (outcomes.includes('pending')) return EXIT.pending;
  if (outcomes.includes('repaired') || outcomes.includes('drift')) return EXIT.changed;
  return EXIT.converged;
}

/** Build the program. Each command's action sets `process.exitCode`-style results through `result`. */
function program(io: Io, result: { code: number }, state: { session?: Session; checked?: unknown }): Command {
  const colorsFor = (globals: GlobalOptions) => colors(globals.color && io.isTTY && !cliEnvironment().noColor);
  const widthFor = (globals: GlobalOptions) => (globals.wide === true ? Number.POSITIVE_INFINITY : (io.columns ?? cliEnvironment().columns ?? 80));

  /** The session the preAction hook opened (every command's action runs after it). */
  const setup = (_globals: GlobalOptions): Session => {
    if (state.session === undefined) throw new Error('no session: the preAction hook did not run');
    return state.session;
  };

  /** Reconcile from the command line (reconcile, status), with a progress counter on stderr. */
  const runReconcile = async (arn: string, globals: GlobalOptions, mode: 'plan' | undefined, publish: boolean): Promise<ReconcileReport> => {
    const { config, clients } = setup(globals);
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

  /**
   * A report whose image could not be read says nothing about the image: when the reason is the caller's setup
   * (denied, expired, unreachable), one line says so and the command exits 5; an image that does not exist exits 1.
   * Returns whether the report was handled here.
   */
  const unreadable = (report: ReconcileReport, globals: GlobalOptions): boolean => {
    if (report.error === undefined) return false;
    const session = setup(globals);
    const diagnosis = diagnose(report.error, session.target, `imagebuilder:GetImage on ${report.image.arn}`);
    if (diagnosis === undefined && report.error.kind !== 'not-found') return false;
    if (globals.json === true) io.out(JSON.stringify(report, null, 2));
    if (diagnosis !== undefined) {
      io.err(`error: ${diagnosis.message}`);
      result.code = EXIT.cannotRun;
    } else {
      io.err(`error: no such image build in ${report.image.ownerAccountId}/${report.image.region}: ${report.image.arn} (${report.error.code})`);
      result.code = EXIT.failed;
    }
    return true;
  };

  const cli = new Command('imagebuilder-reconciler')
    .description('Finish what EC2 Image Builder distribution leaves undone: verify and repair every (region, account) cell of an image build.')
    .option('--region <region>', 'region of the reconciler (default: AWS_REGION)')
    .option('--profile <name>', 'AWS profile for the own account (default: the standard credential chain)')
    .option('--endpoint-url <url>', 'send every AWS call to this endpoint (e.g. the local sandbox); AWS_ENDPOINT_URL works too')
    .option('--json', 'print machine-readable JSON on stdout')
    .option('--wide', 'tables as wide as their content (default: fit the terminal)')
    .option('--no-color', 'no colour in human output')
    .version(pkg.version, '--version', 'print the version')
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
(with --plan: changes needed), 4 pending (AWS is still working; run again later), 5 cannot run
(endpoint unreachable, no or expired credentials, access denied to the first call).

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
      const check = AWS_COMMANDS[action.name()] ?? (action.name() === 'lint' && arg.startsWith('arn:') ? parseDistributionConfigurationArn : undefined);
      // a malformed ARN or option is bad input before anything is called
      if (check !== undefined) state.checked = await check(arg, action.opts());
      const cleanupRole = action.name() === 'cleanup' || (action.name() === 'doctor' && action.opts<DoctorOptions>().cleanup === true);
      state.session = await openSession(globals, cleanupRole ? 'cleanup' : 'repair');
      if (action.opts<{ publish?: boolean }>().publish === true && state.session.config.eventBusName === '') {
        throw new InputError('--publish needs an event bus: set RECONCILER_EVENT_BUS to its name (the deployment\'s eventBusName param; RECONCILER_RECHECK_QUEUE_URL for rechecks)');
      }
      if (check !== undefined) await preflight(state.session);
    });

  cli
    .command('reconcile')
    .description('reconcile an image build now: check every cell and repair what differs')
    .argument('[image-build-arn]', 'arn:aws:imagebuilder:<region>:<account>:image/<name>/<x.y.z>/<build>')
    .option('--pipeline <arn>', 'instead of a build: the latest AVAILABLE build of this image pipeline')
    .option('--plan', 'only report what would be done; change nothing')
    .addOption(new Option('--publish', 'also publish the report on the configured EventBridge bus and queue rechecks').default(false))
    .addHelpText(
      'after',
      `
Examples:
  $ imagebuilder-reconciler reconcile arn:aws:imagebuilder:us-east-1:111122223333:image/golden/1.0.0/3 --plan
  $ imagebuilder-reconciler reconcile --pipeline arn:aws:imagebuilder:us-east-1:111122223333:image-pipeline/golden
  $ imagebuilder-reconciler reconcile arn:aws:imagebuilder:us-east-1:111122223333:image/golden/1.0.0/3 --json > report.json`,
    )
    .action(async (given: string | undefined, opts: { plan?: boolean; publish: boolean; pipeline?: string }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      let arn = given ?? '';
      if (opts.pipeline !== undefined) {
        const latest = await latestBuildOf(setup(globals).clients, opts.pipeline);
        if (latest === undefined) {
          io.err(`error: ${opts.pipeline} has no AVAILABLE build to reconcile`);
          result.code = EXIT.failed;
          return;
        }
        arn = latest;
      }
      const report = await runReconcile(arn, globals, opts.plan === true ? 'plan' : undefined, opts.publish);
      if (unreadable(report, globals)) return;
      io.out(globals.json === true ? JSON.stringify(report, null, 2) : renderReport(report, colorsFor(globals), widthFor(globals)));
      result.code = exitFor(report.outcome);
    });

  cli
    .command('sweep')
    .description('reconcile the latest AVAILABLE build of every image pipeline (what the scheduled sweep does)')
    .option('--pipeline <arn...>', 'only these pipelines (default: every pipeline of the account in the region)')
    .option('--plan', 'only report what would be done; change nothing')
    .addOption(new Option('--publish', 'also publish each report on the configured EventBridge bus and queue rechecks').default(false))
    .addHelpText(
      'after',
      `
Exit code: the worst outcome of the pipelines (1 failed, 4 pending, 3 changes made or needed, 0 converged).

Examples:
  $ imagebuilder-reconciler sweep --plan
  $ imagebuilder-reconciler sweep --pipeline arn:aws:imagebuilder:us-east-1:111122223333:image-pipeline/golden --json`,
    )
    .action(async (opts: { pipeline?: string[]; plan?: boolean; publish: boolean }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const { config, clients } = setup(globals);
      const report = await sweep(
        { pipelineArns: opts.pipeline, mode: opts.plan === true ? 'plan' : undefined, trigger: 'cli' },
        { config, clients, log: quietLog(io), now: () => new Date(), newRunId: randomUUID, publish: opts.publish },
      );
      io.out(globals.json === true ? JSON.stringify(report, null, 2) : renderSweep(report, colorsFor(globals), widthFor(globals)));
      result.code = sweepExit(report);
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
      if (unreadable(report, globals)) return;
      io.out(globals.json === true ? JSON.stringify(report, null, 2) : renderStatus(report, colorsFor(globals), widthFor(globals)));
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
      io.out(globals.json === true ? JSON.stringify({ source: target, findings, counts: { errors: findings.filter((f) => f.severity === 'error').length, warnings: findings.filter((f) => f.severity === 'warning').length } }, null, 2) : renderFindings(findings, target, colorsFor(globals), widthFor(globals)));
      result.code = findings.some((f) => f.severity === 'error') ? EXIT.failed : EXIT.converged;
    });

  cli
    .command('cleanup')
    .description('find AMIs left in cells removed from a distribution configuration; plan by default, --apply acts')
    .argument('<distribution-configuration-arn>', 'arn:aws:imagebuilder:<region>:<account>:distribution-configuration/<name>')
    .option('--apply', 'act on the AMIs every guard lets go (default: plan only)')
    .addOption(new Option('--strategy <strategy>', 'what apply does; only a gentler one than the deployment\'s (deprecate < disable < deregister)').choices(['deregister', 'disable', 'deprecate']))
    .option('--min-age-days <days>', 'keep AMIs younger than this (only raises the deployment\'s minimum)', parseNonNegative)
    .option('--keep-tag <key...>', 'also keep AMIs carrying this tag key (added to the deployment\'s keep tag)')
    .option('--include-shared', 'treat AMIs shared with other accounts like the rest, when no other account uses them (only where the deployment allows it)')
    .option('--build <arn...>', 'also consider these image build ARNs (same partition, region and account as the configuration)')
    .option('--only-region <region...>', 'act only in these regions')
    .option('--only-account <account...>', 'act only in these accounts')
    .option('--only-image <ami...>', 'act only on these AMIs')
    .option('--max-deletions <n>', 'act on at most n AMIs in this run (only lowers RECONCILER_CLEANUP_MAX_PER_RUN)', parseNonNegative)
    .option('--plan-out <file>', 'write the plan (the candidates and what would be done) to a file for review')
    .option('--plan <file>', 'with --apply: act only on the candidates of this reviewed plan, re-verifying each')
    .option('--publish', 'also publish the report on the configured EventBridge bus')
    .addHelpText(
      'after',
      `
Guards (every AMI kept says which): still in a current cell; not the AMI the build recorded; referenced
(instances in any state but terminated, every launch template version, SSM parameters, recipes, Auto Scaling
groups and launch configurations, Spot Fleet and EC2 Fleet requests); Windows Fast Launch on; deregistration
protection; the keep tag; younger than the minimum age; shared with other accounts; any guard that cannot be
evaluated. Right before acting, each AMI is checked again; what changed is skipped with reason 'changed'.
Options only tighten the deployment's guards; an option that would loosen one is refused (exit 2).

Examples:
  $ imagebuilder-reconciler cleanup arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/golden --plan-out plan.json
  $ imagebuilder-reconciler cleanup arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/golden --apply --plan plan.json`,
    )
    .action(async (_arn: string, opts: CleanupOptions, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      // built and validated by the preAction hook (cleanupRequestFrom), before any AWS call
      const request = state.checked as CleanupRequest;
      const { config, clients } = setup(globals);
      const report = await cleanup(request, { config, clients, log: quietLog(io), now: () => new Date(), newRunId: randomUUID, publish: opts.publish === true });
      if (opts.planOut !== undefined) await writeFile(opts.planOut, `${JSON.stringify(planFile(report), null, 2)}\n`);
      io.out(globals.json === true ? JSON.stringify(report, null, 2) : renderCleanup(report, colorsFor(globals), widthFor(globals)));
      if (opts.planOut !== undefined) io.err(`plan written to ${opts.planOut}: review it, then run the same command with --apply --plan ${opts.planOut}`);
      result.code = report.counts.failed > 0 ? EXIT.failed : report.mode === 'apply' ? (report.counts.deregistered + report.counts.disabled + report.counts.deprecated > 0 ? EXIT.changed : EXIT.converged) : report.counts.planned > 0 ? EXIT.changed : EXIT.converged;
    });

  cli
    .command('doctor')
    .description('check that every account and region a distribution configuration names lets the reconciler do its work (read only)')
    .option('--config <distribution-configuration-arn>', 'the configuration to check (default: every one of the account in the region)')
    .option('--accounts <ids>', 'only these accounts (comma-separated)', commaList)
    .option('--regions <regions>', 'only these regions (comma-separated)', commaList)
    .option('--cleanup', 'check the cleanup role (RECONCILER_CLEANUP_ROLE_NAME) instead of the target role')
    .addHelpText(
      'after',
      `
For each account: the role exists and can be assumed. For each cell: IAM's policy simulator
(iam:SimulatePrincipalPolicy on the role) allows every action the reconciler calls there, on the resources it
calls it on. Marks: observe (describe calls), images (tags, launch permissions), LT (launch templates),
FL, FL-launch, FL-role (Fast Launch, its launch check, its service-linked role), SSM (parameters); with
--cleanup: observe, refs (image references), retire, snapshots. Every denial names the action and the
statement of infra/target-account-role.yaml that grants it.

Exit code: 0 every action allowed, 1 something denied or a role missing, 2 bad input, 5 cannot run.

Examples:
  $ imagebuilder-reconciler doctor --config arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/golden
  $ imagebuilder-reconciler doctor --accounts 222233334444 --regions eu-west-1 --json`,
    )
    .action(async (opts: DoctorOptions, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const reports = await doctor(opts, state.checked as ReturnType<typeof checkDoctorOptions>, setup(globals));
      const ok = reports.every((r) => r.ok);
      io.out(globals.json === true ? JSON.stringify({ ok, reports }, null, 2) : renderDoctor(reports, colorsFor(globals), widthFor(globals)));
      result.code = ok ? EXIT.converged : EXIT.failed;
    });

  cli
    .command('demo')
    .description('run the reconciler on the local AWS sandbox with the built-in scenario and narrate it (npm start)')
    .option('--scenario <file>', 'a scenario file (default: sandbox/harness/scenarios/demo.json)')
    .option('--speed <factor>', 'simulated seconds per real second', parsePositive)
    .action(async (opts: { scenario?: string; speed?: number }, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      result.code = await runDemo(io, colorsFor(globals), { ...opts, width: widthFor(globals) });
    });

  cli
    .command('sandbox')
    .description('keep the local AWS sandbox running, with the reconciler wired in, for exploration (npm run sandbox)')
    .option('--scenario <file>', 'a scenario file (default: sandbox/harness/scenarios/demo.json)')
    .option('--speed <factor>', 'simulated seconds per real second', parsePositive)
    .option('--port <port>', 'port on 127.0.0.1', parsePort, 4566)
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

interface CleanupOptions {
  apply?: boolean;
  strategy?: 'deregister' | 'disable' | 'deprecate';
  minAgeDays?: number;
  keepTag?: string[];
  includeShared?: boolean;
  build?: string[];
  onlyRegion?: string[];
  onlyAccount?: string[];
  onlyImage?: string[];
  maxDeletions?: number;
  planOut?: string;
  plan?: string;
  publish?: boolean;
}

/** What `--plan-out` writes: the configuration, the guards used, and each AMI a reviewed apply may act on. */
/**
 * The CLI's cleanup options as the cleanup payload, through the same strict schema, with the guards the
 * deployment sets: an option that would loosen one is refused here, before any AWS call.
 */
async function cleanupRequestFrom(arn: string, opts: CleanupOptions): Promise<CleanupRequest> {
  if (opts.plan !== undefined && opts.apply !== true) throw new InputError('--plan <file> is the reviewed plan that --apply acts on: add --apply (to plan again, leave --plan out)');
  if (opts.plan !== undefined && opts.planOut !== undefined) throw new InputError('--plan and --plan-out cannot be used together');
  parseDistributionConfigurationArn(arn);
  const reviewed = opts.plan === undefined ? undefined : await readPlanFile(opts.plan, arn);
  const payload = {
    distributionConfigurationArn: arn,
    mode: opts.apply === true ? 'apply' : 'plan',
    ...(opts.build === undefined ? {} : { imageBuildArns: opts.build }),
    guards: {
      ...(opts.strategy === undefined ? {} : { strategy: opts.strategy }),
      ...(opts.minAgeDays === undefined ? {} : { minAgeDays: opts.minAgeDays }),
      ...(opts.keepTag === undefined ? {} : { keepTagKeys: opts.keepTag }),
      ...(opts.includeShared === true ? { shared: 'include' } : {}),
    },
    ...(opts.onlyRegion === undefined && opts.onlyAccount === undefined && opts.onlyImage === undefined
      ? {}
      : { only: { ...(opts.onlyRegion === undefined ? {} : { regions: opts.onlyRegion }), ...(opts.onlyAccount === undefined ? {} : { accounts: opts.onlyAccount }), ...(opts.onlyImage === undefined ? {} : { imageIds: opts.onlyImage }) } }),
    ...(opts.maxDeletions === undefined ? {} : { maxDeletions: opts.maxDeletions }),
    ...(reviewed === undefined ? {} : { plan: reviewed }),
  };
  const request = parseCleanupRequest(payload, 'cli');
  effectiveSettings(loadConfig(), request);
  return request;
}

function planFile(report: CleanupReport) {
  return {
    kind: 'imagebuilder-reconciler cleanup plan',
    distributionConfigurationArn: report.configuration.arn,
    plannedAt: report.finishedAt,
    settings: report.settings,
    candidates: report.candidates.filter((c) => c.decision !== 'skip').map((c) => ({ imageId: c.imageId, region: c.region, accountId: c.accountId, decision: c.decision, reason: c.reason })),
    kept: report.candidates.filter((c) => c.decision === 'skip' && c.guard !== 'current-cell').map((c) => ({ imageId: c.imageId, region: c.region, accountId: c.accountId, guard: c.guard, reason: c.reason })),
  };
}

/** Read a reviewed plan; it must be a plan of this configuration. The candidates are validated by the request schema. */
async function readPlanFile(file: string, arn: string): Promise<PlannedCandidate[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error: unknown) {
    throw new InputError(`--plan ${file}: not a readable JSON plan (${toFailure(error).message})`, { cause: error });
  }
  const plan = parsed as { kind?: unknown; distributionConfigurationArn?: unknown; candidates?: unknown };
  if (typeof parsed !== 'object' || parsed === null || plan.kind !== 'imagebuilder-reconciler cleanup plan' || !Array.isArray(plan.candidates)) {
    throw new InputError(`--plan ${file}: not a cleanup plan written by --plan-out`);
  }
  if (plan.distributionConfigurationArn !== arn) {
    throw new InputError(`--plan ${file}: a plan of ${String(plan.distributionConfigurationArn)}, not of ${arn}`);
  }
  return (plan.candidates as Record<string, unknown>[]).map((c) => ({ imageId: c.imageId, region: c.region, accountId: c.accountId, decision: c.decision }) as PlannedCandidate);
}

function parseNonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number of days, got "${value}"`);
  return n;
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError(`expected a port from 1 to 65535, got "${value}"`);
  return n;
}

/** The first call (sts:GetCallerIdentity, which needs no permission): is AWS reachable, and who are we? */
async function preflight(session: Session): Promise<void> {
  try {
    await session.clients.ownAccountId();
  } catch (error: unknown) {
    const diagnosis = diagnose(error, session.target);
    if (diagnosis !== undefined) throw new CannotRunError(diagnosis.message, { cause: error });
    throw error;
  }
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
  const state: { session?: Session; checked?: unknown } = {};
  try {
    await program(io, result, state).parseAsync(argv, { from: 'user' });
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
