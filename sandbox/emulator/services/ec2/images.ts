import type {
  CopyImageRequest,
  DeregisterImageRequest,
  DescribeImageAttributeRequest,
  DescribeImagesRequest,
  DisableImageRequest,
  EnableImageDeprecationRequest,
  EnableImageDeregistrationProtectionRequest,
  Image,
  ModifyImageAttributeRequest,
} from '@aws-sdk/client-ec2';
import { allowed, ec2Arn } from '../../iam/authorize.ts';
import { AwsError } from '../../protocol/errors.ts';
import type { Ctx } from '../../server.ts';
import { type Ami, type SandboxState, resourceId } from '../../state.ts';
import { applyFilters, paginate, tagFilter, tagList } from '../common.ts';
import { canSee, checkImageId, here, ownImage, sharedThroughOrganization, tagsOf, visibleImages } from './access.ts';
import { snapshotInUse, snapshotTags } from './snapshots.ts';

/** Simulated time an AMI copy takes (pending → available). */
const COPY_MS = 2 * 60_000;

function toImage(image: Ami, ctx: Ctx): Image {
  const state = ctx.env.state;
  const snapshots = image.snapshotIds.map((id) => state.cell(image.ownerId, image.region).snapshots.get(id));
  const windows = image.platform === 'windows';
  return {
    ImageId: image.imageId,
    OwnerId: image.ownerId,
    State: image.state,
    Name: image.name,
    Description: image.description,
    CreationDate: image.creationDate,
    Public: image.launchPermissions.groups.has('all'),
    // EC2 answers "windows" (lowercase) although the SDK's enum spells it "Windows"
    Platform: image.platform as Image['Platform'],
    PlatformDetails: windows ? 'Windows' : 'Linux/UNIX',
    UsageOperation: windows ? 'RunInstances:0002' : 'RunInstances',
    Architecture: 'x86_64',
    ImageType: 'machine',
    RootDeviceType: 'ebs',
    RootDeviceName: windows ? '/dev/sda1' : '/dev/xvda',
    VirtualizationType: 'hvm',
    Hypervisor: 'xen',
    EnaSupport: true,
    BlockDeviceMappings: snapshots.map((snapshot, i) => ({
      DeviceName: i === 0 ? (windows ? '/dev/sda1' : '/dev/xvda') : `/dev/xvd${String.fromCharCode(98 + i)}`,
      Ebs: {
        SnapshotId: snapshot?.snapshotId ?? image.snapshotIds[i],
        VolumeSize: snapshot?.volumeSize ?? 30,
        VolumeType: 'gp3',
        DeleteOnTermination: true,
        Encrypted: snapshot?.encrypted ?? false,
      },
    })),
    // EC2 tags belong to the account that set them: a sharee sees its own, none of the owner's (tagsOf)
    Tags: tagsOf(image, ctx.account).size > 0 ? tagList(tagsOf(image, ctx.account)) : undefined,
    DeregistrationProtection: image.deregistrationProtection,
    DeprecationTime: image.deprecationTime,
    SourceImageId: image.sourceImageId,
    SourceImageRegion: image.sourceRegion,
    StateReason:
      image.stateReason === undefined
        ? undefined
        : { Code: image.state === 'failed' ? 'Client.CopyFailed' : 'Server.Unknown', Message: image.stateReason },
    LastLaunchedTime: image.lastLaunchedTime,
  };
}

function imageFilter(image: Ami, name: string, account: string): string[] | undefined {
  switch (name) {
    case 'image-id':
      return [image.imageId];
    case 'name':
      return [image.name];
    case 'state':
      return [image.state];
    case 'owner-id':
      return [image.ownerId];
    case 'is-public':
      return [String(image.launchPermissions.groups.has('all'))];
    case 'platform':
      return image.platform === undefined ? [] : [image.platform];
    case 'description':
      return image.description === undefined ? [] : [image.description];
    case 'source-image-id':
      return image.sourceImageId === undefined ? [] : [image.sourceImageId];
    case 'source-image-region':
      return image.sourceRegion === undefined ? [] : [image.sourceRegion];
    case 'image-type':
      return ['machine'];
    case 'architecture':
      return ['x86_64'];
    default:
      // tag filters match the caller's own tags (tag:, tag-key, tag-value)
      return tagFilter(tagsOf(image, account), name);
  }
}

