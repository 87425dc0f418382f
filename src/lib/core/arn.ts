import { InputError } from './errors.ts';
import { quote } from './input.ts';

/** The parts of an Image Builder image build version ARN (`…:image/<name>/<x.y.z>/<build>`). */
interface ImageBuildArn {
  arn: string;
  partition: string;
  region: string;
  accountId: string;
  imageName: string;
  version: string;
  buildNumber: number;
}

/** The parts of a distribution configuration ARN (`…:distribution-configuration/<name>`). */
interface DistributionConfigurationArn {
  arn: string;
  partition: string;
  region: string;
  accountId: string;
  name: string;
}

// Resource names are at most 128 characters (Image Builder API model, ResourceName), so an ARN is bounded.
const IMAGE_BUILD_ARN =
  /^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):imagebuilder:([a-z]{2}(?:-[a-z]+)+-\d):(\d{12}):image\/([-_A-Za-z0-9]{1,128})\/(\d+\.\d+\.\d+)\/(\d+)$/;
const DISTRIBUTION_CONFIGURATION_ARN =
  /^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):imagebuilder:([a-z]{2}(?:-[a-z]+)+-\d):(\d{12}):distribution-configuration\/([-_A-Za-z0-9]{1,128})$/;

/**
 * Parse an image build version ARN. Throws {@link InputError} naming what is wrong.
 * @example parseImageBuildArn('arn:aws:imagebuilder:us-east-1:111122223333:image/web/1.0.0/3')
 */
function parseImageBuildArn(value: unknown): ImageBuildArn {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new InputError('an image build version ARN is required (arn:aws:imagebuilder:<region>:<account>:image/<name>/<x.y.z>/<build>)');
  }
  const match = IMAGE_BUILD_ARN.exec(value.trim());
  if (match === null) {
    const hint = /:image\/[^/]+\/[^/]+$/.test(value.slice(-300)) ? ' (this is an image version ARN: add the build number, e.g. /1)' : '';
    throw new InputError(
      `not an image build version ARN: ${quote(value)}${hint}; expected arn:aws:imagebuilder:<region>:<account>:image/<name>/<x.y.z>/<build>`,
    );
  }
  const [, partition, region, accountId, imageName, version, build] = match as unknown as [string, string, string, string, string, string, string];
  return { arn: value.trim(), partition, region, accountId, imageName, version, buildNumber: Number(build) };
}

/** Parse a distribution configuration ARN. Throws {@link InputError}. */
function parseDistributionConfigurationArn(value: unknown): DistributionConfigurationArn {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new InputError('a distribution configuration ARN is required');
  }
  const match = DISTRIBUTION_CONFIGURATION_ARN.exec(value.trim());
  if (match === null) {
    throw new InputError(
      `not a distribution configuration ARN: ${quote(value)}; expected arn:aws:imagebuilder:<region>:<account>:distribution-configuration/<name>`,
    );
  }
  const [, partition, region, accountId, name] = match as unknown as [string, string, string, string, string];
  return { arn: value.trim(), partition, region, accountId, name };
}

const IMAGE_PIPELINE_ARN = /^arn:(aws[a-z-]*):imagebuilder:([a-z0-9-]+):(\d{12}):image-pipeline\/([-_a-z0-9]+)$/i;

interface ImagePipelineArn {
  arn: string;
  partition: string;
  region: string;
  accountId: string;
  name: string;
}

/** Parse an image pipeline ARN. Throws {@link InputError}. */
function parseImagePipelineArn(value: unknown): ImagePipelineArn {
  const match = typeof value === 'string' ? IMAGE_PIPELINE_ARN.exec(value.trim()) : null;
  if (match === null) {
    throw new InputError(`not an image pipeline ARN: "${String(value)}"; expected arn:aws:imagebuilder:<region>:<account>:image-pipeline/<name>`);
  }
  const [, partition, region, accountId, name] = match as unknown as [string, string, string, string, string];
  return { arn: String(value).trim(), partition, region, accountId, name };
}

/**
 * The partition of a region, as ARNs name it: China regions are `aws-cn`, GovCloud `aws-us-gov`, the ISO
 * regions `aws-iso` / `aws-iso-b` / `aws-iso-e` / `aws-iso-f`, the rest `aws` (AWS General Reference, "Amazon
 * Resource Names (ARNs)"; the partitions whitepaper, "AWS Fault Isolation Boundaries").
 */
function partitionOfRegion(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  if (region.startsWith('us-isob-')) return 'aws-iso-b';
  if (region.startsWith('us-iso-')) return 'aws-iso';
  if (region.startsWith('eu-isoe-')) return 'aws-iso-e';
  if (region.startsWith('us-isof-')) return 'aws-iso-f';
  return 'aws';
}

/** True when the value looks like an image build version ARN. */
function isImageBuildArn(value: unknown): value is string {
  return typeof value === 'string' && IMAGE_BUILD_ARN.test(value);
}

/**
 * Order two image builds: semantic version first, then build number.
 * @returns negative when `a` is older than `b`, positive when newer, 0 when the same build.
 */
function compareBuilds(a: Pick<ImageBuildArn, 'version' | 'buildNumber'>, b: Pick<ImageBuildArn, 'version' | 'buildNumber'>): number {
  const pa = a.version.split('.').map(Number);
  const pb = b.version.split('.').map(Number);
  for (let i = 0; i < 3; i += 1) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return a.buildNumber - b.buildNumber;
}

/**
 * An AMI's ARN, as License Manager and IAM name it: `arn:aws:ec2:<region>::image/<ami-id>`, with no account
 * (Service Authorization Reference, Amazon EC2 resource type `image`).
 */
function amiArn(region: string, imageId: string): string {
  return `arn:${partitionOfRegion(region)}:ec2:${region}::image/${imageId}`;
}

export { amiArn, compareBuilds, isImageBuildArn, parseDistributionConfigurationArn, parseImageBuildArn, parseImagePipelineArn, partitionOfRegion };
export type { DistributionConfigurationArn, ImageBuildArn, ImagePipelineArn };
