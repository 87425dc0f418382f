import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AmiObservation,
  type CleanupSettings,
  DISABLED_AT_TAG,
  type InventoryAmi,
  SETTLED_BUILD_STATES,
  amiKey,
  decide,
  planCleanup,
} from '../../src/lib/cleanup/plan.ts';

const NOW = new Date('2026-11-29T12:00:00.000Z');
const settings: CleanupSettings = {
  strategy: 'deregister',
  keepTagKeys: ['keep'],
  minAgeDays: 7,
  launchedWithinDays: 30,
  shared: 'skip',
  disableGraceDays: 14,
  maxPerRun: 20,
};

function ami(overrides: Partial<InventoryAmi> = {}): InventoryAmi {
  return {
    imageId: 'ami-00000000000000001',
    region: 'ap-northeast-1',
    accountId: '222222222222',
    buildArn: 'arn:aws:imagebuilder:us-east-1:111111111111:image/golden/1.0.0/1',
    buildStatus: 'AVAILABLE',
    foundBy: 'recorded',
    recordedImageId: 'ami-00000000000000001',
    currentCell: false,
    ...overrides,
  };
}

type Image = NonNullable<Extract<AmiObservation['image'], { ok: true }>['value']>;

function observation(image: Partial<Image> | null = {}, overrides: Partial<AmiObservation> = {}): AmiObservation {
  return {
    image: {
      ok: true,
      value:
        image === null
          ? null
          : {
              ownerId: '222222222222',
              state: 'available',
              creationDate: '2026-10-01T00:00:00.000Z',
              tags: {},
              deregistrationProtection: 'disabled',
              public: false,
              deprecationTime: undefined,
              snapshots: [{ snapshotId: 'snap-1', sizeGiB: 30 }],
              ...image,
            },
    },
    references: { ok: true, value: [] },
    sharedWith: { ok: true, value: [] },
    fastLaunch: { ok: true, value: null },
    ...overrides,
  };
}

const denied = { kind: 'access-denied' as const, code: 'AccessDenied', message: 'denied' };