function describeImages(ctx: Ctx, input: DescribeImagesRequest) {
  if (input.ImageIds !== undefined && input.MaxResults !== undefined) {
    throw new AwsError('InvalidParameterCombination', 'The parameter ImageIds cannot be used with the parameter MaxResults');
  }
  const owners = (input.Owners ?? []).map((o) => (o === 'self' ? ctx.account : o));
  let images = visibleImages(ctx, { consumeInvisible: true }, { imageIds: input.ImageIds, owners });
  if (owners.length > 0) {
    images = images.filter((i) => owners.includes(i.ownerId));
  }
  if (input.ExecutableUsers !== undefined && input.ExecutableUsers.length > 0) {
    // "Scopes the images by users with explicit launch permissions": another account's ID, only AMIs shared with
    // that ID (not through its organization or OU); self or the caller's own ID, AMIs shared with the caller,
    // through its organization or OU too; all, public AMIs (EC2 API Reference, DescribeImages, ExecutableUsers).
    // The owner's launch permission is implicit: its own AMIs are not returned for it.
    const users = input.ExecutableUsers;
    images = images.filter((i) =>
      users.some((user) =>
        user === 'all'
          ? i.launchPermissions.groups.has('all')
          : user === 'self' || user === ctx.account
            ? i.ownerId !== ctx.account &&
              (i.launchPermissions.userIds.has(ctx.account) || sharedThroughOrganization(i, ctx.account, ctx.env.state))
            : i.launchPermissions.userIds.has(user),
      ),
    );
  }
  if (input.IncludeDisabled !== true) images = images.filter((i) => i.state !== 'disabled');
  if (input.IncludeDeprecated !== true) {
    const now = ctx.env.clock.now();
    images = images.filter((i) => i.ownerId === ctx.account || i.deprecationTime === undefined || Date.parse(i.deprecationTime) > now);
  }
  if (input.ImageIds !== undefined && input.ImageIds.length > 0) {
    for (const id of input.ImageIds) checkImageId(id);
    const missing = input.ImageIds.filter((id) => !images.some((i) => i.imageId === id));
    if (missing.length > 0) throw new AwsError('InvalidAMIID.NotFound', `The image id '[${missing.join(', ')}]' does not exist`);
    images = images.filter((i) => input.ImageIds?.includes(i.imageId));
  }
  images = applyFilters(images, input.Filters, (image, name) => imageFilter(image, name, ctx.account));
  const { page, nextToken } = paginate(images, input.MaxResults, input.NextToken, { default: 1000, min: 5, max: 1000 });
  return { Images: page.map((i) => toImage(i, ctx)), NextToken: nextToken };
}

function describeImageAttribute(ctx: Ctx, input: DescribeImageAttributeRequest) {
  const image = ownImage(ctx, input.ImageId);
  const p = image.launchPermissions;
  switch (input.Attribute) {
    case 'launchPermission':
      return {
        ImageId: image.imageId,
        LaunchPermissions: [
          ...[...p.userIds].map((UserId) => ({ UserId })),
          ...[...p.groups].map((Group) => ({ Group })),
          ...[...p.organizationArns].map((OrganizationArn) => ({ OrganizationArn })),
          ...[...p.organizationalUnitArns].map((OrganizationalUnitArn) => ({ OrganizationalUnitArn })),
        ],
      };
    case 'description':
      return { ImageId: image.imageId, Description: { Value: image.description ?? '' } };
    case 'lastLaunchedTime':
      return { ImageId: image.imageId, LastLaunchedTime: { Value: image.lastLaunchedTime ?? '' } };
    case 'deregistrationProtection':
      return { ImageId: image.imageId, DeregistrationProtection: { Value: image.deregistrationProtection } };
    default:
      throw new AwsError(
        'InvalidParameterValue',
        `Value (${String(input.Attribute)}) for parameter attribute is invalid. Unknown attribute.`,
      );
  }
}

