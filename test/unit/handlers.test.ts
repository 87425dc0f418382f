import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { afterImageBuilder } from '../helpers/factories.ts';
import { context } from '../helpers/context.ts';
import { getTestEvent } from '../helpers/events.ts';
import { type Mocks, OWN, installWorld } from '../helpers/world.ts';

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

describe('Lambda handlers, driven by the sample events in events/', () => {
  let reconcileHandler: Handler;
  let recheckHandler: Handler;
  let mocks: Mocks;

  beforeAll(async () => {
    vi.stubEnv('RECONCILER_ACCOUNT_ID', OWN);
    vi.stubEnv('RECONCILER_EVENT_BUS', 'default');
    vi.stubEnv('RECONCILER_RECHECK_QUEUE_URL', 'https://sqs.us-east-1.amazonaws.com/111122223333/recheck');
    reconcileHandler = (await import('../../src/handlers/reconcile.ts')).handler as Handler;
    recheckHandler = (await import('../../src/handlers/recheck.ts')).handler as Handler;
  });
  afterAll(() => {
    vi.unstubAllEnvs();
  });
  beforeEach(() => {
    mocks = installWorld(afterImageBuilder());
  });
  afterEach(() => {
    for (const mock of Object.values(mocks)) mock.restore();
    vi.useRealTimers();
  });

  it('reconciles the image named by an Image State Change (AVAILABLE) event', async () => {
    const result = await reconcileHandler(getTestEvent('eventbridge/image-available'), context);
    expect(result).toMatchObject({ status: 'pending', image: 'arn:aws:imagebuilder:us-east-1:111122223333:image/golden-windows/1.0.0/3', next: { recheck: true, attempt: 2 } });
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
    ['an event without resources', (e: Record<string, unknown>) => ({ ...e, resources: [] }), /has no resources/],
    ['an image version ARN without the build number', (e: Record<string, unknown>) => ({ ...e, resources: ['arn:aws:imagebuilder:us-east-1:111122223333:image/golden-windows/1.0.0'] }), /add the build number/],
    ['another detail-type', (e: Record<string, unknown>) => ({ ...e, 'detail-type': 'EC2 Image Builder CVE Detected' }), /unsupported event/],
    ['a payload that is not an object', () => 'reconcile please', /must be a JSON object/],
  ])('rejects %s with a clear error and no retry (returns, does not throw)', async (_name, change, message) => {
    const result = await reconcileHandler(change(getTestEvent('eventbridge/image-available')), context);
    expect(result).toMatchObject({ status: 'rejected', error: expect.stringMatching(message) });
    expect(mocks.imagebuilder.calls()).toHaveLength(0);
  });

  // the sample recheck message was first seen at 2026-11-29T17:51Z: run within its deadline, not by the wall clock
  const withinDeadline = () => vi.setSystemTime(new Date('2026-11-29T18:00:00Z'));

  it('rechecks from the SQS message and requeues with the next attempt', async () => {
    withinDeadline();
    const result = await recheckHandler(getTestEvent('sqs/recheck'), context);
    expect(result).toStrictEqual({ batchItemFailures: [] });
    expect(mocks.sqs).toHaveReceivedCommandWith(SendMessageCommand, { MessageBody: expect.stringContaining('"attempt":3') });
  });

  it('keeps a recheck message when the next recheck cannot be queued (the whole batch failed: SQS delivers it again)', async () => {
    withinDeadline();
    mocks.sqs.on(SendMessageCommand).rejects(new Error('queue unavailable'));
    await expect(recheckHandler(getTestEvent('sqs/recheck'), context)).rejects.toThrow(/All records failed processing/);
  });

  it('reports a malformed recheck message as a partial batch failure, and processes the rest', async () => {
    const event = getTestEvent<SQSEvent>('sqs/recheck');
    const good = event.Records[0];
    if (good === undefined) throw new Error('fixture has no record');
    event.Records.push({ ...good, messageId: 'bad-1', body: '{"attempt": "two"' });
    const result = await recheckHandler(event, context);
    expect(result).toStrictEqual({ batchItemFailures: [{ itemIdentifier: 'bad-1' }] });
    expect(mocks.ec2).toHaveReceivedCommand(CreateTagsCommand);
  });
});
