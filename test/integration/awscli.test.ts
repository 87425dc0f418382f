/** The AWS CLI v2 (Debian's awscli) against the sandbox, through --endpoint-url: the second client. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { main } from '../../src/cli/index.ts';
import { demoScenario, useSandbox } from '../helpers/sandbox.ts';

const run = promisify(execFile);
const AWS = '/usr/bin/aws';

describe.runIf(existsSync(AWS))('the AWS CLI against the sandbox', () => {
  let box: Sandbox;
  const sandboxes = useSandbox();
  beforeAll(async () => {
    // 60× (not the demo's 600×): a build (about 29 simulated minutes) must outlast the two AWS CLI processes
    // that start it and read it back, a few seconds on a loaded machine
    box = await sandboxes.start({ scenario: demoScenario(), clockSpeed: 60 });
  });

  async function aws(account: string, region: string, ...args: string[]): Promise<unknown> {
    const { stdout } = await run(AWS, ['--endpoint-url', box.url, '--region', region, '--output', 'json', ...args], {
      env: {
        PATH: process.env.PATH,
        HOME: '/tmp',
        AWS_ACCESS_KEY_ID: account,
        AWS_SECRET_ACCESS_KEY: 'sandbox',
        AWS_PAGER: '',
        AWS_EC2_METADATA_DISABLED: 'true',
      },
    });
    return JSON.parse(stdout);
  }

  it('reads the caller identity, images and launch templates', async () => {
    expect(await aws('444444444444', 'eu-west-1', 'sts', 'get-caller-identity')).toMatchObject({ Account: '444444444444' });
    const images = (await aws('111111111111', 'us-east-1', 'ec2', 'describe-images', '--owners', 'self')) as {
      Images: { ImageId: string; Platform: string }[];
    };
    expect(images.Images.map((i) => i.ImageId)).toContain(box.refs.get('ami:previous'));
    expect(images.Images[0]?.Platform).toBe('windows');
    const templates = (await aws(
      '111111111111',
      'us-east-1',
      'ec2',
      'describe-launch-templates',
      '--launch-template-names',
      'web-fleet',
    )) as { LaunchTemplates: { LaunchTemplateId: string }[] };
    expect(templates.LaunchTemplates[0]?.LaunchTemplateId).toBe(box.refs.get('lt:web-owner'));
  });

  it("gets an EC2 error in EC2's shape", async () => {
    await expect(aws('111111111111', 'us-east-1', 'ec2', 'describe-images', '--image-ids', 'ami-0123456789abcdef0')).rejects.toMatchObject({
      stderr: expect.stringContaining('InvalidAMIID.NotFound'),
    });
  });

  it("gets the service's ValidationException for what the model forbids and the CLI does not check itself (an enum, a pattern)", async () => {
    const input = JSON.stringify({
      name: 'cli-export',
      distributions: [
        {
          region: 'us-east-1',
          amiDistributionConfiguration: { launchPermission: { userIds: ['12345'] } },
          s3ExportConfiguration: { roleName: 'export', diskImageFormat: 'QCOW2', s3Bucket: 'exports' },
        },
      ],
    });
    const failed = aws('111111111111', 'us-east-1', 'imagebuilder', 'create-distribution-configuration', '--cli-input-json', input);
    await expect(failed).rejects.toMatchObject({
      stderr: expect.stringContaining(
        'An error occurred (ValidationException) when calling the CreateDistributionConfiguration operation: 2 validation errors detected:',
      ),
    });
    await expect(failed).rejects.toMatchObject({
      stderr: expect.stringContaining(
        "Value 'QCOW2' at 'distributions.1.member.s3ExportConfiguration.diskImageFormat' failed to satisfy constraint: Member must satisfy enum value set: [VMDK, RAW, VHD]",
      ),
    });
  });

  it('lists Image Builder pipelines and starts a build', async () => {
    const pipelines = (await aws('111111111111', 'us-east-1', 'imagebuilder', 'list-image-pipelines')) as {
      imagePipelineList: { arn: string }[];
    };
    expect(pipelines.imagePipelineList[0]?.arn).toBe(box.refs.get('pipeline:golden-windows'));
    const started = (await aws(
      '111111111111',
      'us-east-1',
      'imagebuilder',
      'start-image-pipeline-execution',
      '--image-pipeline-arn',
      box.refs.get('pipeline:golden-windows') ?? '',
    )) as { imageBuildVersionArn: string };
    expect(started.imageBuildVersionArn).toBe('arn:aws:imagebuilder:us-east-1:111111111111:image/golden-windows/1.0.0/1');
    const image = (await aws(
      '111111111111',
      'us-east-1',
      'imagebuilder',
      'get-image',
      '--image-build-version-arn',
      started.imageBuildVersionArn,
    )) as { image: { state: { status: string } } };
    expect(image.image.state.status).toMatch(/PENDING|BUILDING/);
  });

  it('sends and receives SQS messages (the CLI 2.9 uses the query protocol) and writes SSM parameters', async () => {
    const queue = (await aws('111111111111', 'us-east-1', 'sqs', 'create-queue', '--queue-name', 'cli')) as { QueueUrl: string };
    await aws('111111111111', 'us-east-1', 'sqs', 'send-message', '--queue-url', queue.QueueUrl, '--message-body', 'hello');
    const received = (await aws('111111111111', 'us-east-1', 'sqs', 'receive-message', '--queue-url', queue.QueueUrl)) as {
      Messages: { Body: string }[];
    };
    expect(received.Messages[0]?.Body).toBe('hello');
    await aws('222222222222', 'eu-west-1', 'ssm', 'put-parameter', '--name', '/cli/test', '--value', 'v1', '--type', 'String');
    expect(await aws('222222222222', 'eu-west-1', 'ssm', 'get-parameter', '--name', '/cli/test')).toMatchObject({
      Parameter: { Value: 'v1' },
    });
  });
});

describe.runIf(existsSync(AWS))("the AWS CLI sees the amiTags of a shared AMI in the sharee's own tag scope", () => {
  const sandboxes = useSandbox();
  // demo: eu-west-1 distributes to 222222222222 and 444444444444 and shares with 333333333333, which gets no copy
  const SHAREE = '333333333333';
  const TARGET = '222222222222';
  let box: Sandbox;
  let arn = '';
  const env = (account: string) => ({
    PATH: process.env.PATH,
    HOME: '/tmp',
    AWS_ACCESS_KEY_ID: account,
    AWS_SECRET_ACCESS_KEY: 'sandbox',
    AWS_PAGER: '',
    AWS_EC2_METADATA_DISABLED: 'true',
  });
  async function aws(account: string, region: string, ...args: string[]): Promise<unknown> {
    const { stdout } = await run(AWS, ['--endpoint-url', box.url, '--region', region, '--output', 'json', ...args], { env: env(account) });
    return stdout.trim() === '' ? {} : JSON.parse(stdout);
  }
  const tags = async (account: string, imageId: string): Promise<Record<string, string>> => {
    const out = (await aws(account, 'eu-west-1', 'ec2', 'describe-images', '--image-ids', imageId)) as {
      Images: { Tags?: { Key: string; Value: string }[] }[];
    };
    return Object.fromEntries((out.Images[0]?.Tags ?? []).map((t) => [t.Key, t.Value]));
  };

  beforeAll(async () => {
    box = await sandboxes.start({ scenario: demoScenario() });
    const started = (await aws(
      '111111111111',
      'us-east-1',
      'imagebuilder',
      'start-image-pipeline-execution',
      '--image-pipeline-arn',
      box.refs.get('pipeline:golden-windows') ?? '',
    )) as { imageBuildVersionArn: string };
    arn = started.imageBuildVersionArn;
    box.clock.advance(2 * 3600_000);
    // the reconciler's own command line does the work (no Lambda wiring here)
    const code = await main(['reconcile', arn, '--endpoint-url', box.url, '--region', 'us-east-1'], {
      out: () => undefined,
      err: () => undefined,
      isTTY: false,
      columns: 200,
    });
    expect(code).not.toBe(2);
  });

  it("describe-images as the sharee shows the amiTags it was given, not the copy owner's tags; the owner sees its own", async () => {
    const image = (await aws('111111111111', 'us-east-1', 'imagebuilder', 'get-image', '--image-build-version-arn', arn)) as {
      image: { outputResources: { amis: { region: string; accountId: string; image: string }[] } };
    };
    const copy = image.image.outputResources.amis.find((a) => a.region === 'eu-west-1' && a.accountId === TARGET)?.image ?? '';
    expect(copy).toMatch(/^ami-/);
    expect(await tags(SHAREE, copy)).toStrictEqual({ Team: 'platform', CostCenter: '4711' });
    expect(await tags(TARGET, copy)).toStrictEqual({ Team: 'platform', CostCenter: '4711', 'imagebuilder-reconciler:source-image': arn });
    // a tag filter as the sharee finds the shared copies by the sharee's own tags
    const found = (await aws(SHAREE, 'eu-west-1', 'ec2', 'describe-images', '--filters', 'Name=tag:Team,Values=platform')) as {
      Images: { ImageId: string; OwnerId: string }[];
    };
    expect(found.Images.map((i) => i.OwnerId).sort()).toStrictEqual(['222222222222', '444444444444']);
    // the sharee may change its own tags; the copy's owner never sees them
    await aws(SHAREE, 'eu-west-1', 'ec2', 'create-tags', '--resources', copy, '--tags', 'Key=Stage,Value=canary');
    expect(await tags(SHAREE, copy)).toMatchObject({ Stage: 'canary' });
    expect(await tags(TARGET, copy)).not.toHaveProperty('Stage');
  });
});
