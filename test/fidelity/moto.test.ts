/**
 * A second, independent emulator as a witness: moto 5 (`moto_server`, written by people who never saw this
 * sandbox) gets the same requests as the sandbox, through the AWS SDK for JavaScript and through boto3, and
 * every difference in HTTP status, error code and response shape (the top-level members of the answer) is
 * listed. Each case states what AWS answers and where it says so; the sandbox must answer that. Where moto
 * answers otherwise, the case records moto's answer and why AWS's sources side with the sandbox: moto is a
 * witness, not the authority (it is lenient in places too). A moto update that changes an answer fails this
 * test, so the difference is settled again rather than silently forgotten.
 *
 * Skipped when `moto_server` is not on PATH (`.ci/run` insists on it).
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer } from 'node:net';
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import * as autoscaling from '@aws-sdk/client-auto-scaling';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import * as dynamodb from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import * as ec2 from '@aws-sdk/client-ec2';
import { IAMClient } from '@aws-sdk/client-iam';
import * as iam from '@aws-sdk/client-iam';
import { S3Client } from '@aws-sdk/client-s3';
import * as s3 from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import * as sqs from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import * as ssm from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import * as sts from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Emulator, startEmulator } from '../../sandbox/emulator/index.ts';
import { waitFor } from '../helpers/wait.ts';

/** moto's default account: the sandbox acts as the same one, so ARNs and owners agree. */
const ACCOUNT = '123456789012';
const REGION = 'us-east-1';

type Service = 'ec2' | 'ssm' | 'sts' | 'iam' | 'autoscaling' | 'sqs' | 'dynamodb' | 's3';

/** What an endpoint answered: the HTTP status, the error code (null on success), the answer's top-level members. */
interface Answer {
  status: number;
  code: string | null;
  keys?: string[];
}

interface Case {
  id: string;
  service: Service;
  operation: string;
  input: Record<string, unknown>;
  /** What AWS answers (keys: the members a success carries, when they are checked). */
  aws: Answer;
  /** Where AWS says so. */
  source: string;
  /** moto's answer where it differs from AWS's, and why the sandbox follows AWS. */
  moto?: Answer & { settled: string };
  /** Changes state: sent once, through the SDK (boto3 sends only the others). */
  setup?: boolean;
}

const EC2_ERRORS = 'https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html';

