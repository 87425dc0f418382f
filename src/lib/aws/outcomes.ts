/**
 * The record of each build's announced outcome (src/lib/reconcile/alert.ts), kept in the idempotency table
 * (RECONCILER_IDEMPOTENCY_TABLE, with the grants the functions already have on it: GetItem, PutItem) under
 * ids of their own, `outcome#<image build ARN>#<shard>`, which no idempotency record uses. A change is
 * claimed with a conditional write before it is announced, so two runs that settle the same build at once
 * announce it once; an announcement that cannot be published gives its claim back.
 */
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import type { ClientFactory } from './clients.ts';
import { publishReport } from './outbox.ts';
import { OUTCOME_CHANGE_DETAIL_TYPE, type Settled, changeOf, outcomeChange, settledAs } from '../reconcile/alert.ts';
import type { ReconcileReport } from '../reconcile/report.ts';
import { type Failure, toFailure } from '../core/errors.ts';

/** Days a build's record is kept after its last change (DynamoDB TTL on `expiration`, as the idempotency records). */
const KEEP_DAYS = 90;

function recordId(report: ReconcileReport): string {
  return `outcome#${report.image.arn}#${report.shard?.index ?? 1}`;
}

interface Announced {
  change: 'failed' | 'recovered' | undefined;
  failure?: Failure;
}

/**
 * Announce the build's outcome on the bus when the report settles it differently from the last announcement
 * (`Image Builder Build Outcome Changed`). Never throws: what went wrong is returned for the caller to log.
 */
async function announceOutcome(
  clients: ClientFactory,
  settings: { table: string; busName: string },
  report: ReconcileReport,
  now: Date,
): Promise<Announced> {
  const settled = settledAs(report);
  if (settled === undefined || settings.table === '' || settings.busName === '') return { change: undefined };
  const dynamo = clients.homeClient(DynamoDBClient);
  const id = recordId(report);
  try {
    const got = await dynamo.send(new GetItemCommand({ TableName: settings.table, Key: { id: { S: id } }, ConsistentRead: true }));
    const stored = got.Item?.outcome?.S;
    const previous: Settled | undefined = stored === 'failed' || stored === 'ok' ? stored : undefined;
    const change = changeOf(previous, settled);
    if (change === undefined) return { change: undefined };
    // claim the change: only if the record is still what was read
    await dynamo.send(
      new PutItemCommand({
        TableName: settings.table,
        Item: {
          id: { S: id },
          outcome: { S: settled },
          runId: { S: report.runId },
          at: { S: report.finishedAt },
          expiration: { N: String(Math.floor(now.getTime() / 1000) + KEEP_DAYS * 86_400) },
        },
        ...(previous === undefined
          ? { ConditionExpression: 'attribute_not_exists(#id)', ExpressionAttributeNames: { '#id': 'id' } }
          : {
              ConditionExpression: '#outcome = :previous',
              ExpressionAttributeNames: { '#outcome': 'outcome' },
              ExpressionAttributeValues: { ':previous': { S: previous } },
            }),
      }),
    );
    const failure = await publishReport(
      clients.home(),
      settings.busName,
      OUTCOME_CHANGE_DETAIL_TYPE,
      outcomeChange(report, change, previous),
      [report.image.arn],
    );
    if (failure !== undefined) {
      // not announced: give the claim back, so that the next run that settles the build announces it
      const giveBack =
        previous === undefined
          ? dynamo.send(new DeleteItemCommand({ TableName: settings.table, Key: { id: { S: id } } }))
          : dynamo.send(new PutItemCommand({ TableName: settings.table, Item: { id: { S: id }, outcome: { S: previous } } }));
      const kept = await giveBack.then(
        () => undefined,
        (error: unknown) => toFailure(error),
      );
      return {
        change: undefined,
        failure:
          kept === undefined
            ? failure
            : {
                ...failure,
                message: `${failure.message}; the record ${id} could not be given back (${kept.message}): this change will not be announced`,
              },
      };
    }
    return { change };
  } catch (error: unknown) {
    // another run claimed the same change first: it announces it
    if (error instanceof ConditionalCheckFailedException) return { change: undefined };
    return { change: undefined, failure: toFailure(error) };
  }
}

export { announceOutcome, recordId };
