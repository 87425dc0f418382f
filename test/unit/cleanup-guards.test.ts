/**
 * The pure parts of the deployment's guards: the disable record (merged, split, refused when it cannot be
 * stored) and the clock check. `npm run mutants -- --file cleanup` runs these with test/unit/cleanup-plan.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  type AmiObservation,
  type CleanupSettings,
  DISABLED_AT_TAG,
  type InventoryAmi,
  MAX_TAGS_PER_RESOURCE,
  decide,
  launchPermissionRecord,
  launchPermissionsTagKey,
  recordedLaunchPermissions,
} from '../../src/lib/cleanup/plan.ts';
import { MAX_CLOCK_SKEW_MS, ServiceClock, clockRefusal } from '../../src/lib/core/clock.ts';

const RECORD = 'imagebuilder-reconciler:launch-permissions';
const ACCOUNTS = Array.from({ length: 30 }, (_, i) => String(500_000_000_000 + i));
const NOW = new Date('2026-11-29T12:00:00.000Z');
const settings: CleanupSettings = {
  strategy: 'disable',
  keepTagKeys: ['keep'],
  minAgeDays: 7,
  launchedWithinDays: 30,
  shared: 'include',
  disableGraceDays: 14,
  maxPerRun: 20,
};
const ami: InventoryAmi = {
  imageId: 'ami-00000000000000001',
  region: 'ap-northeast-1',
  accountId: '222222222222',
  buildArn: 'arn:aws:imagebuilder:us-east-1:111111111111:image/golden/1.0.0/1',
  buildStatus: 'AVAILABLE',
  foundBy: 'recorded',
  recordedImageId: 'ami-00000000000000001',
  currentCell: false,
};

function observation(tags: Record<string, string>, sharedWith: string[]): AmiObservation {
  return {
    image: {
      ok: true,
      value: {
        ownerId: '222222222222',
        state: 'available',
        creationDate: '2026-10-01T00:00:00.000Z',
        tags,
        deregistrationProtection: 'disabled',
        public: false,
        deprecationTime: undefined,
        snapshots: [],
      },
    },
    references: { ok: true, value: [] },
    sharedWith: { ok: true, value: sharedWith },
    usageByOthers: { ok: true, value: [] },
    fastLaunch: { ok: true, value: null },
    // every sharee checked through its role, and using nothing
    shareeUse: { ok: true, value: sharedWith.map((accountId) => ({ accountId, checked: true, references: [] })) },
  };
}

/** `n` tags that are not the reconciler's. */
const filler = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`team:${i}`, 'x']));

