/**
 * Random worlds for cleanup's planner, in process: AMIs in removed cells, each with what is true of it (the
 * consumers that use it in its own account or in an account it is shared with, a keep tag or a near miss of
 * one, deregistration protection, age, last launch, the build's state, sharing, Fast Launch), and reads that
 * fail. A world is turned into what observe would see (a failed read is a failure, a sharee without the
 * reconciler's role is not checked), planned, and judged against the truth: an AMI acted on that had to be
 * kept is a wrongful deletion; an AMI kept that was free to go, when nothing failed, is a needless keep.
 * Used by test/unit/cleanup-worlds.test.ts and `npm run worlds -- <N>`.
 */
import fc from 'fast-check';
import { type AmiObservation, type CleanupSettings, type InventoryAmi, amiKey, planCleanup } from '../../src/lib/cleanup/plan.ts';

const NOW = new Date('2026-11-29T12:00:00.000Z');
const DAY = 86_400_000;
const OWNER = '222222222222';
const KEEP = 'imagebuilder-reconciler:keep';

/** Every consumer the in-use check reads, with the resource type observe reports it as. */
const CONSUMERS = {
  instance: 'ec2:Instance',
  'launch-template': 'ec2:LaunchTemplate',
  'eks-node-group': 'ec2:LaunchTemplate',
  'ssm-parameter': 'ssm:Parameter',
  'image-recipe': 'imagebuilder:ImageRecipe',
  'container-recipe': 'imagebuilder:ContainerRecipe',
  'launch-configuration': 'autoscaling:LaunchConfiguration',
  'auto-scaling-group': 'autoscaling:AutoScalingGroup',
  'spot-fleet': 'ec2:SpotFleetRequest',
  'ec2-fleet': 'ec2:Fleet',
  'spot-request': 'ec2:SpotInstanceRequest',
  'stack-parameter': 'cloudformation:Stack',
  'stack-template': 'cloudformation:Stack',
  'batch-image': 'batch:ComputeEnvironment',
  'batch-override': 'batch:ComputeEnvironment',
  'emr-cluster': 'elasticmapreduce:Cluster',
  'emr-instance-group': 'elasticmapreduce:Cluster',
  'emr-instance-fleet': 'elasticmapreduce:Cluster',
} as const;
type Consumer = keyof typeof CONSUMERS;
/** The consumers an AMI usage report counts (CreateImageUsageReport: instances and launch templates). */
const IN_USAGE_REPORT: readonly Consumer[] = ['instance', 'launch-template', 'eks-node-group'];

/** Keep-tag keys: the exact key, near misses that still keep, and keys that only look alike (they do not). */
const TAGS = {
  none: { key: undefined, keeps: false },
  exact: { key: KEEP, keeps: true },
  'case-folded': { key: 'Imagebuilder-Reconciler:Keep', keeps: true },
  'trailing-blank': { key: `${KEEP} `, keeps: true },
  'full-width': { key: 'ｉｍａｇｅｂｕｉｌｄｅｒ-reconciler:keep', keeps: true },
  'other-key': { key: 'imagebuilder-reconciler:keeps', keeps: false },
  'dash-for-colon': { key: 'imagebuilder-reconciler-keep', keeps: false },
} as const;
type TagKind = keyof typeof TAGS;

const READS = ['image', 'references', 'sharedWith', 'fastLaunch', 'usageByOthers', 'shareeUse'] as const;
type Read = (typeof READS)[number];

const SHAREES = ['333333333333', '444444444444'] as const;

interface WorldAmi {
  consumers: Consumer[];
  /** Consumers in each sharee account (the AMI shared with it). */
  sharees: { accountId: string; hasRole: boolean; consumers: Consumer[] }[];
  public: boolean;
  tag: TagKind;
  protected: boolean;
  ageDays: number;
  launchedDaysAgo: number | undefined;
  buildStatus: string;
  fastLaunch: boolean;
  failing: Read | undefined;
}

interface World {
  settings: CleanupSettings;
  amis: WorldAmi[];
}

