import { ConfigError } from './errors.ts';
import { DEFAULT_KEEP_TAG } from './tags.ts';

/**
 * The reconciler's settings, read once from the environment and frozen.
 * This module is the only place that reads `process.env`; everything else receives a {@link Config}.
 * Every variable is documented in the README ("Configuration").
 */
interface Config {
  /** The account the reconciler runs in; reads there use the ambient credentials. Empty: ask STS. */
  readonly accountId: string;
  /** The region the reconciler runs in (Lambda sets AWS_REGION). */
  readonly region: string;
  /** Name of the reconciler's role in each target account (cleanup functions get the cleanup role's name here). */
  readonly targetRoleName: string;
  /** Name of the cleanup role in each target account (the CLI's cleanup assumes it). */
  readonly cleanupRoleName: string;
  /** Optional external ID for sts:AssumeRole. */
  readonly externalId: string | undefined;
  /**
   * The only accounts (besides its own) the reconciler may assume a role in; undefined: any account. A cell
   * of another account is skipped, with the reason, before any AssumeRole (RECONCILER_TARGET_ACCOUNTS,
   * comma-separated; the deployment's targetAccounts param, which also scopes the roles' sts:AssumeRole).
   */
  readonly targetAccounts: ReadonlySet<string> | undefined;
  /** `apply` (default) changes things; `plan` only reports what it would do. */
  readonly mode: 'apply' | 'plan';
  /** EventBridge bus that receives report events; empty disables publishing. */
  readonly eventBusName: string;
  /** SQS queue URL for delayed rechecks; empty disables requeueing. */
  readonly recheckQueueUrl: string;
  /** SQS queue URL a malformed recheck message is moved to at once (the recheck queue's dead-letter queue). */
  readonly recheckDeadLetterQueueUrl: string;
  /** Delay before a recheck, seconds (SQS allows 0–900). */
  readonly recheckDelaySeconds: number;
  /**
   * Most cells one invocation reconciles: a build with more is split into shards (by account, by region
   * within an account only when one account alone has more), shards 2..n sent to the recheck queue.
   */
  readonly shardMaxCells: number;
  /** Attempts (first run included) before a pending reconcile is given up. */
  readonly maxAttempts: number;
  /** Minutes after the first run after which a pending reconcile is given up. */
  readonly deadlineMinutes: number;
  /** Concurrent AWS calls per (account, region), at most (throttling lowers it for a while). */
  readonly concurrencyPerCell: number;
  /** Concurrent AWS calls in all, across every (account, region). */
  readonly maxConcurrency: number;
  /** SDK max attempts (adaptive retry) per AWS call. */
  readonly sdkMaxAttempts: number;
  /** Apply the owner's Fast Launch settings to target-account copies of the region. */
  readonly fastLaunchInheritForTargets: boolean;
  /** How many times a failed Fast Launch (enabling-failed / enabled-failed) is re-enabled. */
  readonly fastLaunchMaxRetries: number;
  /** Call RetryImage for a FAILED image with missing cells. */
  readonly retryFailedImages: boolean;
  /**
   * Accounts of `launchPermission.userIds` that receive no copy (cells of origin `shared`): `tag` gives the
   * shared AMI the amiTags in the account's own tag scope where the role can be assumed (skipped where not);
   * `require` fails such a cell instead; `off` leaves them out.
   */
  readonly sharedAccounts: 'off' | 'tag' | 'require';
  /**
   * Also the accounts of `launchPermission.organizationArns` and `organizationalUnitArns` (nested OUs included),
   * listed with AWS Organizations from the reconciler's account (it must be the organization's management
   * account or a delegated administrator); with `sharedAccounts` `off`, nothing.
   */
  readonly sharedOrganizations: boolean;
  /** Publish metrics under this namespace. */
  readonly metricsNamespace: string;
  /** Cleanup mode for the CloudTrail trigger: off, plan (default) or apply. */
  readonly cleanupMode: 'off' | 'plan' | 'apply';
  /** Tag key that protects an AMI from cleanup. */
  readonly cleanupKeepTagKey: string;
  /** Minimum AMI age in days before cleanup may touch it. */
  readonly cleanupMinAgeDays: number;
  /** AMIs launched within this many days (EC2's LastLaunchedTime, reported up to a day late) are kept. */
  readonly cleanupLaunchedWithinDays: number;
  /** What cleanup does with AMIs shared to other accounts. */
  readonly cleanupShared: 'skip' | 'include';
  /** Cleanup strategy. */
  readonly cleanupStrategy: 'deregister' | 'disable' | 'deprecate';
  /** Days a disabled AMI is kept before a later run deregisters it (strategy `disable`). */
  readonly cleanupDisableGraceDays: number;
  /** Most AMIs one cleanup run acts on; past it, the rest is planned, not done. */
  readonly cleanupMaxPerRun: number;
  /** EBS snapshot price per GiB-month, for the estimated saving. */
  readonly snapshotPricePerGbMonth: number;
  /** The scheduled sweep: off, plan (report drift only) or apply (repair it). */
  readonly sweepMode: 'off' | 'plan' | 'apply';
  /** Pipelines the sweep covers (ARNs); empty: every pipeline of the own account in the region. */
  readonly sweepPipelines: readonly string[];
  /** X-Ray tracing of the functions' AWS calls (Powertools Tracer): `Active` traces, `PassThrough` does not. */
  readonly tracing: 'Active' | 'PassThrough';
  /** Path-style S3 addressing (`<endpoint>/<bucket>/<key>`): on by default when AWS_ENDPOINT_URL names a local endpoint. */
  readonly s3ForcePathStyle: boolean;
  /**
   * DynamoDB table of the idempotency records (Powertools Idempotency) that keep a duplicate delivery of an
   * event or recheck message from doing the work again; empty: no idempotency records.
   */
  readonly idempotencyTable: string;
  /** Minutes an idempotency record is kept: a duplicate delivered later than this is handled again. */
  readonly idempotencyExpiryMinutes: number;
}

