/**
 * The input schemas of the reconcile triggers, one per trigger, parsed with Powertools Parser and zod:
 *
 * - the `EC2 Image Builder Image State Change` event (EventBridge);
 * - the manual payload `{ "imageBuildVersionArn": "…", "mode": "plan" }`, and the manual revoke payload
 *   `{ "action": "revoke" | "unrevoke", "imageBuildVersionArn": "…", "apply": true, "reason": "…", "disable": true }`;
 * - the recheck message the reconciler itself puts on its queue (with a `shard` when it carries one shard of
 *   a build split past RECONCILER_SHARD_MAX_CELLS).
 *
 * Each is strict (except new fields in an AWS event's `detail`, which AWS may add at any time): unknown keys, wrong types, out-of-range numbers and values that cannot be true (a
 * first-seen time in the future or before Image Builder existed, an attempt past the configured maximum,
 * an ARN in another partition than the deployment's) are rejected with one bounded line naming them.
 */
import { parse } from '@aws-lambda-powertools/parser';
import { JSONStringified } from '@aws-lambda-powertools/parser/helpers';
import { EventBridgeSchema } from '@aws-lambda-powertools/parser/schemas/eventbridge';
import * as z from 'zod';
import { type ImageBuildArn, parseImageBuildArn } from '../core/arn.ts';
import { InputError } from '../core/errors.ts';
import { AccountId, CellKey, Region, issuesOf, quote, summarizeIssues } from '../core/input.ts';
import type { ReconcileRequest } from './reconcile.ts';
import type { RevokeRequest } from '../revoke/revoke.ts';

/** The detail-type of Image Builder's state-change event. */
const IMAGE_STATE_CHANGE = 'EC2 Image Builder Image State Change';

/** Statuses that act; every other status (BUILDING, TESTING, …) is ignored without an AWS call. */
const ACTING_STATUSES = ['AVAILABLE', 'FAILED'] as const;

/** Image Builder was announced in December 2019: no image build was first seen before 2019. */
const EARLIEST = Date.parse('2019-01-01T00:00:00.000Z');

/** Clock skew allowed between the function that queued a recheck and the one that reads it. */
const SKEW_MS = 60_000;

/** The most characters an ARN has in Image Builder's API model (`ImageBuildVersionArn`: 1024). */
const ARN_MAX = 1024;

/** Image Builder's status values are upper-case words (`AVAILABLE`, `DISTRIBUTING`, …). */
const Status = z.string().regex(/^[A-Z_]{1,32}$/, 'must be an Image Builder status such as AVAILABLE');
const State = z.strictObject({ status: Status, reason: z.string().max(4096).optional() });
const Mode = z.enum(['apply', 'plan']);

/** What the schemas need from the deployment. */
interface SchemaContext {
  /** The deployment's partition (`aws`, `aws-cn`, …): an ARN of another is rejected. */
  partition: string;
}

interface RecheckContext extends SchemaContext {
  /** The injected clock: a first-seen time after it cannot be true. */
  now: () => Date;
  /** RECONCILER_MAX_ATTEMPTS: a recheck is never queued with a larger attempt. */
  maxAttempts: number;
}

/** An image build version ARN in the deployment's partition, parsed. */
function imageBuildArn(partition: string) {
  return z
    .string()
    .max(ARN_MAX, `an ARN is at most ${ARN_MAX} characters`)
    .transform((value, ctx): ImageBuildArn => {
      let arn: ImageBuildArn;
      try {
        arn = parseImageBuildArn(value);
      } catch (error: unknown) {
        if (!(error instanceof InputError)) throw error;
        ctx.addIssue({ code: 'custom', message: error.message });
        return z.NEVER;
      }
      if (arn.partition !== partition) {
        ctx.addIssue({ code: 'custom', message: `the ARN is in partition ${arn.partition}, but this deployment runs in ${partition}` });
        return z.NEVER;
      }
      return arn;
    });
}

