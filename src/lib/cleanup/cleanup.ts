import { AutoScalingClient, paginateDescribeAutoScalingGroups, paginateDescribeLaunchConfigurations } from '@aws-sdk/client-auto-scaling';
import {
  CreateImageUsageReportCommand,
  CreateTagsCommand,
  DeregisterImageCommand,
  DescribeImageAttributeCommand,
  DescribeImageUsageReportsCommand,
  DescribeLaunchTemplateVersionsCommand,
  DisableImageCommand,
  EnableImageDeprecationCommand,
  type Image as Ec2Image,
  paginateDescribeFastLaunchImages,
  paginateDescribeFleets,
  paginateDescribeImageReferences,
  paginateDescribeImageUsageReportEntries,
  paginateDescribeSnapshots,
  paginateDescribeSpotFleetRequests,
} from '@aws-sdk/client-ec2';
import { TagResourceCommand } from '@aws-sdk/client-imagebuilder';
import pLimit from 'p-limit';
import { type DistributionConfigurationArn, parseDistributionConfigurationArn } from '../core/arn.ts';
import type { CellClients, ClientFactory } from '../aws/clients.ts';
import { cellKey, parseCellKey } from '../core/cells.ts';
import { describeImagesById } from '../aws/images.ts';
import { LAUNCH_PERMISSIONS_TAG, cleanedUpTagKey } from '../core/tags.ts';
import { AwsCallError, type Failure, briefFailure, toFailure } from '../core/errors.ts';
import { publishReport } from '../aws/outbox.ts';
import type { RunDeps } from '../reconcile/reconcile.ts';
import { type Inventory, type InventoryBuild, currentCellsNow, takeInventory } from './inventory.ts';
import { type AmiObservation, type CandidatePlan, type CleanupSettings, DISABLED_AT_TAG, type Decision, type Guard, type InventoryAmi, amiKey, decide, planCleanup } from './plan.ts';
import { type CleanupRequest, type CleanupScope, effectiveSettings } from './request.ts';

const CLEANUP_DETAIL_TYPE = 'Image Builder Cleanup Report';

interface CandidateReport {
  imageId: string;
  region: string;
  accountId: string;
  buildArn: string;
  foundBy: 'recorded' | 'tag';
  /** What the plan decided: an action, or `skip` with the guard that kept it. */
  decision: 'deregister' | 'disable' | 'deprecate' | 'skip';
  guard: Guard | null;
  reason: string;
  /** What happened: planned (plan mode), done, failed, or skipped. */
  outcome: 'planned' | 'done' | 'failed' | 'skipped';
  error: Failure | null;
  snapshots: { snapshotId: string; sizeGiB: number; result: string }[];
  /** Launch permissions the AMI had when observed (recorded before `disable`, which removes them all). */
  launchPermissions: string[];
  /** After acting: observed again. `gone`, `disabled`, `deprecated`, or `still-present`. */
  verified: string | null;
}

/** One cleanup run (documented in the README: "Cleanup report"). */
interface CleanupReport {
  schemaVersion: 1;
  kind: 'cleanup';
  runId: string;
  trigger: CleanupRequest['trigger'];
  mode: 'plan' | 'apply';
  settings: CleanupSettings;
  configuration: Inventory['configuration'];
  builds: InventoryBuild[];
  candidates: CandidateReport[];
  counts: { amis: number; candidates: number; planned: number; deregistered: number; disabled: number; deprecated: number; skipped: number; failed: number };
  snapshotsDeleted: number;
  gibFreed: number;
  /** Upper bound: EBS bills snapshots by changed blocks; this counts full volume sizes at the configured price. */
  estimatedMonthlySavingUsd: number;
  problems: string[];
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  awsCalls: number;
}

/** Run dependencies; `sleep` waits between usage report polls (tests pass one that does not wait). */
type CleanupDeps = RunDeps & { sleep?: (ms: number) => Promise<void> };

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
  for await (const page of paginateDescribeSnapshots({ client: clients.ec2 }, { OwnerIds: ['self'], Filters: [{ Name: 'snapshot-id', Values: snapshotIds }] })) {
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
  { ResourceType: 'ec2:Instance' as const, ResourceTypeOptions: [{ OptionName: 'state-name' as const, OptionValues: ['pending', 'running', 'shutting-down', 'stopping', 'stopped'] }] },
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
    for await (const page of paginateDescribeImageReferences({ client: clients.ec2 }, { ImageIds: batch, ResourceTypes: REFERENCE_TYPES })) {
      for (const ref of page.ImageReferences ?? []) refs.get(ref.ImageId ?? '')?.push({ resourceType: ref.ResourceType ?? '', arn: ref.Arn ?? '' });
    }
  }
  return refs;
}

