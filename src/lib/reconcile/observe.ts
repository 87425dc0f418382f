import {
  DescribeExportImageTasksCommand,
  DescribeFastLaunchImagesCommand,
  DescribeImageAttributeCommand,
  DescribeLaunchTemplatesCommand,
  DescribeLaunchTemplateVersionsCommand,
  type ExportImageTask,
  type Image as Ec2Image,
  paginateDescribeLaunchTemplateVersions,
  paginateDescribeSnapshots,
} from '@aws-sdk/client-ec2';
import { type ImageSummary, paginateListImageBuildVersions, paginateListImagePipelineImages } from '@aws-sdk/client-imagebuilder';
import { LicenseManagerClient, ListLicenseSpecificationsForResourceCommand } from '@aws-sdk/client-license-manager';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import pLimit from 'p-limit';
import { type BuildPosition, amiArn, buildPosition, compareBuilds, parseImageBuildArn } from '../core/arn.ts';
import type { CellClients, ClientFactory } from '../aws/clients.ts';
import { isGoodBuild } from '../core/builds.ts';
import { cellKey } from '../core/cells.ts';
import { describeImagesById } from '../aws/images.ts';
import { read, readOrNull } from '../core/observed.ts';
import type { DesiredCell, DesiredImage } from '../core/desired.ts';
import { toFailure } from '../core/errors.ts';
import type {
  CellObservation,
  NewerBuild,
  Observation,
  Observed,
  ObservedFastLaunch,
  ObservedFastLaunchTemplate,
  ObservedImage,
  ObservedLaunchTemplate,
  ObservedS3Export,
  ObservedSnapshot,
} from './types.ts';
import { SSM_ALIAS } from './types.ts';

function toObservedImage(image: Ec2Image): ObservedImage {
  const tags: Record<string, string> = {};
  for (const tag of image.Tags ?? []) if (tag.Key !== undefined) tags[tag.Key] = tag.Value ?? '';
  return {
    imageId: image.ImageId ?? '',
    ownerId: image.OwnerId ?? '',
    state: image.State ?? 'unknown',
    name: image.Name ?? '',
    public: image.Public === true,
    platform: image.PlatformDetails ?? image.Platform,
    creationDate: image.CreationDate,
    tags,
    snapshotIds: (image.BlockDeviceMappings ?? []).map((mapping) => mapping.Ebs?.SnapshotId).filter((id): id is string => id !== undefined),
    deregistrationProtection: image.DeregistrationProtection,
    stateReason: image.StateReason?.Message,
  };
}

/** All images with these ids visible in the cell's account: one batched, paginated DescribeImages. */
async function describeImages(clients: CellClients, imageIds: string[]): Promise<Map<string, ObservedImage>> {
  const images = await describeImagesById(clients.ec2, imageIds);
  return new Map([...images].map(([id, image]) => [id, toObservedImage(image)]));
}

/**
 * A launch template: its description, and which versions use the image. The two reads are independent and
 * run together; the default version's image is read only when the default is not one of those versions
 * (a converged template costs two calls at a depth of one).
 */
