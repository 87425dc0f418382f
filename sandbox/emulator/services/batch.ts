import * as schemas from '@aws-sdk/client-batch';
import type {
  CreateComputeEnvironmentRequest,
  DeleteComputeEnvironmentRequest,
  DescribeComputeEnvironmentsRequest,
  UpdateComputeEnvironmentRequest,
} from '@aws-sdk/client-batch';
import { inputSchema, missingRequired } from '../model/sdk-required.ts';
import { partitionOf } from '../partition.ts';
import { AwsError } from '../protocol/errors.ts';
import { type Ctx, type ServiceDef, op } from '../server.ts';
import type { CellStore, ComputeEnvironment } from '../state.ts';
import { paginate } from './common.ts';

/**
 * AWS Batch over its REST-JSON protocol (`POST /v1/<operation>`), as far as cleanup's in-use check needs it:
 * compute environments, whose `computeResources.imageId` and `ec2Configuration[].imageIdOverride` name the
 * AMI their instances launch from (AWS Batch API Reference: CreateComputeEnvironment, ComputeResource,
 * Ec2Configuration; DescribeComputeEnvironments; UpdateComputeEnvironment; DeleteComputeEnvironment).
 * Requests are checked against the SDK model's required members; Batch answers a bad request with
 * `ClientException` (HTTP 400: "These errors are usually caused by a client action"). An environment is
 * `VALID` at once. Deleting needs the environment `DISABLED` first ("Before you can delete a compute
 * environment, you must set its state to DISABLED with the UpdateComputeEnvironment API operation"); a
 * deleted one is still listed for a while with status `DELETED`, as Batch does.
 */

/** "Up to 128 letters (uppercase and lowercase), numbers, hyphens, and underscores" (CreateComputeEnvironment). */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

function here(ctx: Ctx): CellStore {
  return ctx.env.state.cell(ctx.account, ctx.region);
}

function clientError(message: string): AwsError {
  return new AwsError('ClientException', message, 400);
}

function checkRequired(operation: string, input: unknown): void {
  const missing = missingRequired(inputSchema(schemas as unknown as Record<string, unknown>, operation), input);
  if (missing.length > 0) throw clientError(`Missing required parameter(s): ${missing.join(', ')}`);
}

/** An environment by name or ARN (every operation takes either). */
function find(ctx: Ctx, nameOrArn: string | undefined): ComputeEnvironment | undefined {
  return [...here(ctx).computeEnvironments.values()].find((e) => e.name === nameOrArn || e.arn === nameOrArn);
}

function view(e: ComputeEnvironment) {
  return {
    computeEnvironmentName: e.name,
    computeEnvironmentArn: e.arn,
    type: e.type,
    state: e.state,
    status: e.status,
    statusReason: e.statusReason,
    computeResources: e.computeResources,
    serviceRole: e.serviceRole,
  };
}

/** An AMI named by a compute environment must exist in the region: Batch cannot launch from one that does not. */
function checkImages(ctx: Ctx, resources: { imageId?: string; ec2Configuration?: { imageIdOverride?: string }[] } | undefined): void {
  for (const id of [resources?.imageId, ...(resources?.ec2Configuration ?? []).map((c) => c.imageIdOverride)]) {
    if (id === undefined) continue;
    const image = ctx.env.state.findImage(ctx.region, id);
    if (image === undefined || image.state === 'deregistered') throw clientError(`Image ${id} does not exist`);
  }
}

const batch: ServiceDef = {
  name: 'batch',
  protocol: 'rest-json',
  schemas: schemas as unknown as Record<string, unknown>,
  handlers: {
    CreateComputeEnvironment: op((ctx: Ctx, input: CreateComputeEnvironmentRequest) => {
      checkRequired('CreateComputeEnvironment', input);
      const name = input.computeEnvironmentName ?? '';
      if (!NAME.test(name))
        throw clientError('computeEnvironmentName must be up to 128 letters (uppercase and lowercase), numbers, hyphens, and underscores');
      if (input.type !== 'MANAGED' && input.type !== 'UNMANAGED') throw clientError(`Invalid type ${String(input.type)}`);
      if (input.type === 'MANAGED' && input.computeResources === undefined)
        throw clientError('computeResources must be specified for a MANAGED compute environment');
      const existing = here(ctx).computeEnvironments.get(name);
      if (existing !== undefined && existing.status !== 'DELETED') throw clientError('Object already exists');
      checkImages(ctx, input.computeResources);
      const arn = `arn:${partitionOf(ctx.region)}:batch:${ctx.region}:${ctx.account}:compute-environment/${name}`;
      here(ctx).computeEnvironments.set(name, {
        name,
        arn,
        type: input.type,
        state: input.state === 'DISABLED' ? 'DISABLED' : 'ENABLED',
        status: 'VALID',
        statusReason: 'ComputeEnvironment Healthy',
        computeResources: input.computeResources as Record<string, unknown> | undefined,
        serviceRole: input.serviceRole,
      });
      return { computeEnvironmentName: name, computeEnvironmentArn: arn };
    }),
    DescribeComputeEnvironments: op((ctx: Ctx, input: DescribeComputeEnvironmentsRequest) => {
      const names = input.computeEnvironments ?? [];
      if (names.length > 100) throw clientError('computeEnvironments can name at most 100 compute environments');
      // "you can't use maxResults together with computeEnvironments" (DescribeComputeEnvironments, maxResults)
      if (names.length > 0 && input.maxResults !== undefined)
        throw clientError('maxResults cannot be specified together with computeEnvironments');
      const all = [...here(ctx).computeEnvironments.values()].filter(
        (e) => names.length === 0 || names.includes(e.name) || names.includes(e.arn),
      );
      const { page, nextToken } = paginate(all, input.maxResults, input.nextToken, { default: 100, max: 100 });
      return { computeEnvironments: page.map(view), nextToken };
    }),
    UpdateComputeEnvironment: op((ctx: Ctx, input: UpdateComputeEnvironmentRequest) => {
      checkRequired('UpdateComputeEnvironment', input);
      const env = find(ctx, input.computeEnvironment);
      if (env === undefined || env.status === 'DELETED')
        throw clientError(`ComputeEnvironment ${input.computeEnvironment ?? ''} does not exist`);
      if (input.state !== undefined) env.state = input.state;
      if (input.computeResources !== undefined) {
        if (env.type === 'UNMANAGED') throw clientError('computeResources cannot be updated for an UNMANAGED compute environment');
        checkImages(ctx, input.computeResources);
        env.computeResources = { ...env.computeResources, ...(input.computeResources as Record<string, unknown>) };
      }
      return { computeEnvironmentName: env.name, computeEnvironmentArn: env.arn };
    }),
    DeleteComputeEnvironment: op((ctx: Ctx, input: DeleteComputeEnvironmentRequest) => {
      checkRequired('DeleteComputeEnvironment', input);
      const env = find(ctx, input.computeEnvironment);
      if (env === undefined || env.status === 'DELETED')
        throw clientError(`ComputeEnvironment ${input.computeEnvironment ?? ''} does not exist`);
      if (env.state !== 'DISABLED') throw clientError(`Cannot delete compute environment ${env.name}: its state must be DISABLED`);
      env.status = 'DELETED';
      env.statusReason = 'ComputeEnvironment deleted';
      return {};
    }),
  },
};

export { batch };
