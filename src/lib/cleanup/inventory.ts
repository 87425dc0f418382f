import { paginateDescribeImages } from '@aws-sdk/client-ec2';
import {
  type DistributionConfiguration,
  GetDistributionConfigurationCommand,
  GetImageCommand,
  type Image,
  paginateListImagePipelineImages,
  paginateListImagePipelines,
} from '@aws-sdk/client-imagebuilder';
import pLimit from 'p-limit';
import { type DistributionConfigurationArn, isImageBuildArn, parseImageBuildArn } from '../core/arn.ts';
import type { ClientFactory } from '../aws/clients.ts';
import { cellKey, parseCellKey } from '../core/cells.ts';
import { recordedAmis } from '../core/desired.ts';
import { SOURCE_IMAGE_TAG } from '../core/tags.ts';
import { AwsCallError, briefFailure, toFailure } from '../core/errors.ts';
import type { InventoryAmi } from './plan.ts';

/** A build found for the configuration, and whether it was made with it. */
interface InventoryBuild {
  arn: string;
  status: string;
  foundBy: 'pipeline' | 'tag' | 'explicit';
  /** Made with this configuration (its embedded configuration has this ARN); only then are its AMIs candidates. */
  madeWithConfiguration: boolean;
  note: string | undefined;
}

interface Inventory {
  configuration: { arn: string; name: string; region: string; accountId: string; currentCells: string[] };
  builds: InventoryBuild[];
  amis: InventoryAmi[];
  /** Reads that failed: what could not be looked at is never a candidate. */
  problems: string[];
}

/**
 * The cells today's configuration has: per distribution, `targetAccountIds` or the owner; and the owner in
 * the configuration's own region, where pipelines build.
 */
function currentCells(configuration: DistributionConfiguration, arn: DistributionConfigurationArn): Set<string> {
  const cells = new Set<string>([cellKey(arn.region, arn.accountId)]);
  for (const d of configuration.distributions ?? []) {
    if (d.region === undefined) continue;
    const targets = d.amiDistributionConfiguration?.targetAccountIds ?? [];
    for (const account of targets.length > 0 ? targets : [arn.accountId]) cells.add(cellKey(d.region, account));
  }
  return cells;
}

/** Today's cells of the configuration, read again (cleanup re-checks them right before acting). */
async function currentCellsNow(arn: DistributionConfigurationArn, factory: ClientFactory): Promise<Set<string>> {
  const home = await factory.forCell(arn.accountId, arn.region);
  try {
    const out = await home.imagebuilder.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: arn.arn }));
    if (out.distributionConfiguration === undefined) throw new Error('no distribution configuration returned');
    return currentCells(out.distributionConfiguration, arn);
  } catch (error: unknown) {
    throw new AwsCallError('GetDistributionConfiguration', arn.accountId, arn.region, error);
  }
}

/** A build's Image Builder state now (cleanup re-checks it right before acting: a FAILED build can be retried). */
async function buildStatusNow(buildArn: string, arn: DistributionConfigurationArn, factory: ClientFactory): Promise<string> {
  const home = await factory.forCell(arn.accountId, arn.region);
  try {
    const out = await home.imagebuilder.send(new GetImageCommand({ imageBuildVersionArn: buildArn }));
    return out.image?.state?.status ?? 'UNKNOWN';
  } catch (error: unknown) {
    throw new AwsCallError('GetImage', arn.accountId, arn.region, error);
  }
}

/**
 * Find the builds made with a distribution configuration and the AMIs they left: the pipelines that use
 * it and their builds (`outputResources`, embedded configuration), build ARNs given explicitly, and AMIs
 * carrying the reconciler's source tag in the cells removed from the configuration. Read only.
 */
