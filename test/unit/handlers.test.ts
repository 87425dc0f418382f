import { ConditionalCheckFailedException, DynamoDBClient, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { afterImageBuilder } from '../helpers/factories.ts';
import { context } from '../helpers/context.ts';
import { getTestEvent } from '../helpers/events.ts';
import { type Mocks, OWN, installWorld } from '../helpers/world.ts';

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

/** The tests' clock: the handlers read time from their deps' clock, which the fake Date fixes here. */
const NOW = new Date('2031-06-15T12:00:00.000Z');
const DLQ = 'https://sqs.us-east-1.amazonaws.com/111122223333/recheck-dlq';

/** The sample recheck message, first seen `minutesAgo` before the tests' clock (the sample's own date is only an example). */
function recheckEvent(minutesAgo: number): SQSEvent {
  const event = getTestEvent<SQSEvent>('sqs/recheck');
  for (const record of event.Records) {
    const body = JSON.parse(record.body) as Record<string, unknown>;
    body.firstSeenAt = new Date(NOW.getTime() - minutesAgo * 60_000).toISOString();
    record.body = JSON.stringify(body);
  }
  return event;
}

describe('Lambda handlers, driven by the sample events in events/', () => {
  let reconcileHandler: Handler;
  let recheckHandler: Handler;
  let mocks: Mocks;

  beforeAll(async () => {
    vi.stubEnv('RECONCILER_ACCOUNT_ID', OWN);
    vi.stubEnv('RECONCILER_EVENT_BUS', 'default');
    vi.stubEnv('RECONCILER_RECHECK_QUEUE_URL', 'https://sqs.us-east-1.amazonaws.com/111122223333/recheck');
    vi.stubEnv('RECONCILER_RECHECK_DLQ_URL', DLQ);
    // the in-memory world does not model sharing (see testConfig)
    vi.stubEnv('RECONCILER_SHARED_ACCOUNTS', 'off');
    reconcileHandler = (await import('../../src/handlers/reconcile.ts')).handler as Handler;
    recheckHandler = (await import('../../src/handlers/recheck.ts')).handler as Handler;
  });
  afterAll(() => {
    vi.unstubAllEnvs();
  });
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'], now: NOW });
    mocks = installWorld(afterImageBuilder());
  });
  afterEach(() => {
    for (const mock of Object.values(mocks)) mock.restore();
    vi.useRealTimers();
  });

  it('reconciles the image named by an Image State Change (AVAILABLE) event', async () => {
    const result = await reconcileHandler(getTestEvent('eventbridge/image-available'), context);
    expect(result).toMatchObject({
      status: 'pending',
      image: 'arn:aws:imagebuilder:us-east-1:111122223333:image/golden-windows/1.0.0/3',
      next: { recheck: true, attempt: 2 },
    });
    expect(mocks.ec2).toHaveReceivedCommand(CreateTagsCommand);
  });

  it('reconciles a manual payload in the mode it asks for', async () => {
    const result = await reconcileHandler(getTestEvent('manual/reconcile'), context);
    expect(result).toMatchObject({ status: 'drift', mode: 'plan' });
    expect(mocks.ec2).not.toHaveReceivedCommand(CreateTagsCommand);
  });

  it('reports a FAILED event for an image it cannot find as failed, without throwing', async () => {
    const result = await reconcileHandler(getTestEvent('eventbridge/image-failed'), context);
    expect(result).toMatchObject({ status: 'failed', notes: [expect.stringMatching(/ResourceNotFoundException/)] });
  });

  it.each([
    ['an event without resources', (e: Record<string, unknown>) => ({ ...e, resources: [] }), /resources: must hold exactly one item/],
    [
      'an image version ARN without the build number',
      (e: Record<string, unknown>) => ({ ...e, resources: ['arn:aws:imagebuilder:us-east-1:111122223333:image/golden-windows/1.0.0'] }),
      /add the build number/,
    ],
    [
      'another detail-type',
      (e: Record<string, unknown>) => ({ ...e, 'detail-type': 'EC2 Image Builder CVE Detected' }),
      /unsupported event/,
    ],
    ['a payload that is not an object', () => 'reconcile please', /must be a JSON object/],
  ])('rejects %s with a clear error and no retry (returns, does not throw)', async (_name, change, message) => {
    const result = await reconcileHandler(change(getTestEvent('eventbridge/image-available')), context);
    expect(result).toMatchObject({ status: 'rejected', error: expect.stringMatching(message) });
    expect(mocks.imagebuilder.calls()).toHaveLength(0);
  });

  it('rechecks from the SQS message and requeues with the next attempt, keeping the first-seen time', async () => {
    const event = recheckEvent(5);
    const firstSeenAt = (JSON.parse(event.Records[0]?.body ?? '{}') as { firstSeenAt: string }).firstSeenAt;
    const result = await recheckHandler(event, context);
    expect(result).toStrictEqual({ batchItemFailures: [] });
    expect(mocks.sqs).toHaveReceivedCommandTimes(SendMessageCommand, 1);
    const sent = mocks.sqs.commandCalls(SendMessageCommand)[0]?.args[0].input.MessageBody ?? '{}';
    expect(JSON.parse(sent)).toMatchObject({
      attempt: 3,
      firstSeenAt,
      imageBuildVersionArn: 'arn:aws:imagebuilder:us-east-1:111122223333:image/golden-windows/1.0.0/3',
    });
  });

  it('ends a run that is still pending past the deadline (RECONCILER_DEADLINE_MINUTES, 240 by default) instead of requeueing it', async () => {
    const result = await recheckHandler(recheckEvent(241), context);
    expect(result).toStrictEqual({ batchItemFailures: [] });
    expect(mocks.sqs).not.toHaveReceivedCommand(SendMessageCommand);
    // the same message one minute inside the deadline is requeued
    await recheckHandler(recheckEvent(239), context);
    expect(mocks.sqs).toHaveReceivedCommandTimes(SendMessageCommand, 1);
  });

  it('keeps a recheck message when the next recheck cannot be queued (the whole batch failed: SQS delivers it again)', async () => {
    mocks.sqs.on(SendMessageCommand).rejects(new Error('queue unavailable'));
    await expect(recheckHandler(recheckEvent(5), context)).rejects.toThrow(/All records failed processing/);
  });

  it('moves a malformed recheck message to the dead-letter queue at once, with the reason, and processes the rest', async () => {
    const event = recheckEvent(5);
    const good = event.Records[0];
    if (good === undefined) throw new Error('fixture has no record');
    event.Records.push({ ...good, messageId: 'bad-1', body: '{"attempt": "two"' });
    const result = await recheckHandler(event, context);
    // acknowledged: SQS does not deliver it again
    expect(result).toStrictEqual({ batchItemFailures: [] });
    expect(mocks.ec2).toHaveReceivedCommand(CreateTagsCommand);
    const dead = mocks.sqs
      .commandCalls(SendMessageCommand)
      .map((c) => c.args[0].input)
      .filter((input) => input.QueueUrl === DLQ);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({
      MessageBody: '{"attempt": "two"',
      MessageAttributes: {
        reason: { StringValue: expect.stringMatching(/^malformed recheck message: Invalid JSON/) },
        sourceMessageId: { StringValue: 'bad-1' },
      },
    });
  });

  it('keeps a malformed recheck message for the queue redrive when the dead-letter queue cannot be reached', async () => {
    mocks.sqs.on(SendMessageCommand, { QueueUrl: DLQ }).rejects(new Error('queue unavailable'));
    const event = recheckEvent(5);
    const good = event.Records[0];
    if (good === undefined) throw new Error('fixture has no record');
    event.Records.push({ ...good, messageId: 'bad-1', body: '[]' });
    const result = await recheckHandler(event, context);
    expect(result).toStrictEqual({ batchItemFailures: [{ itemIdentifier: 'bad-1' }] });
  });
});

