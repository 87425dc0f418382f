/**
 * The permission proof: one realistic run on the sandbox (a build reconciled to convergence in every cell,
 * then a region removed with cleanup in apply mode, then the build revoked and unrevoked by the reconcile
 * function's manual payload), with every role of serverless.yml and
 * infra/target-account-role.yaml enforced. From the sandbox's request log it checks that (a) every
 * (role, action, resource) the code used was allowed, (b) every action a role grants was used, except
 * the listed ones, each with the reason no run here uses it, and (c) no statement grants a wildcard action.
 */
import {
  GetDistributionConfigurationCommand,
  StartImagePipelineExecutionCommand,
  UpdateDistributionConfigurationCommand,
} from '@aws-sdk/client-imagebuilder';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Authorization } from '../../sandbox/emulator/iam/authorize.ts';
import { type Statement, statementsOf } from '../../sandbox/emulator/iam/policy.ts';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { Role } from '../../sandbox/emulator/state.ts';
import { buildBundles } from '../helpers/build.ts';
import { clients, demoScenario, useSandbox } from '../helpers/sandbox.ts';

const OWNER = '111111111111';
const TARGETS = ['222222222222', '333333333333', '444444444444'];

/** The EBS rights on KMS keys that both repair roles grant for Fast Launch's launch check: the demo encrypts nothing. */
const KMS_NOT_USED = Object.fromEntries(
  ['kms:CreateGrant', 'kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:ReEncryptFrom', 'kms:ReEncryptTo'].map(
    (action) => [
      action,
      "encrypted snapshots in Fast Launch's launch check: the demo configuration sets no KMS key (test/e2e/statement-removal.test.ts, test/e2e/permissions.test.ts)",
    ],
  ),
);

