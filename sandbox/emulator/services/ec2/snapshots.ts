import type { DeleteSnapshotRequest, DescribeSnapshotsRequest } from '@aws-sdk/client-ec2';
import { AwsError } from '../../protocol/errors.ts';
import type { Ctx } from '../../server.ts';
import type { SandboxState } from '../../state.ts';
import { applyFilters, paginate, tagFilter, tagList } from '../common.ts';
import { here } from './access.ts';

function snapshotInUse(state: SandboxState, account: string, region: string, snapshotId: string, except?: string): boolean {
  for (const image of state.cell(account, region).images.values()) {
    if (image.imageId !== except && image.state !== 'deregistered' && image.snapshotIds.includes(snapshotId)) return true;
  }
  return false;
}

function snapshotTags(ctx: Ctx, snapshotId: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of here(ctx).snapshots.get(snapshotId)?.tags ?? []) {
    out[`aws:ResourceTag/${k}`] = v;
    out[`ec2:ResourceTag/${k}`] = v;
  }
  return out;
}

function describeSnapshots(ctx: Ctx, input: DescribeSnapshotsRequest) {
  let snapshots = [...here(ctx).snapshots.values()];
  if (input.SnapshotIds !== undefined && input.SnapshotIds.length > 0) {
    const missing = input.SnapshotIds.filter((id) => !here(ctx).snapshots.has(id));
    if (missing.length > 0) throw new AwsError('InvalidSnapshot.NotFound', `The snapshot '${missing.join(', ')}' does not exist.`);
    snapshots = snapshots.filter((s) => input.SnapshotIds?.includes(s.snapshotId));
  }
  snapshots = applyFilters(snapshots, input.Filters, (s, name) => {
    if (name === 'snapshot-id') return [s.snapshotId];
    if (name === 'owner-id') return [s.ownerId];
    if (name === 'encrypted') return [String(s.encrypted)];
    return tagFilter(s.tags, name);
  });
  const { page, nextToken } = paginate(snapshots, input.MaxResults, input.NextToken, { default: 1000, min: 5, max: 1000 });
  return {
    Snapshots: page.map((s) => ({
      SnapshotId: s.snapshotId,
      OwnerId: s.ownerId,
      VolumeSize: s.volumeSize,
      Encrypted: s.encrypted,
      KmsKeyId: s.kmsKeyId,
      State: 'completed',
      Progress: '100%',
      StartTime: new Date(s.startTime),
      Description: s.description,
      Tags: s.tags.size > 0 ? tagList(s.tags) : undefined,
    })),
    NextToken: nextToken,
  };
}

function deleteSnapshot(ctx: Ctx, input: DeleteSnapshotRequest) {
  const id = input.SnapshotId ?? '';
  if (!here(ctx).snapshots.has(id)) throw new AwsError('InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
  if (snapshotInUse(ctx.env.state, ctx.account, ctx.region, id)) {
    throw new AwsError('InvalidSnapshot.InUse', `The snapshot ${id} is currently in use by an AMI`);
  }
  here(ctx).snapshots.delete(id);
  return {};
}

export { deleteSnapshot, describeSnapshots, snapshotInUse, snapshotTags };
