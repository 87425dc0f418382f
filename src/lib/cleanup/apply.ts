import { CreateTagsCommand, DeregisterImageCommand, DisableImageCommand, EnableImageDeprecationCommand } from '@aws-sdk/client-ec2';
import { TagResourceCommand } from '@aws-sdk/client-imagebuilder';
import type { CellClients, ClientFactory } from '../aws/clients.ts';
import type { DistributionConfigurationArn } from '../core/arn.ts';
import { cellKey, parseCellKey } from '../core/cells.ts';
import { briefFailure, toFailure } from '../core/errors.ts';
import { DISABLED_AT_TAG, RETIRING_TAG, cleanedUpTagKey } from '../core/tags.ts';
import type { RunDeps } from '../reconcile/reconcile.ts';
import { buildStatusNow, currentCellsNow } from './inventory.ts';
import { describe, groupByCell, observeCell } from './observe.ts';
import {
  type CandidatePlan,
  type CleanupSettings,
  type Decision,
  type InventoryAmi,
  amiKey,
  decide,
  launchPermissionRecord,
} from './plan.ts';
import type { CandidateReport } from './report.ts';

/**
 * Why DeregisterImage did not delete a snapshot, from its DeleteSnapshotResults return code. `missing-permissions`
 * means the caller may not delete that snapshot: EC2 checks ec2:DeleteSnapshot on each (DeregisterImage API
 * reference, DeleteAssociatedSnapshots and DeleteSnapshotReturnCode); the snapshot is left, and billed.
 */
function snapshotNotDeleted(code: string): string {
  return code === 'missing-permissions' ? 'missing-permissions: not authorized to perform: ec2:DeleteSnapshot' : code;
}

/**
 * Disable an AMI, its launch permissions recorded first: DisableImage removes every launch permission and
 * EnableImage does not restore them, so the AMI is tagged with with whom it was shared, merged with an earlier
 * disable's record and stored whole (split across tags), then with when (cleanup's disable strategy, and
 * revoke --disable). Throws, disabling nothing, when the record cannot be stored.
 */
async function disableRecorded(
  clients: CellClients,
  imageId: string,
  seen: { sharedWith: string[]; tags: Record<string, string> },
  now: Date,
): Promise<string[]> {
  const record = launchPermissionRecord(seen.tags, seen.sharedWith);
  if ('refusal' in record) throw new Error(record.refusal);
  const [first, ...rest] = record.tags;
  // the parts after the first in their own call (statement MarkDisabledImagesRecordParts), written before the
  // first part and the disabled-at marker, so that a record is never marked complete with a part missing
  if (rest.length > 0) await clients.ec2.send(new CreateTagsCommand({ Resources: [imageId], Tags: rest }));
  const tags = [{ Key: DISABLED_AT_TAG, Value: now.toISOString() }, ...(first === undefined ? [] : [first])];
  await clients.ec2.send(new CreateTagsCommand({ Resources: [imageId], Tags: tags }));
  await clients.ec2.send(new DisableImageCommand({ ImageId: imageId }));
  return record.entries;
}

/**
 * The earliest deprecation time EC2 takes: the next whole minute at least a minute away (EC2 rounds
 * DeprecateAt to the minute and refuses a time in the past: EC2 API Reference, EnableImageDeprecation).
 */
function deprecationTime(now: Date): Date {
  return new Date(Math.ceil((now.getTime() + 60_000) / 60_000) * 60_000);
}

/** Deprecate an AMI now (the earliest time EC2 takes): cleanup's deprecate strategy, and revoke. */
async function deprecateNow(clients: CellClients, imageId: string, now: Date): Promise<void> {
  await clients.ec2.send(new EnableImageDeprecationCommand({ ImageId: imageId, DeprecateAt: deprecationTime(now) }));
}

/** Act on one AMI. Idempotent: an AMI already gone counts as done. */
async function act(
  plan: CandidatePlan,
  seen: { sharedWith: string[]; tags: Record<string, string> },
  factory: ClientFactory,
  now: Date,
): Promise<Pick<CandidateReport, 'outcome' | 'error' | 'snapshots' | 'launchPermissions'>> {
  const { ami, decision } = plan;
  const clients = await factory.forCell(ami.accountId, ami.region);
  switch (decision.action) {
    case 'deregister': {
      // mark the AMI's snapshots with its id first: the cleanup roles may delete only snapshots so marked (AWS
      // has no condition key that ties a snapshot to an AMI). A snapshot that cannot be marked is left, and
      // DeregisterImage reports it missing-permissions
      const image = (await describe(clients, [ami.imageId])).get(ami.imageId);
      const snapshotIds = (image?.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId === undefined ? [] : [m.Ebs.SnapshotId]));
      if (snapshotIds.length > 0)
        await clients.ec2.send(new CreateTagsCommand({ Resources: snapshotIds, Tags: [{ Key: RETIRING_TAG, Value: ami.imageId }] }));
      const out = await clients.ec2.send(new DeregisterImageCommand({ ImageId: ami.imageId, DeleteAssociatedSnapshots: true }));
      const snapshots = (out.DeleteSnapshotResults ?? []).map((r) => ({
        snapshotId: r.SnapshotId ?? '',
        sizeGiB: 0,
        result: r.ReturnCode ?? 'unknown',
      }));
      const failed = snapshots.filter((s) => s.result !== 'success' && s.result !== 'skipped');
      const denied = failed.some((s) => s.result === 'missing-permissions');
      return {
        outcome: 'done',
        error:
          failed.length === 0
            ? null
            : {
                kind: denied ? 'access-denied' : 'error',
                code: 'SnapshotNotDeleted',
                message: `AMI deregistered, but snapshot(s) not deleted: ${failed.map((s) => `${s.snapshotId} (${snapshotNotDeleted(s.result)})`).join(', ')}`,
              },
        snapshots,
        launchPermissions: seen.sharedWith,
      };
    }
    case 'disable': {
      const launchPermissions = await disableRecorded(clients, ami.imageId, seen, now);
      return { outcome: 'done', error: null, snapshots: [], launchPermissions };
    }
    case 'deprecate':
      await deprecateNow(clients, ami.imageId, now);
      return { outcome: 'done', error: null, snapshots: [], launchPermissions: seen.sharedWith };
    case 'skip':
      return { outcome: 'skipped', error: null, snapshots: [], launchPermissions: seen.sharedWith };
  }
}

