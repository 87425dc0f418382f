import * as schemas from '@aws-sdk/client-emr';
import type {
  DescribeClusterInput,
  ListClustersInput,
  ListInstanceFleetsInput,
  ListInstanceGroupsInput,
  RunJobFlowInput,
  TerminateJobFlowsInput,
} from '@aws-sdk/client-emr';
import { inputSchema, missingRequired } from '../model/sdk-required.ts';
import { partitionOf } from '../partition.ts';
import { AwsError } from '../protocol/errors.ts';
import { type Ctx, type ServiceDef, op } from '../server.ts';
import type { CellStore, EmrCluster } from '../state.ts';
import { paginate } from './common.ts';

/**
 * Amazon EMR over its JSON 1.1 protocol (target `ElasticMapReduce.<Operation>`), as far as cleanup's in-use
 * check needs it: clusters and the custom AMI each launches from, the cluster's `CustomAmiId` or an instance
 * group's or an instance fleet's instance type's own (Amazon EMR API Reference: RunJobFlow,
 * JobFlowInstancesConfig, InstanceGroupConfig, InstanceTypeConfig, ListClusters, DescribeCluster,
 * ListInstanceGroups, ListInstanceFleets, TerminateJobFlows; EMR Management Guide, "Using a custom AMI").
 * Requests are checked against the SDK model's required members (ValidationException). A cluster is up at
 * once: `WAITING` when `KeepJobFlowAliveWhenNoSteps` ("Specifies whether the cluster should remain available
 * after completing all steps. Defaults to false"), else it has run its (no) steps and is `TERMINATED`.
 * Terminated clusters are still listed and described (EMR keeps them for two months). A cluster has instance
 * groups or instance fleets, never both; the other list call is refused for it.
 */

/** ListClusters, ListInstanceGroups and ListInstanceFleets pages: 50 items (ListClusters: "returns 50 clusters at a time"). */
const PAGE = 50;

function here(ctx: Ctx): CellStore {
  return ctx.env.state.cell(ctx.account, ctx.region);
}

const invalid = (message: string) => new AwsError('InvalidRequestException', message, 400);
const validation = (message: string) => new AwsError('ValidationException', message, 400);

/** EMR's identifiers: a prefix and 13 upper-case letters and digits (`j-2AXXXXXXGAPLF`, `ig-…`, `if-…`). */
function emrId(prefix: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  return `${prefix}-${Array.from({ length: 13 }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join('')}`;
}

function cluster(ctx: Ctx, id: string | undefined): EmrCluster {
  const found = here(ctx).emrClusters.get(id ?? '');
  if (found === undefined) throw invalid(`Cluster id '${id ?? ''}' is not valid.`);
  return found;
}

/** A custom AMI must be one the account can launch in the region (EMR validates it when the cluster is created). */
function checkAmi(ctx: Ctx, id: string | undefined): void {
  if (id === undefined) return;
  const image = ctx.env.state.findImage(ctx.region, id);
  if (image === undefined || image.state === 'deregistered') throw validation(`The specified custom AMI ${id} does not exist.`);
}

function status(c: EmrCluster) {
  const terminated = c.state === 'TERMINATED' || c.state === 'TERMINATED_WITH_ERRORS';
  return {
    State: c.state,
    StateChangeReason: terminated ? { Code: 'ALL_STEPS_COMPLETED', Message: 'Steps completed' } : {},
    Timeline: { CreationDateTime: new Date(c.created), ...(c.ended === undefined ? {} : { EndDateTime: new Date(c.ended) }) },
  };
}

