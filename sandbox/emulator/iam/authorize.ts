import { createHash } from 'node:crypto';
import { partitionOf } from '../partition.ts';
import { AwsError } from '../protocol/errors.ts';
import type { Ctx } from '../server.ts';
import type { Role, SandboxState, Session } from '../state.ts';
import { parseSelector } from '../services/parameters.ts';
import { type AuthRequest, type Decision, type NamedPolicy, type RequestContext, evaluate, parsePolicy } from './policy.ts';

/**
 * Which IAM actions a request needs, on which resources, with which condition keys, and the answer each
 * service gives when IAM says no. Actions, resource ARN formats and condition keys are those of the
 * Service Authorization Reference ("Actions, resources, and condition keys for Amazon EC2 / EC2 Image
 * Builder / AWS Systems Manager / AWS STS / IAM / Amazon SQS / Amazon EventBridge").
 *
 * Only assumed-role sessions are evaluated. A plain 12-digit access key acts as the account itself with
 * every right (as an account's administrator would), and the sandbox's own calls (Image Builder acting in
 * EC2, scenario setup) carry no key at all.
 */

/** One authorization a request needs, with the error to answer when it is refused (default: the service's). */
interface Needed extends AuthRequest {
  /** Why this is needed beyond the operation's own action (documented dependent permission). */
  dependent?: string;
  /** A resource of another account whose resource-based policy (not modelled) does not allow the caller. */
  noResourcePolicy?: boolean;
}

type Input = Record<string, unknown>;

const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

function tagContext(prefixes: string[], tags: Map<string, string> | undefined): RequestContext {
  const out: RequestContext = {};
  for (const [key, value] of tags ?? []) for (const prefix of prefixes) out[`${prefix}/${key}`] = value;
  return out;
}

/** Tags of a resource as the calling account sees them (EC2 tags belong to the account that set them). */
function resourceTags(ctx: Ctx, id: string): Map<string, string> | undefined {
  const store = ctx.env.state.cell(ctx.account, ctx.region);
  const own = store.images.get(id) ?? store.snapshots.get(id) ?? store.launchTemplates.get(id);
  if (own !== undefined) return own.tags;
  for (const t of store.launchTemplates.values()) if (t.name === id) return t.tags;
  // an AMI shared with the caller: the tags the caller put on it (the owner's are not the caller's to see)
  if (id.startsWith('ami-')) return ctx.env.state.findImage(ctx.region, id)?.accountTags.get(ctx.account);
  return undefined;
}

/** The ARN of an EC2 resource from its id (AMIs and snapshots carry no account in their ARN). */
function ec2Arn(ctx: Ctx, id: string): string {
  const p = partitionOf(ctx.region);
  if (id.startsWith('ami-')) return `arn:${p}:ec2:${ctx.region}::image/${id}`;
  if (id.startsWith('snap-')) return `arn:${p}:ec2:${ctx.region}::snapshot/${id}`;
  if (id.startsWith('lt-')) return `arn:${p}:ec2:${ctx.region}:${ctx.account}:launch-template/${id}`;
  if (id.startsWith('i-')) return `arn:${p}:ec2:${ctx.region}:${ctx.account}:instance/${id}`;
  return `arn:${p}:ec2:${ctx.region}:${ctx.account}:*/${id}`;
}

function launchTemplateId(ctx: Ctx, id: unknown, name: unknown): string {
  if (typeof id === 'string') return id;
  const store = ctx.env.state.cell(ctx.account, ctx.region);
  for (const t of store.launchTemplates.values()) if (t.name === name) return t.id;
  return '*';
}

/** The condition keys of an EC2 resource: its tags, under both the global and the EC2 key names. */
function ec2Resource(ctx: Ctx, action: string, id: string, extra: RequestContext = {}): Needed {
  return {
    action,
    resource: ec2Arn(ctx, id),
    context: { ...tagContext(['aws:ResourceTag', 'ec2:ResourceTag'], resourceTags(ctx, id)), ...extra },
  };
}

const SLR_SERVICE = 'ec2fastlaunch.amazonaws.com';

