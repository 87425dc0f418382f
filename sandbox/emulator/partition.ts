import { partition } from '@aws-sdk/core/client';

/**
 * The partition of a region (`aws`, `aws-cn`, `aws-us-gov`, `aws-iso`, `aws-iso-b`, `aws-iso-e`, `aws-iso-f`), as
 * its ARNs name it: from the AWS SDK's own partition data (the endpoints ruleset's partitions.json), so the
 * emulator and the SDK clients talking to it agree on every region, and a region outside every partition's
 * pattern falls back to `aws` as the SDK's resolver does.
 */
function partitionOf(region: string): string {
  return partition(region).name;
}

/** A region the SDK's partition data names (`mars-west-9` is of the right shape, and names none). */
function isKnownRegion(region: string): boolean {
  return (partition(region) as { description?: string }).description !== undefined;
}

export { isKnownRegion, partitionOf };
