import type { GateSpec } from '../gate/stage.ts';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { HomeClients } from './clients.ts';
import { toFailure, type Failure } from '../core/errors.ts';
import { EVENT_SOURCE } from '../reconcile/report.ts';
import type { ShardSpec } from '../reconcile/fan-out.ts';

/** EventBridge's limit for one entry is 256 KiB; leave room for the envelope. */
const MAX_DETAIL_BYTES = 240 * 1024;

/**
 * Publish a report on an EventBridge bus as `source: imagebuilder-reconciler`. A report too large for one
 * event is sent as `shrink` makes it (less detail; with several steps, each is added to the ones before it
 * until the report fits) and marked `truncated: true`. Returns the failure, if
 * any: a report that cannot be published is logged by the caller, never lost silently.
 */
async function publishReport(
  clients: HomeClients,
  busName: string,
  detailType: string,
  report: object,
  resources: string[],
  shrink: ((report: object) => object) | ((report: object) => object)[] = () => ({}),
): Promise<Failure | undefined> {
  let detail = JSON.stringify(report);
  // each step replaces more fields with less detail (on top of the steps before it), until the report fits
  let current: object = report;
  for (const step of Array.isArray(shrink) ? shrink : [shrink]) {
    if (Buffer.byteLength(detail) <= MAX_DETAIL_BYTES) break;
    current = { ...current, ...step(report), truncated: true };
    detail = JSON.stringify(current);
  }
  try {
    const out = await clients.eventBridge.send(
      new PutEventsCommand({
        Entries: [{ EventBusName: busName, Source: EVENT_SOURCE, DetailType: detailType, Detail: detail, Resources: resources }],
      }),
    );
    const failed = out.Entries?.find((entry) => entry.ErrorCode !== undefined);
    if ((out.FailedEntryCount ?? 0) > 0 || failed !== undefined) {
      return {
        kind: 'error',
        code: failed?.ErrorCode ?? 'PutEventsFailed',
        message: failed?.ErrorMessage ?? 'PutEvents rejected the report',
      };
    }
    return undefined;
  } catch (error: unknown) {
    return toFailure(error);
  }
}

/** A delayed request to reconcile an image build again (the recheck queue's message body). */
interface RecheckMessage {
  imageBuildVersionArn: string;
  attempt: number;
  firstSeenAt: string;
  mode: 'apply' | 'plan';
  fastLaunchRetries: Record<string, number>;
  /** Only this shard's cells (a build split past RECONCILER_SHARD_MAX_CELLS). */
  shard?: ShardSpec;
  /** A distribution gate's waiting step and the copies it judges (docs/gate.md). */
  gate?: GateSpec;
}

/** Send a recheck message with a delay. Throws the SDK error wrapped, so the caller can report it. */
async function sendRecheck(clients: HomeClients, queueUrl: string, message: RecheckMessage, delaySeconds: number): Promise<void> {
  await clients.sqs.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: JSON.stringify(message),
      DelaySeconds: Math.max(0, Math.min(900, Math.round(delaySeconds))),
    }),
  );
}

/**
 * Move a message that can never be processed to a dead-letter queue, with why as message attributes
 * (SQS allows 10 attributes; each value here is bounded). Throws the SDK error.
 */
async function sendToDeadLetter(clients: HomeClients, queueUrl: string, body: string, attributes: Record<string, string>): Promise<void> {
  await clients.sqs.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: body === '' ? '(empty message)' : body,
      MessageAttributes: Object.fromEntries(
        Object.entries(attributes)
          .slice(0, 10)
          .map(([key, value]) => [key, { DataType: 'String', StringValue: value === '' ? '-' : value.slice(0, 1024) }]),
      ),
    }),
  );
}

export { publishReport, sendRecheck, sendToDeadLetter };
export type { RecheckMessage };
