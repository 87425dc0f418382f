/**
 * Image Builder builds that AWS fails, failed in the sandbox too, and Image Builder's client tokens (issue 26,
 * items 2, 5, 6, 7 and 9). What AWS does, and where it says so:
 * - A distribution whose EC2 call EC2 refuses fails the image ("Not all distribution jobs are completed", the
 *   wording of a failed copy): a region that does not exist (`mars-west-9`) or that the account cannot reach;
 *   a launch permission group other than `all` ("Group … Valid Values: all", EC2 API Reference,
 *   LaunchPermission); an AMI name EC2 refuses ("3-128 alphanumeric characters, parentheses (()), square
 *   brackets ([]), spaces ( ), periods (.), slashes (/), dashes (-), single quotes ('), at-signs (@), or
 *   underscores(_)", EC2 API Reference, CopyImage, Name: a `:` is refused); an SSM parameter SSM refuses
 *   (Systems Manager User Guide, "Parameter name requirements and constraints"); an S3 export to a bucket that
 *   does not exist ("The destination bucket must exist", EC2 API Reference, ExportImage, S3ExportLocation).
 * - With 48 amiTags the owner's AMI carries 50 tags (Image Builder adds `CreatedBy` and `Ec2ImageBuilderArn`);
 *   the reconciler's source tag is a 51st, which EC2 refuses (`TagLimitExceeded`): the reconcile fails that
 *   cell with EC2's answer.
 * - A clientToken: "Unique, case-sensitive identifier you provide to ensure idempotency of the request"; the
 *   same request again gets the first answer; other parameters get `IdempotentParameterMismatchException`
 *   ("You have specified a client token for an operation using parameter values that differ from a previous
 *   request that used the same client token.", HTTP 400,
 *   https://docs.aws.amazon.com/imagebuilder/latest/APIReference/API_UpdateDistributionConfiguration.html).
 */
import {
  type Distribution,
  CreateDistributionConfigurationCommand,
  GetDistributionConfigurationCommand,
  GetImageCommand,
  StartImagePipelineExecutionCommand,
  UpdateDistributionConfigurationCommand,
} from '@aws-sdk/client-imagebuilder';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { main } from '../../src/cli/index.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { HAS_AWS_CLI, awsCli, failure } from '../helpers/fidelity.ts';
import { DEMO_OWNER, clients, demoScenario, useSandbox } from '../helpers/sandbox.ts';
import { waitFor } from '../helpers/wait.ts';

const REGION = 'us-east-1';

