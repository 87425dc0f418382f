import type { Context } from 'aws-lambda';

/** A Lambda context for handler tests. */
const context: Context = {
  callbackWaitsForEmptyEventLoop: true,
  functionName: 'imagebuilder-reconciler-dev-reconcile',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:111122223333:function:imagebuilder-reconciler-dev-reconcile',
  memoryLimitInMB: '512',
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
  logGroupName: '/aws/lambda/imagebuilder-reconciler-dev-reconcile',
  logStreamName: '2026/11/29/[$LATEST]abcdef',
  getRemainingTimeInMillis: () => 300_000,
  done: () => undefined,
  fail: () => undefined,
  succeed: () => undefined,
};

export { context };
