/**
 * No duplicate work, end to end on the sandbox: EventBridge and SQS deliver at least once, so the sandbox's
 * `duplicateDeliveries` fault delivers every event and every recheck message twice, one after the other or
 * both at once. The reconciler's idempotency records (Powertools Idempotency, the DynamoDB table of
 * serverless.yml) must keep the second delivery from doing anything: the same AWS calls as with single
 * delivery (DynamoDB's own aside), one report per run, one recheck chain. A run that fails can be retried,
 * and a store that cannot be used fails the delivery with its reason instead of dropping it.
 *
 * The counting runs use a frozen sandbox clock that the test advances step by step, each step only once
 * everything due has run, so that both deployments see the same simulated time at every call and their
 * calls can be compared one for one.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { DuplicateDeliveries } from '../../sandbox/emulator/faults.ts';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { Invocation } from '../../sandbox/harness/wiring/index.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { buildBundles } from '../helpers/build.ts';
import { demoScenario, sandbox, startBuild, useSandbox } from '../helpers/sandbox.ts';
import { waitFor } from '../helpers/wait.ts';

/** Simulated time per step of the frozen clock. */
const STEP_MS = 15_000;
/** No sweep tick: its calls would not be the build's. */
const NO_SWEEP = { RECONCILER_SWEEP_MODE: 'off' };

/** Messages of the deployment's queues that are visible now (the poller takes them within its interval). */
function visibleMessages(box: Sandbox): number {
  const now = box.clock.now();
  return [...(box.wiring?.queues.values() ?? [])].reduce(
    (n, q) => n + q.messages.filter((m) => m.visibleAt <= now && m.receiveCount < (q.redrive?.maxReceiveCount ?? Infinity)).length,
    0,
  );
}

/** Wait until nothing runs and nothing visible waits for the poller. */
async function quiet(box: Sandbox): Promise<void> {
  await waitFor('the deployment to be quiet', async () => {
    await box.idle();
    return visibleMessages(box) === 0;
  });
  await box.idle();
}

/** Drive the frozen clock until the build's reconcile has ended and its queues are empty. */
async function driveToEnd(box: Sandbox, arn: string): Promise<ReconcileReport> {
  const recheckQueue = box.wiring?.queues.get('RecheckQueue');
  for (let step = 0; step < 2000; step += 1) {
    await quiet(box);
    const last = box.reports(arn).at(-1);
    if (last !== undefined && !last.next.recheck && (recheckQueue?.messages.length ?? 0) === 0) return last;
    box.clock.advance(STEP_MS);
  }
  throw new Error(`the reconcile of ${arn} did not end`);
}

interface Run {
  /** The AWS calls the functions (and the roles they assume) made, but DynamoDB's: `service:Operation account/region` → count. */
  calls: Record<string, number>;
  reports: ReconcileReport[];
  invocations: Invocation[];
  dynamodb: string[];
}

async function buildOnce(duplicates: DuplicateDeliveries): Promise<Run> {
  const box = await sandbox({ scenario: demoScenario(), wire: true, clockSpeed: 0, reconcilerEnvironment: NO_SWEEP });
  try {
    // each copy runs in its own execution environment, a cold one slower to its first call than the warm one:
    // latency on every call keeps a run going long enough for its concurrent copy to meet it, as a run of
    // several seconds does on AWS (the calls made are the same with or without it)
    box.faults.merge({ duplicateDeliveries: duplicates, ...(duplicates === 'concurrent' ? { latency: [{ ms: 25 }] } : {}) });
    const before = box.server.requests.length;
    const arn = await startBuild(box, `duplicates-${duplicates}`);
    const final = await driveToEnd(box, arn);
    expect(final.outcome, duplicates).toBe('converged');
    const requests = box.server.requests.slice(before).filter((r) => r.principal !== undefined);
    const calls: Record<string, number> = {};
    for (const r of requests.filter((q) => q.service !== 'dynamodb')) {
      const key = `${r.service}:${r.operation} ${r.account}/${r.region}${r.errorCode === undefined ? '' : ` ${r.errorCode}`}`;
      calls[key] = (calls[key] ?? 0) + 1;
    }
    return {
      calls,
      reports: box.reports(arn),
      invocations: [...(box.wiring?.invocations ?? [])],
      dynamodb: requests
        .filter((r) => r.service === 'dynamodb')
        .map((r) => `${r.operation}${r.errorCode === undefined ? '' : ` ${r.errorCode}`}`),
    };
  } finally {
    await box.stop();
  }
}

