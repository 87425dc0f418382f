/**
 * The deployment's mode is a ceiling: a plan-mode deployment, sent every apply-shaped payload and message a
 * caller with lambda:InvokeFunction or sqs:SendMessage could send, makes no write call to AWS. Each refused
 * raise is one line in the report.
 */
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { buildBundles } from '../helpers/build.ts';
import { clients, demoScenario, finished, sandbox, startBuild } from '../helpers/sandbox.ts';
import { waitFor } from '../helpers/wait.ts';

/** Calls that change AWS resources (not the reconciler's own queue, bus, idempotency table or role sessions). */
const WRITE =
  /^(Create|Modify|Put|Enable|Disable|Delete|Deregister|Update|Register|Copy|Start|Retry|Reset|Deprecate|Run|Associate|Disassociate|Export)/;
const PLUMBING = new Set(['sqs', 'events', 'dynamodb', 'sts']);

describe('a plan-mode deployment', () => {
  let box: Sandbox | undefined;

  beforeAll(() => buildBundles(), 120_000);
  afterEach(async () => {
    await box?.stop();
    box = undefined;
  });

  it('writes nothing when a payload or message asks for apply, and says it refused', async () => {
    const scenario = demoScenario();
    scenario.deploymentParams = { ...scenario.deploymentParams, mode: 'plan' };
    box = await sandbox({ scenario, wire: true, clockSpeed: 3000 });
    const arn = await startBuild(box, 'ceiling');
    const first = await finished(box, arn);
    expect(first.mode).toBe('plan');
    expect(first.counts.actions.planned).toBeGreaterThan(0);
    const wiring = box.wiring;
    if (wiring === undefined) throw new Error('not wired');
    const before = box.server.requests.length;

    // a manual payload asking for apply
    const manual = await wiring.invokeFunction('reconcile', { imageBuildVersionArn: arn, mode: 'apply' });
    // a recheck message and a shard message asking for apply, as anyone with sqs:SendMessage could send them
    const queue = wiring.queues.get('RecheckQueue');
    if (queue === undefined) throw new Error('serverless.yml has no RecheckQueue');
    const sqs = clients(box.url, box.home.account, box.home.region).sqs;
    const firstSeenAt = first.firstSeenAt;
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queue.url,
        MessageBody: JSON.stringify({ imageBuildVersionArn: arn, attempt: 2, firstSeenAt, mode: 'apply', fastLaunchRetries: {} }),
      }),
    );
    const shard = { runId: 'forged-run', index: 2, count: 2, accounts: ['333333333333'] };
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queue.url,
        MessageBody: JSON.stringify({ imageBuildVersionArn: arn, attempt: 1, firstSeenAt, mode: 'apply', fastLaunchRetries: {}, shard }),
      }),
    );
    await waitFor('both messages handled', () =>
      wiring.invocations.filter((i) => i.function.endsWith('recheck') && i.result !== undefined).length >= 2 ? true : undefined,
    );
    await box.idle();

    const writes = box.server.requests
      .slice(before)
      .filter((r) => r.principal !== undefined && !PLUMBING.has(r.service) && WRITE.test(r.operation));
    expect(writes.map((w) => `${w.service}:${w.operation} ${w.account}/${w.region}`)).toStrictEqual([]);

    const later: ReconcileReport[] = box.reports(arn).slice(1);
    expect(later.length).toBeGreaterThanOrEqual(3);
    for (const report of later) {
      expect(report.mode).toBe('plan');
      expect(report.notes).toContain(
        'the request asked for mode apply, refused: this deployment runs in plan mode (RECONCILER_MODE=plan); planned only',
      );
    }
    expect(manual.result).toMatchObject({ mode: 'plan' });
  });
});
