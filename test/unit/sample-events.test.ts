/** Every sample event in events/ is one its trigger sends and its function accepts, as the README says. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readDeployment } from '../../sandbox/harness/wiring/deployment.ts';
import { matchesPattern } from '../../sandbox/harness/wiring/routing.ts';
import { parseCleanupRequest } from '../../src/lib/cleanup/request.ts';
import { toConfigChange } from '../../src/lib/cleanup/trigger.ts';
import { toReconcileInput, toRecheckRequest } from '../../src/lib/reconcile/input.ts';
import { getTestEvent } from '../helpers/events.ts';

const deployment = readDeployment('serverless.yml');
/** A function's rule patterns, with serverless.yml's params filled in as at deployment. */
const patternsOf = (fn: string) =>
  (deployment.functions.find((f) => f.name === fn)?.eventPatterns ?? []).map(
    (p) =>
      JSON.parse(
        JSON.stringify(p)
          .replace(/\$\{param:(\w+)\}/g, (_, name: string) => deployment.params[name] ?? '')
          // !Sub in a pattern, as CloudFormation resolves it in the aws partition
          .replace(/\{"Fn::Sub":"([^"]*)"\}/g, (_, text: string) => JSON.stringify(text.replace(/\$\{AWS::Partition\}/g, 'aws'))),
      ) as typeof p,
  );

describe('sample events (events/)', () => {
  it('covers every trigger of serverless.yml', () => {
    const files = readdirSync('events', { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.json'))
      .sort();
    expect(files).toStrictEqual([
      join('eventbridge', 'distribution-updated.json'),
      join('eventbridge', 'image-available.json'),
      join('eventbridge', 'image-failed.json'),
      join('eventbridge', 'workflow-step-waiting.json'),
      join('manual', 'cleanup.json'),
      join('manual', 'reconcile.json'),
      join('schedule', 'sweep.json'),
      join('sqs', 'recheck-shard.json'),
      join('sqs', 'recheck.json'),
    ]);
  });

  it("the Workflow Step Waiting event of a gate step matches the gate's rule; another step's does not", () => {
    const event = getTestEvent('eventbridge/workflow-step-waiting') as { detail: Record<string, unknown> };
    expect(patternsOf('gate').some((p) => matchesPattern(p, event))).toBe(true);
    const other = { ...event, detail: { ...event.detail, 'workflow-step-name': 'ManualApproval' } };
    expect(patternsOf('gate').some((p) => matchesPattern(p, other))).toBe(false);
    expect(patternsOf('reconcile').some((p) => matchesPattern(p, event))).toBe(false);
  });

  it("the CloudTrail UpdateDistributionConfiguration event matches cleanupOnChange's rule and names the configuration", () => {
    const event = getTestEvent('eventbridge/distribution-updated');
    expect(patternsOf('cleanupOnChange').some((p) => matchesPattern(p, event))).toBe(true);
    expect(patternsOf('reconcile').some((p) => matchesPattern(p, event))).toBe(false);
    expect(toConfigChange(event)).toBe('arn:aws:imagebuilder:us-east-1:111122223333:distribution-configuration/golden-windows');
  });

  it('the manual cleanup payload is accepted with its guards', () => {
    expect(parseCleanupRequest(getTestEvent('manual/cleanup'), 'manual')).toMatchObject({
      mode: 'plan',
      trigger: 'manual',
      overrides: { minAgeDays: 14, strategy: 'deprecate', keepTagKeys: ['team:hold'] },
      only: { regions: ['ap-northeast-1'] },
      maxDeletions: 5,
    });
  });

  it('an Image State Change event with a detail field AWS added later, or replayed from an archive, is still reconciled', () => {
    const event = getTestEvent('eventbridge/image-available') as { detail: Record<string, unknown> };
    const newer = { ...event, 'replay-name': 'after-outage', detail: { ...event.detail, 'image-id': 'ami-0123456789abcdef0' } };
    expect(toReconcileInput(newer, { partition: 'aws' })).toMatchObject({
      kind: 'run',
      status: 'AVAILABLE',
      request: { trigger: 'eventbridge' },
    });
    // the documented state keeps its shape: garbage there is still refused
    const garbled = { ...event, detail: { state: { status: 'AVAILABLE', extra: 1 } } };
    expect(() => toReconcileInput(garbled, { partition: 'aws' })).toThrow(/detail\.state/);
  });

  it("the Image State Change events match reconcile's rule; the manual and SQS ones are accepted", () => {
    for (const name of ['image-available', 'image-failed']) {
      const event = getTestEvent(`eventbridge/${name}`);
      expect(
        patternsOf('reconcile').some((p) => matchesPattern(p, event)),
        name,
      ).toBe(true);
      expect(toReconcileInput(event, { partition: 'aws' })).toMatchObject({ kind: 'run', request: { trigger: 'eventbridge' } });
    }
    expect(toReconcileInput(getTestEvent('manual/reconcile'), { partition: 'aws' })).toMatchObject({
      kind: 'run',
      request: { mode: 'plan' },
    });
    const sqs = getTestEvent<{ Records: { body: string }[] }>('sqs/recheck');
    const body = sqs.Records[0]?.body ?? '';
    // a clock an hour after the sample's first-seen time (the sample's own date is only an example)
    const firstSeen = Date.parse((JSON.parse(body) as { firstSeenAt: string }).firstSeenAt);
    expect(
      toRecheckRequest(body, { partition: 'aws', maxAttempts: 12, now: () => new Date(firstSeen + 3600_000) }).attempt,
    ).toBeGreaterThan(1);
  });

  it('the shard message is what a split run queues for shard 2 of 3, and recheck accepts it', () => {
    const sqs = getTestEvent<{ Records: { body: string }[] }>('sqs/recheck-shard');
    const body = sqs.Records[0]?.body ?? '';
    const firstSeen = Date.parse((JSON.parse(body) as { firstSeenAt: string }).firstSeenAt);
    expect(toRecheckRequest(body, { partition: 'aws', maxAttempts: 12, now: () => new Date(firstSeen + 60_000) })).toMatchObject({
      attempt: 1,
      shard: { index: 2, count: 3, accounts: ['444455556666', '777788889999'] },
    });
  });

  it('the scheduled event is what the sweep schedule sends (and matches no rule pattern)', () => {
    const event = getTestEvent('schedule/sweep');
    expect(event).toMatchObject({ 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} });
    expect(deployment.functions.find((f) => f.name === 'sweep')?.schedules).toHaveLength(1);
    for (const fn of deployment.functions) expect(fn.eventPatterns.some((p) => matchesPattern(p, event))).toBe(false);
  });
});