const CASES: Case[] = [
  // EC2
  {
    id: 'ec2-describe-own-images',
    service: 'ec2',
    operation: 'DescribeImages',
    input: { Owners: ['self'] },
    aws: { status: 200, code: null, keys: ['Images'] },
    source: 'https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html',
  },
  {
    id: 'ec2-describe-missing-image',
    service: 'ec2',
    operation: 'DescribeImages',
    input: { ImageIds: ['ami-0123456789abcdef0'] },
    aws: { status: 400, code: 'InvalidAMIID.NotFound' },
    source: `${EC2_ERRORS} (InvalidAMIID.NotFound: "The specified AMI doesn't exist")`,
  },
  {
    id: 'ec2-describe-malformed-image',
    service: 'ec2',
    operation: 'DescribeImages',
    input: { ImageIds: ['ami-zz'] },
    aws: { status: 400, code: 'InvalidAMIID.Malformed' },
    source: `${EC2_ERRORS} (InvalidAMIID.Malformed: "The specified AMI ID is malformed. Ensure that you provide the full AMI ID, in the form ami-xxxxxxxxxxxxxxxxx")`,
    moto: {
      status: 400,
      code: 'InvalidAMIID.NotFound',
      settled: 'EC2 names InvalidAMIID.Malformed for an id not of the form ami-xxxxxxxx; moto checks existence only',
    },
  },
  {
    id: 'ec2-tag-missing-image',
    service: 'ec2',
    operation: 'CreateTags',
    input: { Resources: ['ami-0123456789abcdef0'], Tags: [{ Key: 'Team', Value: 'platform' }] },
    aws: { status: 400, code: 'InvalidAMIID.NotFound' },
    source: `${EC2_ERRORS}; docs/aws-sources.md ("What does EC2 answer to CreateTags on an AMI the caller cannot see?")`,
  },
  {
    id: 'ec2-describe-missing-template',
    service: 'ec2',
    operation: 'DescribeLaunchTemplates',
    input: { LaunchTemplateNames: ['no-such-template'] },
    aws: { status: 400, code: 'InvalidLaunchTemplateName.NotFoundException' },
    source: `${EC2_ERRORS} (InvalidLaunchTemplateName.NotFoundException: "The specified launch template name is invalid")`,
  },
  {
    id: 'ec2-create-template',
    service: 'ec2',
    operation: 'CreateLaunchTemplate',
    input: { LaunchTemplateName: 'differential', LaunchTemplateData: { InstanceType: 't3.micro' } },
    aws: { status: 200, code: null, keys: ['LaunchTemplate'] },
    source: 'https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplate.html',
    setup: true,
  },
  {
    id: 'ec2-create-template-again',
    service: 'ec2',
    operation: 'CreateLaunchTemplate',
    input: { LaunchTemplateName: 'differential', LaunchTemplateData: { InstanceType: 't3.micro' } },
    aws: { status: 400, code: 'InvalidLaunchTemplateName.AlreadyExistsException' },
    source: `${EC2_ERRORS} (InvalidLaunchTemplateName.AlreadyExistsException: "The launch template name is already in use")`,
    setup: true,
  },
  {
    id: 'ec2-describe-template-versions',
    service: 'ec2',
    operation: 'DescribeLaunchTemplateVersions',
    input: { LaunchTemplateName: 'differential' },
    aws: { status: 200, code: null, keys: ['LaunchTemplateVersions'] },
    source: 'https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeLaunchTemplateVersions.html',
  },
  {
    id: 'ec2-describe-regions',
    service: 'ec2',
    operation: 'DescribeRegions',
    input: {},
    aws: { status: 200, code: null, keys: ['Regions'] },
    source: 'https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeRegions.html',
  },
  // SSM
  {
    id: 'ssm-get-missing',
    service: 'ssm',
    operation: 'GetParameter',
    input: { Name: '/golden/missing' },
    aws: { status: 400, code: 'ParameterNotFound' },
    source: 'https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html (Errors)',
  },
  {
    id: 'ssm-put',
    service: 'ssm',
    operation: 'PutParameter',
    input: { Name: '/golden/differential', Value: 'x', Type: 'String' },
    aws: { status: 200, code: null, keys: ['Tier', 'Version'] },
    source: 'https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html',
    setup: true,
  },
  {
    id: 'ssm-put-again',
    service: 'ssm',
    operation: 'PutParameter',
    input: { Name: '/golden/differential', Value: 'y', Type: 'String' },
    aws: { status: 400, code: 'ParameterAlreadyExists' },
    source: 'https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html (Errors: ParameterAlreadyExists)',
  },
  {
    id: 'ssm-put-relative-path',
    service: 'ssm',
    operation: 'PutParameter',
    input: { Name: 'golden/ami', Value: 'x', Type: 'String' },
    aws: { status: 400, code: 'ValidationException' },
    source:
      'Systems Manager User Guide, "Parameter name requirements and constraints" (a hierarchy begins with /); users quote "Parameter name must be a fully qualified name." (hashicorp/terraform-provider-aws#7251)',
    moto: {
      status: 200,
      code: null,
      keys: ['Tier', 'Version'],
      settled: 'moto accepts a hierarchy without its leading slash; AWS refuses it',
    },
    setup: true,
  },
  {
    id: 'ssm-put-aws-prefix',
    service: 'ssm',
    operation: 'PutParameter',
    input: { Name: 'aws-golden', Value: 'x', Type: 'String' },
    aws: { status: 400, code: 'AccessDeniedException' },
    source:
      'User Guide: "A parameter name can\'t be prefixed with "aws" or "ssm" (case-insensitive)"; users quote AccessDeniedException "No access to reserved parameter name: awslimitschecker." (aws-solutions/quota-monitor-for-aws#30, awslabs/aws-deployment-framework#119)',
    moto: {
      status: 400,
      code: 'ValidationException',
      settled:
        'moto answers ValidationException; what users quote from AWS for an aws… name is AccessDeniedException (docs/aws-sources.md)',
    },
  },
  {
    id: 'ssm-put-reserved-path',
    service: 'ssm',
    operation: 'PutParameter',
    input: { Name: '/aws/golden', Value: 'x', Type: 'String' },
    aws: { status: 400, code: 'AccessDeniedException' },
    source: 'users quote "No access to reserved parameter name: …" (aws-cloudformation/cfn-lint#4089)',
  },
  // STS, IAM
  {
    id: 'sts-caller',
    service: 'sts',
    operation: 'GetCallerIdentity',
    input: {},
    aws: { status: 200, code: null, keys: ['Account', 'Arn', 'UserId'] },
    source: 'https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html',
  },
  {
    id: 'iam-missing-role',
    service: 'iam',
    operation: 'GetRole',
    input: { RoleName: 'no-such-role' },
    aws: { status: 404, code: 'NoSuchEntityException' },
    source: 'https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRole.html (Errors: NoSuchEntity, HTTP 404)',
  },
  // Auto Scaling
  {
    id: 'autoscaling-groups',
    service: 'autoscaling',
    operation: 'DescribeAutoScalingGroups',
    input: {},
    aws: { status: 200, code: null, keys: ['AutoScalingGroups'] },
    source: 'https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingGroups.html',
  },
  // SQS
  {
    id: 'sqs-missing-queue',
    service: 'sqs',
    operation: 'GetQueueUrl',
    input: { QueueName: 'no-such-queue' },
    aws: { status: 400, code: 'QueueDoesNotExist' },
    source:
      'https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueUrl.html (QueueDoesNotExist, whose query code the model names AWS.SimpleQueueService.NonExistentQueue)',
  },
  {
    id: 'sqs-create-queue',
    service: 'sqs',
    operation: 'CreateQueue',
    input: { QueueName: 'differential' },
    aws: { status: 200, code: null, keys: ['QueueUrl'] },
    source: 'https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html',
    setup: true,
  },
  // DynamoDB
  {
    id: 'dynamodb-missing-table',
    service: 'dynamodb',
    operation: 'GetItem',
    input: { TableName: 'no-such-table', Key: { id: { S: 'x' } } },
    aws: { status: 400, code: 'ResourceNotFoundException' },
    source: 'https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_GetItem.html (Errors: ResourceNotFoundException)',
  },
  // S3
  {
    id: 's3-head-missing-bucket',
    service: 's3',
    operation: 'HeadBucket',
    input: { Bucket: 'no-such-bucket-differential' },
    aws: { status: 404, code: 'NotFound' },
    source: 'https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html (a HEAD has no body: 404 Not Found)',
  },
];

