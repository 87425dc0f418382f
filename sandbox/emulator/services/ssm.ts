import * as ssmSchemas from '@aws-sdk/client-ssm';
import type { GetParameterRequest, LabelParameterVersionRequest, PutParameterRequest } from '@aws-sdk/client-ssm';
import { partitionOf } from '../partition.ts';
import { AwsError } from '../protocol/errors.ts';
import { type Ctx, type ServiceDef, op } from '../server.ts';
import { canSee } from './ec2/index.ts';
import { labelParameterVersion, parameterNameError, selectParameter, writeParameter } from './parameters.ts';

// SSM Parameter Store: the API; the parameters' versions and labels are kept by parameters.ts

/** Simulated time SSM takes to validate an `aws:ec2:image` value ("This process can take up to a few minutes", AMI_DOC). */
const SSM_IMAGE_VALIDATION_MS = 30_000;

function parameterArn(ctx: Ctx, name: string): string {
  return `arn:${partitionOf(ctx.region)}:ssm:${ctx.region}:${ctx.account}:parameter${name.startsWith('/') ? '' : '/'}${name}`;
}

function existingType(ctx: Ctx, name: string): string | undefined {
  return ctx.env.state.cell(ctx.account, ctx.region).parameters.get(name)?.type;
}

const ssm: ServiceDef = {
  name: 'ssm',
  protocol: 'json',
  schemas: ssmSchemas as unknown as Record<string, unknown>,
  handlers: {
    GetParameter: op((ctx: Ctx, input: GetParameterRequest) => {
      // `name`, `name:version` or `name:label` (parameters.ts)
      const { parameter: p, version, selector } = selectParameter(ctx.env.state.cell(ctx.account, ctx.region), input.Name ?? '');
      return {
        Parameter: {
          Name: p.name,
          Type: p.type,
          Value: version.value,
          Version: version.version,
          Selector: selector,
          LastModifiedDate: version.lastModified,
          ARN: parameterArn(ctx, p.name),
          DataType: p.dataType,
        },
      };
    }),
    LabelParameterVersion: op((ctx: Ctx, input: LabelParameterVersionRequest) =>
      labelParameterVersion(ctx.env.state.cell(ctx.account, ctx.region), input),
    ),
    PutParameter: op((ctx: Ctx, input: PutParameterRequest) => {
      const name = input.Name ?? '';
      const refused = parameterNameError(name);
      if (refused !== undefined) throw refused;
      if (input.Value === undefined) throw new AwsError('ValidationException', 'Value is required');
      const dataType = input.DataType ?? 'text';
      if (!['text', 'aws:ec2:image', 'aws:ssm:integration'].includes(dataType))
        throw new AwsError('ValidationException', `DataType ${dataType} is not supported`);
      // "aws:ec2:image … only for String type parameters" (PutParameter, DataType; Systems Manager User Guide,
      // "Native parameter support for Amazon Machine Image IDs": "you must specify the String parameter type");
      // the model's error for a request its rules refuse is ValidationException (the message is the sandbox's)
      const type = input.Type ?? existingType(ctx, name) ?? 'String';
      if (dataType === 'aws:ec2:image' && type !== 'String')
        throw new AwsError('ValidationException', `The aws:ec2:image data type is supported only for String parameters, not ${type}.`);
      const cell = ctx.env.state.cell(ctx.account, ctx.region);
      const store = cell.parameters;
      const existing = store.get(name);
      const validating = cell.parameterValidations.get(name);
      if (dataType === 'aws:ec2:image' && validating !== undefined) {
        // "If you attempt to create or update the parameter again before the validation process completes, the
        // system reports that validation is still in process" (AMI_DOC below). The page names no error code;
        // TooManyUpdates is the PutParameter error of the service model for one-update-at-a-time resources.
        throw new AwsError(
          'TooManyUpdates',
          `Validation of parameter ${name} (version ${validating.version}) is still in process. Try again after it completes.`,
        );
      }
      if (existing !== undefined && input.Overwrite !== true) {
        throw new AwsError(
          'ParameterAlreadyExists',
          'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.',
        );
      }
      const version = (existing?.version ?? 0) + 1;
      const write = (value: string): void => {
        writeParameter(cell, {
          name,
          value,
          type: input.Type ?? existing?.type ?? 'String',
          dataType,
          version,
          lastModified: ctx.env.clock.date(),
        });
      };
      if (dataType !== 'aws:ec2:image') {
        write(input.Value);
        return { Version: version, Tier: 'Standard' };
      }
      // aws:ec2:image is validated asynchronously: "a successful HTTP 200 response does not guarantee that your
      // parameter was successfully created or updated … If you submit an invalid AMI value, the PutParameter
      // operation will return success, but the asynchronous validation will fail and the parameter will not be
      // created or updated" (SSM API reference, PutParameter, DataType:
      // https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html). Until then
      // GetParameter answers ParameterNotFound for a new parameter and the old version for an update; the value
      // must be an AMI "available in the current AWS Region" to the caller (Systems Manager User Guide, "Native
      // parameter support for Amazon Machine Image IDs", AMI_DOC:
      // https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-ec2-aliases.html).
      const value = input.Value;
      const { account, region } = ctx;
      cell.parameterValidations.set(name, { value, version });
      ctx.env.clock.after(SSM_IMAGE_VALIDATION_MS, () => {
        cell.parameterValidations.delete(name);
        const image = /^ami-[0-9a-f]{8,17}$/.test(value) ? ctx.env.state.findImage(region, value) : undefined;
        const valid =
          image !== undefined &&
          image.state === 'available' &&
          canSee(image, account, ctx.env.state) &&
          !ctx.env.faults.ssmImageValidationFails(value, account, region);
        if (valid) write(value);
      });
      return { Version: version, Tier: 'Standard' };
    }),
    DeleteParameter: op((ctx: Ctx, input: { Name?: string }) => {
      if (!ctx.env.state.cell(ctx.account, ctx.region).parameters.delete(input.Name ?? ''))
        throw new AwsError('ParameterNotFound', `Parameter ${input.Name ?? ''} not found.`);
      return {};
    }),
  },
};

export { SSM_IMAGE_VALIDATION_MS, ssm };
