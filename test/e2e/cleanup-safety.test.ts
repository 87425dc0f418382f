/**
 * Cleanup must never delete what must be kept: each case a careless operator or an unlucky moment could
 * bring, on the sandbox through the CLI (the same request schema and code the `cleanup` function runs).
 * Every AMI below is a copy in a cell removed from the configuration, older than the minimum age, and
 * would be deleted but for the one thing each case sets up.
 */
import { AutoScalingClient, CreateAutoScalingGroupCommand, CreateLaunchConfigurationCommand } from '@aws-sdk/client-auto-scaling';
import {
  CreateFleetCommand,
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  CreateTagsCommand,
  DescribeImagesCommand,
  ModifyImageAttributeCommand,
  ModifyLaunchTemplateCommand,
  RequestSpotFleetCommand,
  RunInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import {
  GetDistributionConfigurationCommand,
  GetImageCommand,
  StartImagePipelineExecutionCommand,
  UpdateDistributionConfigurationCommand,
} from '@aws-sdk/client-imagebuilder';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { Scenario } from '../../sandbox/harness/scenario.ts';
import type { CleanupReport } from '../../src/lib/cleanup/cleanup.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { A, B, OWNER, REMOVED, cleanupScenario } from '../helpers/cleanup-world.ts';
import { clients, deployCleanupSettings, useSandbox } from '../helpers/sandbox.ts';
import { schemaErrors, validateCleanupReport } from '../helpers/schema.ts';
import { cli } from '../helpers/cli.ts';

const BUILDS = 14;

function scenario(): Scenario {
  return cleanupScenario('cleanup-safety', [A]);
}

describe('cleanup keeps every AMI that must be kept', () => {
  let box: Sandbox;
  let configArn = '';
  let removedDistribution: unknown;
  const builds: string[] = [];
  const copies: string[] = [];
  const ec2A = () => clients(box.url, A, REMOVED).ec2;
  // the deployment whose guards the CLI reads (deployCleanupSettings writes them as its stack would)
  const endpoint = () => ['--endpoint-url', box.url, '--region', 'us-east-1', '--stage', 'sandbox'];
  const sandboxes = useSandbox();

  beforeAll(async () => {
    box = await sandboxes.start({ scenario: scenario(), wire: false, clockSpeed: 1 });
    await deployCleanupSettings(box);
    const ib = clients(box.url, OWNER).imagebuilder;
    for (let i = 1; i <= BUILDS; i += 1) {
      const out = await ib.send(
        new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:base'), clientToken: `b${i}` }),
      );
      builds.push(out.imageBuildVersionArn ?? '');
    }
    // the builds finish, then age past the minimum age (7 days by default)
    box.clock.advance(3 * 3600_000);
    for (const arn of builds) {
      const image = (await ib.send(new GetImageCommand({ imageBuildVersionArn: arn }))).image;
      expect(image?.state?.status).toBe('AVAILABLE');
      copies.push(image?.outputResources?.amis?.find((a) => a.region === REMOVED && a.accountId === A)?.image ?? '');
    }
    // each build was reconciled: its copies carry the reconciler's source tag (the cleanup role may retire
    // only AMIs Image Builder or the reconciler tagged; Image Builder's tags do not reach target copies)
    for (const [i, copy] of copies.entries()) {
      await clients(box.url, A, REMOVED).ec2.send(
        new CreateTagsCommand({ Resources: [copy], Tags: [{ Key: 'imagebuilder-reconciler:source-image', Value: builds[i] ?? '' }] }),
      );
    }
    const ec2 = ec2A();
    // [5] launched once and terminated, long before the cleanup (past the 30 days of the launched-within guard)
    const gone = await ec2.send(new RunInstancesCommand({ ImageId: copies[5], MinCount: 1, MaxCount: 1 }));
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [gone.Instances?.[0]?.InstanceId ?? ''] }));
    for (const i of [6, 7])
      await ec2.send(new ModifyImageAttributeCommand({ ImageId: copies[i], LaunchPermission: { Add: [{ UserId: B }] } }));
    await clients(box.url, B, REMOVED).ec2.send(new RunInstancesCommand({ ImageId: copies[6], MinCount: 1, MaxCount: 1 }));
    box.clock.advance(31 * 86_400_000);

    // [0] a template whose default version (1) is older than its 10 newest versions
    const lt = await ec2.send(
      new CreateLaunchTemplateCommand({ LaunchTemplateName: 'old-default', LaunchTemplateData: { ImageId: copies[0] } }),
    );
    for (let v = 0; v < 11; v += 1)
      await ec2.send(
        new CreateLaunchTemplateVersionCommand({
          LaunchTemplateId: lt.LaunchTemplate?.LaunchTemplateId,
          SourceVersion: '1',
          LaunchTemplateData: { ImageId: copies[9] },
        }),
      );
    await ec2.send(new ModifyLaunchTemplateCommand({ LaunchTemplateId: lt.LaunchTemplate?.LaunchTemplateId, DefaultVersion: '1' }));
    // [1] a launch configuration (and the Auto Scaling group that uses it)
    const autoscaling = new AutoScalingClient({
      endpoint: box.url,
      region: REMOVED,
      credentials: { accessKeyId: A, secretAccessKey: 'sandbox' },
      maxAttempts: 1,
    });
    await autoscaling.send(
      new CreateLaunchConfigurationCommand({ LaunchConfigurationName: 'legacy', ImageId: copies[1], InstanceType: 't3.micro' }),
    );
    await autoscaling.send(
      new CreateAutoScalingGroupCommand({ AutoScalingGroupName: 'legacy', LaunchConfigurationName: 'legacy', MinSize: 0, MaxSize: 2 }),
    );
    // [2] a Spot Fleet request naming the AMI
    await ec2.send(
      new RequestSpotFleetCommand({
        SpotFleetRequestConfig: {
          IamFleetRole: `arn:aws:iam::${A}:role/fleet`,
          TargetCapacity: 1,
          LaunchSpecifications: [{ ImageId: copies[2], InstanceType: 't3.micro' }],
        },
      }),
    );
    // [3] an EC2 Fleet overriding a template's AMI
    await ec2.send(
      new CreateFleetCommand({
        LaunchTemplateConfigs: [
          { LaunchTemplateSpecification: { LaunchTemplateName: 'old-default', Version: '$Latest' }, Overrides: [{ ImageId: copies[3] }] },
        ],
        TargetCapacitySpecification: { TotalTargetCapacity: 1, DefaultTargetCapacityType: 'on-demand' },
      }),
    );
    // [4] a stopped instance (it can be started again); [5]'s terminated one (above) does not keep its AMI
    const stopped = await ec2.send(new RunInstancesCommand({ ImageId: copies[4], MinCount: 1, MaxCount: 1 }));
    await ec2.send(new StopInstancesCommand({ InstanceIds: [stopped.Instances?.[0]?.InstanceId ?? ''] }));
    // [6] shared with B, and B runs it (since before the 31 days above); [7] shared with B, unused
    // [8] the deployment's keep tag
    await ec2.send(
      new CreateTagsCommand({ Resources: [copies[8] ?? ''], Tags: [{ Key: 'imagebuilder-reconciler:keep', Value: 'audit' }] }),
    );
    // [9] is what those newer template versions launch; [10]-[13] are free to go

    // ap-northeast-1 is removed from the configuration
    configArn = box.refs.get('distribution:base') ?? '';
    const current = await ib.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: configArn }));
    removedDistribution = current.distributionConfiguration?.distributions?.find((d) => d.region === REMOVED);
    await ib.send(
      new UpdateDistributionConfigurationCommand({
        distributionConfigurationArn: configArn,
        distributions: current.distributionConfiguration?.distributions?.filter((d) => d.region !== REMOVED),
        clientToken: 'remove',
      }),
    );
  }, 120_000);
  afterEach(async () => {
    vi.unstubAllEnvs();
    box.onRequest = undefined;
    await deployCleanupSettings(box);
  });

  async function exists(imageId: string): Promise<boolean> {
    const out = await ec2A().send(new DescribeImagesCommand({ Filters: [{ Name: 'image-id', Values: [imageId] }], IncludeDisabled: true }));
    // a deregistered AMI stays in the results as `deregistered` for a short interval (DescribeImages)
    return (out.Images ?? []).some((i) => i.State !== 'deregistered');
  }

  function writes(from: number): string[] {
    return box.server.requests
      .slice(from)
      .filter((r) => !/^(Describe|Get|List|AssumeRole$)/.test(r.operation))
      .map((r) => r.operation);
  }

  it('plans first: every kept AMI names the guard that keeps it', async () => {
    const { code, out } = await cli(['cleanup', configArn, '--json', ...endpoint()]);
    const report = JSON.parse(out) as CleanupReport;
    expect(code).toBe(3);
    expect(schemaErrors(validateCleanupReport, report)).toStrictEqual([]);
    const of = (i: number) => report.candidates.find((c) => c.imageId === copies[i]);
    expect(of(0)).toMatchObject({ decision: 'skip', guard: 'in-use', reason: expect.stringMatching(/ec2:LaunchTemplate/) });
    expect(of(1)).toMatchObject({
      decision: 'skip',
      guard: 'in-use',
      reason: expect.stringMatching(/autoscaling:LaunchConfiguration.*autoscaling:AutoScalingGroup/),
    });
    expect(of(2)).toMatchObject({ decision: 'skip', guard: 'in-use', reason: expect.stringMatching(/ec2:SpotFleetRequest sfr-/) });
    expect(of(3)).toMatchObject({ decision: 'skip', guard: 'in-use', reason: expect.stringMatching(/ec2:Fleet fleet-/) });
    expect(of(4)).toMatchObject({ decision: 'skip', guard: 'in-use', reason: expect.stringMatching(/ec2:Instance/) });
    expect(of(5)).toMatchObject({ decision: 'deregister', outcome: 'planned' });
    expect(of(6)).toMatchObject({ decision: 'skip', guard: 'shared', reason: `shared with ${B}` });
    expect(of(7)).toMatchObject({ decision: 'skip', guard: 'shared' });
    expect(of(8)).toMatchObject({ decision: 'skip', guard: 'keep-tag' });
    expect(of(9)).toMatchObject({ decision: 'skip', guard: 'in-use', reason: expect.stringMatching(/ec2:LaunchTemplate/) });
    for (const i of [10, 11, 12, 13]) expect(of(i)).toMatchObject({ decision: 'deregister', outcome: 'planned' });
  });

  it.each([
    [
      'a padded keep tag key',
      ['--apply', '--keep-tag', 'imagebuilder-reconciler:keep '],
      /keepTagKeys\[0\]: a tag key must not start or end with whitespace/,
    ],
    ['an empty keep tag key', ['--apply', '--keep-tag', ''], /keepTagKeys\[0\]: a tag key must not be empty/],
    [
      "a lower minimum age than the deployment's",
      ['--apply', '--min-age-days', '1'],
      /guards\.minAgeDays 1 would loosen the deployment's 7 \(RECONCILER_CLEANUP_MIN_AGE_DAYS\)/,
    ],
    [
      'including shared AMIs where the deployment keeps them',
      ['--apply', '--include-shared'],
      /guards\.shared include would loosen the deployment's skip/,
    ],
    [
      "a higher cap than the deployment's",
      ['--apply', '--max-deletions', '500'],
      /maxDeletions 500 would raise the deployment's cap of 20/,
    ],
    [
      'a build of another account',
      ['--apply', '--build', 'arn:aws:imagebuilder:us-east-1:999999999999:image/base/1.0.0/1'],
      /imageBuildArns\[0\]: accountId 999999999999 is not the configuration's/,
    ],
    [
      'a build of another partition',
      ['--apply', '--build', 'arn:aws-cn:imagebuilder:cn-north-1:111111111111:image/base/1.0.0/1'],
      /imageBuildArns\[0\]: partition aws-cn is not the configuration's \(aws\)/,
    ],
    [
      'a build of another region',
      ['--apply', '--build', 'arn:aws:imagebuilder:eu-west-1:111111111111:image/base/1.0.0/1'],
      /imageBuildArns\[0\]: region eu-west-1 is not the configuration's/,
    ],
    [
      'a padded build ARN',
      ['--apply', '--build', ' arn:aws:imagebuilder:us-east-1:111111111111:image/base/1.0.0/1'],
      /imageBuildArns\[0\]: an image build version ARN must not start or end with whitespace/,
    ],
    ['a reviewed plan without --apply', ['--plan', 'plan.json'], /add --apply/],
    [
      'a reviewed plan that is not there',
      ['--apply', '--plan', '/nonexistent/plan.json'],
      /--plan \/nonexistent\/plan\.json: not a readable JSON plan/,
    ],
    ['a region that is not one', ['--apply', '--only-region', 'mars'], /only\.regions\[0\]: must be a region name/],
    ['an account that is not one', ['--apply', '--only-account', '12345'], /only\.accounts\[0\]: must be a 12-digit account ID/],
    ['an AMI ID that is not one', ['--apply', '--only-image', 'ami-XYZ'], /only\.imageIds\[0\]: must be an AMI ID/],
    ['a strategy that does not exist', ['--apply', '--strategy', 'delete'], /argument 'delete' is invalid/],
    ['an option that does not exist (a dry-run typo)', ['--apply', '--dryRun'], /unknown option '--dryRun'/],
    ['a negative minimum age', ['--apply', '--min-age-days', '-3'], /expected a whole number of days/],
  ])('refuses %s with exit 2, one line, and no AWS call but reading the deployment guards', async (_name, flags, message) => {
    const before = box.server.requests.length;
    const { code, err } = await cli(['cleanup', configArn, ...flags, ...endpoint()]);
    expect(err.trim()).toMatch(message);
    expect(code).toBe(2);
    expect(err.trim().split('\n')).toHaveLength(1);
    // a malformed option is refused before any call; one that would loosen a guard once the deployment's are read
    const calls = box.server.requests.slice(before).map((r) => r.operation);
    expect(calls.filter((op) => op !== 'GetCallerIdentity' && op !== 'GetParameter')).toStrictEqual([]);
    if (!/would (loosen|raise)/.test(err)) expect(calls).toStrictEqual([]);
  });

  it.each([
    ['not an object', 'apply everything'],
    ['an array', [{ distributionConfigurationArn: 'x' }]],
    ['null', null],
    ['no configuration ARN', { mode: 'apply' }],
    [
      'unknown top-level keys (dryRun meant as a guard)',
      { distributionConfigurationArn: 'CONFIG', mode: 'apply', minAgeDays: 3650, strategy: 'deprecate', dryRun: true },
    ],
    ['an unknown guard', { distributionConfigurationArn: 'CONFIG', mode: 'apply', guards: { keepTag: 'x' } }],
    [
      "a padded keep tag (replacing the deployment's, once)",
      { distributionConfigurationArn: 'CONFIG', mode: 'apply', guards: { keepTagKey: 'imagebuilder-reconciler:keep ' } },
    ],
    ['an aws: keep tag', { distributionConfigurationArn: 'CONFIG', mode: 'apply', guards: { keepTagKey: 'aws:cloudformation:stack' } }],
    ['a mode in capitals', { distributionConfigurationArn: 'CONFIG', mode: 'APPLY' }],
    ['a mode that is a boolean', { distributionConfigurationArn: 'CONFIG', mode: true }],
    ['minAgeDays as a string', { distributionConfigurationArn: 'CONFIG', mode: 'apply', guards: { minAgeDays: '30' } }],
    ['a fractional minAgeDays', { distributionConfigurationArn: 'CONFIG', mode: 'apply', guards: { minAgeDays: 7.5 } }],
    ['a huge minAgeDays', { distributionConfigurationArn: 'CONFIG', mode: 'apply', guards: { minAgeDays: 1e308 } }],
    ['a lower minAgeDays', { distributionConfigurationArn: 'CONFIG', mode: 'apply', guards: { minAgeDays: 0 } }],
    [
      "a harsher strategy than the deployment's",
      { distributionConfigurationArn: 'CONFIG', mode: 'apply', guards: { strategy: 'deregister' } },
      { RECONCILER_CLEANUP_STRATEGY: 'deprecate' },
    ],
    ['a shorter grace period', { distributionConfigurationArn: 'CONFIG', mode: 'apply', guards: { disableGraceDays: 0 } }],
    ['shared: include against the deployment', { distributionConfigurationArn: 'CONFIG', mode: 'apply', guards: { shared: 'include' } }],
    ['guards as a string', { distributionConfigurationArn: 'CONFIG', mode: 'apply', guards: 'none' }],
    [
      'imageBuildArns as a string',
      {
        distributionConfigurationArn: 'CONFIG',
        mode: 'apply',
        imageBuildArns: 'arn:aws:imagebuilder:us-east-1:111111111111:image/base/1.0.0/1',
      },
    ],
    ['a nested object where an ARN belongs', { distributionConfigurationArn: { arn: 'CONFIG' }, mode: 'apply' }],
    ['a padded configuration ARN', { distributionConfigurationArn: ' CONFIG', mode: 'apply' }],
    [
      'a configuration ARN of another partition',
      {
        distributionConfigurationArn: 'arn:aws-us-gov:imagebuilder:us-gov-west-1:111111111111:distribution-configuration/base',
        mode: 'apply',
        imageBuildArns: ['arn:aws:imagebuilder:us-east-1:111111111111:image/base/1.0.0/1'],
      },
    ],
    [
      'a pipeline ARN instead of a configuration',
      { distributionConfigurationArn: 'arn:aws:imagebuilder:us-east-1:111111111111:image-pipeline/base', mode: 'apply' },
    ],
    ['a 5 MB keep tag', { distributionConfigurationArn: 'CONFIG', mode: 'apply', guards: { keepTagKey: 'k'.repeat(5_000_000) } }],
    ["a cap above the deployment's", { distributionConfigurationArn: 'CONFIG', mode: 'apply', maxDeletions: 21 }],
    ['a negative cap', { distributionConfigurationArn: 'CONFIG', mode: 'apply', maxDeletions: -1 }],
    ['a reviewed plan in plan mode', { distributionConfigurationArn: 'CONFIG', mode: 'plan', plan: [] }],
    [
      'a reviewed plan entry with extra keys',
      {
        distributionConfigurationArn: 'CONFIG',
        mode: 'apply',
        plan: [{ imageId: 'ami-0123456789abcdef0', region: REMOVED, accountId: A, decision: 'deregister', force: true }],
      },
    ],
    ['only with an unknown narrowing key', { distributionConfigurationArn: 'CONFIG', mode: 'apply', only: { tags: ['x'] } }],
    ['prototype pollution', JSON.parse('{"distributionConfigurationArn":"CONFIG","mode":"apply","__proto__":{"minAgeDays":0}}')],
  ])('the cleanup payload refuses %s, naming the problem, with no AWS call', async (_name, payload, env: Record<string, string> = {}) => {
    for (const [key, value] of Object.entries(env)) vi.stubEnv(key, value);
    const resolved = JSON.parse(
      JSON.stringify(payload ?? null)
        .replaceAll('"CONFIG"', JSON.stringify(configArn))
        .replaceAll('" CONFIG"', JSON.stringify(` ${configArn}`))
        .replaceAll('{"arn":"CONFIG"}', JSON.stringify({ arn: configArn })),
    ) as unknown;
    const before = box.server.requests.length;
    const { parseCleanupRequest } = await import('../../src/lib/cleanup/request.ts');
    const { cleanup } = await import('../../src/lib/cleanup/cleanup.ts');
    const { loadConfig } = await import('../../src/lib/core/config.ts');
    const { createClientFactory } = await import('../../src/lib/aws/clients.ts');
    const { InputError } = await import('../../src/lib/core/errors.ts');
    const config = loadConfig();
    const run = async () =>
      cleanup(parseCleanupRequest(resolved, 'manual'), {
        config,
        clients: createClientFactory({ ...config, endpoint: box.url }),
        log: { info: () => undefined, warn: () => undefined, error: () => undefined },
        now: () => new Date(),
        newRunId: () => 'corpus',
        publish: false,
      });
    const error = await run().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InputError);
    const message = (error as Error).message;
    expect(message.length).toBeLessThan(400);
    expect(message).not.toMatch(/\n/);
    expect(box.server.requests.slice(before)).toStrictEqual([]);
  });

  it("a keep tag a request adds is added to the deployment's, never in its place", async () => {
    const { out } = await cli([
      'cleanup',
      configArn,
      '--apply',
      '--keep-tag',
      'team:hold',
      '--only-image',
      copies[8] ?? '',
      '--json',
      ...endpoint(),
    ]);
    const report = JSON.parse(out) as CleanupReport;
    expect(report.settings.keepTagKeys).toStrictEqual(['imagebuilder-reconciler:keep', 'team:hold']);
    expect(report.candidates.find((c) => c.imageId === copies[8])).toMatchObject({
      decision: 'skip',
      guard: 'keep-tag',
      reason: 'tagged imagebuilder-reconciler:keep=audit',
    });
    expect(await exists(copies[8] ?? '')).toBe(true);
  });

  it('re-checks each AMI right before acting: a region re-added to the configuration during --apply keeps its AMIs', async () => {
    const ib = clients(box.url, OWNER).imagebuilder;
    let readded = false;
    box.onRequest = (record) => {
      // after the plan's reads, before the first destructive call: someone puts the region back
      if (!readded && record.operation === 'DescribeFastLaunchImages') {
        readded = true;
        void ib.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: configArn })).then((current) =>
          ib.send(
            new UpdateDistributionConfigurationCommand({
              distributionConfigurationArn: configArn,
              distributions: [...(current.distributionConfiguration?.distributions ?? []), removedDistribution as never],
              clientToken: 're-add',
            }),
          ),
        );
      }
    };
    const before = box.server.requests.length;
    const { code, out } = await cli(['cleanup', configArn, '--apply', '--json', ...endpoint()]);
    const report = JSON.parse(out) as CleanupReport;
    expect(readded).toBe(true);
    expect(code).toBe(0);
    expect(writes(before).filter((op) => op !== 'UpdateDistributionConfiguration')).toStrictEqual([]);
    for (const i of [5, 10, 11, 12, 13]) {
      expect(report.candidates.find((c) => c.imageId === copies[i])).toMatchObject({
        decision: 'skip',
        guard: 'changed',
        reason: expect.stringMatching(/still in the distribution configuration/),
      });
    }
    for (const copy of copies) expect(await exists(copy)).toBe(true);
    // the region goes again, for the cases below
    const current = await ib.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: configArn }));
    await ib.send(
      new UpdateDistributionConfigurationCommand({
        distributionConfigurationArn: configArn,
        distributions: current.distributionConfiguration?.distributions?.filter((d) => d.region !== REMOVED),
        clientToken: 'remove-again',
      }),
    );
  });

  it('acts only on a reviewed plan, at most the cap per run, and records what it removed on the build', async () => {
    const file = `${process.env.TMPDIR ?? '/tmp'}/cleanup-plan-${process.pid}.json`;
    const planned = await cli([
      'cleanup',
      configArn,
      '--only-image',
      copies[10] ?? '',
      copies[11] ?? '',
      copies[12] ?? '',
      '--plan-out',
      file,
      '--json',
      ...endpoint(),
    ]);
    expect(planned.code).toBe(3);
    await deployCleanupSettings(box, { RECONCILER_CLEANUP_MAX_PER_RUN: '2' });
    const { code, out } = await cli(['cleanup', configArn, '--apply', '--plan', file, '--json', ...endpoint()]);
    const report = JSON.parse(out) as CleanupReport;
    expect(code).toBe(3);
    const of = (i: number) => report.candidates.find((c) => c.imageId === copies[i]);
    expect(of(10)).toMatchObject({ outcome: 'done', verified: 'gone' });
    expect(of(11)).toMatchObject({ outcome: 'done', verified: 'gone' });
    expect(of(12)).toMatchObject({ decision: 'deregister', outcome: 'planned', reason: expect.stringMatching(/cap of 2 per run/) });
    // not in the reviewed plan: kept, even though every guard lets it go
    expect(of(13)).toMatchObject({ decision: 'skip', guard: 'not-in-plan' });
    expect(of(5)).toMatchObject({ decision: 'skip', guard: 'not-in-plan' });
    expect(await exists(copies[10] ?? '')).toBe(false);
    expect(await exists(copies[12] ?? '')).toBe(true);
    expect(await exists(copies[13] ?? '')).toBe(true);

    // a later status of that build reports the cell as cleaned up, not as an AMI still to come
    const { code: statusCode, out: status } = await cli([
      'status',
      builds[10] ?? '',
      '--json',
      '--endpoint-url',
      box.url,
      '--region',
      'us-east-1',
    ]);
    const reconciled = JSON.parse(status) as ReconcileReport;
    const cell = reconciled.cells.find((c) => c.region === REMOVED && c.accountId === A);
    expect(cell).toMatchObject({ status: 'skipped' });
    expect(cell?.checks[0]?.reason).toMatch(
      new RegExp(`^cleaned up by imagebuilder-reconciler: .* ${copies[10] ?? ''} deregistered: cell removed from base`),
    );
    expect(reconciled.outcome).not.toBe('pending');
    expect(statusCode).not.toBe(4);
  });

  it('shared: include (where the deployment allows it) keeps an AMI another account uses, and records launch permissions before disable', async () => {
    await deployCleanupSettings(box, { RECONCILER_CLEANUP_SHARED: 'include' });
    // EC2 makes usage reports asynchronously: let simulated time pass once one is asked for
    box.onRequest = (record) => {
      if (record.operation === 'CreateImageUsageReport') box.clock.advance(60_000);
    };
    const { out } = await cli([
      'cleanup',
      configArn,
      '--apply',
      '--include-shared',
      '--strategy',
      'disable',
      '--only-image',
      copies[6] ?? '',
      copies[7] ?? '',
      '--json',
      ...endpoint(),
    ]);
    const report = JSON.parse(out) as CleanupReport;
    const of = (i: number) => report.candidates.find((c) => c.imageId === copies[i]);
    expect(of(6)).toMatchObject({ decision: 'skip', guard: 'in-use', reason: `used by other accounts: ${B} (1 ec2:Instance)` });
    expect(of(7)).toMatchObject({ decision: 'disable', outcome: 'done', verified: 'disabled', launchPermissions: [B] });
    const tags =
      (await ec2A().send(new DescribeImagesCommand({ ImageIds: [copies[7] ?? ''], IncludeDisabled: true }))).Images?.[0]?.Tags ?? [];
    expect(tags).toContainEqual({ Key: 'imagebuilder-reconciler:launch-permissions', Value: B });
    expect(await exists(copies[6] ?? '')).toBe(true);
  });

  it('after all of it, every AMI that had to be kept is still there', async () => {
    for (const i of [0, 1, 2, 3, 4, 6, 8, 9]) expect(await exists(copies[i] ?? '')).toBe(true);
  });
});