/**
 * The SDK for JavaScript names an error by its shape in the model, boto3 by the code on the wire (the query
 * protocol's awsQueryError code): the same error seen by both.
 */
const WIRE_CODES: Record<string, string> = {
  NoSuchEntityException: 'NoSuchEntity',
  QueueDoesNotExist: 'AWS.SimpleQueueService.NonExistentQueue',
};

const MODULES: Record<Service, Record<string, unknown>> = { ec2, ssm, sts, iam, autoscaling, sqs, dynamodb, s3 };

function client(service: Service, url: string) {
  const config = { endpoint: url, region: REGION, credentials: { accessKeyId: ACCOUNT, secretAccessKey: 'sandbox' }, maxAttempts: 1 };
  switch (service) {
    case 'ec2':
      return new EC2Client(config);
    case 'ssm':
      return new SSMClient(config);
    case 'sts':
      return new STSClient(config);
    case 'iam':
      return new IAMClient(config);
    case 'autoscaling':
      return new AutoScalingClient(config);
    case 'sqs':
      return new SQSClient(config);
    case 'dynamodb':
      return new DynamoDBClient(config);
    case 's3':
      return new S3Client({ ...config, forcePathStyle: true });
  }
}

/** Send a case through the SDK; what came back, as an {@link Answer}. */
async function viaSdk(url: string, c: Case): Promise<Answer> {
  const Command = MODULES[c.service][`${c.operation}Command`] as new (input: Record<string, unknown>) => never;
  const sdk = client(c.service, url) as unknown as {
    send: (command: never, options: { abortSignal: AbortSignal }) => Promise<Record<string, unknown>>;
  };
  try {
    // a call either endpoint never answers is a difference too, not a hung test
    const out = await sdk.send(new Command(c.input), { abortSignal: AbortSignal.timeout(10_000) });
    const keys = Object.keys(out)
      .filter((k) => k !== '$metadata' && out[k] !== undefined)
      .sort();
    return { status: (out.$metadata as { httpStatusCode?: number }).httpStatusCode ?? 0, code: null, keys };
  } catch (error: unknown) {
    if (!(error instanceof Error)) throw error;
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0;
    return { status, code: error.name };
  }
}

