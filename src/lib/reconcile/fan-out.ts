/**
 * Shards: when a build has more cells than one invocation should take (RECONCILER_SHARD_MAX_CELLS), its
 * cells are split into shards of at most that many, each reconciled by its own invocation (README,
 * "Architecture", sharding). Pure: no I/O.
 */

/** Which cells a shard covers: every cell of `accounts`, or, for one account split by region, those `regions` of it. */
interface ShardScope {
  accounts: string[];
  /** Only when one account alone has more cells than a shard may take: the regions of that account in this shard. */
  regions?: string[] | undefined;
}

/** A shard as its message names it (and its rechecks carry it on). */
interface ShardSpec extends ShardScope {
  /** The run that fanned out: shard 1's run id. Every shard's reports carry it. */
  runId: string;
  /** 1-based; shard 1 also does the image-level work (RetryImage, image-level notes). */
  index: number;
  count: number;
}

/** A cell, as far as splitting is concerned. */
interface ShardCell {
  region: string;
  accountId: string;
}

/**
 * Split cells into shards of at most `maxCells` cells. Accounts are taken in sorted order and packed into
 * the current shard while they fit (an account is never split across shards); an account that alone has
 * more than `maxCells` cells gets shards of its own, split by region (sorted), `maxCells` regions at most
 * each. Deterministic: the same cells give the same shards. One shard (no fan-out) when everything fits.
 */
function splitShards(cells: readonly ShardCell[], maxCells: number): ShardScope[] {
  if (!Number.isInteger(maxCells) || maxCells < 1) throw new RangeError(`maxCells must be a positive integer, got ${maxCells}`);
  const regionsByAccount = new Map<string, Set<string>>();
  for (const cell of cells) {
    const regions = regionsByAccount.get(cell.accountId) ?? new Set<string>();
    regions.add(cell.region);
    regionsByAccount.set(cell.accountId, regions);
  }
  const shards: ShardScope[] = [];
  let current: { accounts: string[]; cells: number } = { accounts: [], cells: 0 };
  const close = (): void => {
    if (current.accounts.length > 0) shards.push({ accounts: current.accounts });
    current = { accounts: [], cells: 0 };
  };
  for (const account of [...regionsByAccount.keys()].sort()) {
    const regions = [...(regionsByAccount.get(account) ?? [])].sort();
    if (regions.length > maxCells) {
      close();
      for (let i = 0; i < regions.length; i += maxCells) shards.push({ accounts: [account], regions: regions.slice(i, i + maxCells) });
      continue;
    }
    if (current.cells + regions.length > maxCells) close();
    current.accounts.push(account);
    current.cells += regions.length;
  }
  close();
  return shards.length === 0 ? [{ accounts: [] }] : shards;
}

/**
 * Fewest cells a shard is given when a build is split for time: below this, an invocation's fixed costs
 * (its start, the build's own reads, the chain of one cell) outweigh its share of the cells
 * (docs/performance.md, "Shards sized for time").
 */
const MIN_SHARD_CELLS = 100;

/**
 * How many cells a shard of a build takes: the build spread over `concurrency` shards (that many run at
 * once, each on its own vCPU share, so the build takes about one shard's time), each of at least
 * MIN_SHARD_CELLS cells, and never more than `maxCells` (what one invocation may hold).
 */
function shardSize(cells: number, maxCells: number, concurrency: number): number {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  return Math.min(maxCells, Math.max(MIN_SHARD_CELLS, Math.ceil(cells / concurrency)));
}

/** Whether a cell is in a shard's scope, as a filter (a set lookup per cell, not a scan of the account list). */
function scopeFilter(scope: ShardScope): (cell: ShardCell) => boolean {
  const accounts = new Set(scope.accounts);
  const regions = scope.regions === undefined ? undefined : new Set(scope.regions);
  return (cell) => accounts.has(cell.accountId) && (regions === undefined || regions.has(cell.region));
}

/** `2/5`, as reports and logs name a shard. */
function shardLabel(spec: Pick<ShardSpec, 'index' | 'count'>): string {
  return `${spec.index}/${spec.count}`;
}

export { MIN_SHARD_CELLS, scopeFilter, shardLabel, shardSize, splitShards };
export type { ShardCell, ShardScope, ShardSpec };