function imageStateChangeSchema(partition: string) {
  return z
    .strictObject({
      ...EventBridgeSchema.shape,
      version: z.literal('0'),
      id: z.string().min(1).max(128),
      source: z.literal('aws.imagebuilder'),
      'detail-type': z.literal(IMAGE_STATE_CHANGE),
      account: AccountId,
      region: Region,
      // checked for its length before its items, so a huge list costs one issue, not one per item
      resources: z
        .array(z.unknown())
        .length(1, 'must hold exactly one item, the image build version ARN')
        .pipe(z.tuple([imageBuildArn(partition)])),
      // AWS adds fields to a service's event detail over time (EventBridge's event-structure reference tells
      // consumers to ignore fields they do not know): unknown detail keys are tolerated, never a rejected
      // build; the state itself keeps its documented shape
      detail: z.looseObject({ 'previous-state': State.optional(), state: State }),
    })
    .superRefine((event, ctx) => {
      // zod runs this refinement even when a field failed; then there is nothing to compare
      const arn = Array.isArray(event.resources) ? (event.resources[0] as ImageBuildArn | undefined) : undefined;
      if (arn === undefined || typeof arn !== 'object') return;
      if (arn.region !== event.region || arn.accountId !== event.account) {
        ctx.addIssue({
          code: 'custom',
          path: ['resources', 0],
          message: `the image build is in ${arn.region}/${arn.accountId}, but the event came from ${event.region}/${event.account}`,
        });
      }
    });
}

function manualSchema(partition: string) {
  return z.strictObject({ imageBuildVersionArn: imageBuildArn(partition), mode: Mode.optional() });
}

/**
 * The manual revoke (and unrevoke) payload: `{ "action": "revoke", "imageBuildVersionArn": "…", "apply": true }`.
 * Only a manual invocation can revoke: an EventBridge event or a recheck message never has these fields, and
 * their schemas are strict. Planned unless `apply` is true (and the deployment's mode is apply).
 */
function revokeSchema(partition: string) {
  return z.strictObject({
    action: z.enum(['revoke', 'unrevoke']),
    imageBuildVersionArn: imageBuildArn(partition),
    apply: z.boolean().optional(),
    reason: z.string().max(200, 'must be at most 200 characters (it is kept in a tag)').optional(),
    disable: z.boolean().optional(),
  });
}

/** A run id as the reconciler makes them (a UUID in Lambda); bounded, printable. */
const RunId = z.string().regex(/^[\w.:-]{1,128}$/, 'must be a run id (letters, digits, . : _ -, at most 128)');

/** The most accounts, and regions, one shard names (RECONCILER_SHARD_MAX_CELLS is at most 10,000). */
const SHARD_MAX_ACCOUNTS = 10_000;
const SHARD_MAX_REGIONS = 64;

/** Which cells a recheck message covers, when the build was split into shards (see reconcile/shards.ts). */
const ShardSchema = z
  .strictObject({
    runId: RunId,
    index: z.int().min(1),
    count: z.int().min(2, 'must be at least 2 (one shard is no split)').max(SHARD_MAX_ACCOUNTS),
    accounts: z.array(AccountId).min(1).max(SHARD_MAX_ACCOUNTS),
    regions: z.array(Region).min(1).max(SHARD_MAX_REGIONS).optional(),
  })
  .superRefine((shard, ctx) => {
    if (typeof shard.index === 'number' && typeof shard.count === 'number' && shard.index > shard.count) {
      ctx.addIssue({ code: 'custom', path: ['index'], message: `shard ${shard.index} of ${shard.count} cannot be` });
    }
    if (Array.isArray(shard.regions) && Array.isArray(shard.accounts) && shard.accounts.length !== 1) {
      ctx.addIssue({ code: 'custom', path: ['regions'], message: 'only a shard of one account (split by region) names regions' });
    }
  });

function recheckSchema(context: RecheckContext) {
  return z.strictObject({
    imageBuildVersionArn: imageBuildArn(context.partition),
    attempt: z.int().min(1).max(context.maxAttempts, `must be at most ${context.maxAttempts} (RECONCILER_MAX_ATTEMPTS)`),
    firstSeenAt: z.iso.datetime({ offset: true }).refine(
      (value) => {
        const at = Date.parse(value);
        return at >= EARLIEST && at <= context.now().getTime() + SKEW_MS;
      },
      { message: 'must be a time between 2019 and now' },
    ),
    mode: Mode.optional(),
    fastLaunchRetries: z
      .record(CellKey, z.int().min(0).max(100))
      .refine((value) => Object.keys(value).length <= 5000, 'has too many cells')
      .optional(),
    shard: ShardSchema.optional(),
  });
}