/** What EnableFastLaunch needs besides ec2:EnableFastLaunch. */
function fastLaunchNeeds(ctx: Ctx, input: Input): Needed[] {
  const p = partitionOf(ctx.region);
  const imageId = str(input.ImageId) ?? '*';
  const lt = input.LaunchTemplate as { LaunchTemplateId?: string; LaunchTemplateName?: string; Version?: string } | undefined;
  const ltId = lt === undefined ? undefined : launchTemplateId(ctx, lt.LaunchTemplateId, lt.LaunchTemplateName);
  const needs: Needed[] = [ec2Resource(ctx, 'ec2:EnableFastLaunch', imageId)];
  if (ltId !== undefined) needs.push(ec2Resource(ctx, 'ec2:EnableFastLaunch', ltId));
  // The service-linked role AWSServiceRoleForEC2FastLaunch is created on the first enable in an account
  // (EC2 User Guide, "Service-linked role for EC2 Fast Launch": "When you start using faster launching ...
  // Amazon EC2 creates the service-linked role for you"); the caller needs iam:CreateServiceLinkedRole. Without
  // it EC2 refuses as it refuses any dependent permission: UnauthorizedOperation naming the denied action in
  // IAM's own words, "User: … is not authorized to perform: iam:CreateServiceLinkedRole on resource: …"
  // (IAM User Guide, "Troubleshoot access denied error messages"), with the encoded message.
  if (!ctx.env.state.serviceLinkedRoles.has(`${ctx.account}/${SLR_SERVICE}`)) {
    needs.push({
      action: 'iam:CreateServiceLinkedRole',
      resource: `arn:${p}:iam::${ctx.account}:role/aws-service-role/${SLR_SERVICE}/AWSServiceRoleForEC2FastLaunch`,
      context: { 'iam:AWSServiceName': SLR_SERVICE },
      dependent: 'EC2 creates the Fast Launch service-linked role on the first enable in an account',
    });
  }
  // without a launch template, EC2 Fast Launch builds its own network (asked before the launch check, which
  // then has no template to go through)
  if (lt === undefined) needs.push(fastLaunchNetworkNeed(ctx));
  // "Amazon EC2 checks to make sure that you have the required permissions to launch instances from the
  // specified AMI and Launch Template (if provided), including permissions for encrypted AMIs" (EC2 User
  // Guide, "Configure Windows fast launch settings"): the RunInstances rights on every resource a launch
  // touches (Service Authorization Reference, ec2:RunInstances resource types).
  const launch =
    'EnableFastLaunch checks that the caller may launch instances from the AMI (EC2 User Guide, configure Windows fast launch)';
  needs.push(...launchNeeds(ctx, imageId, ltId === undefined || ltId === '*' ? undefined : ltId).map((n) => ({ ...n, dependent: launch })));
  // an instance profile in the template is passed to the launched instances: iam:PassRole (IAM User Guide,
  // "Grant a user permissions to pass a role to an AWS service"; condition key iam:PassedToService)
  if (ltId !== undefined && ltId !== '*') {
    const template = ctx.env.state.cell(ctx.account, ctx.region).launchTemplates.get(ltId);
    const version = lt?.Version;
    const n =
      version === undefined || version === '$Default'
        ? template?.defaultVersion
        : version === '$Latest'
          ? template?.versions.length
          : Number(version);
    const data = template?.versions.find((v) => v.number === n)?.data;
    const profile = data?.IamInstanceProfile as { Arn?: string; Name?: string } | undefined;
    if (profile !== undefined) {
      const roleName = profile.Name ?? profile.Arn?.slice(profile.Arn.lastIndexOf('/') + 1) ?? '*';
      needs.push({
        action: 'iam:PassRole',
        resource: `arn:${p}:iam::${ctx.account}:role/${roleName}`,
        context: { 'iam:PassedToService': 'ec2.amazonaws.com' },
        dependent: 'the launch template names an instance profile, whose role is passed to the instances',
      });
    }
  }
  needs.push(...fastLaunchKeyNeeds(ctx, imageId));
  return needs;
}

/**
 * Without a launch template, EC2 Fast Launch builds its own network (a CloudFormation stack with a VPC,
 * private subnets, a security group and a launch template: EC2 User Guide, "Configure Windows fast launch
 * settings"; Image Builder User Guide, distribution settings, which asks for the managed policy
 * EC2FastLaunchFullAccess), with the caller's rights: that policy grants ec2:CreateVpc on vpc/* only with
 * aws:RequestTag/CreatedBy = "EC2 Fast Launch" and aws:CalledVia ec2fastlaunch.amazonaws.com. The sandbox
 * asks for that first right of the set (the rest of what the stack creates is not modelled).
 */
