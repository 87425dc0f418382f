/**
 * Shards end to end: with RECONCILER_SHARD_MAX_CELLS low (3) the demo build (8 cells in 4 accounts, 333333333333 with 3 of them:
 * two copies and the eu-west-1 launch permission's `shared` cell) is split by account into 4 shards; the reconcile function queues shards 2 to 4 on the recheck queue and works on
 * shard 1, the recheck function runs the others from the queue, as serverless.yml wires them. Checked as a
 * user would: the report events on the bus, the `status` matrix, and the queues.
 */
import { StartImagePipelineExecutionCommand } from '@aws-sdk/client-imagebuilder';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { main } from '../../src/cli/index.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { buildBundles } from '../helpers/build.ts';
import { clients, demoScenario, type sandbox, useSandbox } from '../helpers/sandbox.ts';

const OWNER = '111111111111';
const SPEED = 3000;
/** The demo build's matrix: region/account of every cell. */
const MATRIX = [
  'ap-northeast-1/222222222222',
  'ap-southeast-2/333333333333',
  'eu-west-1/222222222222',
  'eu-west-1/333333333333',
  'eu-west-1/444444444444',
  'us-east-1/111111111111',
  'us-east-1/222222222222',
  'us-east-1/333333333333',
];

/** The demo wired with RECONCILER_SHARD_MAX_CELLS, started by `start` (a useSandbox's). */
async function wired(start: typeof sandbox, shardMaxCells: number): Promise<Sandbox> {
  const scenario = demoScenario();
  scenario.deploymentParams = { ...scenario.deploymentParams, shardMaxCells: String(shardMaxCells) };
  return start({ scenario, wire: true, clockSpeed: SPEED });
}

async function build(box: Sandbox, token: string): Promise<string> {
  const out = await clients(box.url, OWNER).imagebuilder.send(
    new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:golden-windows'), clientToken: token }),
  );
  const arn = out.imageBuildVersionArn ?? '';
  const final = await box.finalReport(arn, 60_000);
  await box.idle();
  if (final === undefined) throw new Error(`no final report for ${arn}`);
  return arn;
}

const keys = (report: ReconcileReport) => report.cells.map((c) => `${c.region}/${c.accountId}`);

/** The last report of each shard of a run, by index. */
function lastByShard(reports: ReconcileReport[], runId: string): Map<number, ReconcileReport> {
  const last = new Map<number, ReconcileReport>();
  for (const r of reports) if (r.shard?.runId === runId) last.set(r.shard.index, r);
  return last;
}

describe('shards end to end (RECONCILER_SHARD_MAX_CELLS=3)', () => {
  let box: Sandbox | undefined;
  beforeAll(() => buildBundles(), 120_000);
  const sandboxes = useSandbox('each');

  it('splits the build into 4 shards by account, each reconciled by its own invocation, and converges', async () => {
    box = await wired(sandboxes.start, 3);
    const arn = await build(box, 'shards');
    const reports = box.reports(arn);

    // every report is a shard of one run, i/4, and no invocation took more than 3 cells
    const runIds = new Set(reports.map((r) => r.shard?.runId));
    expect(runIds.size).toBe(1);
    const [runId = ''] = [...runIds];
    for (const r of reports) {
      expect(r.shard).toMatchObject({ runId, count: 4, totalCells: 8 });
      expect(r.cells.length).toBeLessThanOrEqual(3);
    }
    // the first run is shard 1's; shards 2 to 4 came from the recheck queue
    expect(reports.find((r) => r.runId === runId)).toMatchObject({ trigger: 'eventbridge', shard: { index: 1 }, attempt: 1 });
    expect(
      reports
        .filter((r) => r.attempt === 1)
        .map((r) => [r.shard?.index, r.trigger])
        .sort(),
    ).toStrictEqual([
      [1, 'eventbridge'],
      [2, 'sqs'],
      [3, 'sqs'],
      [4, 'sqs'],
    ]);
    // an account is never split (333333333333's three cells stay together): one account a shard here
    const last = lastByShard(reports, runId);
    expect([...last.keys()].sort()).toStrictEqual([1, 2, 3, 4]);
    expect([1, 2, 3, 4].map((i) => [...new Set(last.get(i)?.cells.map((c) => c.accountId))].sort())).toStrictEqual([
      ['111111111111'],
      ['222222222222'],
      ['333333333333'],
      ['444444444444'],
    ]);
    // each shard rechecked its own cells only, and ended converged; together they are the whole matrix, once each
    for (const r of reports.filter((x) => x.attempt > 1))
      expect(
        keys(r).every((k) =>
          keys(reports.find((x) => x.attempt === 1 && x.shard?.index === r.shard?.index) as ReconcileReport).includes(k),
        ),
      ).toBe(true);
    for (const [index, r] of last)
      expect([index, r.outcome, r.next.recheck]).toStrictEqual([index, expect.stringMatching(/^(converged|repaired)$/), false]);
    const union = [...last.values()].flatMap(keys);
    expect(union.sort()).toStrictEqual(MATRIX);

    // status reads the whole matrix in one process, whatever the shard setting
    let out = '';
    const code = await main(['status', arn, '--json', '--endpoint-url', box.url, '--region', 'us-east-1'], {
      out: (text) => (out += text),
      err: () => undefined,
      isTTY: false,
    });
    expect(code).toBe(0);
    const status = JSON.parse(out) as ReconcileReport;
    expect(keys(status).sort()).toStrictEqual(MATRIX);
    expect(status.shard).toBeUndefined();
  }, 120_000);

  it('a shard that cannot be queued is not lost: the run says so and fails, and the retry queues every shard', async () => {
    box = await wired(sandboxes.start, 3);
    // the reconcile function's first shard send is refused, as SQS answers an IAM denial
    box.faults.set({
      errors: [
        {
          service: 'sqs',
          operation: 'SendMessage',
          code: 'AccessDenied',
          message: 'User is not authorized to perform: sqs:SendMessage (denied by the test)',
          status: 403,
          count: 1,
        },
      ],
    });
    const arn = await build(box, 'shard-denied');
    const reports = box.reports(arn);

    // the first run: shard 1's report names the shard that was not queued, and asks for a retry
    const first = reports[0];
    expect(first?.shard).toMatchObject({ index: 1, count: 4 });
    expect(first?.next).toMatchObject({
      recheck: false,
      requeueFailed: true,
      reason: expect.stringMatching(/^could not queue shard\(s\) [234]\/4 of this build: .*denied by the test/),
    });
    expect(first?.notes.some((n) => n.startsWith('could not queue shard(s)'))).toBe(true);
    const failed = box.wiring?.invocations.find((i) => i.function === 'reconcile' && i.error !== undefined);
    expect(failed?.error).toMatch(/RecheckNotQueued|could not queue shard/);

    // Lambda's retry of the event ran the build again under a new run id: all 4 shards, converged, the whole matrix
    const retryRun = reports.find((r) => r.trigger === 'eventbridge' && r.shard?.runId !== first?.shard?.runId)?.shard?.runId ?? '';
    expect(retryRun).not.toBe('');
    const last = lastByShard(reports, retryRun);
    expect([...last.keys()].sort()).toStrictEqual([1, 2, 3, 4]);
    expect([...last.values()].flatMap(keys).sort()).toStrictEqual(MATRIX);
    for (const r of last.values()) expect(r.outcome).toMatch(/^(converged|repaired)$/);
    // nothing was left on the failure queues
    const failedInvocations = box.wiring?.queues.get('FailedInvocationsQueue');
    expect(failedInvocations?.messages.length).toBe(0);
  }, 120_000);
});
