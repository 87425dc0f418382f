/**
 * Alerts on change, on the sandbox wiring: a build that fails is announced once (not again at each sweep),
 * and once more when it recovers; the deployment's OutcomeNotificationRule (serverless.yml) sends the
 * announcements, and nothing else of the reconciler's, to the alarm topic, each with a digest fit for chat.
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import { isObj, type Obj } from '../../sandbox/harness/wiring/deployment.ts';
import { matchesPattern } from '../../sandbox/harness/wiring/routing.ts';
import { OUTCOME_CHANGE_DETAIL_TYPE, type OutcomeChange } from '../../src/lib/reconcile/alert.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { buildBundles } from '../helpers/build.ts';
import { schemaErrors, validateOutcomeChange } from '../helpers/schema.ts';
import { DEMO_OWNER, demoScenario, finished, startBuild, useSandbox } from '../helpers/sandbox.ts';

const BROKEN = '333333333333';
const ROLE = 'ImageBuilderReconcilerTarget';

describe('a build is announced when its outcome changes, not at every report', () => {
  let box: Sandbox;
  const sandboxes = useSandbox();
  beforeAll(() => buildBundles(), 120_000);

  const changes = () => box.state.events.filter((e) => e.detailType === OUTCOME_CHANGE_DETAIL_TYPE).map((e) => e.detail as OutcomeChange);
  /** The sweep, as its schedule runs it. */
  const sweep = async (): Promise<ReconcileReport | undefined> => {
    const before = box.state.events.length;
    await box.wiring?.invokeFunction('sweep', {
      version: '0',
      id: randomUUID(),
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: DEMO_OWNER,
      time: box.clock.iso(),
      region: 'us-east-1',
      resources: [],
      detail: {},
    });
    await box.idle();
    return box.state.events
      .slice(before)
      .filter((e) => e.detailType === 'Image Builder Reconcile Report')
      .map((e) => e.detail as ReconcileReport)
      .at(-1);
  };

  it('failed once, quiet at the sweeps that find it still failed, recovered once; only those reach the topic', async () => {
    box = await sandboxes.start({ scenario: demoScenario(), wire: true, clockSpeed: 3000 });
    const roles = box.state.rolesOf(BROKEN);
    const role = roles.get(ROLE);
    roles.delete(ROLE);
    const arn = await startBuild(box, 'alerts');
    const final = await finished(box, arn);
    expect(final.outcome).toBe('failed');
    expect(box.reports(arn).length).toBeGreaterThan(1);

    const [failed, ...others] = changes();
    expect(others).toStrictEqual([]);
    expect(failed).toMatchObject({ kind: 'outcome-change', change: 'failed', previous: null, outcome: 'failed', image: { arn } });
    const broken = final.cells.filter((c) => c.accountId === BROKEN);
    expect(failed?.notOk.map((c) => `${c.region}/${c.accountId}`).sort()).toStrictEqual(
      broken.map((c) => `${c.region}/${c.accountId}`).sort(),
    );
    const digest = (failed?.digest ?? '').split('\n');
    expect(digest[0]).toBe(`FAILED: golden-windows 1.0.0/1: ${broken.length} of ${final.counts.cells.total} cells not ok`);
    for (const cell of broken) expect(digest).toContain(`- ${cell.region}/${BROKEN} ${cell.status}: ${cell.reasons[0]}`);
    expect(digest.at(-1)).toBe(`Full report: imagebuilder-reconciler report ${arn} --html report.html (or status ${arn})`);

    // the six-hourly sweep finds it failed again, twice: its reports say so, no one is told again
    for (let i = 0; i < 2; i += 1) expect((await sweep())?.outcome).toBe('failed');
    expect(changes()).toHaveLength(1);

    // the role is back: the next sweep repairs the build, which is announced as recovered, once
    if (role !== undefined) roles.set(ROLE, role);
    let recovered: ReconcileReport | undefined;
    for (let i = 0; i < 3 && recovered?.outcome !== 'converged'; i += 1) {
      recovered = await sweep();
      box.clock.advance(10 * 60_000);
      await finished(box, arn);
    }
    const last = box.reports(arn).at(-1);
    expect(['converged', 'repaired']).toContain(last?.outcome);
    expect(changes().map((c) => c.change)).toStrictEqual(['failed', 'recovered']);
    for (const change of changes()) expect(schemaErrors(validateOutcomeChange, change)).toStrictEqual([]);
    expect(changes()[1]?.digest).toBe(
      `RECOVERED: golden-windows 1.0.0/1: all ${last?.counts.cells.total} cells ok again\nFull report: imagebuilder-reconciler report ${arn} --html report.html (or status ${arn})`,
    );
    await sweep();
    expect(changes()).toHaveLength(2);

    // what the deployment sends to the alarm topic: the two announcements, none of the many reports
    const resources = box.wiring?.deployment.resources ?? {};
    const toTopic = Object.values(resources).filter(
      (r): r is Obj =>
        isObj(r) &&
        r.Type === 'AWS::Events::Rule' &&
        isObj(r.Properties) &&
        JSON.stringify(r.Properties.Targets).includes('AlarmTopic') &&
        isObj(r.Properties.EventPattern),
    );
    const sent = box.state.events.filter((e) =>
      toTopic.some((rule) =>
        matchesPattern((rule.Properties as Obj).EventPattern as Obj, { source: e.source, 'detail-type': e.detailType, detail: e.detail }),
      ),
    );
    expect(sent.map((e) => (e.detail as OutcomeChange).change)).toStrictEqual(['failed', 'recovered']);
    expect(box.reports(arn).length).toBeGreaterThan(5);
  });
});
