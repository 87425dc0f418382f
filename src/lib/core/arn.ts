import { InputError } from './errors.ts';
import { quote } from './input.ts';
import { REGION_SOURCE, partitionOfRegion } from './regions.ts';

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
// The partition and region come from the SDK's partition data: any partition name of the shape `aws[-x]`, then
// checked against the region's own partition (partitionMatches), so a region AWS adds needs no change here.
const PARTITION_SOURCE = 'aws(?:-[a-z]+)*';
const IMAGE_BUILD_ARN = new RegExp(
  `^arn:(${PARTITION_SOURCE}):imagebuilder:(${REGION_SOURCE}):(\\d{12}):image/([-_A-Za-z0-9]{1,128})/(\\d+\\.\\d+\\.\\d+)/(\\d+)$`,
);
const DISTRIBUTION_CONFIGURATION_ARN = new RegExp(
  `^arn:(${PARTITION_SOURCE}):imagebuilder:(${REGION_SOURCE}):(\\d{12}):distribution-configuration/([-_A-Za-z0-9]{1,128})$`,
);

/**
 * The match of an ARN pattern whose groups 1 and 2 are the partition and region, or null. Throws
 * {@link InputError} when the ARN has the right shape but its partition is not its region's
 * (`arn:aws-cn:…:us-east-1:…`): no such resource can exist.
 */
function matchArn(pattern: RegExp, value: string): RegExpExecArray | null {
  const match = pattern.exec(value);
  if (match === null) return null;
  const [, partition, region] = match as unknown as [string, string, string];
  const expected = partitionOfRegion(region);
  if (partition !== expected) {
    throw new InputError(`${quote(value)}: partition ${partition} is not the partition of region ${region} (${expected})`);
  }
  return match;
}

/**
 * Parse an image build version ARN. Throws {@link InputError} naming what is wrong.
 * @example parseImageBuildArn('arn:aws:imagebuilder:us-east-1:111122223333:image/web/1.0.0/3')
 */
function parseImageBuildArn(value: unknown): ImageBuildArn {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new InputError('an image build version ARN is required (arn:aws:imagebuilder:<region>:<account>:image/<name>/<x.y.z>/<build>)');
  }
  const match = matchArn(IMAGE_BUILD_ARN, value.trim());
  if (match === null) {
    const hint = /:image\/[^/]+\/[^/]+$/.test(value.slice(-300)) ? ' (this is an image version ARN: add the build number, e.g. /1)' : '';
    throw new InputError(
      `not an image build version ARN: ${quote(value)}${hint}; expected arn:aws:imagebuilder:<region>:<account>:image/<name>/<x.y.z>/<build>`,
    );
  }
  const [, partition, region, accountId, imageName, version, build] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  return { arn: value.trim(), partition, region, accountId, imageName, version, buildNumber: Number(build) };
}

/** Parse a distribution configuration ARN. Throws {@link InputError}. */
function parseDistributionConfigurationArn(value: unknown): DistributionConfigurationArn {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new InputError('a distribution configuration ARN is required');
  }
  const match = matchArn(DISTRIBUTION_CONFIGURATION_ARN, value.trim());
  if (match === null) {
    throw new InputError(
      `not a distribution configuration ARN: ${quote(value)}; expected arn:aws:imagebuilder:<region>:<account>:distribution-configuration/<name>`,
    );
  }
  const [, partition, region, accountId, name] = match as unknown as [string, string, string, string, string];
  return { arn: value.trim(), partition, region, accountId, name };
}

const IMAGE_PIPELINE_ARN = new RegExp(
  `^arn:(${PARTITION_SOURCE}):imagebuilder:(${REGION_SOURCE}):(\\d{12}):image-pipeline/([-_A-Za-z0-9]{1,128})$`,
);

interface ImagePipelineArn {
  arn: string;
  partition: string;
  region: string;
  accountId: string;
  name: string;
}

