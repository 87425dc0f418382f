/**
 * The distribution gate's workflow document (docs/gate.md): a DISTRIBUTION workflow whose stages each
 * distribute (DistributeImage), share (ModifyImageAttributes) and configure (ApplyImageConfigurations) their
 * cells, then wait (WaitForAction) for the reconciler to judge them. Pure: no I/O.
 *
 * Step actions and their inputs: Image Builder User Guide, "Supported step actions for your workflow
 * document" (wfdoc-step-actions). DistributeImage's `distributions` input "If you provide it, Image Builder
 * uses your workflow inputs and ignores the attached distribution configuration": so a staged document
 * repeats each region's name, description, target accounts, amiTags and KMS key from the configuration; the
 * other steps are left without inputs and fall back to the attached configuration (launch permissions,
 * launch templates, Fast Launch, licences, S3 export, SSM parameters).
 */
import type { Distribution } from '@aws-sdk/client-imagebuilder';
import { stringify } from 'yaml';
import { InputError } from '../core/errors.ts';
import { GATE_STEP_PREFIX } from './stage.ts';

/** WaitForAction's maximum timeout (User Guide: "Max Timeout: 7 days (604,800 seconds)"). */
const WAIT_MAX_SECONDS = 604_800;

/** One stage: cells named by region, each either every account of the region or the listed ones. */
interface StageSpec {
  regions: { region: string; accounts?: string[] | undefined }[];
}

interface GateDocumentOptions {
  /** The stages in order; the cells of the configuration no stage names form a last stage. Empty: one stage. */
  stages: StageSpec[];
  /** The distribution configuration's distributions: required when there are stages (their settings are repeated). */
  distributions: Distribution[] | undefined;
  /** The owner account (the build's): its copy in the build region is the build AMI itself. */
  ownerAccountId?: string | undefined;
  /** WaitForAction's timeoutSeconds: past it, the build fails (the step's onFailure is Abort). */
  timeoutSeconds: number;
  name?: string | undefined;
}

/**
 * Parse `--stage` values: `us-east-1,eu-west-1` (whole regions) or `us-east-1:222222222222` (one account of
 * a region); accounts joined with `+` (`us-east-1:222222222222+333333333333`).
 */
function parseStage(value: string): StageSpec {
  const regions = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((item) => {
      const [region = '', accounts] = item.split(':');
      if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region))
        throw new InputError(`--stage ${JSON.stringify(value)}: ${JSON.stringify(region)} is not a region`);
      if (accounts === undefined) return { region };
      const ids = accounts.split('+');
      for (const id of ids)
        if (!/^\d{12}$/.test(id)) throw new InputError(`--stage ${JSON.stringify(value)}: ${JSON.stringify(id)} is not an account id`);
      return { region, accounts: ids };
    });
  if (regions.length === 0) throw new InputError(`--stage ${JSON.stringify(value)} names no region`);
  return { regions };
}

/** The accounts a distribution copies to: its target accounts, else the owner. */
function targetsOf(d: Distribution, owner: string | undefined): string[] {
  const targets = d.amiDistributionConfiguration?.targetAccountIds ?? [];
  if (targets.length > 0) return targets;
  return owner === undefined ? [] : [owner];
}

/** A DistributeImage `distributions` item: the configuration's settings of the region, for these accounts. */
function distributionItem(d: Distribution, accounts: string[] | undefined): Record<string, unknown> {
  const ami = d.amiDistributionConfiguration;
  return {
    region: d.region,
    ...(ami?.name === undefined ? {} : { name: ami.name }),
    ...(ami?.description === undefined ? {} : { description: ami.description }),
    ...(accounts === undefined || accounts.length === 0 ? {} : { targetAccountIds: accounts }),
    ...(ami?.amiTags === undefined ? {} : { amiTags: ami.amiTags }),
    ...(ami?.kmsKeyId === undefined ? {} : { kmsKeyId: ami.kmsKeyId }),
  };
}

/**
 * The stages as DistributeImage inputs: each stage's cells, then a last stage of what no stage named.
 * Refuses a region or account the configuration does not distribute to, and a cell named twice.
 */
