import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

type Resource = { Type: string; Properties: Record<string, unknown> };
type Statement = { Effect: string; Action: string | string[]; Resource: unknown };

/** The AWS calls the reconciler makes in a target account, read from the code that makes them. */
function callsInTargetAccounts(): string[] {
  const actions = new Set<string>();
  for (const file of ['src/lib/reconcile/observe.ts', 'src/lib/reconcile/apply.ts', 'src/lib/cleanup/cleanup.ts', 'src/lib/cleanup/inventory.ts']) {
    const source = readFileSync(file, 'utf8');
    for (const [, names, pkg] of source.matchAll(/import \{([^}]+)\} from '@aws-sdk\/client-(ec2|ssm)'/g)) {
      for (const name of (names ?? '').split(',').map((n) => n.trim())) {
        const command = /^(\w+)Command$/.exec(name)?.[1] ?? /^paginate(\w+)$/.exec(name)?.[1];
        if (command !== undefined) actions.add(`${pkg}:${command}`);
      }
    }
  }
  return [...actions].sort();
}

describe('deployment (npx osls package, offline)', () => {
  let resources: Record<string, Resource>;
  const dir = mkdtempSync(join(tmpdir(), 'ibr-package-'));

  beforeAll(() => {
    execFileSync('node', ['scripts/build.mjs', '--quiet'], { stdio: 'pipe' });
    execFileSync('npx', ['osls', 'package', '--package', dir], { stdio: 'pipe', env: { ...process.env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' } });
    resources = JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8')).Resources;
  }, 120_000);

  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

  it('triggers cleanup on the CloudTrail UpdateDistributionConfiguration event of a successful call (no errorCode)', () => {
    const patterns = ofType('AWS::Events::Rule').map(([, r]) => r.Properties.EventPattern);
    expect(patterns).toContainEqual({
      source: ['aws.imagebuilder'],
      'detail-type': ['AWS API Call via CloudTrail'],
      detail: { eventSource: ['imagebuilder.amazonaws.com'], eventName: ['UpdateDistributionConfiguration'], errorCode: [{ exists: false }] },
    });
  });

  it('triggers reconcile on Image State Change AVAILABLE or FAILED', () => {
    const rule = ofType('AWS::Events::Rule').find(([, r]) => JSON.stringify(r.Properties.EventPattern).includes('Image State Change'));
    expect(rule?.[1].Properties.EventPattern).toMatchObject({
      source: ['aws.imagebuilder'],
      'detail-type': ['EC2 Image Builder Image State Change'],
      detail: { state: { status: ['AVAILABLE', 'FAILED'] } },
    });
  });

  it('feeds recheck from a queue with a dead-letter queue, reporting partial batch failures', () => {
    expect(resources.RecheckQueue?.Properties.RedrivePolicy).toMatchObject({ maxReceiveCount: 3 });
    const [mapping] = ofType('AWS::Lambda::EventSourceMapping');
    expect(mapping?.[1].Properties.FunctionResponseTypes).toStrictEqual(['ReportBatchItemFailures']);
  });

  it('sends failed asynchronous invocations to a dead-letter queue', () => {
    const [config] = ofType('AWS::Lambda::EventInvokeConfig');
    expect(JSON.stringify(config?.[1].Properties.DestinationConfig)).toContain('FailedInvocationsQueue');
  });

  it('runs every function on nodejs22.x or newer, each from its own small bundle', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions.length).toBe(4);
    for (const [, fn] of functions) expect(fn.Properties.Runtime).toMatch(/^nodejs(2[2-9]|[3-9]\d)\.x$/);
    for (const name of ['reconcile', 'recheck', 'cleanup', 'cleanupOnChange']) expect(statSync(join(dir, `${name}.zip`)).size).toBeLessThan(1024 * 1024);
  });

  it('has a least-privilege role: no "*" action, AssumeRole only on the target role name', () => {
    const role = resources.IamRoleLambdaExecution;
    const statements = (role?.Properties.Policies as { PolicyDocument: { Statement: Statement[] } }[]).flatMap((p) => p.PolicyDocument.Statement);
    const actions = statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
    expect(actions.filter((a) => a === '*' || a.endsWith(':*'))).toStrictEqual([]);
    const assume = statements.find((s) => [s.Action].flat().includes('sts:AssumeRole'));
    expect(JSON.stringify(assume?.Resource)).toContain(':role/ImageBuilderReconcilerTarget');
    for (const action of callsInTargetAccounts()) expect(actions, action).toContain(action);
  });

  it('the target-account role template grants every call the reconciler makes there, and trusts only its role', () => {
    const template = readFileSync('infra/target-account-role.yaml', 'utf8');
    for (const action of callsInTargetAccounts()) expect(template, action).toMatch(new RegExp(`\\b${action}\\b`));
    expect(template).toContain('iam:CreateServiceLinkedRole');
    expect(template).toMatch(/Principal:\s+AWS: !Ref ReconcilerRoleArn/);
  });
});