function fastLaunchNetworkNeed(ctx: Ctx): Needed {
  return {
    action: 'ec2:CreateVpc',
    resource: `arn:${partitionOf(ctx.region)}:ec2:${ctx.region}:${ctx.account}:vpc/*`,
    context: { 'aws:RequestTag/CreatedBy': 'EC2 Fast Launch', 'aws:TagKeys': ['CreatedBy'], 'aws:CalledVia': [SLR_SERVICE] },
    dependent:
      "without a launch template, EC2 Fast Launch creates its own VPC resources with the caller's rights (the managed policy EC2FastLaunchFullAccess grants them)",
  };
}

/**
 * ec2:RunInstances on every resource a launch touches (Service Authorization Reference, ec2:RunInstances
 * resource types): the AMI, the launch template when one is used, and the instance, volume, network
 * interface, subnet and security group. Each carries ec2:LaunchTemplate, the ARN of the template a launch
 * uses, when it uses one (same reference, Amazon EC2 condition keys: "Filters access by the ARN of a launch
 * template"); the resources carry their own tags.
 */
function launchNeeds(ctx: Ctx, imageId: string, ltId: string | undefined): Needed[] {
  const p = partitionOf(ctx.region);
  const via: RequestContext = ltId === undefined ? {} : { 'ec2:LaunchTemplate': ec2Arn(ctx, ltId) };
  return [
    ec2Resource(ctx, 'ec2:RunInstances', imageId, via),
    ...(ltId === undefined ? [] : [ec2Resource(ctx, 'ec2:RunInstances', ltId, via)]),
    ...['instance', 'volume', 'network-interface', 'subnet', 'security-group'].map((type) => ({
      action: 'ec2:RunInstances',
      resource: `arn:${p}:ec2:${ctx.region}:${ctx.account}:${type}/*`,
      context: via,
    })),
  ];
}

/** KMS actions a launch from an encrypted snapshot needs (EBS User Guide, "Requirements for Amazon EBS encryption", permissions for users). */
const EBS_KMS_ACTIONS = [
  'kms:CreateGrant',
  'kms:Decrypt',
  'kms:DescribeKey',
  'kms:GenerateDataKeyWithoutPlaintext',
  'kms:ReEncryptFrom',
  'kms:ReEncryptTo',
];

/**
 * EnableFastLaunch's launch check includes "permissions for encrypted AMIs": a launch creates volumes from
 * the AMI's snapshots, so the caller needs the EBS encryption rights on each customer managed key they are
 * encrypted with, through EC2 (kms:ViaService ec2.<region>.amazonaws.com), CreateGrant only for AWS
 * resources (kms:GrantIsForAWSResource). The AWS managed key aws/ebs needs none: its key policy allows every
 * principal of the account through EC2 (AWS KMS Developer Guide, "AWS managed keys"). The sandbox has no key
 * policies: it treats every key as having the default one, which lets the key's own account decide through
 * IAM and nobody else, so a key of another account is refused as AWS would refuse it without a key policy
 * statement for the caller (AWS KMS Developer Guide, "Default key policy"; "Allowing users in other accounts
 * to use a KMS key").
 */
function fastLaunchKeyNeeds(ctx: Ctx, imageId: string): Needed[] {
  const image = ctx.env.state.findImage(ctx.region, imageId);
  if (image === undefined) return [];
  const store = ctx.env.state.cell(image.ownerId, ctx.region);
  const keys = new Set<string>();
  for (const id of image.snapshotIds) {
    const snapshot = store.snapshots.get(id);
    if (snapshot?.encrypted === true && snapshot.kmsKeyId !== undefined && !/alias\/aws\/ebs$/.test(snapshot.kmsKeyId))
      keys.add(snapshot.kmsKeyId);
  }
  const dependent = "the AMI's snapshots are encrypted: launching from it (EnableFastLaunch's launch check) uses the KMS key through EC2";
  const needs: Needed[] = [];
  for (const key of keys) {
    const keyAccount = key.split(':')[4];
    for (const action of EBS_KMS_ACTIONS) {
      needs.push({
        action,
        resource: key,
        context: {
          'kms:ViaService': `ec2.${ctx.region}.amazonaws.com`,
          'kms:CallerAccount': ctx.account,
          ...(action === 'kms:CreateGrant' ? { 'kms:GrantIsForAWSResource': 'true' } : {}),
        },
        dependent,
        ...(keyAccount !== undefined && keyAccount !== ctx.account ? { noResourcePolicy: true } : {}),
      });
    }
  }
  return needs;
}

