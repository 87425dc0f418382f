import type { Distribution, Image, LaunchPermissionConfiguration } from '@aws-sdk/client-imagebuilder';
import { type ImageBuildArn, parseImageBuildArn } from './arn.ts';
import { InputError } from './errors.ts';
import type { OrganizationListing } from '../aws/organizations.ts';
import { revokedMark } from './builds.ts';
import { cellKey } from './cells.ts';
import { SOURCE_IMAGE_TAG, cleanedUpTagKey } from './tags.ts';

/** One AMI recorded by Image Builder in `outputResources.amis`. */
interface RecordedAmi {
  region: string;
  accountId: string;
  imageId: string;
  name: string | undefined;
  status: string | undefined;
  reason: string | undefined;
}

/** A launch template configuration that applies to one cell. */
interface DesiredLaunchTemplate {
  launchTemplateId: string;
  setDefaultVersion: boolean;
}

/** Fast Launch settings wanted for one cell's copy. */
interface DesiredFastLaunch {
  /** `configured`: an entry for this account; `inherited`: the owner's entry applied to a target-account copy. */
  source: 'configured' | 'inherited';
  targetResourceCount: number | undefined;
  maxParallelLaunches: number | undefined;
  /**
   * The launch template: by id or name as configured. Inherited entries always go by name, since the
   * template id differs in each account. `version` undefined, `$Latest` or `$Default` is resolved to a number.
   */
  launchTemplate:
    | { id: string | undefined; name: string | undefined; version: string | undefined; ownerTemplateId: string | undefined }
    | undefined;
}

/** An SSM parameter that must hold the cell's AMI ID. */
interface DesiredParameter {
  name: string;
  dataType: string | undefined;
}

/** The desired state of one (region, account) cell. */
interface DesiredCell {
  key: string;
  region: string;
  accountId: string;
  /**
   * Why this cell is expected: a distribution target, the build AMI, only named by another setting, or an
   * account that only receives a launch permission (`shared`: it holds no copy; see `sharedImages`).
   */
  origin: 'target' | 'owner' | 'build' | 'referenced' | 'shared';
  /** Cleanup removed this cell's AMI (a cell no longer in the configuration): when and why, from the image's tag. */
  cleanedUp?: string | undefined;
  /** The AMI Image Builder recorded for this cell, if any. */
  recorded: RecordedAmi | undefined;
  /** The configured AMI name pattern (unresolved), if any. */
  namePattern: string | undefined;
  /** Tags every copy must carry: `amiTags` plus the reconciler's source tag. */
  tags: Record<string, string>;
  launchPermission: LaunchPermissionConfiguration | undefined;
  kmsKeyId: string | undefined;
  launchTemplates: DesiredLaunchTemplate[];
  fastLaunch: DesiredFastLaunch | undefined;
  parameters: DesiredParameter[];
  /** License Manager configurations to associate with the AMI in this region (not checked: reported as such). */
  licenseConfigurationArns?: string[];
  /**
   * Origin `shared`: the AMIs of the region that the launch permission shares with this account (the copies of
   * the distribution's accounts); `tags` then holds the amiTags they must carry in this account's own tag scope.
   */
  sharedImages?: RecordedAmi[];
  /** The region's export to S3, on one cell of the region: the owner's, else the first (its task and file are checked). */
  s3Export?: { bucket: string; prefix: string | undefined; format: string | undefined };
}

/** What one image build asks for, derived from `GetImage` alone. */
interface DesiredImage {
  arn: ImageBuildArn;
  ownerAccountId: string;
  buildRegion: string;
  platform: string | undefined;
  /** AMI or DOCKER. */
  type: string | undefined;
  status: string;
  stateReason: string | undefined;
  dateCreated: string | undefined;
  pipelineArn: string | undefined;
  distributionConfigurationArn: string | undefined;
  cells: DesiredCell[];
  /** Recorded AMIs that no desired cell accounts for (kept in the report, never acted on). */
  unexpectedAmis: RecordedAmi[];
  /** Regions with a containerDistributionConfiguration (not checked: reported as such). */
  containerRegions?: string[];
  /** The build is revoked (`imagebuilder-reconciler revoke`): the mark's value, when and why; its reconcile moves no pointer. */
  revoked?: string | undefined;
  /** The organizations and OUs the AMIs are shared with, and what listing their accounts gave (RECONCILER_SHARED_ORGANIZATIONS). */
  organizations?: OrganizationListing[];
  /** Image-level notes the run adds to its report (organizations shared with whose accounts are not listed). */
  notes?: string[];
}