type Env = Readonly<Record<string, string | undefined>>;

function str(env: Env, key: string, fallback: string): string {
  const value = env[key];
  return value === undefined || value.trim() === '' ? fallback : value.trim();
}

function int(env: Env, key: string, fallback: number, min: number, max: number): number {
  const raw = env[key];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${key} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function num(env: Env, key: string, fallback: number): number {
  const raw = env[key];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new ConfigError(`${key} must be a non-negative number, got "${raw}"`);
  return value;
}

function bool(env: Env, key: string, fallback: boolean): boolean {
  const raw = env[key];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = raw.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(value)) return true;
  if (['false', '0', 'no'].includes(value)) return false;
  throw new ConfigError(`${key} must be true or false, got "${raw}"`);
}

function oneOf<T extends string>(env: Env, key: string, allowed: readonly T[], fallback: T): T {
  const raw = str(env, key, fallback);
  const found = allowed.find((candidate) => candidate === raw);
  if (found === undefined) throw new ConfigError(`${key} must be one of ${allowed.join(', ')}, got "${raw}"`);
  return found;
}

const ROLE_NAME = /^[\w+=,.@-]{1,64}$/;

/** A DynamoDB table name (3 to 255 of a-z, A-Z, 0-9, `_`, `-`, `.`; DynamoDB Developer Guide, naming rules), or empty. */
function idempotencyTable(env: Env): string {
  const name = str(env, 'RECONCILER_IDEMPOTENCY_TABLE', '');
  if (name !== '' && !/^[A-Za-z0-9_.-]{3,255}$/.test(name)) {
    throw new ConfigError(`RECONCILER_IDEMPOTENCY_TABLE is not a DynamoDB table name (3 to 255 of a-z, A-Z, 0-9, _, - and .): "${name}"`);
  }
  return name;
}

/**
 * Read and validate the configuration. Throws {@link ConfigError} naming the variable at fault.
 * @param env the environment (defaults to `process.env`)
 */
