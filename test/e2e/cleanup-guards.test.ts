/**
 * Cleanup's guards are the deployment's, in every caller, on AWS's clock, one run at a time (issue 24's
 * cases 2, 3, 7, 8 and 9), end to end on the sandbox with the deployed wiring and the CLI:
 * - the CLI reads the deployment's keep tag (`team:hold`) from the stack's parameter and keeps the AMI
 *   carrying it; without that parameter it plans with the settings it assumed, says so, and refuses --apply;
 * - a local clock eight days ahead of AWS's refuses --apply; plan still runs, on AWS's clock, and says so;
 * - two concurrent --apply runs (the cleanup function and the CLI), each capped at 1, remove 1 AMI in all;
 * - a second disable after a re-enable keeps the first record; 30 accounts are recorded whole; a record that
 *   cannot be stored refuses the disable;
 * - a deregister interrupted before its record was written reads as cleaned up, not as not visible yet.
 */
import {
  CreateTagsCommand,
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  EnableImageCommand,
  ModifyImageAttributeCommand,
} from '@aws-sdk/client-ec2';
import {
  GetDistributionConfigurationCommand,
  GetImageCommand,
  StartImagePipelineExecutionCommand,
  UpdateDistributionConfigurationCommand,
} from '@aws-sdk/client-imagebuilder';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { CleanupReport } from '../../src/lib/cleanup/cleanup.ts';
import { recordedLaunchPermissions } from '../../src/lib/cleanup/plan.ts';
import { LOCAL_CLOCK } from '../../src/lib/core/clock.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { buildBundles } from '../helpers/build.ts';
import { A, OWNER, REMOVED, cleanupScenario } from '../helpers/cleanup-world.ts';
import { cli } from '../helpers/cli.ts';
import { clients, useSandbox } from '../helpers/sandbox.ts';
import { schemaErrors, validateCleanupReport } from '../helpers/schema.ts';
import { waitFor } from '../helpers/wait.ts';

const DAY = 86_400_000;
const OLD_BUILDS = 7;
/** 30 accounts, as an operator shares a golden image with a team's accounts. */
const SHAREES = Array.from({ length: 30 }, (_, i) => String(500_000_000_000 + i * 7_919));