async function observeLaunchTemplate(
  clients: CellClients,
  launchTemplateId: string,
  imageId: string | undefined,
): Promise<ObservedLaunchTemplate | null> {
  const versionsWithImage = async (id: string): Promise<number[]> => {
    const numbers: number[] = [];
    const pages = paginateDescribeLaunchTemplateVersions(
      { client: clients.ec2 },
      { LaunchTemplateId: launchTemplateId, Filters: [{ Name: 'image-id', Values: [id] }] },
    );
    for await (const page of pages) {
      for (const version of page.LaunchTemplateVersions ?? []) {
        if (version.VersionNumber !== undefined && version.LaunchTemplateData?.ImageId === id) numbers.push(version.VersionNumber);
      }
    }
    return numbers.sort((a, b) => a - b);
  };
  const [described, withImage] = await Promise.all([
    clients.ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateIds: [launchTemplateId] })),
    imageId === undefined ? Promise.resolve([]) : versionsWithImage(imageId),
  ]);
  const template = described.LaunchTemplates?.[0];
  if (template === undefined) return null;
  const defaultVersion = template.DefaultVersionNumber ?? 1;
  let defaultImageId: string | undefined;
  let defaultImageAlias: string | undefined;
  if (imageId !== undefined && withImage.includes(defaultVersion)) defaultImageId = imageId;
  else {
    const defaults = await clients.ec2.send(
      new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId: launchTemplateId, Versions: ['$Default'] }),
    );
    defaultImageId = defaults.LaunchTemplateVersions?.[0]?.LaunchTemplateData?.ImageId;
    if (defaultImageId?.startsWith(SSM_ALIAS) === true) {
      // parameter-driven: EC2 returns the reference unless ResolveAlias is set, then the AMI it resolves to
      // (EC2 API reference, DescribeLaunchTemplateVersions, ResolveAlias; ResponseLaunchTemplateData, ImageId).
      // One version per call: whether ResolveAlias accepts several versions at once is not documented.
      defaultImageAlias = defaultImageId;
      const resolved = await clients.ec2.send(
        new DescribeLaunchTemplateVersionsCommand({
          LaunchTemplateId: launchTemplateId,
          Versions: [String(defaultVersion)],
          ResolveAlias: true,
        }),
      );
      const value = resolved.LaunchTemplateVersions?.[0]?.LaunchTemplateData?.ImageId;
      defaultImageId = value === undefined || value.startsWith(SSM_ALIAS) ? undefined : value;
    }
  }
  return {
    launchTemplateId,
    name: template.LaunchTemplateName ?? '',
    defaultVersion,
    latestVersion: template.LatestVersionNumber ?? 1,
    defaultImageId,
    ...(defaultImageAlias === undefined ? {} : { defaultImageAlias }),
    versionsWithImage: withImage,
  };
}

async function findTemplate(
  clients: CellClients,
  by: { id: string | undefined; name: string | undefined },
): Promise<ObservedFastLaunchTemplate | null> {
  const input = by.id !== undefined ? { LaunchTemplateIds: [by.id] } : { LaunchTemplateNames: [by.name ?? ''] };
  const out = await clients.ec2.send(new DescribeLaunchTemplatesCommand(input));
  const template = out.LaunchTemplates?.[0];
  if (template?.LaunchTemplateId === undefined) return null;
  return {
    id: template.LaunchTemplateId,
    name: template.LaunchTemplateName ?? '',
    defaultVersion: template.DefaultVersionNumber ?? 1,
    latestVersion: template.LatestVersionNumber ?? 1,
  };
}

/** The license configuration ARNs associated with an AMI: every page of `ListLicenseSpecificationsForResource`. */
async function observeLicenses(clients: CellClients, region: string, imageId: string): Promise<string[]> {
  const arns: string[] = [];
  let nextToken: string | undefined;
  do {
    const out = await clients
      .client(LicenseManagerClient)
      .send(new ListLicenseSpecificationsForResourceCommand({ ResourceArn: amiArn(region, imageId), NextToken: nextToken }));
    for (const spec of out.LicenseSpecifications ?? [])
      if (spec.LicenseConfigurationArn !== undefined) arns.push(spec.LicenseConfigurationArn);
    nextToken = out.NextToken === '' ? undefined : out.NextToken;
  } while (nextToken !== undefined);
  return arns;
}

/**
 * The export of an AMI to S3: its task among every page of `DescribeExportImageTasks` (EC2 offers no filter by
 * image), and once completed, `HeadObject` on the file VM Import/Export writes, `<S3Prefix>export-ami-….<format>`
 * (VM Import/Export User Guide, "Start an export image task"). A 404 is `missing`; any other error is the read's.
 */