/** Granted but not used by this run, and why. Every entry must still be granted (the list cannot go stale silently). */
const NOT_USED_HERE: Record<string, Record<string, string>> = {
  ReconcileRole: {
    'logs:CreateLogStream': 'Lambda writes the function logs with the execution role; the sandbox keeps no CloudWatch Logs',
    'logs:PutLogEvents': 'Lambda writes the function logs with the execution role; the sandbox keeps no CloudWatch Logs',
    'sqs:ReceiveMessage': "used by recheck's event source mapping (the Lambda service), not by the code",
    'sqs:DeleteMessage': "used by recheck's event source mapping (the Lambda service), not by the code",
    'sqs:GetQueueAttributes': "used by recheck's event source mapping (the Lambda service), not by the code",
    'imagebuilder:RetryImage': 'only for a FAILED build with retryFailedImages on (test/unit/reconcile.test.ts)',
    'imagebuilder:ListWorkflowStepExecutions':
      "the distribution gate's function; this pipeline has no gate (test/e2e/gate.test.ts, the gate probe of statement-removal.test.ts)",
    'imagebuilder:SendWorkflowStepAction':
      "the distribution gate's answer; this pipeline has no gate (test/e2e/gate.test.ts, the gate probe of statement-removal.test.ts)",
    'imagebuilder:ListImageBuildVersions': 'only when the event names an image version without its build',
    'iam:CreateServiceLinkedRole': "the owner's first Fast Launch is enabled by Image Builder here, which creates the role",
    'ec2:RunInstances': "the owner's Fast Launch is enabled by Image Builder here; targets use their role's grant",
    // Image Builder itself completes the owner's cells in this run; the reconciler repairs them when it did not
    // (a failed launch template update, a Fast Launch that failed, a parameter changed since: test/unit/plan.test.ts)
    'imagebuilder:GetDistributionConfiguration': 'read when the build does not embed its distribution configuration (older builds)',
    'ec2:DescribeSnapshots': 'encryption checks: the demo configuration sets no KMS key',
    'ec2:ModifyImageAttribute': "launch permission repairs: Image Builder shared the owner's AMI as configured",
    'ec2:CreateLaunchTemplateVersion': "Image Builder updated the owner's launch template itself",
    'ec2:ModifyLaunchTemplate': "Image Builder set the owner's default version itself",
    'ec2:EnableFastLaunch': "Image Builder enabled the owner's Fast Launch itself",
    ...KMS_NOT_USED,
    'ssm:PutParameter': "Image Builder wrote the owner's parameter itself",
    'license-manager:ListLicenseSpecificationsForResource':
      'the demo configuration names no license configuration (test/e2e/licenses.test.ts)',
    'license-manager:UpdateLicenseSpecificationsForResource':
      'the demo configuration names no license configuration (test/e2e/licenses.test.ts)',
    'ec2:DescribeExportImageTasks': 'the demo configuration exports nothing to S3 (test/e2e/s3-export.test.ts)',
    's3:GetObject': 'the demo configuration exports nothing to S3 (test/e2e/s3-export.test.ts)',
    's3:ListBucket': 'the demo configuration exports nothing to S3 (test/e2e/s3-export.test.ts)',
    'dynamodb:DeleteItem': "Powertools Idempotency deletes a run's record only when the run fails (test/e2e/duplicates.test.ts)",
    'ec2:EnableImageDeprecation': 'revoke deprecates unless asked to disable, as this run is (test/e2e/revoke.test.ts deprecates)',
  },
  CleanupRole: {
    'logs:CreateLogStream': 'Lambda writes the function logs with the execution role',
    'logs:PutLogEvents': 'Lambda writes the function logs with the execution role',
    'sqs:SendMessage': 'the on-failure destination of cleanupOnChange (the Lambda service sends it)',
    'ec2:DisableImage': 'strategy disable (test/unit/cleanup-plan.test.ts)',
    'ec2:EnableImageDeprecation': 'strategy deprecate (test/unit/cleanup-plan.test.ts)',
    'ec2:CreateImageUsageReport': 'use of a shared AMI by other accounts, only with shared: include (test/e2e/cleanup-safety.test.ts)',
    'ec2:DescribeImageUsageReports': 'use of a shared AMI by other accounts, only with shared: include (test/e2e/cleanup-safety.test.ts)',
    'ec2:DescribeImageUsageReportEntries':
      'use of a shared AMI by other accounts, only with shared: include (test/e2e/cleanup-safety.test.ts)',
  },
  ImageBuilderReconcilerTarget: {
    'iam:SimulatePrincipalPolicy': 'used by `imagebuilder-reconciler doctor` (test/cli/doctor.test.ts), not by the functions',
    'iam:GetRole': '`imagebuilder-reconciler doctor` reads the trust policy (test/cli/doctor.test.ts), not the functions',
    'ec2:DescribeSnapshots': 'encryption checks: the demo configuration sets no KMS key',
    'ec2:ModifyImageAttribute': 'launch permission repairs: the demo configuration shares no target copy further',
    ...KMS_NOT_USED,
    'ssm:PutParameter': "Image Builder wrote the target account's parameter itself",
    'license-manager:ListLicenseSpecificationsForResource':
      'the demo configuration names no license configuration (test/e2e/licenses.test.ts)',
    'license-manager:UpdateLicenseSpecificationsForResource':
      'the demo configuration names no license configuration (test/e2e/licenses.test.ts)',
    'ec2:DescribeExportImageTasks': "only the owner's cell is checked for an S3 export, and the owner here is the reconciler's own account",
    's3:GetObject': "only the owner's cell is checked for an S3 export, and the owner here is the reconciler's own account",
    's3:ListBucket': "only the owner's cell is checked for an S3 export, and the owner here is the reconciler's own account",
    'ec2:EnableImageDeprecation': 'revoke deprecates unless asked to disable, as this run is (test/e2e/revoke.test.ts deprecates)',
  },
  ImageBuilderReconcilerCleanup: {
    'iam:SimulatePrincipalPolicy': 'used by `imagebuilder-reconciler doctor --cleanup` (test/cli/doctor.test.ts), not by the functions',
    'iam:GetRole': '`imagebuilder-reconciler doctor --cleanup` reads the trust policy (test/cli/doctor.test.ts), not the functions',
    'ec2:DisableImage': 'strategy disable (test/unit/cleanup-plan.test.ts)',
    'ec2:EnableImageDeprecation': 'strategy deprecate (test/unit/cleanup-plan.test.ts)',
    'ec2:CreateImageUsageReport': 'use of a shared AMI by other accounts, only with shared: include (test/e2e/cleanup-safety.test.ts)',
    'ec2:DescribeImageUsageReports': 'use of a shared AMI by other accounts, only with shared: include (test/e2e/cleanup-safety.test.ts)',
    'ec2:DescribeImageUsageReportEntries':
      'use of a shared AMI by other accounts, only with shared: include (test/e2e/cleanup-safety.test.ts)',
  },
};

