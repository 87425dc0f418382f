import { AwsError } from '../../protocol/errors.ts';
import type { Ctx } from '../../server.ts';
import { hex } from '../../state.ts';
import { paginate } from '../common.ts';
import { here } from './access.ts';

/** Spot Fleet and EC2 Fleet requests: they launch from AMIs or launch template versions. */

interface TemplateSpecInput {
  LaunchTemplateId?: string | undefined;
  LaunchTemplateName?: string | undefined;
  Version?: string | undefined;
}

function fleetTemplates(
  configs:
    | { LaunchTemplateSpecification?: TemplateSpecInput | undefined; Overrides?: { ImageId?: string | undefined }[] | undefined }[]
    | undefined,
) {
  return (configs ?? []).map((c) => ({
    id: c.LaunchTemplateSpecification?.LaunchTemplateId,
    name: c.LaunchTemplateSpecification?.LaunchTemplateName,
    version: c.LaunchTemplateSpecification?.Version,
    overrideImageIds: (c.Overrides ?? []).map((o) => o.ImageId).filter((id): id is string => id !== undefined),
  }));
}

function requestSpotFleet(
  ctx: Ctx,
  input: {
    SpotFleetRequestConfig?:
      | {
          LaunchSpecifications?: { ImageId?: string | undefined }[] | undefined;
          LaunchTemplateConfigs?: { LaunchTemplateSpecification?: TemplateSpecInput | undefined }[] | undefined;
        }
      | undefined;
  },
) {
  const config = input.SpotFleetRequestConfig;
  if (config === undefined) throw new AwsError('MissingParameter', 'The request must contain the parameter SpotFleetRequestConfig');
  const id = `sfr-${hex(16).slice(0, 8)}-${hex(16).slice(0, 4)}-${hex(16).slice(0, 4)}-${hex(16).slice(0, 4)}-${hex(16).slice(0, 12)}`;
  here(ctx).fleets.set(id, {
    id,
    kind: 'spot-fleet',
    state: 'active',
    imageIds: (config.LaunchSpecifications ?? []).map((l) => l.ImageId).filter((x): x is string => x !== undefined),
    templates: fleetTemplates(config.LaunchTemplateConfigs),
    created: ctx.env.clock.iso(),
  });
  return { SpotFleetRequestId: id };
}

function describeSpotFleetRequests(
  ctx: Ctx,
  input: { SpotFleetRequestIds?: string[] | undefined; MaxResults?: number | undefined; NextToken?: string | undefined },
) {
  const fleets = [...here(ctx).fleets.values()].filter(
    (f) =>
      f.kind === 'spot-fleet' &&
      (input.SpotFleetRequestIds === undefined || input.SpotFleetRequestIds.length === 0 || input.SpotFleetRequestIds.includes(f.id)),
  );
  const { page, nextToken } = paginate(fleets, input.MaxResults, input.NextToken, { default: 1000, max: 1000 });
  return {
    SpotFleetRequestConfigs: page.map((f) => ({
      SpotFleetRequestId: f.id,
      SpotFleetRequestState: f.state,
      CreateTime: f.created,
      SpotFleetRequestConfig: {
        LaunchSpecifications: f.imageIds.map((ImageId) => ({ ImageId })),
        LaunchTemplateConfigs: f.templates.map((t) => ({
          LaunchTemplateSpecification: { LaunchTemplateId: t.id, LaunchTemplateName: t.name, Version: t.version },
        })),
      },
    })),
    NextToken: nextToken,
  };
}

function cancelSpotFleetRequests(
  ctx: Ctx,
  input: { SpotFleetRequestIds?: string[] | undefined; TerminateInstances?: boolean | undefined },
) {
  const done = (input.SpotFleetRequestIds ?? []).map((id) => {
    const fleet = here(ctx).fleets.get(id);
    if (fleet !== undefined) fleet.state = input.TerminateInstances === true ? 'cancelled_terminating' : 'cancelled_running';
    return { SpotFleetRequestId: id, CurrentSpotFleetRequestState: fleet?.state ?? 'cancelled', PreviousSpotFleetRequestState: 'active' };
  });
  return { SuccessfulFleetRequests: done, UnsuccessfulFleetRequests: [] };
}

function createFleet(
  ctx: Ctx,
  input: {
    LaunchTemplateConfigs?:
      | { LaunchTemplateSpecification?: TemplateSpecInput | undefined; Overrides?: { ImageId?: string | undefined }[] | undefined }[]
      | undefined;
    Type?: string | undefined;
  },
) {
  if ((input.LaunchTemplateConfigs ?? []).length === 0)
    throw new AwsError('MissingParameter', 'The request must contain the parameter LaunchTemplateConfigs');
  const id = `fleet-${hex(16).slice(0, 8)}-${hex(16).slice(0, 4)}-${hex(16).slice(0, 4)}-${hex(16).slice(0, 4)}-${hex(16).slice(0, 12)}`;
  here(ctx).fleets.set(id, {
    id,
    kind: 'ec2-fleet',
    state: 'active',
    imageIds: [],
    templates: fleetTemplates(input.LaunchTemplateConfigs),
    created: ctx.env.clock.iso(),
  });
  return { FleetId: id, Errors: [], Instances: [] };
}

function describeFleets(
  ctx: Ctx,
  input: { FleetIds?: string[] | undefined; MaxResults?: number | undefined; NextToken?: string | undefined },
) {
  const fleets = [...here(ctx).fleets.values()].filter(
    (f) => f.kind === 'ec2-fleet' && (input.FleetIds === undefined || input.FleetIds.length === 0 || input.FleetIds.includes(f.id)),
  );
  const { page, nextToken } = paginate(fleets, input.MaxResults, input.NextToken, { default: 1000, max: 1000 });
  return {
    Fleets: page.map((f) => ({
      FleetId: f.id,
      FleetState: f.state,
      CreateTime: f.created,
      LaunchTemplateConfigs: f.templates.map((t) => ({
        LaunchTemplateSpecification: { LaunchTemplateId: t.id, LaunchTemplateName: t.name, Version: t.version },
        Overrides: t.overrideImageIds.map((ImageId) => ({ ImageId })),
      })),
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

export { cancelSpotFleetRequests, createFleet, deleteFleets, describeFleets, describeSpotFleetRequests, requestSpotFleet };
