import * as z from 'zod';
import { parseDistributionConfigurationArn, parseImageBuildArn } from '../core/arn.ts';
import type { Config } from '../core/config.ts';
import { InputError } from '../core/errors.ts';
import { isRegionName } from '../core/regions.ts';
import type { CleanupSettings, Strategy } from './plan.ts';

/**
 * The one schema for a cleanup request, whichever way it comes: the manual payload of the `cleanup`
 * function and the CLI's options (which the CLI turns into this payload). Strict: an unknown key, a wrong
 * type, a padded or empty string, or an ARN of another partition, region or account than the
 * configuration's is rejected, naming the field, before any AWS call.
 *
 * Overrides only tighten: `guards` may add keep tags, raise the minimum age or the grace period, choose a
 * gentler strategy (deprecate < disable < deregister) or keep shared AMIs; `only` and `maxDeletions`
 * narrow what is acted on. Loosening a guard is a deployment setting and nothing else:
 * {@link effectiveSettings} refuses an override that would loosen one.
 */

/** A string as typed: not empty, no leading or trailing whitespace (a padded tag key is another key). */
const exact = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .min(1, { error: `${what} must not be empty` })
    .max(2048, { error: `${what} is too long` })
    .refine((s) => s.trim() === s, { error: `${what} must not start or end with whitespace` });

const TAG_KEY = exact('a tag key')
  .refine((s) => s.length <= 128, { error: 'a tag key has at most 128 characters' })
  .refine((s) => !s.toLowerCase().startsWith('aws:'), { error: 'tag keys starting with aws: are reserved by AWS' });
const DAYS = z
  .number({ error: 'must be a number of days' })
  .int({ error: 'must be a whole number of days' })
  .min(0, { error: 'must not be negative' })
  .max(3650, { error: 'must be at most 3650 days' });
const STRATEGY = z.enum(['deregister', 'disable', 'deprecate'], { error: 'must be deregister, disable or deprecate' });
const REGION = exact('a region').refine((s) => isRegionName(s), { error: 'must be a region name such as us-east-1' });
const ACCOUNT = z.string({ error: 'must be a string' }).regex(/^\d{12}$/, { error: 'must be a 12-digit account ID' });
const AMI_ID = z.string({ error: 'must be a string' }).regex(/^ami-[0-9a-f]{8,17}$/, { error: 'must be an AMI ID (ami-…)' });
const BUILD_ARN = exact('an image build version ARN');

const GUARDS = z
  .object({
    strategy: STRATEGY.optional(),
    /** Adds one keep tag key to the deployment's. */
    keepTagKey: TAG_KEY.optional(),
    /** Adds keep tag keys to the deployment's. */
    keepTagKeys: z.array(TAG_KEY).min(1).max(50).optional(),
    minAgeDays: DAYS.optional(),
    launchedWithinDays: DAYS.optional(),
    shared: z.enum(['skip', 'include'], { error: 'must be skip or include' }).optional(),
    disableGraceDays: DAYS.optional(),
  })
  .strict();

const ONLY = z
  .object({
    regions: z.array(REGION).min(1).max(50).optional(),
    accounts: z.array(ACCOUNT).min(1).max(1536).optional(),
    imageIds: z.array(AMI_ID).min(1).max(1000).optional(),
  })
  .strict();

/** A candidate of a reviewed plan: apply acts on these only, and re-verifies each. */
const PLANNED = z
  .object({
    imageId: AMI_ID,
    region: REGION,
    accountId: ACCOUNT,
    decision: STRATEGY,
  })
  .strict();

const PAYLOAD = z
  .object({
    distributionConfigurationArn: exact('distributionConfigurationArn'),
    mode: z.enum(['plan', 'apply'], { error: 'must be "plan" or "apply"' }).optional(),
    imageBuildArns: z.array(BUILD_ARN).max(100).optional(),
    guards: GUARDS.optional(),
    only: ONLY.optional(),
    /** Lowers the deployment's cap on deletions per run (RECONCILER_CLEANUP_MAX_PER_RUN); never raises it. */
    maxDeletions: z
      .number({ error: 'must be a number' })
      .int({ error: 'must be a whole number' })
      .min(0, { error: 'must not be negative' })
      .max(10_000)
      .optional(),
    /** A reviewed plan's candidates (from `cleanup --plan-out`): apply acts only on these. */
    plan: z.array(PLANNED).max(10_000).optional(),
  })
  .strict();