/** Parse an image pipeline ARN. Throws {@link InputError}. */
function parseImagePipelineArn(value: unknown): ImagePipelineArn {
  const match = typeof value === 'string' ? matchArn(IMAGE_PIPELINE_ARN, value.trim()) : null;
  if (match === null) {
    throw new InputError(
      `not an image pipeline ARN: "${String(value)}"; expected arn:aws:imagebuilder:<region>:<account>:image-pipeline/<name>`,
    );
  }
  const [, partition, region, accountId, name] = match as unknown as [string, string, string, string, string];
  return { arn: String(value).trim(), partition, region, accountId, name };
}

/** True when the value looks like an image build version ARN. */
function isImageBuildArn(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  const match = IMAGE_BUILD_ARN.exec(value);
  return match !== null && match[1] === partitionOfRegion(match[2] as string);
}

/** What places a build in the order of its pipeline: Image Builder's `dateCreated`, then its version and build number. */
interface BuildPosition {
  version: string;
  buildNumber: number;
  /** Image Builder's `dateCreated` (GetImage's image, or an ImageSummary of a listing); undefined when not given. */
  dateCreated: string | undefined;
}

/** Epoch milliseconds of a `dateCreated`, or undefined when there is none or it is not a date. */
function createdAt(dateCreated: string | undefined): number | undefined {
  if (dateCreated === undefined) return undefined;
  const ms = Date.parse(dateCreated);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * THE order of image builds: every comparison of two builds uses it (the planner's superseded checks through
 * `observation.newerBuilds`, the sweep's latest AVAILABLE build, the apply fence's re-read before a pointer
 * write, and the roll-forward after it).
 *
 * Builds are ordered by creation: Image Builder's `dateCreated`, the time AWS's clock gave the build when it
 * was created. Not by version: a team whose recipe 2.0.0 breaks points its pipeline back at recipe 1.0.0 and
 * builds again, and that build (1.0.0/1) is the newest one, the one every pointer must follow. Version, then
 * build number, break ties (two builds of the same millisecond). The local clock is never used.
 *
 * A build whose `dateCreated` is missing or unreadable sorts before every dated build (it is never newer than
 * one, so it never takes a pointer from one), and among undated builds version and build number decide. That
 * keeps the order total (a sort with it is consistent), and errs on the side of never rolling back.
 * @returns negative when `a` is older than `b`, positive when newer, 0 when they are in the same place.
 */
function compareBuilds(a: BuildPosition, b: BuildPosition): number {
  const ta = createdAt(a.dateCreated);
  const tb = createdAt(b.dateCreated);
  if (ta === undefined && tb !== undefined) return -1;
  if (ta !== undefined && tb === undefined) return 1;
  if (ta !== undefined && tb !== undefined && ta !== tb) return ta - tb;
  const pa = a.version.split('.').map(Number);
  const pb = b.version.split('.').map(Number);
  for (let i = 0; i < 3; i += 1) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return a.buildNumber - b.buildNumber;
}

/** A build's place in the order from its ARN and `dateCreated`, or undefined when the ARN is not a build's. */
function buildPosition(arn: string | undefined, dateCreated: string | undefined): (BuildPosition & { arn: string }) | undefined {
  if (!isImageBuildArn(arn)) return undefined;
  const parsed = parseImageBuildArn(arn);
  return { arn: parsed.arn, version: parsed.version, buildNumber: parsed.buildNumber, dateCreated };
}

/**
 * An AMI's ARN, as License Manager and IAM name it: `arn:aws:ec2:<region>::image/<ami-id>`, with no account
 * (Service Authorization Reference, Amazon EC2 resource type `image`).
 */
function amiArn(region: string, imageId: string): string {
  return `arn:${partitionOfRegion(region)}:ec2:${region}::image/${imageId}`;
}

export {
  amiArn,
  buildPosition,
  compareBuilds,
  isImageBuildArn,
  parseDistributionConfigurationArn,
  parseImageBuildArn,
  parseImagePipelineArn,
  partitionOfRegion,
};
export type { BuildPosition, DistributionConfigurationArn, ImageBuildArn, ImagePipelineArn };