describe('Image Builder as AWS documents it', () => {
  let box: Sandbox;
  let configArn = '';
  let pipelineArn = '';
  let original: Distribution[] = [];
  const sandboxes = useSandbox();
  const ib = () => clients(box.url, DEMO_OWNER).imagebuilder;

  beforeAll(async () => {
    box = await sandboxes.start({ scenario: demoScenario(), clockSpeed: 3000 });
    configArn = box.refs.get('distribution:golden-windows') ?? '';
    pipelineArn = box.refs.get('pipeline:golden-windows') ?? '';
    original =
      (await ib().send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: configArn }))).distributionConfiguration
        ?.distributions ?? [];
  });

  /** The demo's us-east-1 distribution, changed, alone; then a build of the pipeline, to its end. */
  async function buildWith(token: string, change: (d: Distribution) => Distribution, extra: Distribution[] = []) {
    const base = original.find((d) => d.region === REGION) as Distribution;
    await ib().send(
      new UpdateDistributionConfigurationCommand({
        distributionConfigurationArn: configArn,
        distributions: [change(structuredClone(base)), ...extra],
        clientToken: `update-${token}`,
      }),
    );
    const started = await ib().send(new StartImagePipelineExecutionCommand({ imagePipelineArn: pipelineArn, clientToken: token }));
    const arn = started.imageBuildVersionArn ?? '';
    return waitFor(`the end of ${arn}`, async () => {
      const image = (await ib().send(new GetImageCommand({ imageBuildVersionArn: arn }))).image;
      const status = image?.state?.status;
      return status === 'AVAILABLE' || status === 'FAILED' ? { arn, status, reason: image?.state?.reason ?? '' } : undefined;
    });
  }

  const failing: { what: string; token: string; change: (d: Distribution) => Distribution; extra?: Distribution[]; reason: RegExp }[] = [
    {
      what: 'a region that does not exist',
      token: 'mars',
      change: (d: Distribution) => d,
      extra: [{ region: 'mars-west-9', amiDistributionConfiguration: { name: 'golden-{{imagebuilder:buildDate}}' } }],
      reason: /Region mars-west-9: InvalidRegion/,
    },
    {
      what: 'a region the account does not hold',
      token: 'unheld',
      change: (d: Distribution) => d,
      extra: [{ region: 'sa-east-1', amiDistributionConfiguration: { name: 'golden-{{imagebuilder:buildDate}}' } }],
      reason: /Region sa-east-1: InvalidRegion/,
    },
    {
      what: 'the launch permission group "everyone"',
      token: 'everyone',
      change: (d: Distribution) => ({
        ...d,
        amiDistributionConfiguration: { ...d.amiDistributionConfiguration, launchPermission: { userGroups: ['everyone'] } },
      }),
      reason: /InvalidAMIAttributeItemValue: Invalid attribute item value "everyone" for group item type/,
    },
    {
      what: 'an AMI name with a ":"',
      token: 'colon',
      change: (d: Distribution) => ({
        ...d,
        amiDistributionConfiguration: { ...d.amiDistributionConfiguration, name: 'golden:{{imagebuilder:buildDate}}' },
      }),
      reason: /InvalidAMIName\.Malformed/,
    },
    {
      what: 'an AMI name with a non-breaking space',
      token: 'nbsp',
      change: (d: Distribution) => ({
        ...d,
        amiDistributionConfiguration: { ...d.amiDistributionConfiguration, name: 'golden\u00a0{{imagebuilder:buildDate}}' },
      }),
      reason: /InvalidAMIName\.Malformed/,
    },
    {
      what: 'an SSM parameter name with a slash but no leading slash',
      token: 'ssm-relative',
      change: (d: Distribution) => ({ ...d, ssmParameterConfigurations: [{ parameterName: 'golden/ami', dataType: 'text' as const }] }),
      reason: /SSM parameter golden\/ami .*: ValidationException: Parameter name must be a fully qualified name\./,
    },
    {
      what: 'an SSM parameter under /aws/',
      token: 'ssm-aws',
      change: (d: Distribution) => ({ ...d, ssmParameterConfigurations: [{ parameterName: '/aws/golden', dataType: 'text' as const }] }),
      reason: /SSM parameter \/aws\/golden .*: AccessDeniedException: No access to reserved parameter name/,
    },
    {
      what: 'an S3 export to a bucket that does not exist',
      token: 's3-missing',
      change: (d: Distribution) => ({
        ...d,
        s3ExportConfiguration: { roleName: 'vmimport', diskImageFormat: 'VHD' as const, s3Bucket: 'no-such-bucket' },
      }),
      reason: /Failed to export .* to s3:\/\/no-such-bucket .*InvalidParameter/,
    },
  ];

  it.each(failing)('fails a build with $what, with the reason', async ({ token, change, extra, reason }) => {
    const end = await buildWith(token, change, extra ?? []);
    expect(end.status).toBe('FAILED');
    expect(end.reason).toMatch(reason);
  });

  it("fails the owner's cell of 48 amiTags with EC2's TagLimitExceeded, and lint refuses the configuration", async () => {
    const amiTags = Object.fromEntries(Array.from({ length: 48 }, (_, i) => [`k${i}`, 'v']));
    const end = await buildWith('tags-48', (d) => ({ ...d, amiDistributionConfiguration: { ...d.amiDistributionConfiguration, amiTags } }));
    expect(end.status).toBe('AVAILABLE');
    vi.stubEnv('RECONCILER_SDK_MAX_ATTEMPTS', '1');
    let out = '';
    let linted = '';
    try {
      const at = ['--endpoint-url', box.url, '--region', REGION];
      await main(['reconcile', end.arn, '--json', ...at], { out: (s) => (out += s), err: () => undefined, isTTY: false, columns: 200 });
      await main(['lint', configArn, '--json', ...at], { out: (s) => (linted += s), err: () => undefined, isTTY: false, columns: 200 });
    } finally {
      vi.unstubAllEnvs();
    }
    const report = JSON.parse(out) as ReconcileReport;
    const owner = report.cells.find((c) => c.accountId === DEMO_OWNER && c.region === REGION);
    expect(owner?.status).toBe('failed');
    expect(JSON.stringify(owner)).toMatch(/TagLimitExceeded/);
    expect(linted).toMatch(/ami-tag-limit/);
  });

  it('a create retried with the same clientToken gets the first answer; an update with other parameters is refused', async () => {
    const request = {
      name: 'fidelity-retry',
      clientToken: 'create-once',
      distributions: [{ region: REGION, amiDistributionConfiguration: { name: 'retry-{{imagebuilder:buildDate}}' } }],
    };
    const first = await ib().send(new CreateDistributionConfigurationCommand(request));
    const again = await ib().send(new CreateDistributionConfigurationCommand(request));
    expect(again.distributionConfigurationArn).toBe(first.distributionConfigurationArn);
    const update = (description: string) =>
      ib().send(
        new UpdateDistributionConfigurationCommand({
          distributionConfigurationArn: first.distributionConfigurationArn,
          description,
          distributions: request.distributions,
          clientToken: 'update-once',
        }),
      );
    await update('first');
    await update('first');
    const other = await failure(update('second'));
    expect(other).toMatchObject({ name: 'IdempotentParameterMismatchException', $metadata: { httpStatusCode: 400 } });
  });

  it.runIf(HAS_AWS_CLI)('the same mismatch through the AWS CLI', async () => {
    const input = (description: string) =>
      JSON.stringify({
        distributionConfigurationArn: configArn,
        description,
        distributions: [{ region: REGION, amiDistributionConfiguration: { name: 'cli-{{imagebuilder:buildDate}}' } }],
        clientToken: 'cli-update-token',
      });
    const first = await awsCli(box.url, DEMO_OWNER, REGION, [
      'imagebuilder',
      'update-distribution-configuration',
      '--cli-input-json',
      input('a'),
    ]);
    expect(first.code, first.stderr).toBe(0);
    const second = await awsCli(box.url, DEMO_OWNER, REGION, [
      'imagebuilder',
      'update-distribution-configuration',
      '--cli-input-json',
      input('b'),
    ]);
    expect(second.error).toBe('IdempotentParameterMismatchException');
  });
});
