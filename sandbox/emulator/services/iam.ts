import * as iamSchemas from '@aws-sdk/client-iam';
import { rolePolicies } from '../iam/authorize.ts';
import { MalformedPolicyError, type RequestContext, evaluate, parsePolicy } from '../iam/policy.ts';
import { partitionOf } from '../partition.ts';
import { AwsError } from '../protocol/errors.ts';
import { type Ctx, type ServiceDef, op } from '../server.ts';
import type { Role } from '../state.ts';

function roleNamed(ctx: Ctx, name: string | undefined): Role {
  const role = ctx.env.state.rolesOf(ctx.account).get(name ?? '');
  if (role === undefined) throw new AwsError('NoSuchEntity', `The role with name ${name ?? ''} cannot be found.`, 404);
  return role;
}

/** Check a policy document as IAM does before storing it (MalformedPolicyDocument otherwise). */
function checkedDocument(text: string | undefined): string {
  try {
    parsePolicy(text ?? '');
  } catch (error: unknown) {
    if (error instanceof MalformedPolicyError) throw new AwsError('MalformedPolicyDocument', error.message);
    throw error;
  }
  return text ?? '';
}

const POLICY_NAME = /^[\w+=,.@-]{1,128}$/;

/**
 * iam:SimulatePrincipalPolicy for a role: each action on each resource (default `*`) evaluated against the
 * role's inline and attached policies, with the given context entries (IAM API reference,
 * SimulatePrincipalPolicy; decisions allowed | explicitDeny | implicitDeny).
 */
function simulatePrincipalPolicy(
  ctx: Ctx,
  input: {
    PolicySourceArn?: string;
    ActionNames?: string[];
    ResourceArns?: string[];
    ContextEntries?: { ContextKeyName?: string; ContextKeyValues?: string[] }[];
  },
) {
  const match = /^arn:aws[a-z-]*:iam::(\d{12}):role\/(?:.*\/)?([\w+=,.@-]{1,64})$/.exec(input.PolicySourceArn ?? '');
  if (match === null) throw new AwsError('InvalidInput', `PolicySourceArn must be a role ARN, got ${input.PolicySourceArn ?? ''}`);
  // IAM acts on the entities of the caller's own account: a role of another account is not found there (IAM
  // API Reference, SimulatePrincipalPolicy: PolicySourceArn names "a user, group, or role" of the account)
  const role = match[1] === ctx.account ? ctx.env.state.rolesOf(match[1] ?? '').get(match[2] ?? '') : undefined;
  if (role === undefined) throw new AwsError('NoSuchEntity', `The role with ARN ${input.PolicySourceArn ?? ''} cannot be found.`, 404);
  if ((input.ActionNames ?? []).length === 0) throw new AwsError('InvalidInput', 'ActionNames must name at least one action');
  const context: RequestContext = {};
  for (const entry of input.ContextEntries ?? []) {
    const values = entry.ContextKeyValues ?? [];
    context[entry.ContextKeyName ?? ''] = values.length === 1 ? (values[0] ?? '') : values;
  }
  const policies = rolePolicies(ctx.env.state, role);
  const resources = input.ResourceArns === undefined || input.ResourceArns.length === 0 ? ['*'] : input.ResourceArns;
  const EvaluationResults = (input.ActionNames ?? []).flatMap((action) =>
    resources.map((resource) => {
      const decision = evaluate(policies, { action, resource, context });
      return {
        EvalActionName: action,
        EvalResourceName: resource,
        EvalDecision: decision.decision === 'allow' ? 'allowed' : decision.decision,
        MatchedStatements:
          decision.matched === undefined
            ? []
            : [{ SourcePolicyId: decision.matched.source.replace(/^inline:/, ''), SourcePolicyType: 'IAM Policy' }],
        MissingContextValues: [],
      };
    }),
  );
  return { EvaluationResults, IsTruncated: false };
}

