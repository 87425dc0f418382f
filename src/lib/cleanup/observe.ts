import { AutoScalingClient, paginateDescribeAutoScalingGroups, paginateDescribeLaunchConfigurations } from '@aws-sdk/client-auto-scaling';
import { BatchClient, paginateDescribeComputeEnvironments } from '@aws-sdk/client-batch';
import { CloudFormationClient, GetTemplateCommand, paginateDescribeStacks } from '@aws-sdk/client-cloudformation';
import {
  CreateImageUsageReportCommand,
  DescribeImageAttributeCommand,
  DescribeImageUsageReportsCommand,
  DescribeLaunchTemplateVersionsCommand,
  type Image as Ec2Image,
  paginateDescribeFastLaunchImages,
  paginateDescribeFleets,
  paginateDescribeImageReferences,
  paginateDescribeImageUsageReportEntries,
  paginateDescribeSnapshots,
  paginateDescribeSpotFleetRequests,
  paginateDescribeSpotInstanceRequests,
} from '@aws-sdk/client-ec2';
import {
  DescribeClusterCommand,
  EMRClient,
  paginateListClusters,
  paginateListInstanceFleets,
  paginateListInstanceGroups,
} from '@aws-sdk/client-emr';
import type { CellClients, ClientFactory } from '../aws/clients.ts';
import { describeImagesById } from '../aws/images.ts';
import { cellKey } from '../core/cells.ts';
import { AssumeRoleError, AwsCallError, type Failure, briefFailure, toFailure } from '../core/errors.ts';
import { type AmiObservation, type CleanupSettings, type InventoryAmi, amiKey } from './plan.ts';

type ImageInfo = NonNullable<Extract<AmiObservation['image'], { ok: true }>['value']>;

function toImageInfo(image: Ec2Image, snapshots: Map<string, number>): ImageInfo {
  return {
    ownerId: image.OwnerId ?? '',
    state: image.State ?? 'unknown',
    creationDate: image.CreationDate,
    tags: Object.fromEntries((image.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? ''])),
    deregistrationProtection: image.DeregistrationProtection,
    public: image.Public === true,
    deprecationTime: image.DeprecationTime,
    lastLaunchedTime: image.LastLaunchedTime,
    snapshots: (image.BlockDeviceMappings ?? [])
      .map((m) => m.Ebs?.SnapshotId)
      .filter((id): id is string => id !== undefined)
      .map((snapshotId) => ({ snapshotId, sizeGiB: snapshots.get(snapshotId) ?? 0 })),
  };
}

async function describe(clients: CellClients, imageIds: string[]): Promise<Map<string, Ec2Image>> {
  return describeImagesById(clients.ec2, imageIds);
}

async function snapshotSizes(clients: CellClients, snapshotIds: string[]): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  if (snapshotIds.length === 0) return sizes;
  for await (const page of paginateDescribeSnapshots(
    { client: clients.ec2 },
    { OwnerIds: ['self'], Filters: [{ Name: 'snapshot-id', Values: snapshotIds }] },
  )) {
    for (const s of page.Snapshots ?? []) if (s.SnapshotId !== undefined) sizes.set(s.SnapshotId, s.VolumeSize ?? 0);
  }
  return sizes;
}

/**
 * `DescribeImageReferences` with every resource type and explicit options, not AWS's defaults: instances in
 * every state but `terminated` (with `IncludeAllResourceTypes`, AWS counts terminated and shutting-down
 * instances too, and checks only the 10 newest launch template versions). A stopped instance keeps its AMI:
 * it can be started again. A terminated one does not. Launch templates are checked to the deepest
 * `version-depth` AWS allows (10,000, also the most versions a template can have), so every version counts.
 * EC2 API Reference, DescribeImageReferences / ResourceTypeOption; EC2 quotas: 10,000 versions per template.
 */
