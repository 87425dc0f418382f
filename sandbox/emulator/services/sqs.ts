import { createHash, randomUUID } from 'node:crypto';
import * as sqsSchemas from '@aws-sdk/client-sqs';
import type { ReceiveMessageRequest, SendMessageRequest } from '@aws-sdk/client-sqs';
import { partitionOf } from '../partition.ts';
import { AwsError } from '../protocol/errors.ts';
import { type Ctx, type ServiceDef, op } from '../server.ts';
import type { Queue, QueueMessage, SandboxState } from '../state.ts';

function md5(text: string): string {
  return createHash('md5').update(text).digest('hex');
}

function queueName(url: string | undefined): { account: string; name: string } {
  const match = /\/(\d{12})\/([\w-]{1,80})$/.exec(url ?? '');
  if (match === null) throw new AwsError('AWS.SimpleQueueService.NonExistentQueue', `The specified queue does not exist: ${url ?? ''}`);
  return { account: match[1] ?? '', name: match[2] ?? '' };
}

function findQueue(state: SandboxState, url: string | undefined): Queue {
  const { account, name } = queueName(url);
  const queue = state.queues.get(`${account}/${name}`);
  if (queue === undefined) throw new AwsError('AWS.SimpleQueueService.NonExistentQueue', 'The specified queue does not exist.');
  return queue;
}

/** Create a queue (CreateQueue and serverless.yml resources). */
function createQueue(
  state: SandboxState,
  baseUrl: string,
  account: string,
  region: string,
  name: string,
  attributes: Record<string, string> = {},
): Queue {
  const key = `${account}/${name}`;
  const existing = state.queues.get(key);
  if (existing !== undefined) return existing;
  const redrive =
    attributes.RedrivePolicy === undefined
      ? undefined
      : (JSON.parse(attributes.RedrivePolicy) as { deadLetterTargetArn: string; maxReceiveCount: number | string });
  const queue: Queue = {
    name,
    url: `${baseUrl}/${account}/${name}`,
    arn: `arn:${partitionOf(region)}:sqs:${region}:${account}:${name}`,
    accountId: account,
    region,
    visibilityTimeout: Number(attributes.VisibilityTimeout ?? 30),
    delaySeconds: Number(attributes.DelaySeconds ?? 0),
    redrive:
      redrive === undefined
        ? undefined
        : { deadLetterTargetArn: redrive.deadLetterTargetArn, maxReceiveCount: Number(redrive.maxReceiveCount) },
    messages: [],
  };
  state.queues.set(key, queue);
  return queue;
}

function sendMessage(_state: SandboxState, queue: Queue, body: string, delaySeconds: number, now: number) {
  if (delaySeconds < 0 || delaySeconds > 900)
    throw new AwsError(
      'InvalidParameterValue',
      'Value for parameter DelaySeconds is invalid. Reason: must be between 0 and 900, if provided.',
    );
  if (Buffer.byteLength(body) > 262_144)
    throw new AwsError('InvalidParameterValue', 'One or more parameters are invalid. Reason: Message must be shorter than 262144 bytes.');
  const message: QueueMessage = {
    messageId: randomUUID(),
    body,
    md5: md5(body),
    sentAt: now,
    visibleAt: now + delaySeconds * 1000,
    receiveCount: 0,
    receiptHandle: undefined,
    firstReceivedAt: undefined,
  };
  queue.messages.push(message);
  return message;
}

/** Receive visible messages, moving any received too often to the dead-letter queue. */
function receiveMessages(state: SandboxState, queue: Queue, max: number, visibilityTimeout: number, now: number) {
  const received = [];
  for (const message of [...queue.messages]) {
    if (received.length >= max) break;
    if (message.visibleAt > now) continue;
    if (queue.redrive !== undefined && message.receiveCount >= queue.redrive.maxReceiveCount) {
      const dlqName = queue.redrive.deadLetterTargetArn.split(':').at(-1) ?? '';
      const dlq = state.queues.get(`${queue.accountId}/${dlqName}`);
      queue.messages.splice(queue.messages.indexOf(message), 1);
      if (dlq !== undefined) dlq.messages.push({ ...message, receiveCount: 0, visibleAt: now, receiptHandle: undefined });
      continue;
    }
    message.receiveCount += 1;
    message.firstReceivedAt ??= now;
    message.visibleAt = now + visibilityTimeout * 1000;
    message.receiptHandle = `${message.messageId}#${message.receiveCount}`;
    received.push(message);
  }
  return received;
}

function deleteMessage(queue: Queue, receiptHandle: string | undefined): void {
  const index = queue.messages.findIndex((m) => m.receiptHandle === receiptHandle);
  if (index === -1)
    throw new AwsError('ReceiptHandleIsInvalid', `The input receipt handle "${receiptHandle ?? ''}" is not a valid receipt handle.`);
  queue.messages.splice(index, 1);
}

/**
 * Check and keep a message's attributes as SQS does: at most 10, each with a data type of String, Number
 * or Binary (optionally `.custom`) and a value that is not empty
 * (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html#sqs-message-attributes).
 * Kept as strings; binary values are not modelled.
 */
