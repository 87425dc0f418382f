/** IAM in the sandbox: policy evaluation for assumed roles, the services' refusals, and the roles' partitions. */
import { CreateTagsCommand, DescribeImagesCommand, EC2Client, EnableFastLaunchCommand } from '@aws-sdk/client-ec2';
import { DecodeAuthorizationMessageCommand, AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterEach, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/index.ts';
import { registerImage } from '../../sandbox/services/ec2.ts';
import { clients, sandbox, smallScenario } from '../helpers/sandbox.ts';

const OWNER = '111111111111';
const TARGET = '222222222222';

describe('IAM in the sandbox', () => {
  let box: Sandbox | undefined;
  afterEach(async () => {
    await box?.stop();
    box = undefined;
  });

  /** Clients acting as the target role (assumed by the owner account's administrator). */
  async function asTargetRole(url: string, partition: string, region: string) {
    const out = await clients(url, OWNER, region).sts.send(new AssumeRoleCommand({ RoleArn: `arn:${partition}:iam::${TARGET}:role/ImageBuilderReconcilerTarget`, RoleSessionName: 'test' }));
    const c = out.Credentials;
    const credentials = { accessKeyId: c?.AccessKeyId ?? '', secretAccessKey: c?.SecretAccessKey ?? '', sessionToken: c?.SessionToken ?? '' };
    const config = { endpoint: url, region, credentials, maxAttempts: 1 };
    return { ec2: new EC2Client(config), ssm: new SSMClient(config), sts: new STSClient(config) };
  }

  it.each([
    ['us-east-1', 'aws'],
    ['cn-north-1', 'aws-cn'],
    ['us-gov-west-1', 'aws-us-gov'],
  ])('deploys the target role in the partition of %s (%s) and allows what it grants there', async (region, partition) => {
    box = await sandbox({ scenario: { ...smallScenario(), regions: [region] } });
    expect(box.state.rolesOf(TARGET).get('ImageBuilderReconcilerTarget')?.arn).toBe(`arn:${partition}:iam::${TARGET}:role/ImageBuilderReconcilerTarget`);
    const ami = registerImage(box.state, box.clock, { account: TARGET, region, name: 'x', creationDate: box.clock.iso() });
    const role = await asTargetRole(box.url, partition, region);
    expect((await role.ec2.send(new DescribeImagesCommand({ Owners: ['self'] }))).Images?.map((i) => i.ImageId)).toContain(ami.imageId);
    // the grant names arn:${AWS::Partition}:ec2:*::image/*, which matches this partition's AMI ARNs
    await role.ec2.send(new CreateTagsCommand({ Resources: [ami.imageId], Tags: [{ Key: 'Team', Value: 'x' }] }));
    expect(ami.tags.get('Team')).toBe('x');
  });

  it('answers an EC2 DryRun as EC2 does: DryRunOperation when allowed (and nothing done), UnauthorizedOperation when not', async () => {
    box = await sandbox({ scenario: smallScenario() });
    const ami = registerImage(box.state, box.clock, { account: TARGET, region: 'us-east-1', name: 'x', creationDate: box.clock.iso() });
    const role = await asTargetRole(box.url, 'aws', 'us-east-1');
    await expect(role.ec2.send(new CreateTagsCommand({ DryRun: true, Resources: [ami.imageId], Tags: [{ Key: 'Team', Value: 'dry' }] }))).rejects.toMatchObject({ name: 'DryRunOperation', message: 'Request would have succeeded, but DryRun flag is set.', $metadata: { httpStatusCode: 412 } });
    expect(ami.tags.has('Team')).toBe(false);
    await clients(box.url, TARGET).iam.send(new PutRolePolicyCommand({ RoleName: 'ImageBuilderReconcilerTarget', PolicyName: 'deny-describe', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'ec2:DescribeImages', Resource: '*' }] }) }));
    await expect(role.ec2.send(new DescribeImagesCommand({ DryRun: true, Owners: ['self'] }))).rejects.toMatchObject({ name: 'UnauthorizedOperation', message: expect.stringMatching(/not authorized to perform: ec2:DescribeImages on resource: \* with an explicit deny/) });
  });

  it('refuses what the role does not grant, in each service\'s own terms; EC2\'s encoded message decodes', async () => {
    box = await sandbox({ scenario: smallScenario() });
    const ami = registerImage(box.state, box.clock, { account: TARGET, region: 'us-east-1', name: 'x', creationDate: box.clock.iso() });
    const role = await asTargetRole(box.url, 'aws', 'us-east-1');
    // SSM: only parameters under the pattern the deployment names (default imagebuilder/*)
    await expect(role.ssm.send(new GetParameterCommand({ Name: '/elsewhere/x' }))).rejects.toMatchObject({ name: 'AccessDeniedException', message: expect.stringMatching(/not authorized to perform: ssm:GetParameter on resource: arn:aws:ssm:us-east-1:222222222222:parameter\/elsewhere\/x because no identity-based policy allows/) });
    await expect(role.ssm.send(new GetParameterCommand({ Name: '/imagebuilder/x' }))).rejects.toMatchObject({ name: 'ParameterNotFound' });
    // an explicit Deny wins over the Allow
    await clients(box.url, TARGET).iam.send(new PutRolePolicyCommand({ RoleName: 'ImageBuilderReconcilerTarget', PolicyName: 'deny-tags', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'ec2:CreateTags', Resource: '*', Condition: { StringEquals: { 'aws:RequestTag/Team': 'blocked' } } }] }) }));
    await role.ec2.send(new CreateTagsCommand({ Resources: [ami.imageId], Tags: [{ Key: 'Team', Value: 'ok' }] }));
    expect(ami.tags.get('Team')).toBe('ok');
    const refused = await role.ec2.send(new CreateTagsCommand({ Resources: [ami.imageId], Tags: [{ Key: 'Team', Value: 'blocked' }] })).then(
      () => undefined,
      (error: unknown) => error as { name: string; message: string; $metadata: { httpStatusCode?: number } },
    );
    expect(refused).toMatchObject({ name: 'UnauthorizedOperation', message: expect.stringMatching(/ec2:CreateTags .*with an explicit deny/), $metadata: { httpStatusCode: 403 } });
    const encoded = /Encoded authorization failure message: (\S+)/.exec(refused?.message ?? '')?.[1] ?? '';
    const decoded = await clients(box.url, TARGET).sts.send(new DecodeAuthorizationMessageCommand({ EncodedMessage: encoded }));
    expect(JSON.parse(decoded.DecodedMessage ?? '{}')).toMatchObject({ allowed: false, explicitDeny: true, context: { action: 'ec2:CreateTags', resource: `arn:aws:ec2:us-east-1::image/${ami.imageId}` } });
    // a denied dependent permission: EnableFastLaunch's service-linked role, named in EC2's refusal
    await clients(box.url, TARGET).iam.send(new PutRolePolicyCommand({ RoleName: 'ImageBuilderReconcilerTarget', PolicyName: 'deny-slr', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'iam:CreateServiceLinkedRole', Resource: '*' }] }) }));
    const windows = registerImage(box.state, box.clock, { account: TARGET, region: 'us-east-1', name: 'w', platform: 'windows', creationDate: box.clock.iso() });
    windows.state = 'available';
    await expect(role.ec2.send(new EnableFastLaunchCommand({ ImageId: windows.imageId }))).rejects.toMatchObject({ name: 'UnauthorizedOperation', message: expect.stringMatching(/^You are not authorized to perform this operation\. User: \S+ is not authorized to perform: iam:CreateServiceLinkedRole on resource: \S+AWSServiceRoleForEC2FastLaunch with an explicit deny in an identity-based policy\. Encoded authorization failure message: /) });
  });
});
