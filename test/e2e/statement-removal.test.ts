/**
 * The second permission proof: remove each statement of each role in turn, and the run that needs it fails,
 * naming a denied action of that statement in its report.
 *
 * One sandbox (the demo scenario, every role of serverless.yml and infra/target-account-role.yaml enforced)
 * and a handful of probes, each a run a user would make: a build reconciled to the end, drift repaired in
 * the owner's and the target accounts (a license configuration of a region distributed to the owner only
 * among it; copies encrypted with each account's KMS key in two regions), the scheduled sweep, a manual cleanup (deregister and disable),
 * and a revoke (with --disable), unrevoke and revoke again by the reconcile function's manual payload. A run's failures are what
 * its user reads: every report it published, and its functions' errors.
 * A baseline run of every probe, with every statement in place, records from the sandbox's request log
 * which statement allowed each call; each statement is then removed for the first probe that used it
 * alone, and put back. A statement no probe uses must be listed in NOT_EXERCISED with the reason, and the
 * list cannot go stale: each entry must name a statement that exists and that no probe uses.
 */
import { randomUUID } from 'node:crypto';
import {
  CreateWorkflowCommand,
  GetDistributionConfigurationCommand,
  GetImageCommand,
  GetImagePipelineCommand,
  StartImagePipelineExecutionCommand,
  UpdateDistributionConfigurationCommand,
  UpdateImagePipelineCommand,
} from '@aws-sdk/client-imagebuilder';
import { CreateLicenseConfigurationCommand, LicenseManagerClient } from '@aws-sdk/client-license-manager';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Authorization } from '../../sandbox/emulator/iam/authorize.ts';
import { type Statement, statementsOf } from '../../sandbox/emulator/iam/policy.ts';
import type { Sandbox } from '../../sandbox/harness/index.ts';
import type { Role } from '../../sandbox/emulator/state.ts';
import type { CleanupReport } from '../../src/lib/cleanup/cleanup.ts';
import type { ReconcileReport } from '../../src/lib/reconcile/report.ts';
import { buildBundles } from '../helpers/build.ts';
import { clients, demoScenario, useSandbox } from '../helpers/sandbox.ts';
import { waitFor } from '../helpers/wait.ts';
import { gateDocument } from '../../src/lib/gate/workflow.ts';

const OWNER = '111111111111';
const A = '222222222222';
const TARGETS = [A, '333333333333', '444444444444'];
const REMOVED = 'ap-northeast-1';
/** A region the configuration distributes to the owner's account only, with a license configuration of its own. */
const LICENSED = 'eu-central-1';
/** Builds whose copies in the removed region the cleanup probes retire, one build per probe that retires. */
const CANDIDATE_BUILDS = 26;

