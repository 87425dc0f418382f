import { DeleteItemCommand, DynamoDBClient, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { ClientFactory } from '../aws/clients.ts';
import { briefFailure, toFailure } from '../core/errors.ts';

/**
 * The apply lease of a distribution configuration: one item in the deployment's table (IdempotencyTable, whose
 * key is `id` and whose TTL attribute is `expiration`, epoch seconds). Only the run that holds it may act on the
 * configuration's AMIs, so the per-run cap holds across concurrent runs (two runs capped at 1 remove at most 1).
 * A run that dies leaves a lease that expires after {@link LEASE_MS}; each action renews it first.
 */
const LEASE_MS = 15 * 60_000;

interface Lease {
  table: string;
  id: string;
  owner: string;
}

function leaseId(configurationArn: string): string {
  return `cleanup-lease#${configurationArn}`;
}

function isConditionFailed(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

/**
 * Take the lease, or say why not (another run holds it; the table cannot be used). `now` is AWS's time (the
 * runs of different machines compare their expiry on it).
 */
async function acquireLease(
  clients: ClientFactory,
  table: string,
  configurationArn: string,
  owner: string,
  now: Date,
): Promise<{ lease: Lease } | { refusal: string }> {
  const dynamodb = clients.homeClient(DynamoDBClient);
  const id = leaseId(configurationArn);
  const expiration = Math.ceil((now.getTime() + LEASE_MS) / 1000);
  try {
    // DynamoDB Developer Guide, "Condition expressions": the put succeeds only when no live lease exists
    await dynamodb.send(
      new PutItemCommand({
        TableName: table,
        Item: {
          id: { S: id },
          owner: { S: owner },
          acquiredAt: { S: now.toISOString() },
          expiration: { N: String(expiration) },
        },
        ConditionExpression: 'attribute_not_exists(#id) OR #expiration < :now',
        ExpressionAttributeNames: { '#id': 'id', '#expiration': 'expiration' },
        ExpressionAttributeValues: { ':now': { N: String(Math.floor(now.getTime() / 1000)) } },
      }),
    );
    return { lease: { table, id, owner } };
  } catch (error: unknown) {
    if (isConditionFailed(error))
      return {
        refusal: `another cleanup of this configuration is applying (its lease in ${table} is live for up to ${LEASE_MS / 60_000} minutes): nothing done in this run, so that the cap holds across runs; run again when it has finished`,
      };
    return { refusal: `could not take the apply lease in ${table} (${briefFailure(toFailure(error))}): nothing done` };
  }
}

/** Extend the lease before an action; a lease lost (expired and taken by another run) or unreachable says why. */
async function renewLease(clients: ClientFactory, lease: Lease, now: Date): Promise<string | undefined> {
  try {
    await clients.homeClient(DynamoDBClient).send(
      new UpdateItemCommand({
        TableName: lease.table,
        Key: { id: { S: lease.id } },
        UpdateExpression: 'SET #expiration = :expiration',
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#expiration': 'expiration', '#owner': 'owner' },
        ExpressionAttributeValues: {
          ':expiration': { N: String(Math.ceil((now.getTime() + LEASE_MS) / 1000)) },
          ':owner': { S: lease.owner },
        },
      }),
    );
    return undefined;
  } catch (error: unknown) {
    if (isConditionFailed(error)) return 'the apply lease expired and another run holds it now: not done';
    return `could not renew the apply lease in ${lease.table} (${briefFailure(toFailure(error))}): not done`;
  }
}

/** Give the lease back (only if still ours); a failure leaves it to expire. */
async function releaseLease(clients: ClientFactory, lease: Lease): Promise<string | undefined> {
  try {
    await clients.homeClient(DynamoDBClient).send(
      new DeleteItemCommand({
        TableName: lease.table,
        Key: { id: { S: lease.id } },
        ConditionExpression: '#owner = :owner',
        ExpressionAttributeNames: { '#owner': 'owner' },
        ExpressionAttributeValues: { ':owner': { S: lease.owner } },
      }),
    );
    return undefined;
  } catch (error: unknown) {
    if (isConditionFailed(error)) return undefined;
    return `could not release the apply lease in ${lease.table} (${briefFailure(toFailure(error))}): it expires within ${LEASE_MS / 60_000} minutes`;
  }
}

export { LEASE_MS, acquireLease, leaseId, releaseLease, renewLease };
export type { Lease };
