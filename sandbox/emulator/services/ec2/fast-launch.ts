import type { DescribeFastLaunchImagesRequest, DisableFastLaunchRequest, EnableFastLaunchRequest } from '@aws-sdk/client-ec2';
import { AwsError } from '../../protocol/errors.ts';
import type { Ctx } from '../../server.ts';
import type { FastLaunch } from '../../state.ts';
import { applyFilters, paginate } from '../common.ts';
import { canSee, checkImageId, here } from './access.ts';
import { findTemplate, resolveVersion } from './launch-templates.ts';

/** Simulated time from EnableFastLaunch to the first pre-provisioned snapshot (`enabled`). */
const FAST_LAUNCH_MS = 3 * 60_000;

function advanceFastLaunch(ctx: Ctx, entry: FastLaunch): void {
  const now = ctx.env.clock.now();
  if (now < entry.readyAt) return;
  if (entry.state === 'enabling') {
    entry.state = entry.fails ? 'enabling-failed' : 'enabled';
    entry.stateTransitionReason = entry.fails
      ? 'Client.InternalError: pre-provisioning instance failed to launch (injected by the sandbox)'
      : 'Client.UserInitiated';
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
    LaunchTemplate:
      entry.launchTemplate === undefined
        ? undefined
        : {
            LaunchTemplateId: entry.launchTemplate.id,
            LaunchTemplateName: entry.launchTemplate.name,
            Version: entry.launchTemplate.version,
          },
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
  if (image.platform !== 'windows')
    throw new AwsError('InvalidParameterValue', `Image ${imageId} is not a Windows AMI. EC2 Fast Launch supports Windows AMIs only.`);
  // EC2's API reference names no error codes for EnableFastLaunch: the sandbox answers with the common client
  // errors of "Error codes for the Amazon EC2 API" (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html):
  // InvalidParameterValue ("The value specified in a parameter is not valid, is unsupported, or cannot be used")
  // and InvalidParameter ("The parameter specified in a request is not valid, is unsupported, or cannot be used")
  if (image.state !== 'available') throw new AwsError('InvalidParameterValue', `Image ${imageId} is not in the available state`);
  if (input.ResourceType !== undefined && input.ResourceType !== 'snapshot')
    throw new AwsError('InvalidParameterValue', 'ResourceType must be snapshot');
  const maxParallel = input.MaxParallelLaunches ?? 6;
  if (maxParallel < 6) throw new AwsError('InvalidParameterValue', 'MaxParallelLaunches must be 6 or greater.');
  let launchTemplate: FastLaunch['launchTemplate'];
  if (input.LaunchTemplate !== undefined) {
    if (input.LaunchTemplate.Version === undefined)
      throw new AwsError('MissingParameter', 'The request must contain the parameter LaunchTemplate.Version');
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
  entries = applyFilters(entries, input.Filters, (e, name) =>
    name === 'state' ? [e.state] : name === 'owner-id' ? [e.ownerId] : name === 'resource-type' ? ['snapshot'] : undefined,
  );
  const { page, nextToken } = paginate(entries, input.MaxResults, input.NextToken, { default: 200, min: 0, max: 200 });
  return { FastLaunchImages: page.map(fastLaunchOut), NextToken: nextToken };
}

export { FAST_LAUNCH_MS, describeFastLaunchImages, disableFastLaunch, enableFastLaunch };
