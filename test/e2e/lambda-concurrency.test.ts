/**
 * The sandbox runs the functions as Lambda does: each concurrent invocation in its own execution environment
 * (its own instance of the bundle, so nothing module-level is shared), warm environments reused, a function's
 * reserved concurrency respected, throttled asynchronous events retried, and SQS batches run in parallel up
 * to the function's concurrency (AWS Lambda Developer Guide, "Understanding Lambda function scaling").
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { sendMessage } from '../../sandbox/emulator/services/sqs.ts';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { buildBundles } from '../helpers/build.ts';
import { demoScenario, startBuild, useSandbox } from '../helpers/sandbox.ts';
import { waitFor } from '../helpers/wait.ts';

const SPEED = 3000;
const NO_SWEEP = { RECONCILER_SWEEP_MODE: 'off' };

/** A demo sandbox, its first build reconciled to its end. */
async function built(start: ReturnType<typeof useSandbox>['start'], reservedConcurrency?: Record<string, number>) {
  const box = await start({
    scenario: demoScenario(),
    wire: true,
    clockSpeed: SPEED,
    reconcilerEnvironment: NO_SWEEP,
    reservedConcurrency,
  });
  const arn = await startBuild(box, 'concurrency');
  const final = await box.finalReport(arn, 60_000);
  if (final === undefined) throw new Error(`no final report for ${arn}`);
  await box.idle();
  return { box, arn };
}

const assumeRoles = (box: Sandbox, from: number) =>
  box.server.requests.slice(from).filter((r) => r.service === 'sts' && r.operation === 'AssumeRole').length;

describe('Lambda concurrency in the sandbox', () => {
  beforeAll(() => buildBundles(), 120_000);
  const sandboxes = useSandbox('all');

  it('runs concurrent invocations each in its own environment, with its own module state, and reuses warm ones', async () => {
    const { box, arn } = await built(sandboxes.start);
    const wiring = box.wiring;
    if (wiring === undefined) throw new Error('not wired');
    // latency on every call, so that the three invocations overlap
    box.faults.set({ latency: [{ ms: 20 }] });
    const plan = { imageBuildVersionArn: arn, mode: 'plan' };

    const before = box.server.requests.length;
    const together = await Promise.all([1, 2, 3].map(() => wiring.invokeFunction('reconcile', plan)));
    expect(together.map((i) => i.error)).toStrictEqual([undefined, undefined, undefined]);
    const environments = new Set(together.map((i) => i.environment));
    expect(environments.size).toBe(3);
    expect(wiring.peakConcurrency.get('reconcile')).toBeGreaterThanOrEqual(3);
    // each new environment assumed the target roles itself: the credential cache is module state, not shared
    // (the demo's target accounts 222222222222, 333333333333, 444444444444; one environment was warm)
    const concurrentAssumes = assumeRoles(box, before);
    expect(concurrentAssumes).toBeGreaterThanOrEqual(2 * 3);

    // one after another: warm environments serve them, with what they cached
    const after = box.server.requests.length;
    const sequential = [];
    for (let i = 0; i < 3; i += 1) sequential.push(await wiring.invokeFunction('reconcile', plan));
    for (const invocation of sequential) expect(environments.has(invocation.environment), invocation.environment).toBe(true);
    expect(assumeRoles(box, after)).toBe(0);
    expect(wiring.throttles).toStrictEqual([]);
  }, 120_000);

  it('respects a reserved concurrency: a throttled event is retried, a synchronous invoke is refused', async () => {
    const { box } = await built(sandboxes.start, { reconcile: 1, recheck: 2 });
    const wiring = box.wiring;
    if (wiring === undefined) throw new Error('not wired');
    box.faults.set({ latency: [{ ms: 20 }] });
    const reconcileBefore = wiring.invocations.filter((i) => i.function === 'reconcile').length;
    const available = box.state.events.find(
      (e) =>
        e.detailType === 'EC2 Image Builder Image State Change' &&
        (e.detail as { state?: { status?: string } }).state?.status === 'AVAILABLE',
    );
    if (available === undefined) throw new Error('no AVAILABLE event');
    // two deliveries (two events: their ids differ, so idempotency lets both run) while only one may run
    wiring.deliver({ ...available, id: 'concurrency-1' });
    wiring.deliver({ ...available, id: 'concurrency-2' });
    const refused = await wiring.invokeFunction('reconcile', { imageBuildVersionArn: available.resources[0], mode: 'plan' });
    expect(refused.error).toBe('TooManyRequestsException: Rate Exceeded.');
    await waitFor('both events to be reconciled', async () => {
      await box.idle();
      return wiring.invocations.filter((i) => i.function === 'reconcile').length - reconcileBefore >= 2 && !wiring.busy();
    });
    const ran = wiring.invocations.filter((i) => i.function === 'reconcile').slice(reconcileBefore);
    expect(ran.map((i) => [i.trigger, i.error])).toStrictEqual([
      ['eventbridge', undefined],
      ['eventbridge', undefined],
    ]);
    expect(wiring.throttles.filter((t) => t.function === 'reconcile').map((t) => t.trigger)).toContain('eventbridge');
    expect(wiring.throttles.filter((t) => t.function === 'reconcile').map((t) => t.trigger)).toContain('manual');
    expect(wiring.peakConcurrency.get('reconcile')).toBe(1);
  }, 120_000);

  it('runs SQS batches in parallel, up to the reserved concurrency', async () => {
    const { box: sandbox } = await built(sandboxes.start, { recheck: 2 });
    const wiring = sandbox.wiring;
    const queue = wiring?.queues.get('RecheckQueue');
    const deadLetters = wiring?.queues.get('RecheckDeadLetterQueue');
    if (wiring === undefined || queue === undefined || deadLetters === undefined) throw new Error('no recheck queue');
    sandbox.faults.set({ latency: [{ ms: 30 }] });
    const before = wiring.invocations.filter((i) => i.function === 'recheck').length;
    const deadBefore = deadLetters.messages.length;
    // malformed rechecks: each invocation moves its message to the dead-letter queue (one SQS call)
    for (let i = 0; i < 6; i += 1) sendMessage(sandbox.state, queue, JSON.stringify({ malformed: i }), 0, sandbox.clock.now());
    await waitFor('the six messages to be handled', async () => {
      await sandbox.idle();
      return queue.messages.length === 0 && !wiring.busy();
    });
    const ran = wiring.invocations.filter((i) => i.function === 'recheck').slice(before);
    expect(ran.length).toBe(6);
    expect(ran.every((i) => i.error === undefined)).toBe(true);
    expect(deadLetters.messages.length - deadBefore).toBe(6);
    expect(wiring.peakConcurrency.get('recheck')).toBe(2);
    expect(new Set(ran.map((i) => i.environment)).size).toBe(2);
  }, 120_000);
});
