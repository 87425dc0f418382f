import { type DesiredCell, type DesiredImage, namePatternRegExp } from '../../core/desired.ts';
import type { CellObservation, Check, ObservedImage } from '../types.ts';
import { REASONS, readFailure } from './common.ts';

const AMI_REASONS = {
  notRecorded: 'Image Builder recorded no AMI for this cell',
  referencedOnly: (setting: string) =>
    `a ${setting} setting names this account, but it is not a distribution target of the region, so it holds no copy`,
  notVisible: 'the AMI Image Builder recorded is not visible in the account yet (eventual consistency or still copying)',
} as const;

/** The AMI Image Builder recorded for the cell: it must be visible, owned by the cell's account and available. */
function checkAmi(cell: DesiredCell, obs: CellObservation, desired: DesiredImage): { check: Check; image: ObservedImage | undefined } {
  const subject = cell.recorded?.imageId ?? '(none)';
  if (cell.recorded === undefined) {
    if (cell.origin === 'referenced') {
      return {
        check: {
          check: 'ami',
          subject,
          result: 'failed',
          reason: AMI_REASONS.referencedOnly('launch template, Fast Launch or SSM parameter'),
        },
        image: undefined,
      };
    }
    if (desired.status === 'AVAILABLE')
      return { check: { check: 'ami', subject, result: 'failed', reason: AMI_REASONS.notRecorded }, image: undefined };
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
    return {
      check: { check: 'ami', subject, result: 'skipped', reason: `cleaned up by imagebuilder-reconciler: ${cell.cleanedUp}` },
      image: undefined,
    };
  }
  if (image === null) return { check: { check: 'ami', subject, result: 'pending', reason: AMI_REASONS.notVisible }, image: undefined };
  if (image.ownerId !== cell.accountId) {
    return {
      check: { check: 'ami', subject, result: 'failed', reason: `the AMI is owned by ${image.ownerId}, not by ${cell.accountId}` },
      image: undefined,
    };
  }
  if (image.state === 'pending')
    return { check: { check: 'ami', subject, result: 'pending', reason: 'the AMI is still pending' }, image: undefined };
  if (image.state !== 'available') {
    const why = image.stateReason === undefined ? '' : `: ${image.stateReason}`;
    return { check: { check: 'ami', subject, result: 'failed', reason: `the AMI is ${image.state}${why}` }, image: undefined };
  }
  return { check: { check: 'ami', subject, result: 'ok', reason: 'available' }, image };
}

/** The AMI's name against the configured pattern: names cannot be changed, so a mismatch is a warning. */
function checkName(cell: DesiredCell, image: ObservedImage, desired: DesiredImage): Check | undefined {
  if (cell.namePattern === undefined) return undefined;
  const ok = namePatternRegExp(cell.namePattern, desired.arn.buildNumber).test(image.name);
  return {
    check: 'name',
    subject: image.imageId,
    result: ok ? 'ok' : 'warning',
    reason: ok
      ? `"${image.name}" matches "${cell.namePattern}"`
      : `"${image.name}" does not match the configured "${cell.namePattern}" (names cannot be changed; report only)`,
  };
}

export { checkAmi, checkName };
