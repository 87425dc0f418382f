import { NOT_A_TARGET_ACCOUNT } from '../../core/errors.ts';
import type { DesiredCell, DesiredImage } from '../../core/desired.ts';
import type { Failure } from '../../core/errors.ts';
import type { CellObservation, CellPlan } from '../types.ts';
import { type PlanContext, REASONS, readFailure } from './common.ts';
import { planTags } from './tags.ts';

const SHARED_REASONS = {
  sharedUnreachable: (f: Failure) =>
    `${f.message}; this account only receives a launch permission (no copy), so its amiTags are set only where the role can be assumed (RECONCILER_SHARED_ACCOUNTS=require fails this cell instead)`,
  sharedNotVisible: (source: { region: string; accountId: string }, accountId: string) =>
    `not visible in account ${accountId}: the launch permission of ${source.region}/${source.accountId}'s copy has not reached it yet (that cell checks and repairs the grant)`,
} as const;

/**
 * A `shared` cell: an account of `launchPermission.userIds` that holds no copy. Each AMI of the region shared
 * with it must be visible there and carry the amiTags in the account's own tag scope: EC2 shows a sharee none
 * of the owner's tags, and tags a sharee sets on a shared AMI are visible only to the sharee (EC2 User Guide,
 * "Share an AMI with specific AWS accounts", Considerations). Missing ones are added by `CreateTags` from
 * that account. A role that cannot be assumed there skips the cell unless `sharedRoleRequired`.
 */
function planSharedCell(cell: DesiredCell, obs: CellObservation, desired: DesiredImage, context: PlanContext, plan: CellPlan): void {
  if (!obs.access.ok) {
    const failure = obs.access.error;
    if (failure.code === NOT_A_TARGET_ACCOUNT) {
      plan.checks.push({ check: 'access', subject: cell.accountId, result: 'skipped', reason: failure.message });
      return;
    }
    const result = failure.kind === 'throttled' ? 'pending' : context.sharedRoleRequired === true ? 'failed' : 'skipped';
    const reason = result === 'skipped' ? SHARED_REASONS.sharedUnreachable(failure) : REASONS.accessDenied(failure);
    plan.checks.push({ check: 'access', subject: cell.accountId, result, reason });
    return;
  }
  const sources = cell.sharedImages ?? [];
  if (sources.length === 0) {
    const inProgress = !['AVAILABLE', 'FAILED', 'CANCELLED'].includes(desired.status);
    plan.checks.push(
      inProgress
        ? { check: 'ami', subject: '(none)', result: 'pending', reason: REASONS.imageInProgress(desired.status) }
        : {
            check: 'ami',
            subject: '(none)',
            result: 'skipped',
            reason: `no copy of ${cell.region} was recorded, so none is shared with the account`,
          },
    );
    return;
  }
  const observed = obs.sharedImages;
  const subjects = sources.map((s) => s.imageId).join(', ');
  if (observed === undefined) {
    plan.checks.push({ check: 'ami', subject: subjects, result: 'pending', reason: 'not observed' });
    return;
  }
  if (!observed.ok) {
    plan.checks.push(readFailure('ami', subjects, observed.error));
    return;
  }
  for (const source of sources) {
    const subject = source.imageId;
    const image = observed.value[subject];
    if (image === undefined) {
      plan.checks.push({ check: 'ami', subject, result: 'pending', reason: SHARED_REASONS.sharedNotVisible(source, cell.accountId) });
    } else if (image.ownerId !== source.accountId) {
      plan.checks.push({
        check: 'ami',
        subject,
        result: 'failed',
        reason: `the AMI is owned by ${image.ownerId}, not by ${source.accountId}`,
      });
    } else if (image.state === 'pending') {
      plan.checks.push({ check: 'ami', subject, result: 'pending', reason: 'the AMI is still pending' });
    } else if (image.state !== 'available') {
      plan.checks.push({
        check: 'ami',
        subject,
        result: 'failed',
        reason: `the AMI is ${image.state}${image.stateReason === undefined ? '' : `: ${image.stateReason}`}`,
      });
    } else {
      plan.checks.push({ check: 'ami', subject, result: 'ok', reason: `shared by ${source.accountId}, available` });
      plan.checks.push(planTags(cell, image, plan.actions));
    }
  }
}

export { planSharedCell };
