import type { LaunchPermissionConfiguration } from '@aws-sdk/client-imagebuilder';
import type { DesiredCell } from '../../core/desired.ts';
import type { Action, AddLaunchPermissionAction, CellObservation, Check, ObservedImage } from '../types.ts';
import { readFailure } from './common.ts';

const PERMISSION_KINDS = ['userIds', 'userGroups', 'organizationArns', 'organizationalUnitArns'] as const;

/** The configured launch permission: missing grants are added; grants not configured are reported, never removed. */
function planLaunchPermission(cell: DesiredCell, obs: CellObservation, image: ObservedImage, actions: Action[]): Check[] {
  const wanted = cell.launchPermission;
  if (wanted === undefined) {
    return image.public
      ? [
          {
            check: 'launch-permission',
            subject: image.imageId,
            result: 'warning',
            reason: 'the AMI is public, but the configuration does not share it publicly (left as is)',
          },
        ]
      : [];
  }
  const observed = obs.launchPermissions;
  // configured but not read in this pass: never silently fine; the next pass reads it
  if (observed === undefined)
    return [{ check: 'launch-permission', subject: image.imageId, result: 'pending', reason: 'launch permissions not read yet' }];
  if (!observed.ok) return [readFailure('launch-permission', image.imageId, observed.error)];
  const have: LaunchPermissionConfiguration = observed.value ?? {};
  const add: AddLaunchPermissionAction['add'] = { userIds: [], userGroups: [], organizationArns: [], organizationalUnitArns: [] };
  const extra: string[] = [];
  for (const kind of PERMISSION_KINDS) {
    const wantList = (wanted[kind] ?? []).filter((value) => !(kind === 'userIds' && value === cell.accountId));
    const haveList = have[kind] ?? [];
    add[kind] = wantList.filter((value) => !haveList.includes(value));
    extra.push(...haveList.filter((value) => !wantList.includes(value)).map((value) => `${kind}:${value}`));
  }
  const checks: Check[] = [];
  const missing = PERMISSION_KINDS.flatMap((kind) => add[kind].map((value) => `${kind}:${value}`));
  if (missing.length > 0) {
    const id = `${cell.key}/add-launch-permission/${image.imageId}`;
    actions.push({
      id,
      kind: 'add-launch-permission',
      cell: { region: cell.region, accountId: cell.accountId },
      target: image.imageId,
      reason: `missing grant(s): ${missing.join(', ')}`,
      add,
    });
    checks.push({
      check: 'launch-permission',
      subject: image.imageId,
      result: 'drift',
      reason: `missing grant(s): ${missing.join(', ')}`,
      actionIds: [id],
    });
  } else {
    checks.push({ check: 'launch-permission', subject: image.imageId, result: 'ok', reason: 'every configured grant is present' });
  }
  if (extra.length > 0) {
    checks.push({
      check: 'launch-permission',
      subject: image.imageId,
      result: 'warning',
      reason: `grant(s) not in the configuration (never removed by the reconciler): ${extra.join(', ')}`,
    });
  }
  return checks;
}

export { planLaunchPermission };