describe('cleanup guards (pure)', () => {
  it.each([
    { reason: 'an AMI in a removed cell that every guard lets go is deregistered', ami: ami(), obs: observation(), want: 'deregister' },
    { reason: 'the cell is still in the configuration', ami: ami({ currentCell: true }), obs: observation(), want: 'current-cell' },
    {
      reason: 'found by tag but not the AMI the build recorded for the cell',
      ami: ami({ foundBy: 'tag', recordedImageId: 'ami-00000000000000009' }),
      obs: observation(),
      want: 'not-recorded',
    },
    { reason: 'owned by another account', ami: ami(), obs: observation({ ownerId: '999999999999' }), want: 'not-owned' },
    { reason: 'already gone', ami: ami(), obs: observation(null), want: 'gone' },
    {
      reason: 'the AMI cannot be read (AccessDenied): unknown means keep',
      ami: ami(),
      obs: { ...observation(), image: { ok: false as const, error: denied } },
      want: 'unknown',
    },
    {
      reason: 'deregistration protection is on',
      ami: ami(),
      obs: observation({ deregistrationProtection: 'enabled-with-cooldown' }),
      want: 'protected',
    },
    { reason: 'it carries the keep tag, whatever the value', ami: ami(), obs: observation({ tags: { keep: '' } }), want: 'keep-tag' },
    {
      reason: 'younger than the minimum age',
      ami: ami(),
      obs: observation({ creationDate: '2026-11-25T00:00:00.000Z' }),
      want: 'too-young',
    },
    {
      reason: 'a running instance uses it',
      ami: ami(),
      obs: observation({}, { references: { ok: true, value: [{ resourceType: 'ec2:Instance', arn: 'i-1' }] } }),
      want: 'in-use',
    },
    {
      reason: 'references cannot be checked (throttled past retries): keep',
      ami: ami(),
      obs: observation({}, { references: { ok: false, error: { kind: 'throttled', code: 'RequestLimitExceeded', message: 'slow down' } } }),
      want: 'unknown',
    },
    {
      reason: 'shared with another account',
      ami: ami(),
      obs: observation({}, { sharedWith: { ok: true, value: ['333333333333'] } }),
      want: 'shared',
    },
    { reason: 'public counts as shared', ami: ami(), obs: observation({ public: true }), want: 'shared' },
    {
      reason: 'a pending AMI is not touched',
      ami: ami(),
      obs: observation({ state: 'pending' }),
      want: 'not-available',
      says: /is pending/,
    },
    { reason: 'an AMI that was never observed: unknown means keep', ami: ami(), obs: undefined, want: 'unknown', says: /not observed/ },
    {
      reason: 'references that were not checked: keep',
      ami: ami(),
      obs: observation({}, { references: undefined }),
      want: 'unknown',
      says: /references not checked/,
    },
    {
      reason: 'sharing that was not checked: keep',
      ami: ami(),
      obs: observation({}, { sharedWith: undefined }),
      want: 'unknown',
      says: /sharing not checked/,
    },
    {
      reason: 'launch permissions that cannot be read: keep',
      ami: ami(),
      obs: observation({}, { sharedWith: { ok: false, error: denied } }),
      want: 'unknown',
      says: /could not read launch permissions \(AccessDenied\)/,
    },
    {
      reason: 'references that IAM refused to read: keep, naming the denied action',
      ami: ami(),
      obs: observation(
        {},
        {
          references: {
            ok: false,
            error: {
              kind: 'access-denied',
              code: 'UnauthorizedOperation',
              message:
                'DescribeImageReferences in 222222222222/eu-west-1 failed: UnauthorizedOperation: You are not authorized to perform this operation. User: arn:aws:sts::222222222222:assumed-role/ImageBuilderReconcilerCleanup/c is not authorized to perform: ssm:DescribeParameters on resource: * because no identity-based policy allows the ssm:DescribeParameters action. Encoded authorization failure message: x',
            },
          },
        },
      ),
      want: 'unknown',
      says: /^could not check what uses the AMI \(UnauthorizedOperation: not authorized to perform: ssm:DescribeParameters\): kept$/,
    },
    {
      reason: 'no creation date: keep',
      ami: ami(),
      obs: observation({ creationDate: undefined }),
      want: 'unknown',
      says: /creation date unknown/,
    },
    {
      reason: 'a malformed creation date: keep',
      ami: ami(),
      obs: observation({ creationDate: 'yesterday' }),
      want: 'unknown',
      says: /creation date unknown/,
    },
    {
      reason: 'deregistration protection without cooldown',
      ami: ami(),
      obs: observation({ deregistrationProtection: 'enabled' }),
      want: 'protected',
      says: /protection is enabled/,
    },
    { reason: 'a failed AMI is not touched', ami: ami(), obs: observation({ state: 'failed' }), want: 'not-available', says: /is failed/ },
    {
      reason: 'a disabled AMI in a removed cell is deregistered like an available one',
      ami: ami(),
      obs: observation({ state: 'disabled' }),
      want: 'deregister',
      says: /every guard passed/,
    },
    {
      reason: 'a launch template version uses it',
      ami: ami(),
      obs: observation(
        {},
        {
          references: {
            ok: true,
            value: [{ resourceType: 'ec2:LaunchTemplate', arn: 'arn:aws:ec2:ap-northeast-1:222222222222:launch-template/lt-1' }],
          },
        },
      ),
      want: 'in-use',
      says: /ec2:LaunchTemplate arn:aws:ec2/,
    },
  ])('$reason', ({ ami: a, obs, want, says }) => {
    const decision = decide(a, obs, settings, NOW);
    expect(decision.action === 'skip' ? decision.guard : decision.action).toBe(want);
    expect(decision.reason).toMatch(says ?? /\S/);
  });

  it('keeps an AMI exactly as old as the minimum age minus a millisecond, and lets go one exactly that old', () => {
    const minAge = settings.minAgeDays * 86_400_000;
    expect(decide(ami(), observation({ creationDate: new Date(NOW.getTime() - minAge + 1).toISOString() }), settings, NOW)).toMatchObject({
      action: 'skip',
      guard: 'too-young',
    });
    expect(decide(ami(), observation({ creationDate: new Date(NOW.getTime() - minAge).toISOString() }), settings, NOW).action).toBe(
      'deregister',
    );
  });

  it('counts the grace period and the deprecation time to the millisecond', () => {
    const disable = { ...settings, strategy: 'disable' as const };
    const grace = settings.disableGraceDays * 86_400_000;
    const disabledAt = (ms: number) =>
      observation({ state: 'disabled', tags: { [DISABLED_AT_TAG]: new Date(NOW.getTime() - ms).toISOString() } });
    expect(decide(ami(), disabledAt(grace - 1), disable, NOW)).toMatchObject({ action: 'skip', guard: 'grace' });
    expect(decide(ami(), disabledAt(grace), disable, NOW).action).toBe('deregister');
    const deprecate = { ...settings, strategy: 'deprecate' as const };
    expect(decide(ami(), observation({ deprecationTime: NOW.toISOString() }), deprecate, NOW)).toMatchObject({
      action: 'skip',
      guard: 'done',
    });
    expect(decide(ami(), observation({ deprecationTime: new Date(NOW.getTime() + 1).toISOString() }), deprecate, NOW).action).toBe(
      'deprecate',
    );
  });

  it('checks the keep tag by key, whatever the value', () => {
    expect(decide(ami(), observation({ tags: { keep: 'no' } }), settings, NOW)).toMatchObject({
      action: 'skip',
      guard: 'keep-tag',
      reason: 'tagged keep=no',
    });
    expect(decide(ami(), observation({ tags: { keeper: '', 'ke ep': '', kep: '' } }), settings, NOW).action).toBe('deregister');
  });

  it('keeps an AMI launched within the last N days, to the millisecond; one never launched rests on the other guards', () => {
    const within = settings.launchedWithinDays * 86_400_000;
    const launched = (ms: number) => observation({ lastLaunchedTime: new Date(NOW.getTime() - ms).toISOString() });
    expect(decide(ami(), launched(within - 1), settings, NOW)).toStrictEqual({
      action: 'skip',
      guard: 'recently-launched',
      reason: `last launched ${new Date(NOW.getTime() - within + 1).toISOString()}, within 30 day(s) (RECONCILER_CLEANUP_LAUNCHED_WITHIN_DAYS)`,
    });
    expect(decide(ami(), launched(within), settings, NOW).action).toBe('deregister');
    expect(decide(ami(), observation({ lastLaunchedTime: undefined }), settings, NOW).action).toBe('deregister');
    expect(decide(ami(), observation({ lastLaunchedTime: 'last week' }), settings, NOW)).toMatchObject({
      action: 'skip',
      guard: 'unknown',
      reason: 'last launch time last week unreadable: kept',
    });
    expect(decide(ami(), launched(40 * 86_400_000), { ...settings, launchedWithinDays: 45 }, NOW)).toMatchObject({
      guard: 'recently-launched',
    });
    // what uses it now is the stronger reason, and says what
    expect(decide(ami(), launched(0), settings, NOW)).toMatchObject({ guard: 'recently-launched' });
    const used = observation(
      { lastLaunchedTime: NOW.toISOString() },
      { references: { ok: true, value: [{ resourceType: 'ec2:Instance', arn: 'i-1' }] } },
    );
    expect(decide(ami(), used, settings, NOW)).toMatchObject({ guard: 'in-use' });
  });

  it('never touches an AMI of a build Image Builder is still working on, at any minimum age', () => {
    const anyAge = { ...settings, minAgeDays: 0 };
    for (const status of [
      'PENDING',
      'CREATING',
      'BUILDING',
      'TESTING',
      'DISTRIBUTING',
      'INTEGRATING',
      'UNKNOWN',
      'DEPRECATED',
      'available',
    ]) {
      expect(decide(ami({ buildStatus: status }), observation(), anyAge, NOW)).toStrictEqual({
        action: 'skip',
        guard: 'build-in-progress',
        reason: `the build arn:aws:imagebuilder:us-east-1:111111111111:image/golden/1.0.0/1 is ${status}, not AVAILABLE, FAILED, CANCELLED: Image Builder may still be using its AMIs`,
      });
    }
    for (const status of ['AVAILABLE', 'FAILED', 'CANCELLED'])
      expect(decide(ami({ buildStatus: status }), observation(), anyAge, NOW).action).toBe('deregister');
    // a current cell says so first: it is the stronger reason
    expect(decide(ami({ buildStatus: 'DISTRIBUTING', currentCell: true }), observation(), anyAge, NOW)).toMatchObject({
      guard: 'current-cell',
    });
  });

  it('keeps an AMI whose tag differs from a keep tag only in case, blanks around it or Unicode form, naming the near miss', () => {
    const real = { ...settings, keepTagKeys: ['imagebuilder-reconciler:keep'] };
    const kept = (tags: Record<string, string>) => decide(ami(), observation({ tags }), real, NOW);
    expect(kept({ 'Imagebuilder-Reconciler:Keep ': '' })).toStrictEqual({
      action: 'skip',
      guard: 'keep-tag',
      reason:
        "kept: tag 'Imagebuilder-Reconciler:Keep ' matches the keep tag imagebuilder-reconciler:keep after trimming, case folding and Unicode normalisation (NFKC)",
    });
    expect(kept({ 'IMAGEBUILDER-RECONCILER:KEEP': 'x' })).toMatchObject({
      guard: 'keep-tag',
      reason: expect.stringMatching(/^kept: tag 'IMAGEBUILDER-RECONCILER:KEEP' matches/),
    });
    expect(kept({ '\timagebuilder-reconciler:keep\u00a0': '' })).toMatchObject({ guard: 'keep-tag' });
    // fullwidth letters and colon (NFKC folds them to ASCII)
    expect(kept({ 'ｉｍａｇｅｂｕｉｌｄｅｒ-ｒｅｃｏｎｃｉｌｅｒ：ｋｅｅｐ': '' })).toMatchObject({ guard: 'keep-tag' });
    // the keep tag itself may be written loosely too (a deployment or request setting)
    expect(
      decide(
        ami(),
        observation({ tags: { 'imagebuilder-reconciler:keep': '' } }),
        { ...settings, keepTagKeys: [' ImageBuilder-Reconciler:KEEP'] },
        NOW,
      ),
    ).toMatchObject({ guard: 'keep-tag' });
    // ß folds to ss, as in full case folding
    expect(decide(ami(), observation({ tags: { 'Strasse:Keep': '' } }), { ...settings, keepTagKeys: ['straße:keep'] }, NOW)).toMatchObject({
      guard: 'keep-tag',
    });
    // an exact key wins over a near miss, and a different key is no near miss
    expect(kept({ 'Imagebuilder-Reconciler:Keep': '', 'imagebuilder-reconciler:keep': 'v' })).toMatchObject({
      reason: 'tagged imagebuilder-reconciler:keep=v',
    });
    expect(kept({ 'imagebuilder-reconciler:keeps': '', 'imagebuilder-reconciler-keep': '' }).action).toBe('deregister');
  });

  it('with shared: include, a shared AMI goes only when no other account is known to use it', () => {
    const include = { ...settings, shared: 'include' as const };
    const shared = {
      sharedWith: { ok: true as const, value: ['333333333333'] },
      shareeUse: { ok: true as const, value: [{ accountId: '333333333333', checked: true, references: [] }] },
    };
    expect(
      decide(
        ami(),
        observation(
          {},
          { ...shared, usageByOthers: { ok: true, value: [{ accountId: '333333333333', resourceType: 'ec2:Instance', count: 0 }] } },
        ),
        include,
        NOW,
      ),
    ).toMatchObject({
      action: 'deregister',
      reason: expect.stringMatching(/shared with 333333333333: nothing in 333333333333 uses it \(checked through their role\)$/),
    });
    expect(
      decide(
        ami(),
        observation(
          {},
          { ...shared, usageByOthers: { ok: true, value: [{ accountId: '333333333333', resourceType: 'ec2:Instance', count: 2 }] } },
        ),
        include,
        NOW,
      ),
    ).toMatchObject({ action: 'skip', guard: 'in-use', reason: expect.stringMatching(/333333333333 \(2 ec2:Instance\)/) });
    expect(decide(ami(), observation({}, shared), include, NOW)).toMatchObject({
      action: 'skip',
      guard: 'unknown',
      reason: expect.stringMatching(/use by other accounts not checked/),
    });
    expect(decide(ami(), observation({}, { ...shared, usageByOthers: { ok: false, error: denied } }), include, NOW)).toMatchObject({
      action: 'skip',
      guard: 'unknown',
    });
    // an AMI shared with nobody needs no usage report
    expect(decide(ami(), observation(), include, NOW).action).toBe('deregister');
  });

  it('with shared: include, what the sharee runs from the AMI (seen through its role) keeps it', () => {
    const include = { ...settings, shared: 'include' as const };
    const empty = { ok: true as const, value: [{ accountId: '333333333333', resourceType: 'ec2:Instance', count: 0 }] };
    const base = { sharedWith: { ok: true as const, value: ['333333333333', '444444444444'] }, usageByOthers: empty };
    const lc = { resourceType: 'autoscaling:LaunchConfiguration', arn: 'lc' };
    expect(
      decide(
        ami(),
        observation(
          {},
          {
            ...base,
            shareeUse: {
              ok: true,
              value: [
                { accountId: '333333333333', checked: true, references: [lc] },
                { accountId: '444444444444', checked: false, references: [], why: 'no role' },
              ],
            },
          },
        ),
        include,
        NOW,
      ),
    ).toMatchObject({
      action: 'skip',
      guard: 'in-use',
      reason: 'in use in the accounts it is shared with: 333333333333: autoscaling:LaunchConfiguration lc',
    });
    expect(decide(ami(), observation({}, base), include, NOW)).toMatchObject({
      action: 'skip',
      guard: 'unknown',
      reason: expect.stringMatching(/use in the sharing accounts not checked/),
    });
    expect(decide(ami(), observation({}, { ...base, shareeUse: { ok: false, error: denied } }), include, NOW)).toMatchObject({
      action: 'skip',
      guard: 'unknown',
      reason: expect.stringMatching(/could not check what uses it in the accounts it is shared with/),
    });
    // no role in the sharee: the usage report is empty and the AMI was not launched within the days: it goes, saying so
    const unchecked = {
      ...base,
      shareeUse: {
        ok: true as const,
        value: [
          { accountId: '333333333333', checked: true, references: [] },
          { accountId: '444444444444', checked: false, references: [], why: 'no role' },
        ],
      },
    };
    expect(decide(ami(), observation({ lastLaunchedTime: '2026-10-02T00:00:00.000Z' }, unchecked), include, NOW)).toMatchObject({
      action: 'deregister',
      reason: expect.stringMatching(
        /nothing in 333333333333 uses it \(checked through their role\); 444444444444 not checked through a role: the usage report is empty and it was not launched within 30 day\(s\)$/,
      ),
    });
    // launched lately, by whoever: kept before any of this
    expect(decide(ami(), observation({ lastLaunchedTime: '2026-11-20T00:00:00.000Z' }, unchecked), include, NOW)).toMatchObject({
      guard: 'recently-launched',
    });
  });

  it('keeps an AMI with Windows Fast Launch on, or whose Fast Launch state is unknown', () => {
    expect(decide(ami(), observation({}, { fastLaunch: { ok: true, value: 'enabled' } }), settings, NOW)).toMatchObject({
      action: 'skip',
      guard: 'fast-launch',
      reason: expect.stringMatching(/Fast Launch is enabled: disable it first/),
    });
    expect(decide(ami(), observation({}, { fastLaunch: undefined }), settings, NOW)).toMatchObject({ action: 'skip', guard: 'unknown' });
    expect(decide(ami(), observation({}, { fastLaunch: { ok: false, error: denied } }), settings, NOW)).toMatchObject({
      action: 'skip',
      guard: 'unknown',
    });
  });

  it("keeps an AMI carrying any of the keep tags: the deployment's and those a request added", () => {
    const two = { ...settings, keepTagKeys: ['keep', 'team:hold'] };
    expect(decide(ami(), observation({ tags: { 'team:hold': '1' } }), two, NOW)).toMatchObject({
      action: 'skip',
      guard: 'keep-tag',
      reason: 'tagged team:hold=1',
    });
    expect(decide(ami(), observation({ tags: { keep: '' } }), two, NOW)).toMatchObject({ action: 'skip', guard: 'keep-tag' });
  });

  it('strategy disable: disables first, deregisters only after the grace period, and never deregisters an AMI it did not disable', () => {
    const disable = { ...settings, strategy: 'disable' as const };
    expect(decide(ami(), observation(), disable, NOW).action).toBe('disable');
    const recent = decide(ami(), observation({ state: 'disabled', tags: { [DISABLED_AT_TAG]: '2026-11-20T00:00:00.000Z' } }), disable, NOW);
    expect(recent).toMatchObject({ action: 'skip', guard: 'grace' });
    expect(
      decide(ami(), observation({ state: 'disabled', tags: { [DISABLED_AT_TAG]: '2026-11-01T00:00:00.000Z' } }), disable, NOW).action,
    ).toBe('deregister');
    expect(decide(ami(), observation({ state: 'disabled' }), disable, NOW)).toMatchObject({ action: 'skip', guard: 'grace' });
  });

  it('strategy deprecate: deprecates once', () => {
    const deprecate = { ...settings, strategy: 'deprecate' as const };
    expect(decide(ami(), observation(), deprecate, NOW).action).toBe('deprecate');
    expect(decide(ami(), observation({ deprecationTime: '2026-11-28T00:00:00.000Z' }), deprecate, NOW)).toMatchObject({
      action: 'skip',
      guard: 'done',
    });
  });
});