describe('duplicate deliveries do no duplicate work', () => {
  let single: Run;

  beforeAll(async () => {
    await buildBundles();
    single = await buildOnce('off');
  }, 180_000);

  it('the single-delivery baseline rechecks (so that duplicated messages are tested too) and writes its records', () => {
    expect(single.reports.length).toBeGreaterThan(1);
    expect(single.reports.map((r) => r.trigger)).toStrictEqual(['eventbridge', ...single.reports.slice(1).map(() => 'sqs')]);
    expect(single.dynamodb.filter((op) => op === 'PutItem')).toHaveLength(single.reports.length);
    expect(single.invocations.some((i) => i.duplicate)).toBe(false);
  });

  it.each(['sequential', 'concurrent'] as const)(
    'with every event and message delivered twice (%s): the same AWS calls as with single delivery, one report per run',
    async (mode) => {
      const twice = await buildOnce(mode);

      // the fault delivered everything twice
      for (const fn of ['reconcile', 'recheck']) {
        const firsts = twice.invocations.filter((i) => i.function === fn && !i.duplicate && i.attempt === 1);
        expect(twice.invocations.filter((i) => i.function === fn && i.duplicate).length, fn).toBeGreaterThanOrEqual(firsts.length);
      }
      expect(twice.calls).toStrictEqual(single.calls);
      expect(twice.reports.map((r) => [r.trigger, r.attempt, r.outcome])).toStrictEqual(
        single.reports.map((r) => [r.trigger, r.attempt, r.outcome]),
      );
      // one recheck chain: every report carries the first run's first-seen time
      expect(new Set(twice.reports.map((r) => r.firstSeenAt)).size).toBe(1);

      const duplicateAnswers = twice.invocations
        .filter((i) => i.function === 'reconcile' && i.duplicate)
        .map((i) => (i.result as { status?: string } | undefined)?.status);
      expect(duplicateAnswers.every((s) => s === 'duplicate')).toBe(true);
      if (mode === 'concurrent') {
        // a delivery of a recheck whose other copy is running now is failed back to the queue (a batch item
        // failure; the whole batch when it is the only record), and its later delivery finds the stored result.
        // The two copies run in their own execution environments, at the same time: either may be the one that
        // finds the other running
        const failed = (i: Invocation) =>
          i.error !== undefined || ((i.result as { batchItemFailures?: unknown[] } | undefined)?.batchItemFailures ?? []).length > 0;
        const copies = twice.invocations.filter((i) => i.function === 'recheck');
        expect(new Set(copies.map((i) => i.environment)).size).toBeGreaterThan(1);
        expect(copies.filter(failed).length).toBeGreaterThan(0);
        expect(copies.filter(failed).every((i) => i.error === undefined || i.error.includes('FullBatchFailureError'))).toBe(true);
        expect(copies.filter((i) => !failed(i)).length).toBeGreaterThan(0);
        expect(twice.dynamodb).toContain('PutItem ConditionalCheckFailedException');
      }
    },
    180_000,
  );
});