function messageAttributes(input: SendMessageRequest['MessageAttributes']): Record<string, string> | undefined {
  if (input === undefined) return undefined;
  const entries = Object.entries(input);
  if (entries.length > 10)
    throw new AwsError('InvalidParameterValue', `Number of message attributes [${entries.length}] exceeds the allowed maximum [10].`);
  const out: Record<string, string> = {};
  for (const [name, value] of entries) {
    if (!/^[A-Za-z0-9_.-]{1,256}$/.test(name) || name.startsWith('.') || name.endsWith('.'))
      throw new AwsError('InvalidParameterValue', `Message attribute name '${name}' is invalid.`);
    if (value.DataType === undefined || !/^(String|Number|Binary)(\..+)?$/.test(value.DataType))
      throw new AwsError('InvalidParameterValue', `The type of message (user) attribute '${name}' is invalid.`);
    if (!value.DataType.startsWith('Binary') && (value.StringValue === undefined || value.StringValue === '')) {
      throw new AwsError(
        'InvalidParameterValue',
        `Message (user) attribute '${name}' must contain a non-empty value of type '${value.DataType}'.`,
      );
    }
    out[name] = value.StringValue ?? '';
  }
  return out;
}

const sqs: ServiceDef = {
  name: 'sqs',
  protocol: 'json',
  namespace: 'http://queue.amazonaws.com/doc/2012-11-05/',
  schemas: sqsSchemas as unknown as Record<string, unknown>,
  handlers: {
    CreateQueue: op((ctx: Ctx, input: { QueueName?: string; Attributes?: Record<string, string> }) => {
      if (input.QueueName === undefined || !/^[\w-]{1,80}$/.test(input.QueueName))
        throw new AwsError('InvalidParameterValue', 'Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length');
      return { QueueUrl: createQueue(ctx.env.state, ctx.env.url(), ctx.account, ctx.region, input.QueueName, input.Attributes).url };
    }),
    GetQueueUrl: op((ctx: Ctx, input: { QueueName?: string }) => {
      const queue = ctx.env.state.queues.get(`${ctx.account}/${input.QueueName ?? ''}`);
      if (queue === undefined) throw new AwsError('AWS.SimpleQueueService.NonExistentQueue', 'The specified queue does not exist.');
      return { QueueUrl: queue.url };
    }),
    ListQueues: op((ctx: Ctx) => ({
      QueueUrls: [...ctx.env.state.queues.values()].filter((q) => q.accountId === ctx.account).map((q) => q.url),
    })),
    SendMessage: op((ctx: Ctx, input: SendMessageRequest) => {
      const queue = findQueue(ctx.env.state, input.QueueUrl);
      if (input.MessageBody === undefined || input.MessageBody === '')
        throw new AwsError('MissingParameter', 'The request must contain the parameter MessageBody.');
      const attributes = messageAttributes(input.MessageAttributes);
      const message = sendMessage(ctx.env.state, queue, input.MessageBody, input.DelaySeconds ?? queue.delaySeconds, ctx.env.clock.now());
      if (attributes !== undefined) message.attributes = attributes;
      return { MessageId: message.messageId, MD5OfMessageBody: message.md5 };
    }),
    ReceiveMessage: op((ctx: Ctx, input: ReceiveMessageRequest) => {
      const queue = findQueue(ctx.env.state, input.QueueUrl);
      const max = input.MaxNumberOfMessages ?? 1;
      if (max < 1 || max > 10)
        throw new AwsError(
          'InvalidParameterValue',
          'Value for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.',
        );
      const messages = receiveMessages(ctx.env.state, queue, max, input.VisibilityTimeout ?? queue.visibilityTimeout, ctx.env.clock.now());
      return {
        Messages: messages.map((m) => ({
          MessageId: m.messageId,
          ReceiptHandle: m.receiptHandle,
          MD5OfBody: m.md5,
          Body: m.body,
          Attributes: { ApproximateReceiveCount: String(m.receiveCount), SentTimestamp: String(m.sentAt) },
        })),
      };
    }),
    DeleteMessage: op((ctx: Ctx, input: { QueueUrl?: string; ReceiptHandle?: string }) => {
      deleteMessage(findQueue(ctx.env.state, input.QueueUrl), input.ReceiptHandle);
      return {};
    }),
    GetQueueAttributes: op((ctx: Ctx, input: { QueueUrl?: string }) => {
      const queue = findQueue(ctx.env.state, input.QueueUrl);
      const now = ctx.env.clock.now();
      return {
        Attributes: {
          QueueArn: queue.arn,
          ApproximateNumberOfMessages: String(queue.messages.filter((m) => m.visibleAt <= now).length),
          ApproximateNumberOfMessagesDelayed: String(queue.messages.filter((m) => m.visibleAt > now && m.receiveCount === 0).length),
          ApproximateNumberOfMessagesNotVisible: String(queue.messages.filter((m) => m.visibleAt > now && m.receiveCount > 0).length),
          VisibilityTimeout: String(queue.visibilityTimeout),
          ...(queue.redrive === undefined ? {} : { RedrivePolicy: JSON.stringify(queue.redrive) }),
        },
      };
    }),
    PurgeQueue: op((ctx: Ctx, input: { QueueUrl?: string }) => {
      findQueue(ctx.env.state, input.QueueUrl).messages = [];
      return {};
    }),
  },
};

export { createQueue, deleteMessage, receiveMessages, sendMessage, sqs };