function loadConfig(env: Env = process.env): Config {
  const accountId = str(env, 'RECONCILER_ACCOUNT_ID', '');
  if (accountId !== '' && !/^\d{12}$/.test(accountId)) {
    throw new ConfigError(`RECONCILER_ACCOUNT_ID must be a 12-digit account ID, got "${accountId}"`);
  }
  const targetRoleName = str(env, 'RECONCILER_TARGET_ROLE_NAME', 'ImageBuilderReconcilerTarget');
  if (!ROLE_NAME.test(targetRoleName)) {
    throw new ConfigError(`RECONCILER_TARGET_ROLE_NAME is not a valid IAM role name: "${targetRoleName}"`);
  }
  const cleanupRoleName = str(env, 'RECONCILER_CLEANUP_ROLE_NAME', 'ImageBuilderReconcilerCleanup');
  if (!ROLE_NAME.test(cleanupRoleName)) {
    throw new ConfigError(`RECONCILER_CLEANUP_ROLE_NAME is not a valid IAM role name: "${cleanupRoleName}"`);
  }
  const externalId = str(env, 'RECONCILER_EXTERNAL_ID', '');
  const targetAccountList = str(env, 'RECONCILER_TARGET_ACCOUNTS', '')
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  for (const account of targetAccountList)
    if (!/^\d{12}$/.test(account))
      throw new ConfigError(`RECONCILER_TARGET_ACCOUNTS must list 12-digit account IDs separated by commas, got "${account}"`);
  return Object.freeze({
    accountId,
    region: str(env, 'AWS_REGION', str(env, 'AWS_DEFAULT_REGION', 'us-east-1')),
    targetRoleName,
    cleanupRoleName,
    externalId: externalId === '' ? undefined : externalId,
    targetAccounts: targetAccountList.length === 0 ? undefined : new Set(targetAccountList),
    mode: oneOf(env, 'RECONCILER_MODE', ['apply', 'plan'] as const, 'apply'),
    eventBusName: str(env, 'RECONCILER_EVENT_BUS', ''),
    recheckQueueUrl: str(env, 'RECONCILER_RECHECK_QUEUE_URL', ''),
    recheckDeadLetterQueueUrl: str(env, 'RECONCILER_RECHECK_DLQ_URL', ''),
    recheckDelaySeconds: int(env, 'RECONCILER_RECHECK_DELAY_SECONDS', 300, 0, 900),
    shardMaxCells: int(env, 'RECONCILER_SHARD_MAX_CELLS', 1000, 1, 10_000),
    maxAttempts: int(env, 'RECONCILER_MAX_ATTEMPTS', 12, 1, 1000),
    deadlineMinutes: int(env, 'RECONCILER_DEADLINE_MINUTES', 240, 1, 10080),
    concurrencyPerCell: int(env, 'RECONCILER_CONCURRENCY_PER_CELL', 4, 1, 64),
    maxConcurrency: int(env, 'RECONCILER_MAX_CONCURRENCY', 64, 1, 1024),
    sdkMaxAttempts: int(env, 'RECONCILER_SDK_MAX_ATTEMPTS', 5, 1, 20),
    fastLaunchInheritForTargets: bool(env, 'RECONCILER_FAST_LAUNCH_INHERIT', true),
    fastLaunchMaxRetries: int(env, 'RECONCILER_FAST_LAUNCH_MAX_RETRIES', 2, 0, 20),
    retryFailedImages: bool(env, 'RECONCILER_RETRY_FAILED_IMAGES', false),
    sharedAccounts: oneOf(env, 'RECONCILER_SHARED_ACCOUNTS', ['off', 'tag', 'require'] as const, 'tag'),
    sharedOrganizations: bool(env, 'RECONCILER_SHARED_ORGANIZATIONS', false),
    metricsNamespace: str(env, 'RECONCILER_METRICS_NAMESPACE', 'ImageBuilderReconciler'),
    cleanupMode: oneOf(env, 'RECONCILER_CLEANUP_MODE', ['off', 'plan', 'apply'] as const, 'plan'),
    cleanupKeepTagKey: str(env, 'RECONCILER_CLEANUP_KEEP_TAG', DEFAULT_KEEP_TAG),
    cleanupMinAgeDays: int(env, 'RECONCILER_CLEANUP_MIN_AGE_DAYS', 7, 0, 3650),
    cleanupLaunchedWithinDays: int(env, 'RECONCILER_CLEANUP_LAUNCHED_WITHIN_DAYS', 30, 0, 3650),
    cleanupShared: oneOf(env, 'RECONCILER_CLEANUP_SHARED', ['skip', 'include'] as const, 'skip'),
    cleanupStrategy: oneOf(env, 'RECONCILER_CLEANUP_STRATEGY', ['deregister', 'disable', 'deprecate'] as const, 'deregister'),
    cleanupDisableGraceDays: int(env, 'RECONCILER_CLEANUP_DISABLE_GRACE_DAYS', 14, 0, 3650),
    cleanupMaxPerRun: int(env, 'RECONCILER_CLEANUP_MAX_PER_RUN', 20, 0, 10_000),
    snapshotPricePerGbMonth: num(env, 'RECONCILER_SNAPSHOT_PRICE_PER_GB_MONTH', 0.05),
    sweepMode: oneOf(env, 'RECONCILER_SWEEP_MODE', ['off', 'plan', 'apply'] as const, 'apply'),
    sweepPipelines: Object.freeze(
      str(env, 'RECONCILER_SWEEP_PIPELINES', '')
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== ''),
    ),
    tracing: oneOf(env, 'RECONCILER_TRACING', ['Active', 'PassThrough'] as const, 'PassThrough'),
    // virtual-hosted S3 addresses (`<bucket>.<endpoint>`) do not resolve for a local endpoint such as the sandbox
    s3ForcePathStyle: bool(env, 'RECONCILER_S3_FORCE_PATH_STYLE', str(env, 'AWS_ENDPOINT_URL', '') !== ''),
    idempotencyTable: idempotencyTable(env),
    // 6 hours: Lambda keeps an asynchronous event for at most 6 hours (MaximumEventAgeInSeconds), so no retry
    // of an event comes later, and a recheck chain ends by RECONCILER_DEADLINE_MINUTES (240 by default)
    idempotencyExpiryMinutes: int(env, 'RECONCILER_IDEMPOTENCY_EXPIRY_MINUTES', 360, 1, 43_200),
  });
}

