import { isKnownRegion, nearestRegion, unknownRegion } from '../core/regions.ts';
import {
  CreateDistributionConfigurationRequest$,
  DistributionConfiguration$,
  UpdateDistributionConfigurationRequest$,
} from '@aws-sdk/client-imagebuilder';
import { NormalizedSchema } from '@smithy/core/schema';
import type { SchemaRef } from '@smithy/types';
import { BUILD_TAG, CREATED_BY_TAG, SOURCE_IMAGE_TAG } from '../core/tags.ts';
import { type Violation, validateAgainstModel } from './model/validate.ts';

/**
 * Preflight checks of a distribution configuration, as given to
 * `aws imagebuilder create-distribution-configuration --cli-input-json` (or update), or as Image Builder
 * returns it. Pure: no I/O. Each finding has a severity, the JSON path, what is wrong and a one-line fix.
 */
interface Finding {
  severity: 'error' | 'warning' | 'info';
  rule: string;
  path: string;
  message: string;
  fix: string;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

/** Names people write for fields the service model spells otherwise (AWS's own guide has the first two). */
const ALIASES: Record<string, string> = {
  launchPermissions: 'launchPermission',
  tags: 'amiTags',
  launchTemplates: 'launchTemplateConfigurations',
  launchTemplateConfiguration: 'launchTemplateConfigurations',
  fastLaunchConfiguration: 'fastLaunchConfigurations',
  ssmParameters: 'ssmParameterConfigurations',
  ssmParameterConfiguration: 'ssmParameterConfigurations',
  targetAccounts: 'targetAccountIds',
  accountIds: 'targetAccountIds',
  kmsKey: 'kmsKeyId',
  userId: 'userIds',
  userGroup: 'userGroups',
  maxParallelLaunch: 'maxParallelLaunches',
};

const DYNAMIC = /\{\{\s*([^}]*?)\s*\}\}/g;
const KNOWN_DYNAMIC = /^imagebuilder:(buildDate|buildVersion)(:.*)?$/;

