/** Which build is current (core/builds.ts): the newest AVAILABLE build by creation that is not revoked. */
import type { ImageSummary } from '@aws-sdk/client-imagebuilder';
import { describe, expect, it } from 'vitest';
import { currentBuild, goodBuildsNewestFirst, isGoodBuild, revokedMark } from '../../src/lib/core/builds.ts';
import { REVOKED_TAG } from '../../src/lib/core/tags.ts';
import { latestAvailable } from '../../src/lib/sweep/sweep.ts';

const BASE = 'arn:aws:imagebuilder:us-east-1:111122223333:image/golden';

function build(version: string, created: string, extra: Partial<ImageSummary> = {}): ImageSummary {
  return { arn: `${BASE}/${version}`, dateCreated: created, state: { status: 'AVAILABLE' }, ...extra };
}

describe('the current build', () => {
  const broken = build('2.0.0/1', '2026-12-01T10:00:00.000Z');
  const fixed = build('1.0.0/2', '2026-12-02T10:00:00.000Z');
  const older = build('1.0.0/1', '2026-11-01T10:00:00.000Z');

  it('is the newest AVAILABLE build by creation, whatever its version', () => {
    expect(currentBuild([broken, fixed, older])).toBe(fixed.arn);
    expect(currentBuild([broken, { ...fixed, state: { status: 'BUILDING' } }, older])).toBe(broken.arn);
    expect(currentBuild([])).toBeUndefined();
  });

  it('is never a revoked build: the next good one is', () => {
    const revoked = { ...fixed, tags: { [REVOKED_TAG]: '2026-12-03T00:00:00.000Z CVE (alice)' } };
    expect(currentBuild([broken, revoked, older])).toBe(broken.arn);
    expect(latestAvailable([broken, revoked, older])).toBe(broken.arn);
    expect(goodBuildsNewestFirst([older, revoked, broken]).map((b) => b.arn)).toStrictEqual([broken.arn, older.arn]);
    expect(isGoodBuild(revoked)).toBe(false);
    // an empty mark is still a mark
    expect(currentBuild([{ ...fixed, tags: { [REVOKED_TAG]: '' } }])).toBeUndefined();
    expect(revokedMark({ [REVOKED_TAG]: '' })).toBe('revoked');
    expect(revokedMark({ other: 'x' })).toBeUndefined();
    expect(revokedMark(undefined)).toBeUndefined();
  });
});