const REFERENCE_TYPES = [
  {
    ResourceType: 'ec2:Instance' as const,
    ResourceTypeOptions: [
      { OptionName: 'state-name' as const, OptionValues: ['pending', 'running', 'shutting-down', 'stopping', 'stopped'] },
    ],
  },
  { ResourceType: 'ec2:LaunchTemplate' as const, ResourceTypeOptions: [{ OptionName: 'version-depth' as const, OptionValues: ['10000'] }] },
  { ResourceType: 'ssm:Parameter' as const },
  { ResourceType: 'imagebuilder:ImageRecipe' as const },
  { ResourceType: 'imagebuilder:ContainerRecipe' as const },
];

type Reference = { resourceType: string; arn: string };

async function imageReferences(clients: CellClients, imageIds: string[]): Promise<Map<string, Reference[]>> {
  const refs = new Map<string, Reference[]>(imageIds.map((id) => [id, []]));
  for (let i = 0; i < imageIds.length; i += 10) {
    const batch = imageIds.slice(i, i + 10);
    for await (const page of paginateDescribeImageReferences(
      { client: clients.ec2 },
      { ImageIds: batch, ResourceTypes: REFERENCE_TYPES },
    )) {
      for (const ref of page.ImageReferences ?? [])
        refs.get(ref.ImageId ?? '')?.push({ resourceType: ref.ResourceType ?? '', arn: ref.Arn ?? '' });
    }
  }
  return refs;
}

/** Resolve launch template versions to the AMI they launch (`resolve:ssm:` resolved), cached per run of one cell. */
function templateResolver(
  clients: CellClients,
): (spec: { id?: string | undefined; name?: string | undefined; version?: string | undefined }) => Promise<string | undefined> {
  const cache = new Map<string, Promise<string | undefined>>();
  return (spec) => {
    const version = spec.version ?? '$Default';
    const key = `${spec.id ?? ''}/${spec.name ?? ''}/${version}`;
    let hit = cache.get(key);
    if (hit === undefined) {
      hit = clients.ec2
        .send(
          new DescribeLaunchTemplateVersionsCommand({
            ...(spec.id === undefined ? { LaunchTemplateName: spec.name } : { LaunchTemplateId: spec.id }),
            Versions: [version],
            ResolveAlias: true,
          }),
        )
        .then((out) => out.LaunchTemplateVersions?.[0]?.LaunchTemplateData?.ImageId);
      cache.set(key, hit);
    }
    return hit;
  };
}

/**
 * What `DescribeImageReferences` does not cover: Auto Scaling groups (a pinned launch template version, a
 * mixed-instances policy, or a launch configuration), launch configurations themselves (they name an AMI
 * directly, used or not), and Spot Fleet and EC2 Fleet requests that can still launch (their launch
 * specifications, launch template versions and overrides). Auto Scaling API Reference,
 * DescribeAutoScalingGroups / DescribeLaunchConfigurations; EC2 API Reference, DescribeSpotFleetRequests /
 * DescribeFleets. Any failure is thrown: unknown means keep.
 */