function isObj(value: Json | undefined): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j += 1) (d[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i += 1) {
    for (let j = 1; j <= b.length; j += 1) {
      const row = d[i] as number[];
      const prev = d[i - 1] as number[];
      row[j] = Math.min(
        (prev[j] ?? 0) + 1,
        (row[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1),
      );
    }
  }
  return (d[a.length] as number[])[b.length] ?? 0;
}

function suggest(name: string, members: string[]): string | undefined {
  const alias = ALIASES[name];
  if (alias !== undefined && members.includes(alias)) return alias;
  let best: { name: string; d: number } | undefined;
  for (const member of members) {
    const d = distance(name, member);
    if (best === undefined || d < best.d) best = { name: member, d };
  }
  return best !== undefined && best.d <= Math.max(2, Math.floor(name.length / 3)) ? best.name : undefined;
}

/** The names a field may be meant as: itself, its alias, and without a leading "target" (targetOrganizationArns). */
function meanings(name: string): string[] {
  const out = [name, ALIASES[name] ?? name];
  const bare = /^target([A-Z].*)$/.exec(name)?.[1];
  if (bare !== undefined) out.push(`${bare[0]?.toLowerCase() ?? ''}${bare.slice(1)}`);
  return out;
}

/** Where below `schema` (three levels at most) a member of one of these names lives: "launchPermission.organizationArns". */
function findBelow(schema: NormalizedSchema, names: string[], depth = 3): string | undefined {
  if (depth === 0) return undefined;
  const struct = schema.isListSchema() ? schema.getValueSchema() : schema;
  if (!struct.isStructSchema()) return undefined;
  const members = [...struct.structIterator()];
  for (const [member] of members) if (names.includes(member)) return member;
  for (const [member, child] of members) {
    const below = findBelow(child, names, depth - 1);
    if (below !== undefined) return `${member}${child.isListSchema() ? '[]' : ''}.${below}`;
  }
  return undefined;
}

/** Field names and types against the service model (the SDK's schema): what the SDK would silently drop. */
function checkShape(
  value: Json,
  schema: NormalizedSchema,
  path: string,
  out: Finding[],
  parent?: { schema: NormalizedSchema; path: string },
): void {
  if (schema.isStructSchema()) {
    if (!isObj(value)) {
      out.push({
        severity: 'error',
        rule: 'wrong-type',
        path,
        message: `expected an object, got ${JSON.stringify(value)}`,
        fix: 'write an object with the fields the API reference lists',
      });
      return;
    }
    const members = new Map<string, NormalizedSchema>();
    for (const [name, member] of schema.structIterator()) members.set(name, member);
    for (const [key, child] of Object.entries(value)) {
      const member = members.get(key);
      const where = path === '' ? key : `${path}.${key}`;
      if (member === undefined) {
        // a sibling it is an alias of, else the same field misplaced below or one level up, else a misspelling
        const alias = ALIASES[key];
        const sibling = alias !== undefined && members.has(alias) ? alias : undefined;
        const below = sibling === undefined ? findBelow(schema, meanings(key)) : undefined;
        const above =
          sibling !== undefined || below !== undefined || parent === undefined
            ? undefined
            : meanings(key).find((name) => [...parent.schema.structIterator()].some(([m]) => m === name));
        const guess = sibling ?? (below === undefined && above === undefined ? suggest(key, [...members.keys()]) : undefined);
        const here = path === '' ? '' : `${path}.`;
        out.push({
          severity: 'error',
          rule: 'unknown-field',
          path: where,
          message: `"${key}" is not a field of ${schema.getName() ?? 'this object'}; the AWS SDK drops it silently and the AWS CLI rejects it`,
          fix:
            below !== undefined
              ? `move it to ${here}${below}`
              : above !== undefined
                ? `move it up to ${parent?.path === '' ? '' : `${parent?.path ?? ''}.`}${above}`
                : guess === undefined
                  ? `remove it; valid fields: ${[...members.keys()].join(', ')}`
                  : `rename it to "${guess}"`,
        });
        continue;
      }
      checkShape(child, member, where, out, { schema, path });
    }
    return;
  }
  if (schema.isListSchema()) {
    if (!Array.isArray(value)) {
      out.push({
        severity: 'error',
        rule: 'wrong-type',
        path,
        message: `expected a list, got ${JSON.stringify(value)}`,
        fix: 'write a JSON array',
      });
      return;
    }
    value.forEach((item, i) => {
      checkShape(item, schema.getValueSchema(), `${path}[${i}]`, out, parent);
    });
    return;
  }
  if (schema.isMapSchema()) {
    if (!isObj(value))
      out.push({
        severity: 'error',
        rule: 'wrong-type',
        path,
        message: `expected a map of strings, got ${JSON.stringify(value)}`,
        fix: 'write a JSON object of "key": "value" pairs',
      });
    return;
  }
  const expected = schema.isNumericSchema()
    ? 'number'
    : schema.isBooleanSchema()
      ? 'boolean'
      : schema.isStringSchema()
        ? 'string'
        : undefined;
  if (expected !== undefined && typeof value !== expected) {
    out.push({
      severity: 'error',
      rule: 'wrong-type',
      path,
      message: `expected a ${expected}, got ${JSON.stringify(value)}`,
      fix: `write a ${expected}`,
    });
  }
}

function str(value: Json | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function strings(value: Json | undefined): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function list(value: Json | undefined): Obj[] {
  return Array.isArray(value) ? value.filter(isObj) : [];
}

/** How to fix a broken constraint of these shapes, beyond the constraint itself. */
const SHAPE_FIXES: Record<string, (value: string) => string> = {
  AccountId: () => 'write the account ID as 12 digits, in quotes',
  AmiNameString: () =>
    'use 1–127 letters, digits, spaces and - _ : . { }, starting and ending with a letter, digit, - _ or a {{…}} reference',
  ResourceName: () => 'use 3–128 letters, digits, spaces, - and _, starting and ending with a letter, digit, - or _',
  LaunchTemplateId: () => 'use the template ID (lt- and 17 characters), not its name',
  OrganizationArn: () =>
    'write the organization ARN: arn:aws:organizations::<management account ID>:organization/o-<10 to 32 lower-case letters or digits>',
  OrganizationalUnitArn: () =>
    'write the OU ARN: arn:aws:organizations::<management account ID>:ou/o-<organization id>/ou-<root id>-<OU id>',
  LicenseConfigurationArn: () =>
    'write the License Manager configuration ARN: arn:aws:license-manager:<region>:<account ID>:license-configuration:lic-<32 characters>',
  TagKey: (key) =>
    key.toLowerCase().startsWith('aws:')
      ? 'rename the tag key: keys starting with aws: are reserved for AWS'
      : 'use 1–128 letters, digits, spaces and _ . : / = + - @ in tag keys',
  DistributionConfigurationArn: (arn) =>
    `write the ARN Image Builder returns: arn:aws:imagebuilder:<region>:<account ID>:distribution-configuration/<name in lower case>${arn.endsWith('.json') ? ' (not the name of the file that holds the configuration)' : ''}`,
  SsmParameterName: () => 'use letters, digits and _ . - / in parameter names, at most 1011 characters',
};

/** What to write where a required member is missing. */
const REQUIRED_FIXES: Record<string, string> = {
  enabled: 'add "enabled": true (false turns Fast Launch off)',
  s3Bucket: 'add "s3Bucket": "<bucket that receives the exported image>"',
  roleName: 'add "roleName": "<role that lets VM Import/Export write to the bucket>"',
  diskImageFormat: 'add "diskImageFormat": "VMDK" (or RAW, VHD)',
  targetRepository: 'add "targetRepository": { "service": "ECR", "repositoryName": "<repository>" }',
  repositoryName: 'add "repositoryName": "<ECR repository>"',
  service: 'add "service": "ECR"',
  launchTemplateId: 'add "launchTemplateId": "lt-…" (the template ID, not its name)',
  parameterName: 'add "parameterName": "/images/latest" (the parameter to write the AMI ID to)',
  region: 'add "region": "us-east-1" (or the region meant)',
  name: 'add "name": "my-distribution"',
  distributions: 'add "distributions": [ { "region": …, "amiDistributionConfiguration": … } ]',
  distributionConfigurationArn: 'add "distributionConfigurationArn": the ARN of the configuration to update',
};

/** A broken constraint of the service model as a finding: the JSON path, the model's words, and a fix. */
function modelFinding(v: Violation): Finding {
  const rule = `model-${v.constraint}`;
  if (v.constraint === 'required') {
    return {
      severity: 'error',
      rule,
      path: v.path,
      message: `${v.member} is required (the service answers ValidationException: "${v.detail}")`,
      fix: REQUIRED_FIXES[v.member] ?? `add "${v.member}"`,
    };
  }
  const value = typeof v.value === 'string' ? v.value : JSON.stringify(v.value);
  const shapeFix = SHAPE_FIXES[v.shape];
  const fix =
    v.constraint === 'enum'
      ? `use one of ${(v.enum ?? []).join(', ')}`
      : v.constraint === 'length' &&
          v.min === 1 &&
          (v.value === '' ||
            (Array.isArray(v.value) && v.value.length === 0) ||
            (isObj(v.value as Json) && Object.keys(v.value as Obj).length === 0))
        ? 'remove the field, or give it a value: the service rejects it empty'
        : shapeFix !== undefined
          ? shapeFix(typeof v.value === 'string' ? v.value : '')
          : v.constraint === 'pattern'
            ? `match the pattern ${v.pattern ?? ''}`
            : v.constraint === 'range'
              ? `use a value ${v.max === undefined ? `of ${v.min ?? ''} or more` : `from ${v.min ?? ''} to ${v.max}`}`
              : `use a length ${v.max === undefined ? `of ${v.min ?? ''} or more` : `from ${v.min ?? 0} to ${v.max}`}`;
  return {
    severity: 'error',
    rule,
    path: v.path,
    message: `${JSON.stringify(value)} breaks the service model (${v.shape}): ${v.detail}`,
    fix,
  };
}

/** Rules about meaning: limits, Fast Launch, sharing, accounts. */
/** EC2's limit of user-defined tags per resource (EC2 User Guide, "Tag restrictions"). */
const EC2_MAX_TAGS = 50;

/**
 * The owner's AMI carries the amiTags, Image Builder's own two tags (`CreatedBy`, `Ec2ImageBuilderArn`) and the
 * reconciler's source tag; EC2 allows 50 tags per resource, counting those it has ("Maximum number of tags
 * per resource – 50", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions),
 * so more than 47 amiTags of other keys leave no room and the reconcile's CreateTags fails with
 * TagLimitExceeded. More than 50 amiTags is the model's finding (TagMap).
 */
function checkTagLimit(ami: Obj, at: string, out: Finding[]): void {
  const amiTags: Obj = isObj(ami.amiTags) ? ami.amiTags : {};
  const keys = Object.keys(amiTags);
  if (keys.length > EC2_MAX_TAGS) return;
  const added = [CREATED_BY_TAG, BUILD_TAG, SOURCE_IMAGE_TAG];
  const total = new Set([...keys, ...added]).size;
  if (total <= EC2_MAX_TAGS) return;
  out.push({
    severity: 'error',
    rule: 'ami-tag-limit',
    path: `${at}.amiDistributionConfiguration.amiTags`,
    message: `${keys.length} amiTags, with Image Builder's ${CREATED_BY_TAG} and ${BUILD_TAG} and the reconciler's ${SOURCE_IMAGE_TAG}, make ${total} tags on the AMI; EC2 allows ${EC2_MAX_TAGS} per resource (TagLimitExceeded)`,
    fix: `remove ${total - EC2_MAX_TAGS} amiTags (at most ${EC2_MAX_TAGS - added.length} besides those three)`,
  });
}

function checkDistributions(config: Obj, owner: string | undefined, out: Finding[]): void {
  const distributions = config.distributions;
  // missing or not a list: the model's required check and the shape check report it
  if (!Array.isArray(distributions)) return;
  if (distributions.length === 0) {
    out.push({
      severity: 'error',
      rule: 'no-distributions',
      path: 'distributions',
      message: 'no distributions',
      fix: 'add at least one { "region": …, "amiDistributionConfiguration": … }',
    });
    return;
  }
  const regions = new Map<string, number>();
  distributions.forEach((raw, i) => {
    const d: Obj = isObj(raw) ? raw : {};
    const at = `distributions[${i}]`;
    const region = str(d.region);
    if (region === undefined) {
      // the model's required check reports it
    } else if (regions.has(region)) {
      out.push({
        severity: 'error',
        rule: 'duplicate-region',
        path: `${at}.region`,
        message: `${region} is also distributions[${regions.get(region) ?? 0}]; Image Builder allows one distribution per region`,
        fix: `merge the two ${region} distributions into one`,
      });
    } else {
      regions.set(region, i);
    }
    if (region !== undefined && !isKnownRegion(region)) {
      const near = nearestRegion(region);
      out.push({
        severity: 'error',
        rule: 'unknown-region',
        path: `${at}.region`,
        message: `${unknownRegion(region)}: no partition of the AWS SDK's data names it`,
        fix: near === undefined ? 'write an AWS region name such as us-east-1' : `write "${near}"`,
      });
    }
    const ami: Obj = isObj(d.amiDistributionConfiguration) ? d.amiDistributionConfiguration : {};
    const hasOutput = [
      'amiDistributionConfiguration',
      'containerDistributionConfiguration',
      'launchTemplateConfigurations',
      's3ExportConfiguration',
      'fastLaunchConfigurations',
      'ssmParameterConfigurations',
    ].some((k) => d[k] !== undefined);
    if (!hasOutput)
      out.push({
        severity: 'error',
        rule: 'no-output',
        path: at,
        message: 'Image Builder rejects a region without outputs ("One or more outputs should be provided for each region")',
        fix: 'add an amiDistributionConfiguration, or remove the region',
      });

    const name = str(ami.name);
    if (name !== undefined) {
      // length and pattern: the model's checks (AmiNameString)
      for (const [, ref] of name.matchAll(DYNAMIC)) {
        if (!KNOWN_DYNAMIC.test(ref ?? '')) {
          out.push({
            severity: 'warning',
            rule: 'ami-name-reference',
            path: `${at}.amiDistributionConfiguration.name`,
            message: `{{${ref ?? ''}}} is not resolved in AMI names: only {{imagebuilder:buildDate}} and {{imagebuilder:buildVersion}} are`,
            fix: `replace {{${ref ?? ''}}} with text or a supported reference`,
          });
        }
      }
    }
    // account IDs, tag keys and the number of tags: the model's checks (AccountId, TagKey, TagMap)
    checkTagLimit(ami, at, out);
    const targets = strings(ami.targetAccountIds);
    const permission: Obj = isObj(ami.launchPermission) ? ami.launchPermission : {};
    if (strings(permission.userGroups).includes('all')) {
      out.push({
        severity: 'warning',
        rule: 'public-sharing',
        path: `${at}.amiDistributionConfiguration.launchPermission.userGroups`,
        message: 'userGroups ["all"] makes every AMI in this region public',
        fix: 'share with userIds, organizationArns or organizationalUnitArns instead, unless the image is meant to be public',
      });
    }
    // who holds a copy in this region: the target accounts, or the owner when none are listed; with
    // no target accounts and no known owner, an accountId can only be the owner's, which cannot be checked
    const ownerOnly = targets.length === 0;
    const holds = (account: string | undefined) =>
      account === undefined
        ? ownerOnly || (owner !== undefined && targets.includes(owner))
        : ownerOnly
          ? owner === undefined || account === owner
          : targets.includes(account);
    // an account that is known (or, with target accounts and no known owner, may be) not to be the owner
    const otherThanOwner = (account: string) => (owner === undefined ? !ownerOnly : account !== owner);

    const lts = list(d.launchTemplateConfigurations);
    if (lts.length > 5)
      out.push({
        severity: 'warning',
        rule: 'too-many-launch-templates',
        path: `${at}.launchTemplateConfigurations`,
        message: `${lts.length} launch template configurations; Image Builder documents at most five per region`,
        fix: 'keep five or fewer per region',
      });
    lts.forEach((lt, j) => {
      // launchTemplateId (required, LaunchTemplateId pattern): the model's checks
      const account = str(lt.accountId);
      if (account !== undefined && targets.length > 0 && !targets.includes(account)) {
        out.push({
          severity: 'warning',
          rule: 'launch-template-account',
          path: `${at}.launchTemplateConfigurations[${j}].accountId`,
          message: `${account} receives no copy in ${region ?? 'this region'}, so its template cannot get this AMI`,
          fix: `add ${account} to targetAccountIds, or remove the accountId`,
        });
      }
    });

    list(d.fastLaunchConfigurations).forEach((fl, j) => {
      const p = `${at}.fastLaunchConfigurations[${j}]`;
      const max = fl.maxParallelLaunches;
      // below 1 the model's range check reports it; EC2 wants 6 or more (EnableFastLaunch's MaxParallelLaunches)
      if (typeof max === 'number' && max >= 1 && max < 6)
        out.push({
          severity: 'error',
          rule: 'fast-launch-parallel',
          path: `${p}.maxParallelLaunches`,
          message: `${max}; EC2 requires 6 or more`,
          fix: 'set maxParallelLaunches to 6 or more',
        });
      const template: Obj = isObj(fl.launchTemplate) ? fl.launchTemplate : {};
      if (template.launchTemplateId !== undefined && template.launchTemplateName !== undefined) {
        out.push({
          severity: 'error',
          rule: 'fast-launch-template',
          path: `${p}.launchTemplate`,
          message: 'both launchTemplateId and launchTemplateName; EC2 accepts one',
          fix: 'keep launchTemplateName (it also works in target accounts, where ids differ)',
        });
      }
      const version = str(template.launchTemplateVersion);
      if (version === '$Latest' || version === '$Default') {
        out.push({
          severity: 'warning',
          rule: 'fast-launch-version',
          path: `${p}.launchTemplate.launchTemplateVersion`,
          message: `${version}: whoever can change the template can then pass roles to Fast Launch instances without iam:PassRole`,
          fix: 'pin a version number ("3")',
        });
      }
      const account = str(fl.accountId);
      if (account !== undefined && otherThanOwner(account) && fl.enabled === true) {
        out.push({
          severity: 'warning',
          rule: 'fast-launch-cross-account',
          path: `${p}.accountId`,
          message: `Image Builder does not enable Fast Launch in other accounts (${account}): it must be enabled from that account`,
          fix: 'deploy imagebuilder-reconciler (it enables it from that account) or enable it there by hand',
        });
      }
      if (account !== undefined && !holds(account)) {
        out.push({
          severity: 'error',
          rule: 'fast-launch-account',
          path: `${p}.accountId`,
          message: `${account} receives no copy in ${region ?? 'this region'}`,
          fix: `add ${account} to targetAccountIds`,
        });
      }
    });

    list(d.ssmParameterConfigurations).forEach((ssm, j) => {
      const account = str(ssm.amiAccountId);
      if (account !== undefined && targets.length > 0 && !targets.includes(account)) {
        out.push({
          severity: 'error',
          rule: 'ssm-account',
          path: `${at}.ssmParameterConfigurations[${j}].amiAccountId`,
          message: `${account} is not a target account of ${region ?? 'this region'} ("this account must be specified in distribution settings as a target account for the Region")`,
          fix: `add ${account} to targetAccountIds, or remove amiAccountId`,
        });
      }
    });
  });
}

/**
 * Lint a distribution configuration. `shape`: `create` for create-distribution-configuration input,
 * `update` for update input (has distributionConfigurationArn), `stored` for what Image Builder returns.
 */
function lintDistributionConfiguration(
  config: unknown,
  options: { owner?: string | undefined; shape?: 'create' | 'update' | 'stored' } = {},
): Finding[] {
  const out: Finding[] = [];
  const json = config as Json;
  if (!isObj(json))
    return [
      {
        severity: 'error',
        rule: 'wrong-type',
        path: '',
        message: 'the configuration must be a JSON object',
        fix: 'write {"name": …, "distributions": [ … ]}',
      },
    ];
  const shape = options.shape ?? (json.distributionConfigurationArn !== undefined ? 'update' : 'create');
  const schema: SchemaRef =
    shape === 'update'
      ? UpdateDistributionConfigurationRequest$
      : shape === 'stored'
        ? DistributionConfiguration$
        : CreateDistributionConfigurationRequest$;
  checkShape(json, NormalizedSchema.of(schema), '', out);
  const root =
    shape === 'update'
      ? 'UpdateDistributionConfigurationRequest'
      : shape === 'stored'
        ? 'DistributionConfiguration'
        : 'CreateDistributionConfigurationRequest';
  // the CLI and the SDK fill in clientToken
  for (const violation of validateAgainstModel(json, root, { tokensFilled: true })) out.push(modelFinding(violation));
  let owner = options.owner;
  const arn = str(json.distributionConfigurationArn) ?? str(json.arn);
  if (owner === undefined && arn !== undefined) owner = /:(\d{12}):/.exec(arn)?.[1];
  checkDistributions(json, owner, out);
  const order = { error: 0, warning: 1, info: 2 };
  return out.sort((a, b) => order[a.severity] - order[b.severity]);
}

export { lintDistributionConfiguration };
export type { Finding };
