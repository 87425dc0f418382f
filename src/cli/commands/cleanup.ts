/** The `cleanup` command: AMIs left in cells removed from a distribution configuration; plan by default. */
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { type Command, Option } from 'commander';
import { type CleanupReport, cleanup } from '../../lib/cleanup/cleanup.ts';
import { cleanupSettingsParameter, readDeploymentGuards } from '../../lib/cleanup/deployment.ts';
import { type CleanupRequest, type PlannedCandidate, parseCleanupRequest } from '../../lib/cleanup/request.ts';
import { parseDistributionConfigurationArn } from '../../lib/core/arn.ts';
import { deploymentStage } from '../../lib/core/config.ts';
import { localNow } from '../../lib/core/clock.ts';
import { InputError, toFailure } from '../../lib/core/errors.ts';
import { renderCleanup } from '../format.ts';
import { type AwsCheck, type CommandContext, EXIT, globalsOf, parseNonNegative, quietLog } from '../session.ts';

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
  stage?: string;
}

/**
 * The CLI's cleanup options as the cleanup payload, through the same strict schema. An option that would loosen
 * one of the deployment's guards is refused once they are read (the action), before anything is acted on.
 */
async function cleanupRequestFrom(arn: string, opts: CleanupOptions): Promise<CleanupRequest> {
  if (opts.plan !== undefined && opts.apply !== true)
    throw new InputError('--plan <file> is the reviewed plan that --apply acts on: add --apply (to plan again, leave --plan out)');
  if (opts.plan !== undefined && opts.planOut !== undefined) throw new InputError('--plan and --plan-out cannot be used together');
  // a Serverless stage name (letters, digits, hyphens), as it appears in the parameter's name
  if (opts.stage !== undefined && !/^[A-Za-z0-9-]{1,64}$/.test(opts.stage))
    throw new InputError(`--stage ${opts.stage}: a stage name has 1 to 64 letters, digits and hyphens`);
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
      : {
          only: {
            ...(opts.onlyRegion === undefined ? {} : { regions: opts.onlyRegion }),
            ...(opts.onlyAccount === undefined ? {} : { accounts: opts.onlyAccount }),
            ...(opts.onlyImage === undefined ? {} : { imageIds: opts.onlyImage }),
          },
        }),
    ...(opts.maxDeletions === undefined ? {} : { maxDeletions: opts.maxDeletions }),
    ...(reviewed === undefined ? {} : { plan: reviewed }),
  };
  return parseCleanupRequest(payload, 'cli');
}

/** The options as the cleanup request, built and validated before any AWS call (the preAction hook). */
const check: AwsCheck = (arg, opts) => cleanupRequestFrom(arg, opts as CleanupOptions);

/** What `--plan-out` writes: the configuration, the guards used, and each AMI a reviewed apply may act on. */
function planFile(report: CleanupReport) {
  return {
    kind: 'imagebuilder-reconciler cleanup plan',
    distributionConfigurationArn: report.configuration.arn,
    plannedAt: report.finishedAt,
    settings: report.settings,
    candidates: report.candidates
      .filter((c) => c.decision !== 'skip')
      .map((c) => ({ imageId: c.imageId, region: c.region, accountId: c.accountId, decision: c.decision, reason: c.reason })),
    kept: report.candidates
      .filter((c) => c.decision === 'skip' && c.guard !== 'current-cell')
      .map((c) => ({ imageId: c.imageId, region: c.region, accountId: c.accountId, guard: c.guard, reason: c.reason })),
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
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    plan.kind !== 'imagebuilder-reconciler cleanup plan' ||
    !Array.isArray(plan.candidates)
  ) {
    throw new InputError(`--plan ${file}: not a cleanup plan written by --plan-out`);
  }
  if (plan.distributionConfigurationArn !== arn) {
    throw new InputError(`--plan ${file}: a plan of ${String(plan.distributionConfigurationArn)}, not of ${arn}`);
  }
  return (plan.candidates as Record<string, unknown>[]).map(
    (c) => ({ imageId: c.imageId, region: c.region, accountId: c.accountId, decision: c.decision }) as PlannedCandidate,
  );
}

/** 1 failed, or apply refused; 3 AMIs acted on (apply) or to act on (plan); 0 nothing to do. */
function cleanupExit(report: CleanupReport): number {
  const n = report.counts;
  if (n.failed > 0 || report.applyRefused !== null) return EXIT.failed;
  if (report.mode === 'apply') return n.deregistered + n.disabled + n.deprecated > 0 ? EXIT.changed : EXIT.converged;
  return n.planned > 0 ? EXIT.changed : EXIT.converged;
}

