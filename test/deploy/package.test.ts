import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import pkg from '../../package.json' with { type: 'json' };

type Resource = { Type: string; Properties: Record<string, unknown> };
type Statement = { Sid?: string; Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };

const REPAIR_FILES = ['src/lib/reconcile/observe.ts', 'src/lib/reconcile/apply.ts'];
const CLEANUP_FILES = [
  'src/lib/cleanup/cleanup.ts',
  'src/lib/cleanup/inventory.ts',
  'src/lib/cleanup/observe.ts',
  'src/lib/cleanup/apply.ts',
];
const DELETES = [
  'ec2:DeregisterImage',
  'ec2:DeleteSnapshot',
  'ec2:DisableImage',
  'ec2:EnableImageDeprecation',
  'ec2:DeleteLaunchTemplate',
  'ssm:DeleteParameter',
];

/** The EC2 and SSM calls the code in these files makes (in any account), read from its imports. */
function callsIn(files: string[]): string[] {
  const actions = new Set<string>();
  for (const file of files) {
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
    execFileSync('npx', ['osls', 'package', '--package', dir], {
      stdio: 'pipe',
      env: { ...process.env, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' },
    });
    resources = JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8')).Resources;
    state = JSON.parse(readFileSync(join(dir, 'serverless-state.json'), 'utf8'));
  }, 120_000);

  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

  it('triggers cleanup on the CloudTrail UpdateDistributionConfiguration event of a successful call (no errorCode)', () => {
    const patterns = ofType('AWS::Events::Rule').map(([, r]) => r.Properties.EventPattern);
    expect(patterns).toContainEqual({
      source: ['aws.imagebuilder'],
      'detail-type': ['AWS API Call via CloudTrail'],
      detail: {
        eventSource: ['imagebuilder.amazonaws.com'],
        eventName: ['UpdateDistributionConfiguration'],
        errorCode: [{ exists: false }],
      },
    });
  });

  it('triggers reconcile on Image State Change AVAILABLE or FAILED', () => {
    const rule = ofType('AWS::Events::Rule').find(([, r]) =>
      JSON.stringify(r.Properties.EventPattern ?? {}).includes('Image State Change'),
    );
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
    // one message per invocation: a message may be a shard of up to RECONCILER_SHARD_MAX_CELLS cells
    expect(mapping?.[1].Properties.BatchSize).toBe(1);
    // Lambda's advice for SQS sources: a visibility timeout of at least six times the function timeout
    const recheck = ofType('AWS::Lambda::Function').find(([id]) => id === 'RecheckLambdaFunction')?.[1];
    expect(Number(resources.RecheckQueue?.Properties.VisibilityTimeout)).toBeGreaterThanOrEqual(6 * Number(recheck?.Properties.Timeout));
  });

  it('sends failed asynchronous invocations to a dead-letter queue', () => {
    const configs = ofType('AWS::Lambda::EventInvokeConfig');
    expect(configs.length).toBeGreaterThanOrEqual(3);
    for (const [name, config] of configs)
      expect(JSON.stringify(config.Properties.DestinationConfig), name).toContain('FailedInvocationsQueue');
  });

  it('runs every function on nodejs22.x or newer, each from its own small bundle', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions.length).toBe(6);
    for (const [, fn] of functions) expect(fn.Properties.Runtime).toMatch(/^nodejs(2[2-9]|[3-9]\d)\.x$/);
    for (const name of ['reconcile', 'recheck', 'cleanup', 'cleanupOnChange', 'sweep', 'gate'])
      expect(statSync(join(dir, `${name}.zip`)).size).toBeLessThan(1024 * 1024);
  });

  it('keeps each bundle under 1 MB: only the SDK shapes its commands reach, only the zod it uses', () => {
    for (const name of ['reconcile', 'recheck', 'cleanup', 'cleanup-on-change', 'sweep', 'gate']) {
      const file = `dist/lambda/${name}/index.mjs`;
      expect(statSync(file).size, file).toBeLessThanOrEqual(1_000_000);
      const code = readFileSync(file, 'utf8');
      // an EC2 operation no function calls, and zod's JSON Schema conversion, which no function uses
      expect(code, file).not.toContain('WithdrawByoipCidrRequest');
      expect(code, file).not.toContain('fromJSONSchema');
      // a shape the code does use is still there
      expect(code, file).toContain('DescribeImagesRequest');
    }
    // an SDK client only where the function's code calls it (the client factory builds the others by class)
    const has = (name: string, operation: string) => readFileSync(`dist/lambda/${name}/index.mjs`, 'utf8').includes(operation);
    expect(
      ['reconcile', 'cleanup'].map((name) => [
        name,
        has(name, 'ListAccountsForParent'),
        has(name, 'HeadObject'),
        has(name, 'DescribeAutoScalingGroups'),
      ]),
    ).toStrictEqual([
      ['reconcile', true, true, false],
      ['cleanup', false, false, true],
    ]);
  });

  it('keeps the sandbox out of the CLI bundle: the demo is its own bundle, loaded only by demo and sandbox', () => {
    const cli = readFileSync('dist/cli/index.mjs', 'utf8');
    const demo = readFileSync('dist/demo/index.mjs', 'utf8');
    // the emulator's control paths and its entry point, the scenario loader's error
    for (const marker of ['/_sandbox/', 'startSandbox', 'ScenarioError']) {
      expect(demo, marker).toContain(marker);
      expect(cli, marker).not.toContain(marker);
    }
    expect(cli).toContain('../demo/index.mjs');
    // it was 533 KiB with the sandbox in it; 416 KiB without it, with the report page, revoke and the gate
    expect(statSync('dist/cli/index.mjs').size).toBeLessThan(480 * 1024);
    expect(pkg.files).toEqual(expect.arrayContaining(['dist/cli', 'dist/demo', 'dist/lambda']));
  });

  it('npm start runs the demo from the bundles to a converged build', async () => {
    // the start script builds (beforeAll did), then runs the CLI bundle: run that part as written
    const [build, run] = pkg.scripts.start.split(' && ');
    expect(build).toBe('node scripts/build.mjs --quiet');
    const [command = '', ...args] = (run ?? '').split(' ');
    const { stdout } = await promisify(execFile)(command, args, { encoding: 'utf8', timeout: 90_000 });
    expect(stdout).toContain('imagebuilder-reconciler demo');
    expect(stdout).toMatch(/^CONVERGED: \d+ cells/m);
    expect(stdout).toMatch(/^converged: \d+ reconcile runs, \d+ AWS calls answered by the sandbox/m);
    // where to see it as a page while it runs
    expect(stdout).toMatch(/^Report page, live while the demo runs: http:\/\/127\.0\.0\.1:\d+\/_sandbox\/report$/m);
  }, 120_000);

  /** A role's statements, each branch of a conditional one (`Fn::If` on a param) included: what it may grant. */
  const statementsOf = (logicalId: string): Statement[] =>
    (
      (resources[logicalId]?.Properties.Policies ?? []) as {
        PolicyDocument: { Statement: (Statement | { 'Fn::If': [string, unknown, unknown] })[] };
      }[]
    )
      .flatMap((p) => p.PolicyDocument.Statement)
      .flatMap((s) =>
        'Fn::If' in s ? s['Fn::If'].slice(1).filter((b): b is Statement => typeof b === 'object' && b !== null && 'Effect' in b) : [s],
      );
  const actionsOf = (statements: Statement[]) => statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action]));

  it('gives each kind of function its own role: reconcile and recheck can delete nothing, cleanup can', () => {
    const roleOf = (fn: string) =>
      JSON.stringify(
        ofType('AWS::Lambda::Function').find(([id]) => id.toLowerCase() === `${fn.toLowerCase()}lambdafunction`)?.[1].Properties.Role,
      );
    expect(roleOf('reconcile')).toContain('ReconcileRole');
    expect(roleOf('recheck')).toContain('ReconcileRole');
    expect(roleOf('cleanup')).toContain('CleanupRole');
    expect(roleOf('cleanupOnChange')).toContain('CleanupRole');
    expect(resources.IamRoleLambdaExecution).toBeUndefined();
    const reconcileStatements = statementsOf('ReconcileRole');
    // nothing that deletes; disable and deprecate only for revoke (RevokeImages), only on Image Builder's AMIs
    expect(actionsOf(reconcileStatements.filter((st) => st.Sid !== 'RevokeImages')).filter((a) => DELETES.includes(a))).toStrictEqual([]);
    const revoke = reconcileStatements.find((st) => st.Sid === 'RevokeImages');
    expect(actionsOf(revoke === undefined ? [] : [revoke]).filter((a) => DELETES.includes(a))).toStrictEqual([
      'ec2:EnableImageDeprecation',
      'ec2:DisableImage',
    ]);
    expect(revoke?.Condition).toStrictEqual({ StringEquals: { 'aws:ResourceTag/CreatedBy': 'EC2 Image Builder' } });
    expect(actionsOf(statementsOf('CleanupRole'))).toEqual(expect.arrayContaining(['ec2:DeregisterImage', 'ec2:DeleteSnapshot']));
  });

  it('keeps idempotency records in an encrypted on-demand table with TTL, which only the reconcile role may read', () => {
    expect(resources.IdempotencyTable?.Type).toBe('AWS::DynamoDB::Table');
    expect(resources.IdempotencyTable?.Properties).toMatchObject({
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      TimeToLiveSpecification: { AttributeName: 'expiration', Enabled: true },
      SSESpecification: { SSEEnabled: true },
    });
    const onTable = statementsOf('ReconcileRole').filter((st) => actionsOf([st]).some((a) => a.startsWith('dynamodb:')));
    expect(onTable).toHaveLength(1);
    expect(actionsOf(onTable).sort()).toStrictEqual(['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    expect(onTable[0]?.Resource).toStrictEqual({ 'Fn::GetAtt': ['IdempotencyTable', 'Arn'] });
    // the cleanup role writes only its apply lease (no GetItem: it never reads an idempotency record)
    const lease = statementsOf('CleanupRole').filter((st) => actionsOf([st]).some((a) => a.startsWith('dynamodb:')));
    expect(lease.map((st) => st.Sid)).toStrictEqual(['CleanupApplyLease']);
    expect(actionsOf(lease).sort()).toStrictEqual(['dynamodb:DeleteItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem']);
    expect(lease[0]?.Resource).toStrictEqual({ 'Fn::GetAtt': ['IdempotencyTable', 'Arn'] });
    for (const fn of ['ReconcileLambdaFunction', 'RecheckLambdaFunction', 'SweepLambdaFunction']) {
      const env = ((resources[fn]?.Properties.Environment ?? {}) as { Variables: Record<string, unknown> }).Variables;
      expect(env, fn).toMatchObject({
        RECONCILER_IDEMPOTENCY_TABLE: { Ref: 'IdempotencyTable' },
        RECONCILER_IDEMPOTENCY_EXPIRY_MINUTES: '360',
      });
    }
  });

  describe('operations', () => {
    const TOPIC = { 'Fn::If': ['UseExistingAlarmTopic', { Ref: 'AlarmTopicArn' }, { Ref: 'AlarmTopic' }] };
    const alarms = () =>
      ofType('AWS::CloudWatch::Alarm').map(([id, r]) => ({
        id,
        ...(r.Properties as {
          Namespace: string;
          MetricName?: string;
          Dimensions?: { Name: string; Value: unknown }[];
          AlarmActions: unknown[];
          Threshold: number;
        }),
      }));
    const FUNCTIONS = [
      'ReconcileLambdaFunction',
      'RecheckLambdaFunction',
      'CleanupLambdaFunction',
      'CleanupOnChangeLambdaFunction',
      'SweepLambdaFunction',
    ];

    it('alarms at the first message visible in either dead-letter queue', () => {
      for (const queue of ['RecheckDeadLetterQueue', 'FailedInvocationsQueue']) {
        const alarm = alarms().find(
          (a) =>
            a.MetricName === 'ApproximateNumberOfMessagesVisible' &&
            JSON.stringify(a.Dimensions) === JSON.stringify([{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queue, 'QueueName'] } }]),
        );
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

    it('alarms on the CellsFailed and CleanupFailed metrics the functions publish; a failed build is announced by its rule, not by CellsFailed', () => {
      for (const metric of ['CellsFailed', 'CleanupFailed']) {
        expect(alarms().find((a) => a.MetricName === metric)).toMatchObject({
          Namespace: 'ImageBuilderReconciler',
          Dimensions: [{ Name: 'service', Value: 'imagebuilder-reconciler' }],
          Threshold: 1,
        });
      }
      expect(alarms().find((a) => a.MetricName === 'CleanupFailed')?.AlarmActions).toStrictEqual([TOPIC]);
      // every failed report (the six-hourly sweep's too) would notify again: OutcomeNotificationRule does, once per change
      expect(alarms().find((a) => a.MetricName === 'CellsFailed')?.AlarmActions).toBeUndefined();
    });

    it('creates the alarm topic (with an e-mail subscription when asked) unless an existing topic ARN is given', () => {
      expect(resources.AlarmTopic).toMatchObject({ Type: 'AWS::SNS::Topic', Condition: 'CreateAlarmTopic' });
      expect(resources.AlarmTopicEmail).toMatchObject({
        Type: 'AWS::SNS::Subscription',
        Condition: 'SubscribeAlarmEmail',
        Properties: { Protocol: 'email', TopicArn: { Ref: 'AlarmTopic' } },
      });
      expect(JSON.stringify(resources.AlarmTopicPolicy?.Properties)).toContain('events.amazonaws.com');
    });

    it('announces a build when its outcome changes, and cleanups with failures, to the alarm topic', () => {
      expect(resources.OutcomeNotificationRule?.Properties.EventPattern).toStrictEqual({
        source: ['imagebuilder-reconciler'],
        'detail-type': ['Image Builder Build Outcome Changed'],
      });
      expect(resources.OutcomeNotificationRule?.Properties.Targets).toMatchObject([
        { Arn: TOPIC, InputTransformer: { InputPathsMap: { digest: '$.detail.digest' }, InputTemplate: '"<digest>"' } },
      ]);
      expect(resources.ReportNotificationRule?.Properties.EventPattern).toStrictEqual({
        source: ['imagebuilder-reconciler'],
        'detail-type': ['Image Builder Cleanup Report'],
        detail: { counts: { failed: [{ numeric: ['>', 0] }] } },
      });
      // no reconcile report reaches the topic as it is: only the announcements of a change do
      for (const [, rule] of ofType('AWS::Events::Rule'))
        if (JSON.stringify(rule.Properties.Targets).includes('AlarmTopic'))
          expect(JSON.stringify(rule.Properties.EventPattern)).not.toContain('Image Builder Reconcile Report');
      expect(JSON.stringify(resources.AlarmTopicPolicy?.Properties)).toContain('OutcomeNotificationRule');
    });

    it('has a dashboard of the reconciler metrics, the functions and the queues', () => {
      const body = JSON.stringify(resources.ReconcilerDashboard?.Properties.DashboardBody);
      for (const metric of [
        'CellsOk',
        'CellsRepaired',
        'CellsPending',
        'CellsFailed',
        'ActionsApplied',
        'ActionsFailed',
        'AwsCalls',
        'ReconcileDuration',
        'RejectedInputs',
        'CleanupCandidates',
        'CleanupDeregistered',
        'CleanupFailed',
        'CleanupGiBFreed',
        'Errors',
        'Throttles',
        'ApproximateNumberOfMessagesVisible',
      ]) {
        expect(body, metric).toContain(`\\"${metric}\\"`);
      }
      for (const fn of FUNCTIONS) expect(body).toContain(`\${${fn}}`);
    });

    it('tags every resource: stack tags (propagated by CloudFormation) and each function', () => {
      expect(state.service.provider.stackTags).toStrictEqual({ application: 'imagebuilder-reconciler' });
      for (const [id, fn] of ofType('AWS::Lambda::Function'))
        expect(fn.Properties.Tags, id).toContainEqual({ Key: 'application', Value: 'imagebuilder-reconciler' });
    });

    it('sweeps on the sweepRate schedule, in the sweep mode, over the pipelines named (all by default)', () => {
      const rule = ofType('AWS::Events::Rule').find(([, r]) => r.Properties.ScheduleExpression !== undefined);
      expect(rule?.[1].Properties.ScheduleExpression).toBe('rate(6 hours)');
      expect(JSON.stringify(rule?.[1].Properties.Targets)).toContain('SweepLambdaFunction');
      const env = ((resources.SweepLambdaFunction?.Properties.Environment ?? {}) as { Variables: Record<string, unknown> }).Variables;
      expect(env).toMatchObject({ RECONCILER_SWEEP_MODE: 'apply', RECONCILER_SWEEP_PIPELINES: '' });
    });

    it('traces with X-Ray only when the tracing param says Active (PassThrough by default)', () => {
      for (const [id, fn] of ofType('AWS::Lambda::Function')) {
        expect(fn.Properties.TracingConfig, id).toStrictEqual({ Mode: 'PassThrough' });
        expect((fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables.RECONCILER_TRACING).toBe('PassThrough');
      }
    });
  });

  it('has least-privilege roles: no wildcard action, AssumeRole only on the matching target role name', () => {
    for (const [id, roleName, files] of [
      ['ReconcileRole', 'ImageBuilderReconcilerTarget', REPAIR_FILES],
      ['CleanupRole', 'ImageBuilderReconcilerCleanup', CLEANUP_FILES],
    ] as const) {
      const statements = statementsOf(id);
      const actions = actionsOf(statements);
      expect(actions.filter((a) => a.includes('*'))).toStrictEqual([]);
      const assume = statements.filter((s) => [s.Action].flat().includes('sts:AssumeRole'));
      expect(assume).toHaveLength(1);
      expect(JSON.stringify(assume[0]?.Resource)).toMatch(new RegExp(`:role/${roleName}"`));
      for (const action of callsIn(files)) expect(actions, `${id} ${action}`).toContain(action);
    }
  });

  it('the target-account role template grants every call the reconciler makes there, and trusts only its roles', () => {
    const template = readFileSync('infra/target-account-role.yaml', 'utf8');
    const [repair = '', cleanup = ''] = template.split('ReconcilerCleanupRole:');
    for (const action of callsIn(REPAIR_FILES)) expect(repair, action).toMatch(new RegExp(`\\b${action}\\b`));
    for (const action of callsIn(CLEANUP_FILES)) expect(cleanup, action).toMatch(new RegExp(`\\b${action}\\b`));
    // nothing that deletes; revoke's disable and deprecate only in RevokeImages, only on our builds' copies
    const [beforeRevoke = '', revokeAndAfter = ''] = repair.split('- Sid: RevokeImages');
    const [revokeStatement = '', afterRevoke = ''] = revokeAndAfter.split(/\n\s+- Sid: /);
    for (const action of DELETES) expect(beforeRevoke + afterRevoke, action).not.toContain(action);
    expect(revokeStatement).toMatch(/StringLike:\s+aws:ResourceTag\/imagebuilder-reconciler:source-image:/);
    for (const action of ['ec2:DeregisterImage', 'ec2:DeleteSnapshot']) expect(revokeStatement).not.toContain(action);
    expect(repair).toContain('iam:CreateServiceLinkedRole');
    // the reconciler account's root, narrowed by aws:PrincipalArn to the function's role (and the operators named)
    expect(repair).toMatch(
      /aws:PrincipalArn: !If\s+- HasOperators\s+- !Split \[',', !Join \[',', \[!Ref ReconcilerRoleArn, !Ref OperatorPrincipalArns\]\]\]\s+- \[!Ref ReconcilerRoleArn\]/,
    );
    expect(cleanup).toMatch(
      /aws:PrincipalArn: !If\s+- HasOperators\s+- !Split \[',', !Join \[',', \[!Ref CleanupRoleArn, !Ref OperatorPrincipalArns\]\]\]\s+- \[!Ref CleanupRoleArn\]/,
    );
    expect(template).toMatch(/AllowCleanup:\s+Type: String\s+Default: 'false'/);
  });
});
