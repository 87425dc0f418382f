/**
 * End to end on the wired sandbox: a build whose distribution exports the AMI to S3 (`s3ExportConfiguration`).
 * Image Builder starts EC2's ExportImage; the reconciler checks, on the owner's cell of the region, the export
 * task (pending while it is active) and the file it wrote (`<prefix>export-ami-….vmdk`, HeadObject): ok when it
 * is there, failed naming the key when it is not.
 */
import { DescribeExportImageTasksCommand, ExportImageCommand } from '@aws-sdk/client-ec2';
import { StartImagePipelineExecutionCommand } from '@aws-sdk/client-imagebuilder';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { Scenario } from '../../sandbox/harness/scenario.ts';
import { EXPORT_MS, registerImage } from '../../sandbox/emulator/services/ec2/index.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { buildBundles } from '../helpers/build.ts';
import { clients, useSandbox } from '../helpers/sandbox.ts';

const OWNER = '111111111111';
const A = '222222222222';
const REGION = 'us-east-1';
const BUCKET = 'golden-exports';

function s3(url: string, account: string, region = REGION): S3Client {
  return new S3Client({
    endpoint: url,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId: account, secretAccessKey: 'sandbox' },
    maxAttempts: 1,
  });
}

function scenario(): Scenario {
  return {
    name: 's3-export',
    defaultAccount: OWNER,
    accounts: [A],
    regions: [REGION, 'eu-west-1'],
    clockSpeed: 3000,
    imagebuilder: {
      recipes: [
        {
          name: 'golden-linux',
          semanticVersion: '1.0.0',
          parentImage: 'arn:aws:imagebuilder:us-east-1:aws:image/amazon-linux-2023-x86/x.x.x',
          components: [{ componentArn: 'arn:aws:imagebuilder:us-east-1:aws:component/update-linux/x.x.x' }],
        },
      ],
      infrastructure: [{ name: 'golden-linux', instanceProfileName: 'EC2InstanceProfileForImageBuilder' }],
      distributions: [
        {
          name: 'golden-linux',
          distributions: [
            {
              region: REGION,
              amiDistributionConfiguration: { name: 'golden-linux-{{imagebuilder:buildDate}}' },
              s3ExportConfiguration: { roleName: 'vmimport', diskImageFormat: 'VMDK', s3Bucket: BUCKET, s3Prefix: 'exports/' },
            },
          ],
        },
      ],
      pipelines: [{ name: 'golden-linux', recipe: 'golden-linux', infrastructure: 'golden-linux', distribution: 'golden-linux' }],
    },
  };
}

function exportCheck(report: ReconcileReport | undefined) {
  return report?.cells.find((c) => c.accountId === OWNER && c.region === REGION)?.checks.find((c) => c.check === 's3-export');
}

async function refusal(send: Promise<unknown>): Promise<string> {
  const error = await send.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof Error)) throw new Error('S3 accepted the request');
  return error.name;
}

