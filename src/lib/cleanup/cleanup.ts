import {
  CreateTagsCommand,
  DeregisterImageCommand,
  DescribeImageAttributeCommand,
  DescribeImageReferencesCommand,
  DisableImageCommand,
  EnableImageDeprecationCommand,
  type Image as Ec2Image,
  paginateDescribeImages,
  paginateDescribeInstances,
  paginateDescribeLaunchTemplates,
  paginateDescribeLaunchTemplateVersions,
  paginateDescribeSnapshots,
} from '@aws-sdk/client-ec2';
import pLimit from 'p-limit';
import { parseDistributionConfigurationArn } from '../arn.ts';
import type { CellClients, ClientFactory } from '../aws/clients.ts';
import type { Config } from '../config.ts';
import { AwsCallError, type Failure, toFailure } from '../errors.ts';
import { publishReport } from '../notify.ts';
import type { RunDeps } from '../reconcile/reconcile.ts';
import { type Inventory, type InventoryBuild, takeInventory } from './inventory.ts';
import { type AmiObservation, type CandidatePlan, type CleanupSettings, DISABLED_AT_TAG, type Guard, type InventoryAmi, amiKey, planCleanup } from './plan.ts';

const CLEANUP_DETAIL_TYPE = 'Image Builder Cleanup Report';

interface CleanupRequest {
  distributionConfigurationArn: string;
  mode: 'plan' | 'apply';
  trigger: 'eventbridge' | 'manual' | 'cli';
  imageBuildArns?: string[] | undefined;
  settings?: Partial<CleanupSettings> | undefined;
}

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

type CleanupDeps = RunDeps;

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
  const found = new Map<string, Ec2Image>();
  for await (const page of paginateDescribeImages({ client: clients.ec2 }, { Filters: [{ Name: 'image-id', Values: imageIds }], IncludeDisabled: true, IncludeDeprecated: true })) {
    for (const image of page.Images ?? []) if (image.ImageId !== undefined) found.set(image.ImageId, image);
  }
  return found;
}

async function snapshotSizes(clients: CellClients, snapshotIds: string[]): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  if (snapshotIds.length === 0) return sizes;
  for await (const page of paginateDescribeSnapshots({ client: clients.ec2 }, { OwnerIds: ['self'], Filters: [{ Name: 'snapshot-id', Values: snapshotIds }] })) {
    for (const s of page.Snapshots ?? []) if (s.SnapshotId !== undefined) sizes.set(s.SnapshotId, s.VolumeSize ?? 0);
  }
  return sizes;
}

/** References without DescribeImageReferences: running instances and launch template versions (default and latest). */
async function fallbackReferences(clients: CellClients, imageIds: string[]): Promise<Map<string, { resourceType: string; arn: string }[]>> {
  const refs = new Map<string, { resourceType: string; arn: string }[]>(imageIds.map((id) => [id, []]));
  const pages = paginateDescribeInstances({ client: clients.ec2 }, { Filters: [{ Name: 'image-id', Values: imageIds }, { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] }] });
  for await (const page of pages) {
    for (const r of page.Reservations ?? []) for (const i of r.Instances ?? []) refs.get(i.ImageId ?? '')?.push({ resourceType: 'ec2:Instance', arn: i.InstanceId ?? '' });
  }
  for await (const page of paginateDescribeLaunchTemplates({ client: clients.ec2 }, {})) {
    for (const template of page.LaunchTemplates ?? []) {
      const versions = paginateDescribeLaunchTemplateVersions({ client: clients.ec2 }, { LaunchTemplateId: template.LaunchTemplateId, Versions: ['$Default', '$Latest'], ResolveAlias: true });
      for await (const vpage of versions) {
        for (const v of vpage.LaunchTemplateVersions ?? []) {
          const list = refs.get(v.LaunchTemplateData?.ImageId ?? '');
          if (list !== undefined && !list.some((x) => x.arn === template.LaunchTemplateId)) list.push({ resourceType: 'ec2:LaunchTemplate', arn: template.LaunchTemplateId ?? '' });
        }
      }
    }
  }
  return refs;
}

const UNAVAILABLE = new Set(['InvalidAction', 'UnsupportedOperation', 'UnknownOperationException', 'InvalidRequest']);

