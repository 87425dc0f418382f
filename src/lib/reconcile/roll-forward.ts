import { DescribeLaunchTemplateVersionsCommand, ModifyLaunchTemplateCommand } from '@aws-sdk/client-ec2';
import { GetParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import type { ClientFactory } from '../aws/clients.ts';
import { cellKey } from '../core/cells.ts';
import type { DesiredImage } from '../core/desired.ts';
import { AwsCallError, toFailure } from '../core/errors.ts';
import { observeNewerBuilds } from './observe.ts';
import {
  type ActionOutcome,
  type NewerBuild,
  type PutParameterAction,
  ROLL_FORWARD_UNCHECKED,
  type UpdateLaunchTemplateAction,
} from './types.ts';

type Wrote = ActionOutcome & { action: PutParameterAction | UpdateLaunchTemplateAction };

/**
 * After a run has written pointers, close the window between its last re-read and its write: list the
 * newer AVAILABLE builds once more (newer by `compareBuilds`, core/arn.ts: build order is creation order), and
 * where this run's value is still in a pointer although a newer build has an AMI in that cell, the newer
 * build's run wrote first and this run overwrote it. Put the newer build's AMI back (roll forward). One list
 * call per run that wrote a pointer; nothing when none is newer. When the list call fails (throttled past
 * retries, denied), every pointer written is left unchecked, never silently: each gets an outcome that keeps
 * its cell pending, and the recheck's plan rolls the pointer forward from its own listing.
 */
async function rollForward(desired: DesiredImage, outcomes: ActionOutcome[], factory: ClientFactory): Promise<ActionOutcome[]> {
  const wrote = outcomes.filter(
    (o): o is Wrote =>
      o.status === 'applied' && (o.action.kind === 'put-parameter' || (o.action.kind === 'update-launch-template' && o.action.setDefault)),
  );
  if (wrote.length === 0) return [];
  const newer = await observeNewerBuilds(desired, factory);
  if (!newer.ok) {
    const detail = `not checked for a newer build's write this run may have overwritten: cannot list the newer builds (${newer.error.message}); the recheck looks again`;
    return wrote.map((o) => ({
      action: { ...o.action, id: `${o.action.id}/roll-forward`, reason: 'roll forward to a newer build' },
      status: 'skipped',
      detail,
      error: newer.error,
      resultingState: ROLL_FORWARD_UNCHECKED,
    }));
  }
  const extra: ActionOutcome[] = [];
  for (const o of wrote) {
    const key = cellKey(o.action.cell.region, o.action.cell.accountId);
    const newest = newer.value.find((b) => b.amis[key] !== undefined);
    const ami = newest?.amis[key];
    // the write was itself of the newest AMI (a roll-forward the plan made, plan/launch-templates.ts, plan/ssm-parameters.ts): nothing to put back
    const written = o.action.kind === 'put-parameter' ? o.action.value : o.action.imageId;
    if (newest === undefined || ami === undefined || ami === written) continue;
    try {
      const detail = await repair(o.action, ami, newest, factory);
      if (detail !== undefined) {
        extra.push({
          action: { ...o.action, id: `${o.action.id}/roll-forward`, reason: `a newer build's run wrote before this run's write landed` },
          status: 'applied',
          detail,
          error: undefined,
          resultingState: 'rolled-forward',
        });
      }
    } catch (error: unknown) {
      const failure = toFailure(new AwsCallError(`${o.action.kind} (roll forward)`, o.action.cell.accountId, o.action.cell.region, error));
      extra.push({
        action: { ...o.action, id: `${o.action.id}/roll-forward`, reason: 'roll forward to a newer build' },
        status: 'failed',
        detail: undefined,
        error: failure,
        resultingState: undefined,
      });
    }
  }
  return extra;
}

async function repair(
  action: PutParameterAction | UpdateLaunchTemplateAction,
  ami: string,
  newest: NewerBuild,
  factory: ClientFactory,
): Promise<string | undefined> {
  const clients = await factory.forCell(action.cell.accountId, action.cell.region);
  if (action.kind === 'put-parameter') {
    const current = (await clients.ssm.send(new GetParameterCommand({ Name: action.name }))).Parameter?.Value;
    if (current !== action.value) return undefined;
    await clients.ssm.send(
      new PutParameterCommand({ Name: action.name, Value: ami, Type: 'String', DataType: action.dataType ?? 'text', Overwrite: true }),
    );
    return `rolled forward to ${ami} of newer build ${newest.arn}`;
  }
  const current = await clients.ec2.send(
    new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: action.launchTemplateId, Versions: ['$Default'] }),
  );
  if (current.LaunchTemplateVersions?.[0]?.LaunchTemplateData?.ImageId !== action.imageId) return undefined;
  const withNewer = await clients.ec2.send(
    new DescribeLaunchTemplateVersionsCommand({
      LaunchTemplateId: action.launchTemplateId,
      Filters: [{ Name: 'image-id', Values: [ami] }],
    }),
  );
  const version = Math.max(0, ...(withNewer.LaunchTemplateVersions ?? []).map((v) => v.VersionNumber ?? 0));
  // no version with the newer AMI yet: the newer build's run has not written, and its write will come after this one
  if (version === 0) return undefined;
  await clients.ec2.send(new ModifyLaunchTemplateCommand({ LaunchTemplateId: action.launchTemplateId, DefaultVersion: String(version) }));
  return `default rolled forward to version ${version} (${ami} of newer build ${newest.arn})`;
}

export { rollForward };
