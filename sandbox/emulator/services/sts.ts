import { randomBytes } from 'node:crypto';
import type { AssumeRoleRequest } from '@aws-sdk/client-sts';
import * as stsSchemas from '@aws-sdk/client-sts';
import { type PolicyDocument, type RequestContext, evaluateTrust } from '../iam/policy.ts';
import { partitionOf } from '../partition.ts';
import { AwsError } from '../protocol/errors.ts';
import { type Ctx, type ServiceDef, op } from '../server.ts';

function callerArn(ctx: Ctx): string {
  const session = ctx.accessKeyId === undefined ? undefined : ctx.env.state.sessions.get(ctx.accessKeyId);
  if (session !== undefined) {
    const name = session.roleArn.slice(session.roleArn.indexOf(':role/') + 6);
    return `arn:${session.roleArn.split(':')[1] ?? 'aws'}:sts::${session.accountId}:assumed-role/${name}/${session.sessionName}`;
  }
  return `arn:${partitionOf(ctx.region)}:iam::${ctx.account}:root`;
}

/** STS's own bounds on DurationSeconds (STS API Reference, AssumeRole: "minimum value of 900"). */
const MIN_DURATION_SECONDS = 900;
/**
 * "Role chaining limits your AWS CLI or AWS API role session to a maximum of one hour. When you use the
 * AssumeRole API operation to assume a role, you can specify the duration of your role session with the
 * DurationSeconds parameter. ... if you assume a role using role chaining and provide a DurationSeconds
 * parameter value greater than one hour, the operation fails" (IAM User Guide, "Methods to assume a role",
 * role chaining: https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_manage-assume.html). A Lambda
 * function's execution role credentials are themselves a role session, so its AssumeRole is chained.
 */
const CHAINED_MAX_SECONDS = 3600;

/**
 * sts:AssumeRole succeeds only when the role exists in the caller's partition and its trust policy allows
 * the caller, evaluated as IAM does with the request's context (aws:PrincipalArn, aws:PrincipalAccount,
 * aws:PrincipalOrgID, sts:ExternalId), within the role's MaxSessionDuration and, for a chained session, one
 * hour. The credentials it issues act as the role's account on every later call.
 */
function assumeRole(ctx: Ctx, input: AssumeRoleRequest) {
  const roleArn = input.RoleArn ?? '';
  const match = /^arn:(aws[a-z-]*):iam::(\d{12}):role\/(?:.*\/)?([\w+=,.@-]{1,64})$/.exec(roleArn);
  if (match === null) throw new AwsError('ValidationError', `${roleArn} is not a valid role ARN`);
  if (input.RoleSessionName === undefined || !/^[\w+=,.@-]{2,64}$/.test(input.RoleSessionName)) {
    throw new AwsError('ValidationError', "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint");
  }
  const [, partition = '', account = '', name = ''] = match;
  const caller = callerArn(ctx);
  const denied = new AwsError('AccessDenied', `User: ${caller} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`, 403);
  // "You cannot use IAM credentials from one partition to interact with resources in a different partition"
  // (AWS Fault Isolation Boundaries whitepaper, "Partitions"); STS refuses such a role ARN as AccessDenied
  if (partition !== partitionOf(ctx.region)) throw denied;
  const role = ctx.env.state.rolesOf(account).get(name);
  if (role === undefined) throw denied;
  const session = ctx.accessKeyId === undefined ? undefined : ctx.env.state.sessions.get(ctx.accessKeyId);
  const principalArn = session?.roleArn ?? `arn:${partitionOf(ctx.region)}:iam::${ctx.account}:root`;
  const organization = ctx.env.state.organizations.get(ctx.account);
  // the request context a trust policy sees (IAM User Guide, "AWS global condition context keys":
  // aws:PrincipalArn is the role's ARN for a role session; sts:ExternalId only when the caller passes one)
  const context: RequestContext = {
    'aws:PrincipalArn': principalArn,
    'aws:PrincipalAccount': ctx.account,
    'aws:PrincipalType': session === undefined ? 'Account' : 'AssumedRole',
    ...(organization === undefined ? {} : { 'aws:PrincipalOrgID': organization }),
    ...(input.ExternalId === undefined ? {} : { 'sts:ExternalId': input.ExternalId }),
  };
  const trust = evaluateTrust(JSON.parse(role.assumeRolePolicyDocument) as PolicyDocument, { principalArn, account: ctx.account }, context);
  if (trust.decision !== 'allow') throw denied;
  const duration = input.DurationSeconds ?? 3600;
  // AssumeRole, DurationSeconds: "from 900 seconds (15 minutes) up to the maximum session duration setting
  // for the role ... If you specify a value higher than this setting or the administrator setting (whichever
  // is lower), the operation fails" (STS API Reference, AssumeRole)
  if (duration < MIN_DURATION_SECONDS)
    throw new AwsError(
      'ValidationError',
      `1 validation error detected: Value '${duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900`,
    );
  if (session !== undefined && duration > CHAINED_MAX_SECONDS)
    throw new AwsError(
      'ValidationError',
      'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.',
    );
  if (duration > role.maxSessionDuration)
    throw new AwsError('ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
  const accessKeyId = `ASIA${randomBytes(8).toString('hex').toUpperCase()}`;
  const expiration = new Date(Date.now() + duration * 1000);
  ctx.env.state.sessions.set(accessKeyId, {
    accessKeyId,
    accountId: account,
    roleArn: role.arn,
    sessionName: input.RoleSessionName,
    expiration,
  });
  return {
    Credentials: {
      AccessKeyId: accessKeyId,
      SecretAccessKey: randomBytes(20).toString('base64'),
      SessionToken: randomBytes(32).toString('base64'),
      Expiration: expiration,
    },
    AssumedRoleUser: {
      AssumedRoleId: `AROA${randomBytes(8).toString('hex').toUpperCase()}:${input.RoleSessionName}`,
      Arn: `arn:${role.arn.split(':')[1] ?? 'aws'}:sts::${account}:assumed-role/${name}/${input.RoleSessionName}`,
    },
  };
}

const sts: ServiceDef = {
  name: 'sts',
  protocol: 'query',
  namespace: 'https://sts.amazonaws.com/doc/2011-06-15/',
  schemas: stsSchemas as unknown as Record<string, unknown>,
  handlers: {
    AssumeRole: op(assumeRole),
    GetCallerIdentity: op((ctx: Ctx) => ({ Account: ctx.account, Arn: callerArn(ctx), UserId: ctx.accessKeyId ?? 'AIDASANDBOX' })),
    // decodes EC2's "Encoded authorization failure message" (STS API reference, DecodeAuthorizationMessage)
    DecodeAuthorizationMessage: op((ctx: Ctx, input: { EncodedMessage?: string }) => {
      const decoded = ctx.env.state.authorizationMessages.get(input.EncodedMessage ?? '');
      if (decoded === undefined) throw new AwsError('InvalidAuthorizationMessageException', 'The specified encoded message is not valid.');
      return { DecodedMessage: decoded };
    }),
  },
};

export { sts };
