import { AwsError } from '../../protocol/errors.ts';
import type { Ctx } from '../../server.ts';
import { type UsageReport, hex } from '../../state.ts';
import { paginate } from '../common.ts';
import { checkImageId, here } from './access.ts';
import { resolveSsmImage } from './launch-templates.ts';

// AMI usage reports: use of an owner's AMI by other accounts

/** Simulated time a usage report takes to be made (state `pending`, then `available`). */
const USAGE_REPORT_MS = 30_000;

/**
 * CreateImageUsageReport (EC2 API Reference; EC2 User Guide, "View your AMI usage"): only the owner may
 * ask; the report counts, per other account, instances launched from the AMI and launch templates whose
 * newest `version-depth` versions (default 20) name it. It is made asynchronously: `pending`, then
 * `available`.
 */
function createImageUsageReport(
  ctx: Ctx,
  input: {
    ImageId?: string | undefined;
    ResourceTypes?:
      | {
          ResourceType?: string | undefined;
          ResourceTypeOptions?: { OptionName?: string | undefined; OptionValues?: string[] | undefined }[] | undefined;
        }[]
      | undefined;
    AccountIds?: string[] | undefined;
  },
) {
  const imageId = input.ImageId ?? '';
  checkImageId(imageId);
  const image = here(ctx).images.get(imageId);
  if (image === undefined || image.state === 'deregistered')
    throw new AwsError('InvalidAMIID.NotFound', `The image id '[${imageId}]' does not exist`);
  if (image.ownerId !== ctx.account)
    throw new AwsError(
      'UnauthorizedOperation',
      'You are not authorized to perform this operation: only the owner of an AMI can create its usage report.',
      403,
    );
  const types = (input.ResourceTypes ?? []).map((t) => t.ResourceType ?? '');
  if (types.length === 0 || types.some((t) => t !== 'ec2:Instance' && t !== 'ec2:LaunchTemplate'))
    throw new AwsError('InvalidParameterValue', 'ResourceTypes must be ec2:Instance and/or ec2:LaunchTemplate');
  const depthValue = input.ResourceTypes?.find((t) => t.ResourceType === 'ec2:LaunchTemplate')?.ResourceTypeOptions?.find(
    (o) => o.OptionName === 'version-depth',
  )?.OptionValues?.[0];
  const versionDepth = depthValue === undefined ? 20 : Number(depthValue);
  if (!Number.isInteger(versionDepth) || versionDepth < 1 || versionDepth > 10000)
    throw new AwsError('InvalidParameterValue', 'version-depth must be an integer between 1 and 10000');
  const reportId = `amiur-${hex(9).slice(0, 17)}`;
  const entries: UsageReport['entries'] = [];
  for (const { account, region, store } of ctx.env.state.allCells()) {
    if (region !== ctx.region || account === ctx.account) continue;
    if (input.AccountIds !== undefined && input.AccountIds.length > 0 && !input.AccountIds.includes(account)) continue;
    const other = { ...ctx, account } as Ctx;
    if (types.includes('ec2:Instance')) {
      const count = [...store.instances.values()].filter((i) => i.imageId === imageId && i.state !== 'terminated').length;
      if (count > 0) entries.push({ accountId: account, resourceType: 'ec2:Instance', count });
    }
    if (types.includes('ec2:LaunchTemplate')) {
      const count = [...store.launchTemplates.values()].filter((t) =>
        t.versions.slice(-versionDepth).some((v) => resolveSsmImage(other, v.data.ImageId) === imageId),
      ).length;
      if (count > 0) entries.push({ accountId: account, resourceType: 'ec2:LaunchTemplate', count });
    }
  }
  here(ctx).usageReports.set(reportId, {
    reportId,
    imageId,
    resourceTypes: types,
    accountIds: input.AccountIds,
    versionDepth,
    created: ctx.env.clock.now(),
    entries,
  });
  return { ReportId: reportId };
}

function usageReportsOf(ctx: Ctx, input: { ImageIds?: string[] | undefined; ReportIds?: string[] | undefined }): UsageReport[] {
  return [...here(ctx).usageReports.values()].filter(
    (r) =>
      (input.ReportIds === undefined || input.ReportIds.length === 0 || input.ReportIds.includes(r.reportId)) &&
      (input.ImageIds === undefined || input.ImageIds.length === 0 || input.ImageIds.includes(r.imageId)),
  );
}

function describeImageUsageReports(
  ctx: Ctx,
  input: {
    ImageIds?: string[] | undefined;
    ReportIds?: string[] | undefined;
    MaxResults?: number | undefined;
    NextToken?: string | undefined;
  },
) {
  const { page, nextToken } = paginate(usageReportsOf(ctx, input), input.MaxResults, input.NextToken, { default: 100, max: 100 });
  return {
    ImageUsageReports: page.map((r) => ({
      ImageId: r.imageId,
      ReportId: r.reportId,
      State: ctx.env.clock.now() - r.created >= USAGE_REPORT_MS ? 'available' : 'pending',
      CreationTime: new Date(r.created).toISOString(),
      ResourceTypes: r.resourceTypes.map((ResourceType) => ({ ResourceType })),
    })),
    NextToken: nextToken,
  };
}

function describeImageUsageReportEntries(
  ctx: Ctx,
  input: {
    ImageIds?: string[] | undefined;
    ReportIds?: string[] | undefined;
    MaxResults?: number | undefined;
    NextToken?: string | undefined;
  },
) {
  const ready = usageReportsOf(ctx, input).filter((r) => ctx.env.clock.now() - r.created >= USAGE_REPORT_MS);
  const entries = ready.flatMap((r) =>
    r.entries.map((e) => ({
      ResourceType: e.resourceType,
      ReportId: r.reportId,
      UsageCount: e.count,
      AccountId: e.accountId,
      ImageId: r.imageId,
      ReportCreationTime: new Date(r.created).toISOString(),
    })),
  );
  const { page, nextToken } = paginate(entries, input.MaxResults, input.NextToken, { default: 1000, max: 1000 });
  return { ImageUsageReportEntries: page, NextToken: nextToken };
}

export { createImageUsageReport, describeImageUsageReportEntries, describeImageUsageReports };
