import type {
  CopyImageRequest,
  CreateLaunchTemplateRequest,
  CreateLaunchTemplateVersionRequest,
  CreateTagsRequest,
  DeleteSnapshotRequest,
  DeregisterImageRequest,
  DescribeFastLaunchImagesRequest,
  DescribeImageAttributeRequest,
  DescribeImageReferencesRequest,
  DescribeImagesRequest,
  DescribeInstancesRequest,
  DescribeLaunchTemplatesRequest,
  DescribeLaunchTemplateVersionsRequest,
  DescribeSnapshotsRequest,
  DisableFastLaunchRequest,
  DisableImageRequest,
  EnableFastLaunchRequest,
  EnableImageDeprecationRequest,
  EnableImageDeregistrationProtectionRequest,
  Image,
  ModifyImageAttributeRequest,
  ModifyLaunchTemplateRequest,
  RunInstancesRequest,
  TerminateInstancesRequest,
} from '@aws-sdk/client-ec2';
import * as schemas from '@aws-sdk/client-ec2';
import { allowed, ec2Arn } from '../../iam/authorize.ts';
import { AwsError } from '../../protocol/errors.ts';
import { type Ctx, type ServiceDef, op } from '../../server.ts';
import { type Ami, type CellStore, type ExportTask, type FastLaunch, type LaunchTemplate, type SandboxState, type UsageReport, hex, resourceId } from '../../state.ts';
import { type Filter, applyFilters, paginate, tagFilter, tagList, validateTags } from '../common.ts';
import { putObject } from '../s3.ts';
import { parseSelector, selectParameter } from '../parameters.ts';
import { partitionOf } from '../../partition.ts';

/** Simulated time an AMI copy takes (pending → available). */
const COPY_MS = 2 * 60_000;
/** Simulated time from EnableFastLaunch to the first pre-provisioned snapshot (`enabled`). */
const FAST_LAUNCH_MS = 3 * 60_000;

function here(ctx: Ctx): CellStore {
  return ctx.env.state.cell(ctx.account, ctx.region);
}

function checkImageId(id: string): void {
  if (!/^ami-[0-9a-f]{8,17}$/.test(id)) throw new AwsError('InvalidAMIID.Malformed', `Invalid id: "${id}" (expecting "ami-...")`);
}

/**
 * Whether `account` may see (launch) an AMI: its owner, an explicit grant, public, or a grant to the account's
 * organization or to its OU or any OU above it ("When you share an AMI with an organization or an OU, all of
 * the children accounts get access to the AMI", EC2 User Guide, "Share an AMI with organizations and OUs").
 */
function canSee(image: Ami, account: string, state: SandboxState): boolean {
  const p = image.launchPermissions;
  return image.ownerId === account || p.userIds.has(account) || p.groups.has('all') || sharedThroughOrganization(image, account, state);
}

/** Whether a launch permission for `account`'s organization, or for its OU or an OU above it, shares the AMI with it. */
function sharedThroughOrganization(image: Ami, account: string, state: SandboxState): boolean {
  const p = image.launchPermissions;
  const organization = state.organizations.get(account);
  if (organization === undefined || (p.organizationArns.size === 0 && p.organizationalUnitArns.size === 0)) return false;
  if ([...p.organizationArns].some((arn) => arn.endsWith(`:organization/${organization}`))) return true;
  for (let unit = state.accountUnits.get(account); unit !== undefined; unit = state.organizationalUnits.get(unit)?.parent) {
    const id = unit;
    if ([...p.organizationalUnitArns].some((arn) => arn.endsWith(`:ou/${organization}/${id}`))) return true;
  }
  return false;
}

/**
 * The tags of an AMI as `account` sees them: the owner's own, or the ones `account` put on it when the AMI is
 * shared with it (see {@link Ami.accountTags}); a sharee never sees the owner's, nor the owner a sharee's.
 */
function tagsOf(image: Ami, account: string): Map<string, string> {
  return image.ownerId === account ? image.tags : (image.accountTags.get(account) ?? new Map());
}

/** Images an account can see in a region, honouring eventual consistency for reads. */
function visibleImages(ctx: Ctx, options: { consumeInvisible: boolean }): Ami[] {
  const out: Ami[] = [];
  for (const { region, store } of ctx.env.state.allCells()) {
    if (region !== ctx.region) continue;
    for (const image of store.images.values()) {
      if (image.state === 'deregistered' || !canSee(image, ctx.account, ctx.env.state)) continue;
      if (image.invisibleReads > 0) {
        if (options.consumeInvisible) image.invisibleReads -= 1;
        continue;
      }
      out.push(image);
    }
  }
  return out;
}

/** The caller's own AMI, or the error EC2 gives. */
function ownImage(ctx: Ctx, imageId: string | undefined): Ami {
  if (imageId === undefined) throw new AwsError('MissingParameter', 'The request must contain the parameter ImageId');
  checkImageId(imageId);
  const image = here(ctx).images.get(imageId);
  if (image === undefined || image.state === 'deregistered') {
    const elsewhere = ctx.env.state.findImage(ctx.region, imageId);
    if (elsewhere !== undefined && elsewhere.state !== 'deregistered' && canSee(elsewhere, ctx.account, ctx.env.state)) {
      throw new AwsError('AuthFailure', `Not authorized for image:${imageId}`);
    }
    throw new AwsError('InvalidAMIID.NotFound', `The image id '[${imageId}]' does not exist`);
  }
  return image;
}

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
    StateReason: image.stateReason === undefined ? undefined : { Code: image.state === 'failed' ? 'Client.CopyFailed' : 'Server.Unknown', Message: image.stateReason },
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
  let images = visibleImages(ctx, { consumeInvisible: true });
  if (input.Owners !== undefined && input.Owners.length > 0) {
    const owners = input.Owners.map((o) => (o === 'self' ? ctx.account : o));
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
            ? i.ownerId !== ctx.account && (i.launchPermissions.userIds.has(ctx.account) || sharedThroughOrganization(i, ctx.account, ctx.env.state))
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
      throw new AwsError('InvalidParameterValue', `Value (${String(input.Attribute)}) for parameter attribute is invalid. Unknown attribute.`);
  }
}

