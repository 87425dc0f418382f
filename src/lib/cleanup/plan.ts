import { type Failure, briefFailure } from '../core/errors.ts';
import { amiKey as cellAmiKey } from '../core/cells.ts';
import { DISABLED_AT_TAG, LAUNCH_PERMISSIONS_TAG } from '../core/tags.ts';

/** How cleanup acts on an AMI that every guard lets go. */
type Strategy = 'deregister' | 'disable' | 'deprecate';

interface CleanupSettings {
  strategy: Strategy;
  /** Tag keys that keep an AMI, whatever the value: the deployment's, plus any a request adds. */
  keepTagKeys: string[];
  /** AMIs younger than this are kept. */
  minAgeDays: number;
  /** AMIs launched within this many days (EC2's `LastLaunchedTime`) are kept. */
  launchedWithinDays: number;
  /** AMIs shared with other accounts: kept (`skip`) or treated like the rest (`include`). */
  shared: 'skip' | 'include';
  /** Strategy `disable`: days a disabled AMI stays before a later run deregisters it. */
  disableGraceDays: number;
  /** Most AMIs one run acts on; past it, the rest is planned, not done. */
  maxPerRun: number;
}

/** An AMI of a build made with the configuration, in one (region, account). */
interface InventoryAmi {
  imageId: string;
  region: string;
  accountId: string;
  buildArn: string;
  /** The build's Image Builder state (`state.status` of GetImage); `UNKNOWN` when it was not read. */
  buildStatus: string;
  /** How it was found: recorded by Image Builder in `outputResources`, or by the reconciler's source tag. */
  foundBy: 'recorded' | 'tag';
  /** The AMI the build recorded for this cell (undefined: none). */
  recordedImageId: string | undefined;
  /** The cell is in today's configuration. */
  currentCell: boolean;
}

/** What was observed about one AMI, in its own account and region. Failed reads are data. */
interface AmiObservation {
  image:
    | {
        ok: true;
        value: {
          ownerId: string;
          state: string;
          creationDate: string | undefined;
          tags: Record<string, string>;
          deregistrationProtection: string | undefined;
          public: boolean;
          deprecationTime: string | undefined;
          lastLaunchedTime?: string | undefined;
          snapshots: { snapshotId: string; sizeGiB: number }[];
        } | null;
      }
    | { ok: false; error: Failure };
  /**
   * Resources in the owner's account that use the AMI: instances (every state but terminated), launch
   * template versions (all of them), SSM parameters, Image Builder recipes, Auto Scaling groups and launch
   * configurations, Spot Fleet and EC2 Fleet requests.
   */
  references: { ok: true; value: { resourceType: string; arn: string }[] } | { ok: false; error: Failure } | undefined;
  /** Accounts, groups and organizations it is shared with. */
  sharedWith: { ok: true; value: string[] } | { ok: false; error: Failure } | undefined;
  /** Windows Fast Launch state of the AMI (null: not enabled). */
  fastLaunch?: { ok: true; value: string | null } | { ok: false; error: Failure } | undefined;
  /** Use by other accounts (`CreateImageUsageReport`): needed before a shared AMI may go with `shared: include`. */
  usageByOthers?:
    | { ok: true; value: { accountId: string; resourceType: string; count: number }[] }
    | { ok: false; error: Failure }
    | undefined;
  /**
   * `shared: include`: the in-use check run in each account the AMI is shared with, through the reconciler's
   * role there (`checked`), or not (`checked: false`, with why: no role there, or an organization, OU or
   * `all` whose accounts cannot be listed).
   */
  shareeUse?:
    | {
        ok: true;
        value: { accountId: string; checked: boolean; references: { resourceType: string; arn: string }[]; why?: string }[];
      }
    | { ok: false; error: Failure }
    | undefined;
}

type Guard =
  | 'current-cell'
  | 'build-in-progress'
  | 'not-recorded'
  | 'unknown'
  | 'gone'
  | 'not-owned'
  | 'not-available'
  | 'protected'
  | 'keep-tag'
  | 'too-young'
  | 'recently-launched'
  | 'in-use'
  | 'shared'
  | 'grace'
  | 'fast-launch'
  | 'cannot-record'
  | 'done'
  | 'cleaned-up'
  | 'not-selected'
  | 'not-in-plan'
  | 'cap'
  | 'changed';

type Decision = { action: 'deregister' | 'disable' | 'deprecate'; reason: string } | { action: 'skip'; guard: Guard; reason: string };

interface CandidatePlan {
  ami: InventoryAmi;
  decision: Decision;
}

