/**
 * Image Builder in the sandbox: validated as the service validates, and distributing with the real
 * service's gaps (each test names the behaviour of the real service it reproduces).
 */
import { DescribeFastLaunchImagesCommand, DescribeImagesCommand, DescribeLaunchTemplateVersionsCommand } from '@aws-sdk/client-ec2';
import {
  CreateDistributionConfigurationCommand,
  CreateImageRecipeCommand,
  GetImageCommand,
  GetImagePipelineCommand,
  ListImagePipelineImagesCommand,
  StartImagePipelineExecutionCommand,
  UpdateDistributionConfigurationCommand,
  UpdateImagePipelineCommand,
  type UpdateImagePipelineCommandInput,
} from '@aws-sdk/client-imagebuilder';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { clients, demoScenario, useSandbox } from '../helpers/sandbox.ts';
import { waitFor } from '../helpers/wait.ts';

const OWNER = '111111111111';
const A = '222222222222';
const D = '444444444444';

async function runToEnd(box: Sandbox, token: string): Promise<string> {
  const ib = clients(box.url, OWNER).imagebuilder;
  const out = await ib.send(
    new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:golden-windows'), clientToken: token }),
  );
  const arn = out.imageBuildVersionArn ?? '';
  box.clock.advance(2 * 3600_000);
  await waitFor(`${arn} to end its build`, async () => {
    const image = await ib.send(new GetImageCommand({ imageBuildVersionArn: arn }));
    return ['AVAILABLE', 'FAILED', 'CANCELLED'].includes(image.image?.state?.status ?? '');
  });
  return arn;
}