describe('cleanup planner properties (fast-check)', () => {
  const failure = fc.constantFrom(
    { kind: 'access-denied' as const, code: 'AccessDenied', message: 'denied' },
    { kind: 'throttled' as const, code: 'RequestLimitExceeded', message: 'slow' },
  );
  const observed = fc.record({
    readable: fc.boolean(),
    exists: fc.boolean(),
    ownedElsewhere: fc.boolean(),
    state: fc.constantFrom('available', 'available', 'pending', 'disabled', 'failed'),
    protectedAmi: fc.boolean(),
    keepTag: fc.boolean(),
    ageDays: fc.integer({ min: 0, max: 60 }),
    launchedDaysAgo: fc.option(fc.integer({ min: 0, max: 90 }), { nil: undefined }),
    references: fc.option(
      fc.array(fc.constantFrom('ec2:Instance', 'ec2:LaunchTemplate', 'ssm:Parameter', 'imagebuilder:ImageRecipe'), { maxLength: 3 }),
      { nil: undefined },
    ),
    referencesFail: fc.boolean(),
    shared: fc.array(fc.constantFrom('333333333333', 'all'), { maxLength: 2 }),
    sharedFail: fc.boolean(),
    isPublic: fc.boolean(),
    fastLaunch: fc.constantFrom(null, 'enabled', 'enabling', 'enabling-failed', 'fail'),
    usage: fc.constantFrom('none', 'used', 'unused', 'fail'),
    failureOf: failure,
  });
  const entry = fc.record({
    currentCell: fc.boolean(),
    buildStatus: fc.constantFrom('AVAILABLE', 'AVAILABLE', 'FAILED', 'CANCELLED', 'DISTRIBUTING', 'BUILDING', 'UNKNOWN'),
    recordedMatches: fc.boolean(),
    account: fc.constantFrom('111111111111', '222222222222', '333333333333'),
    region: fc.constantFrom('us-east-1', 'eu-west-1', 'ap-northeast-1'),
    id: fc.integer({ min: 1, max: 1_000_000 }),
    obs: observed,
  });
  const settingsArb = fc.record({
    strategy: fc.constantFrom('deregister' as const, 'disable' as const, 'deprecate' as const),
    keepTagKeys: fc.constant<string[]>(['keep']),
    maxPerRun: fc.constant(20),
    minAgeDays: fc.integer({ min: 0, max: 30 }),
    launchedWithinDays: fc.integer({ min: 0, max: 60 }),
    shared: fc.constantFrom('skip' as const, 'include' as const),
    disableGraceDays: fc.integer({ min: 0, max: 30 }),
  });

  it('never selects an AMI that a guard protects, nor one in a current cell', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 40 }), settingsArb, (entries, s) => {
        const amis: InventoryAmi[] = [];
        const observations: Record<string, AmiObservation> = {};
        for (const e of entries) {
          const imageId = `ami-${String(e.id).padStart(17, '0')}`;
          const a: InventoryAmi = {
            imageId,
            region: e.region,
            accountId: e.account,
            buildArn: 'arn:aws:imagebuilder:us-east-1:111111111111:image/golden/1.0.0/1',
            buildStatus: e.buildStatus,
            foundBy: e.recordedMatches ? 'recorded' : 'tag',
            recordedImageId: e.recordedMatches ? imageId : 'ami-00000000000000000',
            currentCell: e.currentCell,
          };
          amis.push(a);
          const o = e.obs;
          observations[amiKey(a)] = {
            image: !o.readable
              ? { ok: false, error: o.failureOf }
              : {
                  ok: true,
                  value: !o.exists
                    ? null
                    : {
                        ownerId: o.ownedElsewhere ? '999999999999' : e.account,
                        state: o.state,
                        creationDate: new Date(NOW.getTime() - o.ageDays * 86_400_000).toISOString(),
                        tags: o.keepTag ? { keep: 'yes' } : {},
                        deregistrationProtection: o.protectedAmi ? 'enabled' : 'disabled',
                        public: o.isPublic,
                        deprecationTime: undefined,
                        lastLaunchedTime:
                          o.launchedDaysAgo === undefined
                            ? undefined
                            : new Date(NOW.getTime() - o.launchedDaysAgo * 86_400_000).toISOString(),
                        snapshots: [],
                      },
                },
            references: o.referencesFail
              ? { ok: false, error: o.failureOf }
              : { ok: true, value: (o.references ?? []).map((t) => ({ resourceType: t, arn: 'x' })) },
            sharedWith: o.sharedFail ? { ok: false, error: o.failureOf } : { ok: true, value: o.shared },
            fastLaunch: o.fastLaunch === 'fail' ? { ok: false, error: o.failureOf } : { ok: true, value: o.fastLaunch },
            usageByOthers:
              o.usage === 'none'
                ? undefined
                : o.usage === 'fail'
                  ? { ok: false, error: o.failureOf }
                  : { ok: true, value: [{ accountId: '333333333333', resourceType: 'ec2:Instance', count: o.usage === 'used' ? 1 : 0 }] },
          };
        }
        for (const { ami: a, decision } of planCleanup(amis, observations, s, NOW)) {
          if (decision.action === 'skip') continue;
          const o = observations[amiKey(a)];
          // selected: so no guard may protect it
          expect(a.currentCell).toBe(false);
          expect(SETTLED_BUILD_STATES).toContain(a.buildStatus);
          expect(a.recordedImageId).toBe(a.imageId);
          expect(o?.image.ok).toBe(true);
          const image = o?.image.ok === true ? o.image.value : null;
          expect(image).not.toBeNull();
          expect(image?.ownerId).toBe(a.accountId);
          expect(image?.deregistrationProtection).not.toMatch(/^enabled/);
          expect(image?.tags.keep).toBeUndefined();
          expect(['available', 'disabled']).toContain(image?.state);
          expect(NOW.getTime() - Date.parse(image?.creationDate ?? '')).toBeGreaterThanOrEqual(s.minAgeDays * 86_400_000);
          if (image?.lastLaunchedTime !== undefined)
            expect(NOW.getTime() - Date.parse(image.lastLaunchedTime)).toBeGreaterThanOrEqual(s.launchedWithinDays * 86_400_000);
          expect(o?.references?.ok).toBe(true);
          expect(o?.references?.ok === true ? o.references.value : ['?']).toHaveLength(0);
          expect(o?.fastLaunch).toStrictEqual({ ok: true, value: null });
          expect(o?.sharedWith?.ok).toBe(true);
          const isShared = image?.public === true || (o?.sharedWith?.ok === true && o.sharedWith.value.length > 0);
          if (isShared) {
            // only with shared: include, and only when no other account is known to use it
            expect(s.shared).toBe('include');
            expect(o?.usageByOthers?.ok).toBe(true);
            expect(o?.usageByOthers?.ok === true ? o.usageByOthers.value.filter((u) => u.count > 0) : ['?']).toHaveLength(0);
          }
          if (s.shared === 'skip') {
            expect(o?.sharedWith?.ok).toBe(true);
            expect(o?.sharedWith?.ok === true ? o.sharedWith.value : ['?']).toHaveLength(0);
            expect(image?.public).toBe(false);
          }
          if (decision.action === 'deregister' && s.strategy === 'disable') expect(image?.state).toBe('disabled');
        }
      }),
      { numRuns: 3000 },
    );
  });
});
