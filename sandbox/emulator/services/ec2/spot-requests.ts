import type {
  CancelSpotInstanceRequestsRequest,
  DescribeSpotInstanceRequestsRequest,
  RequestSpotInstancesRequest,
} from '@aws-sdk/client-ec2';
import { AwsError } from '../../protocol/errors.ts';
import type { Ctx } from '../../server.ts';
import { hex } from '../../state.ts';
import type { SpotInstanceRequest } from '../../state.ts';
import { applyFilters, paginate } from '../common.ts';
import { here } from './access.ts';
import { runInstances } from './instances.ts';

/**
 * Spot Instance requests (EC2 API Reference: RequestSpotInstances, DescribeSpotInstanceRequests,
 * CancelSpotInstanceRequests; EC2 User Guide, "Spot Instance request states"). A request is fulfilled at
 * once here (capacity is never short): `active`, status `fulfilled`, with its instance. When that instance is
 * terminated, a one-time request closes, and a persistent one returns to `open` "so that a new Spot Instance
 * can be launched" (EC2 User Guide, "Terminate a Spot Instance"); when it is stopped, a persistent request
 * is `disabled` until the instance starts again. Cancelling leaves the instance running.
 */

function requestSpotInstances(ctx: Ctx, input: RequestSpotInstancesRequest) {
  const spec = input.LaunchSpecification;
  if (spec?.ImageId === undefined)
    throw new AwsError('MissingParameter', 'The request must contain the parameter LaunchSpecification.ImageId');
  const type = input.Type ?? 'one-time';
  if (type !== 'one-time' && type !== 'persistent') throw new AwsError('InvalidParameterValue', `Invalid value '${String(type)}' for Type`);
  const count = input.InstanceCount ?? 1;
  if (!Number.isInteger(count) || count < 1) throw new AwsError('InvalidParameterValue', `Invalid value '${count}' for InstanceCount`);
  const made: SpotInstanceRequest[] = [];
  for (let n = 0; n < count; n += 1) {
    // launching checks the AMI exists and the caller may launch it (InvalidAMIID.NotFound otherwise)
    const launched = runInstances(ctx, { ImageId: spec.ImageId, InstanceType: spec.InstanceType, MinCount: 1, MaxCount: 1 });
    const request: SpotInstanceRequest = {
      id: `sir-${hex(8)}`,
      type,
      state: 'active',
      statusCode: 'fulfilled',
      imageId: spec.ImageId,
      instanceType: spec.InstanceType ?? 't3.micro',
      instanceId: launched.Instances[0]?.InstanceId,
      created: ctx.env.clock.iso(),
    };
    here(ctx).spotInstanceRequests.set(request.id, request);
    made.push(request);
  }
  return { SpotInstanceRequests: made.map((r) => view(r)) };
}

function view(r: SpotInstanceRequest) {
  return {
    SpotInstanceRequestId: r.id,
    Type: r.type,
    State: r.state,
    Status: { Code: r.statusCode },
    LaunchSpecification: { ImageId: r.imageId, InstanceType: r.instanceType },
    InstanceId: r.instanceId,
    CreateTime: new Date(r.created),
  };
}

function describeSpotInstanceRequests(ctx: Ctx, input: DescribeSpotInstanceRequestsRequest) {
  let requests = [...here(ctx).spotInstanceRequests.values()];
  const ids = input.SpotInstanceRequestIds ?? [];
  if (ids.length > 0) {
    const missing = ids.filter((id) => !here(ctx).spotInstanceRequests.has(id));
    if (missing.length > 0)
      throw new AwsError('InvalidSpotInstanceRequestID.NotFound', `The spot instance request ID '${missing.join(', ')}' does not exist`);
    requests = requests.filter((r) => ids.includes(r.id));
  }
  requests = applyFilters(requests, input.Filters, (r, name) =>
    name === 'state'
      ? [r.state]
      : name === 'type'
        ? [r.type]
        : name === 'launch.image-id'
          ? [r.imageId]
          : name === 'spot-instance-request-id'
            ? [r.id]
            : undefined,
  );
  const { page, nextToken } = paginate(requests, input.MaxResults, input.NextToken, { default: 1000, min: 5, max: 1000 });
  return { SpotInstanceRequests: page.map((r) => view(r)), NextToken: nextToken };
}

function cancelSpotInstanceRequests(ctx: Ctx, input: CancelSpotInstanceRequestsRequest) {
  return {
    CancelledSpotInstanceRequests: (input.SpotInstanceRequestIds ?? []).map((id) => {
      const request = here(ctx).spotInstanceRequests.get(id);
      if (request === undefined)
        throw new AwsError('InvalidSpotInstanceRequestID.NotFound', `The spot instance request ID '${id}' does not exist`);
      request.state = 'cancelled';
      request.statusCode = request.instanceId === undefined ? 'canceled-before-fulfillment' : 'request-canceled-and-instance-running';
      return { SpotInstanceRequestId: id, State: 'cancelled' as const };
    }),
  };
}

/** What happens to the Spot requests of an instance that is stopped or terminated (EC2 User Guide, above). */
function instanceStateChanged(ctx: Ctx, instanceId: string, state: 'stopped' | 'terminated'): void {
  for (const request of here(ctx).spotInstanceRequests.values()) {
    if (request.instanceId !== instanceId || (request.state !== 'active' && request.state !== 'disabled')) continue;
    if (state === 'stopped') {
      if (request.type === 'persistent') {
        request.state = 'disabled';
        request.statusCode = 'instance-stopped-by-user';
      }
    } else if (request.type === 'persistent') {
      request.state = 'open';
      request.statusCode = 'instance-terminated-by-user';
      request.instanceId = undefined;
    } else {
      request.state = 'closed';
      request.statusCode = 'instance-terminated-by-user';
    }
  }
}

export { cancelSpotInstanceRequests, describeSpotInstanceRequests, instanceStateChanged, requestSpotInstances };