/** Observe the AMIs of one (account, region): the image, what uses it, whom it is shared with. Read only. */
async function observeCell(accountId: string, region: string, amis: InventoryAmi[], factory: ClientFactory, settings: CleanupSettings, problems: string[]): Promise<Record<string, AmiObservation>> {
  const out: Record<string, AmiObservation> = {};
  const fail = (op: string, error: unknown): Failure => toFailure(new AwsCallError(op, accountId, region, error));
  let clients: CellClients;
  try {
    clients = await factory.forCell(accountId, region);
  } catch (error: unknown) {
    for (const ami of amis) out[amiKey(ami)] = { image: { ok: false, error: toFailure(error) }, references: undefined, sharedWith: undefined };
    return out;
  }
  const ids = amis.map((a) => a.imageId);
  let images: Map<string, Ec2Image>;
  let sizes = new Map<string, number>();
  try {
    images = await describe(clients, ids);
    const snaps = [...images.values()].flatMap((i) => (i.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId).filter((id): id is string => id !== undefined));
    try {
      sizes = await snapshotSizes(clients, snaps);
    } catch (error: unknown) {
      // sizes only feed the saving estimate: say so, and go on
      problems.push(`snapshot sizes in ${accountId}/${region} unknown (${toFailure(error).code}): the saving estimate counts them as 0 GiB`);
    }
  } catch (error: unknown) {
    for (const ami of amis) out[amiKey(ami)] = { image: { ok: false, error: fail('DescribeImages', error) }, references: undefined, sharedWith: undefined };
    return out;
  }

  const present = ids.filter((id) => images.has(id));
  let references: Map<string, { resourceType: string; arn: string }[]> | Failure = new Map();
  try {
    for (let i = 0; i < present.length; i += 10) {
      const batch = present.slice(i, i + 10);
      let token: string | undefined;
      const found = new Map<string, { resourceType: string; arn: string }[]>(batch.map((id) => [id, []]));
      do {
        const page = await clients.ec2.send(new DescribeImageReferencesCommand({ ImageIds: batch, IncludeAllResourceTypes: true, NextToken: token }));
        for (const ref of page.ImageReferences ?? []) found.get(ref.ImageId ?? '')?.push({ resourceType: ref.ResourceType ?? '', arn: ref.Arn ?? '' });
        token = page.NextToken;
      } while (token !== undefined);
      for (const [id, list] of found) (references as Map<string, { resourceType: string; arn: string }[]>).set(id, list);
    }
  } catch (error: unknown) {
    const failure = fail('DescribeImageReferences', error);
    if (UNAVAILABLE.has(failure.code) || failure.kind === 'unavailable') {
      try {
        references = await fallbackReferences(clients, present);
      } catch (fallbackError: unknown) {
        references = fail('DescribeInstances/DescribeLaunchTemplateVersions', fallbackError);
      }
    } else {
      references = failure;
    }
  }

  for (const ami of amis) {
    const image = images.get(ami.imageId);
    const obs: AmiObservation = {
      image: { ok: true, value: image === undefined ? null : toImageInfo(image, sizes) },
      references: references instanceof Map ? { ok: true, value: references.get(ami.imageId) ?? [] } : { ok: false, error: references },
      sharedWith: undefined,
    };
    if (image !== undefined && settings.shared === 'skip') {
      try {
        const attr = await clients.ec2.send(new DescribeImageAttributeCommand({ ImageId: ami.imageId, Attribute: 'launchPermission' }));
        obs.sharedWith = { ok: true, value: (attr.LaunchPermissions ?? []).map((p) => p.UserId ?? p.Group ?? p.OrganizationArn ?? p.OrganizationalUnitArn ?? '?') };
      } catch (error: unknown) {
        obs.sharedWith = { ok: false, error: fail('DescribeImageAttribute', error) };
      }
    }
    out[amiKey(ami)] = obs;
  }
  return out;
}

function groupByCell<T extends { accountId: string; region: string }>(amis: T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const ami of amis) {
    const key = `${ami.accountId}/${ami.region}`;
    groups.set(key, [...(groups.get(key) ?? []), ami]);
  }
  return groups;
}

