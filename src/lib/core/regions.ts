/**
 * Regions and partitions, from the AWS SDK's own partition data (`@aws-sdk/core`'s partitions.json: every
 * public region, China, GovCloud, the ISO and sovereign partitions), so that a region AWS adds reaches us with
 * an SDK update and no table here can drift from it.
 */
import { partition } from '@aws-sdk/core/client';

/**
 * The shape of a region name in every partition the SDK knows (`us-east-1`, `cn-north-1`, `us-gov-west-1`,
 * `us-isob-east-1`, `eu-isoe-west-1`, `eusc-de-east-1`). The one region pattern: ARNs, inputs and cell keys
 * use it.
 */
const REGION_SOURCE = '[a-z]{2,4}(?:-[a-z]+)+-\\d{1,2}';
const REGION_PATTERN = new RegExp(`^${REGION_SOURCE}$`);

/** True for a string of a region's shape (known or not). */
function isRegionName(value: string): boolean {
  return REGION_PATTERN.test(value);
}

/**
 * A region the SDK's partition data names. The SDK itself would build an endpoint for any name of the right
 * shape (`us-est-1` resolves to the `aws` partition), which is how a misspelled region used to pass and only
 * fail later as "cannot connect".
 */
function isKnownRegion(region: string): boolean {
  if (!isRegionName(region)) return false;
  return (partition(region) as { description?: string }).description !== undefined;
}

/** The partition of a region, as ARNs name it (`aws`, `aws-cn`, `aws-us-gov`, `aws-iso-e`, …). */
function partitionOfRegion(region: string): string {
  return partition(region).name;
}

export { REGION_PATTERN, REGION_SOURCE, isKnownRegion, isRegionName, partitionOfRegion };
