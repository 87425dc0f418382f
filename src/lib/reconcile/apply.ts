import {
  CreateLaunchTemplateVersionCommand,
  CreateTagsCommand,
  DescribeFastLaunchImagesCommand,
  EnableFastLaunchCommand,
  type LaunchPermission,
  ModifyImageAttributeCommand,
  ModifyLaunchTemplateCommand,
} from '@aws-sdk/client-ec2';
import { RetryImageCommand } from '@aws-sdk/client-imagebuilder';
import { PutParameterCommand } from '@aws-sdk/client-ssm';
import pLimit from 'p-limit';
import type { CellClients, ClientFactory } from '../aws/clients.ts';
import { AwsCallError, toFailure } from '../errors.ts';
import type { Action, ActionOutcome, Plan } from './types.ts';

interface ApplyOptions {
  mode: 'apply' | 'plan';
  /** When aborted (Lambda about to time out), no further action starts; the report is still written. */
  signal?: AbortSignal | undefined;
  /** The image build ARN, written into launch template version descriptions. */
  imageArn: string;
}

type Result = Pick<ActionOutcome, 'status' | 'detail' | 'resultingState'>;

function permissionsToAdd(add: Extract<Action, { kind: 'add-launch-permission' }>['add']): LaunchPermission[] {
  return [
    ...add.userIds.map((UserId) => ({ UserId })),
    ...add.userGroups.map((group) => ({ Group: group as LaunchPermission['Group'] })),
    ...add.organizationArns.map((OrganizationArn) => ({ OrganizationArn })),
    ...add.organizationalUnitArns.map((OrganizationalUnitArn) => ({ OrganizationalUnitArn })),
  ];
}

/** Run one action. Every action is idempotent: running it again changes nothing more. */
async function run(action: Action, clients: CellClients, options: ApplyOptions): Promise<Result> {
  switch (action.kind) {
    case 'create-tags': {
      await clients.ec2.send(
        new CreateTagsCommand({ Resources: [action.target], Tags: Object.entries(action.tags).map(([Key, Value]) => ({ Key, Value })) }),
      );
      return { status: 'applied', detail: `tagged ${Object.keys(action.tags).join(', ')}`, resultingState: undefined };
    }
    case 'add-launch-permission': {
      await clients.ec2.send(
        new ModifyImageAttributeCommand({ ImageId: action.target, LaunchPermission: { Add: permissionsToAdd(action.add) } }),
      );
      return { status: 'applied', detail: 'grants added', resultingState: undefined };
    }
    case 'update-launch-template': {
      let version = action.existingVersion;
      const notes: string[] = [];
      if (action.create !== undefined) {
        const out = await clients.ec2.send(
          new CreateLaunchTemplateVersionCommand({
            LaunchTemplateId: action.launchTemplateId,
            SourceVersion: String(action.create.sourceVersion),
            LaunchTemplateData: { ImageId: action.imageId },
            VersionDescription: `imagebuilder-reconciler: ${options.imageArn}`.slice(0, 255),
            ClientToken: action.create.clientToken,
          }),
        );
        version = out.LaunchTemplateVersion?.VersionNumber;
        if (version === undefined) throw new Error('CreateLaunchTemplateVersion returned no version number');
        notes.push(`created version ${version} from version ${action.create.sourceVersion}`);
        for (const warning of out.Warning?.Errors ?? []) notes.push(`warning ${warning.Code ?? ''}: ${warning.Message ?? ''}`);
      }
      if (action.setDefault && version !== undefined) {
        await clients.ec2.send(
          new ModifyLaunchTemplateCommand({
            LaunchTemplateId: action.launchTemplateId,
            DefaultVersion: String(version),
            ClientToken: `${action.create?.clientToken ?? action.id}-default-${version}`.slice(0, 128),
          }),
        );
        notes.push(`set default version ${version}`);
      }
      return { status: 'applied', detail: notes.join('; '), resultingState: undefined };
    }
    case 'enable-fast-launch': {
      const input = {
        ImageId: action.imageId,
        ResourceType: 'snapshot' as const,
        ...(action.targetResourceCount === undefined ? {} : { SnapshotConfiguration: { TargetResourceCount: action.targetResourceCount } }),
        ...(action.maxParallelLaunches === undefined ? {} : { MaxParallelLaunches: action.maxParallelLaunches }),
        ...(action.launchTemplate === undefined ? {} : { LaunchTemplate: { LaunchTemplateId: action.launchTemplate.id, Version: action.launchTemplate.version } }),
      };
      try {
        const out = await clients.ec2.send(new EnableFastLaunchCommand(input));
        return { status: 'applied', detail: `Fast Launch ${out.State ?? 'requested'}`, resultingState: out.State };
      } catch (error: unknown) {
        // another run (a duplicate event) may have enabled it a moment ago: that is done, not failed
        if (toFailure(error).code !== 'IncorrectState') throw error;
        const now = await clients.ec2.send(new DescribeFastLaunchImagesCommand({ ImageIds: [action.imageId] }));
        const state = now.FastLaunchImages?.[0]?.State;
        if (state !== 'enabling' && state !== 'enabled') throw error;
        return { status: 'already-done', detail: `Fast Launch already ${state}`, resultingState: state };
      }
    }
    case 'put-parameter': {
      const out = await clients.ssm.send(
        new PutParameterCommand({
          Name: action.name,
          Value: action.value,
          Type: 'String',
          DataType: action.dataType ?? 'text',
          Overwrite: true,
        }),
      );
      return { status: 'applied', detail: `version ${out.Version ?? '?'}`, resultingState: undefined };
    }
    case 'retry-image': {
      await clients.imagebuilder.send(new RetryImageCommand({ imageBuildVersionArn: action.target, clientToken: action.clientToken }));
      return { status: 'applied', detail: 'distribution retried', resultingState: undefined };
    }
  }
}

/**
 * Apply a plan. In `plan` mode nothing is called and every action is `planned`. Actions of one cell run in
 * order; cells run concurrently (bounded). A failed action is recorded and never stops other cells.
 */
async function apply(plan: Plan, factory: ClientFactory, options: ApplyOptions): Promise<ActionOutcome[]> {
  const groups = [...plan.cells.map((cell) => cell.actions), plan.imageActions].filter((actions) => actions.length > 0);
  if (options.mode === 'plan') {
    return groups.flat().map((action) => ({ action, status: 'planned', detail: undefined, error: undefined, resultingState: undefined }));
  }
  // cells at once: as many as the factory's global limit of calls can serve (calls are bounded there)
  const limit = pLimit(factory.cellConcurrency());
  const results = await Promise.all(
    groups.map((actions) =>
      limit(async () => {
        const outcomes: ActionOutcome[] = [];
        for (const action of actions) {
          if (options.signal?.aborted === true) {
            outcomes.push({ action, status: 'skipped', detail: 'stopped before the function timed out', error: undefined, resultingState: undefined });
            continue;
          }
          try {
            const clients = await factory.forCell(action.cell.accountId, action.cell.region);
            outcomes.push({ action, error: undefined, ...(await run(action, clients, options)) });
          } catch (error: unknown) {
            const failure = toFailure(new AwsCallError(action.kind, action.cell.accountId, action.cell.region, error));
            outcomes.push({ action, status: 'failed', detail: undefined, error: failure, resultingState: undefined });
          }
        }
        return outcomes;
      }),
    ),
  );
  return results.flat();
}

export { apply };
export type { ApplyOptions };