/** True about once in `n`. */
const rarely = (n: number) => fc.oneof({ weight: n - 1, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
const consumers = fc.subarray(Object.keys(CONSUMERS) as Consumer[], { maxLength: 2 });
const worldAmi: fc.Arbitrary<WorldAmi> = fc.record({
  // most AMIs are used by nothing, so that the free path is walked as often as the kept ones
  consumers: fc.oneof({ weight: 3, arbitrary: fc.constant([] as Consumer[]) }, { weight: 2, arbitrary: consumers }),
  sharees: fc.subarray([...SHAREES]).chain((accounts) =>
    fc.tuple(
      ...accounts.map((accountId) =>
        fc.record({
          accountId: fc.constant(accountId),
          hasRole: fc.boolean(),
          consumers: fc.oneof({ weight: 2, arbitrary: fc.constant([] as Consumer[]) }, { weight: 1, arbitrary: consumers }),
        }),
      ),
    ),
  ),
  public: rarely(5),
  tag: fc.oneof(
    { weight: 6, arbitrary: fc.constant('none' as TagKind) },
    { weight: 3, arbitrary: fc.constantFrom(...(Object.keys(TAGS) as TagKind[])) },
  ),
  protected: rarely(4),
  ageDays: fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 8, max: 400 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 8 }) }),
  launchedDaysAgo: fc.option(fc.integer({ min: 0, max: 120 }), { nil: undefined }),
  buildStatus: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('AVAILABLE', 'FAILED', 'CANCELLED') },
    { weight: 1, arbitrary: fc.constantFrom('DISTRIBUTING', 'BUILDING', 'TESTING', 'INTEGRATING', 'PENDING', 'DELETED', 'UNKNOWN') },
  ),
  fastLaunch: rarely(5),
  failing: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom(...READS) }),
});

const world: fc.Arbitrary<World> = fc.record({
  settings: fc.record({
    strategy: fc.constant('deregister' as const),
    keepTagKeys: fc.constant([KEEP]),
    minAgeDays: fc.integer({ min: 0, max: 14 }),
    launchedWithinDays: fc.integer({ min: 0, max: 60 }),
    shared: fc.constantFrom('skip' as const, 'include' as const),
    disableGraceDays: fc.constant(14),
    maxPerRun: fc.constant(1000),
  }),
  amis: fc.array(worldAmi, { minLength: 1, maxLength: 8 }),
});

const iso = (daysAgo: number) => new Date(NOW.getTime() - daysAgo * DAY).toISOString();
const failure = { kind: 'access-denied' as const, code: 'AccessDenied', message: 'denied by the world' };
const ref = (c: Consumer, where: string) => ({ resourceType: CONSUMERS[c], arn: `${where}/${c}` });

/** What observe would see of one AMI of the world. */
function observe(a: WorldAmi, settings: CleanupSettings): AmiObservation {
  const fails = (read: Read) => a.failing === read;
  const sharedWith = [...a.sharees.map((s) => s.accountId), ...(a.public ? ['all'] : [])];
  const shared = sharedWith.length > 0;
  const obs: AmiObservation = {
    image: fails('image')
      ? { ok: false, error: failure }
      : {
          ok: true,
          value: {
            ownerId: OWNER,
            state: 'available',
            creationDate: iso(a.ageDays),
            tags: TAGS[a.tag].key === undefined ? {} : { [TAGS[a.tag].key ?? '']: 'yes' },
            deregistrationProtection: a.protected ? 'enabled' : 'disabled',
            public: a.public,
            deprecationTime: undefined,
            lastLaunchedTime: a.launchedDaysAgo === undefined ? undefined : iso(a.launchedDaysAgo),
            snapshots: [],
          },
        },
    references: fails('references') ? { ok: false, error: failure } : { ok: true, value: a.consumers.map((c) => ref(c, OWNER)) },
    sharedWith: fails('sharedWith') ? { ok: false, error: failure } : { ok: true, value: sharedWith },
    fastLaunch: fails('fastLaunch') ? { ok: false, error: failure } : { ok: true, value: a.fastLaunch ? 'enabled' : null },
  };
  if (settings.shared === 'include' && shared && !fails('sharedWith')) {
    obs.usageByOthers = fails('usageByOthers')
      ? { ok: false, error: failure }
      : {
          ok: true,
          value: a.sharees.flatMap((s) =>
            s.consumers
              .filter((c) => IN_USAGE_REPORT.includes(c))
              .map((c) => ({ accountId: s.accountId, resourceType: CONSUMERS[c], count: 1 })),
          ),
        };
    obs.shareeUse = fails('shareeUse')
      ? { ok: false, error: failure }
      : {
          ok: true,
          value: [
            ...a.sharees.map((s) =>
              s.hasRole
                ? { accountId: s.accountId, checked: true, references: s.consumers.map((c) => ref(c, s.accountId)) }
                : { accountId: s.accountId, checked: false, references: [], why: 'no role' },
            ),
            ...(a.public ? [{ accountId: 'all', checked: false, references: [], why: 'not an account' }] : []),
          ],
        };
  }
  return obs;
}

