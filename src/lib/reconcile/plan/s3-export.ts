import type { DesiredCell } from '../../core/desired.ts';
import type { CellObservation, Check, ObservedImage } from '../types.ts';
import { readFailure } from './common.ts';

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
  if (task === null)
    return {
      check: 's3-export',
      subject,
      result: 'failed',
      reason: `no export task of ${image.imageId} to ${subject} (DescribeExportImageTasks): Image Builder did not export it, or the task is no longer listed`,
    };
  const location = `s3://${want.bucket}/${key ?? ''}`;
  if (task.status === 'active')
    return {
      check: 's3-export',
      subject,
      result: 'pending',
      reason: `export task ${task.id} of ${image.imageId} is active (${task.statusMessage ?? 'in progress'}${task.progress === undefined ? '' : `, ${task.progress}%`})`,
    };
  if (task.status !== 'completed')
    return {
      check: 's3-export',
      subject,
      result: 'failed',
      reason: `export task ${task.id} of ${image.imageId} is ${task.status}${task.statusMessage === undefined ? '' : `: ${task.statusMessage}`}`,
    };
  if (object === 'present')
    return { check: 's3-export', subject, result: 'ok', reason: `export task ${task.id} completed; ${location} is in the bucket` };
  return {
    check: 's3-export',
    subject,
    result: 'failed',
    reason: `export task ${task.id} of ${image.imageId} completed, but ${location} is not in the bucket (deleted since?); run the build again or export the AMI with ExportImage`,
  };
}

export { checkS3Export };
