import { randomBytes } from 'node:crypto';
import type { AssumeRoleRequest } from '@aws-sdk/client-sts';
import * as stsSchemas from '@aws-sdk/client-sts';
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

/**
 * sts:AssumeRole succeeds only when the role exists and its trust policy names the caller's account (or
 * the caller's role), with the external id when the role asks for one. The credentials it issues act as
 * the role's account on every later call.
 */
function assumeRole(ctx: Ctx, input: AssumeRoleRequest) {
  const roleArn = input.RoleArn ?? '';
  const match = /^arn:aws[a-z-]*:iam::(\d{12}):role\/(?:.*\/)?([\w+=,.@-]{1,64})$/.exec(roleArn);
  if (match === null) throw new AwsError('ValidationError', `${roleArn} is not a valid role ARN`);
  if (input.RoleSessionName === undefined || !/^[\w+=,.@-]{2,64}$/.test(input.RoleSessionName)) {
    throw new AwsError('ValidationError', "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint");
  }
  const [, account = '', name = ''] = match;
  const role = ctx.env.state.rolesOf(account).get(name);
  const caller = callerArn(ctx);
  const denied = new AwsError('AccessDenied', `User: ${caller} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`, 403);
  if (role === undefined) throw denied;
  const session = ctx.accessKeyId === undefined ? undefined : ctx.env.state.sessions.get(ctx.accessKeyId);
  const trusted = role.trusted.includes(ctx.account) || (session !== undefined && role.trusted.includes(session.roleArn));
  if (!trusted) throw denied;
  if (role.externalId !== undefined && role.externalId !== input.ExternalId) throw denied;
  const accessKeyId = `ASIA${randomBytes(8).toString('hex').toUpperCase()}`;
  const expiration = new Date(Date.now() + (input.DurationSeconds ?? 3600) * 1000);
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
