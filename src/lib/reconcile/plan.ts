import { createHash } from 'node:crypto';
import type { LaunchPermissionConfiguration } from '@aws-sdk/client-imagebuilder';
import { amiArn } from '../core/arn.ts';
import { type DesiredCell, type DesiredImage, namePatternRegExp } from '../core/desired.ts';
import type { Failure } from '../core/errors.ts';
import type {
  Action,
  AddLaunchPermissionAction,
  CellObservation,
  CellPlan,
  Check,
  CheckName,
  EnableFastLaunchAction,
  Observation,
  ObservedFastLaunch,
  ObservedImage,
  Plan,
} from './types.ts';
import { SSM_ALIAS } from './types.ts';

/** What the planner needs besides desired and observed state. */
interface PlanContext {
  /** Times Fast Launch was re-enabled after a failure, by cell key (carried by the recheck message). */
  fastLaunchRetries: Readonly<Record<string, number>>;
  fastLaunchMaxRetries: number;
  retryFailedImages: boolean;
  /**
   * A `shared` cell (an account that only receives a launch permission) whose role cannot be assumed fails
   * (`RECONCILER_SHARED_ACCOUNTS=require`) instead of being skipped. Default false: nobody asked for a role
   * there, so its absence must not turn a run red.
   */
  sharedRoleRequired?: boolean;
  /**
   * When the plan covers one shard of the build (`desired.cells` are the shard's): whether this shard does the
   * image-level work (shard 1 does; RetryImage), and the keys of the other shards' cells that Image Builder
   * recorded no AMI for, so that the image-level decision still sees the whole build. Left out: the whole build.
   */
  shard?: { imageLevel: boolean; missingElsewhere: readonly string[] } | undefined;
}

const REASONS = {
  accessDenied: (f: Failure) => `cannot reach the account: ${f.message}`,
  notRecorded: 'Image Builder recorded no AMI for this cell',
  referencedOnly: (setting: string) =>
    `a ${setting} setting names this account, but it is not a distribution target of the region, so it holds no copy`,
  imageInProgress: (status: string) => `the image is ${status}; distribution has not finished`,
  notVisible: 'the AMI Image Builder recorded is not visible in the account yet (eventual consistency or still copying)',
  superseded: (arn: string) => `superseded: newer build ${arn} is distributed here; no rollback`,
  supersededUnknown: (f: Failure) => `cannot tell whether a newer build exists (${f.code}); not changing anything that could roll back`,
  sharedUnreachable: (f: Failure) =>
    `${f.message}; this account only receives a launch permission (no copy), so its amiTags are set only where the role can be assumed (RECONCILER_SHARED_ACCOUNTS=require fails this cell instead)`,
  sharedNotVisible: (source: { region: string; accountId: string }, accountId: string) =>
    `not visible in account ${accountId}: the launch permission of ${source.region}/${source.accountId}'s copy has not reached it yet (that cell checks and repairs the grant)`,
} as const;

function token(...parts: string[]): string {
  return `ibr-${createHash('sha256').update(parts.join('|')).digest('hex').slice(0, 48)}`;
}

/** A failed read becomes `pending` when retrying may help (throttling, not yet visible), else `failed`. */
function readFailure(check: CheckName, subject: string, failure: Failure): Check {
  const retryable = failure.kind === 'throttled' || failure.kind === 'not-found';
  return { check, subject, result: retryable ? 'pending' : 'failed', reason: failure.message };
}