async function takeInventory(arn: DistributionConfigurationArn, explicitBuilds: string[], factory: ClientFactory): Promise<Inventory> {
  const home = await factory.forCell(arn.accountId, arn.region);
  const problems: string[] = [];
  let configuration: DistributionConfiguration;
  try {
    const out = await home.imagebuilder.send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: arn.arn }));
    if (out.distributionConfiguration === undefined) throw new Error('no distribution configuration returned');
    configuration = out.distributionConfiguration;
  } catch (error: unknown) {
    throw new AwsCallError('GetDistributionConfiguration', arn.accountId, arn.region, error);
  }
  const current = currentCells(configuration, arn);

  const builds = new Map<string, InventoryBuild>();
  const images = new Map<string, Image>();
  const addBuild = async (buildArn: string, foundBy: InventoryBuild['foundBy']): Promise<void> => {
    if (builds.has(buildArn)) return;
    // held in place while it is read, so that builds read together keep the order they were found in
    builds.set(buildArn, { arn: buildArn, status: 'UNKNOWN', foundBy, madeWithConfiguration: false, note: 'not read yet' });
    try {
      const out = await home.imagebuilder.send(new GetImageCommand({ imageBuildVersionArn: buildArn }));
      const image = out.image;
      const used = image?.distributionConfiguration?.arn;
      const made = used === arn.arn;
      builds.set(buildArn, {
        arn: buildArn,
        status: image?.state?.status ?? 'UNKNOWN',
        foundBy,
        madeWithConfiguration: made,
        note: made ? undefined : `made with ${used ?? 'no distribution configuration'}, not this one: its AMIs are not candidates`,
      });
      if (image !== undefined && made) images.set(buildArn, image);
    } catch (error: unknown) {
      const failure = toFailure(error);
      builds.set(buildArn, {
        arn: buildArn,
        status: 'UNKNOWN',
        foundBy,
        madeWithConfiguration: false,
        note: `could not read the build (${briefFailure(failure)}): its AMIs are kept`,
      });
      problems.push(`GetImage ${buildArn}: ${failure.message}`);
    }
  };

  try {
    for await (const page of paginateListImagePipelines({ client: home.imagebuilder }, {})) {
      for (const pipeline of page.imagePipelineList ?? []) {
        if (pipeline.distributionConfigurationArn !== arn.arn || pipeline.arn === undefined) continue;
        for await (const builds of paginateListImagePipelineImages({ client: home.imagebuilder }, { imagePipelineArn: pipeline.arn })) {
          await Promise.all(
            (builds.imageSummaryList ?? []).map((summary) => (summary.arn === undefined ? undefined : addBuild(summary.arn, 'pipeline'))),
          );
        }
      }
    }
  } catch (error: unknown) {
    problems.push(`listing the pipelines' builds: ${toFailure(error).message}`);
  }
  await Promise.all(explicitBuilds.map((buildArn) => addBuild(parseImageBuildArn(buildArn).arn, 'explicit')));

  // the reconciler's source tag finds copies in removed cells that a listing missed
  const removedCells = new Set<string>();
  for (const image of images.values())
    for (const ami of recordedAmis(image))
      if (!current.has(cellKey(ami.region, ami.accountId))) removedCells.add(cellKey(ami.region, ami.accountId));
  const tagged: { imageId: string; region: string; accountId: string; buildArn: string }[] = [];
  // the removed cells are searched together, as many at once as the client factory's limits allow
  const limit = pLimit(factory.cellConcurrency());
  const found = await Promise.all(
    [...removedCells].map((key) =>
      limit(async () => {
        const { region, accountId } = parseCellKey(key);
        const inCell: typeof tagged = [];
        try {
          const clients = await factory.forCell(accountId, region);
          const pages = paginateDescribeImages(
            { client: clients.ec2 },
            {
              Owners: ['self'],
              Filters: [{ Name: 'tag-key', Values: [SOURCE_IMAGE_TAG] }],
              IncludeDisabled: true,
              IncludeDeprecated: true,
            },
          );
          for await (const page of pages) {
            for (const image of page.Images ?? []) {
              const source = image.Tags?.find((t) => t.Key === SOURCE_IMAGE_TAG)?.Value;
              if (image.ImageId !== undefined && isImageBuildArn(source) && parseImageBuildArn(source).accountId === arn.accountId) {
                inCell.push({ imageId: image.ImageId, region, accountId, buildArn: source });
              }
            }
          }
        } catch (error: unknown) {
          problems.push(`searching ${key} for tagged AMIs: ${toFailure(error).message}`);
        }
        return inCell;
      }),
    ),
  );
  tagged.push(...found.flat());
  await Promise.all([...new Set(tagged.map((t) => t.buildArn))].map((buildArn) => addBuild(buildArn, 'tag')));

  const amis: InventoryAmi[] = [];
  const seen = new Set<string>();
  for (const buildArn of builds.keys()) {
    const image = images.get(buildArn);
    if (image === undefined) continue;
    for (const ami of recordedAmis(image)) {
      const key = `${ami.accountId}/${ami.region}/${ami.imageId}`;
      seen.add(key);
      const buildStatus = builds.get(buildArn)?.status ?? 'UNKNOWN';
      amis.push({
        imageId: ami.imageId,
        region: ami.region,
        accountId: ami.accountId,
        buildArn,
        buildStatus,
        foundBy: 'recorded',
        recordedImageId: ami.imageId,
        currentCell: current.has(cellKey(ami.region, ami.accountId)),
      });
    }
  }
  for (const t of tagged) {
    if (seen.has(`${t.accountId}/${t.region}/${t.imageId}`)) continue;
    const image = images.get(t.buildArn);
    if (image === undefined) continue; // a build not made with this configuration, or unreadable: listed under builds
    const recorded = recordedAmis(image).find((a) => a.region === t.region && a.accountId === t.accountId)?.imageId;
    amis.push({
      ...t,
      buildStatus: builds.get(t.buildArn)?.status ?? 'UNKNOWN',
      foundBy: 'tag',
      recordedImageId: recorded,
      currentCell: current.has(cellKey(t.region, t.accountId)),
    });
  }
  return {
    configuration: {
      arn: arn.arn,
      name: configuration.name ?? arn.name,
      region: arn.region,
      accountId: arn.accountId,
      currentCells: [...current].sort(),
    },
    builds: [...builds.values()],
    amis,
    problems,
  };
}

export { buildStatusNow, currentCells, currentCellsNow, takeInventory };
export type { Inventory, InventoryBuild };
