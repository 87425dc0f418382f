/** The `doctor` command: which configurations, then the checks of src/lib/preflight/doctor.ts, then a matrix per configuration. */
import { paginateListDistributionConfigurations } from '@aws-sdk/client-imagebuilder';
import { type Command, InvalidArgumentError } from 'commander';
import { type DistributionConfigurationArn, parseDistributionConfigurationArn } from '../../lib/core/arn.ts';
import type { ClientFactory } from '../../lib/aws/clients.ts';
import type { Config } from '../../lib/core/config.ts';
import { type DoctorReport, configurationImage, planChecks, runDoctor } from '../../lib/preflight/doctor.ts';
import { AwsCallError, InputError } from '../../lib/core/errors.ts';
import { listSharedOrganizations, listedAccounts, organizationsClient } from '../../lib/aws/organizations.ts';
import { type Colors, cellMatrix } from '../format.ts';
import { type AwsCheck, type CommandContext, EXIT, globalsOf, readDistributionConfiguration } from '../session.ts';
import { isKnownRegion } from '../target.ts';
import { unknownRegion } from '../../lib/core/regions.ts';

interface DoctorOptions {
  config?: string;
  accounts?: string[];
  regions?: string[];
  cleanup?: boolean;
}

/** `a,b,c` as a list (commander option parser); empty entries are bad input. */
function commaList(value: string): string[] {
  const items = value.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) throw new InvalidArgumentError(`expected a comma-separated list, got "${value}"`);
  return items;
}

/** Checked before any AWS call (the preAction hook): the ARN, the accounts, the regions. */
function checkDoctorOptions(opts: DoctorOptions): DistributionConfigurationArn | undefined {
  for (const account of opts.accounts ?? [])
    if (!/^\d{12}$/.test(account)) throw new InputError(`--accounts: "${account}" is not a 12-digit account ID`);
  for (const region of opts.regions ?? []) if (!isKnownRegion(region)) throw new InputError(`--regions: ${unknownRegion(region)}`);
  return opts.config === undefined ? undefined : parseDistributionConfigurationArn(opts.config);
}

/** The configurations to check: the one given, else every one of the own account in the region. */
async function configurationArns(
  clients: ClientFactory,
  config: Config,
  given: DistributionConfigurationArn | undefined,
): Promise<DistributionConfigurationArn[]> {
  if (given !== undefined) return [given];
  const own = await clients.ownAccountId();
  const home = await clients.forCell(own, config.region);
  const arns: DistributionConfigurationArn[] = [];
  try {
    for await (const page of paginateListDistributionConfigurations({ client: home.imagebuilder }, {})) {
      for (const summary of page.distributionConfigurationSummaryList ?? [])
        if (summary.arn !== undefined) arns.push(parseDistributionConfigurationArn(summary.arn));
    }
  } catch (error: unknown) {
    throw new AwsCallError('ListDistributionConfigurations', own, config.region, error);
  }
  return arns;
}

async function doctor(
  opts: DoctorOptions,
  given: DistributionConfigurationArn | undefined,
  session: { clients: ClientFactory; config: Config },
): Promise<DoctorReport[]> {
  const { clients, config } = session;
  const role = opts.cleanup === true ? 'cleanup' : 'repair';
  const reports: DoctorReport[] = [];
  for (const arn of await configurationArns(clients, config, given)) {
    let configuration: Awaited<ReturnType<typeof readDistributionConfiguration>>;
    try {
      configuration = await readDistributionConfiguration(clients, arn);
    } catch (error: unknown) {
      throw new AwsCallError('GetDistributionConfiguration', arn.accountId, arn.region, error);
    }
    if (configuration === undefined) throw new InputError(`no distribution configuration ${arn.arn}`);
    const shared = role === 'repair' && config.sharedAccounts !== 'off';
    // the accounts of the organizations and OUs shared with, listed as the reconciler lists them (RECONCILER_SHARED_ORGANIZATIONS)
    const listings =
      shared && config.sharedOrganizations
        ? await listSharedOrganizations(configurationImage(configuration, arn), organizationsClient(clients), {
            required: config.sharedAccounts === 'require',
            accountId: await clients.ownAccountId(),
          })
        : [];
    const plans = planChecks(configuration, arn, {
      role,
      fastLaunchInheritForTargets: config.fastLaunchInheritForTargets,
      sharedAccounts: shared,
      sharedRequired: config.sharedAccounts === 'require',
      organizationAccounts: listedAccounts(listings),
      accounts: opts.accounts,
      regions: opts.regions,
    });
    // the session's factory assumes the role doctor checks (openSession: the cleanup role with --cleanup)
    const report = await runDoctor(arn, plans, { clients, partition: arn.partition, roleName: config.targetRoleName, role });
    reports.push(
      listings.length === 0
        ? report
        : { ...report, organizations: listings, ok: report.ok && listings.every((o) => o.status === 'listed' || o.status === 'skipped') },
    );
  }
  return reports;
}

