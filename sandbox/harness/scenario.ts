import { readFileSync } from 'node:fs';
import type {
  CreateDistributionConfigurationRequest,
  CreateImageRecipeRequest,
  CreateInfrastructureConfigurationRequest,
} from '@aws-sdk/client-imagebuilder';
import type { FaultSettings } from '../emulator/faults.ts';
import { partitionOf } from '../emulator/partition.ts';
import { readTemplate, templateRoles } from '../emulator/iam/cloudformation.ts';
import { installRole } from '../emulator/iam/roles.ts';
import { type Ctx, type Handler, type SandboxEnv, systemCtx } from '../emulator/server.ts';
import { batch } from '../emulator/services/batch.ts';
import { cloudformation } from '../emulator/services/cloudformation.ts';
import { ec2, registerImage } from '../emulator/services/ec2/index.ts';
import { emr } from '../emulator/services/emr.ts';
import { imagebuilder } from '../emulator/services/imagebuilder.ts';
import { rootOf } from '../emulator/services/organizations.ts';
import { writeParameter } from '../emulator/services/parameters.ts';

/**
 * A scenario file: the accounts and regions the sandbox holds and what is in them before anything runs.
 * Strings may refer to resources created earlier in the file: `${ami:<ref>}` and `${lt:<ref>}`.
 * The README ("Sandbox → Scenario files") documents every field.
 */
interface Scenario {
  name: string;
  description?: string;
  /** The account an unknown access key acts as (and the build account by default). */
  defaultAccount: string;
  accounts: string[];
  regions: string[];
  /** Simulated seconds per real second. */
  clockSpeed?: number;
  /** Where the reconciler is deployed (default: defaultAccount, first region). */
  reconciler?: { account?: string; region?: string };
  /** Name of the reconciler's role in every account (default ImageBuilderReconcilerTarget). */
  targetRoleName?: string;
  /** Accounts whose reconciler role is missing. */
  removedRoles?: string[];
  /**
   * Parameters of infra/target-account-role.yaml for the roles deployed in every account. By default the
   * roles trust the deployment's reconcile and cleanup roles (ReconcilerRoleArn, CleanupRoleArn) and, as
   * OperatorPrincipalArns, the reconciler account's root user, which the sandbox's plain access keys act as
   * (the CLI and doctor run with them); RoleName follows targetRoleName.
   */
  targetRoleParameters?: Record<string, string>;
  /**
   * AWS Organizations: organization id (`o-…`) → its member accounts (default: no organization). The first
   * account listed is the organization's management account (the one that may list its accounts).
   */
  organizations?: Record<string, string[]>;
  /** OUs of those organizations: each in its organization's root unless `parent` names another OU; `accounts` move into it. */
  organizationalUnits?: { id: string; name?: string; organization: string; parent?: string; accounts?: string[] }[];
  /** Overrides of serverless.yml's `params` for the wired deployment. */
  deploymentParams?: Record<string, string>;
  images?: {
    ref: string;
    account: string;
    region: string;
    name: string;
    platform?: 'windows';
    tags?: Record<string, string>;
    ageDays?: number;
  }[];
  launchTemplates?: { ref: string; account: string; region: string; name: string; image?: string; tags?: Record<string, string> }[];
  parameters?: { account: string; region: string; name: string; value: string; dataType?: string }[];
  instances?: { account: string; region: string; image: string }[];
  /**
   * Spot Instance requests, fulfilled at once; `interrupted`: its instance is then terminated, so that a
   * persistent request is `open` again (and names the AMI alone), a one-time one closed.
   */
  spotRequests?: { account: string; region: string; image: string; type?: 'one-time' | 'persistent'; interrupted?: boolean }[];
  /** CloudFormation stacks: a template (object or JSON/YAML text) and its parameter values. */
  stacks?: { account: string; region: string; name: string; template: string | object; parameters?: Record<string, string> }[];
  /**
   * AWS Batch compute environments (managed, EC2): the AMI of `computeResources.imageId` (`image`) and of
   * `ec2Configuration[].imageIdOverride` (`imageOverrides`); `state` DISABLED, `maxvCpus` 0 for one that
   * cannot scale out now but still names its AMIs.
   */
  computeEnvironments?: {
    account: string;
    region: string;
    name: string;
    image?: string;
    imageOverrides?: string[];
    state?: 'ENABLED' | 'DISABLED';
    maxvCpus?: number;
  }[];
  /**
   * Amazon EMR clusters: the cluster's custom AMI (`customAmi`), and instance groups (default) or instance
   * fleets (`fleets: true`) of which `nodeAmis` give each their own; `terminated`: the cluster has ended.
   */
  emrClusters?: {
    account: string;
    region: string;
    name: string;
    customAmi?: string;
    nodeAmis?: string[];
    fleets?: boolean;
    terminated?: boolean;
  }[];
  imagebuilder?: {
    account?: string;
    region?: string;
    recipes?: CreateImageRecipeRequest[];
    infrastructure?: CreateInfrastructureConfigurationRequest[];
    distributions?: CreateDistributionConfigurationRequest[];
    pipelines?: { name: string; recipe: string; infrastructure: string; distribution: string }[];
  };
  faults?: FaultSettings;
}