describe('a failed run, and a store that cannot be used', () => {
  let box: Sandbox | undefined;

  beforeAll(() => buildBundles(), 120_000);
  const sandboxes = useSandbox('each');

  it('a reconcile that failed is retried by Lambda and runs: its record was deleted, not left to block the retry', async () => {
    box = await sandboxes.start({ scenario: demoScenario(), wire: true, clockSpeed: 3000, reconcilerEnvironment: NO_SWEEP });
    // the first run cannot queue its recheck: it fails (the pending reconcile must not be lost) and Lambda retries it
    box.faults.merge({
      errors: [
        { service: 'sqs', operation: 'SendMessage', code: 'AccessDenied', message: 'injected: the queue refused', status: 403, count: 1 },
      ],
    });
    const arn = await startBuild(box, 'retried');
    const final = await box.finalReport(arn, 60_000);
    await box.idle();
    expect(final?.outcome).toBe('converged');

    const runs = (box.wiring?.invocations ?? []).filter(
      (i) => i.function === 'reconcile' && JSON.stringify(i.event).includes('"AVAILABLE"'),
    );
    expect(runs.map((i) => [i.attempt, i.error === undefined ? 'ran' : 'error'])).toStrictEqual([
      [1, 'error'],
      [2, 'ran'],
    ]);
    expect(['pending', 'converged']).toContain((runs[1]?.result as { status: string } | undefined)?.status);
    expect(runs[0]?.error).toMatch(/RecheckNotQueued|reconcile is pending and/);
    expect(
      box.server.requests.filter((r) => r.service === 'dynamodb' && r.operation === 'DeleteItem').map((r) => r.errorCode),
    ).toStrictEqual([undefined]);
    // both attempts reported; the retry's chain went on to the end
    expect(box.reports(arn).filter((r) => r.trigger === 'eventbridge')).toHaveLength(2);
  });

  it('a store the role may not use (IAM Deny) fails each delivery with the table, the denied action and what to check, and does no work', async () => {
    box = await sandboxes.start({ scenario: demoScenario(), wire: true, clockSpeed: 3000, reconcilerEnvironment: NO_SWEEP });
    const role = box.wiring?.roles.get('ReconcileRole');
    if (role === undefined) throw new Error('no ReconcileRole');
    const table = box.wiring?.tables.get('IdempotencyTable');
    role.inlinePolicies.set(
      'deny-idempotency',
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Sid: 'DenyStore', Effect: 'Deny', Action: 'dynamodb:*', Resource: table?.arn }],
      }),
    );
    const before = box.server.requests.length;
    const arn = await startBuild(box, 'denied');

    const failedQueue = box.wiring?.queues.get('FailedInvocationsQueue');
    const record = await waitFor(
      'the failed reconcile in FailedInvocationsQueue',
      () => failedQueue?.messages.find((m) => m.body.includes(arn)),
      { timeoutMs: 60_000 },
    );
    await box.idle();
    const body = JSON.parse(record.body) as {
      requestContext: { condition: string; approximateInvokeCount: number };
      responsePayload: { errorMessage: string };
    };
    expect(body.requestContext).toMatchObject({ condition: 'RetriesExhausted', approximateInvokeCount: 3 });
    expect(body.responsePayload.errorMessage).toContain(
      `IdempotencyStoreError: idempotency store ${table?.name} (RECONCILER_IDEMPOTENCY_TABLE) failed`,
    );
    expect(body.responsePayload.errorMessage).toMatch(
      /AccessDeniedException: .*is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:111111111111:table\/.* with an explicit deny/,
    );
    expect(body.responsePayload.errorMessage).toContain("check the function role's dynamodb grants on the table");
    // nothing was done and nothing reported: the build is left for the retry (then the dead-letter queue and its alarm)
    expect(box.reports(arn)).toStrictEqual([]);
    const byReconcile = box.server.requests.slice(before).filter((r) => r.principal?.endsWith('-reconcile') === true);
    expect([...new Set(byReconcile.map((r) => `${r.service}:${r.operation} ${r.errorCode ?? ''}`))]).toStrictEqual([
      'dynamodb:PutItem AccessDeniedException',
    ]);
  });
});