describe('sandbox Image Builder', () => {
  let box: Sandbox | undefined;
  const sandboxes = useSandbox('each');

  it.each([
    [{ distributions: [] }, /Provide at least one distribution/],
    [{ distributions: [{ region: 'us-east-1' }] }, /One or more outputs should be provided for each region/],
    [
      {
        distributions: [
          { region: 'us-east-1', amiDistributionConfiguration: {} },
          { region: 'us-east-1', amiDistributionConfiguration: {} },
        ],
      },
      /specified more than once/,
    ],
  ])('rejects an invalid distribution configuration (%j) with InvalidParameterValueException', async (input, message) => {
    box = await sandboxes.start();
    const ib = clients(box.url, OWNER).imagebuilder;
    await expect(
      ib.send(new CreateDistributionConfigurationCommand({ name: 'golden', clientToken: 't', ...input } as never)),
    ).rejects.toMatchObject({ name: 'InvalidParameterValueException', message: expect.stringMatching(message) });
  });

  it.each([
    [
      { distributions: [{ region: 'us-east-1', amiDistributionConfiguration: { name: 'bad/name' } }] },
      "1 validation error detected: Value 'bad/name' at 'distributions.1.member.amiDistributionConfiguration.name' failed to satisfy constraint: Member must satisfy regular expression pattern",
    ],
    [
      { distributions: [{ region: 'us-east-1', launchTemplateConfigurations: [{ launchTemplateId: 'web' }] }] },
      "Value 'web' at 'distributions.1.member.launchTemplateConfigurations.1.member.launchTemplateId'",
    ],
    [
      { distributions: [{ region: 'us-east-1', s3ExportConfiguration: { roleName: 'r', s3Bucket: 'b', diskImageFormat: 'QCOW2' } }] },
      "Value 'QCOW2' at 'distributions.1.member.s3ExportConfiguration.diskImageFormat' failed to satisfy constraint: Member must satisfy enum value set: [VMDK, RAW, VHD]",
    ],
    [
      { distributions: [{ region: 'us-east-1', fastLaunchConfigurations: [{ maxParallelLaunches: 6 }] }] },
      "Value null at 'distributions.1.member.fastLaunchConfigurations.1.member.enabled' failed to satisfy constraint: Member must not be null",
    ],
    [
      { description: '', distributions: [{ region: 'us-east-1', amiDistributionConfiguration: { amiTags: { 'aws:team': 'x' } } }] },
      "Value '{aws:team=x}' at 'distributions.1.member.amiDistributionConfiguration.amiTags' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: ^(?!aws:)",
    ],
  ])("rejects what breaks the service model (%j) with ValidationException in the service's words", async (input, message) => {
    box = await sandboxes.start();
    const ib = clients(box.url, OWNER).imagebuilder;
    await expect(
      ib.send(new CreateDistributionConfigurationCommand({ name: 'golden', clientToken: 't', ...input } as never)),
    ).rejects.toMatchObject({ name: 'ValidationException', message: expect.stringContaining(message) });
  });

  it('walks a build through its states with one Image State Change event per step (aws-facts §1.1)', async () => {
    box = await sandboxes.start({ scenario: demoScenario() });
    const arn = await runToEnd(box, 'states');
    const states = box.state.events
      .filter((e) => e.detailType === 'EC2 Image Builder Image State Change')
      .map((e) => (e.detail as { state: { status: string } }).state.status);
    expect(states).toStrictEqual(['BUILDING', 'TESTING', 'DISTRIBUTING', 'INTEGRATING', 'AVAILABLE']);
    const event = box.state.events.find((e) => e.detailType === 'EC2 Image Builder Image State Change');
    // the event carries the build ARN in resources[0] and no AMI ids
    expect(event).toMatchObject({ source: 'aws.imagebuilder', account: OWNER, region: 'us-east-1', resources: [arn] });
    expect(JSON.stringify(event?.detail)).not.toMatch(/ami-/);
    const image = (await clients(box.url, OWNER).imagebuilder.send(new GetImageCommand({ imageBuildVersionArn: arn }))).image;
    expect(image?.outputResources?.amis?.map((a) => `${a.region}/${a.accountId}`).sort()).toStrictEqual(
      [
        'us-east-1/111111111111',
        'us-east-1/222222222222',
        'us-east-1/333333333333',
        'eu-west-1/222222222222',
        'eu-west-1/444444444444',
        'ap-southeast-2/333333333333',
        'ap-northeast-1/222222222222',
      ].sort(),
    );
    const listed = await clients(box.url, OWNER).imagebuilder.send(
      new ListImagePipelineImagesCommand({ imagePipelineArn: box.refs.get('pipeline:golden-windows') }),
    );
    expect(listed.imageSummaryList?.[0]).toMatchObject({ arn, state: { status: 'AVAILABLE' } });
  });

  it('leaves the gaps Image Builder leaves: no amiTags on target copies (§3, roadmap #62), cross-account templates untouched without the CreatedBy tag (§5), Fast Launch only in the owner (§4)', async () => {
    box = await sandboxes.start({ scenario: demoScenario() });
    const arn = await runToEnd(box, 'gaps');
    const amis =
      (await clients(box.url, OWNER).imagebuilder.send(new GetImageCommand({ imageBuildVersionArn: arn }))).image?.outputResources?.amis ??
      [];
    const ami = (account: string, region: string) => amis.find((a) => a.accountId === account && a.region === region)?.image ?? '';

    const ownerCopy = await clients(box.url, OWNER).ec2.send(new DescribeImagesCommand({ ImageIds: [ami(OWNER, 'us-east-1')] }));
    expect(Object.fromEntries((ownerCopy.Images?.[0]?.Tags ?? []).map((t) => [t.Key, t.Value]))).toMatchObject({
      CreatedBy: 'EC2 Image Builder',
      Ec2ImageBuilderArn: arn,
      Team: 'platform',
    });
    const targetCopy = await clients(box.url, D, 'eu-west-1').ec2.send(new DescribeImagesCommand({ ImageIds: [ami(D, 'eu-west-1')] }));
    expect(targetCopy.Images?.[0]?.Tags).toBeUndefined();

    const ownerTemplate = await clients(box.url, OWNER).ec2.send(
      new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: box.refs.get('lt:web-owner'), Versions: ['$Default'] }),
    );
    expect(ownerTemplate.LaunchTemplateVersions?.[0]?.LaunchTemplateData?.ImageId).toBe(ami(OWNER, 'us-east-1'));
    const targetTemplate = await clients(box.url, D, 'eu-west-1').ec2.send(
      new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: box.refs.get('lt:web-d'), Versions: ['$Default'] }),
    );
    expect(targetTemplate.LaunchTemplateVersions?.[0]?.LaunchTemplateData?.ImageId).toBe(box.refs.get('ami:previous-d-euw1'));

    const ownerFast = await clients(box.url, OWNER).ec2.send(new DescribeFastLaunchImagesCommand({ ImageIds: [ami(OWNER, 'us-east-1')] }));
    expect(ownerFast.FastLaunchImages?.[0]?.State).toMatch(/enabl/);
    const targetFast = await clients(box.url, A).ec2.send(new DescribeFastLaunchImagesCommand({ ImageIds: [ami(A, 'us-east-1')] }));
    expect(targetFast.FastLaunchImages ?? []).toHaveLength(0);

    // SSM parameters may be written cross-account (Image Builder user guide, distribution workflow step actions:
    // "configurations apply … only in the source account, except for SSM parameter configs")
    const param = await clients(box.url, A, 'eu-west-1').ssm.send(new GetParameterCommand({ Name: '/golden/windows/latest' }));
    expect(param.Parameter?.Value).toBe(ami(A, 'eu-west-1'));
  });

  it("fails the image with Image Builder's wording when a copy fails (§1.1)", async () => {
    const scenario = demoScenario();
    scenario.faults = { failedCopies: [`${D}/eu-west-1`] };
    box = await sandboxes.start({ scenario });
    const arn = await runToEnd(box, 'failed');
    const image = (await clients(box.url, OWNER).imagebuilder.send(new GetImageCommand({ imageBuildVersionArn: arn }))).image;
    expect(image?.state?.status).toBe('FAILED');
    expect(image?.state?.reason).toMatch(
      /^Not all distribution jobs are completed\. 1\) AMI Copy Reported Failure For ami-\w+ when distributing the image from the source account \(ID: 111111111111\) to the destination account \(ID: 444444444444\) in Region eu-west-1$/,
    );
    expect(image?.outputResources?.amis?.some((a) => a.accountId === D)).toBe(false);
  });

  it('keeps the configuration a build used, and publishes CloudTrail events for changes (§0.6, §1.1)', async () => {
    box = await sandboxes.start({ scenario: demoScenario() });
    const arn = await runToEnd(box, 'snapshot');
    const ib = clients(box.url, OWNER).imagebuilder;
    const distributionArn = box.refs.get('distribution:golden-windows') ?? '';
    await ib.send(
      new UpdateDistributionConfigurationCommand({
        distributionConfigurationArn: distributionArn,
        distributions: [{ region: 'us-east-1', amiDistributionConfiguration: { name: 'x-{{imagebuilder:buildDate}}' } }],
        clientToken: 'u',
      }),
    );
    const image = (await ib.send(new GetImageCommand({ imageBuildVersionArn: arn }))).image;
    expect(image?.distributionConfiguration?.distributions).toHaveLength(4);
    const trail = box.state.events.find((e) => e.detailType === 'AWS API Call via CloudTrail');
    expect(trail).toMatchObject({
      source: 'aws.imagebuilder',
      detail: {
        eventSource: 'imagebuilder.amazonaws.com',
        eventName: 'UpdateDistributionConfiguration',
        requestParameters: { distributionConfigurationArn: distributionArn },
      },
    });
    // the AMI in the removed region is still there
    const removed = image?.outputResources?.amis?.find((a) => a.region === 'ap-northeast-1');
    const still = await clients(box.url, A, 'ap-northeast-1').ec2.send(new DescribeImagesCommand({ ImageIds: [removed?.image ?? ''] }));
    expect(still.Images?.[0]?.State).toBe('available');
  });
});

