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
  let state: { service: { provider: { stackTags?: Record<string, string> } } };
  const dir = mkdtempSync(join(tmpdir(), 'ibr-package-'));

  beforeAll(() => {
    execFileSync('node', ['scripts/build.mjs', '--quiet'], { stdio: 'pipe' });
    execFileSync('npx', ['osls', 'package', '--package', dir], { stdio: 'pipe', env: { ...process.env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' } });
    resources = JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8')).Resources;
    state = JSON.parse(readFileSync(join(dir, 'serverless-state.json'), 'utf8'));
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
    const rule = ofType('AWS::Events::Rule').find(([, r]) => JSON.stringify(r.Properties.EventPattern ?? {}).includes('Image State Change'));
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
    const configs = ofType('AWS::Lambda::EventInvokeConfig');
    expect(configs.length).toBeGreaterThanOrEqual(3);
    for (const [name, config] of configs) expect(JSON.stringify(config.Properties.DestinationConfig), name).toContain('FailedInvocationsQueue');
  });

  it('runs every function on nodejs22.x or newer, each from its own small bundle', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions.length).toBe(5);
    for (const [, fn] of functions) expect(fn.Properties.Runtime).toMatch(/^nodejs(2[2-9]|[3-9]\d)\.x$/);
    for (const name of ['reconcile', 'recheck', 'cleanup', 'cleanupOnChange', 'sweep']) expect(statSync(join(dir, `${name}.zip`)).size).toBeLessThan(1024 * 1024);
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

  describe('operations', () => {
    const TOPIC = { 'Fn::If': ['UseExistingAlarmTopic', '', { Ref: 'AlarmTopic' }] };
    const alarms = () => ofType('AWS::CloudWatch::Alarm').map(([id, r]) => ({ id, ...(r.Properties as { Namespace: string; MetricName?: string; Dimensions?: { Name: string; Value: unknown }[]; AlarmActions: unknown[]; Threshold: number }) }));
    const FUNCTIONS = ['ReconcileLambdaFunction', 'RecheckLambdaFunction', 'CleanupLambdaFunction', 'CleanupOnChangeLambdaFunction', 'SweepLambdaFunction'];

    it('alarms at the first message visible in either dead-letter queue', () => {
      for (const queue of ['RecheckDeadLetterQueue', 'FailedInvocationsQueue']) {
        const alarm = alarms().find((a) => a.MetricName === 'ApproximateNumberOfMessagesVisible' && JSON.stringify(a.Dimensions) === JSON.stringify([{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queue, 'QueueName'] } }]));
        expect(alarm, queue).toMatchObject({ Namespace: 'AWS/SQS', Threshold: 1, AlarmActions: [TOPIC] });
      }
    });

    it('alarms on errors and throttles of every function (serverless-slic-watch-plugin)', () => {
      for (const fn of FUNCTIONS) {
        for (const metric of ['Errors', 'Throttles']) {
          const alarm = alarms().find((a) => a.id === `slicWatchLambda${metric}Alarm${fn}`);
          expect(alarm, `${metric} ${fn}`).toBeDefined();
          expect(alarm?.AlarmActions).toStrictEqual([TOPIC]);
        }
      }
    });

    it('alarms on the CellsFailed and CleanupFailed metrics the functions publish', () => {
      for (const metric of ['CellsFailed', 'CleanupFailed']) {
        expect(alarms().find((a) => a.MetricName === metric)).toMatchObject({
          Namespace: 'ImageBuilderReconciler',
          Dimensions: [{ Name: 'service', Value: 'imagebuilder-reconciler' }],
          Threshold: 1,
          AlarmActions: [TOPIC],
        });
      }
    });

    it('creates the alarm topic (with an e-mail subscription when asked) unless an existing topic ARN is given', () => {
      expect(resources.AlarmTopic).toMatchObject({ Type: 'AWS::SNS::Topic', Condition: 'CreateAlarmTopic' });
      expect(resources.AlarmTopicEmail).toMatchObject({ Type: 'AWS::SNS::Subscription', Condition: 'SubscribeAlarmEmail', Properties: { Protocol: 'email', TopicArn: { Ref: 'AlarmTopic' } } });
      expect(JSON.stringify(resources.AlarmTopicPolicy?.Properties)).toContain('events.amazonaws.com');
    });

    it('turns failed and given-up reconcile reports and failed cleanups into notifications', () => {
      const rule = resources.ReportNotificationRule;
      expect(rule?.Properties.EventPattern).toStrictEqual({
        source: ['imagebuilder-reconciler'],
        'detail-type': ['Image Builder Reconcile Report', 'Image Builder Cleanup Report'],
        detail: { $or: [{ outcome: ['failed'] }, { next: { reason: [{ prefix: 'still pending' }] } }, { counts: { failed: [{ numeric: ['>', 0] }] } }] },
      });
      expect(rule?.Properties.Targets).toMatchObject([{ Arn: TOPIC, InputTransformer: { InputPathsMap: { image: '$.detail.image.arn', reason: '$.detail.next.reason' } } }]);
    });

    it('has a dashboard of the reconciler metrics, the functions and the queues', () => {
      const body = JSON.stringify(resources.ReconcilerDashboard?.Properties.DashboardBody);
      for (const metric of ['CellsOk', 'CellsRepaired', 'CellsPending', 'CellsFailed', 'ActionsApplied', 'ActionsFailed', 'AwsCalls', 'ReconcileDuration', 'RejectedInputs', 'CleanupCandidates', 'CleanupDeregistered', 'CleanupFailed', 'CleanupGiBFreed', 'Errors', 'Throttles', 'ApproximateNumberOfMessagesVisible']) {
        expect(body, metric).toContain(`\\"${metric}\\"`);
      }
      for (const fn of FUNCTIONS) expect(body).toContain('${' + fn + '}');
    });

    it('tags every resource: stack tags (propagated by CloudFormation) and each function', () => {
      expect(state.service.provider.stackTags).toStrictEqual({ application: 'imagebuilder-reconciler' });
      for (const [id, fn] of ofType('AWS::Lambda::Function')) expect(fn.Properties.Tags, id).toContainEqual({ Key: 'application', Value: 'imagebuilder-reconciler' });
    });

    it('sweeps on the sweepRate schedule, in the sweep mode, over the pipelines named (all by default)', () => {
      const rule = ofType('AWS::Events::Rule').find(([, r]) => r.Properties.ScheduleExpression !== undefined);
      expect(rule?.[1].Properties.ScheduleExpression).toBe('rate(6 hours)');
      expect(JSON.stringify(rule?.[1].Properties.Targets)).toContain('SweepLambdaFunction');
      const env = (resources.SweepLambdaFunction?.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(env).toMatchObject({ RECONCILER_SWEEP_MODE: 'apply', RECONCILER_SWEEP_PIPELINES: '' });
    });

    it('traces with X-Ray only when the tracing param says Active (PassThrough by default)', () => {
      for (const [id, fn] of ofType('AWS::Lambda::Function')) {
        expect(fn.Properties.TracingConfig, id).toStrictEqual({ Mode: 'PassThrough' });
        expect((fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables.RECONCILER_TRACING).toBe('PassThrough');
      }
    });
  });

  it('the target-account role template grants every call the reconciler makes there, and trusts only its role', () => {
    const template = readFileSync('infra/target-account-role.yaml', 'utf8');
    for (const action of callsInTargetAccounts()) expect(template, action).toMatch(new RegExp(`\\b${action}\\b`));
    expect(template).toContain('iam:CreateServiceLinkedRole');
    expect(template).toMatch(/Principal:\s+AWS: !Ref ReconcilerRoleArn/);
  });
});
