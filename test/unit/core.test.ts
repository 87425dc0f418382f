import { describe, expect, it } from 'vitest';
import { parseDistributionConfigurationArn, parseImageBuildArn, parseImagePipelineArn } from '../../src/lib/core/arn.ts';
import { cellKey, parseCellKey } from '../../src/lib/core/cells.ts';
import { CellKey, Region } from '../../src/lib/core/input.ts';
import { isKnownRegion, partitionOfRegion } from '../../src/lib/core/regions.ts';

describe('regions and partitions come from the SDK partition data', () => {
  it.each([
    ['us-east-1', 'aws'],
    ['cn-northwest-1', 'aws-cn'],
    ['us-gov-west-1', 'aws-us-gov'],
    ['us-iso-east-1', 'aws-iso'],
    ['us-isob-east-1', 'aws-iso-b'],
    ['eu-isoe-west-1', 'aws-iso-e'],
    ['eusc-de-east-1', 'aws-eusc'],
  ])('%s is in %s, and ARNs of it parse', (region, partition) => {
    expect(partitionOfRegion(region)).toBe(partition);
    expect(isKnownRegion(region)).toBe(true);
    expect(Region.safeParse(region).success).toBe(true);
    const build = parseImageBuildArn(`arn:${partition}:imagebuilder:${region}:111122223333:image/web/1.0.0/3`);
    expect(build).toMatchObject({ partition, region, accountId: '111122223333', imageName: 'web', buildNumber: 3 });
    expect(
      parseDistributionConfigurationArn(`arn:${partition}:imagebuilder:${region}:111122223333:distribution-configuration/d`).partition,
    ).toBe(partition);
    expect(parseImagePipelineArn(`arn:${partition}:imagebuilder:${region}:111122223333:image-pipeline/p`).region).toBe(region);
  });

  it('a misspelled region has the shape but is not known', () => {
    expect(isKnownRegion('us-est-1')).toBe(false);
    expect(isKnownRegion('mars-west-9')).toBe(false);
    expect(isKnownRegion('US-EAST-1')).toBe(false);
  });

  it("an ARN whose partition is not its region's is refused, naming both", () => {
    expect(() => parseImageBuildArn('arn:aws:imagebuilder:cn-north-1:111122223333:image/web/1.0.0/3')).toThrow(
      /partition aws is not the partition of region cn-north-1 \(aws-cn\)/,
    );
    expect(() => parseDistributionConfigurationArn('arn:aws-cn:imagebuilder:us-east-1:111122223333:distribution-configuration/d')).toThrow(
      /partition aws-cn/,
    );
  });
});

describe('cell keys', () => {
  it('are <region>/<account> and parse back', () => {
    expect(cellKey('eu-isoe-west-1', '111122223333')).toBe('eu-isoe-west-1/111122223333');
    expect(parseCellKey('eu-isoe-west-1/111122223333')).toEqual({ region: 'eu-isoe-west-1', accountId: '111122223333' });
    expect(CellKey.safeParse('eu-isoe-west-1/111122223333').success).toBe(true);
  });

  it('the other order is refused', () => {
    expect(() => parseCellKey('111122223333/us-east-1')).toThrow(/expected <region>\/<account>/);
    expect(CellKey.safeParse('111122223333/us-east-1').success).toBe(false);
  });
});