/** Statements no probe here uses, and why. Each must exist and stay unused (else remove it from the list). */
const NOT_EXERCISED: Record<string, Record<string, string>> = {
  ReconcileRole: {
    Logs: 'Lambda writes the function logs with the execution role; the sandbox keeps no CloudWatch Logs',
    RecheckEventSource: "recheck's event source mapping (the Lambda service) receives and deletes the messages",
    FailedInvocations: 'the on-failure destination: the Lambda service sends the record with the execution role',
    DistributionConfigurations: 'read only when a build does not embed its distribution configuration (older builds; test/unit)',
    DeadLetterMalformedRecheck: 'only a malformed recheck message is moved to the dead-letter queue (test/unit/recheck)',
    ExportRead: 'the demo configuration exports nothing to S3 (test/e2e/s3-export.test.ts)',
    ExportList: 'the demo configuration exports nothing to S3 (test/e2e/s3-export.test.ts)',
    NeverImageBuilderTags:
      "a Deny: the reconciler never sets Image Builder's tags, so no run fails without it (test/e2e/blast-radius.test.ts: the refusal it makes)",
    LaunchPermissions: "launch permissions of the owner's AMIs: Image Builder shares them as configured (test/unit/plan.test.ts)",
    ImageBuilderLaunchTemplates:
      "the drift probe takes CreatedBy off the owner's template, which opted in with imagebuilder-reconciler:managed (LaunchTemplates); test/unit/plan.test.ts",
  },
  CleanupRole: {
    Logs: 'Lambda writes the function logs with the execution role; the sandbox keeps no CloudWatch Logs',
    FailedInvocations: 'the on-failure destination of cleanupOnChange: the Lambda service sends it',
    ImageUsageReports: 'AMI usage reports run only with shared: include (test/e2e/cleanup-safety.test.ts)',
    MarkDisabledImagesRecordParts:
      'only a launch permission record longer than one tag value (256 characters) has parts (test/e2e/cleanup-guards.test.ts)',
  },
  ImageBuilderReconcilerTarget: {
    DoctorSelfCheck: 'used by `imagebuilder-reconciler doctor` (test/cli/doctor.test.ts), not by the functions',
    LicenseRead:
      "a license configuration is the owner's: a target account can use it only when shared through AWS RAM, which the sandbox does not model (test/e2e/licenses.test.ts: License Manager's refusal)",
    LicenseAssociate:
      "a target account can associate only a configuration shared with it through AWS RAM, which the sandbox does not model (test/e2e/licenses.test.ts: License Manager's refusal)",
    ExportRead: "only the owner's cell is checked for an S3 export, and the owner here is the reconciler's own account",
    ExportList: "only the owner's cell is checked for an S3 export, and the owner here is the reconciler's own account",
    NeverImageBuilderTags:
      "a Deny: the reconciler never sets Image Builder's tags, so no run fails without it (test/e2e/blast-radius.test.ts: the refusal it makes)",
    ImageBuilderLaunchTemplates:
      "the demo's target templates opted in with imagebuilder-reconciler:managed; one tagged CreatedBy: EC2 Image Builder is Image Builder's to update (test/unit/plan.test.ts)",
  },
  ImageBuilderReconcilerCleanup: {
    DoctorSelfCheck: 'used by `imagebuilder-reconciler doctor --cleanup` (test/cli/doctor.test.ts), not by the functions',
    ImageUsageReports: 'AMI usage reports run only with shared: include (test/e2e/cleanup-safety.test.ts)',
    MarkDisabledImagesRecordParts:
      'only a launch permission record longer than one tag value (256 characters) has parts (test/e2e/cleanup-guards.test.ts)',
  },
};

type ProbeName = 'build' | 'drift' | 'sweep' | 'cleanup' | 'cleanup-disable' | 'revoke' | 'gate';
const PROBES: ProbeName[] = ['build', 'drift', 'sweep', 'cleanup', 'cleanup-disable', 'revoke', 'gate'];
/** The functions each probe runs. */
const FUNCTIONS: Record<ProbeName, string[]> = {
  build: ['reconcile', 'recheck'],
  drift: ['reconcile', 'recheck'],
  sweep: ['sweep', 'recheck'],
  cleanup: ['cleanup'],
  'cleanup-disable': ['cleanup'],
  revoke: ['reconcile', 'recheck'],
  gate: ['gate', 'recheck', 'reconcile'],
};

interface ProbeRun {
  /** What a user reads: every failure a report (or the function's answer) gives, as text. */
  failures: string;
  authorizations: Authorization[];
}

const statementList = (role: Role): Statement[] =>
  [...role.inlinePolicies.values()].flatMap((text) => statementsOf(JSON.parse(text) as { Statement: Statement[] }));
const actionsOf = (statement: Statement): string[] => [statement.Action ?? []].flat();
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function reconcileFailures(report: ReconcileReport): string[] {
  return [
    ...(report.error === undefined ? [] : [report.error.message]),
    ...report.cells.filter((c) => c.status === 'failed').flatMap((c) => c.reasons.map((r) => `${c.region}/${c.accountId}: ${r}`)),
    ...(report.next.recheck ? [] : report.next.reason.includes('not authorized') ? [report.next.reason] : []),
    // a gate that could not answer its waiting step (the build then fails at the step's timeout)
    ...(report.gate?.error === undefined ? [] : [report.gate.reason]),
  ];
}

