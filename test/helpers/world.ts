/**
 * A small in-memory AWS for adapter tests: aws-sdk-client-mock stubs whose answers depend on the account
 * (from the client's credentials) and region (from its config), so that multi-account behaviour is tested
 * with the real SDK clients and the real client factory.
 */
import {
  CreateLaunchTemplateVersionCommand,
  CreateTagsCommand,
  DescribeFastLaunchImagesCommand,
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  EnableFastLaunchCommand,
  type Image as Ec2Image,
  ModifyImageAttributeCommand,
  ModifyLaunchTemplateCommand,
} from '@aws-sdk/client-ec2';
import { PutEventsCommand, EventBridgeClient } from '@aws-sdk/client-eventbridge';
import {
  GetImageCommand,
  type Image,
  type ImageSummary,
  ImagebuilderClient,
  ListImagePipelineImagesCommand,
  ListImageBuildVersionsCommand,
  RetryImageCommand,
} from '@aws-sdk/client-imagebuilder';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';

const OWN = '111122223333';

interface Template {
  id: string;
  name: string;
  defaultVersion: number;
  versions: { number: number; imageId: string | undefined }[];
}

interface FastLaunchItem {
  State: string;
  StateTransitionReason?: string;
  MaxParallelLaunches?: number;
  SnapshotConfiguration?: { TargetResourceCount?: number };
  LaunchTemplate?: { LaunchTemplateId?: string; Version?: string };
}

interface World {
  images: Record<string, Ec2Image[]>;
  launchPermissions: Record<string, { UserId?: string; Group?: string }[]>;
  templates: Record<string, Template[]>;
  fastLaunch: Record<string, FastLaunchItem>;
  parameters: Record<string, string>;
  /** Accounts whose role cannot be assumed. */
  deniedAccounts: Set<string>;
  /** `Operation account/region` pairs that always answer RequestLimitExceeded. */
  throttled: Set<string>;
  /** GetImage answers, by ARN. */
  imagebuilder: Record<string, Image>;
  pipelineImages: ImageSummary[];
}

function newWorld(): World {
  return {
    images: {},
    launchPermissions: {},
    templates: {},
    fastLaunch: {},
    parameters: {},
    deniedAccounts: new Set(),
    throttled: new Set(),
    imagebuilder: {},
    pipelineImages: [],
  };
}

type GetClient = () => { config: { region: unknown; credentials: unknown } };

async function whoAmI(getClient: GetClient): Promise<{ account: string; region: string; key: string }> {
  const config = getClient().config;
  const region = typeof config.region === 'function' ? await (config.region as () => Promise<string>)() : String(config.region);
  const credentials = await (config.credentials as () => Promise<{ accessKeyId: string }>)();
  const account = credentials.accessKeyId.startsWith('ASIA') ? credentials.accessKeyId.slice(4) : OWN;
  return { account, region, key: `${account}/${region}` };
}

function awsError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  Object.assign(error, { $fault: 'client', $metadata: { httpStatusCode: 400 } });
  return error;
}

interface Mocks {
  ec2: AwsClientStub<EC2Client>;
  imagebuilder: AwsClientStub<ImagebuilderClient>;
  ssm: AwsClientStub<SSMClient>;
  sts: AwsClientStub<STSClient>;
  eventBridge: AwsClientStub<EventBridgeClient>;
  sqs: AwsClientStub<SQSClient>;
}