/**
 * Why the AMI had to be kept, from the truth alone (not from the planner's rules), or undefined when it was
 * free to go. A sharee without the reconciler's role is seen only through what a usage report counts and
 * through EC2's last launch time: a use there that neither shows is the accepted limit, not a must-keep.
 */
function mustKeep(a: WorldAmi, s: CleanupSettings): string | undefined {
  if (!['AVAILABLE', 'FAILED', 'CANCELLED'].includes(a.buildStatus)) return `build ${a.buildStatus}`;
  if (a.consumers.length > 0) return `used by ${a.consumers.join(', ')}`;
  if (TAGS[a.tag].keeps) return `keep tag (${a.tag})`;
  if (a.protected) return 'deregistration protection';
  if (a.ageDays < s.minAgeDays) return 'too young';
  if (a.launchedDaysAgo !== undefined && a.launchedDaysAgo < s.launchedWithinDays) return 'launched lately';
  const shared = a.public || a.sharees.length > 0;
  if (shared && s.shared === 'skip') return 'shared';
  for (const sharee of a.sharees) {
    if (sharee.hasRole && sharee.consumers.length > 0) return `used in ${sharee.accountId} by ${sharee.consumers.join(', ')}`;
    if (sharee.consumers.some((c) => IN_USAGE_REPORT.includes(c))) return `used in ${sharee.accountId} (usage report)`;
  }
  if (a.fastLaunch) return 'Fast Launch';
  return undefined;
}

/** The read that failed, if observe makes it for this AMI (a usage report only for a shared AMI with shared: include). */
function failedRead(a: WorldAmi, s: CleanupSettings): Read | undefined {
  if (a.failing === 'usageByOthers' || a.failing === 'shareeUse')
    return s.shared === 'include' && (a.public || a.sharees.length > 0) ? a.failing : undefined;
  return a.failing;
}

interface Verdict {
  amis: number;
  wrongful: string[];
  needlessKeeps: string[];
}

/** Plan one world and judge it. */
function judge(w: World): Verdict {
  const inventory: InventoryAmi[] = w.amis.map((_, i) => {
    const imageId = `ami-${String(i + 1).padStart(17, '0')}`;
    return {
      imageId,
      region: 'ap-northeast-1',
      accountId: OWNER,
      buildArn: `arn:aws:imagebuilder:us-east-1:111111111111:image/base/1.0.0/${i + 1}`,
      buildStatus: w.amis[i]?.buildStatus ?? 'AVAILABLE',
      foundBy: 'recorded',
      recordedImageId: imageId,
      currentCell: false,
    };
  });
  const observations: Record<string, AmiObservation> = {};
  inventory.forEach((ami, i) => {
    const a = w.amis[i];
    if (a !== undefined) observations[amiKey(ami)] = observe(a, w.settings);
  });
  const verdict: Verdict = { amis: inventory.length, wrongful: [], needlessKeeps: [] };
  for (const [i, { decision }] of planCleanup(inventory, observations, w.settings, NOW).entries()) {
    const a = w.amis[i];
    if (a === undefined) continue;
    const keep = mustKeep(a, w.settings);
    const failed = failedRead(a, w.settings);
    if (decision.action !== 'skip' && (keep !== undefined || failed !== undefined))
      verdict.wrongful.push(
        `${decision.action} of an AMI that had to be kept (${keep ?? `${failed ?? ''} read failed`}): ${JSON.stringify(a)}`,
      );
    if (decision.action === 'skip' && keep === undefined && failed === undefined)
      verdict.needlessKeeps.push(`kept (${decision.guard}: ${decision.reason}) though free to go: ${JSON.stringify(a)}`);
  }
  return verdict;
}

export { CONSUMERS, type Verdict, type World, judge, world };