const emr: ServiceDef = {
  name: 'elasticmapreduce',
  protocol: 'json',
  jsonVersion: '1.1',
  schemas: schemas as unknown as Record<string, unknown>,
  handlers: {
    RunJobFlow: op((ctx: Ctx, input: RunJobFlowInput) => {
      const missing = missingRequired(inputSchema(schemas as unknown as Record<string, unknown>, 'RunJobFlow'), input);
      if (missing.length > 0) throw validation(`Missing required parameter(s): ${missing.join(', ')}`);
      const instances = input.Instances ?? {};
      const groups = instances.InstanceGroups ?? [];
      const fleets = instances.InstanceFleets ?? [];
      if (groups.length > 0 && fleets.length > 0) throw validation('Instance groups and instance fleets cannot be used together.');
      checkAmi(ctx, input.CustomAmiId);
      for (const g of groups) checkAmi(ctx, g.CustomAmiId);
      for (const f of fleets) for (const t of f.InstanceTypeConfigs ?? []) checkAmi(ctx, t.CustomAmiId);
      const id = emrId('j');
      const keep = instances.KeepJobFlowAliveWhenNoSteps === true;
      const now = ctx.env.clock.iso();
      const uniform =
        groups.length === 0 && fleets.length === 0
          ? [
              { InstanceRole: 'MASTER', InstanceType: instances.MasterInstanceType ?? 'm5.xlarge', InstanceCount: 1 },
              ...((instances.InstanceCount ?? 1) > 1
                ? [
                    {
                      InstanceRole: 'CORE',
                      InstanceType: instances.SlaveInstanceType ?? 'm5.xlarge',
                      InstanceCount: (instances.InstanceCount ?? 1) - 1,
                    },
                  ]
                : []),
            ]
          : groups;
      const c: EmrCluster = {
        id,
        arn: `arn:${partitionOf(ctx.region)}:elasticmapreduce:${ctx.region}:${ctx.account}:cluster/${id}`,
        name: input.Name ?? '',
        state: keep ? 'WAITING' : 'TERMINATED',
        releaseLabel: input.ReleaseLabel,
        customAmiId: input.CustomAmiId,
        collection: fleets.length > 0 ? 'INSTANCE_FLEET' : 'INSTANCE_GROUP',
        groups: uniform.map((g) => ({
          id: emrId('ig'),
          name: 'Name' in g ? g.Name : undefined,
          role: g.InstanceRole ?? 'MASTER',
          instanceType: g.InstanceType ?? 'm5.xlarge',
          count: g.InstanceCount ?? 1,
          customAmiId: 'CustomAmiId' in g ? g.CustomAmiId : undefined,
        })),
        fleets: fleets.map((f) => ({
          id: emrId('if'),
          name: f.Name,
          type: f.InstanceFleetType ?? 'MASTER',
          specs: (f.InstanceTypeConfigs ?? []).map((t) => ({
            instanceType: t.InstanceType ?? 'm5.xlarge',
            weightedCapacity: t.WeightedCapacity ?? 1,
            customAmiId: t.CustomAmiId,
          })),
        })),
        created: now,
        ended: keep ? undefined : now,
      };
      here(ctx).emrClusters.set(id, c);
      return { JobFlowId: id, ClusterArn: c.arn };
    }),
    ListClusters: op((ctx: Ctx, input: ListClustersInput) => {
      const states = input.ClusterStates ?? [];
      const all = [...here(ctx).emrClusters.values()]
        .filter((c) => states.length === 0 || (states as string[]).includes(c.state))
        // newest first
        .sort((a, b) => b.created.localeCompare(a.created));
      const { page, nextToken } = paginate(all, undefined, input.Marker, { default: PAGE, max: PAGE });
      return {
        Clusters: page.map((c) => ({ Id: c.id, Name: c.name, Status: status(c), ClusterArn: c.arn, NormalizedInstanceHours: 0 })),
        Marker: nextToken,
      };
    }),
    DescribeCluster: op((ctx: Ctx, input: DescribeClusterInput) => {
      const c = cluster(ctx, input.ClusterId);
      return {
        Cluster: {
          Id: c.id,
          Name: c.name,
          Status: status(c),
          ClusterArn: c.arn,
          ReleaseLabel: c.releaseLabel,
          CustomAmiId: c.customAmiId,
          InstanceCollectionType: c.collection,
          AutoTerminate: c.state === 'TERMINATED',
          TerminationProtected: false,
          VisibleToAllUsers: true,
        },
      };
    }),
    ListInstanceGroups: op((ctx: Ctx, input: ListInstanceGroupsInput) => {
      const c = cluster(ctx, input.ClusterId);
      if (c.collection !== 'INSTANCE_GROUP') throw invalid(`Cluster ${c.id} uses instance fleets, not instance groups.`);
      const { page, nextToken } = paginate(c.groups, undefined, input.Marker, { default: PAGE, max: PAGE });
      return {
        InstanceGroups: page.map((g) => ({
          Id: g.id,
          Name: g.name,
          InstanceGroupType: g.role,
          InstanceType: g.instanceType,
          Market: 'ON_DEMAND',
          RequestedInstanceCount: g.count,
          RunningInstanceCount: c.ended === undefined ? g.count : 0,
          Status: { State: c.ended === undefined ? 'RUNNING' : 'ENDED' },
          CustomAmiId: g.customAmiId,
        })),
        Marker: nextToken,
      };
    }),
    ListInstanceFleets: op((ctx: Ctx, input: ListInstanceFleetsInput) => {
      const c = cluster(ctx, input.ClusterId);
      if (c.collection !== 'INSTANCE_FLEET') throw invalid(`Cluster ${c.id} uses instance groups, not instance fleets.`);
      const { page, nextToken } = paginate(c.fleets, undefined, input.Marker, { default: PAGE, max: PAGE });
      return {
        InstanceFleets: page.map((f) => ({
          Id: f.id,
          Name: f.name,
          Status: { State: c.ended === undefined ? 'RUNNING' : 'TERMINATED' },
          InstanceFleetType: f.type,
          InstanceTypeSpecifications: f.specs.map((s) => ({
            InstanceType: s.instanceType,
            WeightedCapacity: s.weightedCapacity,
            CustomAmiId: s.customAmiId,
          })),
        })),
        Marker: nextToken,
      };
    }),
    TerminateJobFlows: op((ctx: Ctx, input: TerminateJobFlowsInput) => {
      const missing = missingRequired(inputSchema(schemas as unknown as Record<string, unknown>, 'TerminateJobFlows'), input);
      if (missing.length > 0) throw validation(`Missing required parameter(s): ${missing.join(', ')}`);
      for (const id of input.JobFlowIds ?? []) {
        const c = cluster(ctx, id);
        if (c.ended !== undefined) continue;
        c.state = 'TERMINATED';
        c.ended = ctx.env.clock.iso();
      }
      return {};
    }),
  },
};

export { emr };
