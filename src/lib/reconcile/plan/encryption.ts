import type { DesiredCell } from '../../core/desired.ts';
import type { CellObservation, Check, ObservedImage } from '../types.ts';
import { readFailure } from './common.ts';

function keyMatches(configured: string, actual: string | undefined): boolean | 'unknown' {
  if (actual === undefined) return false;
  if (configured === actual) return true;
  if (configured.startsWith('alias/') || configured.includes(':alias/')) return 'unknown';
  const id = configured.includes(':key/') ? configured.slice(configured.indexOf(':key/') + 5) : configured;
  return actual.endsWith(`key/${id}`) || actual === id;
}

/** The configured KMS key on every EBS snapshot of the AMI (report only: encryption cannot be changed). */
function checkEncryption(cell: DesiredCell, obs: CellObservation, image: ObservedImage): Check | undefined {
  if (cell.kmsKeyId === undefined) return undefined;
  const observed = obs.snapshots;
  if (observed === undefined)
    return { check: 'encryption', subject: image.imageId, result: 'warning', reason: 'the AMI has no EBS snapshots to check' };
  if (!observed.ok) return readFailure('encryption', image.imageId, observed.error);
  const snapshots = observed.value ?? [];
  const wrong: string[] = [];
  const unknown: string[] = [];
  for (const snapshot of snapshots) {
    const match = snapshot.encrypted ? keyMatches(cell.kmsKeyId, snapshot.kmsKeyId) : false;
    if (match === false)
      wrong.push(`${snapshot.snapshotId} (${snapshot.encrypted ? (snapshot.kmsKeyId ?? 'unknown key') : 'unencrypted'})`);
    if (match === 'unknown') unknown.push(snapshot.snapshotId);
  }
  if (wrong.length > 0) {
    return {
      check: 'encryption',
      subject: image.imageId,
      result: 'failed',
      reason: `snapshot(s) not encrypted with ${cell.kmsKeyId}: ${wrong.join(', ')} (report only)`,
    };
  }
  if (unknown.length > 0) {
    return {
      check: 'encryption',
      subject: image.imageId,
      result: 'warning',
      reason: `${cell.kmsKeyId} is an alias; cannot confirm the key of ${unknown.join(', ')} without KMS`,
    };
  }
  return {
    check: 'encryption',
    subject: image.imageId,
    result: 'ok',
    reason: `${snapshots.length} snapshot(s) encrypted with ${cell.kmsKeyId}`,
  };
}

export { checkEncryption };