function cleanupFailures(result: unknown, selected: string[]): string[] {
  const report = result as Partial<CleanupReport> & { status?: string; error?: { message: string } };
  if (report.kind !== 'cleanup') return [`cleanup did not run: ${JSON.stringify(result)}`];
  return [
    ...(report.problems ?? []),
    // apply refused (the apply lease could not be taken): nothing was done
    ...(report.applyRefused === undefined || report.applyRefused === null ? [] : [report.applyRefused]),
    // a candidate done with an error (snapshots left behind) failed in part
    ...(report.candidates ?? [])
      .filter((c) => selected.includes(c.imageId) && (c.outcome === 'failed' || c.outcome === 'skipped' || c.error !== null))
      .map((c) => `${c.region}/${c.accountId} ${c.imageId}: ${c.outcome}: ${c.reason} ${c.error?.message ?? ''}`),
  ];
}

describe('remove each statement in turn: the run that needs it fails, naming the denied action', () => {
  let box: Sandbox;
  let configArn = '';
  const pool: string[] = [];
  let lastBuild = '';
  const sandboxes = useSandbox();
  /** Role label → its role in each account it is installed in. */
  const roles = new Map<string, Role[]>();
  const baseline = new Map<ProbeName, ProbeRun>();

  const ib = () => clients(box.url, OWNER).imagebuilder;

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  /**
   * Wait until a run for an image build has ended: a function ran for it, nothing runs or waits in a queue,
   * and its last report (if one was published) queues no recheck. Returns every report the run published
   * (a user gets each one: an early report can say what a later retry no longer shows) and the functions'
   * errors.
   */
  async function settled(
    arn: string,
    invocationsBefore: number,
    reportsBefore: number,
  ): Promise<{ reports: ReconcileReport[]; errors: string[] }> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const invocations = (box.wiring?.invocations ?? []).slice(invocationsBefore).filter((i) => JSON.stringify(i.event).includes(arn));
      const reports = box.reports(arn).slice(reportsBefore);
      const last = reports.at(-1);
      if (invocations.length > 0 && box.wiring?.busy() !== true && (last === undefined || !last.next.recheck)) {
        await box.idle();
        return { reports, errors: invocations.flatMap((i) => (i.error === undefined ? [] : [`${i.function}: ${i.error}`])) };
      }
      await sleep(25);
    }
    throw new Error(`the run for ${arn} did not end in 30 s`);
  }

  async function build(token: string): Promise<{ reports: ReconcileReport[]; errors: string[] }> {
    const before = box.wiring?.invocations.length ?? 0;
    const out = await ib().send(
      new StartImagePipelineExecutionCommand({ imagePipelineArn: box.refs.get('pipeline:golden-windows'), clientToken: token }),
    );
    const arn = out.imageBuildVersionArn ?? '';
    lastBuild = arn;
    return settled(arn, before, 0);
  }

  /** The AMIs of a build in the removed region, if all are still there to retire. */
  async function candidatesOf(arn: string): Promise<string[] | undefined> {
    const image = await ib().send(new GetImageCommand({ imageBuildVersionArn: arn }));
    const amis = (image.image?.outputResources?.amis ?? []).filter((a) => a.region === REMOVED);
    const available =
      amis.length > 0 && amis.every((a) => box.state.cell(a.accountId ?? OWNER, REMOVED).images.get(a.image ?? '')?.state === 'available');
    return available ? amis.map((a) => a.image ?? '') : undefined;
  }

  /** Put the owner's and a target's cell of the last build back as if someone had changed them since. */
  function driftLastBuild(): void {
    const owner = box.state.cell(OWNER, 'us-east-1');
    const template = owner.launchTemplates.get(box.refs.get('lt:web-owner') ?? '');
    if (template !== undefined) template.defaultVersion = 1;
    // Image Builder tags a template it updated CreatedBy: EC2 Image Builder; without it, only the opt-in tag lets
    // the reconciler write (LaunchTemplates, not ImageBuilderLaunchTemplates)
    template?.tags.delete('CreatedBy');
    owner.fastLaunch.clear();
    const previous = box.refs.get('ami:previous') ?? '';
    const parameter = owner.parameters.get('/golden/windows/latest');
    if (parameter !== undefined) parameter.value = previous;
    // A's copy in eu-west-1: the launch permission the configuration gives 333333333333, and its parameter
    const a = box.state.cell(A, 'eu-west-1');
    for (const image of a.images.values()) image.launchPermissions.userIds.clear();
    const aParameter = a.parameters.get('/golden/windows/latest');
    if (aParameter !== undefined) aParameter.value = box.refs.get('ami:previous-d-euw1') ?? previous;
    // the license configuration taken off the owner's AMIs in the licensed region
    for (const associations of box.state.cell(OWNER, LICENSED).licenseAssociations.values()) associations.clear();
  }

  /** Run a probe and collect what it reports as failed and what it was authorized (or refused) to do. */
  async function probe(name: ProbeName, cold = false): Promise<ProbeRun> {
    // new execution environments for the probe's functions: nothing cached, such as assumed-role credentials
    if (cold) await box.wiring?.coldStart(FUNCTIONS[name]);
    // no Fast Launch service-linked role yet: EC2 creates it on the first enable in an account
    box.state.serviceLinkedRoles.clear();
    const from = box.server.requests.length;
    let failures: string[];
    switch (name) {
      case 'build': {
        const run = await build(`probe-${randomUUID()}`);
        failures = [...run.errors, ...run.reports.flatMap(reconcileFailures)];
        // a report that could not be published exists only in the function's log: the request log says why
        if (run.reports.length === 0) {
          const refused = box.server.requests
            .slice(from)
            .flatMap((r) => r.authorizations)
            .filter((a) => a.decision !== 'allow');
          failures.push(`no report was published; the request log: ${refused.map((a) => `refused by IAM: ${a.action}`).join(', ')}`);
        }
        break;
      }
      case 'drift': {
        driftLastBuild();
        const after = box.reports(lastBuild).length;
        const invocations = box.wiring?.invocations.length ?? 0;
        const event = box.state.events.findLast(
          (e) => e.detailType === 'EC2 Image Builder Image State Change' && e.resources.includes(lastBuild),
        );
        if (event === undefined) throw new Error(`no state change event for ${lastBuild}`);
        box.wiring?.deliver({ ...event, id: randomUUID() });
        const run = await settled(lastBuild, invocations, after);
        failures = [...run.errors, ...(run.reports.length === 0 ? ['no report was published'] : run.reports.flatMap(reconcileFailures))];
        break;
      }
      case 'sweep': {
        driftLastBuild();
        const before = box.state.events.length;
        const invocation = await box.wiring?.invokeFunction('sweep', {
          version: '0',
          id: randomUUID(),
          'detail-type': 'Scheduled Event',
          source: 'aws.events',
          account: OWNER,
          time: box.clock.iso(),
          region: 'us-east-1',
          resources: [],
          detail: {},
        });
        await box.idle();
        const reports = box.state.events
          .slice(before)
          .filter((e) => e.detailType === 'Image Builder Reconcile Report')
          .map((e) => e.detail as ReconcileReport);
        failures = [...(invocation?.error === undefined ? [] : [invocation.error]), ...reports.flatMap(reconcileFailures)];
        if (invocation?.error === undefined && reports.length === 0)
          failures.push(`the sweep reconciled nothing: ${JSON.stringify(invocation?.result)}`);
        break;
      }
      case 'revoke': {
        // a build of its own, revoked, unrevoked and revoked again (it stays revoked, so it is no newer build
        // for the other probes); the drift probe's build stays the last one
        const last = lastBuild;
        const run = await build(`revoke-${randomUUID()}`);
        const arn = lastBuild;
        lastBuild = last;
        failures = [...run.errors];
        for (const [action, extra] of [
          ['revoke', { disable: true }],
          ['unrevoke', {}],
          ['revoke', {}],
        ] as const) {
          const invocation = await box.wiring?.invokeFunction('reconcile', { action, imageBuildVersionArn: arn, apply: true, ...extra });
          const result = invocation?.result as { status?: string; problems?: string[] } | undefined;
          if (invocation?.error !== undefined) failures.push(`${action}: ${invocation.error}`);
          // every pointer moves back to the build before it: a pointer left would be a failure here
          else failures.push(...(result?.problems ?? []).map((p) => `${action}: ${p}`));
          if (result?.status === 'failed' && (result.problems ?? []).length === 0)
            failures.push(`${action} failed: ${JSON.stringify(result)}`);
        }
        await box.idle();
        break;
      }
      case 'gate': {
        // the distribution gate on the pipeline for one build (docs/gate.md), then off again
        await setGate(true);
        const before = box.wiring?.invocations.length ?? 0;
        const out = await ib().send(
          new StartImagePipelineExecutionCommand({
            imagePipelineArn: box.refs.get('pipeline:golden-windows'),
            clientToken: `gate-${randomUUID()}`,
          }),
        );
        const arn = out.imageBuildVersionArn ?? '';
        await setGate(false);
        const ended = await waitFor(
          `${arn} to end`,
          async () => {
            const image = (await ib().send(new GetImageCommand({ imageBuildVersionArn: arn }))).image;
            return ['AVAILABLE', 'FAILED'].includes(image?.state?.status ?? '') ? image : undefined;
          },
          { timeoutMs: 60_000, intervalMs: 25 },
        );
        const run = await settled(arn, before, 0);
        failures = [
          ...run.errors,
          ...run.reports.flatMap(reconcileFailures),
          ...(ended.state?.status === 'FAILED' ? [`the build failed: ${ended.state.reason ?? ''}`] : []),
        ];
        break;
      }
      case 'cleanup':
      case 'cleanup-disable': {
        let imageIds: string[] | undefined;
        for (const candidate of pool) imageIds ??= await candidatesOf(candidate);
        if (imageIds === undefined) throw new Error('no build left with copies to retire: raise CANDIDATE_BUILDS');
        // one build's copies (the owner's and A's) at a time: the other builds' stay for the next probes
        const request = {
          distributionConfigurationArn: configArn,
          mode: 'apply',
          only: { imageIds },
          ...(name === 'cleanup-disable' ? { guards: { strategy: 'disable' } } : {}),
        };
        const invocation = await box.wiring?.invokeFunction('cleanup', request);
        await box.idle();
        failures = [...(invocation?.error === undefined ? [] : [invocation.error]), ...cleanupFailures(invocation?.result, imageIds)];
        break;
      }
    }
    return { failures: failures.join('\n'), authorizations: box.server.requests.slice(from).flatMap((r) => r.authorizations) };
  }

  let gateWorkflow = '';
  /** Attach the gate's workflow (created once) to the pipeline, or take it off. */
  async function setGate(on: boolean): Promise<void> {
    const arn = box.refs.get('pipeline:golden-windows') ?? '';
    const pipeline = (await ib().send(new GetImagePipelineCommand({ imagePipelineArn: arn }))).imagePipeline;
    if (on && gateWorkflow === '') {
      const created = await ib().send(
        new CreateWorkflowCommand({
          name: 'gate',
          semanticVersion: '1.0.0',
          type: 'DISTRIBUTION',
          clientToken: 'gate',
          data: gateDocument({ stages: [], distributions: undefined, timeoutSeconds: 18_000 }),
        }),
      );
      gateWorkflow = created.workflowBuildVersionArn ?? '';
    }
    await ib().send(
      new UpdateImagePipelineCommand({
        imagePipelineArn: arn,
        imageRecipeArn: pipeline?.imageRecipeArn,
        infrastructureConfigurationArn: pipeline?.infrastructureConfigurationArn,
        distributionConfigurationArn: pipeline?.distributionConfigurationArn,
        ...(on ? { workflows: [{ workflowArn: gateWorkflow }], executionRole: `arn:aws:iam::${OWNER}:role/ImageBuilderWorkflows` } : {}),
      }),
    );
  }

  const labelOf = (principal: string): string => {
    for (const [label, list] of roles) if (list.some((r) => r.arn === principal)) return label;
    return principal;
  };
  /** `<role label>#<Sid>` of every statement that allowed a call of the run. */
  const usedStatements = (run: ProbeRun): Set<string> =>
    new Set(
      run.authorizations
        .filter((a) => a.decision === 'allow' && a.statement !== undefined)
        .map((a) => `${labelOf(a.principal)}#${(a.statement ?? '').split('#').at(-1) ?? ''}`),
    );

  /** Remove one statement from every instance of a role; returns how to put it back. */
  function removeStatement(label: string, sid: string): () => void {
    const restore: (() => void)[] = [];
    for (const role of roles.get(label) ?? []) {
      for (const [name, text] of role.inlinePolicies) {
        const document = JSON.parse(text) as { Version: string; Statement: Statement[] };
        const kept = statementsOf(document).filter((s) => s.Sid !== sid);
        if (kept.length === statementsOf(document).length) continue;
        role.inlinePolicies.set(name, JSON.stringify({ ...document, Statement: kept }));
        restore.push(() => role.inlinePolicies.set(name, text));
      }
    }
    if (restore.length === 0) throw new Error(`${label} has no statement ${sid}`);
    return () => {
      for (const r of restore) r();
    };
  }

  beforeAll(async () => {
    buildBundles();
    const scenario = demoScenario();
    // cleanup acts only when asked (the manual probes); no scheduled sweep in between the probes
    scenario.deploymentParams = { ...scenario.deploymentParams, cleanupMode: 'plan', sweepRate: 'rate(3650 days)' };
    const removed = scenario.imagebuilder?.distributions?.[0]?.distributions?.find((d) => d.region === REMOVED);
    removed?.amiDistributionConfiguration?.targetAccountIds?.push(OWNER);
    // the build region and eu-west-1 encrypt with a KMS key of each destination account: Fast Launch's launch
    // check then uses the key (the owner's, by the reconcile role in the drift probe; the targets', by theirs)
    for (const region of ['us-east-1', 'eu-west-1']) {
      const d = scenario.imagebuilder?.distributions?.[0]?.distributions?.find((x) => x.region === region);
      if (d?.amiDistributionConfiguration === undefined) throw new Error(`the demo distributes to ${region}`);
      d.amiDistributionConfiguration.kmsKeyId = '1234abcd-12ab-34cd-56ef-1234567890ab';
    }
    scenario.regions = [...scenario.regions, LICENSED];
    // a stack in the removed region of every account: cleanup's in-use check reads its template (a queue, no AMI)
    scenario.stacks = [OWNER, ...TARGETS].map((account) => ({
      account,
      region: REMOVED,
      name: 'queues',
      template: { Resources: { Queue: { Type: 'AWS::SQS::Queue' } } },
    }));
    // and a Batch compute environment and two EMR clusters (instance groups, instance fleets) there, none
    // naming a candidate: the in-use check lists them and reads each cluster's groups or fleets
    scenario.computeEnvironments = [OWNER, ...TARGETS].map((account) => ({ account, region: REMOVED, name: 'jobs' }));
    scenario.emrClusters = [OWNER, ...TARGETS].flatMap((account) => [
      { account, region: REMOVED, name: 'groups' },
      { account, region: REMOVED, name: 'fleets', fleets: true },
    ]);
    box = await sandboxes.start({ scenario, wire: true, clockSpeed: 3000 });
    configArn = box.refs.get('distribution:golden-windows') ?? '';
    const licenses = new LicenseManagerClient({
      endpoint: box.url,
      region: LICENSED,
      credentials: { accessKeyId: OWNER, secretAccessKey: 'sandbox' },
      maxAttempts: 1,
    });
    const license =
      (await licenses.send(new CreateLicenseConfigurationCommand({ Name: 'windows-server', LicenseCountingType: 'vCPU' })))
        .LicenseConfigurationArn ?? '';
    const initial = await ib().send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: configArn }));
    const licensed = { region: LICENSED, amiDistributionConfiguration: { targetAccountIds: [OWNER] }, licenseConfigurationArns: [license] };
    await ib().send(
      new UpdateDistributionConfigurationCommand({
        distributionConfigurationArn: configArn,
        distributions: [...(initial.distributionConfiguration?.distributions ?? []), licensed],
        clientToken: 'licensed',
      }),
    );
    await box.idle();
    for (const [logicalId, role] of box.wiring?.roles ?? []) roles.set(logicalId, [role]);
    for (const name of ['ImageBuilderReconcilerTarget', 'ImageBuilderReconcilerCleanup']) {
      roles.set(
        name,
        TARGETS.map((account) => box.state.rolesOf(account).get(name)).filter((r): r is Role => r !== undefined),
      );
    }
    // builds with copies in the region then removed: what the cleanup probes retire (older than 7 days)
    for (let i = 0; i < CANDIDATE_BUILDS; i += 1) {
      const run = await build(`pool-${i}`);
      expect(run.reports.at(-1)?.outcome, `pool build ${i}`).toMatch(/converged|repaired/);
      pool.push(lastBuild);
    }
    box.clock.advance(8 * 86_400_000);
    const current = await ib().send(new GetDistributionConfigurationCommand({ distributionConfigurationArn: configArn }));
    await ib().send(
      new UpdateDistributionConfigurationCommand({
        distributionConfigurationArn: configArn,
        distributions: current.distributionConfiguration?.distributions?.filter((d) => d.region !== REMOVED),
        clientToken: 'remove',
      }),
    );
    await box.idle();
    for (const name of PROBES) baseline.set(name, await probe(name));
  }, 180_000);

  it('every probe succeeds with every statement in place', () => {
    for (const [name, run] of baseline) {
      expect(run.failures, name).toBe('');
      expect(
        run.authorizations.filter((a) => a.decision !== 'allow').map((a) => `${a.action} ${a.resource}`),
        name,
      ).toStrictEqual([]);
    }
  });

  it('NOT_EXERCISED names statements that exist and that no probe uses', () => {
    const used = new Set([...baseline.values()].flatMap((run) => [...usedStatements(run)]));
    for (const [label, entries] of Object.entries(NOT_EXERCISED)) {
      const sids = new Set((roles.get(label) ?? []).flatMap(statementList).map((s) => s.Sid));
      expect(
        Object.keys(entries).filter((sid) => !sids.has(sid)),
        `${label}: listed, but no such statement`,
      ).toStrictEqual([]);
      expect(
        Object.keys(entries).filter((sid) => used.has(`${label}#${sid}`)),
        `${label}: listed, but a probe uses it`,
      ).toStrictEqual([]);
    }
  });

  it('without any one statement, the first run that used it fails, naming one of its actions', async () => {
    const outcomes: string[] = [];
    for (const [label, list] of roles) {
      const statements = list[0] === undefined ? [] : statementList(list[0]);
      expect(list.length, label).toBeGreaterThan(0);
      for (const statement of statements) {
        const sid = statement.Sid ?? '';
        expect(sid, `${label}: every statement has a Sid`).not.toBe('');
        if (NOT_EXERCISED[label]?.[sid] !== undefined) continue;
        const name = PROBES.find((p) => usedStatements(baseline.get(p) ?? { failures: '', authorizations: [] }).has(`${label}#${sid}`));
        if (name === undefined) {
          outcomes.push(`${label}#${sid}: no probe uses it (add one, list it in NOT_EXERCISED with the reason, or remove the grant)`);
          continue;
        }
        const restore = removeStatement(label, sid);
        let run: ProbeRun;
        try {
          // a role keeps the sessions it has already assumed: only a new execution environment calls
          // sts:AssumeRole again (the same holds on AWS until the cached credentials expire)
          run = await probe(name, actionsOf(statement).includes('sts:AssumeRole'));
        } finally {
          restore();
        }
        const named = new RegExp(`(not authorized to perform|refused by IAM): (${actionsOf(statement).map(escapeRegExp).join('|')})\\b`);
        if (!named.test(run.failures))
          outcomes.push(
            `${label}#${sid} removed: ${name} did not fail naming ${actionsOf(statement).join(', ')}; it reported: ${run.failures.slice(0, 400) || 'no failure'}`,
          );
      }
    }
    expect(outcomes).toStrictEqual([]);
  }, 240_000);
});
