import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  IdempotencyAlreadyInProgressError,
  IdempotencyConfig,
  IdempotencyUnknownError,
  makeIdempotent,
} from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { ReconcilerError, toFailure } from '../../lib/core/errors.ts';
import type { ReconcileDeps } from '../../lib/reconcile/reconcile.ts';
import { logger, metrics } from './runtime.ts';

/**
 * No duplicate work: EventBridge delivers an event "at least once" and a standard SQS queue may deliver a
 * message twice, so the same Image State Change, schedule tick or recheck can reach a function twice, at
 * once or later. Each is run under an idempotency record (Powertools Idempotency, DynamoDB persistence
 * layer, table RECONCILER_IDEMPOTENCY_TABLE) keyed by what identifies the delivery:
 *
 * - `ran`: the first delivery; the work ran and its result is stored for RECONCILER_IDEMPOTENCY_EXPIRY_MINUTES;
 * - `duplicate`: the work already ran for this key: its stored result, no AWS call but the store's;
 * - `in-progress`: another invocation is running the work now (Powertools' IdempotencyAlreadyInProgressError);
 *   the caller decides (reconcile drops it: the running invocation's own retries cover a failure; recheck
 *   fails the record so that SQS delivers the copy again after the visibility timeout).
 *
 * A run that throws deletes its record (Powertools does), so the trigger's retry runs the work again. When
 * the store cannot be read or written (missing grant, throttled, table gone), the delivery fails with
 * {@link IdempotencyStoreError}, logged with the table and DynamoDB's answer, so that Lambda retries it (then
 * its dead-letter queue) or SQS delivers it again: a reconcile is never dropped because the store is down.
 * An empty RECONCILER_IDEMPOTENCY_TABLE turns this off: every delivery runs.
 */

type Outcome<T> = { kind: 'ran'; result: T } | { kind: 'duplicate'; result: T } | { kind: 'in-progress' };

/** The idempotency store could not be used; the delivery is failed so that its trigger delivers it again. */
class IdempotencyStoreError extends ReconcilerError {
  constructor(message: string, cause: unknown) {
    super(message, { kind: 'error', code: 'IdempotencyStoreFailed', cause });
    this.name = 'IdempotencyStoreError';
  }
}

/** Another invocation is handling the same recheck message: this copy is failed, SQS delivers it again later. */
class DuplicateInProgressError extends ReconcilerError {
  constructor(message: string) {
    super(message, { kind: 'error', code: 'DuplicateInProgress' });
    this.name = 'DuplicateInProgressError';
  }
}

/** A JSON-safe copy: DynamoDB's marshalling refuses `undefined`, JSON drops it (the stored result is JSON anyway). */
function jsonSafe<T>(value: T): T {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as T);
}

/** What went wrong in the store: Powertools' words and DynamoDB's own error. */
function storeReason(error: Error): string {
  const inner = error.cause === undefined ? undefined : toFailure(error.cause);
  return inner === undefined ? error.message : `${error.message}: ${inner.code}: ${inner.message}`;
}

interface Idempotent {
  /**
   * Run `work` once per `key` (a JSON object naming the delivery). `context` is the Lambda context: an
   * in-progress record expires with the invocation's remaining time, so a timed-out run does not block its retry.
   */
  run<T>(deps: ReconcileDeps, key: Record<string, string | number>, context: unknown, work: () => Promise<T>): Promise<Outcome<T>>;
}

type Wrapped = (key: Record<string, string | number>, work: () => Promise<unknown>) => Promise<unknown>;

function isLambdaContext(value: unknown): value is { getRemainingTimeInMillis: () => number } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { getRemainingTimeInMillis?: unknown }).getRemainingTimeInMillis === 'function'
  );
}

/**
 * Idempotency for one function, `prefix` naming it in the record keys (`reconcile#<hash of the key>`).
 * The persistence layer is built on first use, with the DynamoDB client of the one client factory (home
 * account and region).
 */
function idempotency(prefix: string): Idempotent {
  let built: { wrapped: Wrapped; config: IdempotencyConfig } | undefined;

  const build = (deps: ReconcileDeps) => {
    const persistenceStore = new DynamoDBPersistenceLayer({
      tableName: deps.config.idempotencyTable,
      awsSdkV3Client: deps.clients.homeClient(DynamoDBClient),
    });
    const config = new IdempotencyConfig({ expiresAfterSeconds: deps.config.idempotencyExpiryMinutes * 60, throwOnNoIdempotencyKey: true });
    const wrapped = makeIdempotent(async (_key: Record<string, string | number>, work: () => Promise<unknown>) => jsonSafe(await work()), {
      persistenceStore,
      config,
      keyPrefix: prefix,
      dataIndexArgument: 0,
    });
    return { wrapped, config };
  };

  return {
    async run<T>(deps: ReconcileDeps, key: Record<string, string | number>, context: unknown, work: () => Promise<T>): Promise<Outcome<T>> {
      const table = deps.config.idempotencyTable;
      if (table === '') return { kind: 'ran', result: await work() };
      built ??= build(deps);
      if (isLambdaContext(context)) built.config.registerLambdaContext(context as never);
      let ran = false;
      let workError: unknown;
      const counted = async (): Promise<T> => {
        ran = true;
        try {
          return await work();
        } catch (error: unknown) {
          workError = error;
          throw error;
        }
      };
      try {
        const result = (await built.wrapped(key, counted)) as T;
        if (ran) return { kind: 'ran', result };
        logger.info('duplicate delivery: already handled, the stored result is returned and no work is done', {
          idempotencyKey: key,
          table,
        });
        metrics.addMetric('DuplicateDeliveries', MetricUnit.Count, 1);
        return { kind: 'duplicate', result };
      } catch (error: unknown) {
        if (error instanceof IdempotencyAlreadyInProgressError) {
          logger.info('duplicate delivery: another invocation is handling it now, no work is done', { idempotencyKey: key, table });
          metrics.addMetric('DuplicateDeliveries', MetricUnit.Count, 1);
          return { kind: 'in-progress' };
        }
        if (!(error instanceof IdempotencyUnknownError)) throw error; // the work's own error; its record is deleted
        const reason = storeReason(error);
        const failed =
          workError === undefined
            ? ''
            : ` after the run failed (${toFailure(workError).message}); a retry is blocked until the record's in-progress expiry`;
        const message = `idempotency store ${table} (RECONCILER_IDEMPOTENCY_TABLE) failed${failed}: ${reason}; the delivery fails so that it is delivered again (check the function role's dynamodb grants on the table)`;
        logger.error('idempotency store failed', {
          table,
          idempotencyKey: key,
          reason,
          ...(workError === undefined ? {} : { runFailure: toFailure(workError) }),
        });
        metrics.addMetric('IdempotencyStoreFailed', MetricUnit.Count, 1);
        throw new IdempotencyStoreError(message, error);
      }
    },
  };
}

export { DuplicateInProgressError, IdempotencyStoreError, idempotency, jsonSafe, storeReason };
export type { Idempotent, Outcome };