/**
 * DescribeImageReferences reads the referencing resources with the caller's rights, through the service
 * principal ec2-images.amazonaws.com (EC2 User Guide, "Identify your resources referencing specified
 * AMIs", required IAM permissions; the managed policy AmazonEC2ImageReferencesAccessPolicy grants these
 * with the condition aws:CalledVia = ec2-images.amazonaws.com).
 */
const REFERENCE_NEEDS: Record<string, string[]> = {
  'ec2:Instance': ['ec2:DescribeInstances'],
  'ec2:LaunchTemplate': ['ec2:DescribeLaunchTemplates', 'ec2:DescribeLaunchTemplateVersions'],
  'ssm:Parameter': ['ssm:DescribeParameters', 'ssm:GetParameters'],
  'imagebuilder:ImageRecipe': ['imagebuilder:ListImageRecipes'],
  'imagebuilder:ContainerRecipe': ['imagebuilder:ListContainerRecipes', 'imagebuilder:GetContainerRecipe'],
};

function imageReferenceNeeds(input: Input): Needed[] {
  const types =
    input.IncludeAllResourceTypes === true
      ? Object.keys(REFERENCE_NEEDS)
      : ((input.ResourceTypes as { ResourceType?: string }[] | undefined) ?? []).map((t) => t.ResourceType ?? '');
  const via = {
    'aws:CalledVia': ['ec2-images.amazonaws.com'],
    'aws:CalledViaFirst': 'ec2-images.amazonaws.com',
    'aws:CalledViaLast': 'ec2-images.amazonaws.com',
  };
  const needs: Needed[] = [{ action: 'ec2:DescribeImageReferences', resource: '*' }];
  for (const type of types) {
    for (const action of REFERENCE_NEEDS[type] ?? [])
      needs.push({
        action,
        resource: '*',
        context: via,
        dependent: `DescribeImageReferences reads ${type} references with the caller's rights (EC2 User Guide, "Identify your resources referencing specified AMIs")`,
      });
  }
  return needs;
}

function ec2Needs(ctx: Ctx, operation: string, input: Input): Needed[] {
  const action = `ec2:${operation}`;
  switch (operation) {
    case 'CreateTags':
    case 'DeleteTags': {
      const tags = (input.Tags as { Key?: string; Value?: string }[] | undefined) ?? [];
      const request: RequestContext = { 'aws:TagKeys': tags.map((t) => t.Key ?? '') };
      if (operation === 'CreateTags') for (const t of tags) request[`aws:RequestTag/${t.Key ?? ''}`] = t.Value ?? '';
      return ((input.Resources as string[] | undefined) ?? []).map((id) => ec2Resource(ctx, action, id, request));
    }
    case 'ModifyImageAttribute':
    case 'DisableImage':
    case 'EnableImage':
    case 'EnableImageDeprecation':
    case 'DisableImageDeprecation':
    case 'EnableImageDeregistrationProtection':
    case 'DisableImageDeregistrationProtection':
    case 'DisableFastLaunch':
    case 'CreateImageUsageReport':
    case 'DeregisterImage':
      // DeregisterImage with DeleteAssociatedSnapshots also needs ec2:DeleteSnapshot per snapshot; EC2 answers
      // missing-permissions for each it may not delete (DeregisterImage API reference, DeleteSnapshotResults),
      // so the handler asks for it snapshot by snapshot
      return [ec2Resource(ctx, action, str(input.ImageId) ?? '*')];
    case 'DeleteSnapshot':
      return [ec2Resource(ctx, action, str(input.SnapshotId) ?? '*')];
    case 'CreateLaunchTemplateVersion':
    case 'ModifyLaunchTemplate':
    case 'DeleteLaunchTemplate':
      return [ec2Resource(ctx, action, launchTemplateId(ctx, input.LaunchTemplateId, input.LaunchTemplateName))];
    case 'EnableFastLaunch':
      return fastLaunchNeeds(ctx, input);
    case 'DescribeImageReferences':
      return imageReferenceNeeds(input);
    case 'CopyImage':
      return [{ action, resource: `arn:${partitionOf(ctx.region)}:ec2:${ctx.region}::image/*` }];
    case 'TerminateInstances':
      return ((input.InstanceIds as string[] | undefined) ?? []).map((id) => ec2Resource(ctx, action, id));
    case 'RunInstances': {
      const lt = input.LaunchTemplate as { LaunchTemplateId?: string; LaunchTemplateName?: string } | undefined;
      const ltId = lt === undefined ? undefined : launchTemplateId(ctx, lt.LaunchTemplateId, lt.LaunchTemplateName);
      return launchNeeds(ctx, str(input.ImageId) ?? '*', ltId);
    }
    default:
      // Describe* and the rest: no resource-level permissions
      return [{ action, resource: '*' }];
  }
}

