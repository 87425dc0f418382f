/**
 * A malformed recheck message on the deployed wiring (serverless.yml's queues, environment and event
 * source mapping, run by the sandbox): the recheck function moves it to the dead-letter queue at its first
 * receive, and SQS never delivers it again.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { buildBundles } from '../helpers/build.ts';
import { clients, demoScenario, useSandbox } from '../helpers/sandbox.ts';
import { waitFor } from '../helpers/wait.ts';

describe('a malformed recheck message on the deployed wiring', () => {
  let box: Sandbox | undefined;

  beforeAll(() => buildBundles(), 120_000);
  const sandboxes = useSandbox('each');

  it('goes to RecheckDeadLetterQueue at the first receive, whole, and is not delivered again', async () => {
    box = await sandboxes.start({ scenario: demoScenario(), wire: true, clockSpeed: 3000 });
    const queue = box.wiring?.queues.get('RecheckQueue');
    const dlq = box.wiring?.queues.get('RecheckDeadLetterQueue');
    if (queue === undefined || dlq === undefined) throw new Error('serverless.yml has no RecheckQueue / RecheckDeadLetterQueue');
    const body = JSON.stringify({
      imageBuildVersionArn: 'arn:aws:imagebuilder:us-east-1:111111111111:image/golden-windows/1.0.0/1',
      attempt: 2,
      firstSeenAt: '9999-12-31T23:59:59.000Z',
    });
    await clients(box.url, box.home.account, box.home.region).sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: body }));

    const dead = await waitFor('the message in the dead-letter queue', () => dlq.messages.find((m) => m.body === body));
    await box.idle();
    const invocations = (box.wiring?.invocations ?? []).filter((i) => i.function.endsWith('recheck'));
    expect(invocations).toHaveLength(1);
    expect(invocations[0]?.result).toStrictEqual({ batchItemFailures: [] });
    expect(queue.messages).toHaveLength(0);
    // moved by the function (a new message, never received), not by the queue's redrive after 3 receives
    expect(dead.receiveCount).toBe(0);
    expect(dlq.messages).toHaveLength(1);
    expect(dead.attributes?.reason).toMatch(/^malformed recheck message: firstSeenAt: must be a time between 2019 and now/);
    expect(dead.attributes?.sourceQueueArn).toBe(queue.arn);
  });
});