/** A scenario file that cannot be read or used: bad input of the demo and the sandbox. */
class ScenarioError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ScenarioError';
  }
}

function call(handler: Handler | undefined, ctx: Ctx, input: object): Record<string, unknown> {
  if (handler === undefined) throw new ScenarioError(`scenario: no handler for ${ctx.operation}`);
  return handler(ctx, input as Record<string, unknown>) as Record<string, unknown>;
}

/** Replace `${ami:x}` and `${lt:x}` in every string of a value. */
function substitute<T>(value: T, refs: Map<string, string>): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      return v.replace(/\$\{(ami|lt):([\w-]+)\}/g, (whole, kind: string, ref: string) => {
        const found = refs.get(`${kind}:${ref}`);
        if (found === undefined) throw new ScenarioError(`scenario: unknown reference ${whole}`);
        return found;
      });
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value) as T;
}

/** Load a scenario file; throws naming what is wrong. */
function loadScenario(path: string): Scenario {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error: unknown) {
    throw new ScenarioError(`cannot read scenario ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const s = parsed as Partial<Scenario>;
  if (typeof s.name !== 'string' || typeof s.defaultAccount !== 'string' || !Array.isArray(s.accounts) || !Array.isArray(s.regions)) {
    throw new ScenarioError(`scenario ${path} needs name, defaultAccount, accounts and regions`);
  }
  for (const account of [s.defaultAccount, ...s.accounts])
    if (!/^\d{12}$/.test(account)) throw new ScenarioError(`scenario ${path}: "${account}" is not a 12-digit account`);
  return s as Scenario;
}

/** Put the scenario's resources in place. Returns the refs of what it created. */
function applyScenario(
  env: SandboxEnv,
  scenario: Scenario,
  home: { account: string; region: string },
  targetRoleTemplate: string,
  functionRoles: { reconcile: string; cleanup: string },
): Map<string, string> {
  const refs = new Map<string, string>();
  for (const [organization, members] of Object.entries(scenario.organizations ?? {})) {
    if (!/^o-[a-z0-9]{10,32}$/.test(organization))
      throw new ScenarioError(`scenario: "${organization}" is not an organization id (o- and 10 to 32 lowercase letters or digits)`);
    if (members[0] !== undefined) env.state.organizationManagement.set(organization, members[0]);
    for (const account of members) env.state.organizations.set(account, organization);
  }
  for (const unit of scenario.organizationalUnits ?? []) {
    if (!/^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$/.test(unit.id))
      throw new ScenarioError(`scenario: "${unit.id}" is not an OU id (ou-, 4 to 32 letters or digits, -, 8 to 32 more)`);
    if (!env.state.organizationManagement.has(unit.organization))
      throw new ScenarioError(`scenario: OU ${unit.id} names organization ${unit.organization}, which organizations does not list`);
    const parent = unit.parent ?? rootOf(unit.organization);
    if (unit.parent !== undefined && env.state.organizationalUnits.get(unit.parent)?.organization !== unit.organization)
      throw new ScenarioError(`scenario: OU ${unit.id}: its parent ${unit.parent} is no OU of ${unit.organization} listed before it`);
    env.state.organizationalUnits.set(unit.id, { id: unit.id, name: unit.name ?? unit.id, organization: unit.organization, parent });
    for (const account of unit.accounts ?? []) {
      if (env.state.organizations.get(account) !== unit.organization)
        throw new ScenarioError(`scenario: OU ${unit.id} lists ${account}, which is no member of ${unit.organization}`);
      env.state.accountUnits.set(account, unit.id);
    }
  }
  const roleName = scenario.targetRoleName ?? 'ImageBuilderReconcilerTarget';
  // the target-account roles, deployed from the project's template as an operator would (StackSets: the
  // same parameters in every account)
  const template = readTemplate(targetRoleTemplate);
  const partition = partitionOf(home.region);
  for (const account of env.state.accounts) {
    if ((scenario.removedRoles ?? []).includes(account)) continue;
    const parameters = {
      ReconcilerRoleArn: functionRoles.reconcile,
      CleanupRoleArn: functionRoles.cleanup,
      OperatorPrincipalArns: `arn:${partition}:iam::${home.account}:root`,
      RoleName: roleName,
      ...(scenario.targetRoleParameters ?? {}),
    };
    for (const role of templateRoles(template, { account, region: home.region, partition, parameters }))
      installRole(env.state, account, role, partition);
  }
  const now = env.clock.now();
  for (const image of scenario.images ?? []) {
    const ami = registerImage(env.state, env.clock, {
      account: image.account,
      region: image.region,
      name: image.name,
      platform: image.platform,
      tags: image.tags,
      creationDate: new Date(now - (image.ageDays ?? 0) * 86_400_000).toISOString(),
    });
    refs.set(`ami:${image.ref}`, ami.imageId);
  }
  // parameters before launch templates: a template may name one (`resolve:ssm:`), which EC2 checks
  for (const p of substitute(scenario.parameters ?? [], refs)) {
    writeParameter(env.state.cell(p.account, p.region), {
      name: p.name,
      value: p.value,
      type: 'String',
      dataType: p.dataType ?? 'text',
      lastModified: env.clock.date(),
    });
  }
  for (const lt of substitute(scenario.launchTemplates ?? [], refs)) {
    const out = call(ec2.handlers.CreateLaunchTemplate, systemCtx(env, lt.account, lt.region, 'ec2', 'CreateLaunchTemplate'), {
      LaunchTemplateName: lt.name,
      LaunchTemplateData: { InstanceType: 't3.large', ...(lt.image === undefined ? {} : { ImageId: lt.image }) },
      TagSpecifications:
        lt.tags === undefined
          ? undefined
          : [{ ResourceType: 'launch-template', Tags: Object.entries(lt.tags).map(([Key, Value]) => ({ Key, Value })) }],
    });
    refs.set(`lt:${lt.ref}`, String((out.LaunchTemplate as { LaunchTemplateId: string }).LaunchTemplateId));
  }
  for (const i of substitute(scenario.instances ?? [], refs)) {
    call(ec2.handlers.RunInstances, systemCtx(env, i.account, i.region, 'ec2', 'RunInstances'), {
      ImageId: i.image,
      MinCount: 1,
      MaxCount: 1,
    });
  }
  for (const r of substitute(scenario.spotRequests ?? [], refs)) {
    const out = call(ec2.handlers.RequestSpotInstances, systemCtx(env, r.account, r.region, 'ec2', 'RequestSpotInstances'), {
      Type: r.type ?? 'one-time',
      LaunchSpecification: { ImageId: r.image, InstanceType: 't3.micro' },
    });
    const instanceId = (out.SpotInstanceRequests as { InstanceId?: string }[])[0]?.InstanceId;
    if (r.interrupted === true && instanceId !== undefined)
      call(ec2.handlers.TerminateInstances, systemCtx(env, r.account, r.region, 'ec2', 'TerminateInstances'), {
        InstanceIds: [instanceId],
      });
  }
  for (const st of substitute(scenario.stacks ?? [], refs)) {
    call(cloudformation.handlers.CreateStack, systemCtx(env, st.account, st.region, 'cloudformation', 'CreateStack'), {
      StackName: st.name,
      TemplateBody: typeof st.template === 'string' ? st.template : JSON.stringify(st.template),
      Parameters: Object.entries(st.parameters ?? {}).map(([ParameterKey, ParameterValue]) => ({ ParameterKey, ParameterValue })),
    });
  }
  for (const ce of substitute(scenario.computeEnvironments ?? [], refs)) {
    call(batch.handlers.CreateComputeEnvironment, systemCtx(env, ce.account, ce.region, 'batch', 'CreateComputeEnvironment'), {
      computeEnvironmentName: ce.name,
      type: 'MANAGED',
      state: ce.state ?? 'ENABLED',
      computeResources: {
        type: 'EC2',
        minvCpus: 0,
        maxvCpus: ce.maxvCpus ?? 16,
        instanceTypes: ['optimal'],
        subnets: ['subnet-0123456789abcdef0'],
        instanceRole: 'ecsInstanceRole',
        ...(ce.image === undefined ? {} : { imageId: ce.image }),
        ...(ce.imageOverrides === undefined
          ? {}
          : { ec2Configuration: ce.imageOverrides.map((imageIdOverride) => ({ imageType: 'ECS_AL2023', imageIdOverride })) }),
      },
    });
  }
  for (const c of substitute(scenario.emrClusters ?? [], refs)) {
    const nodes = c.nodeAmis ?? [];
    const out = call(emr.handlers.RunJobFlow, systemCtx(env, c.account, c.region, 'elasticmapreduce', 'RunJobFlow'), {
      Name: c.name,
      ReleaseLabel: 'emr-7.5.0',
      ...(c.customAmi === undefined ? {} : { CustomAmiId: c.customAmi }),
      Instances: {
        KeepJobFlowAliveWhenNoSteps: true,
        ...(c.fleets === true
          ? {
              InstanceFleets: [
                { InstanceFleetType: 'MASTER', TargetOnDemandCapacity: 1, InstanceTypeConfigs: [{ InstanceType: 'm5.xlarge' }] },
                {
                  InstanceFleetType: 'CORE',
                  TargetOnDemandCapacity: Math.max(1, nodes.length),
                  InstanceTypeConfigs: (nodes.length === 0 ? [undefined] : nodes).map((ami) => ({
                    InstanceType: 'm5.xlarge',
                    ...(ami === undefined ? {} : { CustomAmiId: ami }),
                  })),
                },
              ],
            }
          : {
              InstanceGroups: [
                { InstanceRole: 'MASTER', InstanceType: 'm5.xlarge', InstanceCount: 1 },
                ...nodes.map((ami) => ({ InstanceRole: 'TASK', InstanceType: 'm5.xlarge', InstanceCount: 1, CustomAmiId: ami })),
              ],
            }),
      },
      JobFlowRole: 'EMR_EC2_DefaultRole',
      ServiceRole: 'EMR_DefaultRole',
    });
    if (c.terminated === true)
      call(emr.handlers.TerminateJobFlows, systemCtx(env, c.account, c.region, 'elasticmapreduce', 'TerminateJobFlows'), {
        JobFlowIds: [String(out.JobFlowId)],
      });
  }
  const ib = substitute(scenario.imagebuilder, refs);
  if (ib !== undefined) {
    const account = ib.account ?? home.account;
    const region = ib.region ?? home.region;
    const ctx = (operation: string) => systemCtx(env, account, region, 'imagebuilder', operation);
    for (const recipe of ib.recipes ?? [])
      refs.set(
        `recipe:${recipe.name ?? ''}`,
        String(call(imagebuilder.handlers.CreateImageRecipe, ctx('CreateImageRecipe'), recipe).imageRecipeArn),
      );
    for (const infra of ib.infrastructure ?? []) {
      refs.set(
        `infrastructure:${infra.name ?? ''}`,
        String(
          call(imagebuilder.handlers.CreateInfrastructureConfiguration, ctx('CreateInfrastructureConfiguration'), infra)
            .infrastructureConfigurationArn,
        ),
      );
    }
    for (const dist of ib.distributions ?? []) {
      refs.set(
        `distribution:${dist.name ?? ''}`,
        String(
          call(imagebuilder.handlers.CreateDistributionConfiguration, ctx('CreateDistributionConfiguration'), {
            clientToken: `scenario-${dist.name ?? ''}`,
            ...dist,
          }).distributionConfigurationArn,
        ),
      );
    }
    for (const p of ib.pipelines ?? []) {
      const out = call(imagebuilder.handlers.CreateImagePipeline, ctx('CreateImagePipeline'), {
        name: p.name,
        imageRecipeArn: refs.get(`recipe:${p.recipe}`),
        infrastructureConfigurationArn: refs.get(`infrastructure:${p.infrastructure}`),
        distributionConfigurationArn: refs.get(`distribution:${p.distribution}`),
      });
      refs.set(`pipeline:${p.name}`, String(out.imagePipelineArn));
    }
  }
  // scenario setup is not part of the story the event log tells
  env.state.events.length = 0;
  return refs;
}

export { ScenarioError, applyScenario, loadScenario, substitute };
export type { Scenario };