function checkAmi(cell: DesiredCell, obs: CellObservation, desired: DesiredImage): { check: Check; image: ObservedImage | undefined } {
  const subject = cell.recorded?.imageId ?? '(none)';
  if (cell.recorded === undefined) {
    if (cell.origin === 'referenced') {
      return { check: { check: 'ami', subject, result: 'failed', reason: REASONS.referencedOnly('launch template, Fast Launch or SSM parameter') }, image: undefined };
    }
    if (desired.status === 'AVAILABLE') return { check: { check: 'ami', subject, result: 'failed', reason: REASONS.notRecorded }, image: undefined };
    if (desired.status === 'FAILED' || desired.status === 'CANCELLED') {
      const why = desired.stateReason === undefined ? desired.status : `${desired.status}: ${desired.stateReason}`;
      return { check: { check: 'ami', subject, result: 'failed', reason: `not distributed (image ${why})` }, image: undefined };
    }
    return { check: { check: 'ami', subject, result: 'pending', reason: REASONS.imageInProgress(desired.status) }, image: undefined };
  }
  const observed = obs.image;
  if (observed === undefined) return { check: { check: 'ami', subject, result: 'pending', reason: 'not observed' }, image: undefined };
  if (!observed.ok) return { check: readFailure('ami', subject, observed.error), image: undefined };
  const image = observed.value;
  if ((image === null || image.state === 'deregistered') && cell.cleanedUp !== undefined) {
    // removed on purpose: the cell left the configuration and cleanup deregistered its AMI; nothing to wait for
    return { check: { check: 'ami', subject, result: 'skipped', reason: `cleaned up by imagebuilder-reconciler: ${cell.cleanedUp}` }, image: undefined };
  }
  if (image === null) return { check: { check: 'ami', subject, result: 'pending', reason: REASONS.notVisible }, image: undefined };
  if (image.ownerId !== cell.accountId) {
    return {
      check: { check: 'ami', subject, result: 'failed', reason: `the AMI is owned by ${image.ownerId}, not by ${cell.accountId}` },
      image: undefined,
    };
  }
  if (image.state === 'pending') return { check: { check: 'ami', subject, result: 'pending', reason: 'the AMI is still pending' }, image: undefined };
  if (image.state !== 'available') {
    const why = image.stateReason === undefined ? '' : `: ${image.stateReason}`;
    return { check: { check: 'ami', subject, result: 'failed', reason: `the AMI is ${image.state}${why}` }, image: undefined };
  }
  return { check: { check: 'ami', subject, result: 'ok', reason: 'available' }, image };
}

function checkName(cell: DesiredCell, image: ObservedImage, desired: DesiredImage): Check | undefined {
  if (cell.namePattern === undefined) return undefined;
  const ok = namePatternRegExp(cell.namePattern, desired.arn.buildNumber).test(image.name);
  return {
    check: 'name',
    subject: image.imageId,
    result: ok ? 'ok' : 'warning',
    reason: ok ? `"${image.name}" matches "${cell.namePattern}"` : `"${image.name}" does not match the configured "${cell.namePattern}" (names cannot be changed; report only)`,
  };
}

function planTags(cell: DesiredCell, image: ObservedImage, actions: Action[]): Check {
  const missing: Record<string, string> = {};
  for (const [key, value] of Object.entries(cell.tags)) if (image.tags[key] !== value) missing[key] = value;
  const keys = Object.keys(missing);
  if (keys.length === 0) return { check: 'tags', subject: image.imageId, result: 'ok', reason: `${Object.keys(cell.tags).length} tag(s) present` };
  const id = `${cell.key}/create-tags/${image.imageId}`;
  actions.push({
    id,
    kind: 'create-tags',
    cell: { region: cell.region, accountId: cell.accountId },
    target: image.imageId,
    reason: `missing or different tag(s): ${keys.join(', ')}`,
    tags: missing,
  });
  return { check: 'tags', subject: image.imageId, result: 'drift', reason: `missing or different tag(s): ${keys.join(', ')}`, actionIds: [id] };
}

const PERMISSION_KINDS = ['userIds', 'userGroups', 'organizationArns', 'organizationalUnitArns'] as const;