const DAY = 86_400_000;

/**
 * Build states after which Image Builder no longer touches the build's AMIs. In any other state (PENDING,
 * BUILDING, TESTING, DISTRIBUTING, INTEGRATING, and those a later API adds) it may still be copying or
 * sharing them, so none of them is touched.
 */
const SETTLED_BUILD_STATES: readonly string[] = ['AVAILABLE', 'FAILED', 'CANCELLED'];

/** EC2's tag restrictions (User Guide, "Tag restrictions"): 50 tags per resource, values of at most 256 characters. */
const MAX_TAGS_PER_RESOURCE = 50;
const MAX_TAG_VALUE_LENGTH = 256;

/** The tag key of part `n` (1-based) of the launch permission record: the first is the plain key, then `…:2`, `…:3`. */
function launchPermissionsTagKey(part: number): string {
  return part === 1 ? LAUNCH_PERMISSIONS_TAG : `${LAUNCH_PERMISSIONS_TAG}:${part}`;
}

/** The launch permissions recorded on an AMI by an earlier disable (every part, in order). */
function recordedLaunchPermissions(tags: Record<string, string>): string[] {
  const parts: string[] = [];
  for (let part = 1; Object.hasOwn(tags, launchPermissionsTagKey(part)); part += 1) parts.push(tags[launchPermissionsTagKey(part)] ?? '');
  return parts
    .join(',')
    .split(',')
    .filter((entry) => entry !== '');
}

/**
 * The record a disable writes before `DisableImage` removes every launch permission: what an earlier disable
 * recorded, merged with what the AMI is shared with now (a second disable after a re-enable, when EnableImage
 * restored none, keeps the first record), split into tags of at most 256 characters. Refused, with the
 * reason, when the AMI has no room for those tags (a record that cannot be kept whole is not written).
 */
function launchPermissionRecord(
  tags: Record<string, string>,
  sharedWith: string[],
): { entries: string[]; tags: { Key: string; Value: string }[] } | { refusal: string } {
  const entries = [...new Set([...recordedLaunchPermissions(tags), ...sharedWith])];
  const values: string[] = [];
  for (const entry of entries) {
    const last = values.at(-1);
    if (last !== undefined && last.length + 1 + entry.length <= MAX_TAG_VALUE_LENGTH) values[values.length - 1] = `${last},${entry}`;
    else values.push(entry);
  }
  if (values.length === 0) values.push('');
  const written = new Set([DISABLED_AT_TAG, ...values.map((_, i) => launchPermissionsTagKey(i + 1))]);
  const total = new Set([...Object.keys(tags), ...written]).size;
  if (total > MAX_TAGS_PER_RESOURCE) {
    return {
      refusal: `not disabled: recording its ${entries.length} launch permission(s) needs ${values.length} tag(s) and the AMI would have ${total}, more than EC2's ${MAX_TAGS_PER_RESOURCE} per resource; DisableImage would remove them with no record to restore them from`,
    };
  }
  return { entries, tags: values.map((Value, i) => ({ Key: launchPermissionsTagKey(i + 1), Value })) };
}

function skip(guard: Guard, reason: string): Decision {
  return { action: 'skip', guard, reason };
}

/**
 * A tag key as a person means it: Unicode compatibility forms folded (NFKC), surrounding blanks dropped, case
 * folded (upper then lower, so that `ß` and `SS` meet). A keep tag that differs only so still keeps.
 */
function foldTagKey(key: string): string {
  return key.normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC').trim();
}

/** The keep-tag skip for these tags, if any: an exact key first, then a near miss, named as such. */
function keepTagDecision(tags: Record<string, string>, keepTagKeys: string[]): Decision | undefined {
  const exact = keepTagKeys.find((key) => Object.hasOwn(tags, key));
  if (exact !== undefined) return skip('keep-tag', `tagged ${exact}=${tags[exact] ?? ''}`);
  for (const key of keepTagKeys) {
    const folded = foldTagKey(key);
    const near = Object.keys(tags).find((tag) => foldTagKey(tag) === folded);
    if (near !== undefined) {
      return skip(
        'keep-tag',
        `kept: tag '${near}' matches the keep tag ${key} after trimming, case folding and Unicode normalisation (NFKC)`,
      );
    }
  }
  return undefined;
}

/**
 * Decide what to do with one AMI. Every guard that cannot be evaluated keeps the AMI (unknown means keep),
 * and every skip carries its reason. Pure: `now` is passed in.
 */