describe("cleanup with the deployment's guards, on AWS's clock, one run at a time", () => {
  let box: Sandbox;
  let configArn = '';
  const builds: string[] = [];
  /** A's copies in the removed region: [0..OLD_BUILDS) eight days old, then one a few hours old. */
  const copies: string[] = [];
  const sandboxes = useSandbox();
  const ec2A = () => clients(box.url, A, REMOVED).ec2;
  const cleanupCli = async (...args: string[]) => {
    const run = await cli(['cleanup', configArn, ...args, '--json', '--endpoint-url', box.url, '--region', 'us-east-1']);
    return { ...run, report: JSON.parse(run.out) as CleanupReport };
  };
  const image = async (imageId: string) =>
    (await ec2A().send(new DescribeImagesCommand({ ImageIds: [imageId], IncludeDisabled: true }))).Images?.[0];
  const exists = async (imageId: string) =>
    (
      (await ec2A().send(new DescribeImagesCommand({ Filters: [{ Name: 'image-id', Values: [imageId] }], IncludeDisabled: true })))
        .Images ?? []
    ).some((i) => i.State !== 'deregistered'); // a deregistered AMI stays listed for a while, as on AWS
  const tagsOf = async (imageId: string) =>
    Object.fromEntries(((await image(imageId))?.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));

  async function build(token: string): Promise<string> {
    const ib = clients(box.url, OWNER).imagebuilder;
    const arn =
      (await ib.send(new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:base'), clientToken: token })))
        .imageBuildVersionArn ?? '';
    builds.push(arn);
    return arn;
  }

  async function copyOf(arn: string): Promise<string> {
    const out = await clients(box.url, OWNER).imagebuilder.send(new GetImageCommand({ imageBuildVersionArn: arn }));
    expect(out.image?.state?.status).toBe('AVAILABLE');
    return out.image?.outputResources?.amis?.find((a) => a.region === REMOVED && a.accountId === A)?.image ?? '';
  }

  beforeAll(async () => {
    buildBundles();
    const scenario = cleanupScenario('cleanup-guards', [A]);
    // the deployment keeps AMIs tagged team:hold, and lets shared AMIs no other account uses go (params)
    scenario.deploymentParams = { cleanupKeepTagKey: 'team:hold', cleanupShared: 'include' };
    box = await sandboxes.start({ scenario, wire: true, clockSpeed: 1 });
    const old: string[] = [];
    for (let i = 1; i <= OLD_BUILDS; i += 1) old.push(await build(`old-${i}`));
    box.clock.advance(3 * 3600_000);
    for (const arn of old) await box.finalReport(arn, 30_000);
    await box.idle();
    for (const arn of old) copies.push(await copyOf(arn));
    // eight days pass (on the clock AWS and the functions share), then one more build: a few hours old
    box.clock.advance(8 * DAY);
    await box.idle();
    const young = await build('young');
    box.clock.advance(3 * 3600_000);
    await box.finalReport(young, 30_000);
    await box.idle();
    copies.push(await copyOf(young));

    const ib = clients(box.url, OWNER).imagebuilder;
    configArn = box.refs.get('distribution:base') ?? '';
    const current = await ib.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: configArn }));
    await ib.send(
      new UpdateDistributionConfigurationCommand({
        distributionConfigurationArn: configArn,
        distributions: current.distributionConfiguration?.distributions?.filter((d) => d.region !== REMOVED),
        clientToken: 'remove',
      }),
    );
    await box.idle();
  }, 180_000);

  afterEach(() => {
    vi.unstubAllEnvs();
    box.onRequest = undefined;
    box.faults.release();
    box.faults.set({});
  });

  it("the CLI keeps an AMI carrying the deployment's keep tag (team:hold), read from the stack", async () => {
    await ec2A().send(new CreateTagsCommand({ Resources: [copies[0] ?? ''], Tags: [{ Key: 'team:hold', Value: 'audit' }] }));
    const { code, report } = await cleanupCli('--apply', '--only-image', copies[0] ?? '');
    expect(schemaErrors(validateCleanupReport, report)).toStrictEqual([]);
    expect(code).toBe(0);
    expect(report.guardsSource).toStrictEqual({
      from: 'deployment',
      detail: '/imagebuilder-reconciler/sandbox/cleanup-settings (us-east-1)',
    });
    expect(report.settings.keepTagKeys).toStrictEqual(['team:hold']);
    expect(report.candidates.find((c) => c.imageId === copies[0])).toMatchObject({
      decision: 'skip',
      guard: 'keep-tag',
      reason: 'tagged team:hold=audit',
    });
    expect(await exists(copies[0] ?? '')).toBe(true);
  });

  it("without the deployment's settings the CLI plans with what it assumed, says so, and refuses --apply", async () => {
    // the operator's shell: serverless.yml's defaults (the sandbox process carries the deployment's environment)
    vi.stubEnv('RECONCILER_CLEANUP_KEEP_TAG', 'imagebuilder-reconciler:keep');
    vi.stubEnv('RECONCILER_CLEANUP_SHARED', 'skip');
    const before = box.server.requests.length;
    const { code, report, err } = await cleanupCli('--apply', '--stage', 'nowhere', '--only-image', copies[0] ?? '');
    expect(schemaErrors(validateCleanupReport, report)).toStrictEqual([]);
    expect(code).toBe(1);
    expect(report.guardsSource.from).toBe('assumed');
    expect(report.guardsSource.detail).toMatch(
      /^could not read the deployment's cleanup settings \/imagebuilder-reconciler\/nowhere\/cleanup-settings in us-east-1 \(ParameterNotFound\); planned with assumed settings: strategy deregister, keep tag imagebuilder-reconciler:keep, minimum age 7 day\(s\), launched within 30 day\(s\), shared skip, disable grace 14 day\(s\), at most 20 per run$/,
    );
    expect(report.applyRefused).toMatch(/apply acts only with the deployment's guards/);
    expect(err).toMatch(/^warning: could not read the deployment's cleanup settings/m);
    expect(err).toMatch(/^apply refused: /m);
    // the assumed keep tag is not team:hold: planned, and not done
    expect(report.candidates.find((c) => c.imageId === copies[0])).toMatchObject({
      decision: 'deregister',
      outcome: 'planned',
      reason: expect.stringMatching(/not done: apply refused: /),
    });
    expect(box.server.requests.slice(before).filter((r) => !/^(Describe|Get|List|AssumeRole$)/.test(r.operation))).toStrictEqual([]);
    expect(await exists(copies[0] ?? '')).toBe(true);
  });

  it("a local clock 8 days ahead of AWS's refuses --apply; plan still runs on AWS's clock and says so", async () => {
    const globals = globalThis as Record<symbol, unknown>;
    const sandboxClock = globals[LOCAL_CLOCK];
    // the machine's clock of the in-process CLI, 8 days ahead of the sandbox's (AWS's Date headers)
    globals[LOCAL_CLOCK] = () => box.clock.now() + 8 * DAY;
    const young = copies[OLD_BUILDS] ?? '';
    const free = copies[6] ?? '';
    try {
      const planned = await cleanupCli('--only-image', young, free);
      expect(planned.code).toBe(3);
      expect(planned.report.clock.offsetMs).toBeLessThan(-8 * DAY + 60_000);
      expect(planned.report.clock.note).toMatch(/^the local clock is 8 days ahead of AWS's \(more than 5 minutes\)/);
      expect(planned.err).toMatch(/^warning: the local clock is 8 days ahead of AWS's/m);
      // ages on AWS's clock: the copy a few hours old is too young, whatever the local clock says
      expect(planned.report.candidates.find((c) => c.imageId === young)).toMatchObject({ decision: 'skip', guard: 'too-young' });
      expect(planned.report.candidates.find((c) => c.imageId === free)).toMatchObject({ decision: 'deregister', outcome: 'planned' });

      const applied = await cleanupCli('--apply', '--only-image', young, free);
      expect(schemaErrors(validateCleanupReport, applied.report)).toStrictEqual([]);
      expect(applied.code).toBe(1);
      expect(applied.report.applyRefused).toMatch(/^the local clock is 8 days ahead of AWS's/);
      expect(applied.report.counts.deregistered).toBe(0);
      expect(await exists(young)).toBe(true);
      expect(await exists(free)).toBe(true);
    } finally {
      globals[LOCAL_CLOCK] = sandboxClock;
    }
    // with the clock right, the free copy goes (and the young one stays)
    const again = await cleanupCli('--apply', '--only-image', young, free);
    expect(again.report.applyRefused).toBeNull();
    expect(again.report.candidates.find((c) => c.imageId === free)).toMatchObject({ outcome: 'done', verified: 'gone' });
    expect(await exists(young)).toBe(true);
  });

  it('two concurrent --apply runs of the configuration, each capped at 1, remove 1 AMI in all', async () => {
    const pair = [copies[1] ?? '', copies[2] ?? ''];
    // the cleanup function's run is held at its DeregisterImage, holding the lease, while the CLI runs
    box.faults.merge({ pauses: [{ operation: 'DeregisterImage', count: 1 }] });
    const first = box.wiring?.invokeFunction('cleanup', {
      distributionConfigurationArn: configArn,
      mode: 'apply',
      maxDeletions: 1,
      only: { imageIds: pair },
    });
    await waitFor('the function to reach DeregisterImage', () => box.faults.held().length > 0);
    const second = await cleanupCli('--apply', '--max-deletions', '1', '--only-image', ...pair);
    expect(second.code).toBe(1);
    expect(second.report.applyRefused).toMatch(/^another cleanup of this configuration is applying/);
    expect(second.report.counts.deregistered).toBe(0);
    expect(box.faults.release()).toBe(1);
    const report = (await first)?.result as CleanupReport;
    expect(report.applyRefused).toBeNull();
    expect(report.counts.deregistered).toBe(1);
    const left = [];
    for (const copy of pair) if (await exists(copy)) left.push(copy);
    expect(left).toHaveLength(1);
    // the lease was given back: the next run may act
    const next = await cleanupCli('--apply', '--max-deletions', '1', '--only-image', ...pair);
    expect(next.report.applyRefused).toBeNull();
    expect(next.report.counts.deregistered).toBe(1);
  });

  it('disable records 30 accounts whole, and a second disable after a re-enable keeps that record', async () => {
    const copy = copies[3] ?? '';
    await ec2A().send(new ModifyImageAttributeCommand({ ImageId: copy, LaunchPermission: { Add: SHAREES.map((UserId) => ({ UserId })) } }));
    // the deployment includes shared AMIs that no other account uses: EC2 makes usage reports asynchronously
    box.onRequest = (record) => {
      if (record.operation === 'CreateImageUsageReport') box.clock.advance(60_000);
    };
    const first = await cleanupCli('--apply', '--strategy', 'disable', '--only-image', copy);
    expect(schemaErrors(validateCleanupReport, first.report)).toStrictEqual([]);
    const done = first.report.candidates.find((c) => c.imageId === copy);
    expect(done).toMatchObject({ decision: 'disable', outcome: 'done', verified: 'disabled' });
    expect([...(done?.launchPermissions ?? [])].sort()).toStrictEqual([...SHAREES].sort());
    const tags = await tagsOf(copy);
    // 30 accounts of 12 digits and their commas: 389 characters, in two tags of at most 256
    expect(
      Object.keys(tags)
        .filter((k) => k.startsWith('imagebuilder-reconciler:launch-permissions'))
        .sort(),
    ).toStrictEqual(['imagebuilder-reconciler:launch-permissions', 'imagebuilder-reconciler:launch-permissions:2']);
    for (const value of Object.values(tags)) expect(value.length).toBeLessThanOrEqual(256);
    expect(recordedLaunchPermissions(tags).sort()).toStrictEqual([...SHAREES].sort());

    // re-enabled: EnableImage restores no launch permission; disabled again, the record is merged, not emptied
    await ec2A().send(new EnableImageCommand({ ImageId: copy }));
    expect((await image(copy))?.State).toBe('available');
    const shares = await ec2A().send(new DescribeImageAttributeCommand({ ImageId: copy, Attribute: 'launchPermission' }));
    expect(shares.LaunchPermissions ?? []).toStrictEqual([]);
    const second = await cleanupCli('--apply', '--strategy', 'disable', '--only-image', copy);
    const again = second.report.candidates.find((c) => c.imageId === copy);
    expect(again).toMatchObject({ decision: 'disable', outcome: 'done', verified: 'disabled' });
    expect([...(again?.launchPermissions ?? [])].sort()).toStrictEqual([...SHAREES].sort());
    expect(recordedLaunchPermissions(await tagsOf(copy)).sort()).toStrictEqual([...SHAREES].sort());
  });

  it('refuses to disable an AMI whose record cannot be stored, saying why', async () => {
    const copy = copies[4] ?? '';
    await ec2A().send(new ModifyImageAttributeCommand({ ImageId: copy, LaunchPermission: { Add: SHAREES.map((UserId) => ({ UserId })) } }));
    // 48 tags already: the record of 30 accounts (2 tags) and the marker (1) would make 51, past EC2's 50
    const existing = Object.keys(await tagsOf(copy)).length;
    const filler = Array.from({ length: 48 - existing }, (_, i) => ({ Key: `team:label-${i}`, Value: 'x' }));
    await ec2A().send(new CreateTagsCommand({ Resources: [copy], Tags: filler }));
    box.onRequest = (record) => {
      if (record.operation === 'CreateImageUsageReport') box.clock.advance(60_000);
    };
    const { report } = await cleanupCli('--apply', '--strategy', 'disable', '--only-image', copy);
    expect(report.candidates.find((c) => c.imageId === copy)).toMatchObject({
      decision: 'skip',
      guard: 'cannot-record',
      reason:
        "not disabled: recording its 30 launch permission(s) needs 2 tag(s) and the AMI would have 51, more than EC2's 50 per resource; DisableImage would remove them with no record to restore them from",
    });
    expect((await image(copy))?.State).toBe('available');
    const shares = await ec2A().send(new DescribeImageAttributeCommand({ ImageId: copy, Attribute: 'launchPermission' }));
    expect(shares.LaunchPermissions).toHaveLength(30);
  });

  it('a deregister interrupted before its record was written reads as cleaned up, not as an AMI not visible yet', async () => {
    const copy = copies[5] ?? '';
    const buildArn = builds[5] ?? '';
    // the run stops right after DeregisterImage: its record on the build (TagResource) never arrives
    box.onRequest = (record) => {
      if (record.operation === 'DeregisterImage')
        box.faults.merge({
          errors: [{ operation: 'TagResource', code: 'ServiceUnavailableException', message: 'interrupted', status: 503, count: 10 }],
        });
    };
    const { report } = await cleanupCli('--apply', '--only-image', copy);
    expect(report.candidates.find((c) => c.imageId === copy)).toMatchObject({ outcome: 'done', verified: 'gone' });
    expect(report.problems).toContainEqual(expect.stringMatching(/^could not record the cleanup \(deregistered\) of /));
    box.onRequest = undefined;
    box.faults.set({});
    const status = await cli(['status', buildArn, '--json', '--endpoint-url', box.url, '--region', 'us-east-1']);
    const reconciled = JSON.parse(status.out) as ReconcileReport;
    const cell = reconciled.cells.find((c) => c.region === REMOVED && c.accountId === A);
    expect(cell).toMatchObject({ status: 'skipped' });
    expect(cell?.checks[0]?.reason).toMatch(
      new RegExp(`^cleaned up by imagebuilder-reconciler: .* ${copy} deregistering: cell removed from base`),
    );
    expect(reconciled.outcome).not.toBe('pending');
  });
});