function modifyImageAttribute(ctx: Ctx, input: ModifyImageAttributeRequest) {
  const image = ownImage(ctx, input.ImageId);
  const p = image.launchPermissions;
  const apply = (entries: { UserId?: string | undefined; Group?: string | undefined; OrganizationArn?: string | undefined; OrganizationalUnitArn?: string | undefined }[], add: boolean) => {
    for (const entry of entries) {
      if (entry.UserId !== undefined && !/^\d{12}$/.test(entry.UserId)) throw new AwsError('InvalidAMIAttributeItemValue', `Invalid attribute item value "${entry.UserId}" for userId item type.`);
      if (entry.Group !== undefined && entry.Group !== 'all') throw new AwsError('InvalidAMIAttributeItemValue', `Invalid attribute item value "${entry.Group}" for group item type.`);
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

type Taggable = { tags: Map<string, string> };

function taggable(ctx: Ctx, id: string): Taggable {
  const store = here(ctx);
  const found: Taggable | undefined =
    store.images.get(id) ?? store.snapshots.get(id) ?? store.launchTemplates.get(id) ?? (store.instances.get(id) === undefined ? undefined : { tags: new Map() });
  if (found === undefined || (found as Ami).state === 'deregistered') {
    if (id.startsWith('ami-')) {
      // An AMI shared with the caller takes the caller's own tags, visible only to the caller (EC2 User Guide,
      // "Share an AMI with specific AWS accounts", Considerations: "User-defined tags that you attach to a
      // shared AMI are available only to your AWS account"). An AMI the caller cannot see does not exist for
      // it: EC2 answers InvalidAMIID.NotFound, as DescribeImages does for an id it cannot see.
      const elsewhere = ctx.env.state.findImage(ctx.region, id);
      if (elsewhere !== undefined && elsewhere.state !== 'deregistered' && canSee(elsewhere, ctx.account, ctx.env.state)) {
        let own = elsewhere.accountTags.get(ctx.account);
        if (own === undefined) {
          own = new Map();
          elsewhere.accountTags.set(ctx.account, own);
        }
        return { tags: own };
      }
      throw new AwsError('InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
    }
    if (id.startsWith('snap-')) throw new AwsError('InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
    if (id.startsWith('lt-')) throw new AwsError('InvalidLaunchTemplateId.NotFound', `The launch template ID '${id}' does not exist`);
    throw new AwsError('InvalidID', `The ID '${id}' is not valid`);
  }
  return found;
}

function createTags(ctx: Ctx, input: CreateTagsRequest) {
  const tags = input.Tags ?? [];
  validateTags(tags);
  const targets = (input.Resources ?? []).map((id) => taggable(ctx, id));
  for (const target of targets) for (const tag of tags) target.tags.set(tag.Key ?? '', tag.Value ?? '');
  return {};
}

function deleteTags(ctx: Ctx, input: { Resources?: string[]; Tags?: { Key?: string; Value?: string }[] }) {
  for (const id of input.Resources ?? []) {
    const target = taggable(ctx, id);
    for (const tag of input.Tags ?? []) if (tag.Value === undefined || target.tags.get(tag.Key ?? '') === tag.Value) target.tags.delete(tag.Key ?? '');
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
  if (source.state !== 'available') throw new AwsError('IncorrectState', `Image ${input.SourceImageId} is not in a valid state for copying`);
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

function deregisterImage(ctx: Ctx, input: DeregisterImageRequest) {
  const image = ownImage(ctx, input.ImageId);
  if (image.deregistrationProtection === 'enabled') {
    throw new AwsError('OperationNotPermitted', `Image ${image.imageId} cannot be deregistered because deregistration protection is enabled. Disable it first.`);
  }
  image.state = 'deregistered';
  image.deregisteredAt = ctx.env.clock.now();
  here(ctx).fastLaunch.delete(image.imageId);
  const results: { SnapshotId: string; ReturnCode: string }[] = [];
  if (input.DeleteAssociatedSnapshots === true) {
    for (const snapshotId of image.snapshotIds) {
      if (snapshotInUse(ctx.env.state, ctx.account, ctx.region, snapshotId, image.imageId)) {
        results.push({ SnapshotId: snapshotId, ReturnCode: 'skipped' });
      } else if (!allowed(ctx, { action: 'ec2:DeleteSnapshot', resource: ec2Arn(ctx, snapshotId), context: snapshotTags(ctx, snapshotId) })) {
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

// ---- launch templates

function findTemplate(ctx: Ctx, id: string | undefined, name: string | undefined): LaunchTemplate {
  if (id !== undefined && name !== undefined) {
    throw new AwsError('InvalidParameterCombination', 'You can specify either the launch template ID or the launch template name, but not both.');
  }
  const templates = [...here(ctx).launchTemplates.values()];
  if (id !== undefined) {
    const found = templates.find((t) => t.id === id);
    if (found === undefined) throw new AwsError('InvalidLaunchTemplateId.NotFound', `The specified launch template, with template ID ${id}, does not exist.`);
    return found;
  }
  if (name !== undefined) {
    const found = templates.find((t) => t.name === name);
    if (found === undefined) throw new AwsError('InvalidLaunchTemplateName.NotFoundException', `The specified launch template, with template name ${name}, does not exist.`);
    return found;
  }
  throw new AwsError('MissingParameter', 'The request must contain the parameter LaunchTemplateId or LaunchTemplateName');
}

function templateSummary(t: LaunchTemplate) {
  return {
    LaunchTemplateId: t.id,
    LaunchTemplateName: t.name,
    DefaultVersionNumber: t.defaultVersion,
    LatestVersionNumber: t.versions.length,
    CreateTime: new Date(t.createTime),
    CreatedBy: `arn:${partitionOf(t.region)}:iam::${t.ownerId}:root`,
    Tags: t.tags.size > 0 ? tagList(t.tags) : undefined,
  };
}

function versionOut(t: LaunchTemplate, n: number, data?: Record<string, unknown>) {
  const v = t.versions[n - 1];
  return {
    LaunchTemplateId: t.id,
    LaunchTemplateName: t.name,
    VersionNumber: n,
    VersionDescription: v?.description,
    CreateTime: v === undefined ? undefined : new Date(v.createTime),
    CreatedBy: `arn:${partitionOf(t.region)}:iam::${t.ownerId}:root`,
    DefaultVersion: t.defaultVersion === n,
    LaunchTemplateData: data ?? v?.data,
  };
}

function createLaunchTemplate(ctx: Ctx, input: CreateLaunchTemplateRequest) {
  const name = input.LaunchTemplateName;
  if (name === undefined || !/^[a-zA-Z0-9().\-/_]{3,128}$/.test(name)) throw new AwsError('InvalidLaunchTemplateName.MalformedException', `Launch template name ${String(name)} is invalid`);
  if ([...here(ctx).launchTemplates.values()].some((t) => t.name === name)) {
    throw new AwsError('InvalidLaunchTemplateName.AlreadyExistsException', `Launch template name already in use.`);
  }
  const tags = input.TagSpecifications?.filter((s) => s.ResourceType === 'launch-template').flatMap((s) => s.Tags ?? []) ?? [];
  validateTags(tags);
  checkSsmImageId(ctx, input.LaunchTemplateData?.ImageId);
  const template: LaunchTemplate = {
    id: resourceId('lt'),
    name,
    ownerId: ctx.account,
    region: ctx.region,
    defaultVersion: 1,
    versions: [{ number: 1, description: input.VersionDescription, createTime: ctx.env.clock.iso(), data: (input.LaunchTemplateData ?? {}) as Record<string, unknown> }],
    tags: new Map(tags.map((t) => [t.Key ?? '', t.Value ?? ''])),
    createTime: ctx.env.clock.iso(),
    clientTokens: new Map(),
  };
  here(ctx).launchTemplates.set(template.id, template);
  return { LaunchTemplate: templateSummary(template) };
}

function describeLaunchTemplates(ctx: Ctx, input: DescribeLaunchTemplatesRequest) {
  let templates = [...here(ctx).launchTemplates.values()];
  if (input.LaunchTemplateIds !== undefined && input.LaunchTemplateIds.length > 0) {
    templates = input.LaunchTemplateIds.map((id) => findTemplate(ctx, id, undefined));
  }
  if (input.LaunchTemplateNames !== undefined && input.LaunchTemplateNames.length > 0) {
    templates = input.LaunchTemplateNames.map((name) => findTemplate(ctx, undefined, name));
  }
  templates = applyFilters(templates, input.Filters, (t, name) => (name === 'launch-template-name' ? [t.name] : tagFilter(t.tags, name)));
  const { page, nextToken } = paginate(templates, input.MaxResults, input.NextToken, { default: 100, min: 1, max: 200 });
  return { LaunchTemplates: page.map(templateSummary), NextToken: nextToken };
}

function resolveVersion(t: LaunchTemplate, version: string): number {
  if (version === '$Latest') return t.versions.length;
  if (version === '$Default') return t.defaultVersion;
  const n = Number(version);
  if (!Number.isInteger(n) || n < 1 || n > t.versions.length) {
    throw new AwsError('InvalidLaunchTemplateId.VersionNotFound', `Could not find launch template version ${version} for template ${t.id}`);
  }
  return n;
}

const SSM_ALIAS = 'resolve:ssm:';

/**
 * The parameter version a `resolve:ssm:` ImageId selects, or the SsmInvalidParameter error EC2 answers.
 *
 * Forms (EC2 API reference, RequestLaunchTemplateData / FleetLaunchTemplateOverridesRequest, ImageId):
 * `resolve:ssm:<name>`, `<name>:<version-number>`, `<name>:<label>`, and the same with the parameter's ARN for
 * a parameter shared from another account. Sharing (AWS RAM, advanced tier) is not modelled: an ARN resolves
 * only in the caller's own account and region; another account's ARN is refused as not found.
 *
 * EC2 refuses a reference it cannot use when the template or version is created: "You must create a Systems
 * Manager parameter before you can use it in a launch template … create a parameter with the data type
 * aws:ec2:image" (EC2 Auto Scaling User Guide, "Use AWS Systems Manager parameters instead of AMI IDs in launch
 * templates", https://docs.aws.amazon.com/autoscaling/ec2/userguide/using-systems-manager-parameters.html).
 * The code is `SsmInvalidParameter`; for a parameter of another data type EC2's message is "Unsupported data
 * type. The following parameter data types are supported: aws:ec2:image", as quoted from CloudFormation's
 * answer to CreateLaunchTemplate in aws/aws-cdk#26712 (and CreateLaunchTemplateVersion "api error
 * SsmInvalidParameter" in kent8192/reinhardt-web#2023). EC2 documents no message for a parameter (or version,
 * or label) that does not exist; the sandbox says which with the same code.
 */
function ssmReference(ctx: Ctx, imageId: string): { value: string } | AwsError {
  const ref = imageId.slice(SSM_ALIAS.length);
  let local = ref;
  const arn = /^arn:aws[\w-]*:ssm:([\w-]+):(\d{12}):parameter(\/.*)$/.exec(ref);
  if (arn !== null) {
    if (arn[1] !== ctx.region || arn[2] !== ctx.account) return new AwsError('SsmInvalidParameter', `Invalid SSM parameter ${ref}: the parameter does not exist or is not shared with account ${ctx.account}.`);
    // own parameters are named without the leading slash in the ARN unless they are hierarchical
    const path = arn[3] ?? '';
    const name = parseSelector(path).name;
    local = here(ctx).parameters.has(name) ? path : path.slice(1);
  }
  try {
    const { parameter, version } = selectParameter(here(ctx), local);
    if (parameter.dataType !== 'aws:ec2:image') return new AwsError('SsmInvalidParameter', 'Unsupported data type. The following parameter data types are supported: aws:ec2:image');
    return { value: version.value };
  } catch (error: unknown) {
    if (!(error instanceof AwsError)) throw error;
    return new AwsError('SsmInvalidParameter', `Invalid SSM parameter ${ref}: ${error.message}`);
  }
}

/** Refuse a launch template ImageId that names a parameter EC2 cannot use (see ssmReference). */
function checkSsmImageId(ctx: Ctx, imageId: unknown): void {
  if (typeof imageId !== 'string' || !imageId.startsWith(SSM_ALIAS)) return;
  const resolved = ssmReference(ctx, imageId);
  if (resolved instanceof AwsError) throw resolved;
}

/**
 * What a launch template ImageId launches: the AMI of the parameter version a `resolve:ssm:` reference selects
 * (latest, `:version` or `:label`), else the value itself. A reference that no longer resolves (the parameter
 * deleted since) is returned as it is.
 */
function resolveSsmImage(ctx: Ctx, imageId: unknown): unknown {
  if (typeof imageId !== 'string' || !imageId.startsWith(SSM_ALIAS)) return imageId;
  const resolved = ssmReference(ctx, imageId);
  return resolved instanceof AwsError ? imageId : resolved.value;
}

function describeLaunchTemplateVersions(ctx: Ctx, input: DescribeLaunchTemplateVersionsRequest) {
  const t = findTemplate(ctx, input.LaunchTemplateId, input.LaunchTemplateName);
  let numbers = t.versions.map((v) => v.number);
  if (input.Versions !== undefined && input.Versions.length > 0) numbers = [...new Set(input.Versions.map((v) => resolveVersion(t, v)))];
  if (input.MinVersion !== undefined) numbers = numbers.filter((n) => n >= resolveVersion(t, input.MinVersion ?? '1'));
  if (input.MaxVersion !== undefined) numbers = numbers.filter((n) => n <= resolveVersion(t, input.MaxVersion ?? '$Latest'));
  const data = (n: number) => {
    const d = { ...(t.versions[n - 1]?.data ?? {}) };
    if (input.ResolveAlias === true && d.ImageId !== undefined) d.ImageId = resolveSsmImage(ctx, d.ImageId);
    return d;
  };
  numbers = applyFilters(numbers, input.Filters, (n, name) => {
    if (name === 'image-id') return typeof data(n).ImageId === 'string' ? [String(data(n).ImageId)] : [];
    if (name === 'is-default-version') return [String(t.defaultVersion === n)];
    if (name === 'instance-type') return typeof data(n).InstanceType === 'string' ? [String(data(n).InstanceType)] : [];
    return undefined;
  });
  const { page, nextToken } = paginate(numbers, input.MaxResults, input.NextToken, { default: 100, min: 1, max: 200 });
  return { LaunchTemplateVersions: page.map((n) => versionOut(t, n, data(n))), NextToken: nextToken };
}

function createLaunchTemplateVersion(ctx: Ctx, input: CreateLaunchTemplateVersionRequest) {
  const t = findTemplate(ctx, input.LaunchTemplateId, input.LaunchTemplateName);
  if (input.LaunchTemplateData === undefined) throw new AwsError('MissingParameter', 'The request must contain the parameter LaunchTemplateData');
  if (input.ClientToken !== undefined) {
    const existing = t.clientTokens.get(input.ClientToken);
    if (existing !== undefined) return { LaunchTemplateVersion: versionOut(t, existing) };
  }
  if (t.versions.length >= 10_000) throw new AwsError('LaunchTemplateVersionLimitExceeded', 'You have reached the maximum of 10000 versions for this launch template.');
  const source = input.SourceVersion === undefined ? {} : (t.versions[resolveVersion(t, input.SourceVersion) - 1]?.data ?? {});
  const data = { ...source, ...(input.LaunchTemplateData as Record<string, unknown>) };
  checkSsmImageId(ctx, data.ImageId);
  const number = t.versions.length + 1;
  t.versions.push({ number, description: input.VersionDescription, createTime: ctx.env.clock.iso(), data });
  if (input.ClientToken !== undefined) t.clientTokens.set(input.ClientToken, number);
  return { LaunchTemplateVersion: versionOut(t, number) };
}

function modifyLaunchTemplate(ctx: Ctx, input: ModifyLaunchTemplateRequest) {
  const t = findTemplate(ctx, input.LaunchTemplateId, input.LaunchTemplateName);
  if (input.DefaultVersion !== undefined) t.defaultVersion = resolveVersion(t, input.DefaultVersion);
  return { LaunchTemplate: templateSummary(t) };
}

// ---- Fast Launch

function advanceFastLaunch(ctx: Ctx, entry: FastLaunch): void {
  const now = ctx.env.clock.now();
  if (now < entry.readyAt) return;
  if (entry.state === 'enabling') {
    entry.state = entry.fails ? 'enabling-failed' : 'enabled';
    entry.stateTransitionReason = entry.fails ? 'Client.InternalError: pre-provisioning instance failed to launch (injected by the sandbox)' : 'Client.UserInitiated';
    entry.stateTransitionTime = new Date(entry.readyAt).toISOString();
  } else if (entry.state === 'disabling') {
    here(ctx).fastLaunch.delete(entry.imageId);
  }
}

function fastLaunchOut(entry: FastLaunch) {
  return {
    ImageId: entry.imageId,
    ResourceType: 'snapshot' as const,
    SnapshotConfiguration: { TargetResourceCount: entry.targetResourceCount },
    LaunchTemplate: entry.launchTemplate === undefined ? undefined : { LaunchTemplateId: entry.launchTemplate.id, LaunchTemplateName: entry.launchTemplate.name, Version: entry.launchTemplate.version },
    MaxParallelLaunches: entry.maxParallelLaunches,
    OwnerId: entry.ownerId,
    State: entry.state,
    StateTransitionReason: entry.stateTransitionReason,
    StateTransitionTime: new Date(entry.stateTransitionTime),
  };
}

function enableFastLaunch(ctx: Ctx, input: EnableFastLaunchRequest) {
  const imageId = input.ImageId;
  if (imageId === undefined) throw new AwsError('MissingParameter', 'The request must contain the parameter ImageId');
  checkImageId(imageId);
  const image = ctx.env.state.findImage(ctx.region, imageId);
  if (image === undefined || image.state === 'deregistered' || !canSee(image, ctx.account, ctx.env.state)) {
    throw new AwsError('InvalidAMIID.NotFound', `The image id '[${imageId}]' does not exist`);
  }
  if (image.platform !== 'windows') throw new AwsError('InvalidParameterValue', `Image ${imageId} is not a Windows AMI. EC2 Fast Launch supports Windows AMIs only.`);
  // EC2's API reference names no error codes for EnableFastLaunch: the sandbox answers with the common client
  // errors of "Error codes for the Amazon EC2 API" (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html):
  // InvalidParameterValue ("The value specified in a parameter is not valid, is unsupported, or cannot be used")
  // and InvalidParameter ("The parameter specified in a request is not valid, is unsupported, or cannot be used")
  if (image.state !== 'available') throw new AwsError('InvalidParameterValue', `Image ${imageId} is not in the available state`);
  if (input.ResourceType !== undefined && input.ResourceType !== 'snapshot') throw new AwsError('InvalidParameterValue', 'ResourceType must be snapshot');
  const maxParallel = input.MaxParallelLaunches ?? 6;
  if (maxParallel < 6) throw new AwsError('InvalidParameterValue', 'MaxParallelLaunches must be 6 or greater.');
  let launchTemplate: FastLaunch['launchTemplate'];
  if (input.LaunchTemplate !== undefined) {
    if (input.LaunchTemplate.Version === undefined) throw new AwsError('MissingParameter', 'The request must contain the parameter LaunchTemplate.Version');
    const t = findTemplate(ctx, input.LaunchTemplate.LaunchTemplateId, input.LaunchTemplate.LaunchTemplateName);
    resolveVersion(t, input.LaunchTemplate.Version);
    launchTemplate = { id: t.id, name: t.name, version: input.LaunchTemplate.Version };
  }
  const existing = here(ctx).fastLaunch.get(imageId);
  if (existing !== undefined && (existing.state === 'disabling' || existing.state === 'enabling')) {
    throw new AwsError('InvalidParameter', `EC2 Fast Launch for ${imageId} is ${existing.state}; try again when it has finished.`);
  }
  const entry: FastLaunch = {
    imageId,
    ownerId: ctx.account,
    state: 'enabling',
    stateTransitionReason: 'Client.UserInitiated',
    stateTransitionTime: ctx.env.clock.iso(),
    targetResourceCount: input.SnapshotConfiguration?.TargetResourceCount ?? 5,
    maxParallelLaunches: maxParallel,
    launchTemplate,
    readyAt: ctx.env.clock.now() + FAST_LAUNCH_MS,
    fails: ctx.env.faults.fastLaunchFails(imageId, ctx.account, ctx.region),
  };
  here(ctx).fastLaunch.set(imageId, entry);
  // the first enable in an account creates AWSServiceRoleForEC2FastLaunch (the caller's right to create it
  // was checked with the rest of the request)
  ctx.env.state.serviceLinkedRoles.add(`${ctx.account}/ec2fastlaunch.amazonaws.com`);
  return fastLaunchOut(entry);
}

function disableFastLaunch(ctx: Ctx, input: DisableFastLaunchRequest) {
  const entry = here(ctx).fastLaunch.get(input.ImageId ?? '');
  if (entry === undefined) throw new AwsError('InvalidParameterValue', `EC2 Fast Launch is not enabled for ${input.ImageId ?? ''}`);
  entry.state = 'disabling';
  entry.readyAt = ctx.env.clock.now() + 60_000;
  entry.stateTransitionTime = ctx.env.clock.iso();
  return fastLaunchOut(entry);
}

function describeFastLaunchImages(ctx: Ctx, input: DescribeFastLaunchImagesRequest) {
  let entries = [...here(ctx).fastLaunch.values()];
  for (const entry of entries) advanceFastLaunch(ctx, entry);
  entries = [...here(ctx).fastLaunch.values()];
  if (input.ImageIds !== undefined && input.ImageIds.length > 0) entries = entries.filter((e) => input.ImageIds?.includes(e.imageId));
  entries = applyFilters(entries, input.Filters, (e, name) => (name === 'state' ? [e.state] : name === 'owner-id' ? [e.ownerId] : name === 'resource-type' ? ['snapshot'] : undefined));
  const { page, nextToken } = paginate(entries, input.MaxResults, input.NextToken, { default: 200, min: 0, max: 200 });
  return { FastLaunchImages: page.map(fastLaunchOut), NextToken: nextToken };
}

// ---- instances and references

function runInstances(ctx: Ctx, input: RunInstancesRequest) {
  let imageId = input.ImageId;
  let templateRef: { id: string; version: string } | undefined;
  if (input.LaunchTemplate !== undefined) {
    const t = findTemplate(ctx, input.LaunchTemplate.LaunchTemplateId, input.LaunchTemplate.LaunchTemplateName);
    const n = resolveVersion(t, input.LaunchTemplate.Version ?? '$Default');
    imageId ??= resolveSsmImage(ctx, t.versions[n - 1]?.data.ImageId) as string | undefined;
    templateRef = { id: t.id, version: String(n) };
  }
  if (imageId === undefined) throw new AwsError('MissingParameter', 'The request must contain the parameter ImageId');
  const image = ctx.env.state.findImage(ctx.region, imageId);
  if (image === undefined || image.state !== 'available' || !canSee(image, ctx.account, ctx.env.state)) {
    throw new AwsError('InvalidAMIID.NotFound', `The image id '[${imageId}]' does not exist`);
  }
  const count = Math.max(1, input.MinCount ?? 1);
  const launched = Array.from({ length: count }, () => {
    const instanceId = resourceId('i');
    here(ctx).instances.set(instanceId, { instanceId, imageId: image.imageId, ownerId: ctx.account, region: ctx.region, state: 'running', launchTime: ctx.env.clock.iso(), launchTemplate: templateRef });
    return instanceId;
  });
  image.lastLaunchedTime = ctx.env.clock.iso();
  return {
    ReservationId: resourceId('r'),
    OwnerId: ctx.account,
    Instances: launched.map((id) => ({ InstanceId: id, ImageId: image.imageId, State: { Code: 0, Name: 'pending' as const }, InstanceType: input.InstanceType ?? 't3.micro' })),
  };
}

function describeInstances(ctx: Ctx, input: DescribeInstancesRequest) {
  let instances = [...here(ctx).instances.values()];
  if (input.InstanceIds !== undefined && input.InstanceIds.length > 0) {
    const missing = input.InstanceIds.filter((id) => !here(ctx).instances.has(id));
    if (missing.length > 0) throw new AwsError('InvalidInstanceID.NotFound', `The instance ID '${missing.join(', ')}' does not exist`);
    instances = instances.filter((i) => input.InstanceIds?.includes(i.instanceId));
  }
  instances = applyFilters(instances, input.Filters, (i, name) => (name === 'image-id' ? [i.imageId] : name === 'instance-state-name' ? [i.state] : name === 'instance-id' ? [i.instanceId] : undefined));
  const { page, nextToken } = paginate(instances, input.MaxResults, input.NextToken, { default: 1000, min: 5, max: 1000 });
  return {
    Reservations: page.map((i) => ({
      ReservationId: `r-${i.instanceId.slice(2)}`,
      OwnerId: i.ownerId,
      Instances: [{ InstanceId: i.instanceId, ImageId: i.imageId, State: { Code: i.state === 'running' ? 16 : 48, Name: i.state }, LaunchTime: new Date(i.launchTime) }],
    })),
    NextToken: nextToken,
  };
}

function terminateInstances(ctx: Ctx, input: TerminateInstancesRequest) {
  return {
    TerminatingInstances: (input.InstanceIds ?? []).map((id) => {
      const instance = here(ctx).instances.get(id);
      if (instance === undefined) throw new AwsError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
      const previous = instance.state;
      instance.state = 'terminated';
      return { InstanceId: id, PreviousState: { Code: previous === 'running' ? 16 : 48, Name: previous }, CurrentState: { Code: 48, Name: 'terminated' as const } };
    }),
  };
}

const REFERENCE_TYPES = ['ec2:Instance', 'ec2:LaunchTemplate', 'ssm:Parameter', 'imagebuilder:ImageRecipe', 'imagebuilder:ContainerRecipe'];

const REFERENCE_TYPE_NAMES = ['ec2:Instance', 'ec2:LaunchTemplate', 'ssm:Parameter', 'imagebuilder:ImageRecipe', 'imagebuilder:ContainerRecipe'];
const INSTANCE_STATES = ['pending', 'running', 'shutting-down', 'terminated', 'stopping', 'stopped'];

/**
 * DescribeImageReferences with AWS's defaults (EC2 API Reference, DescribeImageReferences and
 * ResourceTypeRequest / ResourceTypeOption; EC2 User Guide, "Identify your resources referencing specified
 * AMIs"): with `IncludeAllResourceTypes`, or a resource type without options, instances in **every** state
 * count, terminated ones included, and only the **10 most recent** versions of each launch template are
 * checked. The `state-name` option narrows instance states; `version-depth` (1–10000) deepens the
 * launch template check. Launch template versions are resolved through `resolve:ssm:`.
 */
function describeImageReferences(ctx: Ctx, input: DescribeImageReferencesRequest) {
  const ids = input.ImageIds ?? [];
  if (ids.length < 1 || ids.length > 10) throw new AwsError('InvalidParameterValue', 'ImageIds must contain 1 to 10 image IDs');
  for (const id of ids) checkImageId(id);
  if (input.IncludeAllResourceTypes === true && (input.ResourceTypes ?? []).length > 0) {
    throw new AwsError('InvalidParameterCombination', 'IncludeAllResourceTypes and ResourceTypes cannot be used together');
  }
  const requested = input.ResourceTypes ?? [];
  for (const t of requested) {
    if (!REFERENCE_TYPE_NAMES.includes(t.ResourceType ?? '')) throw new AwsError('InvalidParameterValue', `Invalid resource type: ${t.ResourceType ?? ''}`);
    for (const o of t.ResourceTypeOptions ?? []) {
      const allowed = t.ResourceType === 'ec2:Instance' ? 'state-name' : t.ResourceType === 'ec2:LaunchTemplate' ? 'version-depth' : undefined;
      if (o.OptionName !== allowed) throw new AwsError('InvalidParameterValue', `Invalid option ${o.OptionName ?? ''} for resource type ${t.ResourceType ?? ''}`);
      if (o.OptionName === 'state-name' && (o.OptionValues ?? []).some((v) => !INSTANCE_STATES.includes(v))) throw new AwsError('InvalidParameterValue', `Invalid state-name: ${(o.OptionValues ?? []).join(',')}`);
      if (o.OptionName === 'version-depth') {
        const n = Number(o.OptionValues?.[0]);
        if ((o.OptionValues ?? []).length !== 1 || !Number.isInteger(n) || n < 1 || n > 10000) throw new AwsError('InvalidParameterValue', 'version-depth must be an integer between 1 and 10000');
      }
    }
  }
  const types = input.IncludeAllResourceTypes === true ? REFERENCE_TYPE_NAMES : requested.map((t) => t.ResourceType ?? '');
  if (types.length === 0) throw new AwsError('InvalidParameterCombination', 'Specify ResourceTypes or IncludeAllResourceTypes');
  const option = (type: string, name: string) => requested.find((t) => t.ResourceType === type)?.ResourceTypeOptions?.find((o) => o.OptionName === name)?.OptionValues;
  const depth = Number(option('ec2:LaunchTemplate', 'version-depth')?.[0] ?? 10);
  const states = option('ec2:Instance', 'state-name') ?? INSTANCE_STATES;
  const store = here(ctx);
  const refs: { ImageId: string; ResourceType: string; Arn: string }[] = [];
  for (const imageId of ids) {
    if (types.includes('ec2:Instance')) {
      for (const i of store.instances.values()) {
        if (i.imageId === imageId && states.includes(i.state)) refs.push({ ImageId: imageId, ResourceType: 'ec2:Instance', Arn: `arn:${partitionOf(ctx.region)}:ec2:${ctx.region}:${ctx.account}:instance/${i.instanceId}` });
      }
    }
    if (types.includes('ec2:LaunchTemplate')) {
      for (const t of store.launchTemplates.values()) {
        const recent = t.versions.slice(-depth);
        if (recent.some((v) => resolveSsmImage(ctx, v.data.ImageId) === imageId)) {
          refs.push({ ImageId: imageId, ResourceType: 'ec2:LaunchTemplate', Arn: `arn:${partitionOf(ctx.region)}:ec2:${ctx.region}:${ctx.account}:launch-template/${t.id}` });
        }
      }
    }
    if (types.includes('ssm:Parameter')) {
      for (const p of store.parameters.values()) {
        if (p.value === imageId) refs.push({ ImageId: imageId, ResourceType: 'ssm:Parameter', Arn: `arn:${partitionOf(ctx.region)}:ssm:${ctx.region}:${ctx.account}:parameter${p.name.startsWith('/') ? '' : '/'}${p.name}` });
      }
    }
    if (types.includes('imagebuilder:ImageRecipe')) {
      for (const r of store.imagebuilder.recipes.values()) {
        if (r.parentImage === imageId && r.arn !== undefined) refs.push({ ImageId: imageId, ResourceType: 'imagebuilder:ImageRecipe', Arn: r.arn });
      }
    }
  }
  const { page, nextToken } = paginate(refs, input.MaxResults, input.NextToken, { default: 1000, min: 5, max: 1000 });
  return { ImageReferences: page, NextToken: nextToken };
}

/** The AMI a launch template version launches (`resolve:ssm:` resolved), or undefined. */
function templateImage(ctx: Ctx, spec: { id?: string | undefined; name?: string | undefined; version?: string | undefined }): string | undefined {
  try {
    const t = findTemplate(ctx, spec.id, spec.name);
    const value = resolveSsmImage(ctx, t.versions[resolveVersion(t, spec.version ?? '$Default') - 1]?.data.ImageId);
    return typeof value === 'string' ? value : undefined;
  } catch (error: unknown) {
    if (error instanceof AwsError) return undefined;
    throw error;
  }
}

function stopInstances(ctx: Ctx, input: { InstanceIds?: string[] | undefined }) {
  return {
    StoppingInstances: (input.InstanceIds ?? []).map((id) => {
      const instance = here(ctx).instances.get(id);
      if (instance === undefined || instance.state === 'terminated') throw new AwsError('IncorrectInstanceState', `The instance '${id}' is not in a state from which it can be stopped.`);
      const previous = instance.state;
      instance.state = 'stopped';
      return { InstanceId: id, PreviousState: { Code: previous === 'running' ? 16 : 80, Name: previous }, CurrentState: { Code: 80, Name: 'stopped' as const } };
    }),
  };
}

// ---- Spot Fleet and EC2 Fleet requests (they launch from AMIs or launch template versions)

interface TemplateSpecInput {
  LaunchTemplateId?: string | undefined;
  LaunchTemplateName?: string | undefined;
  Version?: string | undefined;
}

function fleetTemplates(configs: { LaunchTemplateSpecification?: TemplateSpecInput | undefined; Overrides?: { ImageId?: string | undefined }[] | undefined }[] | undefined) {
  return (configs ?? []).map((c) => ({ id: c.LaunchTemplateSpecification?.LaunchTemplateId, name: c.LaunchTemplateSpecification?.LaunchTemplateName, version: c.LaunchTemplateSpecification?.Version, overrideImageIds: (c.Overrides ?? []).map((o) => o.ImageId).filter((id): id is string => id !== undefined) }));
}

function requestSpotFleet(ctx: Ctx, input: { SpotFleetRequestConfig?: { LaunchSpecifications?: { ImageId?: string | undefined }[] | undefined; LaunchTemplateConfigs?: { LaunchTemplateSpecification?: TemplateSpecInput | undefined }[] | undefined } | undefined }) {
  const config = input.SpotFleetRequestConfig;
  if (config === undefined) throw new AwsError('MissingParameter', 'The request must contain the parameter SpotFleetRequestConfig');
  const id = `sfr-${hex(16).slice(0, 8)}-${hex(16).slice(0, 4)}-${hex(16).slice(0, 4)}-${hex(16).slice(0, 4)}-${hex(16).slice(0, 12)}`;
  here(ctx).fleets.set(id, { id, kind: 'spot-fleet', state: 'active', imageIds: (config.LaunchSpecifications ?? []).map((l) => l.ImageId).filter((x): x is string => x !== undefined), templates: fleetTemplates(config.LaunchTemplateConfigs), created: ctx.env.clock.iso() });
  return { SpotFleetRequestId: id };
}

function describeSpotFleetRequests(ctx: Ctx, input: { SpotFleetRequestIds?: string[] | undefined; MaxResults?: number | undefined; NextToken?: string | undefined }) {
  const fleets = [...here(ctx).fleets.values()].filter((f) => f.kind === 'spot-fleet' && (input.SpotFleetRequestIds === undefined || input.SpotFleetRequestIds.length === 0 || input.SpotFleetRequestIds.includes(f.id)));
  const { page, nextToken } = paginate(fleets, input.MaxResults, input.NextToken, { default: 1000, max: 1000 });
  return {
    SpotFleetRequestConfigs: page.map((f) => ({
      SpotFleetRequestId: f.id,
      SpotFleetRequestState: f.state,
      CreateTime: f.created,
      SpotFleetRequestConfig: {
        LaunchSpecifications: f.imageIds.map((ImageId) => ({ ImageId })),
        LaunchTemplateConfigs: f.templates.map((t) => ({ LaunchTemplateSpecification: { LaunchTemplateId: t.id, LaunchTemplateName: t.name, Version: t.version } })),
      },
    })),
    NextToken: nextToken,
  };
}

function cancelSpotFleetRequests(ctx: Ctx, input: { SpotFleetRequestIds?: string[] | undefined; TerminateInstances?: boolean | undefined }) {
  const done = (input.SpotFleetRequestIds ?? []).map((id) => {
    const fleet = here(ctx).fleets.get(id);
    if (fleet !== undefined) fleet.state = input.TerminateInstances === true ? 'cancelled_terminating' : 'cancelled_running';
    return { SpotFleetRequestId: id, CurrentSpotFleetRequestState: fleet?.state ?? 'cancelled', PreviousSpotFleetRequestState: 'active' };
  });
  return { SuccessfulFleetRequests: done, UnsuccessfulFleetRequests: [] };
}

function createFleet(ctx: Ctx, input: { LaunchTemplateConfigs?: { LaunchTemplateSpecification?: TemplateSpecInput | undefined; Overrides?: { ImageId?: string | undefined }[] | undefined }[] | undefined; Type?: string | undefined }) {
  if ((input.LaunchTemplateConfigs ?? []).length === 0) throw new AwsError('MissingParameter', 'The request must contain the parameter LaunchTemplateConfigs');
  const id = `fleet-${hex(16).slice(0, 8)}-${hex(16).slice(0, 4)}-${hex(16).slice(0, 4)}-${hex(16).slice(0, 4)}-${hex(16).slice(0, 12)}`;
  here(ctx).fleets.set(id, { id, kind: 'ec2-fleet', state: 'active', imageIds: [], templates: fleetTemplates(input.LaunchTemplateConfigs), created: ctx.env.clock.iso() });
  return { FleetId: id, Errors: [], Instances: [] };
}

function describeFleets(ctx: Ctx, input: { FleetIds?: string[] | undefined; MaxResults?: number | undefined; NextToken?: string | undefined }) {
  const fleets = [...here(ctx).fleets.values()].filter((f) => f.kind === 'ec2-fleet' && (input.FleetIds === undefined || input.FleetIds.length === 0 || input.FleetIds.includes(f.id)));
  const { page, nextToken } = paginate(fleets, input.MaxResults, input.NextToken, { default: 1000, max: 1000 });
  return {
    Fleets: page.map((f) => ({
      FleetId: f.id,
      FleetState: f.state,
      CreateTime: f.created,
      LaunchTemplateConfigs: f.templates.map((t) => ({ LaunchTemplateSpecification: { LaunchTemplateId: t.id, LaunchTemplateName: t.name, Version: t.version }, Overrides: t.overrideImageIds.map((ImageId) => ({ ImageId })) })),
    })),
    NextToken: nextToken,
  };
}

function deleteFleets(ctx: Ctx, input: { FleetIds?: string[] | undefined; TerminateInstances?: boolean | undefined }) {
  const done = (input.FleetIds ?? []).map((id) => {
    const fleet = here(ctx).fleets.get(id);
    if (fleet !== undefined) fleet.state = input.TerminateInstances === true ? 'deleted_terminating' : 'deleted_running';
    return { FleetId: id, CurrentFleetState: fleet?.state ?? 'deleted', PreviousFleetState: 'active' };
  });
  return { SuccessfulFleetDeletions: done, UnsuccessfulFleetDeletions: [] };
}

// ---- AMI usage reports: use of an owner's AMI by other accounts

/** Simulated time a usage report takes to be made (state `pending`, then `available`). */
const USAGE_REPORT_MS = 30_000;

/**
 * CreateImageUsageReport (EC2 API Reference; EC2 User Guide, "View your AMI usage"): only the owner may
 * ask; the report counts, per other account, instances launched from the AMI and launch templates whose
 * newest `version-depth` versions (default 20) name it. It is made asynchronously: `pending`, then
 * `available`.
 */
function createImageUsageReport(ctx: Ctx, input: { ImageId?: string | undefined; ResourceTypes?: { ResourceType?: string | undefined; ResourceTypeOptions?: { OptionName?: string | undefined; OptionValues?: string[] | undefined }[] | undefined }[] | undefined; AccountIds?: string[] | undefined }) {
  const imageId = input.ImageId ?? '';
  checkImageId(imageId);
  const image = here(ctx).images.get(imageId);
  if (image === undefined || image.state === 'deregistered') throw new AwsError('InvalidAMIID.NotFound', `The image id '[${imageId}]' does not exist`);
  if (image.ownerId !== ctx.account) throw new AwsError('UnauthorizedOperation', 'You are not authorized to perform this operation: only the owner of an AMI can create its usage report.', 403);
  const types = (input.ResourceTypes ?? []).map((t) => t.ResourceType ?? '');
  if (types.length === 0 || types.some((t) => t !== 'ec2:Instance' && t !== 'ec2:LaunchTemplate')) throw new AwsError('InvalidParameterValue', 'ResourceTypes must be ec2:Instance and/or ec2:LaunchTemplate');
  const depthValue = input.ResourceTypes?.find((t) => t.ResourceType === 'ec2:LaunchTemplate')?.ResourceTypeOptions?.find((o) => o.OptionName === 'version-depth')?.OptionValues?.[0];
  const versionDepth = depthValue === undefined ? 20 : Number(depthValue);
  if (!Number.isInteger(versionDepth) || versionDepth < 1 || versionDepth > 10000) throw new AwsError('InvalidParameterValue', 'version-depth must be an integer between 1 and 10000');
  const reportId = `amiur-${hex(9).slice(0, 17)}`;
  const entries: UsageReport['entries'] = [];
  for (const { account, region, store } of ctx.env.state.allCells()) {
    if (region !== ctx.region || account === ctx.account) continue;
    if (input.AccountIds !== undefined && input.AccountIds.length > 0 && !input.AccountIds.includes(account)) continue;
    const other = { ...ctx, account } as Ctx;
    if (types.includes('ec2:Instance')) {
      const count = [...store.instances.values()].filter((i) => i.imageId === imageId && i.state !== 'terminated').length;
      if (count > 0) entries.push({ accountId: account, resourceType: 'ec2:Instance', count });
    }
    if (types.includes('ec2:LaunchTemplate')) {
      const count = [...store.launchTemplates.values()].filter((t) => t.versions.slice(-versionDepth).some((v) => resolveSsmImage(other, v.data.ImageId) === imageId)).length;
      if (count > 0) entries.push({ accountId: account, resourceType: 'ec2:LaunchTemplate', count });
    }
  }
  here(ctx).usageReports.set(reportId, { reportId, imageId, resourceTypes: types, accountIds: input.AccountIds, versionDepth, created: ctx.env.clock.now(), entries });
  return { ReportId: reportId };
}

function usageReportsOf(ctx: Ctx, input: { ImageIds?: string[] | undefined; ReportIds?: string[] | undefined }): UsageReport[] {
  return [...here(ctx).usageReports.values()].filter((r) => (input.ReportIds === undefined || input.ReportIds.length === 0 || input.ReportIds.includes(r.reportId)) && (input.ImageIds === undefined || input.ImageIds.length === 0 || input.ImageIds.includes(r.imageId)));
}

function describeImageUsageReports(ctx: Ctx, input: { ImageIds?: string[] | undefined; ReportIds?: string[] | undefined; MaxResults?: number | undefined; NextToken?: string | undefined }) {
  const { page, nextToken } = paginate(usageReportsOf(ctx, input), input.MaxResults, input.NextToken, { default: 100, max: 100 });
  return {
    ImageUsageReports: page.map((r) => ({ ImageId: r.imageId, ReportId: r.reportId, State: ctx.env.clock.now() - r.created >= USAGE_REPORT_MS ? 'available' : 'pending', CreationTime: new Date(r.created).toISOString(), ResourceTypes: r.resourceTypes.map((ResourceType) => ({ ResourceType })) })),
    NextToken: nextToken,
  };
}

function describeImageUsageReportEntries(ctx: Ctx, input: { ImageIds?: string[] | undefined; ReportIds?: string[] | undefined; MaxResults?: number | undefined; NextToken?: string | undefined }) {
  const ready = usageReportsOf(ctx, input).filter((r) => ctx.env.clock.now() - r.created >= USAGE_REPORT_MS);
  const entries = ready.flatMap((r) => r.entries.map((e) => ({ ResourceType: e.resourceType, ReportId: r.reportId, UsageCount: e.count, AccountId: e.accountId, ImageId: r.imageId, ReportCreationTime: new Date(r.created).toISOString() })));
  const { page, nextToken } = paginate(entries, input.MaxResults, input.NextToken, { default: 1000, max: 1000 });
  return { ImageUsageReportEntries: page, NextToken: nextToken };
}

// ---- VM Import/Export: exporting an AMI to S3

/** Simulated time an image export takes (active: validating, converting; then completed). */
const EXPORT_MS = 10 * 60_000;

/**
 * ExportImage and DescribeExportImageTasks (EC2 API Reference; VM Import/Export User Guide, "Start an export
 * image task" and "Considerations for image export"): the destination bucket must exist (in the sandbox: the
 * caller's own, in the image's region; bucket policies and the `vmimport` service role are not modelled); the
 * task is `active` (`validating`, then `converting` with a progress) until it is `completed`, and then the
 * file is in the bucket under the key `<S3Prefix>export-ami-<id>.<format>` ("the exported file is written to
 * the specified S3 bucket using the following S3 key: prefixexport-ami-xxxxxxxxxxxxxxxxx.format", e.g.
 * `exports/export-ami-1234567890abcdef0.vmdk`). "VM Export cannot export Windows or SQL Server images" that
 * contain AWS-provided software: such a task ends `failed`. A bucket deleted meanwhile fails the task too.
 */
function exportImage(ctx: Ctx, input: { ImageId?: string | undefined; DiskImageFormat?: string | undefined; S3ExportLocation?: { S3Bucket?: string | undefined; S3Prefix?: string | undefined } | undefined; Description?: string | undefined; ClientToken?: string | undefined }) {
  const image = ownImage(ctx, input.ImageId);
  const format = input.DiskImageFormat;
  if (format !== 'VMDK' && format !== 'RAW' && format !== 'VHD') throw new AwsError('InvalidParameterValue', `Value (${String(format)}) for parameter DiskImageFormat is invalid. Valid values: VMDK, RAW, VHD`);
  const bucketName = input.S3ExportLocation?.S3Bucket;
  if (bucketName === undefined || bucketName === '') throw new AwsError('MissingParameter', 'The request must contain the parameter S3ExportLocation.S3Bucket');
  if (image.state !== 'available') throw new AwsError('IncorrectState', `Image ${image.imageId} is not in the available state`);
  const bucket = ctx.env.state.buckets.get(bucketName);
  // "The destination bucket must exist" (ExportImage, S3ExportLocation); EC2 names no code: the sandbox's words
  if (bucket === undefined || bucket.ownerId !== ctx.account || bucket.region !== ctx.region) {
    throw new AwsError('InvalidParameter', `The S3 bucket ${bucketName} does not exist in ${ctx.region} or is not accessible to account ${ctx.account}.`);
  }
  const existing = input.ClientToken === undefined ? undefined : [...here(ctx).exportTasks.values()].find((t) => t.clientToken === input.ClientToken);
  if (existing !== undefined) return exportTaskOut(existing, format);
  const task: ExportTask = { id: `export-ami-${hex(9).slice(0, 17)}`, imageId: image.imageId, format, bucket: bucketName, prefix: input.S3ExportLocation?.S3Prefix ?? '', status: 'active', statusMessage: 'validating', progress: '0', description: input.Description, clientToken: input.ClientToken };
  here(ctx).exportTasks.set(task.id, task);
  const { account, region } = ctx;
  ctx.env.clock.after(EXPORT_MS / 2, () => {
    if (task.status !== 'active') return;
    task.statusMessage = 'converting';
    task.progress = '50';
  });
  ctx.env.clock.after(EXPORT_MS, () => {
    if (task.status !== 'active') return;
    const target = ctx.env.state.buckets.get(task.bucket);
    task.progress = undefined;
    if (image.platform === 'windows') {
      task.status = 'failed';
      task.statusMessage = 'ClientError: VM Export cannot export Windows images that contain software provided by AWS';
    } else if (target === undefined || target.ownerId !== account || target.region !== region) {
      task.status = 'failed';
      task.statusMessage = `ClientError: the S3 bucket ${task.bucket} does not exist or is not accessible`;
    } else {
      putObject(target, `${task.prefix}${task.id}.${format.toLowerCase()}`, `${format} disk image of ${image.imageId}`, ctx.env.clock.date());
      task.status = 'completed';
      task.statusMessage = undefined;
    }
  });
  return exportTaskOut(task, format);
}

function exportTaskOut(task: ExportTask, format?: string) {
  return {
    ExportImageTaskId: task.id,
    ImageId: task.imageId,
    Description: task.description,
    ...(format === undefined ? {} : { DiskImageFormat: format }),
    S3ExportLocation: { S3Bucket: task.bucket, S3Prefix: task.prefix },
    Status: task.status,
    StatusMessage: task.statusMessage,
    Progress: task.progress,
  };
}

function describeExportImageTasks(ctx: Ctx, input: { ExportImageTaskIds?: string[] | undefined; Filters?: Filter[] | undefined; MaxResults?: number | undefined; NextToken?: string | undefined }) {
  let tasks = [...here(ctx).exportTasks.values()];
  const ids = input.ExportImageTaskIds ?? [];
  if (ids.length > 0) {
    const missing = ids.filter((id) => !here(ctx).exportTasks.has(id));
    if (missing.length > 0) throw new AwsError('InvalidExportImageTaskId.NotFound', `The export image task ID '${missing.join(', ')}' does not exist`);
    tasks = tasks.filter((t) => ids.includes(t.id));
  }
  tasks = applyFilters(tasks, input.Filters, () => undefined);
  const { page, nextToken } = paginate(tasks, input.MaxResults, input.NextToken, { default: 500, min: 1, max: 500 });
  return { ExportImageTasks: page.map((t) => exportTaskOut(t)), NextToken: nextToken };
}

function describeRegions(ctx: Ctx) {
  return { Regions: ctx.env.state.regions.map((RegionName) => ({ RegionName, Endpoint: `ec2.${RegionName}.amazonaws.com`, OptInStatus: 'opt-in-not-required' })) };
}

const ec2: ServiceDef = {
  name: 'ec2',
  protocol: 'ec2',
  schemas: schemas as unknown as Record<string, unknown>,
  handlers: {
    DescribeImages: op(describeImages),
    DescribeImageAttribute: op(describeImageAttribute),
    ModifyImageAttribute: op(modifyImageAttribute),
    CreateTags: op(createTags),
    DeleteTags: op(deleteTags),
    CopyImage: op(copyImage),
    DeregisterImage: op(deregisterImage),
    DescribeSnapshots: op(describeSnapshots),
    DeleteSnapshot: op(deleteSnapshot),
    EnableImageDeregistrationProtection: op((ctx, input: EnableImageDeregistrationProtectionRequest) => setProtection(ctx, input, 'enabled')),
    DisableImageDeregistrationProtection: op((ctx, input: EnableImageDeregistrationProtectionRequest) => setProtection(ctx, input, 'disabled')),
    DisableImage: op(disableImage),
    EnableImage: op(enableImage),
    EnableImageDeprecation: op(enableDeprecation),
    CreateLaunchTemplate: op(createLaunchTemplate),
    DescribeLaunchTemplates: op(describeLaunchTemplates),
    DescribeLaunchTemplateVersions: op(describeLaunchTemplateVersions),
    CreateLaunchTemplateVersion: op(createLaunchTemplateVersion),
    ModifyLaunchTemplate: op(modifyLaunchTemplate),
    EnableFastLaunch: op(enableFastLaunch),
    DisableFastLaunch: op(disableFastLaunch),
    DescribeFastLaunchImages: op(describeFastLaunchImages),
    RunInstances: op(runInstances),
    DescribeInstances: op(describeInstances),
    TerminateInstances: op(terminateInstances),
    StopInstances: op(stopInstances),
    RequestSpotFleet: op(requestSpotFleet),
    DescribeSpotFleetRequests: op(describeSpotFleetRequests),
    CancelSpotFleetRequests: op(cancelSpotFleetRequests),
    CreateFleet: op(createFleet),
    DescribeFleets: op(describeFleets),
    DeleteFleets: op(deleteFleets),
    CreateImageUsageReport: op(createImageUsageReport),
    DescribeImageUsageReports: op(describeImageUsageReports),
    DescribeImageUsageReportEntries: op(describeImageUsageReportEntries),
    DescribeImageReferences: op(describeImageReferences),
    DescribeRegions: op(describeRegions),
    ExportImage: op(exportImage),
    DescribeExportImageTasks: op(describeExportImageTasks),
  },
};

export { canSee, COPY_MS, EXPORT_MS, tagsOf, FAST_LAUNCH_MS, ec2, registerImage, templateImage };