async function observeS3Export(
  clients: CellClients,
  imageId: string,
  want: { bucket: string; prefix: string | undefined; format: string | undefined },
): Promise<ObservedS3Export> {
  const tasks: ExportImageTask[] = [];
  let nextToken: string | undefined;
  do {
    const out = await clients.ec2.send(new DescribeExportImageTasksCommand({ NextToken: nextToken }));
    tasks.push(...(out.ExportImageTasks ?? []));
    nextToken = out.NextToken === '' ? undefined : out.NextToken;
  } while (nextToken !== undefined);
  // whether Image Builder passes s3Prefix as it is or with a trailing slash is not documented: both match, and
  // the key is built from the prefix EC2 reports for the task
  const prefix = (value: string | undefined) => (value ?? '').replace(/\/+$/, '');
  const mine = tasks.filter(
    (t) =>
      t.ImageId === imageId && t.S3ExportLocation?.S3Bucket === want.bucket && prefix(t.S3ExportLocation.S3Prefix) === prefix(want.prefix),
  );
  const task = mine.findLast((t) => t.Status === 'completed') ?? mine.findLast((t) => t.Status === 'active') ?? mine.at(-1);
  if (task === undefined) return { task: null, key: undefined, object: undefined };
  const observed = {
    id: task.ExportImageTaskId ?? '',
    status: task.Status ?? 'unknown',
    statusMessage: task.StatusMessage,
    progress: task.Progress,
  };
  if (task.Status !== 'completed') return { task: observed, key: undefined, object: undefined };
  const key = `${task.S3ExportLocation?.S3Prefix ?? ''}${observed.id}.${(want.format ?? 'VMDK').toLowerCase()}`;
  try {
    await clients.client(S3Client).send(new HeadObjectCommand({ Bucket: want.bucket, Key: key }));
    return { task: observed, key, object: 'present' };
  } catch (error: unknown) {
    const status = (error as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
    if (error instanceof Error && (error.name === 'NotFound' || error.name === 'NoSuchKey' || status === 404))
      return { task: observed, key, object: 'missing' };
    throw error;
  }
}

async function observeFastLaunch(clients: CellClients, imageId: string): Promise<ObservedFastLaunch | null> {
  const out = await clients.ec2.send(new DescribeFastLaunchImagesCommand({ ImageIds: [imageId] }));
  const item = out.FastLaunchImages?.find((entry) => entry.ImageId === imageId);
  if (item === undefined) return null;
  return {
    state: item.State ?? 'unknown',
    stateTransitionReason: item.StateTransitionReason,
    targetResourceCount: item.SnapshotConfiguration?.TargetResourceCount,
    maxParallelLaunches: item.MaxParallelLaunches,
    launchTemplate:
      item.LaunchTemplate === undefined
        ? undefined
        : { id: item.LaunchTemplate.LaunchTemplateId, name: item.LaunchTemplate.LaunchTemplateName, version: item.LaunchTemplate.Version },
  };
}

function unobserved(key: string, access: Observed<true>): CellObservation {
  return {
    key,
    access,
    image: undefined,
    launchPermissions: undefined,
    snapshots: undefined,
    launchTemplates: {},
    fastLaunch: undefined,
    fastLaunchTemplate: undefined,
    parameters: {},
  };
}

/** The owner's Fast Launch template names by region, for inherited entries configured by id. */
type OwnerTemplateNames = Map<string, Observed<string | null>>;

async function observeCell(cell: DesiredCell, factory: ClientFactory, ownerTemplateNames: OwnerTemplateNames): Promise<CellObservation> {
  let clients: CellClients;
  try {
    clients = await factory.forCell(cell.accountId, cell.region);
  } catch (error: unknown) {
    return unobserved(cell.key, { ok: false, error: toFailure(error) });
  }
  const observation = unobserved(cell.key, { ok: true, value: true });
  const imageId = cell.recorded?.imageId;

  // the image and what depends on it; launch templates; Fast Launch; parameters: independent, read together
  const readImage = async (): Promise<void> => {
    if (imageId === undefined) return;
    observation.image = await read('DescribeImages', cell, async () => (await describeImages(clients, [imageId])).get(imageId) ?? null);
    const image = observation.image.ok ? observation.image.value : null;
    if (image === null) return;
    const permissions = async (): Promise<void> => {
      if (cell.launchPermission === undefined) return;
      observation.launchPermissions = await read('DescribeImageAttribute', cell, async () => {
        const out = await clients.ec2.send(new DescribeImageAttributeCommand({ ImageId: imageId, Attribute: 'launchPermission' }));
        const permissions = out.LaunchPermissions ?? [];
        return {
          userIds: permissions.flatMap((p) => (p.UserId === undefined ? [] : [p.UserId])),
          userGroups: permissions.flatMap((p) => (p.Group === undefined ? [] : [p.Group])),
          organizationArns: permissions.flatMap((p) => (p.OrganizationArn === undefined ? [] : [p.OrganizationArn])),
          organizationalUnitArns: permissions.flatMap((p) => (p.OrganizationalUnitArn === undefined ? [] : [p.OrganizationalUnitArn])),
        };
      });
    };
    const snapshots = async (): Promise<void> => {
      if (cell.kmsKeyId === undefined || image.snapshotIds.length === 0) return;
      observation.snapshots = await read('DescribeSnapshots', cell, async () => {
        const found: ObservedSnapshot[] = [];
        for await (const page of paginateDescribeSnapshots({ client: clients.ec2 }, { SnapshotIds: image.snapshotIds })) {
          for (const s of page.Snapshots ?? []) {
            found.push({
              snapshotId: s.SnapshotId ?? '',
              encrypted: s.Encrypted === true,
              kmsKeyId: s.KmsKeyId,
              volumeSizeGiB: s.VolumeSize ?? 0,
            });
          }
        }
        return found;
      });
    };
    const licenses = async (): Promise<void> => {
      if ((cell.licenseConfigurationArns?.length ?? 0) === 0) return;
      observation.licenses = await read('ListLicenseSpecificationsForResource', cell, () => observeLicenses(clients, cell.region, imageId));
    };
    const s3Export = async (): Promise<void> => {
      const want = cell.s3Export;
      if (want === undefined) return;
      observation.s3Export = await read('DescribeExportImageTasks', cell, () => observeS3Export(clients, imageId, want));
    };
    await Promise.all([permissions(), snapshots(), licenses(), s3Export()]);
  };

  const readLaunchTemplates = (): Promise<void>[] =>
    cell.launchTemplates.map(async (lt) => {
      observation.launchTemplates[lt.launchTemplateId] = await readOrNull('DescribeLaunchTemplates', cell, () =>
        observeLaunchTemplate(clients, lt.launchTemplateId, imageId),
      );
    });

  const readFastLaunch = async (): Promise<void> => {
    if (cell.fastLaunch === undefined || imageId === undefined) return;
    const template = cell.fastLaunch.launchTemplate;
    const readTemplate = async (): Promise<void> => {
      if (template === undefined) return;
      if (template.id === undefined && template.name === undefined && template.ownerTemplateId !== undefined) {
        // inherited by id: the owner's template name, looked up before the cells, is what this account has too
        const name = ownerTemplateNames.get(cell.region) ?? { ok: true, value: null };
        if (!name.ok) observation.fastLaunchTemplate = name;
        else if (name.value === null) observation.fastLaunchTemplate = { ok: true, value: null };
        else {
          const byName = name.value;
          observation.fastLaunchTemplate = await readOrNull('DescribeLaunchTemplates', cell, () =>
            findTemplate(clients, { id: undefined, name: byName }),
          );
        }
      } else {
        observation.fastLaunchTemplate = await readOrNull('DescribeLaunchTemplates', cell, () =>
          findTemplate(clients, { id: template.id, name: template.name }),
        );
      }
    };
    const readState = async (): Promise<void> => {
      observation.fastLaunch = await read('DescribeFastLaunchImages', cell, () => observeFastLaunch(clients, imageId));
    };
    await Promise.all([readState(), readTemplate()]);
  };

  // origin shared: the AMIs shared with the account, as it sees them (DescribeImages shows it its own tags only)
  const readShared = async (): Promise<void> => {
    const ids = (cell.sharedImages ?? []).map((ami) => ami.imageId);
    if (cell.origin !== 'shared' || ids.length === 0) return;
    observation.sharedImages = await read('DescribeImages', cell, async () => Object.fromEntries(await describeImages(clients, ids)));
  };

  const readParameters = (): Promise<void>[] =>
    cell.parameters.map(async (parameter) => {
      observation.parameters[parameter.name] = await readOrNull(
        'GetParameter',
        cell,
        async () => (await clients.ssm.send(new GetParameterCommand({ Name: parameter.name }))).Parameter?.Value ?? null,
      );
    });

  await Promise.all([readImage(), ...readLaunchTemplates(), readFastLaunch(), ...readParameters(), readShared()]);
  return observation;
}

async function resolveOwnerTemplateNames(desired: DesiredImage, factory: ClientFactory): Promise<OwnerTemplateNames> {
  const names: OwnerTemplateNames = new Map();
  const wanted = new Map<string, string>();
  for (const cell of desired.cells) {
    const id = cell.fastLaunch?.launchTemplate?.ownerTemplateId;
    if (id !== undefined) wanted.set(cell.region, id);
  }
  await Promise.all(
    [...wanted].map(async ([region, id]) => {
      const owner = { accountId: desired.ownerAccountId, region };
      names.set(
        region,
        await readOrNull(
          'DescribeLaunchTemplates',
          owner,
          async () => (await findTemplate(await factory.forCell(owner.accountId, region), { id, name: undefined }))?.name ?? null,
        ),
      );
    }),
  );
  return names;
}

/**
 * The AVAILABLE builds among `summaries` that come after the desired build in build order (`compareBuilds`:
 * by Image Builder's dateCreated), newest first. Every build of the pipeline counts, whatever its recipe's
 * version (or name): a pipeline pointed back at a lower recipe version makes a newer build with a lower version.
 * A revoked build (`imagebuilder-reconciler:revoked` on its image) is left out: it is never current again.
 */
function newerFrom(summaries: ImageSummary[], desired: DesiredImage): NewerBuild[] {
  const ours = { ...desired.arn, dateCreated: desired.dateCreated };
  const builds: (NewerBuild & { position: BuildPosition })[] = [];
  for (const summary of summaries) {
    const position = buildPosition(summary.arn, summary.dateCreated);
    if (position === undefined || position.arn === desired.arn.arn || compareBuilds(position, ours) <= 0) continue;
    // no pipeline: the listing is of the image version's builds (ListImageBuildVersions)
    if (desired.pipelineArn === undefined && parseImageBuildArn(position.arn).imageName !== desired.arn.imageName) continue;
    const status = summary.state?.status ?? 'UNKNOWN';
    // a revoked build is never newer than another (core/builds.ts): its AMIs are never rolled forward to
    if (!isGoodBuild(summary)) continue;
    const amis: Record<string, string> = {};
    for (const ami of summary.outputResources?.amis ?? []) {
      if (ami.region !== undefined && ami.image !== undefined)
        amis[cellKey(ami.region, ami.accountId ?? desired.ownerAccountId)] = ami.image;
    }
    builds.push({ arn: position.arn, status, dateCreated: summary.dateCreated, amis, position });
  }
  return builds.sort((a, b) => compareBuilds(b.position, a.position)).map(({ position: _, ...build }) => build);
}

/** Newer AVAILABLE builds of the same pipeline, or of the same image version when no pipeline made it. */
async function observeNewerBuilds(desired: DesiredImage, factory: ClientFactory): Promise<Observed<NewerBuild[]>> {
  const where = { accountId: desired.ownerAccountId, region: desired.buildRegion };
  return read(desired.pipelineArn === undefined ? 'ListImageBuildVersions' : 'ListImagePipelineImages', where, async () => {
    const clients = await factory.forCell(where.accountId, where.region);
    const summaries: ImageSummary[] = [];
    if (desired.pipelineArn !== undefined) {
      for await (const page of paginateListImagePipelineImages(
        { client: clients.imagebuilder },
        { imagePipelineArn: desired.pipelineArn },
      )) {
        summaries.push(...(page.imageSummaryList ?? []));
      }
    } else {
      const versionArn = desired.arn.arn.replace(/\/\d+$/, '');
      for await (const page of paginateListImageBuildVersions({ client: clients.imagebuilder }, { imageVersionArn: versionArn })) {
        summaries.push(...(page.imageSummaryList ?? []));
      }
    }
    return newerFrom(summaries, desired);
  });
}

/**
 * Observe every cell of an image build. Read only: no call here changes anything.
 * One cell's failure (AccessDenied, throttling past retries) is recorded in that cell; the others go on.
 */
async function observe(
  desired: DesiredImage,
  factory: ClientFactory,
  onCell?: (done: number, total: number) => void,
): Promise<Observation> {
  // cells at once: as many as the factory's global limit of calls can serve (calls are bounded there)
  const limit = pLimit(factory.cellConcurrency());
  const [ownerTemplateNames, newerBuilds] = await Promise.all([
    resolveOwnerTemplateNames(desired, factory),
    observeNewerBuilds(desired, factory),
  ]);
  let done = 0;
  const observed = await Promise.all(
    desired.cells.map((cell) =>
      limit(async () => {
        const result = await observeCell(cell, factory, ownerTemplateNames);
        done += 1;
        onCell?.(done, desired.cells.length);
        return result;
      }),
    ),
  );
  const cells: Record<string, CellObservation> = {};
  for (const cell of observed) cells[cell.key] = cell;
  return { cells, newerBuilds };
}

export { observe, observeNewerBuilds };
