/** STS, IAM, SSM, SQS and EventBridge in the sandbox, through the real SDK clients. */
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { CreateRoleCommand, DeleteRoleCommand, GetRoleCommand } from '@aws-sdk/client-iam';
import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { GetParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { EC2Client, DescribeRegionsCommand } from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { SSM_IMAGE_VALIDATION_MS } from '../../sandbox/emulator/services/ssm.ts';
import { clients, demoScenario, useSandbox } from '../helpers/sandbox.ts';

const OWNER = '111111111111';
const TARGET = '222222222222';

describe('sandbox SSM: aws:ec2:image values are validated after PutParameter answers', () => {
  let box: Sandbox;
  const sandboxes = useSandbox();
  beforeAll(async () => {
    // real-time speed: at the demo's (600×) the 30 simulated seconds of validation could end
    // between two calls on a loaded machine
    box = await sandboxes.start({ scenario: demoScenario(), clockSpeed: 1 });
  });

  const value = async (name: string, account = OWNER): Promise<string | undefined> => {
    try {
      return (await clients(box.url, account).ssm.send(new GetParameterCommand({ Name: name }))).Parameter?.Value;
    } catch (error: unknown) {
      if (error instanceof Error && error.name === 'ParameterNotFound') return undefined;
      throw error;
    }
  };

  it('answers 200 with a version at once, and the value is readable only once validated', async () => {
    const ami = box.refs.get('ami:previous') ?? '';
    const ssm = clients(box.url, OWNER).ssm;
    const put = await ssm.send(new PutParameterCommand({ Name: '/golden/new', Value: ami, Type: 'String', DataType: 'aws:ec2:image' }));
    expect(put.Version).toBe(1);
    expect(await value('/golden/new')).toBeUndefined();
    // a second put before the validation completes is refused
    await expect(
      ssm.send(new PutParameterCommand({ Name: '/golden/new', Value: ami, Type: 'String', DataType: 'aws:ec2:image', Overwrite: true })),
    ).rejects.toMatchObject({ name: 'TooManyUpdates' });
    box.clock.advance(SSM_IMAGE_VALIDATION_MS);
    expect(await value('/golden/new')).toBe(ami);
  });

  it('never writes an invalid value: malformed, unknown, or an AMI the account cannot see; the old value stays', async () => {
    const ami = box.refs.get('ami:previous') ?? '';
    const ssm = clients(box.url, OWNER).ssm;
    await ssm.send(new PutParameterCommand({ Name: '/golden/kept', Value: ami, Type: 'String', DataType: 'aws:ec2:image' }));
    box.clock.advance(SSM_IMAGE_VALIDATION_MS);
    const notVisible = box.refs.get('ami:previous-a-use1') ?? '';
    for (const bad of ['not-an-ami', 'ami-0123456789abcdef0', notVisible]) {
      const put = await ssm.send(
        new PutParameterCommand({ Name: '/golden/kept', Value: bad, Type: 'String', DataType: 'aws:ec2:image', Overwrite: true }),
      );
      expect(put.Version).toBeGreaterThan(1);
      box.clock.advance(SSM_IMAGE_VALIDATION_MS);
      expect(await value('/golden/kept'), bad).toBe(ami);
    }
    await ssm.send(
      new PutParameterCommand({ Name: '/golden/never', Value: 'ami-0123456789abcdef0', Type: 'String', DataType: 'aws:ec2:image' }),
    );
    box.clock.advance(SSM_IMAGE_VALIDATION_MS);
    expect(await value('/golden/never')).toBeUndefined();
    // the AMI account 222222222222 owns is valid there
    await clients(box.url, TARGET).ssm.send(
      new PutParameterCommand({ Name: '/golden/kept', Value: notVisible, Type: 'String', DataType: 'aws:ec2:image' }),
    );
    box.clock.advance(SSM_IMAGE_VALIDATION_MS);
    expect(await value('/golden/kept', TARGET)).toBe(notVisible);
  });
});

describe('sandbox STS and IAM', () => {
  let box: Sandbox;
  const sandboxes = useSandbox();
  beforeAll(async () => {
    box = await sandboxes.start();
  });

  it('issues credentials bound to the assumed account when the role trusts the caller', async () => {
    const out = await clients(box.url, OWNER).sts.send(
      new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${TARGET}:role/ImageBuilderReconcilerTarget`, RoleSessionName: 'reconciler' }),
    );
    const c = out.Credentials;
    const assumed = new STSClient({
      endpoint: box.url,
      region: 'us-east-1',
      credentials: { accessKeyId: c?.AccessKeyId ?? '', secretAccessKey: c?.SecretAccessKey ?? '', sessionToken: c?.SessionToken },
    });
    expect((await assumed.send(new GetCallerIdentityCommand({}))).Account).toBe(TARGET);
    expect(c?.Expiration?.getTime()).toBeGreaterThan(Date.now());
  });

  it('denies AssumeRole from an account the role does not trust, and for a missing role', async () => {
    await expect(
      clients(box.url, '333333333333').sts.send(
        new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${TARGET}:role/ImageBuilderReconcilerTarget`, RoleSessionName: 'x1' }),
      ),
    ).rejects.toMatchObject({ name: 'AccessDenied' });
    await expect(
      clients(box.url, OWNER).sts.send(new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${TARGET}:role/Nope`, RoleSessionName: 'x1' })),
    ).rejects.toMatchObject({ name: 'AccessDenied' });
  });

  it('creates and deletes a role whose trust policy AssumeRole then honours', async () => {
    const iam = clients(box.url, TARGET).iam;
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::333333333333:root' }, Action: 'sts:AssumeRole' }],
    });
    await iam.send(new CreateRoleCommand({ RoleName: 'ForThree', AssumeRolePolicyDocument: policy }));
    expect((await iam.send(new GetRoleCommand({ RoleName: 'ForThree' }))).Role?.Arn).toBe(`arn:aws:iam::${TARGET}:role/ForThree`);
    const assumed = await clients(box.url, '333333333333').sts.send(
      new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${TARGET}:role/ForThree`, RoleSessionName: 'x1' }),
    );
    expect(assumed.AssumedRoleUser?.Arn).toBe(`arn:aws:sts::${TARGET}:assumed-role/ForThree/x1`);
    expect(assumed.Credentials?.AccessKeyId).toMatch(/\S/);
    // the session's keys act as the role's account
    const asRole = new STSClient({
      endpoint: box.url,
      region: 'us-east-1',
      maxAttempts: 1,
      credentials: {
        accessKeyId: assumed.Credentials?.AccessKeyId ?? '',
        secretAccessKey: assumed.Credentials?.SecretAccessKey ?? '',
        sessionToken: assumed.Credentials?.SessionToken,
      },
    });
    expect((await asRole.send(new GetCallerIdentityCommand({}))).Account).toBe(TARGET);
    await iam.send(new DeleteRoleCommand({ RoleName: 'ForThree' }));
    await expect(iam.send(new GetRoleCommand({ RoleName: 'ForThree' }))).rejects.toMatchObject({ name: 'NoSuchEntityException' });
  });

  it("keeps accounts apart: one account's parameters are not another's", async () => {
    const ssmOwner = clients(box.url, OWNER).ssm;
    await ssmOwner.send(
      new PutParameterCommand({ Name: '/golden/latest', Value: 'ami-0123456789abcdef0', Type: 'String', DataType: 'text' }),
    );
    expect((await ssmOwner.send(new GetParameterCommand({ Name: '/golden/latest' }))).Parameter?.Value).toBe('ami-0123456789abcdef0');
    await expect(clients(box.url, TARGET).ssm.send(new GetParameterCommand({ Name: '/golden/latest' }))).rejects.toMatchObject({
      name: 'ParameterNotFound',
    });
    await expect(
      ssmOwner.send(new PutParameterCommand({ Name: '/golden/latest', Value: 'ami-0123456789abcdef0', Type: 'String' })),
    ).rejects.toMatchObject({ name: 'ParameterAlreadyExists' });
    await expect(
      ssmOwner.send(new PutParameterCommand({ Name: '/golden/bad', Value: 'x', Type: 'String', DataType: 'aws:ec2:nope' })),
    ).rejects.toMatchObject({ name: 'ValidationException' });
  });

  it('delays SQS messages, hides received ones for the visibility timeout, and redrives after maxReceiveCount', async () => {
    const sqs = clients(box.url, OWNER).sqs;
    const dlq = await sqs.send(new CreateQueueCommand({ QueueName: 'dlq' }));
    const q = await sqs.send(
      new CreateQueueCommand({
        QueueName: 'work',
        Attributes: {
          VisibilityTimeout: '30',
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: `arn:aws:sqs:us-east-1:${OWNER}:dlq`, maxReceiveCount: 2 }),
        },
      }),
    );
    await sqs.send(new SendMessageCommand({ QueueUrl: q.QueueUrl, MessageBody: 'later', DelaySeconds: 60 }));
    expect((await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.QueueUrl }))).Messages ?? []).toHaveLength(0);
    box.clock.advance(61_000);
    const first = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.QueueUrl }));
    expect(first.Messages?.[0]?.Body).toBe('later');
    expect((await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.QueueUrl }))).Messages ?? []).toHaveLength(0);
    box.clock.advance(31_000);
    expect((await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.QueueUrl }))).Messages).toHaveLength(1);
    box.clock.advance(31_000);
    expect((await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.QueueUrl }))).Messages ?? []).toHaveLength(0);
    const dead = await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlq.QueueUrl }));
    expect(dead.Messages?.[0]?.Body).toBe('later');
    await sqs.send(new DeleteMessageCommand({ QueueUrl: dlq.QueueUrl, ReceiptHandle: dead.Messages?.[0]?.ReceiptHandle }));
  });

  it('publishes EventBridge events and rejects a malformed detail entry', async () => {
    const out = await clients(box.url, OWNER).events.send(
      new PutEventsCommand({
        Entries: [
          { Source: 'test', DetailType: 'Hello', Detail: '{"a":1}' },
          { Source: 'test', DetailType: 'Bad', Detail: '{nope' },
        ],
      }),
    );
    expect(out.FailedEntryCount).toBe(1);
    expect(out.Entries?.[1]?.ErrorCode).toBe('MalformedDetail');
    expect(box.state.events.at(-1)).toMatchObject({ source: 'test', detailType: 'Hello', account: OWNER, detail: { a: 1 } });
  });

  it('injects errors per operation and account', async () => {
    box.faults.set({
      errors: [
        {
          operation: 'DescribeRegions',
          account: TARGET,
          code: 'UnauthorizedOperation',
          message: 'You are not authorized to perform this operation.',
          status: 403,
          count: 1,
        },
      ],
    });
    const ec2 = new EC2Client({
      endpoint: box.url,
      region: 'us-east-1',
      credentials: { accessKeyId: TARGET, secretAccessKey: 's' },
      maxAttempts: 1,
    });
    await expect(ec2.send(new DescribeRegionsCommand({}))).rejects.toMatchObject({ name: 'UnauthorizedOperation' });
    // count: 1: the next call goes through
    expect((await ec2.send(new DescribeRegionsCommand({}))).Regions?.length).toBeGreaterThan(0);
    box.faults.set({});
  });
});