function planLaunchPermission(cell: DesiredCell, obs: CellObservation, image: ObservedImage, actions: Action[]): Check[] {
  const wanted = cell.launchPermission;
  if (wanted === undefined) {
    return image.public
      ? [{ check: 'launch-permission', subject: image.imageId, result: 'warning', reason: 'the AMI is public, but the configuration does not share it publicly (left as is)' }]
      : [];
  }
  const observed = obs.launchPermissions;
  // configured but not read in this pass: never silently fine; the next pass reads it
  if (observed === undefined) return [{ check: 'launch-permission', subject: image.imageId, result: 'pending', reason: 'launch permissions not read yet' }];
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
    checks.push({ check: 'launch-permission', subject: image.imageId, result: 'drift', reason: `missing grant(s): ${missing.join(', ')}`, actionIds: [id] });
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

function keyMatches(configured: string, actual: string | undefined): boolean | 'unknown' {
  if (actual === undefined) return false;
  if (configured === actual) return true;
  if (configured.startsWith('alias/') || configured.includes(':alias/')) return 'unknown';
  const id = configured.includes(':key/') ? configured.slice(configured.indexOf(':key/') + 5) : configured;
  return actual.endsWith(`key/${id}`) || actual === id;
}

function checkEncryption(cell: DesiredCell, obs: CellObservation, image: ObservedImage): Check | undefined {
  if (cell.kmsKeyId === undefined) return undefined;
  const observed = obs.snapshots;
  if (observed === undefined) return { check: 'encryption', subject: image.imageId, result: 'warning', reason: 'the AMI has no EBS snapshots to check' };
  if (!observed.ok) return readFailure('encryption', image.imageId, observed.error);
  const snapshots = observed.value ?? [];
  const wrong: string[] = [];
  const unknown: string[] = [];
  for (const snapshot of snapshots) {
    const match = snapshot.encrypted ? keyMatches(cell.kmsKeyId, snapshot.kmsKeyId) : false;
    if (match === false) wrong.push(`${snapshot.snapshotId} (${snapshot.encrypted ? snapshot.kmsKeyId ?? 'unknown key' : 'unencrypted'})`);
    if (match === 'unknown') unknown.push(snapshot.snapshotId);
  }
  if (wrong.length > 0) {
    return { check: 'encryption', subject: image.imageId, result: 'failed', reason: `snapshot(s) not encrypted with ${cell.kmsKeyId}: ${wrong.join(', ')} (report only)` };
  }
  if (unknown.length > 0) {
    return { check: 'encryption', subject: image.imageId, result: 'warning', reason: `${cell.kmsKeyId} is an alias; cannot confirm the key of ${unknown.join(', ')} without KMS` };
  }
  return { check: 'encryption', subject: image.imageId, result: 'ok', reason: `${snapshots.length} snapshot(s) encrypted with ${cell.kmsKeyId}` };
}

/**
 * License configurations: each ARN the distribution names must be associated with the AMI. Missing ones are
 * added (`UpdateLicenseSpecificationsForResource`, add only); associations the configuration does not name
 * are reported, never removed. A refused read fails the check with License Manager's own words.
 */
function planLicenses(cell: DesiredCell, obs: CellObservation, image: ObservedImage, actions: Action[]): Check[] {
  const wanted = cell.licenseConfigurationArns ?? [];
  if (wanted.length === 0) return [];
  const observed = obs.licenses;
  if (observed === undefined) return wanted.map((arn) => ({ check: 'license-configuration', subject: arn, result: 'pending', reason: 'not observed' }));
  if (!observed.ok) return wanted.map((arn) => readFailure('license-configuration', arn, observed.error));
  const have = new Set(observed.value);
  const missing = wanted.filter((arn) => !have.has(arn));
  const id = `${cell.key}/associate-licenses/${image.imageId}`;
  if (missing.length > 0) {
    actions.push({
      id,
      kind: 'associate-licenses',
      cell: { region: cell.region, accountId: cell.accountId },
      target: image.imageId,
      reason: `license configuration(s) not associated with ${image.imageId}: ${missing.join(', ')}`,
      resourceArn: amiArn(cell.region, image.imageId),
      licenseConfigurationArns: missing,
    });
  }
  const checks: Check[] = wanted.map((arn) =>
    have.has(arn)
      ? { check: 'license-configuration', subject: arn, result: 'ok', reason: `associated with ${image.imageId}` }
      : { check: 'license-configuration', subject: arn, result: 'drift', reason: `not associated with ${image.imageId}`, actionIds: [id] },
  );
  const extra = observed.value.filter((arn) => !wanted.includes(arn));
  if (extra.length > 0) {
    checks.push({ check: 'license-configuration', subject: image.imageId, result: 'warning', reason: `associated but not in the configuration (never removed by the reconciler): ${extra.join(', ')}` });
  }
  return checks;
}

/** Whether a newer build makes changes for this cell a rollback: its ARN, `unknown`, or undefined. */
function supersededFor(cell: DesiredCell, observation: Observation, currentValues: (string | undefined)[]): string | Failure | undefined {
  if (!observation.newerBuilds.ok) return observation.newerBuilds.error;
  for (const build of observation.newerBuilds.value) {
    if (build.amis[cell.key] !== undefined) return build.arn;
    const amis = Object.values(build.amis);
    if (currentValues.some((value) => value !== undefined && amis.includes(value))) return build.arn;
  }
  return undefined;
}

function supersededCheck(check: CheckName, subject: string, by: string | Failure): Check {
  return typeof by === 'string'
    ? { check, subject, result: 'skipped', reason: REASONS.superseded(by) }
    : { check, subject, result: 'pending', reason: REASONS.supersededUnknown(by) };
}

/**
 * The parameter a `resolve:ssm:` reference names, when it is a plain name (or an ARN of the cell's own account
 * and region) without a pinned version or label: only such a reference follows a PutParameter of that name.
 */
function followedParameter(alias: string, cell: DesiredCell): string | undefined {
  const ref = alias.slice(SSM_ALIAS.length);
  const arn = /^arn:aws[\w-]*:ssm:([\w-]+):(\d{12}):parameter(\/.*)$/.exec(ref);
  if (arn !== null) {
    if (arn[1] !== cell.region || arn[2] !== cell.accountId) return undefined;
    return /:[^/:]+$/.test(arn[3] ?? '') ? undefined : arn[3];
  }
  // `name:version` or `name:label` is pinned: a later put of the name never moves it
  return ref.includes(':') ? undefined : ref;
}

/**
 * A launch template whose default version is parameter-driven (`ImageId: resolve:ssm:…`): compared through
 * the AMI EC2 resolves it to, and never turned into a pinned template by a new version with a literal AMI.
 */
function checkParameterDrivenTemplate(
  cell: DesiredCell,
  alias: string,
  template: { launchTemplateId: string; defaultVersion: number; defaultImageId: string | undefined },
  image: ObservedImage,
  observation: Observation,
): Check {
  const subject = template.launchTemplateId;
  const where = `default version ${template.defaultVersion} uses ${alias}`;
  if (template.defaultImageId === image.imageId) {
    return { check: 'launch-template', subject, result: 'ok', reason: `${where}, which resolves to ${image.imageId}; left parameter-driven` };
  }
  const superseded = supersededFor(cell, observation, [template.defaultImageId]);
  if (superseded !== undefined) return supersededCheck('launch-template', subject, superseded);
  const resolves = template.defaultImageId === undefined ? 'which does not resolve to an AMI' : `which resolves to ${template.defaultImageId}`;
  const name = followedParameter(alias, cell);
  if (name !== undefined && cell.parameters.some((p) => p.name === name)) {
    return { check: 'launch-template', subject, result: 'pending', reason: `${where}, ${resolves}: this distribution sets ${name} to ${image.imageId} here, so the template follows once that parameter is repaired (not pinned)` };
  }
  return {
    check: 'launch-template',
    subject,
    result: 'failed',
    reason: `${where}, ${resolves}, not ${image.imageId}; left parameter-driven rather than pinned to a literal AMI: point that parameter at ${image.imageId} (or add it to ssmParameterConfigurations for account ${cell.accountId}), or give the template a version with the AMI yourself`,
  };
}

function planLaunchTemplates(cell: DesiredCell, obs: CellObservation, image: ObservedImage, observation: Observation, desired: DesiredImage, actions: Action[]): Check[] {
  return cell.launchTemplates.map((lt): Check => {
    const subject = lt.launchTemplateId;
    const observed = obs.launchTemplates[lt.launchTemplateId];
    if (observed === undefined) return { check: 'launch-template', subject, result: 'pending', reason: 'not observed' };
    if (!observed.ok) return readFailure('launch-template', subject, observed.error);
    const template = observed.value;
    if (template === null) {
      return { check: 'launch-template', subject, result: 'failed', reason: `launch template ${subject} does not exist in account ${cell.accountId}` };
    }
    const hasVersion = template.versionsWithImage.length > 0;
    const isDefault = template.versionsWithImage.includes(template.defaultVersion);
    if (hasVersion && (!lt.setDefaultVersion || isDefault)) {
      const version = isDefault ? template.defaultVersion : template.versionsWithImage.at(-1);
      return { check: 'launch-template', subject, result: 'ok', reason: `version ${version} uses ${image.imageId}${isDefault ? ' and is the default' : ''}` };
    }
    if (template.defaultImageAlias !== undefined) return checkParameterDrivenTemplate(cell, template.defaultImageAlias, template, image, observation);
    const superseded = supersededFor(cell, observation, [template.defaultImageId]);
    if (superseded !== undefined) return supersededCheck('launch-template', subject, superseded);
    const id = `${cell.key}/update-launch-template/${subject}`;
    const existingVersion = template.versionsWithImage.at(-1);
    const reason = hasVersion
      ? `version ${existingVersion} uses ${image.imageId} but the default is version ${template.defaultVersion}`
      : `no version uses ${image.imageId} (default version ${template.defaultVersion} uses ${template.defaultImageId ?? 'no AMI'})`;
    actions.push({
      id,
      kind: 'update-launch-template',
      cell: { region: cell.region, accountId: cell.accountId },
      target: subject,
      reason,
      launchTemplateId: subject,
      imageId: image.imageId,
      create: hasVersion
        ? undefined
        : { sourceVersion: template.defaultVersion, clientToken: token(desired.arn.arn, subject, image.imageId, String(template.defaultVersion)) },
      existingVersion,
      setDefault: lt.setDefaultVersion,
    });
    return { check: 'launch-template', subject, result: 'drift', reason, actionIds: [id] };
  });
}

/**
 * The region's export to S3 (owner's cell): the export task of this AMI to the configured bucket and prefix,
 * then the object it wrote. Pending while the task is active; failed, with the reason, when there is no task,
 * the task failed, or its object is not in the bucket. Nothing is repaired: an export is Image Builder's to redo.
 */
function checkS3Export(cell: DesiredCell, obs: CellObservation, image: ObservedImage): Check | undefined {
  const want = cell.s3Export;
  if (want === undefined) return undefined;
  const subject = `s3://${want.bucket}/${want.prefix ?? ''}`;
  const observed = obs.s3Export;
  if (observed === undefined) return { check: 's3-export', subject, result: 'pending', reason: 'not observed' };
  if (!observed.ok) return readFailure('s3-export', subject, observed.error);
  const { task, key, object } = observed.value;
  if (task === null) return { check: 's3-export', subject, result: 'failed', reason: `no export task of ${image.imageId} to ${subject} (DescribeExportImageTasks): Image Builder did not export it, or the task is no longer listed` };
  const location = `s3://${want.bucket}/${key ?? ''}`;
  if (task.status === 'active') return { check: 's3-export', subject, result: 'pending', reason: `export task ${task.id} of ${image.imageId} is active (${task.statusMessage ?? 'in progress'}${task.progress === undefined ? '' : `, ${task.progress}%`})` };
  if (task.status !== 'completed') return { check: 's3-export', subject, result: 'failed', reason: `export task ${task.id} of ${image.imageId} is ${task.status}${task.statusMessage === undefined ? '' : `: ${task.statusMessage}`}` };
  if (object === 'present') return { check: 's3-export', subject, result: 'ok', reason: `export task ${task.id} completed; ${location} is in the bucket` };
  return { check: 's3-export', subject, result: 'failed', reason: `export task ${task.id} of ${image.imageId} completed, but ${location} is not in the bucket (deleted since?); run the build again or export the AMI with ExportImage` };
}

function fastLaunchDifferences(want: Pick<EnableFastLaunchAction, 'targetResourceCount' | 'maxParallelLaunches' | 'launchTemplate'>, have: ObservedFastLaunch): string[] {
  const diffs: string[] = [];
  if (want.targetResourceCount !== undefined && have.targetResourceCount !== want.targetResourceCount) {
    diffs.push(`targetResourceCount ${have.targetResourceCount ?? '-'} ≠ ${want.targetResourceCount}`);
  }
  if (want.maxParallelLaunches !== undefined && have.maxParallelLaunches !== want.maxParallelLaunches) {
    diffs.push(`maxParallelLaunches ${have.maxParallelLaunches ?? '-'} ≠ ${want.maxParallelLaunches}`);
  }
  if (want.launchTemplate !== undefined) {
    if (have.launchTemplate?.id !== want.launchTemplate.id) diffs.push(`launch template ${have.launchTemplate?.id ?? '-'} ≠ ${want.launchTemplate.id}`);
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
    return { check: 'fast-launch', subject, result: 'skipped', reason: `Fast Launch is for Windows AMIs only; this image's platform is ${desired.platform ?? 'unknown'}` };
  }
  const observed = obs.fastLaunch;
  if (observed === undefined) return { check: 'fast-launch', subject, result: 'pending', reason: 'not observed' };
  if (!observed.ok) return readFailure('fast-launch', subject, observed.error);
  const have = observed.value;
  if (have?.state === 'enabling') return { check: 'fast-launch', subject, result: 'pending', reason: `enabling${origin}` };
  if (have?.state === 'disabling') return { check: 'fast-launch', subject, result: 'pending', reason: 'disabling; it will be enabled once EC2 has finished' };
  if (have?.state === 'disabling-failed') {
    return { check: 'fast-launch', subject, result: 'failed', reason: `disabling-failed: ${have.stateTransitionReason ?? 'no reason given'}` };
  }

  let launchTemplate: EnableFastLaunchAction['launchTemplate'];
  if (want.launchTemplate !== undefined) {
    const found = obs.fastLaunchTemplate;
    const label = want.launchTemplate.name ?? want.launchTemplate.id ?? want.launchTemplate.ownerTemplateId ?? '?';
    if (found === undefined) return { check: 'fast-launch', subject, result: 'pending', reason: 'launch template not observed' };
    if (!found.ok) return readFailure('fast-launch', subject, found.error);
    if (found.value === null) {
      return { check: 'fast-launch', subject, result: 'failed', reason: `launch template ${label} for Fast Launch does not exist in account ${cell.accountId}${origin}` };
    }
    launchTemplate = { id: found.value.id, version: pinVersion(want.launchTemplate.version, found.value) };
  }
  const wanted = { imageId: subject, targetResourceCount: want.targetResourceCount, maxParallelLaunches: want.maxParallelLaunches, launchTemplate };

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
      return { check: 'fast-launch', subject, result: 'failed', reason: `${have.state} after ${used} retr${used === 1 ? 'y' : 'ies'}: ${ec2Reason}` };
    }
    reason = `${have.state}: ${ec2Reason}; retry ${used + 1} of ${context.fastLaunchMaxRetries}`;
    isRetry = true;
  }
  const superseded = supersededFor(cell, observation, []);
  if (superseded !== undefined) return supersededCheck('fast-launch', subject, superseded);
  const id = `${cell.key}/enable-fast-launch/${subject}`;
  actions.push({ id, kind: 'enable-fast-launch', cell: { region: cell.region, accountId: cell.accountId }, target: subject, reason, isRetry, ...wanted });
  return { check: 'fast-launch', subject, result: 'drift', reason, actionIds: [id] };
}