async function fleetReferences(clients: CellClients, imageIds: string[]): Promise<Map<string, Reference[]>> {
  const refs = new Map<string, Reference[]>(imageIds.map((id) => [id, []]));
  const add = (imageId: string | undefined, ref: Reference) => {
    const list = refs.get(imageId ?? '');
    if (list !== undefined && !list.some((r) => r.arn === ref.arn)) list.push(ref);
  };
  const resolve = templateResolver(clients);
  const lcImages = new Map<string, string | undefined>();
  for await (const page of paginateDescribeLaunchConfigurations({ client: clients.client(AutoScalingClient) }, {})) {
    for (const lc of page.LaunchConfigurations ?? []) {
      lcImages.set(lc.LaunchConfigurationName ?? '', lc.ImageId);
      add(lc.ImageId, {
        resourceType: 'autoscaling:LaunchConfiguration',
        arn: lc.LaunchConfigurationARN ?? lc.LaunchConfigurationName ?? '',
      });
    }
  }
  for await (const page of paginateDescribeAutoScalingGroups({ client: clients.client(AutoScalingClient) }, {})) {
    for (const group of page.AutoScalingGroups ?? []) {
      const ref = { resourceType: 'autoscaling:AutoScalingGroup', arn: group.AutoScalingGroupARN ?? group.AutoScalingGroupName ?? '' };
      if (group.LaunchConfigurationName !== undefined) add(lcImages.get(group.LaunchConfigurationName), ref);
      const specs = [
        group.LaunchTemplate,
        group.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification,
        ...(group.MixedInstancesPolicy?.LaunchTemplate?.Overrides ?? []).map((o) => o.LaunchTemplateSpecification),
      ];
      for (const spec of specs) {
        if (spec === undefined) continue;
        add(await resolve({ id: spec.LaunchTemplateId, name: spec.LaunchTemplateName, version: spec.Version }), ref);
      }
    }
  }
  for await (const page of paginateDescribeSpotFleetRequests({ client: clients.ec2 }, {})) {
    for (const fleet of page.SpotFleetRequestConfigs ?? []) {
      if (fleet.SpotFleetRequestState === 'cancelled' || fleet.SpotFleetRequestState === 'cancelled_terminating') continue;
      const ref = { resourceType: 'ec2:SpotFleetRequest', arn: fleet.SpotFleetRequestId ?? '' };
      for (const spec of fleet.SpotFleetRequestConfig?.LaunchSpecifications ?? []) add(spec.ImageId, ref);
      for (const config of fleet.SpotFleetRequestConfig?.LaunchTemplateConfigs ?? []) {
        const spec = config.LaunchTemplateSpecification;
        if (spec !== undefined)
          add(await resolve({ id: spec.LaunchTemplateId, name: spec.LaunchTemplateName, version: spec.Version }), ref);
      }
    }
  }
  for await (const page of paginateDescribeFleets({ client: clients.ec2 }, {})) {
    for (const fleet of page.Fleets ?? []) {
      if (fleet.FleetState === 'deleted' || fleet.FleetState === 'deleted_terminating' || fleet.FleetState === 'failed') continue;
      const ref = { resourceType: 'ec2:Fleet', arn: fleet.FleetId ?? '' };
      for (const config of fleet.LaunchTemplateConfigs ?? []) {
        const spec = config.LaunchTemplateSpecification;
        if (spec !== undefined)
          add(await resolve({ id: spec.LaunchTemplateId, name: spec.LaunchTemplateName, version: spec.Version }), ref);
        for (const override of config.Overrides ?? []) add(override.ImageId, ref);
      }
    }
  }
  return refs;
}

/** Spot Instance request states in which the request can still launch an instance (or holds one that may restart). */
const LIVE_SPOT_STATES: readonly string[] = ['open', 'active', 'disabled'];

/**
 * Spot Instance requests that can still launch from the AMI: `open` (one-time or persistent, not fulfilled
 * yet, or a persistent one whose instance was interrupted or terminated and is launched again), `active`,
 * and `disabled` (a persistent request whose instance is stopped). `closed`, `cancelled` and `failed`
 * requests launch nothing. EC2 User Guide, "Spot Instance request states"; EC2 API Reference,
 * DescribeSpotInstanceRequests. Any failure is thrown: unknown means keep.
 */
async function spotRequestReferences(clients: CellClients, imageIds: string[]): Promise<Map<string, Reference[]>> {
  const refs = new Map<string, Reference[]>(imageIds.map((id) => [id, []]));
  for await (const page of paginateDescribeSpotInstanceRequests({ client: clients.ec2 }, {})) {
    for (const request of page.SpotInstanceRequests ?? []) {
      if (!LIVE_SPOT_STATES.includes(request.State ?? '')) continue;
      refs.get(request.LaunchSpecification?.ImageId ?? '')?.push({
        resourceType: 'ec2:SpotInstanceRequest',
        arn: `${request.SpotInstanceRequestId ?? '?'} (${request.Type ?? 'one-time'}, ${request.State ?? '?'})`,
      });
    }
  }
  return refs;
}

