import { CreateTagsCommand, DeregisterImageCommand, DisableImageCommand, EnableImageDeprecationCommand } from '@aws-sdk/client-ec2';
import { TagResourceCommand } from '@aws-sdk/client-imagebuilder';
import type { CellClients, ClientFactory } from '../aws/clients.ts';
import type { DistributionConfigurationArn } from '../core/arn.ts';
import { cellKey, parseCellKey } from '../core/cells.ts';
import { briefFailure, toFailure } from '../core/errors.ts';
import { DISABLED_AT_TAG, LAUNCH_PERMISSIONS_TAG, cleanedUpTagKey } from '../core/tags.ts';
import type { RunDeps } from '../reconcile/reconcile.ts';
import { buildStatusNow, currentCellsNow } from './inventory.ts';
import { describe, groupByCell, observeCell } from './observe.ts';
import { type CandidatePlan, type CleanupSettings, type Decision, type InventoryAmi, amiKey, decide } from './plan.ts';
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
 * EnableImage does not restore them, so the AMI is tagged with when and with whom it was shared (cleanup's
 * disable strategy, and revoke --disable).
 */
async function disableRecorded(clients: CellClients, imageId: string, sharedWith: string[], now: Date): Promise<void> {
  const record = sharedWith.join(',');
  const tags = [
    { Key: DISABLED_AT_TAG, Value: now.toISOString() },
    { Key: LAUNCH_PERMISSIONS_TAG, Value: record.length <= 256 ? record : `${record.slice(0, 240)}…(see report)` },
  ];
  await clients.ec2.send(new CreateTagsCommand({ Resources: [imageId], Tags: tags }));
  await clients.ec2.send(new DisableImageCommand({ ImageId: imageId }));
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
  sharedWith: string[],
  factory: ClientFactory,
  now: Date,
): Promise<Pick<CandidateReport, 'outcome' | 'error' | 'snapshots'>> {
  const { ami, decision } = plan;
  const clients = await factory.forCell(ami.accountId, ami.region);
  switch (decision.action) {
    case 'deregister': {
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
      };
    }
    case 'disable': {
      await disableRecorded(clients, ami.imageId, sharedWith, now);
      return { outcome: 'done', error: null, snapshots: [] };
    }
    case 'deprecate':
      await deprecateNow(clients, ami.imageId, now);
      return { outcome: 'done', error: null, snapshots: [] };
    case 'skip':
      return { outcome: 'skipped', error: null, snapshots: [] };
  }
}

/** Record on the build's Image Builder image that cleanup removed a cell's AMI: reconcile reads it. */
async function recordCleanedUp(home: CellClients, buildArn: string, ami: InventoryAmi, now: Date, configuration: string): Promise<void> {
  await home.imagebuilder.send(
    new TagResourceCommand({
      resourceArn: buildArn,
      tags: {
        [cleanedUpTagKey(ami.region, ami.accountId)]:
          `${now.toISOString()} ${ami.imageId} deregistered: cell removed from ${configuration}`,
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
): Promise<{ decision: Decision; sharedWith: string[] }> {
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
    };
  }
  const fresh: InventoryAmi = { ...ami, buildStatus, currentCell: current.has(cellKey(ami.region, ami.accountId)) };
  const obs = (await observeCell(ami.accountId, ami.region, [fresh], deps.clients, settings, problems, wait))[amiKey(fresh)];
  const decision = decide(fresh, obs, settings, deps.now());
  return { decision, sharedWith: obs?.sharedWith?.ok === true ? obs.sharedWith.value : [] };
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