type CleanupPayload = z.infer<typeof PAYLOAD>;

/** What a request may change: every field only tightens the deployment's guards. */
interface CleanupOverrides {
  strategy?: Strategy | undefined;
  keepTagKeys?: string[] | undefined;
  minAgeDays?: number | undefined;
  launchedWithinDays?: number | undefined;
  shared?: 'skip' | 'include' | undefined;
  disableGraceDays?: number | undefined;
}

/** Narrowing: only these regions, accounts, AMIs are acted on. */
interface CleanupScope {
  regions?: string[] | undefined;
  accounts?: string[] | undefined;
  imageIds?: string[] | undefined;
}

interface PlannedCandidate {
  imageId: string;
  region: string;
  accountId: string;
  decision: Strategy;
}

interface CleanupRequest {
  distributionConfigurationArn: string;
  mode: 'plan' | 'apply';
  trigger: 'eventbridge' | 'manual' | 'cli';
  imageBuildArns?: string[] | undefined;
  overrides?: CleanupOverrides | undefined;
  only?: CleanupScope | undefined;
  maxDeletions?: number | undefined;
  /** A reviewed plan: apply acts only on these candidates. */
  plan?: PlannedCandidate[] | undefined;
}

function pathOf(path: readonly PropertyKey[]): string {
  return (
    path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
      .join('')
      .replace(/^\./, '') || '(payload)'
  );
}

/** The first problem zod found, as one line naming the field. */
function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'invalid cleanup request';
  if (issue.code === 'unrecognized_keys') {
    const where = issue.path.length === 0 ? '' : ` in ${pathOf(issue.path)}`;
    return `unknown field${issue.keys.length > 1 ? 's' : ''}${where}: ${issue.keys.join(', ')} (nothing was done)`;
  }
  return `${pathOf(issue.path)}: ${issue.message}`;
}

/**
 * Parse a cleanup payload (the manual function's event, or what the CLI builds from its options). Throws
 * {@link InputError} naming the field. Checks every ARN against the configuration's partition, region and
 * account: a build of another account cannot be made a candidate by naming it.
 */
function parseCleanupRequest(input: unknown, trigger: CleanupRequest['trigger']): CleanupRequest {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw new InputError('the cleanup payload must be a JSON object');
  const parsed = PAYLOAD.safeParse(input);
  if (!parsed.success) throw new InputError(describeIssue(parsed.error), { cause: parsed.error });
  const payload: CleanupPayload = parsed.data;
  const arn = parseDistributionConfigurationArn(payload.distributionConfigurationArn);
  const builds = (payload.imageBuildArns ?? []).map((value, i) => {
    const build = parseImageBuildArn(value);
    for (const part of ['partition', 'region', 'accountId'] as const) {
      if (build[part] !== arn[part]) {
        throw new InputError(
          `imageBuildArns[${i}]: ${part} ${build[part]} is not the configuration's (${arn[part]}); only builds made next to the configuration can be cleaned up`,
        );
      }
    }
    return build.arn;
  });
  const guards = payload.guards;
  const keepTagKeys = [...(guards?.keepTagKey === undefined ? [] : [guards.keepTagKey]), ...(guards?.keepTagKeys ?? [])];
  const mode = payload.mode ?? 'plan';
  if (payload.plan !== undefined && mode !== 'apply') throw new InputError('plan: a reviewed plan is only used with mode "apply"');
  return {
    distributionConfigurationArn: arn.arn,
    mode,
    trigger,
    imageBuildArns: builds,
    overrides: {
      strategy: guards?.strategy,
      keepTagKeys: keepTagKeys.length === 0 ? undefined : keepTagKeys,
      minAgeDays: guards?.minAgeDays,
      launchedWithinDays: guards?.launchedWithinDays,
      shared: guards?.shared,
      disableGraceDays: guards?.disableGraceDays,
    },
    only: payload.only,
    maxDeletions: payload.maxDeletions,
    plan: payload.plan,
  };
}

