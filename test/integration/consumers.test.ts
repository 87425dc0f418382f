/**
 * The sandbox's consumers of an AMI beyond EC2's references, through the real SDK clients and from a scenario
 * file: Spot Instance requests (EC2 query), CloudFormation stacks (query/XML), AWS Batch compute environments
 * (REST-JSON) and Amazon EMR clusters (JSON 1.1), and IAM on the Batch and EMR reads.
 */
import {
  BatchClient,
  CreateComputeEnvironmentCommand,
  DeleteComputeEnvironmentCommand,
  DescribeComputeEnvironmentsCommand,
  UpdateComputeEnvironmentCommand,
} from '@aws-sdk/client-batch';
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
import {
  DescribeClusterCommand,
  EMRClient,
  ListClustersCommand,
  ListInstanceFleetsCommand,
  ListInstanceGroupsCommand,
  RunJobFlowCommand,
  TerminateJobFlowsCommand,
} from '@aws-sdk/client-emr';
import { CreateRoleCommand, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { AssumeRoleCommand } from '@aws-sdk/client-sts';
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
    computeEnvironments: [
      { account: OWNER, region: REGION, name: 'jobs', image: '${ami:batch}' },
      { account: OWNER, region: REGION, name: 'idle', imageOverrides: ['${ami:web}'], state: 'DISABLED', maxvCpus: 0 },
    ],
    emrClusters: [
      { account: OWNER, region: REGION, name: 'groups', customAmi: '${ami:web}', nodeAmis: ['${ami:batch}'] },
      { account: OWNER, region: REGION, name: 'fleets', fleets: true, nodeAmis: ['${ami:batch}'] },
      { account: OWNER, region: REGION, name: 'ended', customAmi: '${ami:batch}', terminated: true },
    ],
  };
}

