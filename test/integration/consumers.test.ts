/**
 * The sandbox's consumers of an AMI beyond EC2's references, through the real SDK clients and from a scenario
 * file: Spot Instance requests (EC2 query) and CloudFormation stacks (query/XML), with the IAM the cleanup
 * role grants for reading them.
 */
import {
  CloudFormationClient,
  CreateStackCommand,
  DeleteStackCommand,
  DescribeStacksCommand,
  GetTemplateCommand,
} from '@aws-sdk/client-cloudformation';
import {
  CancelSpotInstanceRequestsCommand,
  DescribeInstancesCommand,
  DescribeSpotInstanceRequestsCommand,
  RequestSpotInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { Scenario } from '../../sandbox/harness/scenario.ts';
import { clients, useSandbox } from '../helpers/sandbox.ts';

const OWNER = '111111111111';
const A = '222222222222';
const REGION = 'us-east-1';

function scenario(): Scenario {
  return {
    name: 'consumers',
    defaultAccount: OWNER,
    accounts: [A],
    regions: [REGION],
    clockSpeed: 1,
    images: [
      { ref: 'web', account: OWNER, region: REGION, name: 'web' },
      { ref: 'batch', account: OWNER, region: REGION, name: 'batch' },
    ],
    parameters: [{ account: OWNER, region: REGION, name: '/golden/web', value: '${ami:web}', dataType: 'text' }],
    spotRequests: [
      { account: OWNER, region: REGION, image: '${ami:web}', type: 'persistent', interrupted: true },
      { account: OWNER, region: REGION, image: '${ami:batch}', type: 'one-time', interrupted: true },
    ],
    stacks: [
      {
        account: OWNER,
        region: REGION,
        name: 'resolved',
        template:
          'Parameters:\n  Ami:\n    Type: AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>\nResources:\n  Q:\n    Type: AWS::SQS::Queue\n',
        parameters: { Ami: '/golden/web' },
      },
    ],
  };
}

describe('sandbox consumers: Spot Instance requests and CloudFormation stacks', () => {
  let box: Sandbox;
  const sandboxes = useSandbox();
  const cfn = (account = OWNER) =>
    new CloudFormationClient({
      endpoint: box.url,
      region: REGION,
      credentials: { accessKeyId: account, secretAccessKey: 'sandbox' },
      maxAttempts: 1,
    });
  beforeAll(async () => {
    box = await sandboxes.start({ scenario: scenario(), clockSpeed: 1 });
  });

  it('a scenario creates Spot requests: an interrupted persistent one is open again, a one-time one closed', async () => {
    const out = await clients(box.url, OWNER).ec2.send(new DescribeSpotInstanceRequestsCommand({}));
    const byImage = new Map(out.SpotInstanceRequests?.map((r) => [r.LaunchSpecification?.ImageId, r]));
    expect(byImage.get(box.refs.get('ami:web'))).toMatchObject({
      Type: 'persistent',
      State: 'open',
      Status: { Code: 'instance-terminated-by-user' },
    });
    expect(byImage.get(box.refs.get('ami:batch'))).toMatchObject({ Type: 'one-time', State: 'closed' });
    const open = await clients(box.url, OWNER).ec2.send(
      new DescribeSpotInstanceRequestsCommand({ Filters: [{ Name: 'state', Values: ['open'] }] }),
    );
    expect(open.SpotInstanceRequests?.map((r) => r.LaunchSpecification?.ImageId)).toStrictEqual([box.refs.get('ami:web')]);
  });

  it('RequestSpotInstances launches at once; stop disables a persistent request, cancel leaves the instance', async () => {
    const ec2 = clients(box.url, OWNER).ec2;
    const made = await ec2.send(
      new RequestSpotInstancesCommand({
        Type: 'persistent',
        LaunchSpecification: { ImageId: box.refs.get('ami:web'), InstanceType: 't3.micro' },
      }),
    );
    const request = made.SpotInstanceRequests?.[0];
    expect(request).toMatchObject({ State: 'active', Status: { Code: 'fulfilled' } });
    await ec2.send(new StopInstancesCommand({ InstanceIds: [request?.InstanceId ?? ''] }));
    const id = request?.SpotInstanceRequestId ?? '';
    expect(
      (await ec2.send(new DescribeSpotInstanceRequestsCommand({ SpotInstanceRequestIds: [id] }))).SpotInstanceRequests?.[0]?.State,
    ).toBe('disabled');
    await ec2.send(new CancelSpotInstanceRequestsCommand({ SpotInstanceRequestIds: [id] }));
    expect(
      (await ec2.send(new DescribeSpotInstanceRequestsCommand({ SpotInstanceRequestIds: [id] }))).SpotInstanceRequests?.[0]?.State,
    ).toBe('cancelled');
    const instance = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [request?.InstanceId ?? ''] }));
    expect(instance.Reservations?.[0]?.Instances?.[0]?.State?.Name).toBe('stopped');
    await expect(ec2.send(new TerminateInstancesCommand({ InstanceIds: [request?.InstanceId ?? ''] }))).resolves.toBeDefined();
    await expect(
      ec2.send(new RequestSpotInstancesCommand({ LaunchSpecification: { ImageId: 'ami-0123456789abcdef0', InstanceType: 't3.micro' } })),
    ).rejects.toMatchObject({ name: 'InvalidAMIID.NotFound' });
    await expect(ec2.send(new DescribeSpotInstanceRequestsCommand({ SpotInstanceRequestIds: ['sir-00000000'] }))).rejects.toMatchObject({
      name: 'InvalidSpotInstanceRequestID.NotFound',
    });
  });

  it('a stack resolves an SSM parameter type to the AMI, and answers its template as submitted', async () => {
    const stack = (await cfn().send(new DescribeStacksCommand({ StackName: 'resolved' }))).Stacks?.[0];
    expect(stack).toMatchObject({
      StackStatus: 'CREATE_COMPLETE',
      Parameters: [{ ParameterKey: 'Ami', ParameterValue: '/golden/web', ResolvedValue: box.refs.get('ami:web') }],
    });
    const template = await cfn().send(new GetTemplateCommand({ StackName: stack?.StackId }));
    expect(template.TemplateBody).toContain('AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>');
  });

  it('refuses what CloudFormation refuses: a missing value, an AMI that does not exist, a name taken, a stack not there', async () => {
    const body = JSON.stringify({ Parameters: { Ami: { Type: 'AWS::EC2::Image::Id' } }, Resources: { Q: { Type: 'AWS::SQS::Queue' } } });
    await expect(cfn().send(new CreateStackCommand({ StackName: 'none', TemplateBody: body }))).rejects.toMatchObject({
      name: 'ValidationError',
      message: 'Parameters: [Ami] must have values',
    });
    await expect(
      cfn().send(
        new CreateStackCommand({
          StackName: 'bad',
          TemplateBody: body,
          Parameters: [{ ParameterKey: 'Ami', ParameterValue: 'ami-0123456789abcdef0' }],
        }),
      ),
    ).rejects.toMatchObject({
      name: 'ValidationError',
      message: expect.stringMatching(/parameter value ami-0123456789abcdef0 for parameter name Ami does not exist/),
    });
    await expect(cfn().send(new CreateStackCommand({ StackName: 'resolved', TemplateBody: body }))).rejects.toMatchObject({
      name: 'AlreadyExistsException',
    });
    await expect(cfn().send(new GetTemplateCommand({ StackName: 'nowhere' }))).rejects.toMatchObject({ name: 'ValidationError' });
    // another account sees none of the owner's stacks
    expect((await cfn(A).send(new DescribeStacksCommand({}))).Stacks).toStrictEqual([]);
  });

  it('a deleted stack leaves the listing, and is found by its stack id only', async () => {
    const created = await cfn().send(
      new CreateStackCommand({ StackName: 'gone', TemplateBody: JSON.stringify({ Resources: { Q: { Type: 'AWS::SQS::Queue' } } }) }),
    );
    await cfn().send(new DeleteStackCommand({ StackName: 'gone' }));
    const names = (await cfn().send(new DescribeStacksCommand({}))).Stacks?.map((s) => s.StackName);
    expect(names).not.toContain('gone');
    expect((await cfn().send(new DescribeStacksCommand({ StackName: created.StackId }))).Stacks?.[0]?.StackStatus).toBe('DELETE_COMPLETE');
    await expect(cfn().send(new DescribeStacksCommand({ StackName: 'gone' }))).rejects.toMatchObject({ name: 'ValidationError' });
  });
});
