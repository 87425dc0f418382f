import { describe, expect, it } from 'vitest';
import { type NamedPolicy, type Statement, arnMatches, evaluate, parsePolicy } from '../../sandbox/emulator/iam/policy.ts';

const policy = (...Statement: Statement[]): NamedPolicy[] => [{ source: 'inline:p', document: { Version: '2012-10-17', Statement } }];
const IMAGE = 'arn:aws:ec2:us-east-1::image/ami-0123456789abcdef0';

describe('IAM policy evaluation (sandbox)', () => {
  it('denies implicitly, allows on a match, and lets an explicit Deny win', () => {
    const allow: Statement = { Effect: 'Allow', Action: 'ec2:DeregisterImage', Resource: 'arn:aws:ec2:*::image/*' };
    expect(evaluate([], { action: 'ec2:DeregisterImage', resource: IMAGE }).decision).toBe('implicitDeny');
    expect(evaluate(policy(allow), { action: 'ec2:DeregisterImage', resource: IMAGE }).decision).toBe('allow');
    expect(
      evaluate(policy(allow, { Effect: 'Deny', Action: 'ec2:*', Resource: '*' }), { action: 'ec2:DeregisterImage', resource: IMAGE }),
    ).toMatchObject({ decision: 'explicitDeny', matched: { index: 1 } });
    expect(evaluate(policy(allow), { action: 'ec2:DeleteSnapshot', resource: 'arn:aws:ec2:us-east-1::snapshot/snap-1' }).decision).toBe(
      'implicitDeny',
    );
  });

  it('matches actions case-insensitively with wildcards, and resources segment by segment, case-sensitively', () => {
    expect(
      evaluate(policy({ Effect: 'Allow', Action: 'EC2:describe*', Resource: '*' }), { action: 'ec2:DescribeImages', resource: '*' })
        .decision,
    ).toBe('allow');
    expect(arnMatches('arn:aws:ec2:*::image/*', IMAGE)).toBe(true);
    expect(arnMatches('arn:aws:ec2:*::image/*', 'arn:aws-cn:ec2:cn-north-1::image/ami-1')).toBe(false);
    expect(arnMatches('arn:aws:ec2:*:111111111111:launch-template/*', 'arn:aws:ec2:eu-west-1:222222222222:launch-template/lt-1')).toBe(
      false,
    );
    expect(arnMatches('arn:aws:ssm:*:1:parameter/Golden/*', 'arn:aws:ssm:us-east-1:1:parameter/golden/x')).toBe(false);
    // a scoped grant never matches a request for every resource
    expect(arnMatches('arn:aws:ec2:*::image/*', '*')).toBe(false);
  });

  it('applies NotAction and NotResource', () => {
    const p = policy(
      { Effect: 'Deny', NotAction: 'ec2:Describe*', Resource: '*' },
      { Effect: 'Allow', Action: '*', NotResource: 'arn:aws:ec2:*::snapshot/*' },
    );
    expect(evaluate(p, { action: 'ec2:DescribeImages', resource: IMAGE }).decision).toBe('allow');
    expect(evaluate(p, { action: 'ec2:CreateTags', resource: IMAGE }).decision).toBe('explicitDeny');
    expect(evaluate(p, { action: 'ec2:DescribeSnapshots', resource: 'arn:aws:ec2:us-east-1::snapshot/snap-1' }).decision).toBe(
      'implicitDeny',
    );
  });

  it('evaluates the condition operators the templates use', () => {
    const tagged: Statement = {
      Effect: 'Allow',
      Action: 'ec2:DeregisterImage',
      Resource: '*',
      Condition: { StringEquals: { 'aws:ResourceTag/CreatedBy': 'EC2 Image Builder' } },
    };
    expect(
      evaluate(policy(tagged), {
        action: 'ec2:DeregisterImage',
        resource: IMAGE,
        context: { 'aws:resourcetag/createdby': 'EC2 Image Builder' },
      }).decision,
    ).toBe('allow');
    expect(
      evaluate(policy(tagged), {
        action: 'ec2:DeregisterImage',
        resource: IMAGE,
        context: { 'aws:ResourceTag/CreatedBy': 'ec2 image builder' },
      }).decision,
    ).toBe('implicitDeny');
    expect(evaluate(policy(tagged), { action: 'ec2:DeregisterImage', resource: IMAGE }).decision).toBe('implicitDeny');

    const present: Statement = {
      Effect: 'Allow',
      Action: 'ec2:DeregisterImage',
      Resource: '*',
      Condition: { Null: { 'aws:ResourceTag/k': 'false' } },
    };
    expect(
      evaluate(policy(present), { action: 'ec2:DeregisterImage', resource: IMAGE, context: { 'aws:ResourceTag/k': 'v' } }).decision,
    ).toBe('allow');
    expect(evaluate(policy(present), { action: 'ec2:DeregisterImage', resource: IMAGE }).decision).toBe('implicitDeny');

    const via: Statement = {
      Effect: 'Allow',
      Action: 'ssm:GetParameters',
      Resource: '*',
      Condition: { 'ForAnyValue:StringEquals': { 'aws:CalledVia': 'ec2-images.amazonaws.com' } },
    };
    expect(
      evaluate(policy(via), {
        action: 'ssm:GetParameters',
        resource: '*',
        context: { 'aws:CalledVia': ['cloudformation.amazonaws.com', 'ec2-images.amazonaws.com'] },
      }).decision,
    ).toBe('allow');
    expect(evaluate(policy(via), { action: 'ssm:GetParameters', resource: '*' }).decision).toBe('implicitDeny');

    const onlyKeys: Statement = {
      Effect: 'Allow',
      Action: 'ec2:CreateTags',
      Resource: '*',
      Condition: { 'ForAllValues:StringEquals': { 'aws:TagKeys': ['a', 'b'] } },
    };
    expect(evaluate(policy(onlyKeys), { action: 'ec2:CreateTags', resource: IMAGE, context: { 'aws:TagKeys': ['a'] } }).decision).toBe(
      'allow',
    );
    expect(evaluate(policy(onlyKeys), { action: 'ec2:CreateTags', resource: IMAGE, context: { 'aws:TagKeys': ['a', 'c'] } }).decision).toBe(
      'implicitDeny',
    );

    const like: Statement = {
      Effect: 'Allow',
      Action: 'iam:PassRole',
      Resource: '*',
      Condition: { StringLike: { 'iam:PassedToService': 'ec2.*' }, ArnLike: { 'aws:SourceArn': 'arn:aws:imagebuilder:*:*:image/*' } },
    };
    expect(
      evaluate(policy(like), {
        action: 'iam:PassRole',
        resource: '*',
        context: { 'iam:PassedToService': 'ec2.amazonaws.com', 'aws:SourceArn': 'arn:aws:imagebuilder:us-east-1:1:image/x/1.0.0/1' },
      }).decision,
    ).toBe('allow');
    expect(
      evaluate(policy(like), {
        action: 'iam:PassRole',
        resource: '*',
        context: { 'iam:PassedToService': 'lambda.amazonaws.com', 'aws:SourceArn': 'arn:aws:imagebuilder:us-east-1:1:image/x/1.0.0/1' },
      }).decision,
    ).toBe('implicitDeny');

    const ifExists: Statement = {
      Effect: 'Deny',
      Action: '*',
      Resource: '*',
      Condition: { StringNotEqualsIfExists: { 'aws:RequestTag/env': 'prod' } },
    };
    expect(evaluate(policy(ifExists), { action: 'ec2:CreateTags', resource: IMAGE }).decision).toBe('explicitDeny');
    expect(
      evaluate(policy(ifExists), { action: 'ec2:CreateTags', resource: IMAGE, context: { 'aws:RequestTag/env': 'prod' } }).decision,
    ).toBe('implicitDeny');
  });

  it('refuses malformed documents as IAM does on PutRolePolicy', () => {
    expect(() => parsePolicy('{')).toThrow(/not valid JSON/);
    expect(() => parsePolicy(JSON.stringify({ Statement: [{ Effect: 'Maybe', Action: 'ec2:X', Resource: '*' }] }))).toThrow(/Effect/);
    expect(() => parsePolicy(JSON.stringify({ Statement: [{ Effect: 'Allow', Resource: '*' }] }))).toThrow(/Action/);
    expect(() =>
      parsePolicy(
        JSON.stringify({ Statement: [{ Effect: 'Allow', Action: 'ec2:X', Resource: '*', Condition: { IpAddress: { k: '1' } } }] }),
      ),
    ).toThrow(/IpAddress/);
  });
});
