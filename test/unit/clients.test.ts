import { DescribeImagesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AdaptiveLimit, createClientFactory } from '../../src/lib/aws/clients.ts';
import { AssumeRoleError } from '../../src/lib/core/errors.ts';
import { awsError } from '../helpers/world.ts';

const options = {
  accountId: '111122223333',
  region: 'us-east-1',
  targetRoleName: 'ReconcilerTarget',
  externalId: 'ext-1',
  concurrencyPerCell: 2,
  sdkMaxAttempts: 3,
};

describe('client factory', () => {
  const sts = mockClient(STSClient);
  const ec2 = mockClient(EC2Client);
  afterEach(() => {
    sts.reset();
    ec2.reset();
  });

  it('assumes the target role once per account, with the external id, and reuses clients per (account, region)', async () => {
    sts.on(AssumeRoleCommand).resolves({
      Credentials: { AccessKeyId: 'ASIA1', SecretAccessKey: 's', SessionToken: 't', Expiration: new Date(Date.now() + 3600_000) },
    });
    const factory = createClientFactory(options);
    const a = await factory.forCell('444455556666', 'eu-west-1');
    const b = await factory.forCell('444455556666', 'eu-west-1');
    await factory.forCell('444455556666', 'us-west-2');
    expect(a).toBe(b);
    expect(sts).toHaveReceivedCommandTimes(AssumeRoleCommand, 1);
    expect(sts).toHaveReceivedCommandWith(AssumeRoleCommand, {
      RoleArn: 'arn:aws:iam::444455556666:role/ReconcilerTarget',
      ExternalId: 'ext-1',
      RoleSessionName: 'imagebuilder-reconciler',
    });
  });

  it.each([
    ['cn-north-1', 'aws-cn'],
    ['us-gov-west-1', 'aws-us-gov'],
  ])('names the target role in the partition of its region (%s → %s)', async (region, partition) => {
    sts.on(AssumeRoleCommand).resolves({
      Credentials: { AccessKeyId: 'ASIA1', SecretAccessKey: 's', SessionToken: 't', Expiration: new Date(Date.now() + 3600_000) },
    });
    const factory = createClientFactory({ ...options, region });
    await factory.forCell('444455556666', region);
    expect(sts).toHaveReceivedCommandWith(AssumeRoleCommand, { RoleArn: `arn:${partition}:iam::444455556666:role/ReconcilerTarget` });
  });

  it('uses the ambient credentials in its own account (no AssumeRole)', async () => {
    const factory = createClientFactory(options);
    await factory.forCell('111122223333', 'eu-west-1');
    expect(sts).not.toHaveReceivedCommand(AssumeRoleCommand);
  });

  it('assumes the role again when the cached credentials are about to expire', async () => {
    let now = 1_000_000;
    sts.on(AssumeRoleCommand).callsFake(() => ({
      Credentials: { AccessKeyId: 'ASIA1', SecretAccessKey: 's', SessionToken: 't', Expiration: new Date(now + 15 * 60_000) },
    }));
    const factory = createClientFactory({ ...options, now: () => now });
    await factory.forCell('444455556666', 'eu-west-1');
    now += 9 * 60_000; // 6 minutes left: still good
    await factory.forCell('444455556666', 'eu-west-1');
    expect(sts).toHaveReceivedCommandTimes(AssumeRoleCommand, 1);
    now += 2 * 60_000; // 4 minutes left: inside the 5-minute margin
    await factory.forCell('444455556666', 'eu-west-1');
    expect(sts).toHaveReceivedCommandTimes(AssumeRoleCommand, 2);
  });

  it('throws AssumeRoleError naming the role, and does not cache the failure', async () => {
    sts
      .on(AssumeRoleCommand)
      .rejectsOnce(awsError('AccessDenied', 'not authorized to perform: sts:AssumeRole'))
      .resolves({
        Credentials: { AccessKeyId: 'ASIA1', SecretAccessKey: 's', SessionToken: 't', Expiration: new Date(Date.now() + 3600_000) },
      });
    const factory = createClientFactory(options);
    const error = await factory.forCell('444455556666', 'eu-west-1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AssumeRoleError);
    expect((error as AssumeRoleError).kind).toBe('access-denied');
    expect((error as Error).message).toMatch(
      /cannot assume arn:aws:iam::444455556666:role\/ReconcilerTarget in account 444455556666: AccessDenied/,
    );
    // the next call assumes the role again, and its clients sign with the new session's keys
    const clients = await factory.forCell('444455556666', 'eu-west-1');
    expect(sts).toHaveReceivedCommandTimes(AssumeRoleCommand, 2);
    expect(await clients.ec2.config.credentials()).toMatchObject({ accessKeyId: 'ASIA1', sessionToken: 't' });
  });

  it('counts the AWS calls it sends', async () => {
    // a real client against a closed local port: the counting middleware runs before the request fails
    ec2.restore();
    const factory = createClientFactory({ ...options, sdkMaxAttempts: 1, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    const clients = await factory.forCell('111122223333', 'us-east-1');
    const before = factory.callCount();
    await clients.ec2.send(new DescribeImagesCommand({})).catch(() => undefined);
    expect(factory.callCount()).toBe(before + 1);
  });

  it('builds a cell client on first use, and every client of the factory shares one connection pool', async () => {
    const factory = createClientFactory(options);
    const a = await factory.forCell('111122223333', 'eu-west-1');
    const b = await factory.forCell('111122223333', 'us-west-2');
    expect(a.ec2).toBe(a.ec2);
    expect(a.ec2.config.requestHandler).toBe(b.ssm.config.requestHandler);
    expect(factory.cellConcurrency()).toBe(64);
    expect(createClientFactory({ ...options, maxConcurrency: 8 }).cellConcurrency()).toBe(8);
  });
});

describe('adaptive concurrency limit', () => {
  it('halves when an attempt is throttled, never below 1, and grows back by one per run of successes', () => {
    const limit = new AdaptiveLimit(8);
    expect(limit.concurrency).toBe(8);
    limit.throttled();
    expect(limit.concurrency).toBe(4);
    limit.throttled();
    limit.throttled();
    limit.throttled();
    expect(limit.concurrency).toBe(1);
    limit.succeeded();
    expect(limit.concurrency).toBe(2);
    limit.succeeded();
    expect(limit.concurrency).toBe(2);
    limit.succeeded();
    expect(limit.concurrency).toBe(3);
    for (let i = 0; i < 100; i += 1) limit.succeeded();
    expect(limit.concurrency).toBe(8);
  });

  it('runs no more tasks at once than it allows', async () => {
    const limit = new AdaptiveLimit(2);
    let running = 0;
    let peak = 0;
    const releases: (() => void)[] = [];
    const task = () =>
      limit.run(async () => {
        running += 1;
        peak = Math.max(peak, running);
        await new Promise<void>((resolve) => releases.push(resolve));
        running -= 1;
      });
    const all = Promise.all([task(), task(), task(), task()]);
    await vi.waitFor(() => expect(releases).toHaveLength(2));
    for (let released = 0; released < 4; released += 1) {
      await vi.waitFor(() => expect(releases.length).toBeGreaterThan(0));
      releases.shift()?.();
    }
    await all;
    expect(peak).toBe(2);
  });
});