describe('sandbox consumers: Spot Instance requests, CloudFormation stacks, Batch and EMR', () => {
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

  const config = (account = OWNER, credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }) => ({
    endpoint: box.url,
    region: REGION,
    credentials: credentials ?? { accessKeyId: account, secretAccessKey: 'sandbox' },
    maxAttempts: 1,
  });

  it('a scenario creates Batch compute environments; Describe lists them with their AMIs, in pages', async () => {
    const batch = new BatchClient(config());
    const out = await batch.send(new DescribeComputeEnvironmentsCommand({}));
    const byName = new Map(out.computeEnvironments?.map((e) => [e.computeEnvironmentName, e]));
    expect(byName.get('jobs')).toMatchObject({
      computeEnvironmentArn: `arn:aws:batch:${REGION}:${OWNER}:compute-environment/jobs`,
      state: 'ENABLED',
      status: 'VALID',
      computeResources: { type: 'EC2', imageId: box.refs.get('ami:batch') },
    });
    expect(byName.get('idle')).toMatchObject({
      state: 'DISABLED',
      computeResources: { maxvCpus: 0, ec2Configuration: [{ imageType: 'ECS_AL2023', imageIdOverride: box.refs.get('ami:web') }] },
    });
    const first = await batch.send(new DescribeComputeEnvironmentsCommand({ maxResults: 1 }));
    expect(first.computeEnvironments).toHaveLength(1);
    const second = await batch.send(new DescribeComputeEnvironmentsCommand({ maxResults: 1, nextToken: first.nextToken }));
    expect(second.computeEnvironments?.[0]?.computeEnvironmentName).not.toBe(first.computeEnvironments?.[0]?.computeEnvironmentName);
    // another account sees none of them
    expect((await new BatchClient(config(A)).send(new DescribeComputeEnvironmentsCommand({}))).computeEnvironments).toStrictEqual([]);
  });

  it('Batch refuses what it refuses: a missing member, a name taken, an AMI that is not there, deleting an enabled one', async () => {
    const batch = new BatchClient(config());
    const resources = { type: 'EC2' as const, maxvCpus: 4, subnets: ['subnet-1'], instanceRole: 'ecsInstanceRole' };
    await expect(
      batch.send(
        new CreateComputeEnvironmentCommand({
          computeEnvironmentName: 'x',
          type: 'MANAGED',
          computeResources: { type: 'EC2' } as never,
        }),
      ),
    ).rejects.toMatchObject({ name: 'ClientException', message: expect.stringContaining('computeResources.maxvCpus') });
    await expect(
      batch.send(new CreateComputeEnvironmentCommand({ computeEnvironmentName: 'jobs', type: 'MANAGED', computeResources: resources })),
    ).rejects.toMatchObject({ name: 'ClientException', message: 'Object already exists' });
    await expect(
      batch.send(
        new CreateComputeEnvironmentCommand({
          computeEnvironmentName: 'x',
          type: 'MANAGED',
          computeResources: { ...resources, imageId: 'ami-0000000000000dead' },
        }),
      ),
    ).rejects.toMatchObject({ name: 'ClientException' });
    await batch.send(new CreateComputeEnvironmentCommand({ computeEnvironmentName: 'gone', type: 'MANAGED', computeResources: resources }));
    await expect(batch.send(new DeleteComputeEnvironmentCommand({ computeEnvironment: 'gone' }))).rejects.toMatchObject({
      name: 'ClientException',
    });
    await batch.send(new UpdateComputeEnvironmentCommand({ computeEnvironment: 'gone', state: 'DISABLED' }));
    await batch.send(new DeleteComputeEnvironmentCommand({ computeEnvironment: 'gone' }));
    const listed = await batch.send(new DescribeComputeEnvironmentsCommand({ computeEnvironments: ['gone'] }));
    expect(listed.computeEnvironments?.[0]?.status).toBe('DELETED');
  });

  it('a scenario creates EMR clusters: ListClusters by state, DescribeCluster, instance groups and fleets with their AMIs', async () => {
    const emr = new EMRClient(config());
    const live = await emr.send(
      new ListClustersCommand({ ClusterStates: ['STARTING', 'BOOTSTRAPPING', 'RUNNING', 'WAITING', 'TERMINATING'] }),
    );
    expect(live.Clusters?.map((c) => c.Name).sort()).toStrictEqual(['fleets', 'groups']);
    const all = await emr.send(new ListClustersCommand({}));
    const ended = all.Clusters?.find((c) => c.Name === 'ended');
    expect(ended?.Status?.State).toBe('TERMINATED');
    const id = (name: string) => all.Clusters?.find((c) => c.Name === name)?.Id ?? '';
    expect(id('groups')).toMatch(/^j-[A-Z0-9]{13}$/);
    const groups = (await emr.send(new DescribeClusterCommand({ ClusterId: id('groups') }))).Cluster;
    expect(groups).toMatchObject({
      CustomAmiId: box.refs.get('ami:web'),
      InstanceCollectionType: 'INSTANCE_GROUP',
      ClusterArn: `arn:aws:elasticmapreduce:${REGION}:${OWNER}:cluster/${id('groups')}`,
      Status: { State: 'WAITING' },
    });
    const ig = await emr.send(new ListInstanceGroupsCommand({ ClusterId: id('groups') }));
    expect(ig.InstanceGroups?.map((g) => [g.InstanceGroupType, g.CustomAmiId])).toStrictEqual([
      ['MASTER', undefined],
      ['TASK', box.refs.get('ami:batch')],
    ]);
    const fleets = await emr.send(new ListInstanceFleetsCommand({ ClusterId: id('fleets') }));
    expect(fleets.InstanceFleets?.flatMap((f) => f.InstanceTypeSpecifications?.map((t) => t.CustomAmiId) ?? [])).toStrictEqual([
      undefined,
      box.refs.get('ami:batch'),
    ]);
    // a cluster has groups or fleets, never both
    await expect(emr.send(new ListInstanceGroupsCommand({ ClusterId: id('fleets') }))).rejects.toMatchObject({
      name: 'InvalidRequestException',
    });
    await expect(emr.send(new DescribeClusterCommand({ ClusterId: 'j-NOTACLUSTER00' }))).rejects.toMatchObject({
      name: 'InvalidRequestException',
    });
  });

  it('EMR runs and terminates a cluster; refuses a missing member, groups with fleets, an AMI not there', async () => {
    const emr = new EMRClient(config());
    const run = await emr.send(
      new RunJobFlowCommand({
        Name: 'short',
        ReleaseLabel: 'emr-7.5.0',
        Instances: {
          KeepJobFlowAliveWhenNoSteps: true,
          InstanceGroups: [{ InstanceRole: 'MASTER', InstanceType: 'm5.xlarge', InstanceCount: 1 }],
        },
      }),
    );
    expect((await emr.send(new DescribeClusterCommand({ ClusterId: run.JobFlowId }))).Cluster?.Status?.State).toBe('WAITING');
    await emr.send(new TerminateJobFlowsCommand({ JobFlowIds: [run.JobFlowId ?? ''] }));
    expect((await emr.send(new DescribeClusterCommand({ ClusterId: run.JobFlowId }))).Cluster?.Status?.State).toBe('TERMINATED');
    await expect(
      emr.send(
        new RunJobFlowCommand({
          Name: 'x',
          Instances: { InstanceGroups: [{ InstanceRole: 'MASTER', InstanceType: 'm5.xlarge' } as never] },
        }),
      ),
    ).rejects.toMatchObject({
      name: 'ValidationException',
      message: expect.stringContaining('Instances.InstanceGroups.1.member.InstanceCount'),
    });
    await expect(
      emr.send(
        new RunJobFlowCommand({
          Name: 'x',
          Instances: {
            InstanceGroups: [{ InstanceRole: 'MASTER', InstanceType: 'm5.xlarge', InstanceCount: 1 }],
            InstanceFleets: [{ InstanceFleetType: 'MASTER' }],
          },
        }),
      ),
    ).rejects.toMatchObject({ name: 'ValidationException' });
    await expect(emr.send(new RunJobFlowCommand({ Name: 'x', CustomAmiId: 'ami-0000000000000dead', Instances: {} }))).rejects.toMatchObject(
      { name: 'ValidationException' },
    );
  });

  it('IAM: a role allowed only the cleanup grants reads Batch and EMR, and is refused anything else', async () => {
    const iam = clients(box.url, OWNER).iam;
    const trust = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${OWNER}:root` }, Action: 'sts:AssumeRole' }],
    });
    await iam.send(new CreateRoleCommand({ RoleName: 'reader', AssumeRolePolicyDocument: trust }));
    const policy = {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: ['batch:DescribeComputeEnvironments', 'elasticmapreduce:ListClusters'], Resource: '*' },
        {
          Effect: 'Allow',
          Action: ['elasticmapreduce:DescribeCluster', 'elasticmapreduce:ListInstanceGroups'],
          Resource: `arn:aws:elasticmapreduce:*:${OWNER}:cluster/*`,
        },
      ],
    };
    await iam.send(new PutRolePolicyCommand({ RoleName: 'reader', PolicyName: 'p', PolicyDocument: JSON.stringify(policy) }));
    const c = (
      await clients(box.url, OWNER).sts.send(
        new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${OWNER}:role/reader`, RoleSessionName: 'probe' }),
      )
    ).Credentials;
    const credentials = {
      accessKeyId: c?.AccessKeyId ?? '',
      secretAccessKey: c?.SecretAccessKey ?? '',
      sessionToken: c?.SessionToken ?? '',
    };
    const batch = new BatchClient(config(OWNER, credentials));
    const emr = new EMRClient(config(OWNER, credentials));
    expect((await batch.send(new DescribeComputeEnvironmentsCommand({}))).computeEnvironments?.length).toBeGreaterThan(0);
    const listed = await emr.send(new ListClustersCommand({ ClusterStates: ['WAITING'] }));
    const groups = listed.Clusters?.find((x) => x.Name === 'groups')?.Id ?? '';
    const fleets = listed.Clusters?.find((x) => x.Name === 'fleets')?.Id ?? '';
    await emr.send(new DescribeClusterCommand({ ClusterId: groups }));
    await emr.send(new ListInstanceGroupsCommand({ ClusterId: groups }));
    await expect(emr.send(new ListInstanceFleetsCommand({ ClusterId: fleets }))).rejects.toMatchObject({
      name: 'AccessDeniedException',
      message: expect.stringContaining(
        `elasticmapreduce:ListInstanceFleets on resource: arn:aws:elasticmapreduce:${REGION}:${OWNER}:cluster/${fleets}`,
      ),
    });
    await expect(emr.send(new TerminateJobFlowsCommand({ JobFlowIds: [groups] }))).rejects.toMatchObject({ name: 'AccessDeniedException' });
    await expect(batch.send(new UpdateComputeEnvironmentCommand({ computeEnvironment: 'jobs', state: 'DISABLED' }))).rejects.toMatchObject({
      name: 'AccessDeniedException',
      message: expect.stringContaining(
        `batch:UpdateComputeEnvironment on resource: arn:aws:batch:${REGION}:${OWNER}:compute-environment/jobs`,
      ),
    });
  });
});