/** Resolve launch template versions to the AMI they launch (`resolve:ssm:` resolved), cached per run of one cell. */
function templateResolver(clients: CellClients): (spec: { id?: string | undefined; name?: string | undefined; version?: string | undefined }) => Promise<string | undefined> {
  const cache = new Map<string, Promise<string | undefined>>();
  return (spec) => {
    const version = spec.version ?? '$Default';
    const key = `${spec.id ?? ''}/${spec.name ?? ''}/${version}`;
    let hit = cache.get(key);
    if (hit === undefined) {
      hit = clients.ec2
        .send(new DescribeLaunchTemplateVersionsCommand({ ...(spec.id === undefined ? { LaunchTemplateName: spec.name } : { LaunchTemplateId: spec.id }), Versions: [version], ResolveAlias: true }))
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
      add(lc.ImageId, { resourceType: 'autoscaling:LaunchConfiguration', arn: lc.LaunchConfigurationARN ?? lc.LaunchConfigurationName ?? '' });
    }
  }
  for await (const page of paginateDescribeAutoScalingGroups({ client: clients.client(AutoScalingClient) }, {})) {
    for (const group of page.AutoScalingGroups ?? []) {
      const ref = { resourceType: 'autoscaling:AutoScalingGroup', arn: group.AutoScalingGroupARN ?? group.AutoScalingGroupName ?? '' };
      if (group.LaunchConfigurationName !== undefined) add(lcImages.get(group.LaunchConfigurationName), ref);
      const specs = [group.LaunchTemplate, group.MixedInstancesPolicy?.LaunchTemplate?.LaunchTemplateSpecification, ...(group.MixedInstancesPolicy?.LaunchTemplate?.Overrides ?? []).map((o) => o.LaunchTemplateSpecification)];
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
        if (spec !== undefined) add(await resolve({ id: spec.LaunchTemplateId, name: spec.LaunchTemplateName, version: spec.Version }), ref);
      }
    }
  }
  for await (const page of paginateDescribeFleets({ client: clients.ec2 }, {})) {
    for (const fleet of page.Fleets ?? []) {
      if (fleet.FleetState === 'deleted' || fleet.FleetState === 'deleted_terminating' || fleet.FleetState === 'failed') continue;
      const ref = { resourceType: 'ec2:Fleet', arn: fleet.FleetId ?? '' };
      for (const config of fleet.LaunchTemplateConfigs ?? []) {
        const spec = config.LaunchTemplateSpecification;
        if (spec !== undefined) add(await resolve({ id: spec.LaunchTemplateId, name: spec.LaunchTemplateName, version: spec.Version }), ref);
        for (const override of config.Overrides ?? []) add(override.ImageId, ref);
      }
    }
  }
  return refs;
}

/** Most `DescribeImageUsageReports` polls before a usage report still being made counts as unknown. */
const USAGE_REPORT_POLLS = 5;

/**
 * Use of a shared AMI by other accounts: `CreateImageUsageReport` (instances and every launch template
 * version), then its entries. EC2 User Guide, "View your AMI usage" / CreateImageUsageReport. A report that
 * is not ready after a few polls is an error: unknown means keep.
 */
async function usageByOthers(clients: CellClients, imageId: string, wait: (ms: number) => Promise<void>): Promise<{ accountId: string; resourceType: string; count: number }[]> {
  const created = await clients.ec2.send(
    new CreateImageUsageReportCommand({
      ImageId: imageId,
      ResourceTypes: [{ ResourceType: 'ec2:Instance' }, { ResourceType: 'ec2:LaunchTemplate', ResourceTypeOptions: [{ OptionName: 'version-depth', OptionValues: ['10000'] }] }],
    }),
  );
  const reportId = created.ReportId;
  if (reportId === undefined) throw new Error('CreateImageUsageReport returned no ReportId');
  for (let poll = 0; ; poll += 1) {
    const state = (await clients.ec2.send(new DescribeImageUsageReportsCommand({ ReportIds: [reportId] }))).ImageUsageReports?.[0]?.State;
    if (state === 'available') break;
    if (state === 'failed' || poll >= USAGE_REPORT_POLLS) throw new AwsCallError('DescribeImageUsageReports', clients.accountId, clients.region, new Error(`usage report ${reportId} is ${state ?? 'missing'}`));
    await wait(1000 * 2 ** poll);
  }
  const entries: { accountId: string; resourceType: string; count: number }[] = [];
  for await (const page of paginateDescribeImageUsageReportEntries({ client: clients.ec2 }, { ReportIds: [reportId] })) {
    for (const e of page.ImageUsageReportEntries ?? []) entries.push({ accountId: e.AccountId ?? '?', resourceType: e.ResourceType ?? '?', count: e.UsageCount ?? 0 });
  }
  return entries;
}

