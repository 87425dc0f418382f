import { AwsError } from '../../protocol/errors.ts';
import type { Ctx } from '../../server.ts';
import type { Ami, CellStore, SandboxState } from '../../state.ts';

/**
 * What every EC2 resource family needs: the caller's cell, and which AMIs an account can see and own.
 */
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

/**
 * Images an account can see in a region, honouring eventual consistency for reads. `scope` narrows where to
 * look, as the request does (the AMIs it names by id, or those of the owners it names), so that a request
 * reads those AMIs only, not every AMI of the region; its invisible reads are consumed only by a request that
 * would have returned it.
 */
function visibleImages(ctx: Ctx, options: { consumeInvisible: boolean }, scope: { imageIds?: string[]; owners?: string[] } = {}): Ami[] {
  const state = ctx.env.state;
  let candidates: Iterable<Ami>;
  if (scope.imageIds !== undefined && scope.imageIds.length > 0) {
    candidates = [...new Set(scope.imageIds)].flatMap((id) => state.findImage(ctx.region, id) ?? []);
  } else if (scope.owners !== undefined && scope.owners.length > 0 && scope.owners.every((o) => /^\d{12}$/.test(o))) {
    candidates = [...new Set(scope.owners)].flatMap((owner) => [...state.cell(owner, ctx.region).images.values()]);
  } else candidates = state.imagesOfRegion(ctx.region);
  const out: Ami[] = [];
  for (const image of candidates) {
    if (image.state === 'deregistered' || !canSee(image, ctx.account, state)) continue;
    if (image.invisibleReads > 0) {
      if (options.consumeInvisible) image.invisibleReads -= 1;
      continue;
    }
    out.push(image);
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

export { canSee, checkImageId, here, ownImage, sharedThroughOrganization, tagsOf, visibleImages };
