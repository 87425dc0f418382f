/**
 * Property: in random worlds of clock skew, builds still in progress and concurrent applies, cleanup run
 * from the CLI against a wired deployment never deletes what it must keep, and still removes what is free:
 * - a local clock more than five minutes off AWS's refuses every apply (nothing is deleted), one within
 *   that margin does not;
 * - the copies of a build that is still distributing are never deleted, even with a minimum age of 0;
 * - runs that apply at the same time (the second while the first is held at its DeregisterImage) remove at
 *   most one run's cap in all: the second is refused by the configuration's apply lease.
 * Runs `CLEANUP_GUARDS_PROPERTY_RUNS` worlds (default 4: each is a wired sandbox of its own).
 */
import {
  GetDistributionConfigurationCommand,
  GetImageCommand,
  StartImagePipelineExecutionCommand,
  UpdateDistributionConfigurationCommand,
} from '@aws-sdk/client-imagebuilder';
import { DescribeImagesCommand } from '@aws-sdk/client-ec2';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CleanupReport } from '../../src/lib/cleanup/cleanup.ts';
import { LOCAL_CLOCK } from '../../src/lib/core/clock.ts';
import { buildBundles } from '../helpers/build.ts';
import { A, OWNER, REMOVED, cleanupScenario } from '../helpers/cleanup-world.ts';
import { cli } from '../helpers/cli.ts';
import { clients, sandbox } from '../helpers/sandbox.ts';
import { waitFor } from '../helpers/wait.ts';

const RUNS = Number(process.env.CLEANUP_GUARDS_PROPERTY_RUNS ?? 4);
const DAY = 86_400_000;
const MINUTE = 60_000;

const world = fc.record({
  /** Settled builds, eight days old. */
  builds: fc.integer({ min: 1, max: 3 }),
  /** A build still distributing when cleanup runs. */
  inProgress: fc.boolean(),
  minAgeDays: fc.constantFrom(0, 7),
  /** The local clock minus AWS's. */
  skewMs: fc.oneof(
    fc.constant(0),
    fc.integer({ min: -4 * MINUTE, max: 4 * MINUTE }),
    fc.integer({ min: 6 * MINUTE, max: 10 * DAY }),
    fc.integer({ min: -10 * DAY, max: -6 * MINUTE }),
  ),
  /** Runs that apply at once, each with this cap. */
  runs: fc.constantFrom(1, 2),
  cap: fc.integer({ min: 1, max: 2 }),
});

