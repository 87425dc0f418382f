import type { DescribeInstancesRequest, RunInstancesRequest, TerminateInstancesRequest } from '@aws-sdk/client-ec2';
import { AwsError } from '../../protocol/errors.ts';
import type { Ctx } from '../../server.ts';
import { resourceId } from '../../state.ts';
import { applyFilters, paginate } from '../common.ts';
import { canSee, here } from './access.ts';
import { findTemplate, resolveSsmImage, resolveVersion } from './launch-templates.ts';
import { instanceStateChanged } from './spot-requests.ts';

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
    here(ctx).instances.set(instanceId, {
      instanceId,
      imageId: image.imageId,
      ownerId: ctx.account,
      region: ctx.region,
      state: 'running',
      launchTime: ctx.env.clock.iso(),
      launchTemplate: templateRef,
    });
    return instanceId;
  });
  image.lastLaunchedTime = ctx.env.clock.iso();
  return {
    ReservationId: resourceId('r'),
    OwnerId: ctx.account,
    Instances: launched.map((id) => ({
      InstanceId: id,
      ImageId: image.imageId,
      State: { Code: 0, Name: 'pending' as const },
      InstanceType: input.InstanceType ?? 't3.micro',
    })),
  };
}

function describeInstances(ctx: Ctx, input: DescribeInstancesRequest) {
  let instances = [...here(ctx).instances.values()];
  if (input.InstanceIds !== undefined && input.InstanceIds.length > 0) {
    const missing = input.InstanceIds.filter((id) => !here(ctx).instances.has(id));
    if (missing.length > 0) throw new AwsError('InvalidInstanceID.NotFound', `The instance ID '${missing.join(', ')}' does not exist`);
    instances = instances.filter((i) => input.InstanceIds?.includes(i.instanceId));
  }
  instances = applyFilters(instances, input.Filters, (i, name) =>
    name === 'image-id' ? [i.imageId] : name === 'instance-state-name' ? [i.state] : name === 'instance-id' ? [i.instanceId] : undefined,
  );
  const { page, nextToken } = paginate(instances, input.MaxResults, input.NextToken, { default: 1000, min: 5, max: 1000 });
  return {
    Reservations: page.map((i) => ({
      ReservationId: `r-${i.instanceId.slice(2)}`,
      OwnerId: i.ownerId,
      Instances: [
        {
          InstanceId: i.instanceId,
          ImageId: i.imageId,
          State: { Code: i.state === 'running' ? 16 : 48, Name: i.state },
          LaunchTime: new Date(i.launchTime),
        },
      ],
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
      instanceStateChanged(ctx, id, 'terminated');
      return {
        InstanceId: id,
        PreviousState: { Code: previous === 'running' ? 16 : 48, Name: previous },
        CurrentState: { Code: 48, Name: 'terminated' as const },
      };
    }),
  };
}

function stopInstances(ctx: Ctx, input: { InstanceIds?: string[] | undefined }) {
  return {
    StoppingInstances: (input.InstanceIds ?? []).map((id) => {
      const instance = here(ctx).instances.get(id);
      if (instance === undefined || instance.state === 'terminated')
        throw new AwsError('IncorrectInstanceState', `The instance '${id}' is not in a state from which it can be stopped.`);
      const previous = instance.state;
      instance.state = 'stopped';
      instanceStateChanged(ctx, id, 'stopped');
      return {
        InstanceId: id,
        PreviousState: { Code: previous === 'running' ? 16 : 80, Name: previous },
        CurrentState: { Code: 80, Name: 'stopped' as const },
      };
    }),
  };
}

export { describeInstances, runInstances, stopInstances, terminateInstances };