/**
 * CloudFormation stacks that name the AMI: a parameter whose value (or, for an SSM parameter type, resolved
 * value) is the AMI ID, whatever its declared type (`AWS::EC2::Image::Id`,
 * `AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>`, or a plain String), or a template that contains the AMI
 * ID (a mapping of AMIs per region, an `ImageId` written out). The next update of such a stack, or a
 * replacement of its instances, needs the AMI. Every stack not deleted (DescribeStacks lists those), each
 * template as submitted (GetTemplate, stage Original). CloudFormation API Reference, DescribeStacks /
 * GetTemplate; User Guide, "CloudFormation-supplied parameter types". Any failure is thrown: unknown means keep.
 */
async function stackReferences(clients: CellClients, imageIds: string[]): Promise<Map<string, Reference[]>> {
  const refs = new Map<string, Reference[]>(imageIds.map((id) => [id, []]));
  const cfn = clients.client(CloudFormationClient);
  const stacks: { id: string; parameters: string[] }[] = [];
  for await (const page of paginateDescribeStacks({ client: cfn }, {})) {
    for (const stack of page.Stacks ?? []) {
      if (stack.StackStatus === 'DELETE_COMPLETE' || stack.StackId === undefined) continue;
      const values = (stack.Parameters ?? []).flatMap((p) => [p.ParameterValue, p.ResolvedValue]);
      stacks.push({ id: stack.StackId, parameters: values.filter((v): v is string => v !== undefined) });
    }
  }
  const templates = await Promise.all(
    stacks.map(async (stack) => (await cfn.send(new GetTemplateCommand({ StackName: stack.id }))).TemplateBody ?? ''),
  );
  stacks.forEach((stack, i) => {
    const body = templates[i] ?? '';
    for (const imageId of imageIds) {
      const parameter = stack.parameters.some((v) =>
        v
          .split(',')
          .map((x) => x.trim())
          .includes(imageId),
      );
      const inTemplate = body.includes(imageId);
      if (parameter || inTemplate)
        refs.get(imageId)?.push({
          resourceType: 'cloudformation:Stack',
          arn: `${stack.id} (${[parameter ? 'parameter' : '', inTemplate ? 'template' : ''].filter((x) => x !== '').join(' and ')})`,
        });
    }
  });
  return refs;
}

/**
 * AWS Batch compute environments that launch from the AMI: `computeResources.imageId`, or an
 * `ec2Configuration[].imageIdOverride` (which overrides it for one image type). Every environment whose
 * status is not `DELETED` counts, enabled or disabled, scaled to zero or not: it launches from the AMI the
 * next time it scales out. A launch template it names is covered by DescribeImageReferences. AWS Batch API
 * Reference, DescribeComputeEnvironments / ComputeResource / Ec2Configuration. Any failure is thrown:
 * unknown means keep.
 */
async function batchReferences(clients: CellClients, imageIds: string[]): Promise<Map<string, Reference[]>> {
  const refs = new Map<string, Reference[]>(imageIds.map((id) => [id, []]));
  for await (const page of paginateDescribeComputeEnvironments({ client: clients.client(BatchClient) }, {})) {
    for (const env of page.computeEnvironments ?? []) {
      if (env.status === 'DELETED') continue;
      const named = new Set([
        env.computeResources?.imageId,
        ...(env.computeResources?.ec2Configuration ?? []).map((c) => c.imageIdOverride),
      ]);
      const arn = env.computeEnvironmentArn ?? env.computeEnvironmentName ?? '?';
      for (const imageId of named)
        refs
          .get(imageId ?? '')
          ?.push({ resourceType: 'batch:ComputeEnvironment', arn: `${arn} (${env.state ?? '?'}, ${env.status ?? '?'})` });
    }
  }
  return refs;
}