/** The answer that counts for a comparison: keys only where the case checks them. */
function shape(answer: Answer, withKeys: boolean): Answer {
  return withKeys ? answer : { status: answer.status, code: answer.code };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

function hasMoto(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v moto_server'], { stdio: 'pipe' });
    return true;
  } catch (error: unknown) {
    if (error instanceof Error) return false;
    throw error;
  }
}

describe.runIf(hasMoto())('the sandbox against moto, settled against AWS', () => {
  let moto: ChildProcess | undefined;
  let motoUrl = '';
  let emulator: Emulator;
  const answers: Record<'sandbox' | 'moto', Record<string, Answer>> = { sandbox: {}, moto: {} };

  beforeAll(async () => {
    const port = await freePort();
    moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
    motoUrl = `http://127.0.0.1:${port}`;
    emulator = await startEmulator({
      port: 0,
      defaultAccount: ACCOUNT,
      accounts: [ACCOUNT],
      regions: [REGION, 'eu-west-1'],
      clock: { speed: 1, start: Date.now() },
    });
    await waitFor(
      'moto_server to listen',
      () =>
        fetch(`${motoUrl}/moto-api/`).then(
          (r) => r.ok,
          () => false,
        ),
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    // the same requests, in the same order, to both
    for (const c of CASES) {
      answers.sandbox[c.id] = await viaSdk(emulator.url, c);
      answers.moto[c.id] = await viaSdk(motoUrl, c);
    }
  }, 120_000);

  afterAll(async () => {
    moto?.kill('SIGTERM');
    emulator?.clock.stop();
    await emulator?.server.close();
  });

  it.each(CASES)('$id: the sandbox answers as AWS does', ({ id, aws }) => {
    expect(shape(answers.sandbox[id] as Answer, aws.keys !== undefined)).toStrictEqual(aws);
  });

  it('moto differs from the sandbox exactly where the table says, each difference settled against AWS', () => {
    const differences = CASES.filter((c) => {
      const withKeys = c.aws.keys !== undefined;
      return (
        JSON.stringify(shape(answers.sandbox[c.id] as Answer, withKeys)) !== JSON.stringify(shape(answers.moto[c.id] as Answer, withKeys))
      );
    }).map((c) => ({ id: c.id, moto: shape(answers.moto[c.id] as Answer, c.aws.keys !== undefined) }));
    const settled = CASES.filter((c) => c.moto !== undefined).map((c) => {
      const { settled: _why, ...answer } = c.moto as Answer & { settled: string };
      return { id: c.id, moto: shape(answer, c.aws.keys !== undefined) };
    });
    expect(differences).toStrictEqual(settled);
  });

  it('boto3 sees what the SDK sees, at both', { timeout: 180_000 }, async () => {
    const readOnly = CASES.filter((c) => c.setup !== true);
    const request = {
      endpoints: { sandbox: emulator.url, moto: motoUrl },
      account: ACCOUNT,
      region: REGION,
      cases: readOnly.map(({ id, service, operation, input }) => ({ id, service, operation, input })),
    };
    // asynchronously: the sandbox answers from this very process
    const child = promisify(execFile)('python3', [new URL('./boto3-runner.py', import.meta.url).pathname], {
      encoding: 'utf8',
      timeout: 150_000,
    });
    child.child.stdin?.end(JSON.stringify(request));
    const out = JSON.parse((await child).stdout) as Record<'sandbox' | 'moto', Record<string, Answer>>;
    for (const name of ['sandbox', 'moto'] as const)
      for (const c of readOnly) {
        const withKeys = c.aws.keys !== undefined;
        const seen = shape(out[name][c.id] as Answer, withKeys);
        // an error without a body (HEAD): boto3 names it by its status ("404"), the SDK by its reason (NotFound)
        const sdkAnswer = shape(answers[name][c.id] as Answer, withKeys);
        const sdk = { ...sdkAnswer, code: sdkAnswer.code === null ? null : (WIRE_CODES[sdkAnswer.code] ?? sdkAnswer.code) };
        expect(seen, `${name} ${c.id} through boto3`).toStrictEqual(/^\d+$/.test(seen.code ?? '') ? { ...sdk, code: seen.code } : sdk);
      }
  });
});
