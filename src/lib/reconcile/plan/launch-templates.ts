import type { DesiredCell, DesiredImage } from '../../core/desired.ts';
import { CREATED_BY_IMAGE_BUILDER, CREATED_BY_TAG, MANAGED_TEMPLATE_TAG, MANAGED_TEMPLATE_VALUE } from '../../core/tags.ts';
import type { Action, CellObservation, Check, Observation, ObservedImage, ObservedLaunchTemplate } from '../types.ts';
import { SSM_ALIAS } from '../types.ts';
import { readFailure, token } from './common.ts';
import { supersededCheck, supersededFor } from './superseded.ts';

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
    return {
      check: 'launch-template',
      subject,
      result: 'ok',
      reason: `${where}, which resolves to ${image.imageId}; left parameter-driven`,
    };
  }
  const superseded = supersededFor(cell, observation, [template.defaultImageId]);
  if (superseded !== undefined) return supersededCheck('launch-template', subject, superseded);
  const resolves =
    template.defaultImageId === undefined ? 'which does not resolve to an AMI' : `which resolves to ${template.defaultImageId}`;
  const name = followedParameter(alias, cell);
  if (name !== undefined && cell.parameters.some((p) => p.name === name)) {
    return {
      check: 'launch-template',
      subject,
      result: 'pending',
      reason: `${where}, ${resolves}: this distribution sets ${name} to ${image.imageId} here, so the template follows once that parameter is repaired (not pinned)`,
    };
  }
  return {
    check: 'launch-template',
    subject,
    result: 'failed',
    reason: `${where}, ${resolves}, not ${image.imageId}; left parameter-driven rather than pinned to a literal AMI: point that parameter at ${image.imageId} (or add it to ssmParameterConfigurations for account ${cell.accountId}), or give the template a version with the AMI yourself`,
  };
}

/**
 * The default of a launch template is this build's AMI although a newer build (by build order) has an AMI in
 * the cell: this build's write landed last (a window of apply's fence, or a roll-forward that could not list
 * the builds). Set the default to the newer build's AMI, as for an SSM parameter (ssm-parameters.ts).
 */
function rollTemplateForward(
  cell: DesiredCell,
  template: { launchTemplateId: string; defaultVersion: number },
  image: ObservedImage,
  observation: Observation,
  desired: DesiredImage,
  actions: Action[],
): Check | undefined {
  const newer = observation.newerBuilds.ok ? observation.newerBuilds.value.find((b) => b.amis[cell.key] !== undefined) : undefined;
  const newerAmi = newer?.amis[cell.key];
  if (newer === undefined || newerAmi === undefined) return undefined;
  const subject = template.launchTemplateId;
  const id = `${cell.key}/update-launch-template/${subject}/roll-forward`;
  const reason = `default version ${template.defaultVersion} uses ${image.imageId} of this build, but newer build ${newer.arn} has ${newerAmi} here: this build's write landed last; rolled forward`;
  actions.push({
    id,
    kind: 'update-launch-template',
    cell: { region: cell.region, accountId: cell.accountId },
    target: subject,
    reason,
    launchTemplateId: subject,
    imageId: newerAmi,
    create: {
      sourceVersion: template.defaultVersion,
      clientToken: token(desired.arn.arn, subject, newerAmi, String(template.defaultVersion), 'roll-forward'),
    },
    existingVersion: undefined,
    setDefault: true,
    reuseVersion: true,
  });
  return { check: 'launch-template', subject, result: 'drift', reason, actionIds: [id] };
}

/**
 * The launch templates of the cell: a version with the AMI (the default one when `setDefaultVersion`), made
 * from the default version when none has it; never when that would roll back a newer build; rolled forward to a
 * newer build's AMI when this build's write landed after the newer one's (rollTemplateForward).
 */
/**
 * Whether the reconciler may write the template: it carries the opt-in tag, or Image Builder's CreatedBy (which
 * Image Builder asks of a template it updates in another account). The roles grant launch template writes only
 * there (infra/target-account-role.yaml, serverless.yml), so without it the write would only be refused.
 */
function optedIn(template: ObservedLaunchTemplate): boolean {
  const tags = template.tags ?? {};
  return tags[MANAGED_TEMPLATE_TAG] === MANAGED_TEMPLATE_VALUE || tags[CREATED_BY_TAG] === CREATED_BY_IMAGE_BUILDER;
}

function notOptedIn(subject: string, accountId: string): Check {
  return {
    check: 'launch-template',
    subject,
    result: 'failed',
    reason: `launch template ${subject} in account ${accountId} has not opted in: tag it ${MANAGED_TEMPLATE_TAG}=${MANAGED_TEMPLATE_VALUE} (or ${CREATED_BY_TAG}=${CREATED_BY_IMAGE_BUILDER}) to let the reconciler write its versions`,
  };
}

function planLaunchTemplates(
  cell: DesiredCell,
  obs: CellObservation,
  image: ObservedImage,
  observation: Observation,
  desired: DesiredImage,
  actions: Action[],
): Check[] {
  return cell.launchTemplates.map((lt): Check => {
    const subject = lt.launchTemplateId;
    const observed = obs.launchTemplates[lt.launchTemplateId];
    if (observed === undefined) return { check: 'launch-template', subject, result: 'pending', reason: 'not observed' };
    if (!observed.ok) return readFailure('launch-template', subject, observed.error);
    const template = observed.value;
    if (template === null) {
      return {
        check: 'launch-template',
        subject,
        result: 'failed',
        reason: `launch template ${subject} does not exist in account ${cell.accountId}`,
      };
    }
    const hasVersion = template.versionsWithImage.length > 0;
    const isDefault = template.versionsWithImage.includes(template.defaultVersion);
    if (hasVersion && (!lt.setDefaultVersion || isDefault)) {
      const rolled =
        lt.setDefaultVersion && optedIn(template) ? rollTemplateForward(cell, template, image, observation, desired, actions) : undefined;
      if (rolled !== undefined) return rolled;
      const version = isDefault ? template.defaultVersion : template.versionsWithImage.at(-1);
      return {
        check: 'launch-template',
        subject,
        result: 'ok',
        reason: `version ${version} uses ${image.imageId}${isDefault ? ' and is the default' : ''}`,
      };
    }
    if (template.defaultImageAlias !== undefined)
      return checkParameterDrivenTemplate(cell, template.defaultImageAlias, template, image, observation);
    const superseded = supersededFor(cell, observation, [template.defaultImageId]);
    if (superseded !== undefined) return supersededCheck('launch-template', subject, superseded);
    if (!optedIn(template)) return notOptedIn(subject, cell.accountId);
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
        : {
            sourceVersion: template.defaultVersion,
            clientToken: token(desired.arn.arn, subject, image.imageId, String(template.defaultVersion)),
          },
      existingVersion,
      setDefault: lt.setDefaultVersion,
    });
    return { check: 'launch-template', subject, result: 'drift', reason, actionIds: [id] };
  });
}

export { planLaunchTemplates };