function grants(role: Role): Statement[] {
  return [...role.inlinePolicies.values()].flatMap((text) => statementsOf(JSON.parse(text) as { Statement: Statement[] }));
}

const actionsOf = (statements: Statement[]) => statements.filter((s) => s.Effect === 'Allow').flatMap((s) => [s.Action ?? []].flat());

describe('permission proof (sandbox request log)', () => {
  let box: Sandbox;
  const sandboxes = useSandbox();
  /** Role label (Lambda role logical id, or target role name) → its role in each account. */
  const roles = new Map<string, Role[]>();
  const used = new Map<string, Authorization[]>();

  beforeAll(async () => {
    buildBundles();
    const scenario = demoScenario();
    scenario.deploymentParams = { ...scenario.deploymentParams, cleanupMode: 'apply' };
    // the owner's account gets a copy in the region that is removed below, so that cleanup retires AMIs in
    // the own account (the cleanup function's role) as well as in a target account (the target cleanup role)
    const removed = scenario.imagebuilder?.distributions?.[0]?.distributions?.find((d) => d.region === 'ap-northeast-1');
    removed?.amiDistributionConfiguration?.targetAccountIds?.push(OWNER);
    // a stack in the removed region of every account: cleanup's in-use check reads its template (a queue, no AMI)
    scenario.stacks = [OWNER, ...TARGETS].map((account) => ({
      account,
      region: 'ap-northeast-1',
      name: 'queues',
      template: { Resources: { Queue: { Type: 'AWS::SQS::Queue' } } },
    }));
    // and a Batch compute environment and two EMR clusters (instance groups, instance fleets) there, none
    // naming a candidate: the in-use check lists them and reads each cluster's groups or fleets
    scenario.computeEnvironments = [OWNER, ...TARGETS].map((account) => ({ account, region: 'ap-northeast-1', name: 'jobs' }));
    scenario.emrClusters = [OWNER, ...TARGETS].flatMap((account) => [
      { account, region: 'ap-northeast-1', name: 'groups' },
      { account, region: 'ap-northeast-1', name: 'fleets', fleets: true },
    ]);
    box = await sandboxes.start({ scenario, wire: true, clockSpeed: 3000 });
    for (const [logicalId, role] of box.wiring?.roles ?? []) roles.set(logicalId, [role]);
    for (const name of ['ImageBuilderReconcilerTarget', 'ImageBuilderReconcilerCleanup']) {
      roles.set(
        name,
        TARGETS.map((account) => box.state.rolesOf(account).get(name)).filter((r): r is Role => r !== undefined),
      );
    }
    const ib = clients(box.url, OWNER).imagebuilder;
    const build = await ib.send(
      new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:golden-windows'), clientToken: 'proof' }),
    );
    await box.finalReport(build.imageBuildVersionArn ?? '', 30_000);
    await box.idle();
    // cleanup's minimum age: the copies must be older than 7 days
    box.clock.advance(8 * 86_400_000);
    const configArn = box.refs.get('distribution:golden-windows') ?? '';
    const current = await ib.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: configArn }));
    await ib.send(
      new UpdateDistributionConfigurationCommand({
        distributionConfigurationArn: configArn,
        distributions: current.distributionConfiguration?.distributions?.filter((d) => d.region !== 'ap-northeast-1'),
        clientToken: 'remove',
      }),
    );
    await box.idle();
    // revoke the build by the reconcile function's manual payload (disabling its AMIs), then lift the mark
    const arn = build.imageBuildVersionArn ?? '';
    const revoked = await box.wiring?.invokeFunction('reconcile', {
      action: 'revoke',
      imageBuildVersionArn: arn,
      apply: true,
      disable: true,
    });
    expect(revoked?.error).toBeUndefined();
    expect(revoked?.result).toMatchObject({ kind: 'revoke', mode: 'apply', status: 'repaired' });
    // one build: every pointer is left on it (no earlier good build), and nothing failed
    const problems = (revoked?.result as { problems: string[] } | undefined)?.problems ?? [];
    expect(problems.filter((p) => !/: left: /.test(p))).toStrictEqual([]);
    const unrevoked = await box.wiring?.invokeFunction('reconcile', { action: 'unrevoke', imageBuildVersionArn: arn, apply: true });
    expect(unrevoked?.result).toMatchObject({ kind: 'unrevoke', mark: { outcome: 'applied' } });
    await box.idle();
    const labelOf = new Map<string, string>();
    for (const [label, list] of roles) for (const role of list) labelOf.set(role.arn, label);
    for (const record of box.server.requests) {
      for (const a of record.authorizations) {
        const label = labelOf.get(a.principal) ?? a.principal;
        used.set(label, [...(used.get(label) ?? []), a]);
      }
    }
  }, 120_000);

  it('ran every role: the reconcile and cleanup functions, and both target roles', () => {
    expect([...used.keys()].sort()).toStrictEqual([
      'CleanupRole',
      'ImageBuilderReconcilerCleanup',
      'ImageBuilderReconcilerTarget',
      'ReconcileRole',
    ]);
    const cleanup = box.state.events.find((e) => e.detailType === 'Image Builder Cleanup Report')?.detail as
      | { mode: string; counts: { deregistered: number } }
      | undefined;
    expect(cleanup).toMatchObject({ mode: 'apply' });
    expect(cleanup?.counts.deregistered).toBeGreaterThan(0);
  });

  it('(a) every (role, action, resource) the code used was allowed', () => {
    const refused = [...used.entries()].flatMap(([label, list]) =>
      list.filter((a) => a.decision !== 'allow').map((a) => `${label} ${a.action} ${a.resource} ${a.decision}`),
    );
    expect(refused).toStrictEqual([]);
  });

  it('(b) every granted action is used, or listed with the reason it is not used here', () => {
    for (const [label, list] of roles) {
      const granted = new Set(list.flatMap((role) => actionsOf(grants(role))));
      const usedActions = new Set((used.get(label) ?? []).map((a) => a.action));
      const exempt = NOT_USED_HERE[label] ?? {};
      expect(
        [...granted].filter((a) => !usedActions.has(a) && exempt[a] === undefined).sort(),
        `${label}: granted, never used`,
      ).toStrictEqual([]);
      expect(
        Object.keys(exempt).filter((a) => !granted.has(a)),
        `${label}: exemptions for actions not granted`,
      ).toStrictEqual([]);
      expect(
        Object.keys(exempt).filter((a) => usedActions.has(a)),
        `${label}: exempt but used (remove from the list)`,
      ).toStrictEqual([]);
    }
  });

  it('(c) no statement grants a wildcard action', () => {
    for (const [label, list] of roles) {
      const wildcards = list
        .flatMap((role) => grants(role))
        .flatMap((s) => [s.Action ?? [], s.NotAction ?? []].flat())
        .filter((a) => a.includes('*') || a.includes('?'));
      expect(wildcards, label).toStrictEqual([]);
      expect(
        list.flatMap((role) => grants(role)).filter((s) => s.NotAction !== undefined || s.NotResource !== undefined),
        label,
      ).toStrictEqual([]);
    }
  });
});