describe('cleanup under clock skew, builds in progress and concurrent applies (property, on the sandbox)', () => {
  beforeAll(() => buildBundles());

  it(
    `holds in ${RUNS} random worlds`,
    async () => {
      await fc.assert(
        fc.asyncProperty(world, async (w) => {
          const scenario = cleanupScenario('cleanup-property-guards', [A]);
          scenario.deploymentParams = { cleanupMinAgeDays: String(w.minAgeDays) };
          const box = await sandbox({ scenario, wire: true, clockSpeed: 1 });
          const globals = globalThis as Record<symbol, unknown>;
          const sandboxClock = globals[LOCAL_CLOCK];
          try {
            const ib = clients(box.url, OWNER).imagebuilder;
            const start = async (token: string) =>
              (
                await ib.send(
                  new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:base'), clientToken: token }),
                )
              ).imageBuildVersionArn ?? '';
            const copyOf = async (arn: string) =>
              (await ib.send(new GetImageCommand({ imageBuildVersionArn: arn }))).image?.outputResources?.amis?.find(
                (a) => a.region === REMOVED && a.accountId === A,
              )?.image ?? '';
            const settled: string[] = [];
            for (let i = 1; i <= w.builds; i += 1) settled.push(await start(`b${i}`));
            box.clock.advance(3 * 3600_000);
            for (const arn of settled) await box.finalReport(arn, 30_000);
            await box.idle();
            const free: string[] = [];
            for (const arn of settled) free.push(await copyOf(arn));
            box.clock.advance(8 * DAY);
            await box.idle();
            let distributing: string | undefined;
            if (w.inProgress) {
              const arn = await start('in-progress');
              // pending, building, testing, then DISTRIBUTING: its copies exist, the build is not settled
              box.clock.advance(10_000 + 25 * MINUTE + 1000 + 2 * MINUTE + 1000);
              const image = (await ib.send(new GetImageCommand({ imageBuildVersionArn: arn }))).image;
              expect(image?.state?.status).toBe('DISTRIBUTING');
              distributing = await copyOf(arn);
              expect(distributing).toMatch(/^ami-/);
            }
            const configArn = box.refs.get('distribution:base') ?? '';
            const current = await ib.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: configArn }));
            await ib.send(
              new UpdateDistributionConfigurationCommand({
                distributionConfigurationArn: configArn,
                distributions: current.distributionConfiguration?.distributions?.filter((d) => d.region !== REMOVED),
                clientToken: 'remove',
              }),
            );
            await box.idle();

            // the CLI's machine clock, skewed against the sandbox's (AWS's Date headers)
            globals[LOCAL_CLOCK] = () => box.clock.now() + w.skewMs;
            const apply = async () => {
              const run = await cli([
                'cleanup',
                configArn,
                '--apply',
                '--max-deletions',
                String(w.cap),
                '--json',
                '--endpoint-url',
                box.url,
                '--region',
                'us-east-1',
              ]);
              return { code: run.code, report: JSON.parse(run.out) as CleanupReport };
            };
            const reports: CleanupReport[] = [];
            if (w.runs === 1) reports.push((await apply()).report);
            else {
              // the first run is held at its first DeregisterImage (if it gets there) while the second runs
              box.faults.merge({ pauses: [{ operation: 'DeregisterImage', count: 1 }] });
              let firstDone = false;
              const first = apply().finally(() => {
                firstDone = true;
              });
              await waitFor('the first run to act or finish', () => box.faults.held().length > 0 || firstDone);
              reports.push((await apply()).report);
              box.faults.release();
              reports.push((await first).report);
            }
            globals[LOCAL_CLOCK] = sandboxClock;

            const gone: string[] = [];
            const ec2 = clients(box.url, A, REMOVED).ec2;
            for (const imageId of [...free, ...(distributing === undefined ? [] : [distributing])]) {
              const out = await ec2.send(
                new DescribeImagesCommand({ Filters: [{ Name: 'image-id', Values: [imageId] }], IncludeDisabled: true }),
              );
              // a deregistered AMI stays listed for a while (state deregistered), as on AWS
              if (!(out.Images ?? []).some((i) => i.State !== 'deregistered')) gone.push(imageId);
            }
            // a build in progress keeps its copies, whatever the minimum age
            if (distributing !== undefined) expect(gone, 'a copy of a build in progress was deleted').not.toContain(distributing);
            const deleted = reports.reduce((n, r) => n + r.counts.deregistered, 0);
            expect(deleted).toBe(gone.length);
            if (Math.abs(w.skewMs) > 5 * MINUTE + 2000) {
              // a skewed local clock refuses apply: nothing deleted, and every report says why
              expect(gone).toStrictEqual([]);
              for (const r of reports) expect(r.applyRefused).toMatch(/^the local clock is .* (ahead of|behind) AWS's/);
              return;
            }
            if (Math.abs(w.skewMs) < 5 * MINUTE - 2000) for (const r of reports) expect(r.applyRefused ?? '').not.toMatch(/local clock/);
            // the cap holds across concurrent runs: at most one run's cap in all, and the free copies go up to it
            expect(deleted).toBe(Math.min(w.cap, free.length));
            if (w.runs === 2 && free.length > 0)
              expect(reports[0]?.applyRefused).toMatch(/^another cleanup of this configuration is applying/);
          } finally {
            globals[LOCAL_CLOCK] = sandboxClock;
            box.faults.release();
            await box.stop();
          }
        }),
        { numRuns: RUNS },
      );
    },
    Math.max(300_000, RUNS * 60_000),
  );
});