function imagebuilderNeeds(ctx: Ctx, operation: string, input: Input): Needed[] {
  // a workflow execution's steps are authorized on the execution (workflow-execution/<id>); SendWorkflowStepAction
  // names the image build, and is authorized on it (docs/aws-sources.md, "Distribution workflows")
  const execution = str(input.workflowExecutionId);
  if (execution !== undefined && operation !== 'SendWorkflowStepAction')
    return [
      {
        action: `imagebuilder:${operation}`,
        resource: `arn:${partitionOf(ctx.region)}:imagebuilder:${ctx.region}:${ctx.account}:workflow-execution/${execution}`,
      },
    ];
  const arn =
    str(input.imageBuildVersionArn) ??
    // TagResource / UntagResource name the resource in the path (Image Builder API Reference, TagResource)
    str(input.resourceArn) ??
    str(input.imageVersionArn) ??
    str(input.imagePipelineArn) ??
    str(input.distributionConfigurationArn) ??
    str(input.imageRecipeArn) ??
    str(input.infrastructureConfigurationArn);
  // List* of a kind (ListImagePipelines, ListDistributionConfigurations) and Create* name no resource yet
  const scoped = !/^(List(ImagePipelines|DistributionConfigurations|ImageRecipes|Images)$|Create)/.test(operation);
  return [{ action: `imagebuilder:${operation}`, resource: scoped && arn !== undefined ? arn : '*' }];
}

function parameterArn(ctx: Ctx, name: string): string {
  // a `:version` or `:label` selector is not part of the resource (GetParameter's Name, parameters.ts)
  return `arn:${partitionOf(ctx.region)}:ssm:${ctx.region}:${ctx.account}:parameter/${parseSelector(name).name.replace(/^\//, '')}`;
}

function ssmNeeds(ctx: Ctx, operation: string, input: Input): Needed[] {
  const name = str(input.Name);
  return [{ action: `ssm:${operation}`, resource: name === undefined ? '*' : parameterArn(ctx, name) }];
}

function queueArn(ctx: Ctx, input: Input): string {
  const url = str(input.QueueUrl);
  const name = url === undefined ? (str(input.QueueName) ?? '*') : url.slice(url.lastIndexOf('/') + 1);
  const account = url === undefined ? ctx.account : (/\/(\d{12})\/[^/]+$/.exec(url)?.[1] ?? ctx.account);
  return `arn:${partitionOf(ctx.region)}:sqs:${ctx.region}:${account}:${name}`;
}

