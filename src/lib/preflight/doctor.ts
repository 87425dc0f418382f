/**
 * `doctor`: before anything is built, does every (region, account) a distribution configuration names let the
 * reconciler do its work there? For each account, the role the reconciler assumes (the target role, or with
 * `cleanup` the cleanup role) must exist and be assumable; for each cell, each action the reconciler will call
 * there must be allowed on the resources it will call it on. Permissions are evaluated by IAM itself with
 * `iam:SimulatePrincipalPolicy` on the role (IAM API reference, SimulatePrincipalPolicy: "Simulate how a set of
 * IAM policies attached to an IAM entity works with a list of API operations and AWS resources"), with the
 * context keys the role's conditions test.
 *
 * {@link planChecks} is pure: the cells come from {@link desiredImage}, the same derivation the reconciler uses
 * for a build of the configuration, so the doctor checks exactly the cells and settings a build would meet.
 */
import {
  DescribeFastLaunchImagesCommand,
  DescribeFleetsCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeSnapshotsCommand,
  DescribeSpotFleetRequestsCommand,
  DescribeSpotInstanceRequestsCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import type { DistributionConfiguration, Image } from '@aws-sdk/client-imagebuilder';
import {
  type EvaluationResult,
  GetRoleCommand,
  IAMClient,
  NoSuchEntityException,
  SimulatePrincipalPolicyCommand,
} from '@aws-sdk/client-iam';
import type { DistributionConfigurationArn } from '../core/arn.ts';
import type { ClientFactory } from '../aws/clients.ts';
import { desiredImage } from '../core/desired.ts';
import {
  CREATED_BY_IMAGE_BUILDER,
  CREATED_BY_TAG,
  MANAGED_TEMPLATE_TAG,
  MANAGED_TEMPLATE_VALUE,
  RETIRING_TAG,
  SOURCE_IMAGE_TAG,
} from '../core/tags.ts';
import { toFailure } from '../core/errors.ts';
import type { OrganizationListing } from '../aws/organizations.ts';

type Role = 'repair' | 'cleanup';

/** One group of actions a cell needs, shown as one mark of the matrix. */
interface CheckGroup {
  /** The mark: observe, images, LT, FL, SSM (repair); observe, consumers, stacks, batch-emr, clusters, refs, retire, snapshots (cleanup). */
  name: string;
  actions: string[];
  resources: string[];
  /** Context keys the reconciler's calls carry (what the role's conditions test); a boolean is sent as IAM's `boolean` type. */
  context?: Record<string, string | boolean>;
  /** The statement of infra/target-account-role.yaml that grants the group. */
  statement: string;
  /** What to do about an implicit deny, when it is more than adding the statement. */
  fix?: string;
  /** Launch templates (ids) that must carry the opt-in tag for the role's grant to apply: doctor reads their tags. */
  optIn?: string[];
}

interface CellPlan {
  region: string;
  accountId: string;
  groups: CheckGroup[];
  /** An account that only receives a launch permission, under RECONCILER_SHARED_ACCOUNTS=tag: without its role the reconciler skips it. */
  optional?: true;
}

interface Denial {
  action: string;
  resource: string;
  decision: 'explicitDeny' | 'implicitDeny';
  /** The policy that matched (the Deny's policy for an explicit deny). */
  policy: string | undefined;
  /** What to do, in one line. */
  fix: string;
}

/** What EC2 itself answered to a request of the action made with DryRun, as the role. */
interface DryRunResult {
  action: string;
  /** DryRunOperation: allowed; UnauthorizedOperation: denied; anything else: the call could not tell. */
  result: 'allowed' | 'denied' | 'unknown';
  code: string;
  /** For a refusal: whether EC2's message says an explicit deny decided it. */
  explicitDeny?: boolean;
}

interface GroupResult {
  name: string;
  status: 'ok' | 'denied' | 'unchecked';
  denials: Denial[];
  /** The group's EC2 actions that EC2 checks with DryRun without naming a resource. */
  dryRun: DryRunResult[];
}

interface CellResult {
  region: string;
  accountId: string;
  status: 'ok' | 'denied' | 'missing-role' | 'cannot-assume' | 'own-account' | 'error';
  groups: GroupResult[];
  reason?: string;
  /** The reconciler skips this cell where its role is missing or cannot be assumed (a shared cell under `tag`): not a problem. */
  optional?: true;
}

interface AccountResult {
  accountId: string;
  roleArn: string;
  status: 'ok' | 'missing-role' | 'cannot-assume' | 'own-account' | 'error';
  reason?: string;
  /**
   * What the role's trust policy admits beyond the deployment's functions (read by the role itself with
   * iam:GetRole), one line each; empty when it admits only named roles; undefined when it could not be read.
   */
  trust?: string[];
}

interface DoctorReport {
  configuration: { arn: string };
  role: { kind: Role; name: string };
  accounts: AccountResult[];
  cells: CellResult[];
  /** With RECONCILER_SHARED_ORGANIZATIONS: what listing the accounts of each organization and OU shared with gave. */
  organizations?: OrganizationListing[];
  ok: boolean;
}

/** Repair: what reconcile and recheck call in a cell (src/lib/reconcile/*), grouped by check. */
function repairGroups(
  partition: string,
  region: string,
  accountId: string,
  cell: ReturnType<typeof desiredImage>['cells'][number],
  owner: DistributionConfigurationArn,
): CheckGroup[] {
  const image = `arn:${partition}:ec2:${region}::image/*`;
  // a copy the reconciler works on carries its source tag, naming a build of the owner's account: the image
  // grants of the target role are conditioned on it (infra/target-account-role.yaml)
  const ours = {
    [`aws:ResourceTag/${SOURCE_IMAGE_TAG}`]: `arn:${partition}:imagebuilder:${owner.region}:${owner.accountId}:image/${owner.name}/0.0.0/1`,
  };
  const lt = (id: string | undefined) => `arn:${partition}:ec2:${region}:${accountId}:launch-template/${id ?? '*'}`;
  if (cell.origin === 'shared') {
    // an account that only receives a launch permission: the reconciler reads the shared copies and tags them in
    // the account's own scope, nothing else (src/lib/reconcile/observe.ts, the shared cell)
    return [
      { name: 'observe', actions: ['ec2:DescribeImages'], resources: ['*'], statement: 'Observe' },
      { name: 'images', actions: ['ec2:CreateTags'], resources: [image], statement: 'TagImages' },
    ];
  }
  const groups: CheckGroup[] = [
    {
      name: 'observe',
      actions: [
        'ec2:DescribeImages',
        'ec2:DescribeImageAttribute',
        'ec2:DescribeSnapshots',
        'ec2:DescribeLaunchTemplates',
        'ec2:DescribeLaunchTemplateVersions',
        'ec2:DescribeFastLaunchImages',
      ],
      resources: ['*'],
      statement: 'Observe',
    },
    {
      name: 'images',
      actions: ['ec2:CreateTags', 'ec2:ModifyImageAttribute'],
      resources: [image],
      context: ours,
      statement: 'TagImages, LaunchPermissions',
    },
  ];
  if (cell.launchTemplates.length > 0) {
    groups.push({
      name: 'LT',
      actions: ['ec2:CreateLaunchTemplateVersion', 'ec2:ModifyLaunchTemplate'],
      resources: cell.launchTemplates.map((t) => lt(t.launchTemplateId)),
      // what the role may do in a template that opted in; whether each one did is read from the template itself
      context: { [`aws:ResourceTag/${MANAGED_TEMPLATE_TAG}`]: MANAGED_TEMPLATE_VALUE },
      statement: 'LaunchTemplates',
      optIn: cell.launchTemplates.map((t) => t.launchTemplateId),
    });
  }
  if (cell.fastLaunch !== undefined) {
    // a template named, not by id, is resolved at run time: any template of the account
    const template = lt(cell.fastLaunch.launchTemplate?.id);
    groups.push(
      { name: 'FL', actions: ['ec2:EnableFastLaunch'], resources: [image, template], context: ours, statement: 'FastLaunch' },
      {
        // EnableFastLaunch first checks that the caller may launch from the AMI and the template
        name: 'FL-launch',
        actions: ['ec2:RunInstances'],
        resources: [
          image,
          template,
          ...['instance', 'volume', 'network-interface', 'subnet', 'security-group'].map(
            (r) => `arn:${partition}:ec2:${region}:${accountId}:${r}/*`,
          ),
        ],
        // the launch goes through the template (ec2:LaunchTemplate), when the setting names one
        context: { ...ours, ...(cell.fastLaunch.launchTemplate === undefined ? {} : { 'ec2:LaunchTemplate': template }) },
        statement: 'FastLaunchLaunchCheck',
        // without a template the launch check launches without one: only FastLaunchWithoutLaunchTemplate allows that
        ...(cell.fastLaunch.launchTemplate === undefined
          ? {
              fix: `Fast Launch without a launch template launches without one: deploy infra/target-account-role.yaml in ${accountId} with FastLaunchWithoutLaunchTemplate=true, or name a launch template in the Fast Launch setting`,
            }
          : {}),
      },
      {
        name: 'FL-role',
        actions: ['iam:CreateServiceLinkedRole'],
        resources: [`arn:${partition}:iam::${accountId}:role/aws-service-role/ec2fastlaunch.amazonaws.com/AWSServiceRoleForEC2FastLaunch`],
        context: { 'iam:AWSServiceName': 'ec2fastlaunch.amazonaws.com' },
        statement: 'FastLaunchServiceLinkedRole',
      },
    );
    const key = keyArn(partition, region, accountId, cell.kmsKeyId);
    if (key !== undefined) {
      // the launch check creates volumes from the AMI's encrypted snapshots: the EBS rights on the key, through EC2
      // (EBS User Guide, "Requirements for Amazon EBS encryption"); the AWS managed key aws/ebs needs none
      // a key of another account: the role's statement is not enough, the key's own policy must allow the role too
      const foreign =
        key.split(':')[4] === accountId
          ? {}
          : {
              fix: `the key is another account's: allow {action} on ${key} to role {role} of ${accountId} both in the role and in the key's key policy (the target template grants keys of the role's own account only)`,
            };
      const via = { 'kms:ViaService': `ec2.${region}.amazonaws.com`, 'kms:CallerAccount': accountId };
      groups.push(
        {
          name: 'FL-kms',
          actions: ['kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:ReEncryptFrom', 'kms:ReEncryptTo'],
          resources: [key],
          context: via,
          statement: 'FastLaunchEncryptedSnapshots',
          ...foreign,
        },
        {
          name: 'FL-grant',
          actions: ['kms:CreateGrant'],
          resources: [key],
          context: { ...via, 'kms:GrantIsForAWSResource': true },
          statement: 'FastLaunchEncryptedSnapshotsGrant',
          ...foreign,
        },
      );
    }
    if (cell.fastLaunch.launchTemplate === undefined) {
      // without a launch template EC2 Fast Launch builds its own VPC resources with the caller's rights: the managed
      // policy EC2FastLaunchFullAccess grants them (ec2:CreateVpc tagged CreatedBy "EC2 Fast Launch", via the service)
      groups.push({
        name: 'FL-network',
        actions: ['ec2:CreateVpc'],
        resources: [`arn:${partition}:ec2:${region}:${accountId}:vpc/*`],
        context: {
          'aws:RequestTag/CreatedBy': 'EC2 Fast Launch',
          'aws:TagKeys': 'CreatedBy',
          'aws:CalledVia': 'ec2fastlaunch.amazonaws.com',
        },
        statement: 'EC2FastLaunchFullAccess',
        fix: `Fast Launch without a launch template creates its own VPC: deploy infra/target-account-role.yaml in ${accountId} with FastLaunchWithoutLaunchTemplate=true (attaches AWS's EC2FastLaunchFullAccess), or name a launch template in the Fast Launch setting`,
      });
    }
  }
  if (cell.s3Export !== undefined) {
    // the export check: the export task, then the file in the bucket (src/lib/reconcile/observe.ts, S3 export)
    const bucket = `arn:${partition}:s3:::${cell.s3Export.bucket}`;
    groups.push(
      { name: 'export', actions: ['ec2:DescribeExportImageTasks'], resources: ['*'], statement: 'Observe' },
      {
        name: 'export-file',
        actions: ['s3:GetObject'],
        resources: [`${bucket}/${cell.s3Export.prefix ?? ''}export-ami-*`],
        statement: 'ExportRead',
      },
      { name: 'export-list', actions: ['s3:ListBucket'], resources: [bucket], statement: 'ExportList' },
    );
  }
  if ((cell.licenseConfigurationArns ?? []).length > 0) {
    groups.push(
      { name: 'license', actions: ['license-manager:ListLicenseSpecificationsForResource'], resources: ['*'], statement: 'LicenseRead' },
      {
        name: 'license-add',
        actions: ['license-manager:UpdateLicenseSpecificationsForResource'],
        resources: cell.licenseConfigurationArns ?? [],
        statement: 'LicenseAssociate',
      },
    );
  }
  if (cell.parameters.length > 0) {
    groups.push({
      name: 'SSM',
      actions: ['ssm:GetParameter', 'ssm:PutParameter'],
      resources: cell.parameters.map((p) => `arn:${partition}:ssm:${region}:${accountId}:parameter/${p.name.replace(/^\//, '')}`),
      statement: 'SsmParameters',
    });
  }
  return groups;
}

/**
 * The ARN IAM evaluates for a distribution's `kmsKeyId` in a cell: a key ARN as given; a bare key id is a key of
 * the account the copy is made in; an alias (name or ARN) stands for some key of its account (`key/*`: which one
 * only KMS can say). Undefined for no key or the AWS managed key `aws/ebs`, which needs no grant.
 */
function keyArn(partition: string, region: string, accountId: string, kmsKeyId: string | undefined): string | undefined {
  if (kmsKeyId === undefined || kmsKeyId === '' || /alias\/aws\/ebs$/.test(kmsKeyId)) return undefined;
  if (kmsKeyId.startsWith('arn:')) {
    const [, keyPartition, , keyRegion, keyAccount, resource] = kmsKeyId.split(':');
    return resource?.startsWith('alias/') === true
      ? `arn:${keyPartition ?? partition}:kms:${keyRegion ?? region}:${keyAccount ?? accountId}:key/*`
      : kmsKeyId;
  }
  if (kmsKeyId.startsWith('alias/')) return `arn:${partition}:kms:${region}:${accountId}:key/*`;
  return `arn:${partition}:kms:${region}:${accountId}:key/${kmsKeyId}`;
}

/** Cleanup: what the cleanup functions call in a cell (src/lib/cleanup/*). */
function cleanupGroups(partition: string, region: string, accountId: string, owner: DistributionConfigurationArn): CheckGroup[] {
  const image = `arn:${partition}:ec2:${region}::image/*`;
  return [
    {
      name: 'observe',
      actions: [
        'ec2:DescribeImages',
        'ec2:DescribeImageAttribute',
        'ec2:DescribeSnapshots',
        'ec2:DescribeInstances',
        'ec2:DescribeLaunchTemplates',
        'ec2:DescribeLaunchTemplateVersions',
        'ec2:DescribeImageReferences',
        'ec2:DescribeFastLaunchImages',
        'ec2:DescribeSpotFleetRequests',
        'ec2:DescribeFleets',
        'autoscaling:DescribeAutoScalingGroups',
        'autoscaling:DescribeLaunchConfigurations',
      ],
      resources: ['*'],
      statement: 'Observe',
    },
    {
      // the in-use check's other consumers (src/lib/cleanup/observe.ts): Spot Instance requests and stacks
      name: 'consumers',
      actions: ['ec2:DescribeSpotInstanceRequests', 'cloudformation:DescribeStacks'],
      resources: ['*'],
      statement: 'ConsumerReads',
    },
    {
      name: 'stacks',
      actions: ['cloudformation:GetTemplate'],
      resources: [`arn:${partition}:cloudformation:${region}:${accountId}:stack/*/*`],
      statement: 'StackTemplates',
    },
    {
      // AWS Batch compute environments and EMR clusters that name an AMI (src/lib/cleanup/observe.ts)
      name: 'batch-emr',
      actions: ['batch:DescribeComputeEnvironments', 'elasticmapreduce:ListClusters'],
      resources: ['*'],
      statement: 'BatchEmrReads',
    },
    {
      name: 'clusters',
      actions: ['elasticmapreduce:DescribeCluster', 'elasticmapreduce:ListInstanceGroups', 'elasticmapreduce:ListInstanceFleets'],
      resources: [`arn:${partition}:elasticmapreduce:${region}:${accountId}:cluster/*`],
      statement: 'EmrClusterReads',
    },
    {
      // DescribeImageReferences reads these through ec2-images.amazonaws.com (EC2 User Guide, "Identify your resources referencing specified AMIs")
      name: 'refs',
      actions: [
        'ssm:DescribeParameters',
        'ssm:GetParameters',
        'imagebuilder:ListImageRecipes',
        'imagebuilder:ListContainerRecipes',
        'imagebuilder:GetContainerRecipe',
      ],
      resources: ['*'],
      context: { 'aws:CalledVia': 'ec2-images.amazonaws.com' },
      statement: 'ImageReferencesDependentReads',
    },
    {
      name: 'retire',
      actions: ['ec2:DeregisterImage', 'ec2:DisableImage', 'ec2:EnableImageDeprecation'],
      resources: [image],
      // a target account's copies carry only the reconciler's tag (Image Builder gives them none of its own)
      context: { [`aws:ResourceTag/${SOURCE_IMAGE_TAG}`]: `arn:${partition}:imagebuilder:${owner.region}:${owner.accountId}:image/*` },
      statement: 'RetireReconciledImages',
    },
    {
      // cleanup marks the snapshots of an AMI it deregisters, then deletes those only
      name: 'mark',
      actions: ['ec2:CreateTags'],
      resources: [`arn:${partition}:ec2:${region}::snapshot/*`],
      context: { 'aws:TagKeys': RETIRING_TAG },
      statement: 'MarkRetiringSnapshots',
    },
    {
      name: 'snapshots',
      actions: ['ec2:DeleteSnapshot'],
      resources: [`arn:${partition}:ec2:${region}::snapshot/*`],
      context: { [`aws:ResourceTag/${RETIRING_TAG}`]: 'ami-00000000000000000' },
      statement: 'DeleteSnapshotsOfRetiredImages',
    },
  ];
}

/** A build of the configuration as GetImage would show it, for deriving what such a build asks for. */
function configurationImage(configuration: DistributionConfiguration, arn: DistributionConfigurationArn): Image {
  return {
    arn: `arn:${arn.partition}:imagebuilder:${arn.region}:${arn.accountId}:image/${arn.name}/0.0.0/1`,
    distributionConfiguration: configuration,
  };
}

interface PlanOptions {
  role: Role;
  fastLaunchInheritForTargets: boolean;
  /** RECONCILER_SHARED_ACCOUNTS is not `off`: the cells of accounts that only receive a launch permission (default: checked). */
  sharedAccounts?: boolean;
  /** RECONCILER_SHARED_ACCOUNTS is `require`: a shared cell without its role fails the run (default: it is skipped). */
  sharedRequired?: boolean;
  /** The accounts listed for the organizations and OUs shared with (RECONCILER_SHARED_ORGANIZATIONS): their shared cells too. */
  organizationAccounts?: ReadonlyMap<string, readonly string[]>;
  accounts?: string[] | undefined;
  regions?: string[] | undefined;
}

/** The cells of a configuration and the groups of actions each needs. Pure. */
function planChecks(configuration: DistributionConfiguration, arn: DistributionConfigurationArn, options: PlanOptions): CellPlan[] {
  // the cells a build of this configuration would have, as the reconciler derives them
  const desired = desiredImage(
    configurationImage(configuration, arn),
    // the accounts that only receive a launch permission are cells too (their tags), for the repair role only
    {
      fastLaunchInheritForTargets: options.fastLaunchInheritForTargets,
      sharedAccounts: options.role === 'repair' && options.sharedAccounts !== false,
      ...(options.organizationAccounts === undefined ? {} : { organizationAccounts: options.organizationAccounts }),
    },
  );
  return desired.cells
    .filter(
      (c) =>
        (options.accounts === undefined || options.accounts.includes(c.accountId)) &&
        (options.regions === undefined || options.regions.includes(c.region)),
    )
    .map((c) => ({
      region: c.region,
      accountId: c.accountId,
      groups:
        options.role === 'repair'
          ? repairGroups(arn.partition, c.region, c.accountId, c, arn)
          : cleanupGroups(arn.partition, c.region, c.accountId, arn),
      ...(c.origin === 'shared' && options.sharedRequired !== true ? { optional: true as const } : {}),
    }))
    .sort((a, b) => a.region.localeCompare(b.region) || a.accountId.localeCompare(b.accountId));
}

interface RunOptions {
  clients: ClientFactory;
  partition: string;
  roleName: string;
  role: Role;
}

/** Whether `iam` can simulate the role (a simulation of one action); false when IAM denies it or cannot see the role. */
async function canSimulate(iam: IAMClient, roleArn: string): Promise<boolean> {
  try {
    await iam.send(new SimulatePrincipalPolicyCommand({ PolicySourceArn: roleArn, ActionNames: ['sts:GetCallerIdentity'] }));
    return true;
  } catch (error: unknown) {
    if (
      error instanceof NoSuchEntityException ||
      (error instanceof Error && ['AccessDenied', 'AccessDeniedException'].includes(error.name))
    )
      return false;
    throw error;
  }
}

/** A role that cannot be assumed: does it exist? (IAM sees roles of the caller's account only: elsewhere this says no.) */
async function roleExists(iam: IAMClient, roleArn: string): Promise<boolean> {
  try {
    await iam.send(new SimulatePrincipalPolicyCommand({ PolicySourceArn: roleArn, ActionNames: ['sts:GetCallerIdentity'] }));
    return true;
  } catch (error: unknown) {
    if (error instanceof NoSuchEntityException) return false;
    if (error instanceof Error && ['AccessDenied', 'AccessDeniedException'].includes(error.name)) return false;
    throw error;
  }
}

/**
 * EC2 calls doctor also makes for real with `DryRun` (the describe calls that need no resource to name): EC2
 * answers DryRunOperation when the caller may make the request and UnauthorizedOperation when not (EC2 API
 * Reference, the DryRun parameter). Unlike the policy simulator, this is the request itself, evaluated with
 * everything that applies to it (service control policies, permission boundaries, session policies).
 */
const DRY_RUN: Record<string, (ec2: EC2Client) => Promise<unknown>> = {
  'ec2:DescribeImages': (ec2) => ec2.send(new DescribeImagesCommand({ DryRun: true, Owners: ['self'] })),
  'ec2:DescribeSnapshots': (ec2) => ec2.send(new DescribeSnapshotsCommand({ DryRun: true, OwnerIds: ['self'] })),
  'ec2:DescribeLaunchTemplates': (ec2) => ec2.send(new DescribeLaunchTemplatesCommand({ DryRun: true })),
  'ec2:DescribeFastLaunchImages': (ec2) => ec2.send(new DescribeFastLaunchImagesCommand({ DryRun: true })),
  'ec2:DescribeInstances': (ec2) => ec2.send(new DescribeInstancesCommand({ DryRun: true })),
  'ec2:DescribeSpotFleetRequests': (ec2) => ec2.send(new DescribeSpotFleetRequestsCommand({ DryRun: true })),
  'ec2:DescribeFleets': (ec2) => ec2.send(new DescribeFleetsCommand({ DryRun: true })),
  'ec2:DescribeSpotInstanceRequests': (ec2) => ec2.send(new DescribeSpotInstanceRequestsCommand({ DryRun: true })),
};

async function dryRun(ec2: EC2Client, action: string, call: (ec2: EC2Client) => Promise<unknown>): Promise<DryRunResult> {
  try {
    await call(ec2);
    // EC2 made the request in full: it was allowed
    return { action, result: 'allowed', code: 'Success' };
  } catch (error: unknown) {
    const failure = toFailure(error);
    if (failure.code === 'DryRunOperation') return { action, result: 'allowed', code: failure.code };
    if (failure.code === 'UnauthorizedOperation')
      return { action, result: 'denied', code: failure.code, explicitDeny: failure.message.includes('with an explicit deny') };
    return { action, result: 'unknown', code: failure.code };
  }
}

/**
 * The launch templates of a cell that have not opted in to the reconciler's writes (neither the opt-in tag nor
 * Image Builder's CreatedBy): the role's grant does not apply to them, so the reconciler would report them
 * failed. Read as the role, with DescribeLaunchTemplates (which the role may call).
 */
async function optInDenials(options: RunOptions, plan: CellPlan, ids: string[]): Promise<Denial[]> {
  const { ec2 } = await options.clients.forCell(plan.accountId, plan.region);
  const out = await ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateIds: ids }));
  return (out.LaunchTemplates ?? [])
    .filter((t) => {
      const tags = new Map((t.Tags ?? []).map((tag) => [tag.Key, tag.Value]));
      return tags.get(MANAGED_TEMPLATE_TAG) !== MANAGED_TEMPLATE_VALUE && tags.get(CREATED_BY_TAG) !== CREATED_BY_IMAGE_BUILDER;
    })
    .map((t) => ({
      action: 'ec2:CreateLaunchTemplateVersion',
      resource: `arn:${options.partition}:ec2:${plan.region}:${plan.accountId}:launch-template/${t.LaunchTemplateId ?? ''}`,
      decision: 'implicitDeny' as const,
      policy: undefined,
      fix: `launch template ${t.LaunchTemplateId ?? ''} has not opted in: tag it ${MANAGED_TEMPLATE_TAG}=${MANAGED_TEMPLATE_VALUE} (or ${CREATED_BY_TAG}=${CREATED_BY_IMAGE_BUILDER})`,
    }));
}

