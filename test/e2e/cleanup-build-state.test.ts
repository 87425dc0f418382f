/**
 * Cleanup never touches the AMIs of a build Image Builder is still working on: on the sandbox, a build held
 * in DISTRIBUTING (its copies made and recorded, its state not yet AVAILABLE) keeps the owner's copy in a
 * removed region even with a minimum age of 0; once the build is AVAILABLE, the same run deregisters it.
 */
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
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

describe('cleanup and a build still distributing', () => {
  let box: Sandbox;
  let build = '';
  let copy = '';
  let configArn = '';

  beforeAll(async () => {
    box = await sandbox({ scenario: cleanupScenario('cleanup-build-state', [OWNER]), wire: false, clockSpeed: 1 });
    const ib = clients(box.url, OWNER).imagebuilder;
    build =
      (await ib.send(new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:base'), clientToken: 'b1' })))
        .imageBuildVersionArn ?? '';
    // pending, building, testing, then DISTRIBUTING: the copies are made a second in, and available 2 minutes later
    box.clock.advance(10_000 + 25 * 60_000 + 1000 + 2 * 60_000 + 1000);
    const image = (await ib.send(new GetImageCommand({ imageBuildVersionArn: build }))).image;
    expect(image?.state?.status).toBe('DISTRIBUTING');
    copy = image?.outputResources?.amis?.find((a) => a.region === REMOVED && a.accountId === OWNER)?.image ?? '';
    expect(copy).toMatch(/^ami-/);
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
    vi.stubEnv('RECONCILER_CLEANUP_MIN_AGE_DAYS', '0');
    const config = loadConfig();
    const request = parseCleanupRequest({ distributionConfigurationArn: configArn, mode: 'apply' }, 'manual');
    const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
    return cleanup(request, {
      config,
      clients: createClientFactory({ ...config, endpoint: box.url }),
      log,
      now: () => box.clock.date(),
      newRunId: () => 'build-state',
      publish: false,
    });
  }

  async function exists(imageId: string): Promise<boolean> {
    const out = await clients(box.url, OWNER, REMOVED).ec2.send(
      new DescribeImagesCommand({ Filters: [{ Name: 'image-id', Values: [imageId] }], IncludeDisabled: true }),
    );
    // a deregistered AMI stays in the results as `deregistered` for a short interval (DescribeImages)
    return (out.Images ?? []).some((i) => i.State !== 'deregistered');
  }

  it('keeps the copy while the build is DISTRIBUTING, saying so', async () => {
    const report = await run();
    expect(schemaErrors(validateCleanupReport, report)).toStrictEqual([]);
    expect(report.candidates.find((c) => c.imageId === copy)).toMatchObject({
      decision: 'skip',
      guard: 'build-in-progress',
      outcome: 'skipped',
      reason: expect.stringMatching(/is DISTRIBUTING, not AVAILABLE, FAILED, CANCELLED/),
    });
    expect(report.counts).toMatchObject({ deregistered: 0 });
    expect(await exists(copy)).toBe(true);
  });

  it('deregisters it once the build is AVAILABLE', async () => {
    box.clock.advance(3600_000);
    const ib = clients(box.url, OWNER).imagebuilder;
    expect((await ib.send(new GetImageCommand({ imageBuildVersionArn: build }))).image?.state?.status).toBe('AVAILABLE');
    const report = await run();
    expect(report.candidates.find((c) => c.imageId === copy)).toMatchObject({ decision: 'deregister', outcome: 'done', verified: 'gone' });
    expect(await exists(copy)).toBe(false);
  });
});