function needsFor(ctx: Ctx, input: Input): Needed[] {
  const { service, operation } = ctx;
  const p = partitionOf(ctx.region);
  switch (service) {
    case 'ec2':
      return ec2Needs(ctx, operation, input);
    case 'imagebuilder':
      return imagebuilderNeeds(ctx, operation, input);
    case 'ssm':
      return ssmNeeds(ctx, operation, input);
    case 's3': {
      // S3's actions for these operations (Service Authorization Reference, "Actions defined by Amazon S3"):
      // HeadObject is s3:GetObject, HeadBucket and ListObjectsV2 are s3:ListBucket, on the object or bucket ARN
      const bucket = `arn:${p}:s3:::${str(input.Bucket) ?? '*'}`;
      const object = `${bucket}/${str(input.Key) ?? '*'}`;
      const actions: Record<string, [string, string]> = {
        CreateBucket: ['s3:CreateBucket', bucket],
        HeadBucket: ['s3:ListBucket', bucket],
        ListObjectsV2: ['s3:ListBucket', bucket],
        PutObject: ['s3:PutObject', object],
        GetObject: ['s3:GetObject', object],
        HeadObject: ['s3:GetObject', object],
        DeleteObject: ['s3:DeleteObject', object],
      };
      const [action, resource] = actions[operation] ?? [`s3:${operation}`, bucket];
      // s3:prefix of a listing: the prefix asked for, '' when none (S3 User Guide, "Bucket policy examples
      // using condition keys": a root-level listing matches "s3:prefix": [""])
      if (operation === 'ListObjectsV2') return [{ action, resource, context: { 's3:prefix': str(input.Prefix) ?? '' } }];
      return [{ action, resource }];
    }
    case 'sts':
      // "No permissions are required to perform this operation" (GetCallerIdentity API reference)
      if (operation === 'GetCallerIdentity') return [];
      if (operation === 'AssumeRole') {
        // aws:ResourceOrgID: the organization of the account that owns the role, present only when that
        // account is in one (IAM User Guide, "AWS global condition context keys")
        // aws:ResourceAccount: the account that owns the role (same page)
        const roleArn = str(input.RoleArn) ?? '*';
        const owner = roleArn.split(':')[4] ?? '';
        const organization = ctx.env.state.organizations.get(owner);
        return [
          {
            action: 'sts:AssumeRole',
            resource: roleArn,
            context: {
              ...(/^\d{12}$/.test(owner) ? { 'aws:ResourceAccount': owner } : {}),
              ...(organization === undefined ? {} : { 'aws:ResourceOrgID': organization }),
            },
          },
        ];
      }
      return [{ action: `sts:${operation}`, resource: '*' }];
    case 'iam': {
      const role = str(input.RoleName);
      if (operation === 'SimulatePrincipalPolicy')
        return [{ action: 'iam:SimulatePrincipalPolicy', resource: str(input.PolicySourceArn) ?? '*' }];
      return [{ action: `iam:${operation}`, resource: role === undefined ? '*' : `arn:${p}:iam::${ctx.account}:role/${role}` }];
    }
    case 'sqs':
      return [{ action: `sqs:${operation}`, resource: operation === 'ListQueues' ? '*' : queueArn(ctx, input) }];
    case 'events': {
      const entries = (input.Entries as { EventBusName?: string }[] | undefined) ?? [];
      const buses = [...new Set(entries.map((e) => e.EventBusName ?? 'default'))];
      return buses.map((bus) => ({
        action: `events:${operation}`,
        resource: bus.startsWith('arn:') ? bus : `arn:${p}:events:${ctx.region}:${ctx.account}:event-bus/${bus}`,
      }));
    }
    case 'organizations': {
      // the list operations for a parent act on that root or OU; the others take no resource (Service
      // Authorization Reference, "Actions, resources, and condition keys for AWS Organizations")
      const parent = typeof input.ParentId === 'string' ? input.ParentId : undefined;
      const organization = ctx.env.state.organizations.get(ctx.account);
      const managementAccount = organization === undefined ? undefined : ctx.env.state.organizationManagement.get(organization);
      if (parent === undefined || organization === undefined || managementAccount === undefined)
        return [{ action: `organizations:${operation}`, resource: '*' }];
      const kind = parent.startsWith('r-') ? 'root' : 'ou';
      return [
        {
          action: `organizations:${operation}`,
          resource: `arn:${p}:organizations::${managementAccount}:${kind}/${organization}/${parent}`,
        },
      ];
    }
    case 'license-manager': {
      // UpdateLicenseSpecificationsForResource acts on each license configuration it names; the list takes no
      // resource (Service Authorization Reference, "Actions, resources, and condition keys for AWS License Manager")
      if (operation !== 'UpdateLicenseSpecificationsForResource') return [{ action: `license-manager:${operation}`, resource: '*' }];
      const specs = [
        ...((input.AddLicenseSpecifications as { LicenseConfigurationArn?: string }[] | undefined) ?? []),
        ...((input.RemoveLicenseSpecifications as { LicenseConfigurationArn?: string }[] | undefined) ?? []),
      ];
      const arns = [...new Set(specs.map((s) => s.LicenseConfigurationArn ?? '*'))];
      return (arns.length === 0 ? ['*'] : arns).map((resource) => ({
        action: 'license-manager:UpdateLicenseSpecificationsForResource',
        resource,
      }));
    }
    case 'cloudformation': {
      // DescribeStacks and GetTemplate act on the stack they name; DescribeStacks without a name lists every
      // stack (Service Authorization Reference, "Actions, resources, and condition keys for AWS CloudFormation":
      // resource type stack, arn:${Partition}:cloudformation:${Region}:${Account}:stack/${StackName}/${Id})
      const name = str(input.StackName);
      const resource =
        name === undefined
          ? '*'
          : name.startsWith('arn:')
            ? name
            : ([...ctx.env.state.cell(ctx.account, ctx.region).stacks.values()].find((s) => s.name === name)?.stackId ??
              `arn:${p}:cloudformation:${ctx.region}:${ctx.account}:stack/${name}/*`);
      return [{ action: `cloudformation:${operation}`, resource }];
    }
    case 'batch': {
      // DescribeComputeEnvironments supports no resource-level permissions; the others act on the compute
      // environment (Service Authorization Reference, "Actions, resources, and condition keys for AWS Batch":
      // resource type compute-environment, arn:${Partition}:batch:${Region}:${Account}:compute-environment/${ComputeEnvironmentName})
      if (operation === 'DescribeComputeEnvironments') return [{ action: 'batch:DescribeComputeEnvironments', resource: '*' }];
      const name = str(input.computeEnvironmentName) ?? str(input.computeEnvironment) ?? '*';
      return [
        {
          action: `batch:${operation}`,
          resource: name.startsWith('arn:') ? name : `arn:${p}:batch:${ctx.region}:${ctx.account}:compute-environment/${name}`,
        },
      ];
    }
    case 'elasticmapreduce': {
      // ListClusters and RunJobFlow support no resource-level permissions; the others act on the cluster
      // (Service Authorization Reference, "Actions, resources, and condition keys for Amazon EMR": resource type
      // cluster, arn:${Partition}:elasticmapreduce:${Region}:${Account}:cluster/${ClusterId})
      const ids = operation === 'TerminateJobFlows' ? ((input.JobFlowIds as string[] | undefined) ?? []) : [str(input.ClusterId)];
      if (operation === 'ListClusters' || operation === 'RunJobFlow' || ids.length === 0)
        return [{ action: `elasticmapreduce:${operation}`, resource: '*' }];
      return ids.map((id) => ({
        action: `elasticmapreduce:${operation}`,
        resource: `arn:${p}:elasticmapreduce:${ctx.region}:${ctx.account}:cluster/${id ?? '*'}`,
      }));
    }
    case 'dynamodb':
      // item actions act on the table (Service Authorization Reference, "Actions, resources, and condition keys
      // for Amazon DynamoDB": resource type table, arn:${Partition}:dynamodb:${Region}:${Account}:table/${TableName})
      return [
        {
          action: `dynamodb:${operation}`,
          resource: `arn:${p}:dynamodb:${ctx.region}:${ctx.account}:table/${str(input.TableName) ?? '*'}`,
        },
      ];
    default:
      return [{ action: `${service}:${operation}`, resource: '*' }];
  }
}