function recordedAmis(image: Image): RecordedAmi[] {
  const amis = image.outputResources?.amis ?? [];
  const owner = parseImageBuildArn(image.arn).accountId;
  return amis
    .filter((ami) => typeof ami.region === 'string' && typeof ami.image === 'string')
    .map((ami) => ({
      region: ami.region as string,
      accountId: ami.accountId ?? owner,
      imageId: ami.image as string,
      name: ami.name,
      status: ami.state?.status,
      reason: ami.state?.reason,
    }));
}

function fastLaunchFor(distribution: Distribution, accountId: string, owner: string, inherit: boolean): DesiredFastLaunch | undefined {
  const entries = distribution.fastLaunchConfigurations ?? [];
  const own = entries.find((entry) => (entry.accountId ?? owner) === accountId);
  if (own !== undefined) {
    if (own.enabled !== true) return undefined;
    return {
      source: 'configured',
      targetResourceCount: own.snapshotConfiguration?.targetResourceCount,
      maxParallelLaunches: own.maxParallelLaunches,
      launchTemplate:
        own.launchTemplate === undefined
          ? undefined
          : {
              id: own.launchTemplate.launchTemplateId,
              name: own.launchTemplate.launchTemplateName,
              version: own.launchTemplate.launchTemplateVersion,
              ownerTemplateId: undefined,
            },
    };
  }
  const targets = distribution.amiDistributionConfiguration?.targetAccountIds ?? [];
  if (!inherit || accountId === owner || !targets.includes(accountId)) return undefined;
  const ownerEntry = entries.find((entry) => (entry.accountId ?? owner) === owner);
  if (ownerEntry?.enabled !== true) return undefined;
  return {
    source: 'inherited',
    targetResourceCount: ownerEntry.snapshotConfiguration?.targetResourceCount,
    maxParallelLaunches: ownerEntry.maxParallelLaunches,
    launchTemplate:
      ownerEntry.launchTemplate === undefined
        ? undefined
        : {
            // the id is the owner's; the template is found by name in the target account
            id: undefined,
            name: ownerEntry.launchTemplate.launchTemplateName,
            version: ownerEntry.launchTemplate.launchTemplateVersion,
            // configured by id only: observe looks the name up in the owner account
            ownerTemplateId:
              ownerEntry.launchTemplate.launchTemplateName === undefined ? ownerEntry.launchTemplate.launchTemplateId : undefined,
          },
  };
}

/**
 * Derive the desired cells of an image build from its `GetImage` result: the distribution configuration
 * *embedded in the image* (the one Image Builder used), never today's configuration.
 *
 * A cell is `(region, account)`: per distribution, each account of `targetAccountIds`, or the owner where
 * none are listed. The owner's cell in the build region is always expected (the build creates the AMI
 * there). Accounts named only by a launch template, Fast Launch or SSM parameter setting become cells too,
 * so that a setting for an account that received no copy is reported, not silently ignored.
 *
 * With `sharedAccounts`, each account of a distribution's `launchPermission.userIds` (and, given
 * `organizationAccounts`, each account listed for its `organizationArns` and `organizationalUnitArns`) that is no cell of the
 * region yet (it receives a launch permission, no copy) becomes a cell of origin `shared`, when the
 * distribution has `amiTags`: EC2 shows a sharee none of the owner's tags, and a sharee can tag the shared AMI
 * in its own scope. Without amiTags there is nothing to do in that account and no cell (no role is assumed).
 *
 * Pure: no I/O.
 */