/**
 * Record on the build's Image Builder image that cleanup removes a cell's AMI: reconcile reads it when the AMI
 * is gone. Written twice: `deregistering` right before DeregisterImage (the intent: a run interrupted after
 * the AMI went and before the second write still reads as cleaned up, not as an AMI not visible yet), then
 * `deregistered`. While the AMI exists, reconcile ignores the record.
 */
async function recordCleanedUp(
  home: CellClients,
  buildArn: string,
  ami: InventoryAmi,
  now: Date,
  configuration: string,
  phase: 'deregistering' | 'deregistered',
): Promise<void> {
  await home.imagebuilder.send(
    new TagResourceCommand({
      resourceArn: buildArn,
      tags: {
        [cleanedUpTagKey(ami.region, ami.accountId)]: `${now.toISOString()} ${ami.imageId} ${phase}: cell removed from ${configuration}`,
      },
    }),
  );
}

/**
 * Re-read, right before acting on one AMI, everything its guards depend on: today's configuration (a
 * region re-added since the plan makes the cell current again), the build's state (a FAILED build can be
 * retried), then the image, its tags, protection,
 * references, sharing and Fast Launch. Returns the decision the planner makes now.
 */
async function recheck(
  plan: CandidatePlan,
  arn: DistributionConfigurationArn,
  settings: CleanupSettings,
  deps: Pick<RunDeps, 'clients' | 'now'>,
  problems: string[],
  wait: (ms: number) => Promise<void>,
): Promise<{ decision: Decision; sharedWith: string[]; tags: Record<string, string> }> {
  const ami = plan.ami;
  let current: Set<string>;
  try {
    current = await currentCellsNow(arn, deps.clients);
  } catch (error: unknown) {
    return {
      decision: {
        action: 'skip',
        guard: 'unknown',
        reason: `could not read the configuration again (${briefFailure(toFailure(error))}): kept`,
      },
      sharedWith: [],
      tags: {},
    };
  }
  let buildStatus: string;
  try {
    buildStatus = await buildStatusNow(ami.buildArn, arn, deps.clients);
  } catch (error: unknown) {
    return {
      decision: {
        action: 'skip',
        guard: 'unknown',
        reason: `could not read the build's state again (${briefFailure(toFailure(error))}): kept`,
      },
      sharedWith: [],
      tags: {},
    };
  }
  const fresh: InventoryAmi = { ...ami, buildStatus, currentCell: current.has(cellKey(ami.region, ami.accountId)) };
  const obs = (await observeCell(ami.accountId, ami.region, [fresh], deps.clients, settings, problems, wait))[amiKey(fresh)];
  const decision = decide(fresh, obs, settings, deps.now());
  return {
    decision,
    sharedWith: obs?.sharedWith?.ok === true ? obs.sharedWith.value : [],
    tags: obs?.image.ok === true && obs.image.value !== null ? obs.image.value.tags : {},
  };
}

/** After acting, look again: is the AMI really gone (or disabled, deprecated)? */
async function verify(done: CandidateReport[], factory: ClientFactory): Promise<void> {
  for (const [key, candidates] of groupByCell(done)) {
    const { region, accountId } = parseCellKey(key);
    try {
      const clients = await factory.forCell(accountId, region);
      const images = await describe(
        clients,
        candidates.map((c) => c.imageId),
      );
      for (const candidate of candidates) {
        const image = images.get(candidate.imageId);
        if (candidate.decision === 'deregister')
          candidate.verified = image === undefined || image.State === 'deregistered' ? 'gone' : 'still-present';
        else if (candidate.decision === 'disable') candidate.verified = image?.State === 'disabled' ? 'disabled' : 'still-present';
        else candidate.verified = image?.DeprecationTime !== undefined ? 'deprecated' : 'still-present';
      }
    } catch (error: unknown) {
      for (const candidate of candidates) candidate.verified = `unverified: ${briefFailure(toFailure(error))}`;
    }
  }
}

export { act, deprecateNow, deprecationTime, disableRecorded, recheck, recordCleanedUp, verify };
