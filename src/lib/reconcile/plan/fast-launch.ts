import type { DesiredCell, DesiredImage } from '../../core/desired.ts';
import type { Action, CellObservation, Check, EnableFastLaunchAction, Observation, ObservedFastLaunch, ObservedImage } from '../types.ts';
import { type PlanContext, readFailure } from './common.ts';
import { supersededCheck, supersededFor } from './superseded.ts';

function fastLaunchDifferences(
  want: Pick<EnableFastLaunchAction, 'targetResourceCount' | 'maxParallelLaunches' | 'launchTemplate'>,
  have: ObservedFastLaunch,
): string[] {
  const diffs: string[] = [];
  if (want.targetResourceCount !== undefined && have.targetResourceCount !== want.targetResourceCount) {
    diffs.push(`targetResourceCount ${have.targetResourceCount ?? '-'} ≠ ${want.targetResourceCount}`);
  }
  if (want.maxParallelLaunches !== undefined && have.maxParallelLaunches !== want.maxParallelLaunches) {
    diffs.push(`maxParallelLaunches ${have.maxParallelLaunches ?? '-'} ≠ ${want.maxParallelLaunches}`);
  }
  if (want.launchTemplate !== undefined) {
    if (have.launchTemplate?.id !== want.launchTemplate.id)
      diffs.push(`launch template ${have.launchTemplate?.id ?? '-'} ≠ ${want.launchTemplate.id}`);
    else if (have.launchTemplate.version !== want.launchTemplate.version) {
      diffs.push(`launch template version ${have.launchTemplate.version ?? '-'} ≠ ${want.launchTemplate.version}`);
    }
  }
  return diffs;
}

function pinVersion(configured: string | undefined, template: { defaultVersion: number; latestVersion: number }): string {
  if (configured !== undefined && /^\d+$/.test(configured)) return configured;
  return String(configured === '$Latest' ? template.latestVersion : template.defaultVersion);
}

/** Fast Launch of a Windows AMI with the configured settings; a failed enable is retried a bounded number of times. */
function planFastLaunch(
  cell: DesiredCell,
  obs: CellObservation,
  image: ObservedImage,
  observation: Observation,
  desired: DesiredImage,
  context: PlanContext,
  actions: Action[],
): Check | undefined {
  const want = cell.fastLaunch;
  if (want === undefined) return undefined;
  const subject = image.imageId;
  const origin = want.source === 'inherited' ? ' (owner setting applied to this target account)' : '';
  if (desired.platform !== 'Windows') {
    return {
      check: 'fast-launch',
      subject,
      result: 'skipped',
      reason: `Fast Launch is for Windows AMIs only; this image's platform is ${desired.platform ?? 'unknown'}`,
    };
  }
  const observed = obs.fastLaunch;
  if (observed === undefined) return { check: 'fast-launch', subject, result: 'pending', reason: 'not observed' };
  if (!observed.ok) return readFailure('fast-launch', subject, observed.error);
  const have = observed.value;
  if (have?.state === 'enabling') return { check: 'fast-launch', subject, result: 'pending', reason: `enabling${origin}` };
  if (have?.state === 'disabling')
    return { check: 'fast-launch', subject, result: 'pending', reason: 'disabling; it will be enabled once EC2 has finished' };
  if (have?.state === 'disabling-failed') {
    return {
      check: 'fast-launch',
      subject,
      result: 'failed',
      reason: `disabling-failed: ${have.stateTransitionReason ?? 'no reason given'}`,
    };
  }

  let launchTemplate: EnableFastLaunchAction['launchTemplate'];
  if (want.launchTemplate !== undefined) {
    const found = obs.fastLaunchTemplate;
    const label = want.launchTemplate.name ?? want.launchTemplate.id ?? want.launchTemplate.ownerTemplateId ?? '?';
    if (found === undefined) return { check: 'fast-launch', subject, result: 'pending', reason: 'launch template not observed' };
    if (!found.ok) return readFailure('fast-launch', subject, found.error);
    if (found.value === null) {
      return {
        check: 'fast-launch',
        subject,
        result: 'failed',
        reason: `launch template ${label} for Fast Launch does not exist in account ${cell.accountId}${origin}`,
      };
    }
    launchTemplate = { id: found.value.id, version: pinVersion(want.launchTemplate.version, found.value) };
  }
  const wanted = {
    imageId: subject,
    targetResourceCount: want.targetResourceCount,
    maxParallelLaunches: want.maxParallelLaunches,
    launchTemplate,
  };

  let reason: string;
  let isRetry = false;
  if (have === null || have.state === 'disabled') {
    reason = `not enabled${origin}`;
  } else if (have.state === 'enabled') {
    const diffs = fastLaunchDifferences(wanted, have);
    if (diffs.length === 0) return { check: 'fast-launch', subject, result: 'ok', reason: `enabled${origin}` };
    reason = `enabled with other settings: ${diffs.join('; ')}`;
  } else {
    // enabling-failed / enabled-failed: a bounded number of re-enables, then a failure with EC2's reason
    const used = context.fastLaunchRetries[cell.key] ?? 0;
    const ec2Reason = have.stateTransitionReason ?? 'no reason given';
    if (used >= context.fastLaunchMaxRetries) {
      return {
        check: 'fast-launch',
        subject,
        result: 'failed',
        reason: `${have.state} after ${used} retr${used === 1 ? 'y' : 'ies'}: ${ec2Reason}`,
      };
    }
    reason = `${have.state}: ${ec2Reason}; retry ${used + 1} of ${context.fastLaunchMaxRetries}`;
    isRetry = true;
  }
  const superseded = supersededFor(cell, observation, []);
  if (superseded !== undefined) return supersededCheck('fast-launch', subject, superseded);
  const id = `${cell.key}/enable-fast-launch/${subject}`;
  actions.push({
    id,
    kind: 'enable-fast-launch',
    cell: { region: cell.region, accountId: cell.accountId },
    target: subject,
    reason,
    isRetry,
    ...wanted,
  });
  return { check: 'fast-launch', subject, result: 'drift', reason, actionIds: [id] };
}

export { planFastLaunch };