/** EMR cluster states in which a cluster can still launch instances from its AMI (every state but the terminated ones). */
const LIVE_EMR_STATES = ['STARTING', 'BOOTSTRAPPING', 'RUNNING', 'WAITING', 'TERMINATING'] as const;

/**
 * Amazon EMR clusters not terminated that launch from the AMI: the cluster's `CustomAmiId`
 * (DescribeCluster), an instance group's `CustomAmiId` (ListInstanceGroups, uniform instance groups) or an
 * instance type's `CustomAmiId` in an instance fleet (ListInstanceFleets, instance fleets), each overriding
 * the cluster's for its instances. A resize, or a replaced node, launches from it. Amazon EMR API Reference,
 * ListClusters / DescribeCluster / ListInstanceGroups / ListInstanceFleets; EMR Management Guide, "Using a
 * custom AMI". Any failure is thrown: unknown means keep.
 */
async function emrReferences(clients: CellClients, imageIds: string[]): Promise<Map<string, Reference[]>> {
  const refs = new Map<string, Reference[]>(imageIds.map((id) => [id, []]));
  const emr = clients.client(EMRClient);
  const ids: string[] = [];
  for await (const page of paginateListClusters({ client: emr }, { ClusterStates: [...LIVE_EMR_STATES] })) {
    for (const c of page.Clusters ?? []) if (c.Id !== undefined) ids.push(c.Id);
  }
  await Promise.all(
    ids.map(async (id) => {
      const cluster = (await emr.send(new DescribeClusterCommand({ ClusterId: id }))).Cluster;
      const state = cluster?.Status?.State ?? '?';
      if (state === 'TERMINATED' || state === 'TERMINATED_WITH_ERRORS') return;
      const named = new Map<string, string>();
      if (cluster?.CustomAmiId !== undefined) named.set(cluster.CustomAmiId, 'cluster');
      if (cluster?.InstanceCollectionType === 'INSTANCE_FLEET') {
        for await (const page of paginateListInstanceFleets({ client: emr }, { ClusterId: id })) {
          for (const fleet of page.InstanceFleets ?? [])
            for (const spec of fleet.InstanceTypeSpecifications ?? [])
              if (spec.CustomAmiId !== undefined && !named.has(spec.CustomAmiId))
                named.set(spec.CustomAmiId, `instance fleet ${fleet.Id ?? '?'}`);
        }
      } else {
        for await (const page of paginateListInstanceGroups({ client: emr }, { ClusterId: id })) {
          for (const group of page.InstanceGroups ?? [])
            if (group.CustomAmiId !== undefined && !named.has(group.CustomAmiId))
              named.set(group.CustomAmiId, `instance group ${group.Id ?? '?'}`);
        }
      }
      for (const [imageId, where] of named)
        refs.get(imageId)?.push({ resourceType: 'elasticmapreduce:Cluster', arn: `${cluster?.ClusterArn ?? id} (${state}, ${where})` });
    }),
  );
  return refs;
}

/**
 * Every resource of one account (the AMI's owner, or a sharee) in a region that uses the AMIs: EC2's image
 * references, Auto Scaling, fleets, Spot Instance requests, CloudFormation stacks, AWS Batch compute
 * environments and EMR clusters, read concurrently. A
 * read that fails makes the whole answer a failure (unknown means keep), named by its operation.
 */
