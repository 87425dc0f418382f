import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/lib/core/errors.ts';
import { MIN_SHARD_CELLS, type ShardCell, scopeFilter, shardSize, splitShards } from '../../src/lib/reconcile/fan-out.ts';
import { toRecheckRequest } from '../../src/lib/reconcile/input.ts';

const A = '111111111111';
const B = '222222222222';
const C = '333333333333';
const D = '444444444444';

function cells(spec: Record<string, string[]>): ShardCell[] {
  return Object.entries(spec).flatMap(([accountId, regions]) => regions.map((region) => ({ region, accountId })));
}

/** The cells each shard covers, as `region/account` keys. */
function covered(all: ShardCell[], maxCells: number): string[][] {
  return splitShards(all, maxCells).map((scope) =>
    all
      .filter(scopeFilter(scope))
      .map((c) => `${c.region}/${c.accountId}`)
      .sort(),
  );
}

describe('splitShards', () => {
  // the demo scenario's cells: A in 1 region, B in 3, C in 2, D in 1 (7 in all)
  const demo = cells({
    [B]: ['us-east-1', 'eu-west-1', 'ap-northeast-1'],
    [A]: ['us-east-1'],
    [C]: ['us-east-1', 'ap-southeast-2'],
    [D]: ['eu-west-1'],
  });

  it('keeps a build that fits in one shard whole', () => {
    expect(splitShards(demo, 7)).toStrictEqual([{ accounts: [A, B, C, D] }]);
    expect(splitShards(demo, 1000)).toStrictEqual([{ accounts: [A, B, C, D] }]);
  });

  it('packs whole accounts, in account order, while they fit', () => {
    expect(splitShards(demo, 4)).toStrictEqual([{ accounts: [A, B] }, { accounts: [C, D] }]);
    expect(splitShards(demo, 3)).toStrictEqual([{ accounts: [A] }, { accounts: [B] }, { accounts: [C, D] }]);
  });

  it('splits an account by region only when it alone has more cells than a shard takes', () => {
    expect(splitShards(demo, 2)).toStrictEqual([
      { accounts: [A] },
      { accounts: [B], regions: ['ap-northeast-1', 'eu-west-1'] },
      { accounts: [B], regions: ['us-east-1'] },
      { accounts: [C] },
      { accounts: [D] },
    ]);
  });

  it('covers every cell exactly once, no shard past the limit', () => {
    for (const max of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const parts = covered(demo, max);
      const all = parts.flat();
      expect(all.length, `max ${max}`).toBe(demo.length);
      expect(new Set(all).size, `max ${max}`).toBe(demo.length);
      for (const part of parts) expect(part.length, `max ${max}`).toBeLessThanOrEqual(max);
    }
  });

  it('gives the same shards whatever the order of the cells', () => {
    expect(splitShards([...demo].reverse(), 3)).toStrictEqual(splitShards(demo, 3));
  });

  it('sizes an organization: 10,000 cells (20 regions × 500 accounts) in shards of 1,000 make 10 shards of 50 accounts', () => {
    const regions = Array.from({ length: 20 }, (_, i) => `eu-test-${i + 1}`);
    const org = Array.from({ length: 500 }, (_, i) => String(100000000000 + i)).flatMap((accountId) =>
      regions.map((region) => ({ region, accountId })),
    );
    const shards = splitShards(org, 1000);
    expect(shards.map((s) => s.accounts.length)).toStrictEqual(Array(10).fill(50));
  });

  it('refuses a limit that is not a positive integer', () => {
    expect(() => splitShards(demo, 0)).toThrow(RangeError);
  });
});

describe('shardSize: shards sized for time', () => {
  it('spreads a build over as many shards as run at once, each of at least the minimum and at most the maximum', () => {
    // 1,000 cells, 10 at once: 10 shards of 100 (each on its own vCPU share, the build takes one shard's time)
    expect(shardSize(1000, 1000, 10)).toBe(100);
    expect(shardSize(2000, 1000, 10)).toBe(200);
    // a small build is not cut into shards smaller than the minimum (an invocation's fixed costs would dominate)
    expect(shardSize(300, 1000, 10)).toBe(MIN_SHARD_CELLS);
    expect(shardSize(50, 1000, 10)).toBe(MIN_SHARD_CELLS);
    // a large one is capped by what one invocation may hold: 50,000 cells are 50 shards of 1,000, 10 at a time
    expect(shardSize(50_000, 1000, 10)).toBe(1000);
    // the maximum wins over the minimum (a deployment that wants tiny shards gets them)
    expect(shardSize(8, 3, 10)).toBe(3);
    expect(() => shardSize(10, 10, 0)).toThrow(RangeError);
  });
});

describe('the shard field of a recheck message', () => {
  const context = { partition: 'aws', now: () => new Date('2026-12-01T00:00:00Z'), maxAttempts: 12 };
  const message = (shard: unknown) =>
    JSON.stringify({
      imageBuildVersionArn: 'arn:aws:imagebuilder:us-east-1:111111111111:image/golden/1.0.0/1',
      attempt: 1,
      firstSeenAt: '2026-11-30T00:00:00Z',
      mode: 'apply',
      fastLaunchRetries: {},
      shard,
    });
  const reject = (shard: unknown): string => {
    try {
      toRecheckRequest(message(shard), context);
    } catch (error: unknown) {
      if (error instanceof InputError) return error.message;
      throw error;
    }
    throw new Error('accepted');
  };

  it('is carried into the request', () => {
    const shard = { runId: 'run-1', index: 2, count: 3, accounts: [B], regions: ['eu-west-1'] };
    expect(toRecheckRequest(message(shard), context).shard).toStrictEqual(shard);
  });

  it('is strict: unknown keys, an index past the count, a count of 1, regions for several accounts are refused', () => {
    expect(reject({ runId: 'r', index: 1, count: 2, accounts: [A], extra: true })).toMatch(/shard.*extra|extra/);
    expect(reject({ runId: 'r', index: 3, count: 2, accounts: [A] })).toMatch(/shard 3 of 2/);
    expect(reject({ runId: 'r', index: 1, count: 1, accounts: [A] })).toMatch(/at least 2/);
    expect(reject({ runId: 'r', index: 1, count: 2, accounts: [A, B], regions: ['us-east-1'] })).toMatch(/only a shard of one account/);
    expect(reject({ runId: 'r', index: 1, count: 2, accounts: ['12'] })).toMatch(/12-digit/);
    expect(reject({ runId: 'r', index: 1, count: 2, accounts: [] })).toMatch(/accounts/);
    expect(reject({ runId: 'a b', index: 1, count: 2, accounts: [A] })).toMatch(/run id/);
  });
});