/**
 * Observe the AMIs of one (account, region): the image, every kind of reference, whom it is shared with,
 * Fast Launch, and (for `shared: include`) use by other accounts. Read only. A read that fails is recorded
 * as a failure, which the planner turns into `unknown`: kept.
 */
async function observeCell(accountId: string, region: string, amis: InventoryAmi[], factory: ClientFactory, settings: CleanupSettings, problems: string[], wait: (ms: number) => Promise<void>): Promise<Record<string, AmiObservation>> {
  const out: Record<string, AmiObservation> = {};
  const fail = (op: string, error: unknown): Failure => toFailure(new AwsCallError(op, accountId, region, error));
  let clients: CellClients;
  try {
    clients = await factory.forCell(accountId, region);
  } catch (error: unknown) {
    for (const ami of amis) out[amiKey(ami)] = { image: { ok: false, error: toFailure(error) }, references: undefined, sharedWith: undefined };
    return out;
  }
  const ids = [...new Set(amis.map((a) => a.imageId))];
  let images: Map<string, Ec2Image>;
  let sizes = new Map<string, number>();
  try {
    images = await describe(clients, ids);
    const snaps = [...images.values()].flatMap((i) => (i.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((id): id is string => id !== undefined));
    try {
      sizes = await snapshotSizes(clients, snaps);
    } catch (error: unknown) {
      // sizes only feed the saving estimate: say so, and go on
      problems.push(`snapshot sizes in ${accountId}/${region} unknown (${briefFailure(toFailure(error))}): the saving estimate counts them as 0 GiB`);
    }
  } catch (error: unknown) {
    for (const ami of amis) out[amiKey(ami)] = { image: { ok: false, error: fail('DescribeImages', error) }, references: undefined, sharedWith: undefined };
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
  const [direct, fleets, fastLaunch] = present.length === 0 ? [none, none, { ok: true as const, value: new Map<string, string>() }] : await Promise.all([
    settled('DescribeImageReferences', () => imageReferences(clients, present)),
    settled('DescribeAutoScalingGroups/DescribeLaunchConfigurations/DescribeSpotFleetRequests/DescribeFleets', () => fleetReferences(clients, present)),
    settled('DescribeFastLaunchImages', async () => {
      const states = new Map<string, string>();
      for await (const page of paginateDescribeFastLaunchImages({ client: clients.ec2 }, { ImageIds: present })) {
        for (const f of page.FastLaunchImages ?? []) if (f.ImageId !== undefined && f.State !== undefined) states.set(f.ImageId, f.State);
      }
      return states;
    }),
  ]);

  for (const ami of amis) {
    const image = images.get(ami.imageId);
    const references: AmiObservation['references'] = !direct.ok ? direct : !fleets.ok ? fleets : { ok: true, value: [...(direct.value.get(ami.imageId) ?? []), ...(fleets.value.get(ami.imageId) ?? [])] };
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
      if (settings.shared === 'include' && shared) obs.usageByOthers = await settled('CreateImageUsageReport', () => usageByOthers(clients, ami.imageId, wait));
    }
    out[amiKey(ami)] = obs;
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


/**
 * Why DeregisterImage did not delete a snapshot, from its DeleteSnapshotResults return code. `missing-permissions`
 * means the caller may not delete that snapshot: EC2 checks ec2:DeleteSnapshot on each (DeregisterImage API
 * reference, DeleteAssociatedSnapshots and DeleteSnapshotReturnCode); the snapshot is left, and billed.
 */
function snapshotNotDeleted(code: string): string {
  return code === 'missing-permissions' ? 'missing-permissions: not authorized to perform: ec2:DeleteSnapshot' : code;
}

/** Act on one AMI. Idempotent: an AMI already gone counts as done. */
async function act(plan: CandidatePlan, sharedWith: string[], factory: ClientFactory, now: Date): Promise<Pick<CandidateReport, 'outcome' | 'error' | 'snapshots'>> {
  const { ami, decision } = plan;
  const clients = await factory.forCell(ami.accountId, ami.region);
  switch (decision.action) {
    case 'deregister': {
      const out = await clients.ec2.send(new DeregisterImageCommand({ ImageId: ami.imageId, DeleteAssociatedSnapshots: true }));
      const snapshots = (out.DeleteSnapshotResults ?? []).map((r) => ({ snapshotId: r.SnapshotId ?? '', sizeGiB: 0, result: r.ReturnCode ?? 'unknown' }));
      const failed = snapshots.filter((s) => s.result !== 'success' && s.result !== 'skipped');
      const denied = failed.some((s) => s.result === 'missing-permissions');
      return {
        outcome: 'done',
        error: failed.length === 0 ? null : { kind: denied ? 'access-denied' : 'error', code: 'SnapshotNotDeleted', message: `AMI deregistered, but snapshot(s) not deleted: ${failed.map((s) => `${s.snapshotId} (${snapshotNotDeleted(s.result)})`).join(', ')}` },
        snapshots,
      };
    }
    case 'disable': {
      // DisableImage removes every launch permission and EnableImage does not restore them: record them first
      const record = sharedWith.join(',');
      const tags = [{ Key: DISABLED_AT_TAG, Value: now.toISOString() }, { Key: LAUNCH_PERMISSIONS_TAG, Value: record.length <= 256 ? record : `${record.slice(0, 240)}…(see report)` }];
      await clients.ec2.send(new CreateTagsCommand({ Resources: [ami.imageId], Tags: tags }));
      await clients.ec2.send(new DisableImageCommand({ ImageId: ami.imageId }));
      return { outcome: 'done', error: null, snapshots: [] };
    }
    case 'deprecate':
      await clients.ec2.send(new EnableImageDeprecationCommand({ ImageId: ami.imageId, DeprecateAt: new Date(Math.ceil((now.getTime() + 60_000) / 60_000) * 60_000) }));
      return { outcome: 'done', error: null, snapshots: [] };
    case 'skip':
      return { outcome: 'skipped', error: null, snapshots: [] };
  }
}

/** Record on the build's Image Builder image that cleanup removed a cell's AMI: reconcile reads it. */
async function recordCleanedUp(home: CellClients, buildArn: string, ami: InventoryAmi, now: Date, configuration: string): Promise<void> {
  await home.imagebuilder.send(
    new TagResourceCommand({ resourceArn: buildArn, tags: { [cleanedUpTagKey(ami.region, ami.accountId)]: `${now.toISOString()} ${ami.imageId} deregistered: cell removed from ${configuration}` } }),
  );
}

function inScope(ami: InventoryAmi, only: CleanupScope | undefined): boolean {
  if (only === undefined) return true;
  return (only.regions?.includes(ami.region) ?? true) && (only.accounts?.includes(ami.accountId) ?? true) && (only.imageIds?.includes(ami.imageId) ?? true);
}

/**
 * Clean up AMIs left in cells removed from a distribution configuration: inventory → observe → plan (pure,
 * guards) → for each AMI to act on, re-read what its guards depend on (today's configuration, the image,
 * its references) and act only if the decision still stands → observe again → report. Plan is the default
 * everywhere; at most `maxPerRun` AMIs are acted on per run. Throws {@link InputError} for an override
 * that would loosen a deployment guard (before any AWS call) and for an unreadable configuration;
 * everything else is in the report.
 */
async function cleanup(request: CleanupRequest, deps: CleanupDeps): Promise<CleanupReport> {
  const arn = parseDistributionConfigurationArn(request.distributionConfigurationArn);
  const settings = effectiveSettings(deps.config, request);
  const started = deps.now();
  const callsBefore = deps.clients.callCount();
  const wait = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const inventory = await takeInventory(arn, request.imageBuildArns ?? [], deps.clients);

  const observeAll = async (amis: InventoryAmi[]): Promise<Record<string, AmiObservation>> => {
    const observations: Record<string, AmiObservation> = {};
    // cells at once: as many as the client factory's global limit of calls can serve (calls are bounded there)
    const limit = pLimit(deps.clients.cellConcurrency());
    await Promise.all(
      [...groupByCell(amis)].map(([key, group]) =>
        limit(async () => {
          const { accountId, region } = parseCellKey(key);
          Object.assign(observations, await observeCell(accountId, region, group, deps.clients, settings, inventory.problems, wait));
        }),
      ),
    );
    return observations;
  };
  // only AMIs outside today's cells need observing; the rest are kept by the first guard
  const observations = await observeAll(inventory.amis.filter((a) => !a.currentCell && a.recordedImageId === a.imageId));
  const plans = planCleanup(inventory.amis, observations, settings, deps.now()).map((plan): CandidatePlan => {
    if (plan.decision.action === 'skip') return plan;
    if (!inScope(plan.ami, request.only)) return { ...plan, decision: { action: 'skip', guard: 'not-selected', reason: 'outside the regions, accounts or AMIs the request selected' } };
    if (request.plan !== undefined) {
      const reviewed = request.plan.find((p) => p.imageId === plan.ami.imageId && p.region === plan.ami.region && p.accountId === plan.ami.accountId);
      if (reviewed === undefined) return { ...plan, decision: { action: 'skip', guard: 'not-in-plan', reason: 'not a candidate of the reviewed plan' } };
      if (reviewed.decision !== plan.decision.action) return { ...plan, decision: { action: 'skip', guard: 'changed', reason: `the reviewed plan said ${reviewed.decision}; now: ${plan.decision.action}` } };
    }
    return plan;
  });

  const candidates: CandidateReport[] = [];
  let acted = 0;
  for (const plan of plans) {
    const obs = observations[amiKey(plan.ami)];
    const sizes = obs?.image.ok === true && obs.image.value !== null ? obs.image.value.snapshots : [];
    const base: CandidateReport = {
      imageId: plan.ami.imageId,
      region: plan.ami.region,
      accountId: plan.ami.accountId,
      buildArn: plan.ami.buildArn,
      foundBy: plan.ami.foundBy,
      decision: plan.decision.action,
      guard: plan.decision.action === 'skip' ? plan.decision.guard : null,
      reason: plan.decision.reason,
      outcome: plan.decision.action === 'skip' ? 'skipped' : 'planned',
      error: null,
      snapshots: sizes.map((s) => ({ ...s, result: plan.decision.action === 'deregister' ? 'planned' : 'kept' })),
      launchPermissions: obs?.sharedWith?.ok === true ? obs.sharedWith.value : [],
      verified: null,
    };
    candidates.push(base);
    if (request.mode !== 'apply' || plan.decision.action === 'skip') continue;
    if (acted >= settings.maxPerRun) {
      base.reason = `${plan.decision.reason}; not done in this run: the cap of ${settings.maxPerRun} per run (RECONCILER_CLEANUP_MAX_PER_RUN) is reached`;
      continue;
    }
    // check again at the moment of acting: today's configuration, the image, its tags, protection, references
    const again = await recheck(plan, arn, settings, deps, inventory.problems, wait);
    if (again.decision.action !== plan.decision.action) {
      base.decision = 'skip';
      base.guard = 'changed';
      base.reason = `changed since the plan: ${again.decision.reason}`;
      base.outcome = 'skipped';
      continue;
    }
    acted += 1;
    try {
      const done = await act(plan, again.sharedWith, deps.clients, deps.now());
      base.outcome = done.outcome;
      base.error = done.error;
      base.launchPermissions = again.sharedWith;
      if (done.snapshots.length > 0) base.snapshots = done.snapshots.map((s) => ({ ...s, sizeGiB: sizes.find((x) => x.snapshotId === s.snapshotId)?.sizeGiB ?? 0 }));
    } catch (error: unknown) {
      base.outcome = 'failed';
      base.error = toFailure(new AwsCallError(plan.decision.action, plan.ami.accountId, plan.ami.region, error));
      continue;
    }
    if (plan.decision.action === 'deregister') {
      try {
        await recordCleanedUp(await deps.clients.forCell(arn.accountId, arn.region), plan.ami.buildArn, plan.ami, deps.now(), inventory.configuration.name);
      } catch (error: unknown) {
        inventory.problems.push(`could not record the cleanup of ${plan.ami.imageId} on ${plan.ami.buildArn} (${briefFailure(toFailure(error))}): a reconcile of that build will report the cell as missing`);
      }
    }
  }

  if (request.mode === 'apply') await verify(candidates.filter((c) => c.outcome === 'done'), deps.clients);

  const finished = deps.now();
  const removedCandidates = candidates.filter((c) => !inventory.configuration.currentCells.includes(cellKey(c.region, c.accountId)));
  const deleted = candidates.flatMap((c) => c.snapshots.filter((s) => s.result === 'success'));
  const gibFreed = deleted.reduce((sum, s) => sum + s.sizeGiB, 0);
  const report: CleanupReport = {
    schemaVersion: 1,
    kind: 'cleanup',
    runId: deps.newRunId(),
    trigger: request.trigger,
    mode: request.mode,
    settings,
    configuration: inventory.configuration,
    builds: inventory.builds,
    candidates,
    counts: {
      amis: candidates.length,
      candidates: removedCandidates.length,
      planned: candidates.filter((c) => c.outcome === 'planned').length,
      deregistered: candidates.filter((c) => c.outcome === 'done' && c.decision === 'deregister').length,
      disabled: candidates.filter((c) => c.outcome === 'done' && c.decision === 'disable').length,
      deprecated: candidates.filter((c) => c.outcome === 'done' && c.decision === 'deprecate').length,
      skipped: candidates.filter((c) => c.outcome === 'skipped').length,
      failed: candidates.filter((c) => c.outcome === 'failed' || c.error !== null || c.verified === 'still-present').length,
    },
    snapshotsDeleted: deleted.length,
    gibFreed,
    estimatedMonthlySavingUsd: Math.round(gibFreed * deps.config.snapshotPricePerGbMonth * 100) / 100,
    problems: inventory.problems,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    awsCalls: deps.clients.callCount() - callsBefore,
  };
  if (deps.publish !== false && deps.config.eventBusName !== '') {
    const failure = await publishReport(deps.clients.home(), deps.config.eventBusName, CLEANUP_DETAIL_TYPE, report, [arn.arn], () => ({
      // keep what was acted on and why; drop the long list of kept AMIs in current cells
      candidates: report.candidates.filter((c) => c.guard !== 'current-cell'),
    }));
    if (failure !== undefined) {
      // the caller (the function's result, the command line) still gets the report: say that nobody else did
      deps.log.error('could not publish the cleanup report', { failure, bus: deps.config.eventBusName });
      report.problems.push(`the report could not be published on the event bus ${deps.config.eventBusName}: ${failure.code}: ${failure.message}`);
    }
  }
  return report;
}

/**
 * Re-read, right before acting on one AMI, everything its guards depend on: today's configuration (a
 * region re-added since the plan makes the cell current again), then the image, its tags, protection,
 * references, sharing and Fast Launch. Returns the decision the planner makes now.
 */
async function recheck(plan: CandidatePlan, arn: DistributionConfigurationArn, settings: CleanupSettings, deps: CleanupDeps, problems: string[], wait: (ms: number) => Promise<void>): Promise<{ decision: Decision; sharedWith: string[] }> {
  const ami = plan.ami;
  let current: Set<string>;
  try {
    current = await currentCellsNow(arn, deps.clients);
  } catch (error: unknown) {
    return { decision: { action: 'skip', guard: 'unknown', reason: `could not read the configuration again (${briefFailure(toFailure(error))}): kept` }, sharedWith: [] };
  }
  const fresh: InventoryAmi = { ...ami, currentCell: current.has(cellKey(ami.region, ami.accountId)) };
  const obs = (await observeCell(ami.accountId, ami.region, [fresh], deps.clients, settings, problems, wait))[amiKey(fresh)];
  const decision = decide(fresh, obs, settings, deps.now());
  return { decision, sharedWith: obs?.sharedWith?.ok === true ? obs.sharedWith.value : [] };
}

/** After acting, look again: is the AMI really gone (or disabled, deprecated)? */
async function verify(done: CandidateReport[], factory: ClientFactory): Promise<void> {
  for (const [key, candidates] of groupByCell(done)) {
    const { accountId, region } = parseCellKey(key);
    try {
      const clients = await factory.forCell(accountId, region);
      const images = await describe(clients, candidates.map((c) => c.imageId));
      for (const candidate of candidates) {
        const image = images.get(candidate.imageId);
        if (candidate.decision === 'deregister') candidate.verified = image === undefined || image.State === 'deregistered' ? 'gone' : 'still-present';
        else if (candidate.decision === 'disable') candidate.verified = image?.State === 'disabled' ? 'disabled' : 'still-present';
        else candidate.verified = image?.DeprecationTime !== undefined ? 'deprecated' : 'still-present';
      }
    } catch (error: unknown) {
      for (const candidate of candidates) candidate.verified = `unverified: ${briefFailure(toFailure(error))}`;
    }
  }
}

export { CLEANUP_DETAIL_TYPE, LAUNCH_PERMISSIONS_TAG, cleanup };
export type { CandidateReport, CleanupDeps, CleanupReport, CleanupRequest };
