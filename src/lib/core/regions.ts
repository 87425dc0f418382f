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

/**
 * The parts region names are made of (not a list of regions: which combinations exist is the SDK's data):
 * the geographic prefixes of every partition, the directions, the numbers.
 */
const GEOGRAPHIES = [
  'us',
  'eu',
  'ap',
  'sa',
  'ca',
  'me',
  'af',
  'il',
  'mx',
  'cn',
  'us-gov',
  'us-iso',
  'us-isob',
  'us-isof',
  'eu-isoe',
  'eusc-de',
];
const DIRECTIONS = ['east', 'west', 'north', 'south', 'central', 'northeast', 'northwest', 'southeast', 'southwest'];

let known: string[] | undefined;

/** The regions the SDK's partition data names, found by asking it of every name these parts make. */
function knownRegions(): string[] {
  known ??= GEOGRAPHIES.flatMap((geo) => DIRECTIONS.flatMap((dir) => Array.from({ length: 9 }, (_, i) => `${geo}-${dir}-${i + 1}`))).filter(
    isKnownRegion,
  );
  return known;
}

/** Edit distance (insertions, deletions, substitutions). */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const next = [i];
    for (let j = 1; j <= b.length; j += 1)
      next[j] = Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length] ?? 0;
}

/** The known region nearest a misspelled one (`us-est-1` → `us-east-1`), when one is near enough to be meant. */
function nearestRegion(name: string): string | undefined {
  const lower = name.trim().toLowerCase();
  if (isKnownRegion(lower)) return lower;
  let best: { region: string; d: number } | undefined;
  for (const region of knownRegions()) {
    const d = distance(lower, region);
    if (d <= 3 && (best === undefined || d < best.d)) best = { region, d };
  }
  return best?.region;
}

/** `unknown region "us-est-1" (did you mean us-east-1?)`, or with examples when nothing is near. */
function unknownRegion(name: string): string {
  const near = nearestRegion(name);
  return `unknown region "${name}" (${near === undefined ? 'an AWS region name such as us-east-1 or eu-west-1' : `did you mean ${near}?`})`;
}

/** The partition of a region, as ARNs name it (`aws`, `aws-cn`, `aws-us-gov`, `aws-iso-e`, …). */
function partitionOfRegion(region: string): string {
  return partition(region).name;
}

export { REGION_PATTERN, REGION_SOURCE, isKnownRegion, isRegionName, knownRegions, nearestRegion, partitionOfRegion, unknownRegion };