/** Regions × accounts, a mark per group of actions; then what to fix, one line each. */
function renderDoctor(reports: DoctorReport[], c: Colors, width: number): string {
  if (reports.length === 0) return 'no distribution configurations in this account and region (give one with --config)';
  const lines: string[] = [];
  for (const report of reports) {
    lines.push(`${c.bold('Configuration')}   ${report.configuration.arn} (role ${report.role.name})`, '');
    const matrix = cellMatrix(report.cells, c, width, (cell) => {
      if (cell.status === 'own-account') return c.dim('own role');
      if (cell.status === 'missing-role') return c.red('no role');
      if (cell.status === 'cannot-assume') return c.red('cannot assume');
      if (cell.status === 'error') return c.red('not checked');
      return cell.groups.map((g) => `${g.name}${g.status === 'ok' ? c.green('✓') : c.red('✗')}`).join(' ');
    });
    lines.push(matrix);
    lines.push(c.dim("  ✓ allowed  ✗ denied  own role: the reconciler's own account (its deployment grants it)  · not a cell"));
    const fixes = [
      ...report.accounts
        .filter((a) => a.status !== 'ok' && a.status !== 'own-account')
        .map((a) => `${a.accountId}: ${a.reason ?? a.status}`),
      ...report.accounts.flatMap((a) =>
        (a.trust ?? []).map(
          (t) =>
            `${a.accountId}: role ${report.role.name} ${t}: deploy infra/target-account-role.yaml with ReconcilerRoleArn/CleanupRoleArn (the deployment's outputs)`,
        ),
      ),
      ...report.cells.flatMap((cell) =>
        cell.groups.flatMap((g) =>
          g.denials.map(
            (d) =>
              `${cell.region}/${cell.accountId} ${g.name}: ${d.action} ${d.decision === 'explicitDeny' ? 'explicitly denied' : 'not allowed'} on ${d.resource}: ${d.fix}`,
          ),
        ),
      ),
    ];
    for (const o of report.organizations ?? []) {
      lines.push(
        o.status === 'listed'
          ? `  shared with ${o.arn}: ${o.accounts.length} account(s) listed, checked as shared cells`
          : `  ${c.yellow(`shared with ${o.arn}: not listed (${o.status})`)}: ${o.reason ?? ''}`,
      );
    }
    if (fixes.length > 0) lines.push('', c.bold('To fix'), ...fixes.map((f) => `  ${f}`));
    const bad = report.cells.filter((x) => x.status !== 'ok' && x.status !== 'own-account' && x.optional !== true).length;
    const broadTrust = report.accounts.filter((a) => (a.trust ?? []).length > 0).length;
    const skipped = report.cells.filter((x) => x.optional === true).length;
    const note =
      skipped === 0
        ? ''
        : c.dim(
            ` (${skipped} cell(s) of accounts that only receive a launch permission have no role: the reconciler skips them, RECONCILER_SHARED_ACCOUNTS=tag)`,
          );
    lines.push(
      '',
      (report.ok
        ? c.green(`OK: ${report.cells.length - skipped} cells, every action allowed`)
        : c.red(
            `PROBLEMS: ${bad} of ${report.cells.length} cells${broadTrust === 0 ? '' : `; ${broadTrust} role(s) trusted beyond the reconciler's functions`}`,
          )) + note,
      '',
    );
  }
  return lines.join('\n').trimEnd();
}

const check: AwsCheck = (_arg, opts) => checkDoctorOptions(opts as DoctorOptions);

function register(cli: Command, ctx: CommandContext): void {
  cli
    .command('doctor')
    .description('check that every account and region a distribution configuration names lets the reconciler do its work (read only)')
    .option('--config <distribution-configuration-arn>', 'the configuration to check (default: every one of the account in the region)')
    .option('--accounts <ids>', 'only these accounts (comma-separated; default: every account the configuration names)', commaList)
    .option('--regions <regions>', 'only these regions (comma-separated; default: every region the configuration names)', commaList)
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
      const globals = globalsOf(command);
      const reports = await doctor(opts, ctx.state.checked as ReturnType<typeof checkDoctorOptions>, ctx.session());
      const ok = reports.every((r) => r.ok);
      ctx.io.out(
        globals.json === true
          ? JSON.stringify({ ok, reports }, null, 2)
          : renderDoctor(reports, ctx.colorsFor(globals), ctx.widthFor(globals)),
      );
      ctx.result.code = ok ? EXIT.converged : EXIT.failed;
    });
}

export { check, register };
export type { DoctorOptions };