describe('the disable record', () => {
  it('keeps 30 accounts whole, in tags of at most 256 characters, read back in order', () => {
    const record = launchPermissionRecord({}, ACCOUNTS);
    if ('refusal' in record) throw new Error(record.refusal);
    expect(record.entries).toStrictEqual(ACCOUNTS);
    expect(record.tags.map((t) => t.Key)).toStrictEqual([RECORD, `${RECORD}:2`]);
    for (const tag of record.tags) expect(tag.Value.length).toBeLessThanOrEqual(256);
    // the first tag is filled up to the limit: 19 accounts of 12 digits and 18 commas are 246 characters
    expect(record.tags[0]?.Value.split(',')).toHaveLength(19);
    const tags = Object.fromEntries(record.tags.map((t) => [t.Key, t.Value]));
    expect(recordedLaunchPermissions(tags)).toStrictEqual(ACCOUNTS);
  });

  it('merges with an earlier record, never replaces it (a second disable after a re-enable shares nothing now)', () => {
    const earlier = launchPermissionRecord({}, ACCOUNTS);
    if ('refusal' in earlier) throw new Error(earlier.refusal);
    const tags = Object.fromEntries(earlier.tags.map((t) => [t.Key, t.Value]));
    const again = launchPermissionRecord(tags, []);
    if ('refusal' in again) throw new Error(again.refusal);
    expect(again.entries).toStrictEqual(ACCOUNTS);
    const more = launchPermissionRecord(tags, ['999999999999', ACCOUNTS[0] ?? '']);
    if ('refusal' in more) throw new Error(more.refusal);
    expect(more.entries).toStrictEqual([...ACCOUNTS, '999999999999']);
  });

  it('records an AMI shared with no one as an empty record (one tag)', () => {
    expect(launchPermissionRecord({}, [])).toStrictEqual({ entries: [], tags: [{ Key: RECORD, Value: '' }] });
  });

  it('reads the parts in order and stops at the first missing one', () => {
    expect(recordedLaunchPermissions({ [RECORD]: 'a,b', [`${RECORD}:2`]: 'c', [`${RECORD}:4`]: 'd' })).toStrictEqual(['a', 'b', 'c']);
    expect(recordedLaunchPermissions({ [`${RECORD}:2`]: 'c' })).toStrictEqual([]);
    expect(launchPermissionsTagKey(1)).toBe(RECORD);
    expect(launchPermissionsTagKey(3)).toBe(`${RECORD}:3`);
  });

  it(`is refused when the AMI would have more than ${MAX_TAGS_PER_RESOURCE} tags; exactly ${MAX_TAGS_PER_RESOURCE} fit`, () => {
    // 30 accounts need 2 tags, and the disabled-at marker 1
    expect('refusal' in launchPermissionRecord(filler(MAX_TAGS_PER_RESOURCE - 3), ACCOUNTS)).toBe(false);
    const refused = launchPermissionRecord(filler(MAX_TAGS_PER_RESOURCE - 2), ACCOUNTS);
    expect(refused).toStrictEqual({
      refusal:
        "not disabled: recording its 30 launch permission(s) needs 2 tag(s) and the AMI would have 51, more than EC2's 50 per resource; DisableImage would remove them with no record to restore them from",
    });
    // tags the record rewrites are not counted twice
    const tags = { ...filler(MAX_TAGS_PER_RESOURCE - 3), [DISABLED_AT_TAG]: '2026-01-01T00:00:00.000Z', [RECORD]: '' };
    expect('refusal' in launchPermissionRecord(tags, ACCOUNTS)).toBe(false);
  });

  it('fills a tag value to exactly 256 characters before it starts the next part', () => {
    const record = launchPermissionRecord({}, ['a'.repeat(127), 'b'.repeat(128)]);
    expect('tags' in record && record.tags.map((t) => t.Value.length)).toStrictEqual([256]);
    const over = launchPermissionRecord({}, ['a'.repeat(128), 'b'.repeat(128)]);
    expect('tags' in over && over.tags.map((t) => t.Value.length)).toStrictEqual([128, 128]);
  });

  it('counts an AMI that DescribeImages still lists as deregistered as gone', () => {
    const seen = observation({}, []);
    const listed = seen.image.ok && seen.image.value !== null ? { ...seen.image.value, state: 'deregistered' } : null;
    expect(decide(ami, { ...seen, image: { ok: true, value: listed } }, settings, NOW)).toMatchObject({ action: 'skip', guard: 'gone' });
  });

  it('the planner keeps an AMI whose record cannot be stored (cannot-record), and disables one whose can', () => {
    expect(decide(ami, observation(filler(48), ACCOUNTS), settings, NOW)).toMatchObject({ action: 'skip', guard: 'cannot-record' });
    expect(decide(ami, observation(filler(47), ACCOUNTS), settings, NOW)).toMatchObject({ action: 'disable' });
    expect(decide(ami, observation(filler(49), []), settings, NOW)).toMatchObject({ action: 'skip', guard: 'cannot-record' });
    expect(decide(ami, observation(filler(48), []), settings, NOW)).toMatchObject({ action: 'disable' });
  });
});

describe("AWS's clock", () => {
  it('refuses to act when the local clock is more than five minutes off, or AWS gave no time', () => {
    expect(clockRefusal(0)).toBeUndefined();
    expect(clockRefusal(MAX_CLOCK_SKEW_MS)).toBeUndefined();
    expect(clockRefusal(-MAX_CLOCK_SKEW_MS)).toBeUndefined();
    expect(clockRefusal(MAX_CLOCK_SKEW_MS + 1)).toMatch(/^the local clock is 5 minutes behind AWS's \(more than 5 minutes\)/);
    expect(clockRefusal(-8 * 86_400_000)).toMatch(/^the local clock is 8 days ahead of AWS's/);
    expect(clockRefusal(-3 * 3_600_000)).toMatch(/^the local clock is 3 hours ahead of AWS's/);
    expect(clockRefusal(undefined)).toMatch(/^AWS's clock could not be read/);
  });

  it('takes the least delayed response: latency only makes AWS look behind', () => {
    let local = Date.parse('2026-12-04T12:00:00.000Z');
    const clock = new ServiceClock(() => local);
    expect(clock.offsetMs()).toBeUndefined();
    clock.observe('not a date');
    clock.observe(undefined);
    expect(clock.offsetMs()).toBeUndefined();
    // AWS's clock 8 days behind the local one; the second answer arrived 3 s late
    clock.observe(new Date(local - 8 * 86_400_000).toUTCString());
    const first = clock.offsetMs() ?? 0;
    expect(Math.abs(first + 8 * 86_400_000)).toBeLessThanOrEqual(1000);
    local += 3000;
    clock.observe(new Date(local - 3000 - 8 * 86_400_000).toUTCString());
    expect(clock.offsetMs()).toBe(first);
    expect(clock.now().getTime()).toBe(local + first);
  });
});