describe('Lambda handlers with idempotency records (RECONCILER_IDEMPOTENCY_TABLE)', () => {
  let reconcileHandler: Handler;
  let recheckHandler: Handler;
  let mocks: Mocks;
  const dynamodb = mockClient(DynamoDBClient);
  const expiry = String(NOW.getTime() / 1000 + 3600);
  const existing = (Item: Record<string, unknown>) =>
    new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {}, Item: Item as never });

  beforeAll(async () => {
    vi.resetModules();
    vi.stubEnv('RECONCILER_ACCOUNT_ID', OWN);
    vi.stubEnv('RECONCILER_EVENT_BUS', 'default');
    vi.stubEnv('RECONCILER_RECHECK_QUEUE_URL', 'https://sqs.us-east-1.amazonaws.com/111122223333/recheck');
    vi.stubEnv('RECONCILER_RECHECK_DLQ_URL', DLQ);
    vi.stubEnv('RECONCILER_IDEMPOTENCY_TABLE', 'records');
    vi.stubEnv('RECONCILER_SHARED_ACCOUNTS', 'off'); // the mock world shows each account only its own AMIs (see above)
    reconcileHandler = (await import('../../src/handlers/reconcile.ts')).handler as Handler;
    recheckHandler = (await import('../../src/handlers/recheck.ts')).handler as Handler;
  });
  afterAll(() => {
    vi.unstubAllEnvs();
    dynamodb.restore();
  });
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'], now: NOW });
    mocks = installWorld(afterImageBuilder());
    dynamodb.reset();
  });
  afterEach(() => {
    for (const mock of Object.values(mocks)) mock.restore();
    vi.useRealTimers();
  });

  it('runs an event once: writes the record in progress, then completes it with the summary', async () => {
    const result = await reconcileHandler(getTestEvent('eventbridge/image-available'), context);
    expect(result).toMatchObject({ status: 'pending' });
    const put = dynamodb.commandCalls(PutItemCommand)[0]?.args[0].input;
    expect(put).toMatchObject({
      TableName: 'records',
      Item: { id: { S: expect.stringMatching(/^reconcile#/) }, status: { S: 'INPROGRESS' } },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
    expect(dynamodb.commandCalls(UpdateItemCommand)[0]?.args[0].input.ExpressionAttributeValues).toMatchObject({
      ':status': { S: 'COMPLETED' },
      ':response_data': { M: { status: { S: 'pending' } } },
    });
  });

  it('answers a second delivery of a handled event from its record, with no other AWS call', async () => {
    dynamodb.on(PutItemCommand).rejects(
      existing({
        id: { S: 'reconcile#x' },
        status: { S: 'COMPLETED' },
        expiration: { N: expiry },
        data: { M: { status: { S: 'converged' } } },
      }),
    );
    const result = await reconcileHandler(getTestEvent('eventbridge/image-available'), context);
    expect(result).toMatchObject({
      status: 'duplicate',
      reason: expect.stringMatching(/was already reconciled/),
      result: { status: 'converged' },
    });
    expect(mocks.imagebuilder.calls()).toHaveLength(0);
  });

  it('does nothing for a delivery of an event another invocation is handling now', async () => {
    dynamodb.on(PutItemCommand).rejects(
      existing({
        id: { S: 'reconcile#x' },
        status: { S: 'INPROGRESS' },
        expiration: { N: expiry },
        in_progress_expiration: { N: String(NOW.getTime() + 60_000) },
      }),
    );
    const result = await reconcileHandler(getTestEvent('eventbridge/image-available'), context);
    expect(result).toMatchObject({ status: 'duplicate', reason: expect.stringMatching(/is being reconciled by another invocation/) });
    expect(mocks.imagebuilder.calls()).toHaveLength(0);
  });

  it('fails a copy of a recheck that another invocation is handling now, so that SQS delivers it again', async () => {
    dynamodb.on(PutItemCommand).rejects(
      existing({
        id: { S: 'recheck#x' },
        status: { S: 'INPROGRESS' },
        expiration: { N: expiry },
        in_progress_expiration: { N: String(NOW.getTime() + 60_000) },
      }),
    );
    await expect(recheckHandler(recheckEvent(5), context)).rejects.toThrow(/All records failed processing/);
    expect(mocks.imagebuilder.calls()).toHaveLength(0);
  });

  it("fails the delivery with the table and DynamoDB's answer when the store refuses, before any work", async () => {
    dynamodb.on(PutItemCommand).rejects(
      Object.assign(new Error('User: arn:aws:sts::111122223333:assumed-role/r/s is not authorized to perform: dynamodb:PutItem'), {
        name: 'AccessDeniedException',
      }),
    );
    await expect(reconcileHandler(getTestEvent('eventbridge/image-available'), context)).rejects.toThrow(
      /^idempotency store records \(RECONCILER_IDEMPOTENCY_TABLE\) failed: .*AccessDeniedException: User: .* is not authorized to perform: dynamodb:PutItem; the delivery fails so that it is delivered again/,
    );
    expect(mocks.imagebuilder.calls()).toHaveLength(0);
  });

  it('runs a manual payload without an idempotency record (asking again by hand means asking again)', async () => {
    const result = await reconcileHandler(getTestEvent('manual/reconcile'), context);
    expect(result).toMatchObject({ status: 'drift', mode: 'plan' });
    // no idempotency record: the only item read is the build's last announced outcome (src/lib/aws/outcomes.ts)
    expect(
      dynamodb.calls().map((c) => `${c.args[0].constructor.name} ${JSON.stringify((c.args[0].input as { Key?: unknown }).Key)}`),
    ).toStrictEqual([`GetItemCommand {"id":{"S":"outcome#${(result as { image: string }).image}#1"}}`]);
  });
});

describe('lambdaHandler: the middy chain and the parse-or-reject step every function shares', () => {
  it('answers an input error of the parse as rejected, without running; throws any other error', async () => {
    const { lambdaHandler } = await import('../../src/handlers/shared/handler.ts');
    const { InputError } = await import('../../src/lib/core/errors.ts');
    const ran: unknown[] = [];
    const handler = lambdaHandler({
      parse: (event) => {
        if (event === 'bad') throw new InputError('not an image build');
        if (event === 'broken') throw new Error('a bug');
        return { parsed: event };
      },
      run: async (input) => {
        ran.push(input);
        return { status: 'done' };
      },
    }) as unknown as Handler;
    expect(await handler('bad', context)).toStrictEqual({ status: 'rejected', error: 'not an image build' });
    await expect(handler('broken', context)).rejects.toThrow('a bug');
    expect(ran).toStrictEqual([]);
    expect(await handler('good', context)).toStrictEqual({ status: 'done' });
    expect(ran).toStrictEqual([{ parsed: 'good' }]);
  });

  it('aborts the run timeoutEarlyInMillis before Lambda would stop it', async () => {
    const { lambdaHandler } = await import('../../src/handlers/shared/handler.ts');
    const handler = lambdaHandler({
      parse: (event) => event,
      run: (_input, { signal }) => new Promise((resolve) => signal.addEventListener('abort', () => resolve({ status: 'aborted' }))),
      timeoutEarlyInMillis: 10_000,
    }) as unknown as Handler;
    // 10.05 s left: the signal fires after 50 ms
    const started = Date.now();
    const shortly = { ...context, getRemainingTimeInMillis: () => 10_050 };
    // middy answers with its own error (a TimeoutError) when the signal fires
    await expect(handler({}, shortly)).rejects.toMatchObject({ name: 'TimeoutError', message: expect.stringMatching(/aborted/) });
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
