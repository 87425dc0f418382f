/**
 * DynamoDB on the sandbox, as Powertools Idempotency uses it: the real persistence layer's requests
 * (PutItem with its condition and ReturnValuesOnConditionCheckFailure, UpdateItem, DeleteItem, GetItem)
 * succeed and mean what they mean in AWS; what the sandbox does not model is refused, not accepted.
 */
import { DeleteItemCommand, DynamoDBClient, GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { IdempotencyAlreadyInProgressError, IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { roleSession } from '../../sandbox/emulator/iam/roles.ts';
import { createTable } from '../../sandbox/emulator/services/dynamodb.ts';
import type { RequestRecord } from '../../sandbox/emulator/server.ts';
import { useSandbox } from '../helpers/sandbox.ts';

const ACCOUNT = '111111111111';
const TABLE = 'idempotency';

describe('DynamoDB for Powertools Idempotency', () => {
  let box: Sandbox;
  let client: DynamoDBClient;
  let requestsBefore = 0;
  const requests = (): RequestRecord[] => box.server.requests.slice(requestsBefore).filter((r) => r.service === 'dynamodb');

  const sandboxes = useSandbox();
  beforeAll(async () => {
    box = await sandboxes.start();
    createTable(box.state, ACCOUNT, 'us-east-1', TABLE, [{ name: 'id', type: 'S' }], 'expiration');
    client = new DynamoDBClient({
      endpoint: box.url,
      region: 'us-east-1',
      credentials: { accessKeyId: ACCOUNT, secretAccessKey: 'sandbox' },
      maxAttempts: 1,
    });
  });
  beforeEach(() => {
    requestsBefore = box.server.requests.length;
  });

  /** A function made idempotent the way the handlers do it: the payload's `key` is the idempotency key. */
  function idempotent<T>(fn: (payload: { key: string }) => Promise<T>, dynamo = client) {
    const persistenceStore = new DynamoDBPersistenceLayer({ tableName: TABLE, awsSdkV3Client: dynamo });
    const config = new IdempotencyConfig({ eventKeyJmesPath: 'key', expiresAfterSeconds: 3600 });
    config.registerLambdaContext({ getRemainingTimeInMillis: () => 60_000 } as never);
    return makeIdempotent(fn, { persistenceStore, config, keyPrefix: 'test' });
  }

  it('runs the function once per key: the second call returns the stored result from the failed PutItem', async () => {
    let runs = 0;
    const fn = idempotent(async ({ key }) => {
      runs += 1;
      return { done: key, nested: { list: [1, 'two'] } };
    });
    await expect(fn({ key: 'once' })).resolves.toStrictEqual({ done: 'once', nested: { list: [1, 'two'] } });
    await expect(fn({ key: 'once' })).resolves.toStrictEqual({ done: 'once', nested: { list: [1, 'two'] } });
    expect(runs).toBe(1);
    // the first put and the update succeed; the second put fails its condition and returns the item
    expect(requests().map((r) => [r.operation, r.errorCode])).toStrictEqual([
      ['PutItem', undefined],
      ['UpdateItem', undefined],
      ['PutItem', 'ConditionalCheckFailedException'],
    ]);
    const stored = [...(box.state.tables.get(`${ACCOUNT}/us-east-1/${TABLE}`)?.items.values() ?? [])].find((item) =>
      String(item.id?.S).startsWith('test#'),
    );
    expect(stored?.status).toStrictEqual({ S: 'COMPLETED' });
    expect(Number(stored?.expiration?.N)).toBeGreaterThan(Date.now() / 1000);
  });

  it('refuses a second run while the first is in progress, and lets it run once the first has failed', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let runs = 0;
    const fn = idempotent(async () => {
      runs += 1;
      if (runs === 1) {
        await held;
        throw new Error('the first run fails');
      }
      return 'second';
    });
    const first = fn({ key: 'busy' });
    await expect.poll(() => requests().some((r) => r.operation === 'PutItem' && r.errorCode === undefined)).toBe(true);
    await expect(fn({ key: 'busy' })).rejects.toBeInstanceOf(IdempotencyAlreadyInProgressError);
    release();
    await expect(first).rejects.toThrow('the first run fails');
    // the failed run deleted its record: a retry is not blocked
    expect(requests().some((r) => r.operation === 'DeleteItem' && r.errorCode === undefined)).toBe(true);
    await expect(fn({ key: 'busy' })).resolves.toBe('second');
    expect(runs).toBe(2);
  });

  it('takes over a record whose in-progress expiry has passed (a run that timed out)', async () => {
    const now = Date.now();
    await client.send(
      new PutItemCommand({
        TableName: TABLE,
        Item: {
          id: { S: 'test#stale' },
          status: { S: 'INPROGRESS' },
          expiration: { N: String(Math.round(now / 1000) + 3600) },
          in_progress_expiration: { N: String(now - 1000) },
        },
      }),
    );
    const put = (id: string) =>
      client.send(
        new PutItemCommand({
          TableName: TABLE,
          Item: { id: { S: id }, status: { S: 'INPROGRESS' }, expiration: { N: String(Math.round(now / 1000) + 3600) } },
          ExpressionAttributeNames: {
            '#id': 'id',
            '#expiry': 'expiration',
            '#in_progress_expiry': 'in_progress_expiration',
            '#status': 'status',
          },
          ExpressionAttributeValues: {
            ':now': { N: String(now / 1000) },
            ':now_in_millis': { N: String(now) },
            ':inprogress': { S: 'INPROGRESS' },
          },
          ConditionExpression:
            'attribute_not_exists(#id) OR #expiry < :now OR (#status = :inprogress AND attribute_exists(#in_progress_expiry) AND #in_progress_expiry < :now_in_millis)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
    await expect(put('test#stale')).resolves.toBeDefined();
    // now the record is in progress with no in-progress expiry and not expired: the condition fails, with the item
    const error = await put('test#stale').catch((e: unknown) => e);
    expect(error).toMatchObject({
      name: 'ConditionalCheckFailedException',
      Item: { id: { S: 'test#stale' }, status: { S: 'INPROGRESS' } },
    });
  });

  it('answers GetItem with a consistent read, and nothing for a missing key', async () => {
    await client.send(new PutItemCommand({ TableName: TABLE, Item: { id: { S: 'read' }, data: { S: 'x' } } }));
    expect(
      (await client.send(new GetItemCommand({ TableName: TABLE, Key: { id: { S: 'read' } }, ConsistentRead: true }))).Item,
    ).toStrictEqual({ id: { S: 'read' }, data: { S: 'x' } });
    expect(
      (await client.send(new GetItemCommand({ TableName: TABLE, Key: { id: { S: 'nothing' } }, ConsistentRead: true }))).Item,
    ).toBeUndefined();
  });

  it.each([
    [
      'an unused attribute name',
      { ConditionExpression: 'attribute_not_exists(#id)', ExpressionAttributeNames: { '#id': 'id', '#x': 'x' } },
      /ExpressionAttributeNames unused in expressions: keys: \{#x\}/,
    ],
    [
      'an undefined attribute value',
      { ConditionExpression: '#id = :v', ExpressionAttributeNames: { '#id': 'id' } },
      /attribute value used in expression is not defined; attribute value: :v/,
    ],
    [
      'a syntax error',
      { ConditionExpression: 'attribute_not_exists(#id) OR', ExpressionAttributeNames: { '#id': 'id' } },
      /Syntax error; token: "<EOF>"/,
    ],
    [
      'unbalanced parentheses',
      { ConditionExpression: '(attribute_not_exists(#id)', ExpressionAttributeNames: { '#id': 'id' } },
      /Syntax error/,
    ],
    [
      'BETWEEN, which the sandbox does not model',
      {
        ConditionExpression: '#n BETWEEN :a AND :b',
        ExpressionAttributeNames: { '#n': 'n' },
        ExpressionAttributeValues: { ':a': { N: '1' }, ':b': { N: '2' } },
      },
      /does not model BETWEEN/,
    ],
    [
      'begins_with, which the sandbox does not model',
      {
        ConditionExpression: 'begins_with(#id, :p)',
        ExpressionAttributeNames: { '#id': 'id' },
        ExpressionAttributeValues: { ':p': { S: 'a' } },
      },
      /does not model the function begins_with/,
    ],
    ['a plain attribute name', { ConditionExpression: 'attribute_not_exists(id)' }, /only expression attribute names \(#name\)/],
    ['the legacy Expected', { Expected: { id: { Exists: false } } }, /does not model Expected/],
    ['names without an expression', { ExpressionAttributeNames: { '#id': 'id' } }, /can only be specified when using expressions/],
  ])('refuses a PutItem with %s', async (_name, extra, message) => {
    await expect(client.send(new PutItemCommand({ TableName: TABLE, Item: { id: { S: 'refused' } }, ...extra } as never))).rejects.toThrow(
      message,
    );
    expect(requests().map((r) => r.errorCode)).toStrictEqual(['ValidationException']);
  });

  it('refuses items without their key or of the wrong key type, and unknown tables', async () => {
    await expect(client.send(new PutItemCommand({ TableName: TABLE, Item: { other: { S: 'x' } } }))).rejects.toThrow(
      'Missing the key id in the item',
    );
    await expect(client.send(new PutItemCommand({ TableName: TABLE, Item: { id: { N: '1' } } }))).rejects.toThrow(
      'Type mismatch for key id expected: S actual: N',
    );
    await expect(client.send(new GetItemCommand({ TableName: TABLE, Key: { id: { S: 'x' }, other: { S: 'y' } } }))).rejects.toThrow(
      'The provided key element does not match the schema',
    );
    await expect(client.send(new GetItemCommand({ TableName: 'nope', Key: { id: { S: 'x' } } }))).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
  });

  it('updates with SET (creating the item), refuses a key update and other clauses, and deletes', async () => {
    const names = { '#s': 'status' };
    await client.send(
      new UpdateItemCommand({
        TableName: TABLE,
        Key: { id: { S: 'upd' } },
        UpdateExpression: 'SET #s = :s',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ':s': { S: 'COMPLETED' } },
      }),
    );
    expect((await client.send(new GetItemCommand({ TableName: TABLE, Key: { id: { S: 'upd' } } }))).Item).toStrictEqual({
      id: { S: 'upd' },
      status: { S: 'COMPLETED' },
    });
    await expect(
      client.send(
        new UpdateItemCommand({
          TableName: TABLE,
          Key: { id: { S: 'upd' } },
          UpdateExpression: 'SET #id = :s',
          ExpressionAttributeNames: { '#id': 'id' },
          ExpressionAttributeValues: { ':s': { S: 'x' } },
        }),
      ),
    ).rejects.toThrow('Cannot update attribute id. This attribute is part of the key');
    await expect(
      client.send(
        new UpdateItemCommand({
          TableName: TABLE,
          Key: { id: { S: 'upd' } },
          UpdateExpression: 'REMOVE #s',
          ExpressionAttributeNames: names,
        }),
      ),
    ).rejects.toThrow('models only the SET clause');
    await client.send(new DeleteItemCommand({ TableName: TABLE, Key: { id: { S: 'upd' } } }));
    expect((await client.send(new GetItemCommand({ TableName: TABLE, Key: { id: { S: 'upd' } } }))).Item).toBeUndefined();
  });

  it('asks IAM: a role without dynamodb:PutItem on the table is refused with AccessDeniedException', async () => {
    const role = box.state.putRole(ACCOUNT, 'no-dynamodb', ['lambda.amazonaws.com']);
    role.inlinePolicies.set(
      'p',
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/${TABLE}` }],
      }),
    );
    const session = roleSession(box.state, role, 'test');
    const denied = new DynamoDBClient({ endpoint: box.url, region: 'us-east-1', credentials: session, maxAttempts: 1 });
    const fn = idempotent(async () => 'never', denied);
    const error = await fn({ key: 'denied' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'IdempotencyPersistenceLayerError' });
    expect(String((error as Error).cause)).toContain(
      `is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/${TABLE}`,
    );
    expect(requests().map((r) => [r.operation, r.errorCode])).toStrictEqual([['PutItem', 'AccessDeniedException']]);
  });
});