async function inUse(
  clients: CellClients,
  imageIds: string[],
  fail: (op: string, error: unknown) => Failure,
): Promise<{ ok: true; value: Map<string, Reference[]> } | { ok: false; error: Failure }> {
  const settled = async (op: string, read: () => Promise<Map<string, Reference[]>>) => {
    try {
      return { ok: true as const, value: await read() };
    } catch (error: unknown) {
      return { ok: false as const, error: error instanceof AwsCallError ? toFailure(error) : fail(op, error) };
    }
  };
  const reads = await Promise.all([
    settled('DescribeImageReferences', () => imageReferences(clients, imageIds)),
    settled('DescribeAutoScalingGroups/DescribeLaunchConfigurations/DescribeSpotFleetRequests/DescribeFleets', () =>
      fleetReferences(clients, imageIds),
    ),
    settled('DescribeSpotInstanceRequests', () => spotRequestReferences(clients, imageIds)),
    settled('DescribeStacks/GetTemplate', () => stackReferences(clients, imageIds)),
    settled('DescribeComputeEnvironments', () => batchReferences(clients, imageIds)),
    settled('ListClusters/DescribeCluster/ListInstanceGroups/ListInstanceFleets', () => emrReferences(clients, imageIds)),
  ]);
  const merged = new Map<string, Reference[]>(imageIds.map((id) => [id, []]));
  for (const read of reads) {
    if (!read.ok) return read;
    for (const [id, list] of read.value) merged.get(id)?.push(...list);
  }
  return { ok: true, value: merged };
}

/**
 * Most `DescribeImageUsageReports` polls before a usage report still being made counts as unknown, and the
 * longest wait between two (1 s doubling to this): about 80 s in all. AWS gives no time for a report; five
 * polls (31 s) kept AMIs as unknown whenever a report took a little longer.
 */
const USAGE_REPORT_POLLS = 8;
const USAGE_REPORT_MAX_WAIT_MS = 16_000;

/**
 * Use of a shared AMI by other accounts: `CreateImageUsageReport` (instances and every launch template
 * version), then its entries. EC2 User Guide, "View your AMI usage" / CreateImageUsageReport. A report that
 * is not ready after a few polls is an error: unknown means keep.
 */
async function usageByOthers(
  clients: CellClients,
  imageId: string,
  wait: (ms: number) => Promise<void>,
): Promise<{ accountId: string; resourceType: string; count: number }[]> {
  const created = await clients.ec2.send(
    new CreateImageUsageReportCommand({
      ImageId: imageId,
      ResourceTypes: [
        { ResourceType: 'ec2:Instance' },
        { ResourceType: 'ec2:LaunchTemplate', ResourceTypeOptions: [{ OptionName: 'version-depth', OptionValues: ['10000'] }] },
      ],
    }),
  );
  const reportId = created.ReportId;
  if (reportId === undefined) throw new Error('CreateImageUsageReport returned no ReportId');
  for (let poll = 0; ; poll += 1) {
    const state = (await clients.ec2.send(new DescribeImageUsageReportsCommand({ ReportIds: [reportId] }))).ImageUsageReports?.[0]?.State;
    if (state === 'available') break;
    if (state === 'failed' || poll >= USAGE_REPORT_POLLS)
      throw new AwsCallError(
        'DescribeImageUsageReports',
        clients.accountId,
        clients.region,
        new Error(`usage report ${reportId} is ${state ?? 'missing'}`),
      );
    await wait(Math.min(1000 * 2 ** poll, USAGE_REPORT_MAX_WAIT_MS));
  }
  const entries: { accountId: string; resourceType: string; count: number }[] = [];
  for await (const page of paginateDescribeImageUsageReportEntries({ client: clients.ec2 }, { ReportIds: [reportId] })) {
    for (const e of page.ImageUsageReportEntries ?? [])
      entries.push({ accountId: e.AccountId ?? '?', resourceType: e.ResourceType ?? '?', count: e.UsageCount ?? 0 });
  }
  return entries;
}

type ShareeUse = NonNullable<AmiObservation['shareeUse']>;
type ShareeEntry = Extract<ShareeUse, { ok: true }>['value'][number];