function stageDistributions(options: GateDocumentOptions): (Record<string, unknown>[] | undefined)[] {
  if (options.stages.length === 0) return [undefined];
  const distributions = options.distributions;
  if (distributions === undefined)
    throw new InputError(
      'stages need the distribution configuration (--distribution-configuration): their settings are repeated in each stage',
    );
  const left = new Map(distributions.map((d) => [d.region ?? '', new Set(targetsOf(d, options.ownerAccountId))]));
  const stages: Record<string, unknown>[][] = [];
  for (const [i, stage] of options.stages.entries()) {
    const items: Record<string, unknown>[] = [];
    for (const { region, accounts } of stage.regions) {
      const d = distributions.find((x) => x.region === region);
      const remaining = left.get(region);
      if (d === undefined || remaining === undefined)
        throw new InputError(`stage ${i + 1}: the distribution configuration does not distribute to ${region}`);
      if (accounts === undefined && remaining.size === 0)
        throw new InputError(`stage ${i + 1}: every cell of ${region} is in an earlier stage already`);
      const take = accounts ?? [...remaining];
      for (const account of take) {
        if (!remaining.has(account))
          throw new InputError(
            `stage ${i + 1}: ${region}:${account} is not a target of the configuration, or an earlier stage already has it`,
          );
        remaining.delete(account);
      }
      if (take.length > 0) items.push(distributionItem(d, take));
    }
    stages.push(items);
  }
  const rest: Record<string, unknown>[] = [];
  for (const d of distributions) {
    const remaining = [...(left.get(d.region ?? '') ?? [])];
    if (remaining.length > 0) rest.push(distributionItem(d, remaining));
  }
  if (rest.length > 0) stages.push(rest);
  return stages;
}

/** The gate's workflow document (YAML), for CreateWorkflow's `data` (type DISTRIBUTION). */
function gateDocument(options: GateDocumentOptions): string {
  if (!Number.isInteger(options.timeoutSeconds) || options.timeoutSeconds < 60 || options.timeoutSeconds > WAIT_MAX_SECONDS)
    throw new InputError(
      `the gate's timeout must be from 60 to ${WAIT_MAX_SECONDS} seconds (WaitForAction's maximum), got ${options.timeoutSeconds}`,
    );
  const stages = stageDistributions(options);
  const steps = stages.flatMap((distributions, i) => {
    const n = i + 1;
    const copies = `$.stepOutputs.DistributeStage${n}.distributedImages`;
    return [
      {
        name: `DistributeStage${n}`,
        action: 'DistributeImage',
        onFailure: 'Abort',
        ...(distributions === undefined ? {} : { inputs: { distributions } }),
      },
      { name: `ShareStage${n}`, action: 'ModifyImageAttributes', onFailure: 'Abort', inputs: { 'distributedImages.$': copies } },
      { name: `ConfigureStage${n}`, action: 'ApplyImageConfigurations', onFailure: 'Abort', inputs: { 'distributedImages.$': copies } },
      // the reconciler answers RESUME when every cell so far converged, STOP with the failed cells' reasons
      { name: `${GATE_STEP_PREFIX}${n}`, action: 'WaitForAction', onFailure: 'Abort', timeoutSeconds: options.timeoutSeconds },
    ];
  });
  const header = [
    '# imagebuilder-reconciler distribution gate (docs/gate.md): attach as the DISTRIBUTION workflow of a pipeline.',
    `# ${stages.length} stage(s); each waits for the reconciler (${GATE_STEP_PREFIX}<n>): RESUME when every cell distributed so far`,
    `# converged, STOP with the failed cells' reasons. Unanswered for ${options.timeoutSeconds} s, the step fails and so does the build.`,
  ].join('\n');
  const body = stringify(
    {
      name: options.name ?? 'imagebuilder-reconciler-gate',
      description: 'Distribute in stages; release each stage only when the reconciler finds every cell right',
      schemaVersion: 1.0,
      steps,
    },
    { lineWidth: 0 },
  );
  return `${header}\n${body.replace(/^schemaVersion: 1$/m, 'schemaVersion: 1.0')}`;
}

export { GATE_STEP_PREFIX, WAIT_MAX_SECONDS, gateDocument, parseStage };
export type { GateDocumentOptions, StageSpec };