function decide(ami: InventoryAmi, obs: AmiObservation | undefined, settings: CleanupSettings, now: Date): Decision {
  if (ami.currentCell) return skip('current-cell', `${ami.region}/${ami.accountId} is still in the distribution configuration`);
  if (!SETTLED_BUILD_STATES.includes(ami.buildStatus)) {
    return skip(
      'build-in-progress',
      `the build ${ami.buildArn} is ${ami.buildStatus}, not ${SETTLED_BUILD_STATES.join(', ')}: Image Builder may still be using its AMIs`,
    );
  }
  if (ami.recordedImageId !== ami.imageId) {
    return skip(
      'not-recorded',
      `not the AMI ${ami.buildArn} recorded for ${ami.region}/${ami.accountId} (${ami.recordedImageId ?? 'none recorded'}); found by its tag only`,
    );
  }
  if (obs === undefined) return skip('unknown', 'not observed');
  if (!obs.image.ok) return skip('unknown', `could not read the AMI (${briefFailure(obs.image.error)}): kept`);
  const image = obs.image.value;
  if (image === null) return skip('gone', 'no longer exists (already deregistered)');
  // "Recently deregistered images appear in the returned results for a short interval" (EC2 API Reference,
  // DescribeImages): one that is still listed, as `deregistered`, is gone all the same
  if (image.state === 'deregistered') return skip('gone', 'already deregistered');
  if (image.ownerId !== ami.accountId) return skip('not-owned', `owned by ${image.ownerId}, not by ${ami.accountId}`);
  if (image.state !== 'available' && image.state !== 'disabled') return skip('not-available', `the AMI is ${image.state}`);
  if (image.deregistrationProtection?.startsWith('enabled')) {
    return skip('protected', `deregistration protection is ${image.deregistrationProtection}`);
  }
  const keep = keepTagDecision(image.tags, settings.keepTagKeys);
  if (keep !== undefined) return keep;
  const created = image.creationDate === undefined ? Number.NaN : Date.parse(image.creationDate);
  if (Number.isNaN(created)) return skip('unknown', 'creation date unknown: kept');
  if (now.getTime() - created < settings.minAgeDays * DAY) {
    return skip('too-young', `created ${image.creationDate ?? ''}, younger than ${settings.minAgeDays} day(s)`);
  }
  if (obs.references === undefined) return skip('unknown', 'references not checked: kept');
  if (!obs.references.ok) return skip('unknown', `could not check what uses the AMI (${briefFailure(obs.references.error)}): kept`);
  if (obs.references.value.length > 0) {
    return skip('in-use', `in use by ${obs.references.value.map((r) => `${r.resourceType} ${r.arn}`).join(', ')}`);
  }
  // EC2 reports a launch up to a day late: a time it has not reported yet is covered by the references above
  if (image.lastLaunchedTime !== undefined) {
    const launched = Date.parse(image.lastLaunchedTime);
    if (Number.isNaN(launched)) return skip('unknown', `last launch time ${image.lastLaunchedTime} unreadable: kept`);
    if (now.getTime() - launched < settings.launchedWithinDays * DAY) {
      return skip(
        'recently-launched',
        `last launched ${image.lastLaunchedTime}, within ${settings.launchedWithinDays} day(s) (RECONCILER_CLEANUP_LAUNCHED_WITHIN_DAYS)`,
      );
    }
  }
  let sharedNote = '';
  if (obs.sharedWith === undefined) return skip('unknown', 'sharing not checked: kept');
  if (!obs.sharedWith.ok) return skip('unknown', `could not read launch permissions (${briefFailure(obs.sharedWith.error)}): kept`);
  if (image.public || obs.sharedWith.value.length > 0) {
    const whom = image.public ? 'everyone (public)' : obs.sharedWith.value.join(', ');
    if (settings.shared === 'skip') return skip('shared', `shared with ${whom}`);
    // shared: include lets a shared AMI go only when no other account is known to use it
    if (obs.usageByOthers === undefined) return skip('unknown', `shared with ${whom}; use by other accounts not checked: kept`);
    if (!obs.usageByOthers.ok)
      return skip(
        'unknown',
        `shared with ${whom}; could not tell whether other accounts use it (${briefFailure(obs.usageByOthers.error)}): kept`,
      );
    const used = obs.usageByOthers.value.filter((u) => u.count > 0);
    if (used.length > 0)
      return skip('in-use', `used by other accounts: ${used.map((u) => `${u.accountId} (${u.count} ${u.resourceType})`).join(', ')}`);
    if (obs.shareeUse === undefined) return skip('unknown', `shared with ${whom}; use in the sharing accounts not checked: kept`);
    if (!obs.shareeUse.ok)
      return skip(
        'unknown',
        `shared with ${whom}; could not check what uses it in the accounts it is shared with (${briefFailure(obs.shareeUse.error)}): kept`,
      );
    const usedThere = obs.shareeUse.value.filter((u) => u.references.length > 0);
    if (usedThere.length > 0)
      return skip(
        'in-use',
        `in use in the accounts it is shared with: ${usedThere
          .map((u) => `${u.accountId}: ${u.references.map((r) => `${r.resourceType} ${r.arn}`).join(', ')}`)
          .join('; ')}`,
      );
    // a sharee not checked through a role: kept unless the usage report is empty (above) and the AMI was not
    // launched within the guard's days (the recently-launched guard, above, which an AMI never launched passes)
    const unchecked = obs.shareeUse.value.filter((u) => !u.checked).map((u) => u.accountId);
    const checked = obs.shareeUse.value.filter((u) => u.checked).map((u) => u.accountId);
    sharedNote = `; shared with ${whom}: ${[
      checked.length > 0 ? `nothing in ${checked.join(', ')} uses it (checked through their role)` : '',
      unchecked.length > 0 || image.public
        ? `${[...unchecked, ...(image.public ? ['all'] : [])].filter((x, i, a) => a.indexOf(x) === i).join(', ')} not checked through a role: the usage report is empty and it was not launched within ${settings.launchedWithinDays} day(s)`
        : '',
    ]
      .filter((x) => x !== '')
      .join('; ')}`;
  }
  if (obs.fastLaunch === undefined) return skip('unknown', 'Fast Launch state not checked: kept');
  if (!obs.fastLaunch.ok) return skip('unknown', `could not read the Fast Launch state (${briefFailure(obs.fastLaunch.error)}): kept`);
  if (obs.fastLaunch.value !== null) {
    return skip(
      'fast-launch',
      `Windows Fast Launch is ${obs.fastLaunch.value}: disable it first (DisableFastLaunch removes its pre-provisioned snapshots), then a later run can act`,
    );
  }
  switch (settings.strategy) {
    case 'deregister':
      return {
        action: 'deregister',
        reason: `left in ${ami.region}/${ami.accountId}, a cell removed from the configuration; every guard passed${sharedNote}`,
      };
    case 'disable': {
      if (image.state !== 'disabled') {
        const record = launchPermissionRecord(image.tags, obs.sharedWith.value);
        if ('refusal' in record) return skip('cannot-record', record.refusal);
        return {
          action: 'disable',
          reason: `left in a removed cell; disabled now (reversible), deregistered after ${settings.disableGraceDays} day(s)`,
        };
      }
      const since = Date.parse(image.tags[DISABLED_AT_TAG] ?? '');
      if (Number.isNaN(since)) return skip('grace', `disabled, but not by the reconciler (no ${DISABLED_AT_TAG} tag): kept`);
      if (now.getTime() - since < settings.disableGraceDays * DAY) {
        return skip('grace', `disabled since ${new Date(since).toISOString()}; deregistered after ${settings.disableGraceDays} day(s)`);
      }
      return {
        action: 'deregister',
        reason: `disabled since ${new Date(since).toISOString()}, grace period of ${settings.disableGraceDays} day(s) over`,
      };
    }
    case 'deprecate':
      if (image.deprecationTime !== undefined && Date.parse(image.deprecationTime) <= now.getTime())
        return skip('done', `already deprecated since ${image.deprecationTime}`);
      return { action: 'deprecate', reason: "left in a removed cell; deprecated (hidden from other accounts' listings)" };
  }
}

/** Plan cleanup for an inventory. Pure. */
function planCleanup(
  amis: InventoryAmi[],
  observations: Record<string, AmiObservation>,
  settings: CleanupSettings,
  now: Date,
): CandidatePlan[] {
  return amis.map((ami) => ({ ami, decision: decide(ami, observations[amiKey(ami)], settings, now) }));
}

function amiKey(ami: Pick<InventoryAmi, 'accountId' | 'region' | 'imageId'>): string {
  return cellAmiKey(ami.region, ami.accountId, ami.imageId);
}

export {
  DISABLED_AT_TAG,
  MAX_TAGS_PER_RESOURCE,
  SETTLED_BUILD_STATES,
  amiKey,
  decide,
  foldTagKey,
  launchPermissionRecord,
  launchPermissionsTagKey,
  planCleanup,
  recordedLaunchPermissions,
};
export type { AmiObservation, CandidatePlan, CleanupSettings, Decision, Guard, InventoryAmi, Strategy };