type TrustStatement = {
  Effect?: string;
  Action?: string | string[];
  Principal?: '*' | { AWS?: string | string[]; Service?: string | string[]; Federated?: string | string[] };
  Condition?: Record<string, Record<string, string | string[]>>;
};

/**
 * What a role's trust policy admits beyond specific roles: a principal that is an account (`<account>`,
 * `arn:…:root`) or everyone (`*`) lets in any principal of that account whose own policies allow
 * sts:AssumeRole (IAM User Guide, "AWS JSON policy elements: Principal"), unless an `aws:PrincipalArn`
 * condition (ArnEquals, ArnLike, StringEquals, StringLike) names the roles; a service or federated principal
 * is not one of the functions either. Pure; one line per finding.
 */
function trustFindings(document: { Statement?: TrustStatement | TrustStatement[] }): string[] {
  const statements = document.Statement === undefined ? [] : Array.isArray(document.Statement) ? document.Statement : [document.Statement];
  const findings: string[] = [];
  for (const statement of statements) {
    if (statement.Effect !== 'Allow') continue;
    const actions = [statement.Action ?? []].flat();
    if (!actions.some((a) => ['sts:assumerole', 'sts:*', '*'].includes(a.toLowerCase()))) continue;
    const named = Object.entries(statement.Condition ?? {})
      .filter(([operator]) => /^(ArnEquals|ArnLike|StringEquals|StringLike)$/.test(operator))
      .flatMap(([, block]) => Object.entries(block))
      .filter(([key]) => key.toLowerCase() === 'aws:principalarn')
      .flatMap(([, values]) => [values].flat());
    const narrowed = named.length > 0 && named.every((arn) => /^arn:aws[a-z-]*:iam::\d{12}:(role\/[^*?]+|root)$/.test(arn));
    const principal = statement.Principal;
    const aws = principal === '*' ? ['*'] : [principal?.AWS ?? []].flat();
    for (const p of aws) {
      if (/^arn:aws[a-z-]*:iam::\d{12}:role\//.test(p)) continue;
      if (!narrowed)
        findings.push(
          `trusts ${p === '*' ? 'every principal (*)' : p} without an aws:PrincipalArn condition naming the reconciler's roles: any principal there whose own policies allow sts:AssumeRole can assume it`,
        );
    }
    if (principal !== '*')
      for (const p of [principal?.Service ?? [], principal?.Federated ?? []].flat())
        findings.push(`trusts ${p}, which is not one of the reconciler's functions`);
  }
  return findings;
}

/** The role's trust policy, read by the role itself (iam:GetRole on itself, DoctorSelfCheck); undefined when it may not. */
async function readTrust(iam: IAMClient, roleName: string): Promise<string[] | undefined> {
  try {
    const out = await iam.send(new GetRoleCommand({ RoleName: roleName }));
    const text = out.Role?.AssumeRolePolicyDocument;
    if (text === undefined) return undefined;
    // IAM returns the document URL-encoded (IAM API Reference, GetRole: "a URL-encoded JSON string")
    return trustFindings(JSON.parse(decodeURIComponent(text)) as { Statement?: TrustStatement[] });
  } catch (error: unknown) {
    if (
      error instanceof SyntaxError ||
      (error instanceof Error && ['AccessDenied', 'AccessDeniedException', 'NoSuchEntity'].includes(error.name))
    )
      return undefined;
    throw error;
  }
}

/** Check each cell's groups; the role of each account is tried once (AssumeRole through the client factory). */
async function runDoctor(arn: DistributionConfigurationArn, plans: CellPlan[], options: RunOptions): Promise<DoctorReport> {
  const own = await options.clients.ownAccountId();
  const home = options.clients.homeClient(IAMClient);
  const accounts = new Map<string, AccountResult>();
  /** Where each account's role is simulated: IAM answers for roles of the caller's account only. */
  const simulators = new Map<string, IAMClient>();
  for (const accountId of [...new Set(plans.map((p) => p.accountId))].sort()) {
    const roleArn = `arn:${options.partition}:iam::${accountId}:role/${options.roleName}`;
    if (accountId === own) {
      accounts.set(accountId, {
        accountId,
        roleArn,
        status: 'own-account',
        reason: 'the reconciler works in its own account with its own role (not a target role): the deployment grants it',
      });
      continue;
    }
    const region = plans.find((p) => p.accountId === accountId)?.region ?? arn.region;
    let cell: Awaited<ReturnType<ClientFactory['forCell']>>;
    try {
      cell = await options.clients.forCell(accountId, region);
    } catch (error: unknown) {
      const failure = toFailure(error);
      accounts.set(
        accountId,
        (await roleExists(home, roleArn))
          ? {
              accountId,
              roleArn,
              status: 'cannot-assume',
              reason: `${failure.message}: its trust policy must let the reconciler's account assume it (ReconcilerRoleArn, ExternalId of infra/target-account-role.yaml)`,
            }
          : {
              accountId,
              roleArn,
              status: 'missing-role',
              reason: `no role ${options.roleName} in ${accountId} (${failure.code}): deploy infra/target-account-role.yaml there (RoleName ${options.roleName})`,
            },
      );
      continue;
    }
    // the role simulating its own policies (it needs iam:SimulatePrincipalPolicy on itself), else the caller
    const itself = cell.client(IAMClient);
    const simulator = (await canSimulate(itself, roleArn)) ? itself : (await canSimulate(home, roleArn)) ? home : undefined;
    if (simulator === undefined) {
      accounts.set(accountId, {
        accountId,
        roleArn,
        status: 'error',
        reason: `cannot simulate ${roleArn}: allow iam:SimulatePrincipalPolicy on it to the role itself (or run doctor with credentials of ${accountId})`,
      });
      continue;
    }
    simulators.set(accountId, simulator);
    const trust = await readTrust(itself, options.roleName);
    accounts.set(accountId, { accountId, roleArn, status: 'ok', ...(trust === undefined ? {} : { trust }) });
  }

  const cells: CellResult[] = [];
  for (const plan of plans) {
    const account = accounts.get(plan.accountId);
    if (account === undefined || account.status !== 'ok') {
      const status = account?.status ?? 'error';
      cells.push({
        region: plan.region,
        accountId: plan.accountId,
        status,
        groups: plan.groups.map((g) => ({ name: g.name, status: 'unchecked', denials: [], dryRun: [] })),
        ...(account?.reason === undefined ? {} : { reason: account.reason }),
        ...(plan.optional === true && (status === 'missing-role' || status === 'cannot-assume') ? { optional: true as const } : {}),
      });
      continue;
    }
    const groups: GroupResult[] = [];
    for (const group of plan.groups) {
      const results: EvaluationResult[] = [];
      let marker: string | undefined;
      do {
        const out = await (simulators.get(plan.accountId) ?? home).send(
          new SimulatePrincipalPolicyCommand({
            PolicySourceArn: account.roleArn,
            ActionNames: group.actions,
            ResourceArns: group.resources,
            ContextEntries: Object.entries(group.context ?? {}).map(([key, value]) => ({
              ContextKeyName: key,
              ContextKeyValues: [String(value)],
              ContextKeyType: typeof value === 'boolean' ? 'boolean' : 'string',
            })),
            ...(marker === undefined ? {} : { Marker: marker }),
          }),
        );
        results.push(...(out.EvaluationResults ?? []));
        marker = out.IsTruncated === true ? out.Marker : undefined;
      } while (marker !== undefined);
      const denials = results
        .filter((r) => r.EvalDecision !== 'allowed')
        .map((r): Denial => {
          const decision = r.EvalDecision === 'explicitDeny' ? 'explicitDeny' : 'implicitDeny';
          const policy = r.MatchedStatements?.[0]?.SourcePolicyId;
          const action = r.EvalActionName ?? '';
          const resource = r.EvalResourceName ?? '*';
          const fix =
            decision === 'explicitDeny'
              ? `remove ${action} from the Deny in policy ${policy ?? '(unknown)'} of role ${options.roleName} in ${plan.accountId}`
              : group.fix !== undefined
                ? group.fix.replaceAll('{role}', options.roleName).replaceAll('{action}', action)
                : `allow ${action} on ${resource} in role ${options.roleName} of ${plan.accountId}: statement ${group.statement} of infra/target-account-role.yaml`;
          return { action, resource, decision, policy, fix };
        });
      if (group.optIn !== undefined && group.optIn.length > 0) denials.push(...(await optInDenials(options, plan, group.optIn)));
      const dryRuns: DryRunResult[] = [];
      const calls = group.actions.flatMap((action) => {
        const call = DRY_RUN[action];
        return call === undefined ? [] : [{ action, call }];
      });
      if (calls.length > 0) {
        const { ec2 } = await options.clients.forCell(plan.accountId, plan.region);
        for (const { action, call } of calls) {
          const result = await dryRun(ec2, action, call);
          dryRuns.push(result);
          // refused by EC2 although the role's policies allow it: something outside the role denies it
          if (result.result === 'denied' && !denials.some((d) => d.action === action)) {
            denials.push({
              action,
              resource: '*',
              decision: result.explicitDeny === true ? 'explicitDeny' : 'implicitDeny',
              policy: undefined,
              fix: `the role's policies allow ${action}, but EC2 refused a DryRun request of it in ${plan.accountId}/${plan.region}: look for a Deny outside the role (service control policy, permission boundary)`,
            });
          }
        }
      }
      groups.push({ name: group.name, status: denials.length === 0 ? 'ok' : 'denied', denials, dryRun: dryRuns });
    }
    cells.push({
      region: plan.region,
      accountId: plan.accountId,
      status: groups.some((g) => g.status === 'denied') ? 'denied' : 'ok',
      groups,
    });
  }
  return {
    configuration: { arn: arn.arn },
    role: { kind: options.role, name: options.roleName },
    accounts: [...accounts.values()],
    cells,
    ok:
      cells.every((c) => c.status === 'ok' || c.status === 'own-account' || c.optional === true) &&
      [...accounts.values()].every((a) => (a.trust ?? []).length === 0),
  };
}

export { configurationImage, planChecks, runDoctor, trustFindings };
export type { AccountResult, CellPlan, CellResult, CheckGroup, Denial, DoctorReport, DryRunResult, GroupResult };
