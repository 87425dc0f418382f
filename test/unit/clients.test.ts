import { DescribeImagesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { createClientFactory } from '../../src/lib/aws/clients.ts';
import { AssumeRoleError } from '../../src/lib/errors.ts';
import { awsError } from '../helpers/world.ts';

const options = { accountId: '111122223333', region: 'us-east-1', targetRoleName: 'ReconcilerTarget', externalId: 'ext-1', concurrencyPerCell: 2, sdkMaxAttempts: 3 };

describe('client factory', () => {
  const sts = mockClient(STSClient);
  const ec2 = mockClient(EC2Client);
  afterEach(() => {
    sts.reset();
    ec2.reset();
  });

  it('assumes the target role once per account, with the external id, and reuses clients per (account, region)', async () => {
    sts.on(AssumeRoleCommand).resolves({ Credentials: { AccessKeyId: 'ASIA1', SecretAccessKey: 's', SessionToken: 't', Expiration: new Date(Date.now() + 3600_000) } });
    const factory = createClientFactory(options);
    const a = await factory.forCell('444455556666', 'eu-west-1');
    const b = await factory.forCell('444455556666', 'eu-west-1');
    await factory.forCell('444455556666', 'us-west-2');
    expect(a).toBe(b);
    expect(sts).toHaveReceivedCommandTimes(AssumeRoleCommand, 1);
    expect(sts).toHaveReceivedCommandWith(AssumeRoleCommand, { RoleArn: 'arn:aws:iam::444455556666:role/ReconcilerTarget', ExternalId: 'ext-1', RoleSessionName: 'imagebuilder-reconciler' });
  });

  it.each([
    ['cn-north-1', 'aws-cn'],
    ['us-gov-west-1', 'aws-us-gov'],
  ])('names the target role in the partition of its region (%s → %s)', async (region, partition) => {
    sts.on(AssumeRoleCommand).resolves({ Credentials: { AccessKeyId: 'ASIA1', SecretAccessKey: 's', SessionToken: 't', Expiration: new Date(Date.now() + 3600_000) } });
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
    sts.on(AssumeRoleCommand).callsFake(() => ({ Credentials: { AccessKeyId: 'ASIA1', SecretAccessKey: 's', SessionToken: 't', Expiration: new Date(now + 15 * 60_000) } }));
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
    sts.on(AssumeRoleCommand).rejectsOnce(awsError('AccessDenied', 'not authorized to perform: sts:AssumeRole')).resolves({
      Credentials: { AccessKeyId: 'ASIA1', SecretAccessKey: 's', SessionToken: 't', Expiration: new Date(Date.now() + 3600_000) },
    });
    const factory = createClientFactory(options);
    const error = await factory.forCell('444455556666', 'eu-west-1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AssumeRoleError);
    expect((error as AssumeRoleError).kind).toBe('access-denied');
    expect((error as Error).message).toMatch(/cannot assume arn:aws:iam::444455556666:role\/ReconcilerTarget in account 444455556666: AccessDenied/);
    await expect(factory.forCell('444455556666', 'eu-west-1')).resolves.toBeDefined();
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
});
