import * as schemas from '@aws-sdk/client-license-manager';
import type {
  CreateLicenseConfigurationRequest,
  ListLicenseSpecificationsForResourceRequest,
  UpdateLicenseSpecificationsForResourceRequest,
} from '@aws-sdk/client-license-manager';
import { AwsError } from '../protocol/errors.ts';
import { type Ctx, type ServiceDef, op } from '../server.ts';
import { hex } from '../state.ts';
import { canSee } from './ec2/index.ts';
import { partitionOf } from '../partition.ts';

/**
 * AWS License Manager over its JSON 1.1 protocol (target prefix `AWSLicenseManager`), as far as the
 * reconciler's license check needs it: license configurations, and their association with AMIs.
 * Operations, members and error codes are those of the service model (@aws-sdk/client-license-manager):
 * a bad parameter is `InvalidParameterValueException` ("One or more parameter values are not valid.",
 * HTTP 400), and `AccessDeniedException` is HTTP 401 in that model.
 *
 * License Manager is regional and its resources belong to one account: an account associates its resources
 * only with its own license configurations (or ones shared with it through AWS RAM, which the sandbox does
 * not model: another account's configuration is refused), and associations are kept per account
 * (https://docs.aws.amazon.com/license-manager/latest/userguide/license-configurations.html).
 */

/** A license configuration's ARN: the pattern Image Builder's model gives `licenseConfigurationArns`. */
const LICENSE_ARN = /^arn:aws[^:]*:license-manager:([^:]+):(\d{12}):license-configuration:lic-[a-z0-9-_]{32}$/;
/** An AMI's ARN as License Manager takes it (`arn:aws:ec2:<region>::image/<id>`). */
const AMI_ARN = /^arn:aws[^:]*:ec2:([a-z0-9-]+):\d{0,12}:image\/(ami-[0-9a-f]+)$/;

function invalid(message: string): AwsError {
  return new AwsError('InvalidParameterValueException', message, 400);
}

/** The AMI a resource ARN names, visible to the caller in its region; else InvalidParameterValueException. */
function amiOf(ctx: Ctx, resourceArn: string | undefined): string {
  const match = AMI_ARN.exec(resourceArn ?? '');
  if (match === null) throw invalid(`Invalid resource ARN: ${resourceArn ?? ''}`);
  const imageId = match[2] ?? '';
  const image = match[1] === ctx.region ? ctx.env.state.findImage(ctx.region, imageId) : undefined;
  if (image === undefined || !canSee(image, ctx.account, ctx.env.state) || image.state === 'deregistered')
    throw invalid(`Resource ${resourceArn ?? ''} does not exist or is not accessible.`);
  return imageId;
}

const licenseManager: ServiceDef = {
  name: 'license-manager',
  protocol: 'json',
  schemas: schemas as unknown as Record<string, unknown>,
  handlers: {
    CreateLicenseConfiguration: op((ctx: Ctx, input: CreateLicenseConfigurationRequest) => {
      if (input.Name === undefined || input.Name === '') throw invalid('Name is required.');
      if (!['vCPU', 'Instance', 'Core', 'Socket'].includes(input.LicenseCountingType ?? ''))
        throw invalid(`Invalid LicenseCountingType: ${String(input.LicenseCountingType)}`);
      const arn = `arn:${partitionOf(ctx.region)}:license-manager:${ctx.region}:${ctx.account}:license-configuration:lic-${hex(16)}`;
      ctx.env.state
        .cell(ctx.account, ctx.region)
        .licenseConfigurations.set(arn, { arn, name: input.Name, countingType: input.LicenseCountingType ?? 'Instance' });
      return { LicenseConfigurationArn: arn };
    }),
    ListLicenseSpecificationsForResource: op((ctx: Ctx, input: ListLicenseSpecificationsForResourceRequest) => {
      const imageId = amiOf(ctx, input.ResourceArn);
      const associated = ctx.env.state.cell(ctx.account, ctx.region).licenseAssociations.get(imageId) ?? new Set<string>();
      return { LicenseSpecifications: [...associated].map((LicenseConfigurationArn) => ({ LicenseConfigurationArn })) };
    }),
    UpdateLicenseSpecificationsForResource: op((ctx: Ctx, input: UpdateLicenseSpecificationsForResourceRequest) => {
      const imageId = amiOf(ctx, input.ResourceArn);
      const store = ctx.env.state.cell(ctx.account, ctx.region);
      const add = (input.AddLicenseSpecifications ?? []).map((s) => s.LicenseConfigurationArn ?? '');
      const remove = (input.RemoveLicenseSpecifications ?? []).map((s) => s.LicenseConfigurationArn ?? '');
      // all or nothing: every ARN is checked before anything changes
      for (const arn of [...add, ...remove]) {
        if (!LICENSE_ARN.test(arn)) throw invalid(`Invalid license configuration ARN: ${arn}`);
        if (!store.licenseConfigurations.has(arn)) throw invalid(`License configuration ${arn} does not exist or is not accessible.`);
      }
      const associated = store.licenseAssociations.get(imageId) ?? new Set<string>();
      for (const arn of add) associated.add(arn);
      for (const arn of remove) associated.delete(arn);
      store.licenseAssociations.set(imageId, associated);
      return {};
    }),
  },
};

export { licenseManager };