/** Parse with Powertools Parser; a failure becomes an {@link InputError} of one bounded line. */
function parseOrReject<T extends z.ZodType>(data: unknown, schema: T, what: string): z.output<T> {
  // Powertools infers through Standard Schema, which for a zod schema is its output type
  const result = parse(data, undefined, schema, true);
  if (result.success) return result.data as z.output<T>;
  const issues = issuesOf(result.error);
  throw new InputError(`${what}: ${issues === undefined ? result.error.message : summarizeIssues(issues)}`, { cause: result.error });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What the reconcile function does with an input: run a request, or ignore an event that does not act. */
type ReconcileInput =
  | {
      kind: 'run';
      request: ReconcileRequest;
      status: string | undefined;
      /** The EventBridge event's `id` (every delivery of one event carries it); undefined for a manual payload. */
      eventId: string | undefined;
    }
  | { kind: 'ignored'; status: string; reason: string }
  | { kind: 'revoke'; request: RevokeRequest };

/**
 * Narrow what the reconcile function receives: an `EC2 Image Builder Image State Change` event (the image
 * build ARN is in `resources[0]`; the event carries no AMI IDs) or a manual payload. An event whose status
 * is neither AVAILABLE nor FAILED is `ignored`. Throws {@link InputError} naming what is wrong.
 */
function toReconcileInput(event: unknown, context: SchemaContext): ReconcileInput {
  if (!isRecord(event))
    throw new InputError(
      `the event must be a JSON object, got ${event === null ? 'null' : Array.isArray(event) ? 'an array' : `a ${typeof event}`}`,
    );
  if ('detail-type' in event || 'source' in event) {
    if (event.source !== 'aws.imagebuilder' || event['detail-type'] !== IMAGE_STATE_CHANGE) {
      throw new InputError(
        `unsupported event: source ${quote(event.source, 60)}, detail-type ${quote(event['detail-type'], 80)}; expected aws.imagebuilder "${IMAGE_STATE_CHANGE}"`,
      );
    }
    const parsed = parseOrReject(event, imageStateChangeSchema(context.partition), 'malformed Image State Change event');
    const status = parsed.detail.state.status;
    if (!(ACTING_STATUSES as readonly string[]).includes(status)) {
      return { kind: 'ignored', status, reason: `status ${status}: only ${ACTING_STATUSES.join(' and ')} are reconciled` };
    }
    return { kind: 'run', status, eventId: parsed.id, request: { imageBuildVersionArn: parsed.resources[0].arn, trigger: 'eventbridge' } };
  }
  if ('action' in event) {
    const revoke = parseOrReject(event, revokeSchema(context.partition), 'malformed revoke payload');
    if (revoke.action === 'unrevoke' && revoke.disable !== undefined)
      throw new InputError('malformed revoke payload: disable: only a revoke retires AMIs; unrevoke takes no disable');
    return {
      kind: 'revoke',
      request: {
        action: revoke.action,
        imageBuildVersionArn: revoke.imageBuildVersionArn.arn,
        mode: revoke.apply === true ? 'apply' : 'plan',
        reason: revoke.reason,
        disable: revoke.disable,
        trigger: 'manual',
      },
    };
  }
  const parsed = parseOrReject(event, manualSchema(context.partition), 'malformed manual payload');
  return {
    kind: 'run',
    status: undefined,
    eventId: undefined,
    request: { imageBuildVersionArn: parsed.imageBuildVersionArn.arn, trigger: 'manual', mode: parsed.mode },
  };
}

/** Parse a recheck queue message body. Throws {@link InputError} naming what is wrong. */
function toRecheckRequest(body: string, context: RecheckContext): ReconcileRequest {
  const parsed = parseOrReject(body, JSONStringified(recheckSchema(context)), 'malformed recheck message');
  return {
    imageBuildVersionArn: parsed.imageBuildVersionArn.arn,
    trigger: 'sqs',
    attempt: parsed.attempt,
    firstSeenAt: parsed.firstSeenAt,
    mode: parsed.mode,
    fastLaunchRetries: parsed.fastLaunchRetries ?? {},
    ...(parsed.shard === undefined ? {} : { shard: parsed.shard }),
  };
}

export { ACTING_STATUSES, IMAGE_STATE_CHANGE, imageBuildArn, parseOrReject, toReconcileInput, toRecheckRequest };
export type { ReconcileInput, RecheckContext, SchemaContext };
