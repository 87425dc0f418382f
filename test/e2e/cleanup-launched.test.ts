/**
 * Cleanup keeps an AMI launched within RECONCILER_CLEANUP_LAUNCHED_WITHIN_DAYS, even when the instance is
 * gone: on the sandbox, EC2 records LastLaunchedTime when RunInstances starts an instance from the AMI.
 */
import { DescribeImagesCommand, RunInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import {
  GetDistributionConfigurationCommand,
  GetImageCommand,
  StartImagePipelineExecutionCommand,
  UpdateDistributionConfigurationCommand,
} from '@aws-sdk/client-imagebuilder';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { createClientFactory } from '../../src/lib/aws/clients.ts';
import { cleanup } from '../../src/lib/cleanup/cleanup.ts';
import { parseCleanupRequest } from '../../src/lib/cleanup/request.ts';
import { loadConfig } from '../../src/lib/core/config.ts';
import { OWNER, REMOVED, cleanupScenario } from '../helpers/cleanup-world.ts';
import { clients, sandbox } from '../helpers/sandbox.ts';
import { schemaErrors, validateCleanupReport } from '../helpers/schema.ts';

const DAY = 86_400_000;

describe('cleanup and an AMI launched lately', () => {
  let box: Sandbox;
  let copy = '';
  let launchedAt = '';
  let configArn = '';
  const ec2 = () => clients(box.url, OWNER, REMOVED).ec2;

  beforeAll(async () => {
    box = await sandbox({ scenario: cleanupScenario('cleanup-launched', [OWNER]), wire: false, clockSpeed: 1 });
    const ib = clients(box.url, OWNER).imagebuilder;
    const build =
      (await ib.send(new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:base'), clientToken: 'b1' })))
        .imageBuildVersionArn ?? '';
    box.clock.advance(3 * 3600_000);
    const image = (await ib.send(new GetImageCommand({ imageBuildVersionArn: build }))).image;
    expect(image?.state?.status).toBe('AVAILABLE');
    copy = image?.outputResources?.amis?.find((a) => a.region === REMOVED && a.accountId === OWNER)?.image ?? '';
    box.clock.advance(10 * DAY);
    // launched once, ten days after it was made; the instance is gone since
    const run = await ec2().send(new RunInstancesCommand({ ImageId: copy, MinCount: 1, MaxCount: 1 }));
    await ec2().send(new TerminateInstancesCommand({ InstanceIds: [run.Instances?.[0]?.InstanceId ?? ''] }));
    launchedAt = (await ec2().send(new DescribeImagesCommand({ ImageIds: [copy] }))).Images?.[0]?.LastLaunchedTime ?? '';
    configArn = box.refs.get('distribution:base') ?? '';
    const current = await ib.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: configArn }));
    await ib.send(
      new UpdateDistributionConfigurationCommand({
        distributionConfigurationArn: configArn,
        distributions: current.distributionConfiguration?.distributions?.filter((d) => d.region !== REMOVED),
        clientToken: 'remove',
      }),
    );
  }, 60_000);
  afterAll(async () => box?.stop());
  afterEach(() => vi.unstubAllEnvs());

  async function run() {
    const config = loadConfig();
    const request = parseCleanupRequest({ distributionConfigurationArn: configArn, mode: 'apply' }, 'manual');
    const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
    return cleanup(request, {
      config,
      clients: createClientFactory({ ...config, endpoint: box.url }),
      log,
      now: () => box.clock.date(),
      newRunId: () => 'launched',
      publish: false,
    });
  }

  it('EC2 reports when the AMI was last launched', () => {
    expect(launchedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(box.clock.now() - Date.parse(launchedAt)).toBeLessThan(60_000);
  });

  it('keeps it within the 30 days, naming the launch', async () => {
    box.clock.advance(29 * DAY);
    const report = await run();
    expect(schemaErrors(validateCleanupReport, report)).toStrictEqual([]);
    expect(report.settings.launchedWithinDays).toBe(30);
    expect(report.candidates.find((c) => c.imageId === copy)).toMatchObject({
      decision: 'skip',
      guard: 'recently-launched',
      reason: `last launched ${launchedAt}, within 30 day(s) (RECONCILER_CLEANUP_LAUNCHED_WITHIN_DAYS)`,
    });
  });

  it('a deployment that keeps 60 days keeps it longer; past it, the AMI goes', async () => {
    box.clock.advance(2 * DAY);
    vi.stubEnv('RECONCILER_CLEANUP_LAUNCHED_WITHIN_DAYS', '60');
    expect((await run()).candidates.find((c) => c.imageId === copy)).toMatchObject({ guard: 'recently-launched' });
    vi.unstubAllEnvs();
    expect((await run()).candidates.find((c) => c.imageId === copy)).toMatchObject({
      decision: 'deregister',
      outcome: 'done',
      verified: 'gone',
    });
  });
});