function trustedPrincipals(document: string | undefined): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(document ?? '');
  } catch (error: unknown) {
    throw new AwsError(
      'MalformedPolicyDocument',
      `The assume role policy document is not valid JSON: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const statements = (parsed as { Statement?: unknown }).Statement;
  const list = Array.isArray(statements) ? statements : [statements];
  const principals: string[] = [];
  for (const statement of list as { Effect?: string; Principal?: { AWS?: string | string[] } }[]) {
    if (statement?.Effect !== 'Allow') continue;
    for (const p of [statement.Principal?.AWS ?? []].flat()) {
      const root = /^arn:aws[a-z-]*:iam::(\d{12}):root$/.exec(p);
      principals.push(root?.[1] ?? p);
    }
  }
  return principals;
}

function roleOut(role: { name: string; arn: string; created: string; assumeRolePolicyDocument: string }) {
  return {
    RoleName: role.name,
    Arn: role.arn,
    Path: '/',
    RoleId: `AROA${role.name.toUpperCase().slice(0, 16)}`,
    CreateDate: new Date(role.created),
    AssumeRolePolicyDocument: encodeURIComponent(role.assumeRolePolicyDocument),
  };
}

const iam: ServiceDef = {
  name: 'iam',
  protocol: 'query',
  namespace: 'https://iam.amazonaws.com/doc/2010-05-08/',
  schemas: iamSchemas as unknown as Record<string, unknown>,
  handlers: {
    CreateRole: op((ctx: Ctx, input: { RoleName?: string; AssumeRolePolicyDocument?: string; MaxSessionDuration?: number }) => {
      const name = input.RoleName ?? '';
      if (!/^[\w+=,.@-]{1,64}$/.test(name)) throw new AwsError('ValidationError', `Invalid role name ${name}`);
      if (ctx.env.state.rolesOf(ctx.account).has(name))
        throw new AwsError('EntityAlreadyExists', `Role with name ${name} already exists.`, 409);
      const role = ctx.env.state.putRole(
        ctx.account,
        name,
        trustedPrincipals(input.AssumeRolePolicyDocument),
        undefined,
        partitionOf(ctx.region),
      );
      role.assumeRolePolicyDocument = input.AssumeRolePolicyDocument ?? role.assumeRolePolicyDocument;
      // MaxSessionDuration: 3600 to 43200 seconds, default 3600 (IAM API Reference, CreateRole)
      const max = input.MaxSessionDuration ?? 3600;
      if (!Number.isInteger(max) || max < 3600 || max > 43200)
        throw new AwsError('ValidationError', `MaxSessionDuration ${max} must be between 3600 and 43200 seconds`);
      role.maxSessionDuration = max;
      return { Role: roleOut(role) };
    }),
    GetRole: op((ctx: Ctx, input: { RoleName?: string }) => {
      const role = ctx.env.state.rolesOf(ctx.account).get(input.RoleName ?? '');
      if (role === undefined) throw new AwsError('NoSuchEntity', `The role with name ${input.RoleName ?? ''} cannot be found.`, 404);
      return { Role: roleOut(role) };
    }),
    DeleteRole: op((ctx: Ctx, input: { RoleName?: string }) => {
      if (!ctx.env.state.rolesOf(ctx.account).delete(input.RoleName ?? '')) {
        throw new AwsError('NoSuchEntity', `The role with name ${input.RoleName ?? ''} cannot be found.`, 404);
      }
      return {};
    }),
    ListRoles: op((ctx: Ctx) => ({ Roles: [...ctx.env.state.rolesOf(ctx.account).values()].map(roleOut), IsTruncated: false })),
    ListRolePolicies: op((ctx: Ctx, input: { RoleName?: string }) => ({
      PolicyNames: [...roleNamed(ctx, input.RoleName).inlinePolicies.keys()].sort(),
      IsTruncated: false,
    })),
    GetRolePolicy: op((ctx: Ctx, input: { RoleName?: string; PolicyName?: string }) => {
      const role = roleNamed(ctx, input.RoleName);
      const document = role.inlinePolicies.get(input.PolicyName ?? '');
      if (document === undefined)
        throw new AwsError('NoSuchEntity', `The role policy with name ${input.PolicyName ?? ''} cannot be found.`, 404);
      // IAM returns policy documents URL-encoded (IAM API reference, GetRolePolicy)
      return { RoleName: role.name, PolicyName: input.PolicyName, PolicyDocument: encodeURIComponent(document) };
    }),
    PutRolePolicy: op((ctx: Ctx, input: { RoleName?: string; PolicyName?: string; PolicyDocument?: string }) => {
      const role = roleNamed(ctx, input.RoleName);
      if (!POLICY_NAME.test(input.PolicyName ?? '')) throw new AwsError('ValidationError', `Invalid policy name ${input.PolicyName ?? ''}`);
      role.inlinePolicies.set(input.PolicyName ?? '', checkedDocument(input.PolicyDocument));
      return {};
    }),
    DeleteRolePolicy: op((ctx: Ctx, input: { RoleName?: string; PolicyName?: string }) => {
      if (!roleNamed(ctx, input.RoleName).inlinePolicies.delete(input.PolicyName ?? '')) {
        throw new AwsError('NoSuchEntity', `The role policy with name ${input.PolicyName ?? ''} cannot be found.`, 404);
      }
      return {};
    }),
    CreatePolicy: op((ctx: Ctx, input: { PolicyName?: string; PolicyDocument?: string; Path?: string }) => {
      const name = input.PolicyName ?? '';
      if (!POLICY_NAME.test(name)) throw new AwsError('ValidationError', `Invalid policy name ${name}`);
      const arn = `arn:${partitionOf(ctx.region)}:iam::${ctx.account}:policy${input.Path ?? '/'}${name}`;
      if (ctx.env.state.managedPolicies.has(arn))
        throw new AwsError('EntityAlreadyExists', `A policy called ${name} already exists. Duplicate names are not allowed.`, 409);
      const created = new Date().toISOString();
      ctx.env.state.managedPolicies.set(arn, { arn, name, document: checkedDocument(input.PolicyDocument), created });
      return {
        Policy: {
          PolicyName: name,
          Arn: arn,
          Path: input.Path ?? '/',
          DefaultVersionId: 'v1',
          AttachmentCount: 0,
          IsAttachable: true,
          CreateDate: new Date(created),
        },
      };
    }),
    AttachRolePolicy: op((ctx: Ctx, input: { RoleName?: string; PolicyArn?: string }) => {
      const role = roleNamed(ctx, input.RoleName);
      if (!ctx.env.state.managedPolicies.has(input.PolicyArn ?? ''))
        throw new AwsError('NoSuchEntity', `Policy ${input.PolicyArn ?? ''} does not exist or is not attachable.`, 404);
      role.attachedPolicies.add(input.PolicyArn ?? '');
      return {};
    }),
    DetachRolePolicy: op((ctx: Ctx, input: { RoleName?: string; PolicyArn?: string }) => {
      if (!roleNamed(ctx, input.RoleName).attachedPolicies.delete(input.PolicyArn ?? ''))
        throw new AwsError('NoSuchEntity', `Policy ${input.PolicyArn ?? ''} was not found.`, 404);
      return {};
    }),
    ListAttachedRolePolicies: op((ctx: Ctx, input: { RoleName?: string }) => ({
      AttachedPolicies: [...roleNamed(ctx, input.RoleName).attachedPolicies].map((arn) => ({
        PolicyArn: arn,
        PolicyName: ctx.env.state.managedPolicies.get(arn)?.name ?? arn.slice(arn.lastIndexOf('/') + 1),
      })),
      IsTruncated: false,
    })),
    SimulatePrincipalPolicy: op(simulatePrincipalPolicy),
  },
};

export { iam };
