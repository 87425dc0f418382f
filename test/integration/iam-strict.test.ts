/**
 * The sandbox's IAM and STS as strict as AWS's: condition operators on missing keys (negated, …IfExists,
 * Null), trust policies evaluated with their conditions, expired sessions, session durations, role
 * chaining and partitions (IAM User Guide, "IAM JSON policy elements: Condition operators", "Methods to
 * assume a role"; STS API Reference, AssumeRole).
 */
import { CreateTagsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { CreateRoleCommand, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readTemplate, templateRoles } from '../../sandbox/emulator/iam/cloudformation.ts';
import { evaluate } from '../../sandbox/emulator/iam/policy.ts';
import { registerImage } from '../../sandbox/emulator/services/ec2/index.ts';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { clients, smallScenario, useSandbox } from '../helpers/sandbox.ts';

const OWNER = '111111111111';
const OTHER = '222222222222';

type Credentials = { AccessKeyId?: string; SecretAccessKey?: string; SessionToken?: string } | undefined;

function as(box: Sandbox, c: Credentials, region = 'us-east-1') {
  const config = {
    endpoint: box.url,
    region,
    credentials: { accessKeyId: c?.AccessKeyId ?? '', secretAccessKey: c?.SecretAccessKey ?? '', sessionToken: c?.SessionToken ?? '' },
    maxAttempts: 1,
  };
  return { ec2: new EC2Client(config), sts: new STSClient(config) };
}

const trustRoot = (account: string, condition?: object) =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${account}:root` },
        Action: 'sts:AssumeRole',
        ...(condition === undefined ? {} : { Condition: condition }),
      },
    ],
  });

describe('IAM and STS in the sandbox, as strict as AWS', () => {
  let box: Sandbox;
  const sandboxes = useSandbox('all');

  async function role(name: string, trust: string, policy?: object, maxSessionDuration?: number): Promise<void> {
    const iam = clients(box.url, OWNER).iam;
    await iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: trust, MaxSessionDuration: maxSessionDuration }));
    if (policy !== undefined)
      await iam.send(new PutRolePolicyCommand({ RoleName: name, PolicyName: 'p', PolicyDocument: JSON.stringify(policy) }));
  }

  async function assume(name: string, from = clients(box.url, OWNER).sts, extra: { DurationSeconds?: number } = {}) {
    const out = await from.send(
      new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${OWNER}:role/${name}`, RoleSessionName: 'probe', ...extra }),
    );
    return out.Credentials;
  }

  beforeAll(async () => {
    box = await sandboxes.start({ scenario: smallScenario() });
  }, 60_000);

  it('a negated operator on a key the request lacks evaluates true, for every negated operator', () => {
    // "If the policy condition requires that the key is not matched, such as StringNotLike or ArnNotLike, and
    // the right key is not present, the condition is true" (IAM User Guide, condition operators)
    for (const [operator, value] of [
      ['StringNotEquals', 'x'],
      ['StringNotEqualsIgnoreCase', 'x'],
      ['StringNotLike', 'x*'],
      ['ArnNotEquals', 'arn:aws:iam::111111111111:role/x'],
      ['ArnNotLike', 'arn:aws:iam::*:role/x'],
      ['NumericNotEquals', '5'],
      ['DateNotEquals', '2020-01-01T00:00:00Z'],
    ] as const) {
      const deny = {
        Effect: 'Deny' as const,
        Action: 's3:GetObject',
        Resource: '*',
        Condition: { [operator]: { 'aws:PrincipalTag/team': value } },
      };
      const allow = { Effect: 'Allow' as const, Action: 's3:GetObject', Resource: '*' };
      const decision = evaluate([{ source: 'p', document: { Statement: [allow, deny] } }], {
        action: 's3:GetObject',
        resource: 'arn:aws:s3:::b/k',
      });
      expect(decision.decision, operator).toBe('explicitDeny');
      // the positive operator on the same missing key is false: the Deny does not apply
      const positive = operator.replace('Not', '');
      const kept = evaluate(
        [{ source: 'p', document: { Statement: [allow, { ...deny, Condition: { [positive]: { 'aws:PrincipalTag/team': value } } }] } }],
        { action: 's3:GetObject', resource: 'arn:aws:s3:::b/k' },
      );
      expect(kept.decision, positive).toBe('allow');
    }
    // ForAnyValue over a missing key is false, ForAllValues true, even negated
    const forAny = evaluate(
      [
        {
          source: 'p',
          document: {
            Statement: [
              {
                Effect: 'Allow',
                Action: 'ec2:CreateTags',
                Resource: '*',
                Condition: { 'ForAnyValue:StringNotEquals': { 'aws:TagKeys': 'x' } },
              },
            ],
          },
        },
      ],
      { action: 'ec2:CreateTags', resource: '*' },
    );
    expect(forAny.decision).toBe('implicitDeny');
  });

  it('over the wire: a negated Deny on a missing tag refuses, …IfExists passes a missing key, Null tells absent from present', async () => {
    await role('conditions', trustRoot(OWNER), {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'TagOwnTeam',
          Effect: 'Allow',
          Action: 'ec2:CreateTags',
          Resource: '*',
          Condition: { StringEqualsIfExists: { 'aws:ResourceTag/team': 'a' } },
        },
        // only where the AMI carries no `stage` tag yet
        {
          Sid: 'NoStageYet',
          Effect: 'Deny',
          Action: 'ec2:CreateTags',
          Resource: '*',
          Condition: { Null: { 'aws:ResourceTag/stage': 'false' } },
        },
        {
          Sid: 'OnlyTeamA',
          Effect: 'Deny',
          Action: 'ec2:CreateTags',
          Resource: '*',
          Condition: { StringNotEquals: { 'aws:ResourceTag/owner': 'team-a' } },
        },
      ],
    });
    const session = as(box, await assume('conditions'));
    const ami = (tags: Record<string, string>) =>
      registerImage(box.state, box.clock, {
        account: OWNER,
        region: 'us-east-1',
        name: `x-${Object.keys(tags).join('-')}`,
        tags,
        creationDate: box.clock.iso(),
      });
    const tag = (id: string) => session.ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: 'k', Value: 'v' }] }));
    // no owner tag: StringNotEquals on the missing key is true, the Deny applies
    await expect(tag(ami({ team: 'a' }).imageId)).rejects.toMatchObject({
      name: 'UnauthorizedOperation',
      message: expect.stringMatching(/not authorized to perform: ec2:CreateTags on resource: \S+ with an explicit deny/),
    });
    // owner team-a, no team tag: StringEqualsIfExists passes the missing key
    const mine = ami({ owner: 'team-a' });
    await tag(mine.imageId);
    expect(mine.tags.get('k')).toBe('v');
    // a team tag of another value fails the …IfExists condition: no Allow
    await expect(tag(ami({ owner: 'team-a', team: 'b' }).imageId)).rejects.toMatchObject({
      message: expect.stringMatching(/ec2:CreateTags .* because no identity-based policy allows/),
    });
    // a stage tag present: Null false holds, the Deny applies
    await expect(tag(ami({ owner: 'team-a', stage: 'prod' }).imageId)).rejects.toMatchObject({
      message: expect.stringMatching(/ec2:CreateTags .* with an explicit deny/),
    });
  });

  it('evaluates a trust policy with its conditions: only the principal aws:PrincipalArn names may assume', async () => {
    await role('function', trustRoot(OWNER), {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: '*' }],
    });
    await role('developer', trustRoot(OWNER), {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: '*' }],
    });
    await role('guarded', trustRoot(OWNER, { ArnEquals: { 'aws:PrincipalArn': `arn:aws:iam::${OWNER}:role/function` } }));
    const fn = as(box, await assume('function'));
    const dev = as(box, await assume('developer'));
    expect(
      (await fn.sts.send(new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${OWNER}:role/guarded`, RoleSessionName: 'probe' }))).Credentials,
    ).toBeDefined();
    for (const [who, sts] of [
      ['developer role', dev.sts],
      ['account root', clients(box.url, OWNER).sts],
    ] as const) {
      await expect(
        sts.send(new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${OWNER}:role/guarded`, RoleSessionName: 'probe' })),
        who,
      ).rejects.toMatchObject({
        name: 'AccessDenied',
        message: expect.stringMatching(
          /is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111111111111:role\/guarded$/,
        ),
      });
    }
    // another account's root is not this account's
    await expect(
      clients(box.url, OTHER).sts.send(new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${OWNER}:role/function`, RoleSessionName: 'probe' })),
    ).rejects.toMatchObject({ name: 'AccessDenied' });
  });

  it('refuses expired session credentials with ExpiredToken', async () => {
    await role('short', trustRoot(OWNER), {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'ec2:DescribeImages', Resource: '*' }],
    });
    const credentials = await assume('short', undefined, { DurationSeconds: 900 });
    const session = as(box, credentials);
    expect((await session.sts.send(new GetCallerIdentityCommand({}))).Arn).toMatch(/assumed-role\/short\/probe$/);
    // the session's end has passed (STS issued it for 900 s)
    const stored = box.state.sessions.get(credentials?.AccessKeyId ?? '');
    if (stored === undefined) throw new Error('no session');
    stored.expiration = new Date(Date.now() - 1000);
    await expect(session.sts.send(new GetCallerIdentityCommand({}))).rejects.toMatchObject({
      name: 'ExpiredToken',
      message: 'The security token included in the request is expired',
    });
    await expect(session.ec2.send(new CreateTagsCommand({ Resources: ['ami-1'], Tags: [] }))).rejects.toMatchObject({
      name: 'ExpiredToken',
    });
  });

  it("bounds DurationSeconds by the role's MaxSessionDuration, and a chained session by one hour", async () => {
    await role(
      'two-hours',
      trustRoot(OWNER),
      { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Resource: '*' }] },
      7200,
    );
    await role('twelve-hours', trustRoot(OWNER), undefined, 43_200);
    await expect(assume('two-hours', undefined, { DurationSeconds: 7201 })).rejects.toMatchObject({
      name: 'ValidationError',
      message: 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.',
    });
    await expect(assume('two-hours', undefined, { DurationSeconds: 899 })).rejects.toMatchObject({ name: 'ValidationError' });
    const first = as(box, await assume('two-hours', undefined, { DurationSeconds: 7200 }));
    // role chaining: a role session assuming a role gets one hour at most, whatever the role allows
    await expect(assume('twelve-hours', first.sts, { DurationSeconds: 3601 })).rejects.toMatchObject({
      name: 'ValidationError',
      message: 'The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.',
    });
    expect(await assume('twelve-hours', first.sts, { DurationSeconds: 3600 })).toBeDefined();
  });

  it("refuses a role ARN of another partition than the endpoint's", async () => {
    await expect(
      clients(box.url, OWNER).sts.send(
        new AssumeRoleCommand({ RoleArn: `arn:aws-cn:iam::${OTHER}:role/ImageBuilderReconcilerTarget`, RoleSessionName: 'probe' }),
      ),
    ).rejects.toMatchObject({ name: 'AccessDenied', message: expect.stringContaining('sts:AssumeRole on resource: arn:aws-cn:iam::') });
  });
});

describe('the target-account template, read as CloudFormation reads it', () => {
  const template = readTemplate(join(import.meta.dirname, '../../infra/target-account-role.yaml'));
  const where = { account: OTHER, region: 'us-east-1', partition: 'aws' };
  const reconcile = `arn:aws:iam::${OWNER}:role/imagebuilder-reconciler-prod-us-east-1-reconcile`;

  it('refuses AllowCleanup=true without CleanupRoleArn (its Rules)', () => {
    expect(() => templateRoles(template, { ...where, parameters: { ReconcilerRoleArn: reconcile, AllowCleanup: 'true' } })).toThrow(
      /rule CleanupNeedsItsRole: AllowCleanup=true needs CleanupRoleArn/,
    );
  });

  it("trusts the reconciler account's root only with aws:PrincipalArn naming the function role (and the operators given)", () => {
    const [repair] = templateRoles(template, {
      ...where,
      parameters: { ReconcilerRoleArn: reconcile, OperatorPrincipalArns: `arn:aws:iam::${OWNER}:role/ops` },
    });
    expect(repair?.assumeRolePolicyDocument.Statement).toStrictEqual([
      {
        Sid: 'OnlyTheReconcileRole',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${OWNER}:root` },
        Action: 'sts:AssumeRole',
        Condition: { ArnEquals: { 'aws:PrincipalArn': [reconcile, `arn:aws:iam::${OWNER}:role/ops`] } },
      },
    ]);
  });
});