function planParameters(cell: DesiredCell, obs: CellObservation, image: ObservedImage, observation: Observation, actions: Action[]): Check[] {
  return cell.parameters.map((parameter): Check => {
    const subject = parameter.name;
    const observed = obs.parameters[parameter.name];
    if (observed === undefined) return { check: 'ssm-parameter', subject, result: 'pending', reason: 'not observed' };
    if (!observed.ok) return readFailure('ssm-parameter', subject, observed.error);
    if (observed.value === image.imageId) {
      // SSM writes an aws:ec2:image value only once validated: a put of this build that a newer build's value
      // beat may land after it, out of reach of apply's re-read and the sweep. Then roll forward here.
      const newer = observation.newerBuilds.ok ? observation.newerBuilds.value.find((b) => b.amis[cell.key] !== undefined) : undefined;
      const newerAmi = newer?.amis[cell.key];
      if (newer === undefined || newerAmi === undefined) return { check: 'ssm-parameter', subject, result: 'ok', reason: `holds ${image.imageId}` };
      const id = `${cell.key}/put-parameter/${subject}/roll-forward`;
      const reason = `holds ${image.imageId} of this build, but newer build ${newer.arn} has ${newerAmi} here: this build's write landed last; rolled forward`;
      actions.push({ id, kind: 'put-parameter', cell: { region: cell.region, accountId: cell.accountId }, target: subject, reason, name: subject, value: newerAmi, dataType: parameter.dataType });
      return { check: 'ssm-parameter', subject, result: 'drift', reason, actionIds: [id] };
    }
    const superseded = supersededFor(cell, observation, [observed.value ?? undefined]);
    if (superseded !== undefined) return supersededCheck('ssm-parameter', subject, superseded);
    const id = `${cell.key}/put-parameter/${subject}`;
    const reason = observed.value === null ? 'the parameter does not exist' : `holds ${observed.value}, not ${image.imageId}`;
    actions.push({
      id,
      kind: 'put-parameter',
      cell: { region: cell.region, accountId: cell.accountId },
      target: subject,
      reason,
      name: subject,
      value: image.imageId,
      dataType: parameter.dataType,
    });
    return { check: 'ssm-parameter', subject, result: 'drift', reason, actionIds: [id] };
  });
}

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
    const result = failure.kind === 'throttled' ? 'pending' : context.sharedRoleRequired === true ? 'failed' : 'skipped';
    const reason = result === 'skipped' ? REASONS.sharedUnreachable(failure) : REASONS.accessDenied(failure);
    plan.checks.push({ check: 'access', subject: cell.accountId, result, reason });
    return;
  }
  const sources = cell.sharedImages ?? [];
  if (sources.length === 0) {
    const inProgress = !['AVAILABLE', 'FAILED', 'CANCELLED'].includes(desired.status);
    plan.checks.push(
      inProgress
        ? { check: 'ami', subject: '(none)', result: 'pending', reason: REASONS.imageInProgress(desired.status) }
        : { check: 'ami', subject: '(none)', result: 'skipped', reason: `no copy of ${cell.region} was recorded, so none is shared with the account` },
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
      plan.checks.push({ check: 'ami', subject, result: 'pending', reason: REASONS.sharedNotVisible(source, cell.accountId) });
    } else if (image.ownerId !== source.accountId) {
      plan.checks.push({ check: 'ami', subject, result: 'failed', reason: `the AMI is owned by ${image.ownerId}, not by ${source.accountId}` });
    } else if (image.state === 'pending') {
      plan.checks.push({ check: 'ami', subject, result: 'pending', reason: 'the AMI is still pending' });
    } else if (image.state !== 'available') {
      plan.checks.push({ check: 'ami', subject, result: 'failed', reason: `the AMI is ${image.state}${image.stateReason === undefined ? '' : `: ${image.stateReason}`}` });
    } else {
      plan.checks.push({ check: 'ami', subject, result: 'ok', reason: `shared by ${source.accountId}, available` });
      plan.checks.push(planTags(cell, image, plan.actions));
    }
  }
}

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
  if (cell.origin === 'shared') {
    planSharedCell(cell, obs, desired, context, plan);
    return plan;
  }
  if (!obs.access.ok) {
    const failure = obs.access.error;
    plan.checks.push({
      check: 'access',
      subject: cell.accountId,
      result: failure.kind === 'throttled' ? 'pending' : 'failed',
      reason: REASONS.accessDenied(failure),
    });
    return plan;
  }
  const { check, image } = checkAmi(cell, obs, desired);
  plan.checks.push(check);
  if (image === undefined) {
    if (cell.s3Export !== undefined) plan.checks.push({ check: 's3-export', subject: `s3://${cell.s3Export.bucket}/${cell.s3Export.prefix ?? ''}`, result: 'pending', reason: 'not checked until the AMI is seen' });
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
    for (const lt of cell.launchTemplates) plan.checks.push({ check: 'launch-template', subject: lt.launchTemplateId, result: 'skipped', reason });
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
    ...cells.filter((cell) => cell.origin !== 'shared' && cell.imageId === undefined && cell.checks.some((c) => c.check === 'ami')).map((cell) => cell.key),
    ...(context.shard?.missingElsewhere ?? []),
  ];
  const imageLevel = context.shard?.imageLevel ?? true;
  if (imageLevel && desired.status === 'FAILED' && context.retryFailedImages && missing.length > 0) {
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

export { plan };
export type { PlanContext };
