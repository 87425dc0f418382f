/**
 * Cleanup's planner in random worlds (test/helpers/planner-worlds.ts): every consumer kind in the AMI's own
 * account and in the accounts it is shared with (with and without the reconciler's role there), keep tags and
 * near misses, builds in progress, launch times, failed reads. No world may act on an AMI that had to be
 * kept, and, where no read failed, none may keep an AMI that was free to go. `npm run worlds -- 10000` runs
 * the same worlds at scale and prints the counts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { judge, world } from '../helpers/planner-worlds.ts';

describe('cleanup planner in random worlds', () => {
  it('never acts on an AMI that had to be kept, and keeps none that was free to go', () => {
    fc.assert(
      fc.property(world, (w) => {
        const verdict = judge(w);
        expect(verdict.wrongful).toStrictEqual([]);
        expect(verdict.needlessKeeps).toStrictEqual([]);
      }),
      { numRuns: 2000 },
    );
  });
});
