import * as schemas from '@aws-sdk/client-cloudformation';
import type {
  CreateStackInput,
  DeleteStackInput,
  DescribeStacksInput,
  GetTemplateInput,
  Parameter as StackParameter,
} from '@aws-sdk/client-cloudformation';
import { type Obj, parseTemplate } from '../iam/cloudformation.ts';
import { partitionOf } from '../partition.ts';
import { AwsError } from '../protocol/errors.ts';
import { type Ctx, type ServiceDef, op } from '../server.ts';
import type { CellStore, Stack } from '../state.ts';
import { paginate } from './common.ts';

/**
 * AWS CloudFormation over its query protocol (namespace 2010-05-15), as far as cleanup's in-use check needs
 * it: stacks whose parameters or templates name an AMI. CreateStack takes a template body (JSON or YAML) and
 * its parameters: declared ones without a value take their `Default`, a missing value without a default is
 * refused, an `AWS::EC2::Image::Id` value must be an AMI the account can see ("CloudFormation validates these
 * values against existing values in the account"), and an SSM parameter type
 * (`AWS::SSM::Parameter::Value<…>`) is resolved from the account's parameter store, its value shown as
 * `ResolvedValue` (CloudFormation User Guide, "Specify existing resources at runtime with CloudFormation-
 * supplied parameter types" and "Specify external values in CloudFormation templates: SSM parameter types").
 * A stack is complete at once. DescribeStacks without a name lists every stack not deleted; a deleted stack
 * is found only by its stack id (CloudFormation API Reference, DescribeStacks). GetTemplate answers the
 * template as submitted (CloudFormation API Reference, GetTemplate).
 */

const PAGE = 100;

function here(ctx: Ctx): CellStore {
  return ctx.env.state.cell(ctx.account, ctx.region);
}

function findStack(ctx: Ctx, nameOrId: string | undefined): Stack {
  const stacks = [...here(ctx).stacks.values()];
  const found = stacks.find((s) => s.stackId === nameOrId) ?? stacks.find((s) => s.name === nameOrId && s.status !== 'DELETE_COMPLETE');
  if (found === undefined) throw new AwsError('ValidationError', `Stack with id ${nameOrId ?? ''} does not exist`);
  return found;
}

function parseBody(body: string): Obj {
  let template: Obj;
  try {
    template = parseTemplate(body);
  } catch (error: unknown) {
    throw new AwsError('ValidationError', `Template format error: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (template === null || typeof template !== 'object' || Array.isArray(template))
    throw new AwsError('ValidationError', 'Template format error: JSON not well-formed.');
  if (template.Resources === undefined)
    throw new AwsError('ValidationError', 'Template format error: At least one Resources member must be defined.');
  return template;
}

function resolveParameters(ctx: Ctx, template: Obj, given: StackParameter[]): Stack['parameters'] {
  const declared = (template.Parameters ?? {}) as Record<string, { Type?: string; Default?: string | number }>;
  for (const p of given)
    if (declared[p.ParameterKey ?? ''] === undefined)
      throw new AwsError('ValidationError', `Parameters: [${p.ParameterKey ?? ''}] do not exist in the template`);
  const missing: string[] = [];
  const out: Stack['parameters'] = [];
  for (const [key, decl] of Object.entries(declared)) {
    const value =
      given.find((p) => p.ParameterKey === key)?.ParameterValue ?? (decl.Default === undefined ? undefined : String(decl.Default));
    if (value === undefined) {
      missing.push(key);
      continue;
    }
    const type = decl.Type ?? 'String';
    let resolvedValue: string | undefined;
    const ssm = /^AWS::SSM::Parameter::Value<(.+)>$/.exec(type);
    if (ssm !== null) {
      const parameter = here(ctx).parameters.get(value);
      if (parameter === undefined)
        throw new AwsError('ValidationError', `Unable to fetch parameters [${value}] from parameter store for this account.`);
      resolvedValue = parameter.value;
    }
    const imageId = type === 'AWS::EC2::Image::Id' ? value : ssm?.[1] === 'AWS::EC2::Image::Id' ? resolvedValue : undefined;
    if (imageId !== undefined) {
      const image = ctx.env.state.findImage(ctx.region, imageId);
      if (image === undefined || image.state === 'deregistered')
        throw new AwsError(
          'ValidationError',
          `Parameter validation failed: parameter value ${imageId} for parameter name ${key} does not exist`,
        );
    }
    out.push({ key, value, resolvedValue });
  }
  if (missing.length > 0) throw new AwsError('ValidationError', `Parameters: [${missing.join(', ')}] must have values`);
  return out;
}

const cloudformation: ServiceDef = {
  name: 'cloudformation',
  protocol: 'query',
  namespace: 'http://cloudformation.amazonaws.com/doc/2010-05-15/',
  schemas: schemas as unknown as Record<string, unknown>,
  handlers: {
    CreateStack: op((ctx: Ctx, input: CreateStackInput) => {
      const name = input.StackName ?? '';
      if (!/^[a-zA-Z][-a-zA-Z0-9]{0,127}$/.test(name))
        throw new AwsError('ValidationError', `1 validation error detected: Value '${name}' at 'stackName' failed to satisfy constraint`);
      if (input.TemplateBody === undefined)
        throw new AwsError('ValidationError', 'Either Template URL or Template Body must be specified.');
      if ([...here(ctx).stacks.values()].some((s) => s.name === name && s.status !== 'DELETE_COMPLETE'))
        throw new AwsError('AlreadyExistsException', `Stack [${name}] already exists`);
      const template = parseBody(input.TemplateBody);
      const parameters = resolveParameters(ctx, template, input.Parameters ?? []);
      const stackId = `arn:${partitionOf(ctx.region)}:cloudformation:${ctx.region}:${ctx.account}:stack/${name}/${crypto.randomUUID()}`;
      here(ctx).stacks.set(stackId, {
        stackId,
        name,
        status: 'CREATE_COMPLETE',
        templateBody: input.TemplateBody,
        parameters,
        created: ctx.env.clock.iso(),
      });
      return { StackId: stackId };
    }),
    DescribeStacks: op((ctx: Ctx, input: DescribeStacksInput) => {
      const stacks =
        input.StackName === undefined
          ? [...here(ctx).stacks.values()].filter((s) => s.status !== 'DELETE_COMPLETE')
          : [findStack(ctx, input.StackName)];
      const { page, nextToken } = paginate(stacks, undefined, input.NextToken, { default: PAGE, max: PAGE });
      return {
        Stacks: page.map((s) => ({
          StackId: s.stackId,
          StackName: s.name,
          StackStatus: s.status,
          CreationTime: new Date(s.created),
          Parameters: s.parameters.map((p) => ({ ParameterKey: p.key, ParameterValue: p.value, ResolvedValue: p.resolvedValue })),
        })),
        NextToken: nextToken,
      };
    }),
    GetTemplate: op((ctx: Ctx, input: GetTemplateInput) => {
      const stack = findStack(ctx, input.StackName);
      return { TemplateBody: stack.templateBody, StagesAvailable: ['Original', 'Processed'] };
    }),
    DeleteStack: op((ctx: Ctx, input: DeleteStackInput) => {
      const stacks = [...here(ctx).stacks.values()];
      // deleting a stack that does not exist succeeds (CloudFormation API Reference, DeleteStack)
      const stack =
        stacks.find((s) => s.stackId === input.StackName) ??
        stacks.find((s) => s.name === input.StackName && s.status !== 'DELETE_COMPLETE');
      if (stack !== undefined) stack.status = 'DELETE_COMPLETE';
      return {};
    }),
  },
};

export { cloudformation };