/** The permission policies of a role: its inline policies, then its attached managed policies. */
function rolePolicies(state: SandboxState, role: Role): NamedPolicy[] {
  const out: NamedPolicy[] = [];
  for (const [name, document] of role.inlinePolicies) out.push({ source: `inline:${name}`, document: parsePolicy(document) });
  for (const arn of role.attachedPolicies) {
    const policy = state.managedPolicies.get(arn);
    if (policy !== undefined) out.push({ source: arn, document: parsePolicy(policy.document) });
  }
  return out;
}

function roleOfSession(state: SandboxState, session: Session): Role | undefined {
  const name = session.roleArn.slice(session.roleArn.lastIndexOf('/') + 1);
  return state.rolesOf(session.accountId).get(name);
}

/** One evaluated authorization, as the request log keeps it (the permission proof reads these). */
interface Authorization {
  principal: string;
  action: string;
  resource: string;
  decision: Decision['decision'];
  dependent: boolean;
  /** The statement that decided: `<policy source>#<Sid or index>` (the Allow, or the Deny); none for an implicit deny. */
  statement: string | undefined;
}

const statementOf = (decision: Decision): string | undefined =>
  decision.matched === undefined ? undefined : `${decision.matched.source}#${decision.matched.sid ?? decision.matched.index}`;

function sessionOf(ctx: Ctx): Session | undefined {
  return ctx.accessKeyId === undefined ? undefined : ctx.env.state.sessions.get(ctx.accessKeyId);
}

function assumedRoleArn(session: Session): string {
  const name = session.roleArn.slice(session.roleArn.lastIndexOf('/') + 1);
  return `arn:${session.roleArn.split(':')[1] ?? 'aws'}:sts::${session.accountId}:assumed-role/${name}/${session.sessionName}`;
}