describe('sandbox S3 (path-style)', () => {
  let box: Sandbox;
  const sandboxes = useSandbox();
  beforeAll(async () => {
    box = await sandboxes.start({
      scenario: { name: 's3', defaultAccount: OWNER, accounts: [A], regions: [REGION, 'eu-west-1'], clockSpeed: 1 },
    });
  });

  it('stores, lists, reads and deletes objects of its owner, and refuses other accounts and regions', async () => {
    const owner = s3(box.url, OWNER);
    await owner.send(new CreateBucketCommand({ Bucket: 'notes' }));
    await owner.send(new PutObjectCommand({ Bucket: 'notes', Key: 'a/one.txt', Body: 'hello' }));
    await owner.send(new PutObjectCommand({ Bucket: 'notes', Key: 'b/two.txt', Body: 'world' }));
    expect(
      (await owner.send(new ListObjectsV2Command({ Bucket: 'notes', Prefix: 'a/' }))).Contents?.map((o) => [o.Key, o.Size]),
    ).toStrictEqual([['a/one.txt', 5]]);
    expect(await (await owner.send(new GetObjectCommand({ Bucket: 'notes', Key: 'a/one.txt' }))).Body?.transformToString()).toBe('hello');
    expect((await owner.send(new HeadObjectCommand({ Bucket: 'notes', Key: 'b/two.txt' }))).ContentLength).toBe(5);
    await owner.send(new DeleteObjectCommand({ Bucket: 'notes', Key: 'b/two.txt' }));
    expect(await refusal(owner.send(new HeadObjectCommand({ Bucket: 'notes', Key: 'b/two.txt' })))).toBe('NotFound');
    expect(await refusal(owner.send(new GetObjectCommand({ Bucket: 'notes', Key: 'b/two.txt' })))).toBe('NoSuchKey');
    expect(await refusal(s3(box.url, A).send(new GetObjectCommand({ Bucket: 'notes', Key: 'a/one.txt' })))).toBe('AccessDenied');
    expect(await refusal(s3(box.url, OWNER, 'eu-west-1').send(new GetObjectCommand({ Bucket: 'notes', Key: 'a/one.txt' })))).toBe(
      'AuthorizationHeaderMalformed',
    );
    expect(await refusal(s3(box.url, A).send(new CreateBucketCommand({ Bucket: 'notes' })))).toBe('BucketAlreadyExists');
  });

  it('exports an AMI: the task is active, then completed with the file at <prefix>export-ami-<id>.<format>; a missing bucket is refused', async () => {
    const ec2 = clients(box.url, OWNER).ec2;
    const ami = registerImage(box.state, box.clock, { account: OWNER, region: REGION, name: 'linux' }).imageId;
    expect(
      await refusal(
        ec2.send(new ExportImageCommand({ ImageId: ami, DiskImageFormat: 'VMDK', S3ExportLocation: { S3Bucket: 'no-such-bucket' } })),
      ),
    ).toBe('InvalidParameter');
    const started = await ec2.send(
      new ExportImageCommand({ ImageId: ami, DiskImageFormat: 'RAW', S3ExportLocation: { S3Bucket: 'notes', S3Prefix: 'vm/' } }),
    );
    expect(started).toMatchObject({ Status: 'active', StatusMessage: 'validating', ImageId: ami });
    const id = started.ExportImageTaskId ?? '';
    const describe = async () => (await ec2.send(new DescribeExportImageTasksCommand({ ExportImageTaskIds: [id] }))).ExportImageTasks?.[0];
    expect((await describe())?.Status).toBe('active');
    box.clock.advance(EXPORT_MS);
    expect(await describe()).toMatchObject({ Status: 'completed', S3ExportLocation: { S3Bucket: 'notes', S3Prefix: 'vm/' } });
    expect((await s3(box.url, OWNER).send(new HeadObjectCommand({ Bucket: 'notes', Key: `vm/${id}.raw` }))).ContentLength).toBeGreaterThan(
      0,
    );
  });
});

describe('S3 export end to end', () => {
  let box: Sandbox;
  let arn: string;
  let first: ReconcileReport | undefined;
  let firstRuns: ReconcileReport[];
  const sandboxes = useSandbox();

  beforeAll(async () => {
    await buildBundles();
    box = await sandboxes.start({ scenario: scenario(), wire: true, clockSpeed: 3000 });
    await s3(box.url, OWNER).send(new CreateBucketCommand({ Bucket: BUCKET }));
    arn =
      (
        await clients(box.url, OWNER).imagebuilder.send(
          new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:golden-linux'), clientToken: 's3-export' }),
        )
      ).imageBuildVersionArn ?? '';
    first = await box.finalReport(arn, 30_000);
    await box.idle();
    firstRuns = box.reports(arn);
  }, 120_000);

  it('is ok once the export task completed and its file is in the bucket', async () => {
    // whether the first run still saw the task active depends on how fast that run was: pending or ok, never failed
    expect(exportCheck(firstRuns[0])?.result).toMatch(/^(pending|ok)$/);
    const objects =
      (await s3(box.url, OWNER).send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'exports/' }))).Contents?.map((o) => o.Key) ?? [];
    expect(objects).toHaveLength(1);
    expect(objects[0]).toMatch(/^exports\/export-ami-[0-9a-f]{17}\.vmdk$/);
    expect(exportCheck(first)).toMatchObject({
      subject: `s3://${BUCKET}/exports/`,
      result: 'ok',
      reason: expect.stringContaining(`s3://${BUCKET}/${objects[0] ?? ''} is in the bucket`),
    });
    expect(first?.outcome).toMatch(/converged|repaired/);
  });

  it('fails, naming the key, when the exported file is no longer in the bucket', async () => {
    const key = (await s3(box.url, OWNER).send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'exports/' }))).Contents?.[0]?.Key ?? '';
    await s3(box.url, OWNER).send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
    const available = box.state.events.find(
      (e) => e.resources[0] === arn && (e.detail as { state?: { status: string } }).state?.status === 'AVAILABLE',
    );
    if (available === undefined) throw new Error('no AVAILABLE event');
    const before = box.reports(arn).length;
    box.wiring?.deliver(available);
    const again = await box.finalReport(arn, 30_000, before);
    await box.idle();
    expect(exportCheck(again)).toMatchObject({
      result: 'failed',
      reason: expect.stringContaining(`s3://${BUCKET}/${key} is not in the bucket`),
    });
    expect(again?.cells.find((c) => c.accountId === OWNER && c.region === REGION)?.status).toBe('failed');
    expect(again?.outcome).toBe('failed');
  });
});