/**
 * Under `shared: include`, the same in-use check in each account an AMI is shared with, through the role the
 * reconciler has there (the one it assumes in target accounts): one {@link inUse} per sharee account for all
 * the AMIs of the cell shared with it. A sharee where that role cannot be assumed (AccessDenied: no role, or
 * one that does not trust the reconciler) is recorded as not checked, and the planner keeps the AMI unless
 * the usage report is empty and the AMI was not launched within the guard's days; any other failure is a
 * failure (unknown means keep). Organizations, OUs and `all` (public) cannot be enumerated: not checked.
 */
async function shareeUse(
  factory: ClientFactory,
  region: string,
  ownerId: string,
  shared: Map<string, string[]>,
): Promise<Map<string, ShareeUse>> {
  const bySharee = new Map<string, string[]>();
  for (const [imageId, sharees] of shared)
    for (const sharee of sharees)
      if (/^\d{12}$/.test(sharee) && sharee !== ownerId) bySharee.set(sharee, [...(bySharee.get(sharee) ?? []), imageId]);
  const results = new Map<string, { ok: true; value: ShareeEntry } | { ok: false; error: Failure }>();
  await Promise.all(
    [...bySharee].map(async ([sharee, imageIds]) => {
      let clients: CellClients;
      try {
        clients = await factory.forCell(sharee, region);
      } catch (error: unknown) {
        if (error instanceof AssumeRoleError && error.code === 'AccessDenied') {
          for (const id of imageIds)
            results.set(`${sharee}/${id}`, { ok: true, value: { accountId: sharee, checked: false, references: [], why: error.message } });
        } else {
          for (const id of imageIds) results.set(`${sharee}/${id}`, { ok: false, error: toFailure(error) });
        }
        return;
      }
      const used = await inUse(clients, imageIds, (op, error) => toFailure(new AwsCallError(op, sharee, region, error)));
      for (const id of imageIds)
        results.set(
          `${sharee}/${id}`,
          used.ok ? { ok: true, value: { accountId: sharee, checked: true, references: used.value.get(id) ?? [] } } : used,
        );
    }),
  );
  const out = new Map<string, ShareeUse>();
  for (const [imageId, sharees] of shared) {
    const entries: ShareeEntry[] = [];
    let failure: Failure | undefined;
    for (const sharee of sharees) {
      const r = results.get(`${sharee}/${imageId}`);
      if (r === undefined) {
        if (sharee !== ownerId)
          entries.push({ accountId: sharee, checked: false, references: [], why: 'not an account: its accounts cannot be listed' });
      } else if (r.ok) entries.push(r.value);
      else failure ??= r.error;
    }
    out.set(imageId, failure === undefined ? { ok: true, value: entries } : { ok: false, error: failure });
  }
  return out;
}

/**
 * Observe the AMIs of one (account, region): the image, every kind of reference, whom it is shared with,
 * Fast Launch, and (for `shared: include`) use by other accounts. Read only. A read that fails is recorded
 * as a failure, which the planner turns into `unknown`: kept.
 */
