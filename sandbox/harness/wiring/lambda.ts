import { randomUUID } from 'node:crypto';
import { partitionOf } from '../../emulator/partition.ts';

/** Lambda's waits before the first and second retry of a failed asynchronous invocation. */
const ASYNC_RETRY_WAITS_MS = [60_000, 120_000];

/** One function invocation, as the log and the demo see it. */
interface Invocation {
  id: string;
  function: string;
  trigger: 'eventbridge' | 'sqs' | 'schedule' | 'manual';
  startedAt: string;
  durationMs: number;
  attempt: number;
  event: unknown;
  result: unknown;
  error: string | undefined;
  /** The second delivery of the same event or message (the `duplicateDeliveries` fault). */
  duplicate: boolean;
  /** The execution environment that ran it (`<function>#<n>`), each with its own instance of the bundle. */
  environment: string;
}

type LambdaHandler = (event: unknown, context: unknown) => Promise<unknown>;

function lambdaContext(fn: string, account: string, region: string) {
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: fn,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:${partitionOf(region)}:lambda:${region}:${account}:function:${fn}`,
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${fn}`,
    logStreamName: 'sandbox',
    getRemainingTimeInMillis: () => 300_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

export { ASYNC_RETRY_WAITS_MS, lambdaContext };
export type { Invocation, LambdaHandler };