function desiredImage(
  image: Image,
  options: {
    fastLaunchInheritForTargets: boolean;
    sharedAccounts?: boolean;
    organizationAccounts?: ReadonlyMap<string, readonly string[]>;
  },
): DesiredImage {
  const arn = parseImageBuildArn(image.arn);
  const owner = arn.accountId;
  const recorded = recordedAmis(image);
  // container images are distributed to ECR, not as AMIs: nothing here for the reconciler
  const distributions = image.type === 'DOCKER' ? [] : (image.distributionConfiguration?.distributions ?? []);
  const regions = new Set<string>();
  for (const distribution of distributions) {
    if (distribution.region === undefined) throw new InputError(`image ${arn.arn} has a distribution without a region`);
    if (regions.has(distribution.region)) {
      throw new InputError(`image ${arn.arn} names region ${distribution.region} in more than one distribution`);
    }
    regions.add(distribution.region);
  }

  const cells = new Map<string, DesiredCell>();
  const addCell = (distribution: Distribution | undefined, region: string, accountId: string, origin: DesiredCell['origin']): void => {
    const key = cellKey(region, accountId);
    if (cells.has(key)) return;
    const ami = distribution?.amiDistributionConfiguration;
    cells.set(key, {
      key,
      region,
      accountId,
      origin,
      recorded: recorded.find((r) => r.region === region && r.accountId === accountId),
      cleanedUp: image.tags?.[cleanedUpTagKey(region, accountId)],
      namePattern: ami?.name,
      tags: { ...(ami?.amiTags ?? {}), [SOURCE_IMAGE_TAG]: arn.arn },
      launchPermission: ami?.launchPermission,
      kmsKeyId: ami?.kmsKeyId,
      launchTemplates: (distribution?.launchTemplateConfigurations ?? [])
        .filter((lt) => (lt.accountId ?? owner) === accountId && lt.launchTemplateId !== undefined)
        .map((lt) => ({ launchTemplateId: lt.launchTemplateId as string, setDefaultVersion: lt.setDefaultVersion === true })),
      fastLaunch:
        distribution === undefined ? undefined : fastLaunchFor(distribution, accountId, owner, options.fastLaunchInheritForTargets),
      parameters: (distribution?.ssmParameterConfigurations ?? [])
        .filter((p) => (p.amiAccountId ?? owner) === accountId && p.parameterName !== undefined)
        .map((p) => ({ name: p.parameterName as string, dataType: p.dataType })),
      ...(distribution?.licenseConfigurationArns === undefined || distribution.licenseConfigurationArns.length === 0
        ? {}
        : { licenseConfigurationArns: distribution.licenseConfigurationArns }),
    });
  };

  for (const distribution of distributions) {
    const region = distribution.region as string;
    const targets = distribution.amiDistributionConfiguration?.targetAccountIds ?? [];
    if (targets.length === 0) addCell(distribution, region, owner, 'owner');
    for (const account of targets) addCell(distribution, region, account, account === owner ? 'owner' : 'target');
    if (region === arn.region) addCell(distribution, region, owner, 'build');
    const referenced = [
      ...(distribution.launchTemplateConfigurations ?? []).map((lt) => lt.accountId ?? owner),
      // an owner entry without accountId in a region of target accounts is what target copies inherit
      ...(distribution.fastLaunchConfigurations ?? [])
        .filter((f) => f.enabled === true && (f.accountId !== undefined || targets.length === 0))
        .map((f) => f.accountId ?? owner),
      ...(distribution.ssmParameterConfigurations ?? []).map((p) => p.amiAccountId ?? owner),
    ];
    for (const account of referenced) addCell(distribution, region, account, 'referenced');
  }
  if (!regions.has(arn.region) && image.type !== 'DOCKER') addCell(undefined, arn.region, owner, 'build');
  if (options.sharedAccounts === true) {
    for (const distribution of distributions) {
      const ami = distribution.amiDistributionConfiguration;
      const amiTags = ami?.amiTags ?? {};
      if (Object.keys(amiTags).length === 0) continue;
      const region = distribution.region as string;
      // the launch permission applies to each copy of the distribution's accounts (targets, or the owner)
      const sources = [...cells.values()]
        .filter((c) => c.region === region && (c.origin === 'target' || c.origin === 'owner') && c.cleanedUp === undefined)
        .flatMap((c) => (c.recorded === undefined ? [] : [c.recorded]))
        .sort((a, b) => a.imageId.localeCompare(b.imageId));
      // the accounts listed for the organizations and OUs shared with (see organizations.ts), after userIds
      const listed = [...(ami?.launchPermission?.organizationArns ?? []), ...(ami?.launchPermission?.organizationalUnitArns ?? [])].flatMap(
        (arn) => options.organizationAccounts?.get(arn) ?? [],
      );
      for (const account of new Set([...(ami?.launchPermission?.userIds ?? []), ...listed])) {
        const key = cellKey(region, account);
        if (cells.has(key)) continue;
        cells.set(key, {
          key,
          region,
          accountId: account,
          origin: 'shared',
          recorded: undefined,
          namePattern: undefined,
          tags: { ...amiTags },
          launchPermission: undefined,
          kmsKeyId: undefined,
          launchTemplates: [],
          fastLaunch: undefined,
          parameters: [],
          sharedImages: sources,
        });
      }
    }
  }
  for (const distribution of distributions) {
    const s3 = distribution.s3ExportConfiguration;
    if (s3 === undefined) continue;
    const inRegion = [...cells.values()].filter((c) => c.region === distribution.region);
    const cell = inRegion.find((c) => c.accountId === owner) ?? inRegion[0];
    if (cell !== undefined) cell.s3Export = { bucket: s3.s3Bucket ?? '', prefix: s3.s3Prefix, format: s3.diskImageFormat };
  }

  const cellList = [...cells.values()].sort((a, b) => a.key.localeCompare(b.key));
  return {
    arn,
    ownerAccountId: owner,
    buildRegion: arn.region,
    platform: image.platform,
    type: image.type,
    status: image.state?.status ?? 'UNKNOWN',
    stateReason: image.state?.reason,
    dateCreated: image.dateCreated,
    pipelineArn: image.sourcePipelineArn,
    distributionConfigurationArn: image.distributionConfiguration?.arn,
    cells: cellList,
    unexpectedAmis: recorded.filter((r) => !cells.has(cellKey(r.region, r.accountId))),
    containerRegions: (image.distributionConfiguration?.distributions ?? [])
      .filter((d) => d.containerDistributionConfiguration !== undefined)
      .map((d) => d.region ?? ''),
    ...(revokedMark(image.tags) === undefined ? {} : { revoked: revokedMark(image.tags) }),
  };
}

/**
 * Resolve an AMI name pattern into a regular expression: `{{imagebuilder:buildVersion}}` becomes the build
 * number; `{{imagebuilder:buildDate}}` (with or without a format suffix) matches any date-like text.
 * Image Builder's console documentation says a timestamp may be appended, so a trailing one is allowed.
 */
function namePatternRegExp(pattern: string, buildNumber: number): RegExp {
  const parts = pattern.split(/(\{\{\s*imagebuilder:build(?:Date|Version)(?::[^}]*)?\s*\}\})/);
  const body = parts
    .map((part) => {
      if (/^\{\{\s*imagebuilder:buildVersion/.test(part)) return String(buildNumber);
      if (/^\{\{\s*imagebuilder:buildDate/.test(part)) return '[0-9TZ:._ -]+';
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  return new RegExp(`^${body}(?:[ _-]?[0-9TZ:._-]+)?$`);
}

export { desiredImage, namePatternRegExp, recordedAmis };
export type { DesiredCell, DesiredFastLaunch, DesiredImage, DesiredLaunchTemplate, DesiredParameter, RecordedAmi };