const GENTLENESS: Record<Strategy, number> = { deprecate: 0, disable: 1, deregister: 2 };

/** The deployment's guards (its environment), before any override. */
function deploymentSettings(config: Config): CleanupSettings {
  return {
    strategy: config.cleanupStrategy,
    keepTagKeys: [config.cleanupKeepTagKey],
    minAgeDays: config.cleanupMinAgeDays,
    launchedWithinDays: config.cleanupLaunchedWithinDays,
    shared: config.cleanupShared,
    disableGraceDays: config.cleanupDisableGraceDays,
    maxPerRun: config.cleanupMaxPerRun,
  };
}

/**
 * The guards a run uses: the deployment's, tightened by the request. An override that would loosen a
 * guard is refused with {@link InputError} naming it and the deployment setting that governs it.
 */
function effectiveSettings(config: Config, request: Pick<CleanupRequest, 'overrides' | 'maxDeletions'>): CleanupSettings {
  const base = deploymentSettings(config);
  const o = request.overrides ?? {};
  const refuse = (field: string, asked: string, setting: string, has: string, rule: string): never => {
    throw new InputError(
      `guards.${field} ${asked} would loosen the deployment's ${has} (${setting}); a request can only ${rule}. Nothing was done.`,
    );
  };
  if (o.strategy !== undefined && GENTLENESS[o.strategy] > GENTLENESS[base.strategy]) {
    refuse(
      'strategy',
      o.strategy,
      'RECONCILER_CLEANUP_STRATEGY',
      base.strategy,
      'choose a gentler strategy (deprecate < disable < deregister)',
    );
  }
  if (o.minAgeDays !== undefined && o.minAgeDays < base.minAgeDays)
    refuse('minAgeDays', String(o.minAgeDays), 'RECONCILER_CLEANUP_MIN_AGE_DAYS', String(base.minAgeDays), 'raise it');
  if (o.launchedWithinDays !== undefined && o.launchedWithinDays < base.launchedWithinDays) {
    refuse(
      'launchedWithinDays',
      String(o.launchedWithinDays),
      'RECONCILER_CLEANUP_LAUNCHED_WITHIN_DAYS',
      String(base.launchedWithinDays),
      'raise it',
    );
  }
  if (o.disableGraceDays !== undefined && o.disableGraceDays < base.disableGraceDays) {
    refuse(
      'disableGraceDays',
      String(o.disableGraceDays),
      'RECONCILER_CLEANUP_DISABLE_GRACE_DAYS',
      String(base.disableGraceDays),
      'raise it',
    );
  }
  if (o.shared === 'include' && base.shared === 'skip')
    refuse('shared', 'include', 'RECONCILER_CLEANUP_SHARED', 'skip', 'keep shared AMIs');
  if (request.maxDeletions !== undefined && request.maxDeletions > base.maxPerRun) {
    throw new InputError(
      `maxDeletions ${request.maxDeletions} would raise the deployment's cap of ${base.maxPerRun} (RECONCILER_CLEANUP_MAX_PER_RUN); a request can only lower it. Nothing was done.`,
    );
  }
  return {
    strategy: o.strategy ?? base.strategy,
    keepTagKeys: [...new Set([...base.keepTagKeys, ...(o.keepTagKeys ?? [])])],
    minAgeDays: o.minAgeDays ?? base.minAgeDays,
    launchedWithinDays: o.launchedWithinDays ?? base.launchedWithinDays,
    shared: o.shared ?? base.shared,
    disableGraceDays: o.disableGraceDays ?? base.disableGraceDays,
    maxPerRun: request.maxDeletions ?? base.maxPerRun,
  };
}

export { deploymentSettings, effectiveSettings, parseCleanupRequest };
export type { CleanupOverrides, CleanupRequest, CleanupScope, PlannedCandidate };