/** Credentials as the Lambda runtime hands them to a function. */
interface AmbientCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string | undefined;
}

/**
 * The execution role's credentials Lambda puts in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN; AWS Lambda Developer Guide, "Defined runtime environment variables"), read once at
 * cold start like the rest of the configuration; undefined when they are not set (the SDK's default chain
 * then applies).
 */
function lambdaCredentials(env: Env = process.env): AmbientCredentials | undefined {
  const accessKeyId = str(env, 'AWS_ACCESS_KEY_ID', '');
  const secretAccessKey = str(env, 'AWS_SECRET_ACCESS_KEY', '');
  if (accessKeyId === '' || secretAccessKey === '') return undefined;
  const sessionToken = str(env, 'AWS_SESSION_TOKEN', '');
  return { accessKeyId, secretAccessKey, sessionToken: sessionToken === '' ? undefined : sessionToken };
}

/** What the command line reads from its environment besides {@link Config}. */
interface CliEnvironment {
  /** NO_COLOR is set (https://no-color.org). */
  noColor: boolean;
  /** AWS_ENDPOINT_URL, when the CLI talks to the sandbox or another local AWS. */
  endpointUrl: string | undefined;
  /** AWS_PROFILE. */
  profile: string | undefined;
  /** AWS_REGION, else AWS_DEFAULT_REGION (the AWS CLI's name). */
  region: string | undefined;
  /** COLUMNS: the terminal width when stdout is not a terminal. */
  columns: number | undefined;
}

function cliEnvironment(env: Env = process.env): CliEnvironment {
  const endpoint = str(env, 'AWS_ENDPOINT_URL', '');
  const profile = str(env, 'AWS_PROFILE', '');
  const region = str(env, 'AWS_REGION', str(env, 'AWS_DEFAULT_REGION', ''));
  const columns = Number(str(env, 'COLUMNS', ''));
  return {
    noColor: env.NO_COLOR !== undefined && env.NO_COLOR !== '',
    endpointUrl: endpoint === '' ? undefined : endpoint,
    profile: profile === '' ? undefined : profile,
    region: region === '' ? undefined : region,
    columns: Number.isInteger(columns) && columns > 0 ? columns : undefined,
  };
}

/**
 * Silence the AWS SDK's Node-version notice for command-line output (the SDK reads this variable itself).
 * The project supports Node 20 and newer; Lambda runs Node 22.
 */
function quietSdkNotices(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

/**
 * Set variables in the process environment. Only the local sandbox uses it: it gives the Lambda functions
 * it runs in-process the environment Lambda would give them, before it loads their bundles.
 */
function applyEnvironment(vars: Readonly<Record<string, string>>): void {
  for (const [key, value] of Object.entries(vars)) {
    if (value === '') delete process.env[key];
    else process.env[key] = value;
  }
}

/**
 * The mode a run acts in: the deployment's mode is a ceiling. A request (a manual payload, a recheck or shard
 * message, a sweep) may lower apply to plan, never raise plan to apply: whoever may send to the queue or invoke
 * the function must not be able to lift a plan-only deployment into writing. A refused raise says so.
 */
function modeWithin(
  ceiling: 'apply' | 'plan',
  requested: 'apply' | 'plan' | undefined,
): { mode: 'apply' | 'plan'; refused: string | undefined } {
  if (requested === 'apply' && ceiling === 'plan') {
    return {
      mode: 'plan',
      refused: 'the request asked for mode apply, refused: this deployment runs in plan mode (RECONCILER_MODE=plan); planned only',
    };
  }
  return { mode: requested ?? ceiling, refused: undefined };
}

export { applyEnvironment, cliEnvironment, lambdaCredentials, loadConfig, modeWithin, quietSdkNotices };
export type { AmbientCredentials, CliEnvironment, Config, Env };
