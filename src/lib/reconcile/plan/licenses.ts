import { amiArn } from '../../core/arn.ts';
import type { DesiredCell } from '../../core/desired.ts';
import type { Action, CellObservation, Check, ObservedImage } from '../types.ts';
import { readFailure } from './common.ts';

/**
 * License configurations: each ARN the distribution names must be associated with the AMI. Missing ones are
 * added (`UpdateLicenseSpecificationsForResource`, add only); associations the configuration does not name
 * are reported, never removed. A refused read fails the check with License Manager's own words.
 */
function planLicenses(cell: DesiredCell, obs: CellObservation, image: ObservedImage, actions: Action[]): Check[] {
  const wanted = cell.licenseConfigurationArns ?? [];
  if (wanted.length === 0) return [];
  const observed = obs.licenses;
  if (observed === undefined)
    return wanted.map((arn) => ({ check: 'license-configuration', subject: arn, result: 'pending', reason: 'not observed' }));
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
    checks.push({
      check: 'license-configuration',
      subject: image.imageId,
      result: 'warning',
      reason: `associated but not in the configuration (never removed by the reconciler): ${extra.join(', ')}`,
    });
  }
  return checks;
}

export { planLicenses };
