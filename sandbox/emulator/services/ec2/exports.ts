import { AwsError } from '../../protocol/errors.ts';
import type { Ctx } from '../../server.ts';
import { type ExportTask, hex } from '../../state.ts';
import { type Filter, applyFilters, paginate } from '../common.ts';
import { putObject } from '../s3.ts';
import { here, ownImage } from './access.ts';

// VM Import/Export: exporting an AMI to S3

/** Simulated time an image export takes (active: validating, converting; then completed). */
const EXPORT_MS = 10 * 60_000;

/**
 * ExportImage and DescribeExportImageTasks (EC2 API Reference; VM Import/Export User Guide, "Start an export
 * image task" and "Considerations for image export"): the destination bucket must exist (in the sandbox: the
 * caller's own, in the image's region; bucket policies and the `vmimport` service role are not modelled); the
 * task is `active` (`validating`, then `converting` with a progress) until it is `completed`, and then the
 * file is in the bucket under the key `<S3Prefix>export-ami-<id>.<format>` ("the exported file is written to
 * the specified S3 bucket using the following S3 key: prefixexport-ami-xxxxxxxxxxxxxxxxx.format", e.g.
 * `exports/export-ami-1234567890abcdef0.vmdk`). "VM Export cannot export Windows or SQL Server images" that
 * contain AWS-provided software: such a task ends `failed`. A bucket deleted meanwhile fails the task too.
 */
function exportImage(
  ctx: Ctx,
  input: {
    ImageId?: string | undefined;
    DiskImageFormat?: string | undefined;
    S3ExportLocation?: { S3Bucket?: string | undefined; S3Prefix?: string | undefined } | undefined;
    Description?: string | undefined;
    ClientToken?: string | undefined;
  },
) {
  const image = ownImage(ctx, input.ImageId);
  const format = input.DiskImageFormat;
  if (format !== 'VMDK' && format !== 'RAW' && format !== 'VHD')
    throw new AwsError(
      'InvalidParameterValue',
      `Value (${String(format)}) for parameter DiskImageFormat is invalid. Valid values: VMDK, RAW, VHD`,
    );
  const bucketName = input.S3ExportLocation?.S3Bucket;
  if (bucketName === undefined || bucketName === '')
    throw new AwsError('MissingParameter', 'The request must contain the parameter S3ExportLocation.S3Bucket');
  if (image.state !== 'available') throw new AwsError('IncorrectState', `Image ${image.imageId} is not in the available state`);
  const bucket = ctx.env.state.buckets.get(bucketName);
  // "The destination bucket must exist" (ExportImage, S3ExportLocation); EC2 names no code: the sandbox's words
  if (bucket === undefined || bucket.ownerId !== ctx.account || bucket.region !== ctx.region) {
    throw new AwsError(
      'InvalidParameter',
      `The S3 bucket ${bucketName} does not exist in ${ctx.region} or is not accessible to account ${ctx.account}.`,
    );
  }
  const existing =
    input.ClientToken === undefined ? undefined : [...here(ctx).exportTasks.values()].find((t) => t.clientToken === input.ClientToken);
  if (existing !== undefined) return exportTaskOut(existing, format);
  const task: ExportTask = {
    id: `export-ami-${hex(9).slice(0, 17)}`,
    imageId: image.imageId,
    format,
    bucket: bucketName,
    prefix: input.S3ExportLocation?.S3Prefix ?? '',
    status: 'active',
    statusMessage: 'validating',
    progress: '0',
    description: input.Description,
    clientToken: input.ClientToken,
  };
  here(ctx).exportTasks.set(task.id, task);
  const { account, region } = ctx;
  ctx.env.clock.after(EXPORT_MS / 2, () => {
    if (task.status !== 'active') return;
    task.statusMessage = 'converting';
    task.progress = '50';
  });
  ctx.env.clock.after(EXPORT_MS, () => {
    if (task.status !== 'active') return;
    const target = ctx.env.state.buckets.get(task.bucket);
    task.progress = undefined;
    if (image.platform === 'windows') {
      task.status = 'failed';
      task.statusMessage = 'ClientError: VM Export cannot export Windows images that contain software provided by AWS';
    } else if (target === undefined || target.ownerId !== account || target.region !== region) {
      task.status = 'failed';
      task.statusMessage = `ClientError: the S3 bucket ${task.bucket} does not exist or is not accessible`;
    } else {
      putObject(
        target,
        `${task.prefix}${task.id}.${format.toLowerCase()}`,
        `${format} disk image of ${image.imageId}`,
        ctx.env.clock.date(),
      );
      task.status = 'completed';
      task.statusMessage = undefined;
    }
  });
  return exportTaskOut(task, format);
}

function exportTaskOut(task: ExportTask, format?: string) {
  return {
    ExportImageTaskId: task.id,
    ImageId: task.imageId,
    Description: task.description,
    ...(format === undefined ? {} : { DiskImageFormat: format }),
    S3ExportLocation: { S3Bucket: task.bucket, S3Prefix: task.prefix },
    Status: task.status,
    StatusMessage: task.statusMessage,
    Progress: task.progress,
  };
}

function describeExportImageTasks(
  ctx: Ctx,
  input: {
    ExportImageTaskIds?: string[] | undefined;
    Filters?: Filter[] | undefined;
    MaxResults?: number | undefined;
    NextToken?: string | undefined;
  },
) {
  let tasks = [...here(ctx).exportTasks.values()];
  const ids = input.ExportImageTaskIds ?? [];
  if (ids.length > 0) {
    const missing = ids.filter((id) => !here(ctx).exportTasks.has(id));
    if (missing.length > 0)
      throw new AwsError('InvalidExportImageTaskId.NotFound', `The export image task ID '${missing.join(', ')}' does not exist`);
    tasks = tasks.filter((t) => ids.includes(t.id));
  }
  tasks = applyFilters(tasks, input.Filters, () => undefined);
  const { page, nextToken } = paginate(tasks, input.MaxResults, input.NextToken, { default: 500, min: 1, max: 500 });
  return { ExportImageTasks: page.map((t) => exportTaskOut(t)), NextToken: nextToken };
}

export { EXPORT_MS, describeExportImageTasks, exportImage };