async function observeCell(
  accountId: string,
  region: string,
  amis: InventoryAmi[],
  factory: ClientFactory,
  settings: CleanupSettings,
  problems: string[],
  wait: (ms: number) => Promise<void>,
): Promise<Record<string, AmiObservation>> {
  const out: Record<string, AmiObservation> = {};
  const fail = (op: string, error: unknown): Failure => toFailure(new AwsCallError(op, accountId, region, error));
  let clients: CellClients;
  try {
    clients = await factory.forCell(accountId, region);
  } catch (error: unknown) {
    for (const ami of amis)
      out[amiKey(ami)] = { image: { ok: false, error: toFailure(error) }, references: undefined, sharedWith: undefined };
    return out;
  }
  const ids = [...new Set(amis.map((a) => a.imageId))];
  let images: Map<string, Ec2Image>;
  let sizes = new Map<string, number>();
  try {
    images = await describe(clients, ids);
    const snaps = [...images.values()].flatMap((i) =>
      (i.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((id): id is string => id !== undefined),
    );
    try {
      sizes = await snapshotSizes(clients, snaps);
    } catch (error: unknown) {
      // sizes only feed the saving estimate: say so, and go on
      problems.push(
        `snapshot sizes in ${accountId}/${region} unknown (${briefFailure(toFailure(error))}): the saving estimate counts them as 0 GiB`,
      );
    }
  } catch (error: unknown) {
    for (const ami of amis)
      out[amiKey(ami)] = { image: { ok: false, error: fail('DescribeImages', error) }, references: undefined, sharedWith: undefined };
    return out;
  }

  const present = ids.filter((id) => images.has(id));
  const settled = async <T>(op: string, read: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: Failure }> => {
    try {
      return { ok: true, value: await read() };
    } catch (error: unknown) {
      return { ok: false, error: error instanceof AwsCallError ? toFailure(error) : fail(op, error) };
    }
  };
  const none = { ok: true as const, value: new Map<string, Reference[]>() };
  const [used, fastLaunch] =
    present.length === 0
      ? [none, { ok: true as const, value: new Map<string, string>() }]
      : await Promise.all([
          inUse(clients, present, fail),
          settled('DescribeFastLaunchImages', async () => {
            const states = new Map<string, string>();
            for await (const page of paginateDescribeFastLaunchImages({ client: clients.ec2 }, { ImageIds: present })) {
              for (const f of page.FastLaunchImages ?? [])
                if (f.ImageId !== undefined && f.State !== undefined) states.set(f.ImageId, f.State);
            }
            return states;
          }),
        ]);

  for (const ami of amis) {
    const image = images.get(ami.imageId);
    const references: AmiObservation['references'] = used.ok ? { ok: true, value: used.value.get(ami.imageId) ?? [] } : used;
    const obs: AmiObservation = {
      image: { ok: true, value: image === undefined ? null : toImageInfo(image, sizes) },
      references,
      sharedWith: undefined,
      fastLaunch: fastLaunch.ok ? { ok: true, value: fastLaunch.value.get(ami.imageId) ?? null } : fastLaunch,
    };
    if (image !== undefined) {
      obs.sharedWith = await settled('DescribeImageAttribute', async () => {
        const attr = await clients.ec2.send(new DescribeImageAttributeCommand({ ImageId: ami.imageId, Attribute: 'launchPermission' }));
        return (attr.LaunchPermissions ?? []).map((p) => p.UserId ?? p.Group ?? p.OrganizationArn ?? p.OrganizationalUnitArn ?? '?');
      });
      const shared = image.Public === true || (obs.sharedWith.ok && obs.sharedWith.value.length > 0);
      if (settings.shared === 'include' && shared)
        obs.usageByOthers = await settled('CreateImageUsageReport', () => usageByOthers(clients, ami.imageId, wait));
    }
    out[amiKey(ami)] = obs;
  }
  if (settings.shared === 'include') {
    const shared = new Map<string, string[]>();
    for (const ami of amis) {
      const obs = out[amiKey(ami)];
      if (obs?.usageByOthers === undefined || obs.sharedWith?.ok !== true) continue;
      shared.set(ami.imageId, [...obs.sharedWith.value, ...(images.get(ami.imageId)?.Public === true ? ['all'] : [])]);
    }
    if (shared.size > 0) {
      const use = await shareeUse(factory, region, accountId, shared);
      for (const ami of amis) {
        const obs = out[amiKey(ami)];
        const found = use.get(ami.imageId);
        if (obs !== undefined && found !== undefined) obs.shareeUse = found;
      }
    }
  }
  return out;
}

function groupByCell<T extends { accountId: string; region: string }>(amis: T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const ami of amis) {
    const key = cellKey(ami.region, ami.accountId);
    groups.set(key, [...(groups.get(key) ?? []), ami]);
  }
  return groups;
}

export { describe, groupByCell, inUse, observeCell };
