import type { DesiredCell, DesiredImage } from '../../core/desired.ts';
import { NOT_A_TARGET_ACCOUNT } from '../../core/errors.ts';
import type { Action, CellPlan, Check, Observation, Plan } from '../types.ts';
import { checkAmi, checkName } from './ami.ts';
import { type PlanContext, REASONS, token } from './common.ts';
import { checkEncryption } from './encryption.ts';
import { planFastLaunch } from './fast-launch.ts';
import { planLaunchPermission } from './launch-permission.ts';
import { planLaunchTemplates } from './launch-templates.ts';
import { planLicenses } from './licenses.ts';
import { checkS3Export } from './s3-export.ts';
import { planSharedCell } from './shared.ts';
import { planParameters } from './ssm-parameters.ts';
import { planTags } from './tags.ts';

/**
 * A cell of a revoked build: nothing is repaired, no pointer is moved to it, no launch permission added and
 * no Fast Launch enabled (never current again; `imagebuilder-reconciler unrevoke` lifts the mark).
 */
function planRevokedCell(cell: DesiredCell, mark: string, plan: CellPlan): void {
  const reason = `the build is revoked (${mark}): it is never current again, nothing is repaired or pointed at it`;
  const subject = plan.imageId ?? cell.accountId;
  plan.checks.push({ check: 'ami', subject, result: 'skipped', reason });
  for (const lt of cell.launchTemplates)
    plan.checks.push({ check: 'launch-template', subject: lt.launchTemplateId, result: 'skipped', reason });
  if (cell.fastLaunch !== undefined) plan.checks.push({ check: 'fast-launch', subject, result: 'skipped', reason });
  for (const p of cell.parameters) plan.checks.push({ check: 'ssm-parameter', subject: p.name, result: 'skipped', reason });
}

/** The checks and actions of one cell, in the order the report shows them. */
function planCell(cell: DesiredCell, observation: Observation, desired: DesiredImage, context: PlanContext): CellPlan {
  const plan: CellPlan = {
    key: cell.key,
    region: cell.region,
    accountId: cell.accountId,
    origin: cell.origin,
    imageId: cell.origin === 'shared' ? cell.sharedImages?.[0]?.imageId : cell.recorded?.imageId,
    checks: [],
    actions: [],
  };
  const obs = observation.cells[cell.key];
  if (obs === undefined) {
    plan.checks.push({ check: 'access', subject: cell.accountId, result: 'pending', reason: 'not observed' });
    return plan;
  }
  if (desired.revoked !== undefined) {
    planRevokedCell(cell, desired.revoked, plan);
    return plan;
  }
  if (cell.origin === 'shared') {
    planSharedCell(cell, obs, desired, context, plan);
    return plan;
  }
  if (!obs.access.ok) {
    const failure = obs.access.error;
    plan.checks.push({
      check: 'access',
      subject: cell.accountId,
      // an account outside the deployment's targetAccounts is left alone on purpose: skipped, not failed
      result: failure.code === NOT_A_TARGET_ACCOUNT ? 'skipped' : failure.kind === 'throttled' ? 'pending' : 'failed',
      reason: failure.code === NOT_A_TARGET_ACCOUNT ? failure.message : REASONS.accessDenied(failure),
    });
    return plan;
  }
  const { check, image } = checkAmi(cell, obs, desired);
  plan.checks.push(check);
  if (image === undefined) {
    if (cell.s3Export !== undefined)
      plan.checks.push({
        check: 's3-export',
        subject: `s3://${cell.s3Export.bucket}/${cell.s3Export.prefix ?? ''}`,
        result: 'pending',
        reason: 'not checked until the AMI is seen',
      });
    return plan;
  }
  const add = (c: Check | undefined): void => {
    if (c !== undefined) plan.checks.push(c);
  };
  add(checkS3Export(cell, obs, image));
  add(checkName(cell, image, desired));
  add(planTags(cell, image, plan.actions));
  plan.checks.push(...planLaunchPermission(cell, obs, image, plan.actions));
  add(checkEncryption(cell, obs, image));
  plan.checks.push(...planLicenses(cell, obs, image, plan.actions));
  if (desired.status !== 'AVAILABLE') {
    // launch templates, Fast Launch and SSM parameters roll an image out: never for a build that did not finish
    const reason = `the image is ${desired.status}; launch templates, Fast Launch and SSM parameters are set only for AVAILABLE images`;
    for (const lt of cell.launchTemplates)
      plan.checks.push({ check: 'launch-template', subject: lt.launchTemplateId, result: 'skipped', reason });
    if (cell.fastLaunch !== undefined) plan.checks.push({ check: 'fast-launch', subject: image.imageId, result: 'skipped', reason });
    for (const p of cell.parameters) plan.checks.push({ check: 'ssm-parameter', subject: p.name, result: 'skipped', reason });
    return plan;
  }
  plan.checks.push(...planLaunchTemplates(cell, obs, image, observation, desired, plan.actions));
  add(planFastLaunch(cell, obs, image, observation, desired, context, plan.actions));
  plan.checks.push(...planParameters(cell, obs, image, observation, plan.actions));
  return plan;
}

/**
 * Plan the reconcile of one image build: compare desired with observed state and list, for each cell,
 * its checks and the idempotent actions that repair its drift, each with its reason.
 *
 * Pure: no I/O, no clock, no randomness. The same inputs give the same plan, action ids and client tokens.
 */
function plan(desired: DesiredImage, observation: Observation, context: PlanContext): Plan {
  const cells = desired.cells.map((cell) => planCell(cell, observation, desired, context));
  const imageActions: Action[] = [];
  // a shared cell holds no copy of its own: it is never a missing one
  const missing = [
    ...cells
      .filter((cell) => cell.origin !== 'shared' && cell.imageId === undefined && cell.checks.some((c) => c.check === 'ami'))
      .map((cell) => cell.key),
    ...(context.shard?.missingElsewhere ?? []),
  ];
  const imageLevel = context.shard?.imageLevel ?? true;
  if (imageLevel && desired.revoked === undefined && desired.status === 'FAILED' && context.retryFailedImages && missing.length > 0) {
    imageActions.push({
      id: `image/retry-image`,
      kind: 'retry-image',
      cell: { region: desired.buildRegion, accountId: desired.ownerAccountId },
      target: desired.arn.arn,
      reason: `${missing.length} cell(s) not distributed: ${missing.join(', ')}`,
      // one retry per image build, ever: RetryImage is idempotent on the token
      clientToken: token(desired.arn.arn, 'retry-image'),
    });
  }
  const newer = observation.newerBuilds.ok ? observation.newerBuilds.value[0]?.arn : undefined;
  return { cells, imageActions, supersededBy: newer };
}

export { plan, planCell };
export type { PlanContext };
