/** SQS message attributes on the sandbox: kept with the message, and refused where SQS refuses them. */
import { CreateQueueCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { clients, useSandbox } from '../helpers/sandbox.ts';

describe('SQS message attributes', () => {
  let box: Sandbox;
  let queueUrl: string;
  const sqs = () => clients(box.url, '111111111111').sqs;

  const sandboxes = useSandbox();
  beforeAll(async () => {
    box = await sandboxes.start();
    queueUrl = (await sqs().send(new CreateQueueCommand({ QueueName: 'attrs' }))).QueueUrl ?? '';
  });

  it('keeps them with the message', async () => {
    await sqs().send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: 'x',
        MessageAttributes: { reason: { DataType: 'String', StringValue: 'because' } },
      }),
    );
    expect(box.state.queues.get('111111111111/attrs')?.messages.at(-1)?.attributes).toStrictEqual({ reason: 'because' });
  });

  it.each([
    ['an empty value', { reason: { DataType: 'String', StringValue: '' } }, /must contain a non-empty value/],
    ['an unknown data type', { reason: { DataType: 'Text', StringValue: 'x' } }, /type of message \(user\) attribute 'reason' is invalid/],
    [
      'more than 10',
      Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`a${i}`, { DataType: 'String', StringValue: 'x' }])),
      /exceeds the allowed maximum \[10\]/,
    ],
  ])('refuses %s', async (_name, attributes, message) => {
    await expect(
      sqs().send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'x', MessageAttributes: attributes })),
    ).rejects.toThrow(message);
  });
});
