/** IAM in the sandbox: policy evaluation for assumed roles, the services' refusals, and the roles' partitions. */
import { CreateTagsCommand, DescribeImagesCommand, EC2Client, EnableFastLaunchCommand } from '@aws-sdk/client-ec2';
import { DecodeAuthorizationMessageCommand, AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { AttachRolePolicyCommand, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { registerImage } from '../../sandbox/emulator/services/ec2/index.ts';
import { clients, smallScenario, useSandbox } from '../helpers/sandbox.ts';

const OWNER = '111111111111';
const TARGET = '222222222222';
/** The source tag a copy of one of the owner's builds carries (what the target role's image grants go by). */
const OURS = { 'imagebuilder-reconciler:source-image': `arn:aws:imagebuilder:us-east-1:${OWNER}:image/golden/1.0.0/1` };

describe('IAM in the sandbox', () => {
  let box: Sandbox | undefined;
  const sandboxes = useSandbox('each');

  /** Clients acting as the target role (assumed by the owner account's administrator). */
  async function asTargetRole(url: string, partition: string, region: string) {
    const out = await clients(url, OWNER, region).sts.send(
      new AssumeRoleCommand({ RoleArn: `arn:${partition}:iam::${TARGET}:role/ImageBuilderReconcilerTarget`, RoleSessionName: 'test' }),
    );
    const c = out.Credentials;
    const credentials = {
      accessKeyId: c?.AccessKeyId ?? '',
      secretAccessKey: c?.SecretAccessKey ?? '',
      sessionToken: c?.SessionToken ?? '',
    };
    const config = { endpoint: url, region, credentials, maxAttempts: 1 };
    return { ec2: new EC2Client(config), ssm: new SSMClient(config), sts: new STSClient(config) };
  }

  it.each([
    ['us-east-1', 'aws'],
    ['cn-north-1', 'aws-cn'],
    ['us-gov-west-1', 'aws-us-gov'],
  ])('deploys the target role in the partition of %s (%s) and allows what it grants there', async (region, partition) => {
    box = await sandboxes.start({ scenario: { ...smallScenario(), regions: [region] } });
    expect(box.state.rolesOf(TARGET).get('ImageBuilderReconcilerTarget')?.arn).toBe(
      `arn:${partition}:iam::${TARGET}:role/ImageBuilderReconcilerTarget`,
    );
    const ami = registerImage(box.state, box.clock, { account: TARGET, region, name: 'x', creationDate: box.clock.iso() });
    const role = await asTargetRole(box.url, partition, region);
    expect((await role.ec2.send(new DescribeImagesCommand({ Owners: ['self'] }))).Images?.map((i) => i.ImageId)).toContain(ami.imageId);
    // the grant names arn:${AWS::Partition}:ec2:*::image/*, which matches this partition's AMI ARNs
    await role.ec2.send(new CreateTagsCommand({ Resources: [ami.imageId], Tags: [{ Key: 'Team', Value: 'x' }] }));
    expect(ami.tags.get('Team')).toBe('x');
  });

  it('answers an EC2 DryRun as EC2 does: DryRunOperation when allowed (and nothing done), UnauthorizedOperation when not', async () => {
    box = await sandboxes.start({ scenario: smallScenario() });
    const ami = registerImage(box.state, box.clock, { account: TARGET, region: 'us-east-1', name: 'x', creationDate: box.clock.iso() });
    const role = await asTargetRole(box.url, 'aws', 'us-east-1');
    await expect(
      role.ec2.send(new CreateTagsCommand({ DryRun: true, Resources: [ami.imageId], Tags: [{ Key: 'Team', Value: 'dry' }] })),
    ).rejects.toMatchObject({
      name: 'DryRunOperation',
      message: 'Request would have succeeded, but DryRun flag is set.',
      $metadata: { httpStatusCode: 412 },
    });
    expect(ami.tags.has('Team')).toBe(false);
    await clients(box.url, TARGET).iam.send(
      new PutRolePolicyCommand({
        RoleName: 'ImageBuilderReconcilerTarget',
        PolicyName: 'deny-describe',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Deny', Action: 'ec2:DescribeImages', Resource: '*' }],
        }),
      }),
    );
    await expect(role.ec2.send(new DescribeImagesCommand({ DryRun: true, Owners: ['self'] }))).rejects.toMatchObject({
      name: 'UnauthorizedOperation',
      message: expect.stringMatching(/not authorized to perform: ec2:DescribeImages on resource: \* with an explicit deny/),
    });
  });

  it("refuses what the role does not grant, in each service's own terms; EC2's encoded message decodes", async () => {
    box = await sandboxes.start({ scenario: smallScenario() });
    const ami = registerImage(box.state, box.clock, { account: TARGET, region: 'us-east-1', name: 'x', creationDate: box.clock.iso() });
    const role = await asTargetRole(box.url, 'aws', 'us-east-1');
    // SSM: only parameters under the pattern the deployment names (default imagebuilder/*)
    await expect(role.ssm.send(new GetParameterCommand({ Name: '/elsewhere/x' }))).rejects.toMatchObject({
      name: 'AccessDeniedException',
      message: expect.stringMatching(
        /not authorized to perform: ssm:GetParameter on resource: arn:aws:ssm:us-east-1:222222222222:parameter\/elsewhere\/x because no identity-based policy allows/,
      ),
    });
    await expect(role.ssm.send(new GetParameterCommand({ Name: '/imagebuilder/x' }))).rejects.toMatchObject({ name: 'ParameterNotFound' });
    // an explicit Deny wins over the Allow
    await clients(box.url, TARGET).iam.send(
      new PutRolePolicyCommand({
        RoleName: 'ImageBuilderReconcilerTarget',
        PolicyName: 'deny-tags',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Deny', Action: 'ec2:CreateTags', Resource: '*', Condition: { StringEquals: { 'aws:RequestTag/Team': 'blocked' } } },
          ],
        }),
      }),
    );
    await role.ec2.send(new CreateTagsCommand({ Resources: [ami.imageId], Tags: [{ Key: 'Team', Value: 'ok' }] }));
    expect(ami.tags.get('Team')).toBe('ok');
    const refused = await role.ec2
      .send(new CreateTagsCommand({ Resources: [ami.imageId], Tags: [{ Key: 'Team', Value: 'blocked' }] }))
      .then(
        () => undefined,
        (error: unknown) => error as { name: string; message: string; $metadata: { httpStatusCode?: number } },
      );
    expect(refused).toMatchObject({
      name: 'UnauthorizedOperation',
      message: expect.stringMatching(/ec2:CreateTags .*with an explicit deny/),
      $metadata: { httpStatusCode: 403 },
    });
    const encoded = /Encoded authorization failure message: (\S+)/.exec(refused?.message ?? '')?.[1] ?? '';
    const decoded = await clients(box.url, TARGET).sts.send(new DecodeAuthorizationMessageCommand({ EncodedMessage: encoded }));
    expect(JSON.parse(decoded.DecodedMessage ?? '{}')).toMatchObject({
      allowed: false,
      explicitDeny: true,
      context: { action: 'ec2:CreateTags', resource: `arn:aws:ec2:us-east-1::image/${ami.imageId}` },
    });
    // a denied dependent permission: EnableFastLaunch's service-linked role, named in EC2's refusal
    await clients(box.url, TARGET).iam.send(
      new PutRolePolicyCommand({
        RoleName: 'ImageBuilderReconcilerTarget',
        PolicyName: 'deny-slr',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Deny', Action: 'iam:CreateServiceLinkedRole', Resource: '*' }],
        }),
      }),
    );
    const windows = registerImage(box.state, box.clock, {
      account: TARGET,
      region: 'us-east-1',
      name: 'w',
      platform: 'windows',
      tags: OURS,
      creationDate: box.clock.iso(),
    });
    windows.state = 'available';
    await expect(role.ec2.send(new EnableFastLaunchCommand({ ImageId: windows.imageId }))).rejects.toMatchObject({
      name: 'UnauthorizedOperation',
      message: expect.stringMatching(
        /^You are not authorized to perform this operation\. User: \S+ is not authorized to perform: iam:CreateServiceLinkedRole on resource: \S+AWSServiceRoleForEC2FastLaunch with an explicit deny in an identity-based policy\. Encoded authorization failure message: /,
      ),
    });
  });

  it("asks for the KMS rights of encrypted snapshots in Fast Launch's launch check: granted for the account's own keys, refused for a Deny or another account's key", async () => {
    // these enables name no launch template: the role is deployed for that (FastLaunchWithoutLaunchTemplate)
    box = await sandboxes.start({ scenario: { ...smallScenario(), targetRoleParameters: { FastLaunchWithoutLaunchTemplate: 'true' } } });
    const role = await asTargetRole(box.url, 'aws', 'us-east-1');
    const own = `arn:aws:kms:us-east-1:${TARGET}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
    const windows = (kmsKeyId: string | undefined) => {
      const ami = registerImage(box?.state as NonNullable<typeof box>['state'], box?.clock as NonNullable<typeof box>['clock'], {
        account: TARGET,
        region: 'us-east-1',
        name: `w-${kmsKeyId ?? 'plain'}`,
        platform: 'windows',
        tags: OURS,
        encrypted: true,
        kmsKeyId,
        creationDate: box?.clock.iso() ?? '',
      });
      ami.state = 'available';
      return ami.imageId;
    };
    const log = () =>
      box?.server.requests
        .at(-1)
        ?.authorizations.filter((a) => a.action.startsWith('kms:'))
        .map((a) => `${a.action} ${a.decision}`) ?? [];
    // the template's grant covers the account's own key, through EC2
    await role.ec2.send(new EnableFastLaunchCommand({ ImageId: windows(own) }));
    expect(log()).toStrictEqual([
      'kms:CreateGrant allow',
      'kms:Decrypt allow',
      'kms:DescribeKey allow',
      'kms:GenerateDataKeyWithoutPlaintext allow',
      'kms:ReEncryptFrom allow',
      'kms:ReEncryptTo allow',
    ]);
    // the AWS managed key aws/ebs (no KmsKeyId recorded) needs no KMS right of the caller
    await role.ec2.send(new EnableFastLaunchCommand({ ImageId: windows(undefined) }));
    expect(log()).toStrictEqual([]);
    // another account's key: the sandbox models the default key policy only, which does not let this account in
    const foreign = `arn:aws:kms:us-east-1:${OWNER}:key/abcd1234-12ab-34cd-56ef-1234567890ab`;
    const foreignImage = windows(foreign);
    await expect(role.ec2.send(new EnableFastLaunchCommand({ ImageId: foreignImage }))).rejects.toMatchObject({
      name: 'UnauthorizedOperation',
      message: expect.stringContaining(
        `not authorized to perform: kms:CreateGrant on resource: ${foreign} because no identity-based policy allows`,
      ),
    });
    // an operator grants every key in the role: the key's own account still has not let this one in
    const everyKey = {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: [
            'kms:CreateGrant',
            'kms:Decrypt',
            'kms:DescribeKey',
            'kms:GenerateDataKeyWithoutPlaintext',
            'kms:ReEncryptFrom',
            'kms:ReEncryptTo',
          ],
          Resource: '*',
        },
      ],
    };
    await clients(box.url, TARGET).iam.send(
      new PutRolePolicyCommand({
        RoleName: 'ImageBuilderReconcilerTarget',
        PolicyName: 'every-key',
        PolicyDocument: JSON.stringify(everyKey),
      }),
    );
    await expect(role.ec2.send(new EnableFastLaunchCommand({ ImageId: foreignImage }))).rejects.toMatchObject({
      name: 'UnauthorizedOperation',
      message: expect.stringContaining(
        `not authorized to perform: kms:CreateGrant on resource: ${foreign} because no resource-based policy allows the kms:CreateGrant action`,
      ),
    });
    // an operator's Deny on the grant fails the enable, naming the action
    await clients(box.url, TARGET).iam.send(
      new PutRolePolicyCommand({
        RoleName: 'ImageBuilderReconcilerTarget',
        PolicyName: 'deny-grant',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Deny', Action: 'kms:CreateGrant', Resource: '*' }],
        }),
      }),
    );
    await expect(role.ec2.send(new EnableFastLaunchCommand({ ImageId: windows(own) }))).rejects.toMatchObject({
      name: 'UnauthorizedOperation',
      message: expect.stringMatching(/not authorized to perform: kms:CreateGrant on resource: \S+ with an explicit deny/),
    });
  });

  it('without a launch template, Fast Launch needs the rights to build its own VPC and to launch without a template: refused by the default target role, allowed with FastLaunchWithoutLaunchTemplate=true', async () => {
    const windows = (b: Sandbox) => {
      const ami = registerImage(b.state, b.clock, {
        account: TARGET,
        region: 'us-east-1',
        name: 'w',
        platform: 'windows',
        tags: OURS,
        creationDate: b.clock.iso(),
      });
      ami.state = 'available';
      return ami.imageId;
    };
    box = await sandboxes.start({ scenario: smallScenario() });
    const role = await asTargetRole(box.url, 'aws', 'us-east-1');
    const ami = windows(box);
    await expect(role.ec2.send(new EnableFastLaunchCommand({ ImageId: ami }))).rejects.toMatchObject({
      name: 'UnauthorizedOperation',
      message: expect.stringMatching(
        /not authorized to perform: ec2:CreateVpc on resource: arn:aws:ec2:us-east-1:222222222222:vpc\/\* because no identity-based policy allows/,
      ),
    });
    // the managed policy alone is not enough: the default role launches only through a launch template
    await clients(box.url, TARGET).iam.send(
      new AttachRolePolicyCommand({
        RoleName: 'ImageBuilderReconcilerTarget',
        PolicyArn: 'arn:aws:iam::aws:policy/EC2FastLaunchFullAccess',
      }),
    );
    await expect(role.ec2.send(new EnableFastLaunchCommand({ ImageId: ami }))).rejects.toMatchObject({
      message: expect.stringMatching(
        /not authorized to perform: ec2:RunInstances on resource: arn:aws:ec2:us-east-1:222222222222:instance\/\*/,
      ),
    });
    await box.stop();
    // what the template's FastLaunchWithoutLaunchTemplate=true deploys: the managed policy, and the launch check without a template
    box = await sandboxes.start({ scenario: { ...smallScenario(), targetRoleParameters: { FastLaunchWithoutLaunchTemplate: 'true' } } });
    const deployed = await asTargetRole(box.url, 'aws', 'us-east-1');
    await deployed.ec2.send(new EnableFastLaunchCommand({ ImageId: windows(box) }));
    expect(box.server.requests.at(-1)?.authorizations.find((a) => a.action === 'ec2:CreateVpc')).toMatchObject({
      decision: 'allow',
      statement: 'arn:aws:iam::aws:policy/EC2FastLaunchFullAccess#EC2CreateVPC',
    });
  });
});