describe('sandbox UpdateImagePipeline', () => {
  const sandboxes = useSandbox('each');

  it("validates as the SDK model does, replaces the settings, and its builds use the new recipe with the sandbox clock's dateCreated", async () => {
    const box = await sandboxes.start({ scenario: demoScenario(), clockSpeed: 1 });
    const ib = clients(box.url, OWNER).imagebuilder;
    const pipeline = box.refs.get('pipeline:golden-windows') ?? '';
    const current = (await ib.send(new GetImagePipelineCommand({ imagePipelineArn: pipeline }))).imagePipeline;
    const infrastructureConfigurationArn = current?.infrastructureConfigurationArn ?? '';
    // required by the model: imagePipelineArn and infrastructureConfigurationArn (clientToken the SDK fills in)
    await expect(
      ib.send(new UpdateImagePipelineCommand({ imagePipelineArn: pipeline } as UpdateImagePipelineCommandInput)),
    ).rejects.toMatchObject({
      name: 'ValidationException',
      message:
        "1 validation error detected: Value null at 'infrastructureConfigurationArn' failed to satisfy constraint: Member must not be null",
    });
    const recipe = await ib.send(
      new CreateImageRecipeCommand({
        name: 'golden-windows',
        semanticVersion: '2.0.0',
        parentImage: 'arn:aws:imagebuilder:us-east-1:aws:image/windows-server-2022-english-full-base-x86/x.x.x',
        components: [{ componentArn: 'arn:aws:imagebuilder:us-east-1:aws:component/update-windows/x.x.x' }],
      }),
    );
    await expect(
      ib.send(
        new UpdateImagePipelineCommand({
          imagePipelineArn: pipeline,
          infrastructureConfigurationArn,
          imageRecipeArn: `${recipe.imageRecipeArn ?? ''}9`,
        }),
      ),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(
      ib.send(
        new UpdateImagePipelineCommand({
          imagePipelineArn: `${pipeline}-gone`,
          infrastructureConfigurationArn,
          imageRecipeArn: recipe.imageRecipeArn,
        }),
      ),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });

    const update = {
      imagePipelineArn: pipeline,
      infrastructureConfigurationArn,
      imageRecipeArn: recipe.imageRecipeArn,
      distributionConfigurationArn: current?.distributionConfigurationArn,
      clientToken: 'point-at-2',
    };
    expect(await ib.send(new UpdateImagePipelineCommand(update))).toMatchObject({ imagePipelineArn: pipeline, clientToken: 'point-at-2' });
    // the same token again is the same request; with other parameters it is refused
    await ib.send(new UpdateImagePipelineCommand(update));
    await expect(ib.send(new UpdateImagePipelineCommand({ ...update, description: 'other' }))).rejects.toMatchObject({
      name: 'IdempotentParameterMismatchException',
    });
    const updated = (await ib.send(new GetImagePipelineCommand({ imagePipelineArn: pipeline }))).imagePipeline;
    expect(updated).toMatchObject({
      imageRecipeArn: recipe.imageRecipeArn,
      distributionConfigurationArn: current?.distributionConfigurationArn,
      status: 'ENABLED',
      dateCreated: current?.dateCreated,
    });
    expect(Date.parse(updated?.dateUpdated ?? '')).toBeLessThanOrEqual(box.clock.now());

    const before = box.clock.now();
    const started = await ib.send(new StartImagePipelineExecutionCommand({ imagePipelineArn: pipeline, clientToken: 'after-update' }));
    expect(started.imageBuildVersionArn).toMatch(/\/golden-windows\/2\.0\.0\/1$/);
    const image = (await ib.send(new GetImageCommand({ imageBuildVersionArn: started.imageBuildVersionArn }))).image;
    // dateCreated is the sandbox clock's (the time the build was created), as ListImagePipelineImages says too
    const created = Date.parse(image?.dateCreated ?? '');
    expect(created).toBeGreaterThanOrEqual(before - 1);
    expect(created).toBeLessThanOrEqual(box.clock.now());
    const listed = await ib.send(new ListImagePipelineImagesCommand({ imagePipelineArn: pipeline }));
    expect(listed.imageSummaryList?.map((s) => s.dateCreated)).toStrictEqual([image?.dateCreated]);
  });
});