function modifyImageAttribute(ctx: Ctx, input: ModifyImageAttributeRequest) {
  const image = ownImage(ctx, input.ImageId);
  const p = image.launchPermissions;
  const apply = (
    entries: {
      UserId?: string | undefined;
      Group?: string | undefined;
      OrganizationArn?: string | undefined;
      OrganizationalUnitArn?: string | undefined;
    }[],
    add: boolean,
  ) => {
    for (const entry of entries) {
      if (entry.UserId !== undefined && !/^\d{12}$/.test(entry.UserId))
        throw new AwsError('InvalidAMIAttributeItemValue', `Invalid attribute item value "${entry.UserId}" for userId item type.`);
      if (entry.Group !== undefined && entry.Group !== 'all')
        throw new AwsError('InvalidAMIAttributeItemValue', `Invalid attribute item value "${entry.Group}" for group item type.`);
      const change = <T>(set: Set<T>, value: T | undefined) => {
        if (value === undefined) return;
        if (add) set.add(value);
        else set.delete(value);
      };
      change(p.userIds, entry.UserId);
      change(p.groups, entry.Group);
      change(p.organizationArns, entry.OrganizationArn);
      change(p.organizationalUnitArns, entry.OrganizationalUnitArn);
    }
  };
  if (input.LaunchPermission !== undefined) {
    apply(input.LaunchPermission.Add ?? [], true);
    apply(input.LaunchPermission.Remove ?? [], false);
  } else if (input.Attribute === 'launchPermission' || input.UserIds !== undefined || input.UserGroups !== undefined) {
    const add = input.OperationType !== 'remove';
    apply([...(input.UserIds ?? []).map((UserId) => ({ UserId })), ...(input.UserGroups ?? []).map((Group) => ({ Group }))], add);
  } else if (input.Description !== undefined) {
    image.description = input.Description.Value;
  } else {
    throw new AwsError('MissingParameter', 'No attributes specified.');
  }
  return {};
}

/** Create a snapshot and an AMI in a cell (CopyImage, Image Builder builds and copies, scenarios). */
function registerImage(
  state: SandboxState,
  clock: { iso: () => string; now: () => number },
  options: {
    account: string;
    region: string;
    name: string;
    description?: string | undefined;
    platform?: 'windows' | undefined;
    state?: Ami['state'];
    tags?: Record<string, string>;
    encrypted?: boolean;
    kmsKeyId?: string | undefined;
    sizeGiB?: number;
    sourceImageId?: string | undefined;
    sourceRegion?: string | undefined;
    invisibleReads?: number;
    creationDate?: string;
  },
): Ami {
  const store = state.cell(options.account, options.region);
  const snapshotId = resourceId('snap');
  store.snapshots.set(snapshotId, {
    snapshotId,
    ownerId: options.account,
    region: options.region,
    volumeSize: options.sizeGiB ?? 30,
    encrypted: options.encrypted ?? options.kmsKeyId !== undefined,
    kmsKeyId: options.kmsKeyId,
    description: `Created for ${options.name}`,
    startTime: clock.iso(),
    tags: new Map(),
  });
  const image: Ami = {
    imageId: resourceId('ami'),
    ownerId: options.account,
    region: options.region,
    name: options.name,
    description: options.description,
    state: options.state ?? 'available',
    stateReason: undefined,
    creationDate: options.creationDate ?? clock.iso(),
    platform: options.platform,
    tags: new Map(Object.entries(options.tags ?? {})),
    accountTags: new Map(),
    launchPermissions: { userIds: new Set(), groups: new Set(), organizationArns: new Set(), organizationalUnitArns: new Set() },
    snapshotIds: [snapshotId],
    deregistrationProtection: 'disabled',
    deprecationTime: undefined,
    sourceImageId: options.sourceImageId,
    sourceRegion: options.sourceRegion,
    invisibleReads: options.invisibleReads ?? 0,
    lastLaunchedTime: undefined,
    deregisteredAt: undefined,
  };
  store.images.set(image.imageId, image);
  state.accounts.add(options.account);
  return image;
}