/** Act on one AMI. Idempotent: an AMI already gone counts as done. */
async function act(plan: CandidatePlan, factory: ClientFactory, now: Date): Promise<Pick<CandidateReport, 'outcome' | 'error' | 'snapshots'>> {
  const { ami, decision } = plan;
  const clients = await factory.forCell(ami.accountId, ami.region);
  switch (decision.action) {
    case 'deregister': {
      const out = await clients.ec2.send(new DeregisterImageCommand({ ImageId: ami.imageId, DeleteAssociatedSnapshots: true }));
      const snapshots = (out.DeleteSnapshotResults ?? []).map((r) => ({ snapshotId: r.SnapshotId ?? '', sizeGiB: 0, result: r.ReturnCode ?? 'unknown' }));
      const failed = snapshots.filter((s) => s.result !== 'success' && s.result !== 'skipped');
      return {
        outcome: 'done',
        error: failed.length === 0 ? null : { kind: 'error', code: 'SnapshotNotDeleted', message: `AMI deregistered, but snapshot(s) not deleted: ${failed.map((s) => `${s.snapshotId} (${s.result})`).join(', ')}` },
        snapshots,
      };
    }
    case 'disable':
      await clients.ec2.send(new CreateTagsCommand({ Resources: [ami.imageId], Tags: [{ Key: DISABLED_AT_TAG, Value: now.toISOString() }] }));
      await clients.ec2.send(new DisableImageCommand({ ImageId: ami.imageId }));
      return { outcome: 'done', error: null, snapshots: [] };
    case 'deprecate':
      await clients.ec2.send(new EnableImageDeprecationCommand({ ImageId: ami.imageId, DeprecateAt: new Date(Math.ceil((now.getTime() + 60_000) / 60_000) * 60_000) }));
      return { outcome: 'done', error: null, snapshots: [] };
    case 'skip':
      return { outcome: 'skipped', error: null, snapshots: [] };
  }
}

function settingsFrom(config: Config, overrides: Partial<CleanupSettings> | undefined): CleanupSettings {
  return {
    strategy: overrides?.strategy ?? config.cleanupStrategy,
    keepTagKey: overrides?.keepTagKey ?? config.cleanupKeepTagKey,
    minAgeDays: overrides?.minAgeDays ?? config.cleanupMinAgeDays,
    shared: overrides?.shared ?? config.cleanupShared,
    disableGraceDays: overrides?.disableGraceDays ?? config.cleanupDisableGraceDays,
  };
}

/**
 * Clean up AMIs left in cells removed from a distribution configuration: inventory → observe → plan (pure,
 * guards) → apply (only in `apply` mode) → observe again → report. Plan is the default everywhere.
 * Throws only for a malformed request or an unreadable configuration; everything else is in the report.
 */
async function cleanup(request: CleanupRequest, deps: CleanupDeps): Promise<CleanupReport> {
  const arn = parseDistributionConfigurationArn(request.distributionConfigurationArn);
  const started = deps.now();
  const callsBefore = deps.clients.callCount();
  const settings = settingsFrom(deps.config, request.settings);
  const inventory = await takeInventory(arn, request.imageBuildArns ?? [], deps.clients);

  // only AMIs outside today's cells need observing; the rest are kept by the first guard
  const outside = inventory.amis.filter((a) => !a.currentCell && a.recordedImageId === a.imageId);
  // cells at once: as many as the client factory's global limit of calls can serve (calls are bounded there)
  const limit = pLimit(deps.clients.cellConcurrency());
  const observations: Record<string, AmiObservation> = {};
  await Promise.all(
    [...groupByCell(outside)].map(([key, amis]) =>
      limit(async () => {
        const [accountId = '', region = ''] = key.split('/');
        Object.assign(observations, await observeCell(accountId, region, amis, deps.clients, settings, inventory.problems));
      }),
    ),
  );
  const plans = planCleanup(inventory.amis, observations, settings, deps.now());

  const candidates: CandidateReport[] = [];
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
      verified: null,
    };
    if (request.mode === 'apply' && plan.decision.action !== 'skip') {
      try {
        const done = await act(plan, deps.clients, deps.now());
        base.outcome = done.outcome;
        base.error = done.error;
        if (done.snapshots.length > 0) base.snapshots = done.snapshots.map((s) => ({ ...s, sizeGiB: sizes.find((x) => x.snapshotId === s.snapshotId)?.sizeGiB ?? 0 }));
      } catch (error: unknown) {
        base.outcome = 'failed';
        base.error = toFailure(new AwsCallError(plan.decision.action, plan.ami.accountId, plan.ami.region, error));
      }
    }
    candidates.push(base);
  }

  if (request.mode === 'apply') await verify(candidates.filter((c) => c.outcome === 'done'), deps.clients);

  const finished = deps.now();
  const removedCandidates = candidates.filter((c) => !inventory.configuration.currentCells.includes(`${c.region}/${c.accountId}`));
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
    if (failure !== undefined) deps.log.error('could not publish the cleanup report', { failure });
  }
  return report;
}

/** After acting, look again: is the AMI really gone (or disabled, deprecated)? */
async function verify(done: CandidateReport[], factory: ClientFactory): Promise<void> {
  for (const [key, candidates] of groupByCell(done)) {
    const [accountId = '', region = ''] = key.split('/');
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
      for (const candidate of candidates) candidate.verified = `unverified: ${toFailure(error).code}`;
    }
  }
}

export { CLEANUP_DETAIL_TYPE, cleanup, settingsFrom };
export type { CandidateReport, CleanupDeps, CleanupReport, CleanupRequest };
