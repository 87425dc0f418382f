import type { EnableImageDeregistrationProtectionRequest } from '@aws-sdk/client-ec2';
import * as schemas from '@aws-sdk/client-ec2';
import { type Ctx, type ServiceDef, op } from '../../server.ts';
import { canSee, tagsOf } from './access.ts';
import { EXPORT_MS, describeExportImageTasks, exportImage } from './exports.ts';
import { FAST_LAUNCH_MS, describeFastLaunchImages, disableFastLaunch, enableFastLaunch } from './fast-launch.ts';
import {
  cancelSpotFleetRequests,
  createFleet,
  deleteFleets,
  describeFleets,
  describeSpotFleetRequests,
  requestSpotFleet,
} from './fleets.ts';
import {
  COPY_MS,
  copyImage,
  deregisterImage,
  describeImageAttribute,
  describeImages,
  disableImage,
  enableDeprecation,
  enableImage,
  modifyImageAttribute,
  registerImage,
  setProtection,
} from './images.ts';
import { describeInstances, runInstances, stopInstances, terminateInstances } from './instances.ts';
import {
  createLaunchTemplate,
  createLaunchTemplateVersion,
  describeLaunchTemplates,
  describeLaunchTemplateVersions,
  modifyLaunchTemplate,
  templateImage,
} from './launch-templates.ts';
import { describeImageReferences } from './references.ts';
import { deleteSnapshot, describeSnapshots } from './snapshots.ts';
import { cancelSpotInstanceRequests, describeSpotInstanceRequests, requestSpotInstances } from './spot-requests.ts';
import { createTags, deleteTags } from './tags.ts';
import { createImageUsageReport, describeImageUsageReportEntries, describeImageUsageReports } from './usage-reports.ts';

/**
 * EC2, one file per resource family: AMIs (images.ts), their snapshots, tags, launch templates, Fast Launch,
 * instances, Spot Instance requests, Spot Fleet and EC2 Fleet requests, image references, AMI usage reports and VM exports; here the
 * service's operations are put together.
 */

function describeRegions(ctx: Ctx) {
  return {
    Regions: ctx.env.state.regions.map((RegionName) => ({
      RegionName,
      Endpoint: `ec2.${RegionName}.amazonaws.com`,
      OptInStatus: 'opt-in-not-required',
    })),
  };
}

const ec2: ServiceDef = {
  name: 'ec2',
  protocol: 'ec2',
  schemas: schemas as unknown as Record<string, unknown>,
  handlers: {
    DescribeImages: op(describeImages),
    DescribeImageAttribute: op(describeImageAttribute),
    ModifyImageAttribute: op(modifyImageAttribute),
    CreateTags: op(createTags),
    DeleteTags: op(deleteTags),
    CopyImage: op(copyImage),
    DeregisterImage: op(deregisterImage),
    DescribeSnapshots: op(describeSnapshots),
    DeleteSnapshot: op(deleteSnapshot),
    EnableImageDeregistrationProtection: op((ctx, input: EnableImageDeregistrationProtectionRequest) =>
      setProtection(ctx, input, 'enabled'),
    ),
    DisableImageDeregistrationProtection: op((ctx, input: EnableImageDeregistrationProtectionRequest) =>
      setProtection(ctx, input, 'disabled'),
    ),
    DisableImage: op(disableImage),
    EnableImage: op(enableImage),
    EnableImageDeprecation: op(enableDeprecation),
    CreateLaunchTemplate: op(createLaunchTemplate),
    DescribeLaunchTemplates: op(describeLaunchTemplates),
    DescribeLaunchTemplateVersions: op(describeLaunchTemplateVersions),
    CreateLaunchTemplateVersion: op(createLaunchTemplateVersion),
    ModifyLaunchTemplate: op(modifyLaunchTemplate),
    EnableFastLaunch: op(enableFastLaunch),
    DisableFastLaunch: op(disableFastLaunch),
    DescribeFastLaunchImages: op(describeFastLaunchImages),
    RunInstances: op(runInstances),
    DescribeInstances: op(describeInstances),
    TerminateInstances: op(terminateInstances),
    StopInstances: op(stopInstances),
    RequestSpotFleet: op(requestSpotFleet),
    DescribeSpotFleetRequests: op(describeSpotFleetRequests),
    CancelSpotFleetRequests: op(cancelSpotFleetRequests),
    RequestSpotInstances: op(requestSpotInstances),
    DescribeSpotInstanceRequests: op(describeSpotInstanceRequests),
    CancelSpotInstanceRequests: op(cancelSpotInstanceRequests),
    CreateFleet: op(createFleet),
    DescribeFleets: op(describeFleets),
    DeleteFleets: op(deleteFleets),
    CreateImageUsageReport: op(createImageUsageReport),
    DescribeImageUsageReports: op(describeImageUsageReports),
    DescribeImageUsageReportEntries: op(describeImageUsageReportEntries),
    DescribeImageReferences: op(describeImageReferences),
    DescribeRegions: op(describeRegions),
    ExportImage: op(exportImage),
    DescribeExportImageTasks: op(describeExportImageTasks),
  },
};

export { canSee, COPY_MS, EXPORT_MS, tagsOf, FAST_LAUNCH_MS, ec2, registerImage, templateImage };