/** Install the mocks; every command is answered from `world`, which tests may change between runs. */
function installWorld(world: World): Mocks {
  const ec2 = mockClient(EC2Client);
  const imagebuilder = mockClient(ImagebuilderClient);
  const ssm = mockClient(SSMClient);
  const sts = mockClient(STSClient);
  const eventBridge = mockClient(EventBridgeClient);
  const sqs = mockClient(SQSClient);

  const guard = async (op: string, getClient: GetClient) => {
    const who = await whoAmI(getClient);
    if (world.throttled.has(`${op} ${who.key}`)) throw awsError('RequestLimitExceeded', 'Request limit exceeded.');
    return who;
  };
  const template = (key: string, id: string | undefined, name?: string): Template | undefined =>
    (world.templates[key] ?? []).find((t) => t.id === id || (name !== undefined && t.name === name));

  sts.on(AssumeRoleCommand).callsFake(async (input: { RoleArn: string }) => {
    const account = /iam::(\d{12}):role/.exec(input.RoleArn)?.[1] ?? '';
    if (world.deniedAccounts.has(account)) {
      throw awsError(
        'AccessDenied',
        `User: arn:aws:sts::${OWN}:assumed-role/reconciler is not authorized to perform: sts:AssumeRole on resource: ${input.RoleArn}`,
      );
    }
    return {
      Credentials: {
        AccessKeyId: `ASIA${account}`,
        SecretAccessKey: 'secret',
        SessionToken: 'token',
        Expiration: new Date(Date.now() + 3600_000),
      },
    };
  });
  sts.on(GetCallerIdentityCommand).resolves({ Account: OWN });

  imagebuilder.on(GetImageCommand).callsFake(async (input: { imageBuildVersionArn: string }) => {
    const image = world.imagebuilder[input.imageBuildVersionArn];
    if (image === undefined)
      throw awsError('ResourceNotFoundException', `The specified resource ${input.imageBuildVersionArn} does not exist`);
    return { image };
  });
  imagebuilder.on(ListImagePipelineImagesCommand).callsFake(async () => ({ imageSummaryList: world.pipelineImages }));
  imagebuilder.on(ListImageBuildVersionsCommand).callsFake(async () => ({ imageSummaryList: world.pipelineImages }));
  imagebuilder.on(RetryImageCommand).callsFake(async (input: { imageBuildVersionArn: string; clientToken: string }) => input);

  ec2.on(DescribeImagesCommand).callsFake(async (input: { Filters?: { Name: string; Values: string[] }[] }, getClient: GetClient) => {
    const who = await guard('DescribeImages', getClient);
    const ids = input.Filters?.find((f) => f.Name === 'image-id')?.Values ?? [];
    return { Images: (world.images[who.key] ?? []).filter((i) => ids.includes(i.ImageId ?? '')) };
  });
  ec2.on(DescribeImageAttributeCommand).callsFake(async (input: { ImageId: string }) => ({
    ImageId: input.ImageId,
    LaunchPermissions: world.launchPermissions[input.ImageId] ?? [],
  }));
  ec2.on(DescribeSnapshotsCommand).callsFake(async (input: { SnapshotIds: string[] }) => ({
    Snapshots: input.SnapshotIds.map((id) => ({
      SnapshotId: id,
      Encrypted: true,
      KmsKeyId: `arn:aws:kms:us-east-1:${OWN}:key/k1`,
      VolumeSize: 30,
    })),
  }));
  ec2
    .on(CreateTagsCommand)
    .callsFake(async (input: { Resources: string[]; Tags: { Key: string; Value: string }[] }, getClient: GetClient) => {
      const who = await guard('CreateTags', getClient);
      for (const image of world.images[who.key] ?? []) {
        if (!input.Resources.includes(image.ImageId ?? '')) continue;
        const tags = (image.Tags ?? []).filter((t) => !input.Tags.some((n) => n.Key === t.Key));
        image.Tags = [...tags, ...input.Tags];
      }
      return {};
    });
  ec2
    .on(ModifyImageAttributeCommand)
    .callsFake(async (input: { ImageId: string; LaunchPermission: { Add: { UserId?: string; Group?: string }[] } }) => {
      world.launchPermissions[input.ImageId] = [...(world.launchPermissions[input.ImageId] ?? []), ...input.LaunchPermission.Add];
      return {};
    });
  ec2
    .on(DescribeLaunchTemplatesCommand)
    .callsFake(async (input: { LaunchTemplateIds?: string[]; LaunchTemplateNames?: string[] }, getClient: GetClient) => {
      const who = await guard('DescribeLaunchTemplates', getClient);
      const found = template(who.key, input.LaunchTemplateIds?.[0], input.LaunchTemplateNames?.[0]);
      if (found === undefined) throw awsError('InvalidLaunchTemplateId.NotFound', 'The specified launch template does not exist.');
      return {
        LaunchTemplates: [
          {
            LaunchTemplateId: found.id,
            LaunchTemplateName: found.name,
            DefaultVersionNumber: found.defaultVersion,
            LatestVersionNumber: found.versions.length,
            // the world's templates have opted in to the reconciler's writes
            Tags: [{ Key: 'imagebuilder-reconciler:managed', Value: 'true' }],
          },
        ],
      };
    });
  ec2
    .on(DescribeLaunchTemplateVersionsCommand)
    .callsFake(async (input: { LaunchTemplateId: string; Versions?: string[]; Filters?: { Values: string[] }[] }, getClient: GetClient) => {
      const who = await guard('DescribeLaunchTemplateVersions', getClient);
      const found = template(who.key, input.LaunchTemplateId);
      if (found === undefined) throw awsError('InvalidLaunchTemplateId.NotFound', 'The specified launch template does not exist.');
      let versions = found.versions;
      if (input.Versions !== undefined && input.Versions.length > 0) {
        const wanted = input.Versions.map((v) =>
          v === '$Default' ? found.defaultVersion : v === '$Latest' ? found.versions.length : Number(v),
        );
        versions = versions.filter((v) => wanted.includes(v.number));
      }
      const imageFilter = input.Filters?.[0]?.Values[0];
      if (imageFilter !== undefined) versions = versions.filter((v) => v.imageId === imageFilter);
      return {
        LaunchTemplateVersions: versions.map((v) => ({
          VersionNumber: v.number,
          DefaultVersion: v.number === found.defaultVersion,
          LaunchTemplateData: { ImageId: v.imageId },
        })),
      };
    });
  ec2
    .on(CreateLaunchTemplateVersionCommand)
    .callsFake(async (input: { LaunchTemplateId: string; LaunchTemplateData: { ImageId: string } }, getClient: GetClient) => {
      const who = await guard('CreateLaunchTemplateVersion', getClient);
      const found = template(who.key, input.LaunchTemplateId);
      if (found === undefined) throw awsError('InvalidLaunchTemplateId.NotFound', 'The specified launch template does not exist.');
      const number = found.versions.length + 1;
      found.versions.push({ number, imageId: input.LaunchTemplateData.ImageId });
      return { LaunchTemplateVersion: { VersionNumber: number } };
    });
  ec2
    .on(ModifyLaunchTemplateCommand)
    .callsFake(async (input: { LaunchTemplateId: string; DefaultVersion: string }, getClient: GetClient) => {
      const who = await guard('ModifyLaunchTemplate', getClient);
      const found = template(who.key, input.LaunchTemplateId);
      if (found === undefined) throw awsError('InvalidLaunchTemplateId.NotFound', 'The specified launch template does not exist.');
      found.defaultVersion = Number(input.DefaultVersion);
      return {};
    });
  ec2.on(DescribeFastLaunchImagesCommand).callsFake(async (input: { ImageIds: string[] }, getClient: GetClient) => {
    await guard('DescribeFastLaunchImages', getClient);
    return {
      FastLaunchImages: input.ImageIds.flatMap((id) =>
        world.fastLaunch[id] === undefined ? [] : [{ ImageId: id, ...world.fastLaunch[id] }],
      ),
    };
  });
  ec2.on(EnableFastLaunchCommand).callsFake(
    async (
      input: {
        ImageId: string;
        MaxParallelLaunches?: number;
        SnapshotConfiguration?: { TargetResourceCount?: number };
        LaunchTemplate?: { LaunchTemplateId?: string; Version?: string };
      },
      getClient: GetClient,
    ) => {
      await guard('EnableFastLaunch', getClient);
      if (world.fastLaunch[input.ImageId]?.State === 'enabling')
        throw awsError('InvalidParameter', `EC2 Fast Launch for ${input.ImageId} is enabling`);
      world.fastLaunch[input.ImageId] = {
        State: 'enabling',
        MaxParallelLaunches: input.MaxParallelLaunches ?? 6,
        SnapshotConfiguration: input.SnapshotConfiguration,
        LaunchTemplate: input.LaunchTemplate,
      };
      return { ImageId: input.ImageId, State: 'enabling' };
    },
  );

  ssm.on(GetParameterCommand).callsFake(async (input: { Name: string }, getClient: GetClient) => {
    const who = await guard('GetParameter', getClient);
    const value = world.parameters[`${who.key}/${input.Name}`];
    if (value === undefined) throw awsError('ParameterNotFound', `Parameter ${input.Name} not found.`);
    return { Parameter: { Name: input.Name, Value: value } };
  });
  ssm.on(PutParameterCommand).callsFake(async (input: { Name: string; Value: string }, getClient: GetClient) => {
    const who = await guard('PutParameter', getClient);
    world.parameters[`${who.key}/${input.Name}`] = input.Value;
    return { Version: 2 };
  });
  eventBridge.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'e1' }] });
  sqs.on(SendMessageCommand).resolves({ MessageId: 'm1' });
  return { ec2, imagebuilder, ssm, sts, eventBridge, sqs };
}

export { OWN, awsError, installWorld, newWorld };
export type { Mocks, Template, World };