function copyImage(ctx: Ctx, input: CopyImageRequest) {
  if (input.SourceImageId === undefined || input.SourceRegion === undefined || input.Name === undefined) {
    throw new AwsError('MissingParameter', 'The request must contain the parameters SourceImageId, SourceRegion and Name');
  }
  const source = ctx.env.state.findImage(input.SourceRegion, input.SourceImageId);
  if (source === undefined || source.state === 'deregistered' || !canSee(source, ctx.account, ctx.env.state)) {
    throw new AwsError('InvalidAMIID.NotFound', `The image id '[${input.SourceImageId}]' does not exist`);
  }
  if (source.state !== 'available')
    throw new AwsError('IncorrectState', `Image ${input.SourceImageId} is not in a valid state for copying`);
  const copy = registerImage(ctx.env.state, ctx.env.clock, {
    account: ctx.account,
    region: ctx.region,
    name: input.Name,
    description: input.Description,
    platform: source.platform,
    state: 'pending',
    encrypted: input.Encrypted,
    kmsKeyId: input.KmsKeyId,
    sourceImageId: source.imageId,
    sourceRegion: source.region,
    invisibleReads: ctx.env.faults.settings.invisibleReads,
  });
  ctx.env.clock.after(COPY_MS, () => {
    if (copy.state === 'pending') copy.state = 'available';
  });
  return { ImageId: copy.imageId };
}

function deregisterImage(ctx: Ctx, input: DeregisterImageRequest) {
  const image = ownImage(ctx, input.ImageId);
  if (image.deregistrationProtection === 'enabled') {
    throw new AwsError(
      'OperationNotPermitted',
      `Image ${image.imageId} cannot be deregistered because deregistration protection is enabled. Disable it first.`,
    );
  }
  image.state = 'deregistered';
  image.deregisteredAt = ctx.env.clock.now();
  here(ctx).fastLaunch.delete(image.imageId);
  const results: { SnapshotId: string; ReturnCode: string }[] = [];
  if (input.DeleteAssociatedSnapshots === true) {
    for (const snapshotId of image.snapshotIds) {
      if (snapshotInUse(ctx.env.state, ctx.account, ctx.region, snapshotId, image.imageId)) {
        results.push({ SnapshotId: snapshotId, ReturnCode: 'skipped' });
      } else if (
        !allowed(ctx, { action: 'ec2:DeleteSnapshot', resource: ec2Arn(ctx, snapshotId), context: snapshotTags(ctx, snapshotId) })
      ) {
        // "DeleteAssociatedSnapshots … ReturnCode missing-permissions": the caller may not delete this
        // snapshot (DeregisterImage API reference, DeleteSnapshotReturnCode); the AMI is deregistered anyway
        results.push({ SnapshotId: snapshotId, ReturnCode: 'missing-permissions' });
      } else if (here(ctx).snapshots.delete(snapshotId)) {
        results.push({ SnapshotId: snapshotId, ReturnCode: 'success' });
      } else {
        results.push({ SnapshotId: snapshotId, ReturnCode: 'missing-permissions' });
      }
    }
  }
  return { Return: true, DeleteSnapshotResults: input.DeleteAssociatedSnapshots === true ? results : undefined };
}

function setProtection(ctx: Ctx, input: EnableImageDeregistrationProtectionRequest, value: Ami['deregistrationProtection']) {
  const image = ownImage(ctx, input.ImageId);
  image.deregistrationProtection = value;
  return { Return: value };
}

function disableImage(ctx: Ctx, input: DisableImageRequest) {
  const image = ownImage(ctx, input.ImageId);
  image.state = 'disabled';
  // "removes all launch permissions ... If an AMI was public or previously shared, it is made private"
  image.launchPermissions = { userIds: new Set(), groups: new Set(), organizationArns: new Set(), organizationalUnitArns: new Set() };
  return { Return: true };
}

function enableImage(ctx: Ctx, input: DisableImageRequest) {
  const image = ownImage(ctx, input.ImageId);
  if (image.state === 'disabled') image.state = 'available';
  return { Return: true };
}

function enableDeprecation(ctx: Ctx, input: EnableImageDeprecationRequest) {
  const image = ownImage(ctx, input.ImageId);
  if (input.DeprecateAt === undefined) throw new AwsError('MissingParameter', 'The request must contain the parameter DeprecateAt');
  image.deprecationTime = new Date(input.DeprecateAt).toISOString();
  return { Return: true };
}

export {
  COPY_MS,
  copyImage,
  deregisterImage,
  describeImageAttribute,
  describeImages,
  disableImage,
  enableDeprecation,
  enableImage,
  modifyImageAttribute,
  registerImage,
  setProtection,
};
