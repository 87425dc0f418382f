/**
 * infra/region-forwarder.yaml (deployed with StackSets to every other region) and the CloudTrail rule:
 * the template forwards what serverless.yml's rules match, failed calls never trigger cleanup, and the
 * sandbox delivers a forwarded region's events to the reconciler.
 */
import { readFileSync } from 'node:fs';
import { CreateDistributionConfigurationCommand, UpdateDistributionConfigurationCommand } from '@aws-sdk/client-imagebuilder';
import { type ScalarTag, parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { readDeployment } from '../../sandbox/harness/wiring/deployment.ts';
import { matchesPattern, readForwarderPatterns } from '../../sandbox/harness/wiring/routing.ts';
import { toConfigChange } from '../../src/lib/cleanup/trigger.ts';
import { InputError } from '../../src/lib/core/errors.ts';
import { buildBundles } from '../helpers/build.ts';
import { clients, smallScenario, useSandbox } from '../helpers/sandbox.ts';

type Obj = Record<string, unknown>;
const tags: ScalarTag[] = ['Ref', 'Sub', 'GetAtt'].map((name) => ({
  tag: `!${name}`,
  resolve: (value: string) => ({ [name === 'Ref' ? 'Ref' : `Fn::${name}`]: value }),
}));
const template = parse(readFileSync('infra/region-forwarder.yaml', 'utf8'), { customTags: tags }) as {
  Parameters: Obj;
  Resources: Record<string, { Type: string; Properties: Obj }>;
};
const deployment = readDeployment('serverless.yml');
const patternOf = (fn: string) => deployment.functions.find((f) => f.name === fn)?.eventPatterns[0];

const OWNER = '111111111111';
const CONFIG = 'arn:aws:imagebuilder:eu-west-1:111111111111:distribution-configuration/golden';

/** A CloudTrail record of UpdateDistributionConfiguration as EventBridge delivers it; failed calls carry errorCode. */
function cloudTrailEvent(errorCode?: string): Obj {
  return {
    source: 'aws.imagebuilder',
    'detail-type': 'AWS API Call via CloudTrail',
    account: OWNER,
    region: 'eu-west-1',
    resources: [],
    detail: {
      eventSource: 'imagebuilder.amazonaws.com',
      eventName: 'UpdateDistributionConfiguration',
      requestParameters: { distributionConfigurationArn: CONFIG },
      responseElements: errorCode === undefined ? { distributionConfigurationArn: CONFIG } : null,
      ...(errorCode === undefined ? {} : { errorCode, errorMessage: 'The value supplied for parameter …' }),
    },
  };
}

describe('infra/region-forwarder.yaml', () => {
  const rules = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Events::Rule');

  it("has three rules, each targeting the reconciler's bus in the reconciler's region through a role", () => {
    expect(rules).toHaveLength(3);
    for (const rule of rules) {
      expect(rule.Properties.Targets).toStrictEqual([
        {
          Id: 'reconciler-bus',
          Arn: { 'Fn::Sub': 'arn:${AWS::Partition}:events:${ReconcilerRegion}:${AWS::AccountId}:event-bus/${ReconcilerEventBusName}' },
          RoleArn: { 'Fn::GetAtt': 'ForwardRole.Arn' },
        },
      ]);
    }
    const role = template.Resources.ForwardRole;
    expect(JSON.stringify(role?.Properties)).toContain('events:PutEvents');
    expect(JSON.stringify(role?.Properties)).toContain(
      'arn:${AWS::Partition}:events:${ReconcilerRegion}:${AWS::AccountId}:event-bus/${ReconcilerEventBusName}',
    );
    expect(Object.keys(template.Parameters).sort()).toStrictEqual(['ImageArnPrefix', 'ReconcilerEventBusName', 'ReconcilerRegion']);
  });

  it("forwards exactly what serverless.yml's reconcile, cleanupOnChange and gate rules match (parameters at their defaults)", () => {
    const forwarded = readForwarderPatterns('infra/region-forwarder.yaml');
    // as CloudFormation deploys serverless.yml's rules in the aws partition: params filled in, !Sub resolved
    const resolveParams = (p: unknown) =>
      JSON.parse(
        JSON.stringify(p)
          .replace(/\$\{param:(\w+)\}/g, (_, name: string) => deployment.params[name] ?? '')
          .replace(/\{"Fn::Sub":"([^"]*)"\}/g, (_, text: string) => JSON.stringify(text.replace(/\$\{AWS::Partition\}/g, 'aws'))),
      ) as unknown;
    expect(forwarded).toStrictEqual([
      resolveParams(patternOf('reconcile')),
      resolveParams(patternOf('cleanupOnChange')),
      resolveParams(patternOf('gate')),
    ]);
  });

  it('matches a successful UpdateDistributionConfiguration and not a failed one, in both places', () => {
    const [, configChange] = readForwarderPatterns('infra/region-forwarder.yaml');
    for (const pattern of [configChange, patternOf('cleanupOnChange')]) {
      expect(pattern).toBeDefined();
      expect(matchesPattern(pattern as never, cloudTrailEvent())).toBe(true);
      expect(matchesPattern(pattern as never, cloudTrailEvent('InvalidParameterValueException'))).toBe(false);
    }
  });

  it('the cleanup function refuses a failed call it is handed anyway', () => {
    expect(toConfigChange(cloudTrailEvent())).toBe(CONFIG);
    expect(() => toConfigChange(cloudTrailEvent('ValidationException'))).toThrow(InputError);
    expect(() => toConfigChange(cloudTrailEvent('ValidationException'))).toThrow(/the call failed \("ValidationException"\)/);
  });
});

describe('regions on the sandbox, wired by serverless.yml and the forwarder', () => {
  let box: Sandbox | undefined;
  const sandboxes = useSandbox('each');

  const distributions = (region: string) => [{ region, amiDistributionConfiguration: { name: 'golden {{imagebuilder:buildDate}}' } }];
  const cleanupRuns = (b: Sandbox) => (b.wiring?.invocations ?? []).filter((i) => i.function === 'cleanupOnChange');

  it('runs cleanup for a successful update in a forwarded region; not for a failed one, nor for a region without the forwarder', async () => {
    buildBundles();
    box = await sandboxes.start({
      wire: true,
      forwardedRegions: ['eu-west-1'],
      scenario: { ...smallScenario(), regions: ['us-east-1', 'eu-west-1', 'ap-southeast-2'] },
    });
    const eu = clients(box.url, OWNER, 'eu-west-1').imagebuilder;
    const created = await eu.send(
      new CreateDistributionConfigurationCommand({ name: 'golden', distributions: distributions('eu-west-1'), clientToken: 'c' }),
    );
    const arn = created.distributionConfigurationArn ?? '';
    expect(arn).toBe(CONFIG);

    // a failed call: CloudTrail records it (with errorCode), no rule passes it on
    await expect(
      eu.send(
        new UpdateDistributionConfigurationCommand({
          distributionConfigurationArn: arn,
          distributions: [{ region: 'eu-west-1' }],
          clientToken: 'bad',
        }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidParameterValueException' });
    // a region where the forwarder is not deployed
    const ap = clients(box.url, OWNER, 'ap-southeast-2').imagebuilder;
    const other = await ap.send(
      new CreateDistributionConfigurationCommand({ name: 'golden', distributions: distributions('ap-southeast-2'), clientToken: 'c' }),
    );
    await ap.send(
      new UpdateDistributionConfigurationCommand({
        distributionConfigurationArn: other.distributionConfigurationArn,
        distributions: distributions('ap-southeast-2'),
        clientToken: 'good',
      }),
    );
    await box.idle();
    const updates = box.state.events.filter(
      (e) => e.detailType === 'AWS API Call via CloudTrail' && (e.detail as Obj).eventName === 'UpdateDistributionConfiguration',
    );
    expect(updates.map((e) => [e.region, (e.detail as Obj).errorCode ?? 'ok'])).toStrictEqual([
      ['eu-west-1', 'InvalidParameterValueException'],
      ['ap-southeast-2', 'ok'],
    ]);
    expect(cleanupRuns(box)).toStrictEqual([]);

    await eu.send(
      new UpdateDistributionConfigurationCommand({
        distributionConfigurationArn: arn,
        distributions: distributions('eu-west-1'),
        clientToken: 'good',
      }),
    );
    await box.idle();
    const runs = cleanupRuns(box);
    expect(runs).toHaveLength(1);
    // the event keeps its own region, and the run reads the configuration there
    expect(runs[0]?.event).toMatchObject({ region: 'eu-west-1', detail: { requestParameters: { distributionConfigurationArn: CONFIG } } });
    expect(runs[0]?.error).toBeUndefined();
    const report = box.state.events.find((e) => e.detailType === 'Image Builder Cleanup Report');
    expect(report?.detail).toMatchObject({ trigger: 'eventbridge', configuration: { arn: CONFIG, region: 'eu-west-1' } });
  });
});