function register(cli: Command, ctx: CommandContext): void {
  cli
    .command('cleanup')
    .description('find AMIs left in cells removed from a distribution configuration; plan by default, --apply acts')
    .argument('<distribution-configuration-arn>', 'arn:aws:imagebuilder:<region>:<account>:distribution-configuration/<name>')
    .option('--apply', 'act on the AMIs every guard lets go (default: plan only)')
    .addOption(
      new Option(
        '--strategy <strategy>',
        "what apply does; only a gentler one than the deployment's (deprecate < disable < deregister; default: RECONCILER_CLEANUP_STRATEGY, deregister)",
      ).choices(['deregister', 'disable', 'deprecate']),
    )
    .option(
      '--min-age-days <days>',
      "keep AMIs younger than this (only raises the deployment's minimum; default: RECONCILER_CLEANUP_MIN_AGE_DAYS, 7)",
      parseNonNegative,
    )
    .option(
      '--keep-tag <key...>',
      "also keep AMIs carrying this tag key (added to the deployment's keep tag; default: RECONCILER_CLEANUP_KEEP_TAG only)",
    )
    .option(
      '--include-shared',
      'treat AMIs shared with other accounts like the rest, when no other account uses them (only where the deployment allows it)',
    )
    .option('--build <arn...>', 'also consider these image build ARNs (same partition, region and account as the configuration)')
    .option('--only-region <region...>', 'act only in these regions (default: every removed cell)')
    .option('--only-account <account...>', 'act only in these accounts (default: every removed cell)')
    .option('--only-image <ami...>', 'act only on these AMIs (default: every candidate)')
    .option(
      '--max-deletions <n>',
      'act on at most n AMIs in this run (only lowers it; default: RECONCILER_CLEANUP_MAX_PER_RUN, 20)',
      parseNonNegative,
    )
    .option('--plan-out <file>', 'write the plan (the candidates and what would be done) to a file for review')
    .option('--plan <file>', 'with --apply: act only on the candidates of this reviewed plan, re-verifying each')
    .option('--publish', 'also publish the report on the configured EventBridge bus')
    .option(
      '--stage <stage>',
      'the deployment whose guards apply: its stage (reads /imagebuilder-reconciler/<stage>/cleanup-settings; default RECONCILER_STAGE, else dev)',
    )
    .addHelpText(
      'after',
      `
Guards (every AMI kept says which): still in a current cell; not the AMI the build recorded; referenced
(instances in any state but terminated, every launch template version, SSM parameters, recipes, Auto Scaling
groups and launch configurations, Spot Fleet and EC2 Fleet requests); Windows Fast Launch on; deregistration
protection; the keep tag; younger than the minimum age; shared with other accounts; any guard that cannot be
evaluated. Right before acting, each AMI is checked again; what changed is skipped with reason 'changed'.
The guards are the deployment's: read from the stack's parameter /imagebuilder-reconciler/<stage>/cleanup-settings
(in the configuration's region); where it cannot be read, the run plans with the settings it assumed, says so,
and refuses --apply. Options only tighten them; an option that would loosen one is refused (exit 2). Ages are
measured on AWS's clock; a local clock more than 5 minutes off refuses --apply (exit 1). Two --apply runs of
one configuration never act at once: the second is refused while the first holds the apply lease.

Examples:
  $ imagebuilder-reconciler cleanup arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/golden --plan-out plan.json
  $ imagebuilder-reconciler cleanup arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/golden --apply --plan plan.json`,
    )
    .action(async (_arn: string, opts: CleanupOptions, command: Command) => {
      const globals = globalsOf(command);
      // built and validated by the preAction hook (cleanupRequestFrom), before any AWS call
      const request = ctx.state.checked as CleanupRequest;
      const { config: local, clients } = ctx.session();
      // the deployment's guards, from the parameter its stack writes; where unreadable: assumed, and no apply
      const parameter = cleanupSettingsParameter(opts.stage ?? deploymentStage());
      const region = parseDistributionConfigurationArn(request.distributionConfigurationArn).region;
      const { config, source } = await readDeploymentGuards(clients, region, parameter, local);
      if (source.from === 'assumed') ctx.io.err(`warning: ${source.detail}`);
      const report = await cleanup(request, {
        config,
        clients,
        guards: source,
        log: quietLog(ctx.io),
        now: () => new Date(localNow()),
        newRunId: randomUUID,
        publish: opts.publish === true,
      });
      if (opts.planOut !== undefined) await writeFile(opts.planOut, `${JSON.stringify(planFile(report), null, 2)}\n`);
      ctx.io.out(
        globals.json === true ? JSON.stringify(report, null, 2) : renderCleanup(report, ctx.colorsFor(globals), ctx.widthFor(globals)),
      );
      if (report.applyRefused !== null) ctx.io.err(`apply refused: ${report.applyRefused}`);
      else if (report.clock.note.startsWith('the local clock')) ctx.io.err(`warning: ${report.clock.note}`);
      if (opts.planOut !== undefined)
        ctx.io.err(`plan written to ${opts.planOut}: review it, then run the same command with --apply --plan ${opts.planOut}`);
      ctx.result.code = cleanupExit(report);
    });
}

export { check, register };
