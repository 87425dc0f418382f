import { CreateDistributionConfigurationRequest$, DistributionConfiguration$, UpdateDistributionConfigurationRequest$ } from '@aws-sdk/client-imagebuilder';
import { NormalizedSchema } from '@smithy/core/schema';
import type { SchemaRef } from '@smithy/types';

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

const AMI_NAME = /^[-_A-Za-z0-9{][-_A-Za-z0-9\s:{}.]+[-_A-Za-z0-9}]$/;
const LAUNCH_TEMPLATE_ID = /^lt-[a-z0-9-_]{17}$/;
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
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1));
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

/** Field names and types against the service model (the SDK's schema): what the SDK would silently drop. */
function checkShape(value: Json, schema: NormalizedSchema, path: string, out: Finding[]): void {
  if (schema.isStructSchema()) {
    if (!isObj(value)) {
      out.push({ severity: 'error', rule: 'wrong-type', path, message: `expected an object, got ${JSON.stringify(value)}`, fix: 'write an object with the fields the API reference lists' });
      return;
    }
    const members = new Map<string, NormalizedSchema>();
    for (const [name, member] of schema.structIterator()) members.set(name, member);
    for (const [key, child] of Object.entries(value)) {
      const member = members.get(key);
      const where = path === '' ? key : `${path}.${key}`;
      if (member === undefined) {
        const guess = suggest(key, [...members.keys()]);
        out.push({
          severity: 'error',
          rule: 'unknown-field',
          path: where,
          message: `"${key}" is not a field of ${schema.getName() ?? 'this object'}; the AWS SDK drops it silently and the AWS CLI rejects it`,
          fix: guess === undefined ? `remove it; valid fields: ${[...members.keys()].join(', ')}` : `rename it to "${guess}"`,
        });
        continue;
      }
      checkShape(child, member, where, out);
    }
    return;
  }
  if (schema.isListSchema()) {
    if (!Array.isArray(value)) {
      out.push({ severity: 'error', rule: 'wrong-type', path, message: `expected a list, got ${JSON.stringify(value)}`, fix: 'write a JSON array' });
      return;
    }
    value.forEach((item, i) => checkShape(item, schema.getValueSchema(), `${path}[${i}]`, out));
    return;
  }
  if (schema.isMapSchema()) {
    if (!isObj(value)) out.push({ severity: 'error', rule: 'wrong-type', path, message: `expected a map of strings, got ${JSON.stringify(value)}`, fix: 'write a JSON object of "key": "value" pairs' });
    return;
  }
  const expected = schema.isNumericSchema() ? 'number' : schema.isBooleanSchema() ? 'boolean' : schema.isStringSchema() ? 'string' : undefined;
  if (expected !== undefined && typeof value !== expected) {
    out.push({ severity: 'error', rule: 'wrong-type', path, message: `expected a ${expected}, got ${JSON.stringify(value)}`, fix: `write a ${expected}` });
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

/** Rules about meaning: limits, Fast Launch, sharing, accounts. */
function checkDistributions(config: Obj, owner: string | undefined, out: Finding[]): void {
  const distributions = config.distributions;
  if (!Array.isArray(distributions) || distributions.length === 0) {
    out.push({ severity: 'error', rule: 'no-distributions', path: 'distributions', message: 'no distributions', fix: 'add at least one { "region": …, "amiDistributionConfiguration": … }' });
    return;
  }
  const regions = new Map<string, number>();
  distributions.forEach((raw, i) => {
    const d: Obj = isObj(raw) ? raw : {};
    const at = `distributions[${i}]`;
    const region = str(d.region);
    if (region === undefined) {
      out.push({ severity: 'error', rule: 'missing-region', path: `${at}.region`, message: 'a distribution needs a region', fix: 'add "region": "us-east-1" (or the region meant)' });
    } else if (regions.has(region)) {
      out.push({ severity: 'error', rule: 'duplicate-region', path: `${at}.region`, message: `${region} is also distributions[${regions.get(region) ?? 0}]; Image Builder allows one distribution per region`, fix: `merge the two ${region} distributions into one` });
    } else {
      regions.set(region, i);
    }
    const ami: Obj = isObj(d.amiDistributionConfiguration) ? d.amiDistributionConfiguration : {};
    const hasOutput = ['amiDistributionConfiguration', 'containerDistributionConfiguration', 'launchTemplateConfigurations', 's3ExportConfiguration', 'fastLaunchConfigurations', 'ssmParameterConfigurations'].some((k) => d[k] !== undefined);
    if (!hasOutput) out.push({ severity: 'error', rule: 'no-output', path: at, message: 'Image Builder rejects a region without outputs ("One or more outputs should be provided for each region")', fix: 'add an amiDistributionConfiguration, or remove the region' });

    const name = str(ami.name);
    if (name !== undefined) {
      if (name.length > 127) out.push({ severity: 'error', rule: 'ami-name-length', path: `${at}.amiDistributionConfiguration.name`, message: `${name.length} characters; the service allows 127`, fix: 'shorten the name pattern' });
      if (!AMI_NAME.test(name)) {
        out.push({ severity: 'error', rule: 'ami-name-pattern', path: `${at}.amiDistributionConfiguration.name`, message: `"${name}" breaks the service's pattern ${AMI_NAME.source}`, fix: 'use letters, digits, spaces and - _ : . { } only, starting and ending with a letter, digit, - _ or a {{…}} reference' });
      }
      for (const [, ref] of name.matchAll(DYNAMIC)) {
        if (!KNOWN_DYNAMIC.test(ref ?? '')) {
          out.push({ severity: 'warning', rule: 'ami-name-reference', path: `${at}.amiDistributionConfiguration.name`, message: `{{${ref ?? ''}}} is not resolved in AMI names: only {{imagebuilder:buildDate}} and {{imagebuilder:buildVersion}} are`, fix: `replace {{${ref ?? ''}}} with text or a supported reference` });
        }
      }
    }
    const targets = strings(ami.targetAccountIds);
    targets.forEach((account, j) => {
      if (!/^\d{12}$/.test(account)) out.push({ severity: 'error', rule: 'account-id', path: `${at}.amiDistributionConfiguration.targetAccountIds[${j}]`, message: `"${account}" is not a 12-digit account ID`, fix: 'write the account ID as 12 digits, in quotes' });
    });
    const tags = isObj(ami.amiTags) ? ami.amiTags : {};
    if (Object.keys(tags).length > 50) out.push({ severity: 'error', rule: 'ami-tags-limit', path: `${at}.amiDistributionConfiguration.amiTags`, message: `${Object.keys(tags).length} tags; at most 50`, fix: 'remove tags' });
    for (const key of Object.keys(tags)) {
      if (key.toLowerCase().startsWith('aws:')) out.push({ severity: 'error', rule: 'reserved-tag', path: `${at}.amiDistributionConfiguration.amiTags.${key}`, message: 'tag keys starting with aws: are reserved', fix: 'rename the tag key' });
    }
    const permission: Obj = isObj(ami.launchPermission) ? ami.launchPermission : {};
    if (strings(permission.userGroups).includes('all')) {
      out.push({ severity: 'warning', rule: 'public-sharing', path: `${at}.amiDistributionConfiguration.launchPermission.userGroups`, message: 'userGroups ["all"] makes every AMI in this region public', fix: 'share with userIds, organizationArns or organizationalUnitArns instead, unless the image is meant to be public' });
    }
    // who holds a copy in this region: the target accounts, or the owner when none are listed
    const holders = targets.length > 0 ? targets : owner === undefined ? [] : [owner];
    const holds = (account: string | undefined) => (account === undefined ? targets.length === 0 || (owner !== undefined && targets.includes(owner)) : holders.includes(account) || (account === owner && targets.length === 0));

    const lts = list(d.launchTemplateConfigurations);
    if (lts.length > 5) out.push({ severity: 'warning', rule: 'too-many-launch-templates', path: `${at}.launchTemplateConfigurations`, message: `${lts.length} launch template configurations; Image Builder documents at most five per region`, fix: 'keep five or fewer per region' });
    lts.forEach((lt, j) => {
      const id = str(lt.launchTemplateId);
      if (id === undefined || !LAUNCH_TEMPLATE_ID.test(id)) out.push({ severity: 'error', rule: 'launch-template-id', path: `${at}.launchTemplateConfigurations[${j}].launchTemplateId`, message: `${JSON.stringify(id ?? null)} is not a launch template ID (lt- and 17 characters)`, fix: 'use the template ID (lt-…), not its name' });
      const account = str(lt.accountId);
      if (account !== undefined && targets.length > 0 && !targets.includes(account)) {
        out.push({ severity: 'warning', rule: 'launch-template-account', path: `${at}.launchTemplateConfigurations[${j}].accountId`, message: `${account} receives no copy in ${region ?? 'this region'}, so its template cannot get this AMI`, fix: `add ${account} to targetAccountIds, or remove the accountId` });
      }
    });

    list(d.fastLaunchConfigurations).forEach((fl, j) => {
      const p = `${at}.fastLaunchConfigurations[${j}]`;
      const max = fl.maxParallelLaunches;
      if (typeof max === 'number' && max < 6) out.push({ severity: 'error', rule: 'fast-launch-parallel', path: `${p}.maxParallelLaunches`, message: `${max}; EC2 requires 6 or more`, fix: 'set maxParallelLaunches to 6 or more' });
      const count = isObj(fl.snapshotConfiguration) ? fl.snapshotConfiguration.targetResourceCount : undefined;
      if (typeof count === 'number' && (count < 1 || count > 10_000)) out.push({ severity: 'error', rule: 'fast-launch-count', path: `${p}.snapshotConfiguration.targetResourceCount`, message: `${count} is out of range 1–10000`, fix: 'set targetResourceCount between 1 and 10000' });
      const template: Obj = isObj(fl.launchTemplate) ? fl.launchTemplate : {};
      if (template.launchTemplateId !== undefined && template.launchTemplateName !== undefined) {
        out.push({ severity: 'error', rule: 'fast-launch-template', path: `${p}.launchTemplate`, message: 'both launchTemplateId and launchTemplateName; EC2 accepts one', fix: 'keep launchTemplateName (it also works in target accounts, where ids differ)' });
      }
      const version = str(template.launchTemplateVersion);
      if (version === '$Latest' || version === '$Default') {
        out.push({ severity: 'warning', rule: 'fast-launch-version', path: `${p}.launchTemplate.launchTemplateVersion`, message: `${version}: whoever can change the template can then pass roles to Fast Launch instances without iam:PassRole`, fix: 'pin a version number ("3")' });
      }
      const account = str(fl.accountId);
      if (account !== undefined && account !== owner && fl.enabled === true) {
        out.push({ severity: 'warning', rule: 'fast-launch-cross-account', path: `${p}.accountId`, message: `Image Builder does not enable Fast Launch in other accounts (${account}): it must be enabled from that account`, fix: 'deploy imagebuilder-reconciler (it enables it from that account) or enable it there by hand' });
      }
      if (account !== undefined && !holds(account)) {
        out.push({ severity: 'error', rule: 'fast-launch-account', path: `${p}.accountId`, message: `${account} receives no copy in ${region ?? 'this region'}`, fix: `add ${account} to targetAccountIds` });
      }
    });

    list(d.ssmParameterConfigurations).forEach((ssm, j) => {
      const account = str(ssm.amiAccountId);
      if (account !== undefined && targets.length > 0 && !targets.includes(account)) {
        out.push({ severity: 'error', rule: 'ssm-account', path: `${at}.ssmParameterConfigurations[${j}].amiAccountId`, message: `${account} is not a target account of ${region ?? 'this region'} ("this account must be specified in distribution settings as a target account for the Region")`, fix: `add ${account} to targetAccountIds, or remove amiAccountId` });
      }
      const name2 = str(ssm.parameterName);
      if (name2 === undefined) out.push({ severity: 'error', rule: 'ssm-name', path: `${at}.ssmParameterConfigurations[${j}].parameterName`, message: 'parameterName is required', fix: 'add "parameterName": "/images/latest"' });
    });

    const s3 = isObj(d.s3ExportConfiguration) ? d.s3ExportConfiguration : undefined;
    const format = str(s3?.diskImageFormat);
    if (s3 !== undefined && format !== undefined && !['VMDK', 'RAW', 'VHD'].includes(format)) {
      out.push({ severity: 'error', rule: 's3-export-format', path: `${at}.s3ExportConfiguration.diskImageFormat`, message: `"${format}" is not a disk image format`, fix: 'use VMDK, RAW or VHD' });
    }
  });
}

/**
 * Lint a distribution configuration. `shape`: `create` for create-distribution-configuration input,
 * `update` for update input (has distributionConfigurationArn), `stored` for what Image Builder returns.
 */
function lintDistributionConfiguration(config: unknown, options: { owner?: string | undefined; shape?: 'create' | 'update' | 'stored' } = {}): Finding[] {
  const out: Finding[] = [];
  const json = config as Json;
  if (!isObj(json)) return [{ severity: 'error', rule: 'wrong-type', path: '', message: 'the configuration must be a JSON object', fix: 'write {"name": …, "distributions": [ … ]}' }];
  const shape = options.shape ?? (json.distributionConfigurationArn !== undefined ? 'update' : 'create');
  const schema: SchemaRef = shape === 'update' ? UpdateDistributionConfigurationRequest$ : shape === 'stored' ? DistributionConfiguration$ : CreateDistributionConfigurationRequest$;
  checkShape(json, NormalizedSchema.of(schema), '', out);
  if (shape === 'create' && str(json.name) === undefined) out.push({ severity: 'error', rule: 'missing-name', path: 'name', message: 'name is required', fix: 'add "name": "my-distribution"' });
  let owner = options.owner;
  const arn = str(json.distributionConfigurationArn) ?? str(json.arn);
  if (owner === undefined && arn !== undefined) owner = /:(\d{12}):/.exec(arn)?.[1];
  checkDistributions(json, owner, out);
  const order = { error: 0, warning: 1, info: 2 };
  return out.sort((a, b) => order[a.severity] - order[b.severity]);
}

export { lintDistributionConfiguration };
export type { Finding };