/** Evaluate one request for the caller; undefined when the caller is not an assumed role (full rights). */
function decide(ctx: Ctx, request: AuthRequest): Decision | undefined {
  const session = sessionOf(ctx);
  if (session === undefined) return undefined;
  const role = roleOfSession(ctx.env.state, session);
  // a session of a role that no longer exists is refused everything
  if (role === undefined) return { decision: 'implicitDeny', matched: undefined };
  return evaluate(rolePolicies(ctx.env.state, role), request);
}

/** The error a service answers when IAM refuses a request. */
function denial(ctx: Ctx, caller: string, need: Needed, decision: Decision): AwsError {
  const why =
    decision.decision === 'explicitDeny'
      ? 'with an explicit deny in an identity-based policy'
      : decision.resourcePolicy === true
        ? `because no resource-based policy allows the ${need.action} action`
        : `because no identity-based policy allows the ${need.action} action`;
  const message = `User: ${caller} is not authorized to perform: ${need.action} on resource: ${need.resource} ${why}`;
  switch (ctx.service) {
    case 'ec2': {
      // EC2 answers UnauthorizedOperation with an encoded message (sts:DecodeAuthorizationMessage decodes it)
      const encoded = encodeAuthorizationMessage(ctx, {
        allowed: false,
        explicitDeny: decision.decision === 'explicitDeny',
        matchedStatements: decision.matched === undefined ? [] : [decision.matched],
        context: { principal: caller, action: need.action, resource: need.resource, conditions: need.context ?? {} },
      });
      return new AwsError(
        'UnauthorizedOperation',
        `You are not authorized to perform this operation. ${message}. Encoded authorization failure message: ${encoded}`,
        403,
      );
    }
    case 'imagebuilder':
      return new AwsError('AccessDeniedException', message, 403);
    case 'batch':
      return new AwsError('AccessDeniedException', message, 403);
    case 'ssm':
    case 'events':
    case 'elasticmapreduce':
    case 'dynamodb':
    case 'organizations':
      return new AwsError('AccessDeniedException', message, 400);
    case 'sqs':
      return new AwsError('AccessDenied', message, 403);
    case 'license-manager':
      // License Manager's model gives AccessDeniedException HTTP 401
      return new AwsError('AccessDeniedException', message, 401);
    default:
      return new AwsError('AccessDenied', message, 403);
  }
}

/** Encoded authorization messages, kept so that sts:DecodeAuthorizationMessage can answer with them. */
function encodeAuthorizationMessage(ctx: Ctx, message: unknown): string {
  const text = JSON.stringify(message);
  const token = createHash('sha256').update(text).update(ctx.requestId).digest('base64url');
  ctx.env.state.authorizationMessages.set(token, text);
  return token;
}

/**
 * Authorize a request before its handler runs: every needed (action, resource) must be allowed. Throws the
 * service's own refusal naming the first refused action. Returns what was evaluated (empty for callers
 * with full rights).
 */
function authorize(ctx: Ctx, input: Input): Authorization[] {
  const session = sessionOf(ctx);
  if (session === undefined) return [];
  const caller = assumedRoleArn(session);
  const evaluated: Authorization[] = [];
  for (const need of needsFor(ctx, input)) {
    const identity = decide(ctx, need) ?? { decision: 'allow', matched: undefined };
    // cross-account access needs both sides: the caller's identity policy and the resource's own policy
    const decision: Decision =
      identity.decision === 'allow' && need.noResourcePolicy === true
        ? { decision: 'implicitDeny', matched: undefined, resourcePolicy: true }
        : identity;
    evaluated.push({
      principal: session.roleArn,
      action: need.action,
      resource: need.resource,
      decision: decision.decision,
      dependent: need.dependent !== undefined,
      statement: statementOf(decision),
    });
    ctx.authorizations.push(evaluated.at(-1) as Authorization);
    if (decision.decision !== 'allow') throw denial(ctx, caller, need, decision);
  }
  return evaluated;
}

/** Whether the caller may perform an action a handler needs conditionally (recorded like the rest). */
function allowed(ctx: Ctx, request: AuthRequest): boolean {
  const session = sessionOf(ctx);
  const decision = decide(ctx, request);
  if (session === undefined || decision === undefined) return true;
  ctx.authorizations.push({
    principal: session.roleArn,
    action: request.action,
    resource: request.resource,
    decision: decision.decision,
    dependent: true,
    statement: statementOf(decision),
  });
  return decision.decision === 'allow';
}

export { allowed, authorize, ec2Arn, needsFor, rolePolicies };
export type { Authorization, Needed };
