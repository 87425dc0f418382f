import { parseDistributionConfigurationArn, parseImageBuildArn } from './arn.ts';
import type { CleanupRequest } from './cleanup/cleanup.ts';
import type { CleanupSettings } from './cleanup/plan.ts';
import { InputError } from './errors.ts';
import { quote } from './input.ts';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const CLOUDTRAIL = 'AWS API Call via CloudTrail';

function guardSettings(value: unknown): Partial<CleanupSettings> {
  if (value === undefined) return {};
  if (!isRecord(value)) throw new InputError('guards must be an object');
  const out: Partial<CleanupSettings> = {};
  const known = ['strategy', 'keepTagKey', 'minAgeDays', 'shared', 'disableGraceDays'];
  const unknown = Object.keys(value).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new InputError(`unknown guard setting(s): ${unknown.join(', ')}; known: ${known.join(', ')}`);
  if (value.strategy !== undefined) {
    if (value.strategy !== 'deregister' && value.strategy !== 'disable' && value.strategy !== 'deprecate') throw new InputError('guards.strategy must be deregister, disable or deprecate');
    out.strategy = value.strategy;
  }
  if (value.keepTagKey !== undefined) {
    if (typeof value.keepTagKey !== 'string' || value.keepTagKey === '') throw new InputError('guards.keepTagKey must be a non-empty string');
    out.keepTagKey = value.keepTagKey;
  }
  for (const key of ['minAgeDays', 'disableGraceDays'] as const) {
    const n = value[key];
    if (n === undefined) continue;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new InputError(`guards.${key} must be a non-negative integer`);
    out[key] = n;
  }
  if (value.shared !== undefined) {
    if (value.shared !== 'skip' && value.shared !== 'include') throw new InputError('guards.shared must be skip or include');
    out.shared = value.shared;
  }
  return out;
}

/**
 * The manual cleanup payload: `{ "distributionConfigurationArn": "…", "mode": "plan" | "apply",
 * "imageBuildArns": ["…"], "guards": { "minAgeDays": 7, … } }`. Mode defaults to plan.
 */
function toCleanupRequest(event: unknown): CleanupRequest {
  if (!isRecord(event)) throw new InputError('the cleanup payload must be a JSON object');
  const arn = parseDistributionConfigurationArn(event.distributionConfigurationArn);
  const m = event.mode ?? 'plan';
  if (m !== 'plan' && m !== 'apply') throw new InputError(`mode must be "plan" or "apply", got ${JSON.stringify(m)}`);
  const builds = event.imageBuildArns ?? [];
  if (!Array.isArray(builds)) throw new InputError('imageBuildArns must be a list of image build version ARNs');
  return {
    distributionConfigurationArn: arn.arn,
    mode: m,
    trigger: 'manual',
    imageBuildArns: builds.map((b) => parseImageBuildArn(b).arn),
    settings: guardSettings(event.guards),
  };
}

/**
 * The distribution configuration a CloudTrail `UpdateDistributionConfiguration` event names. Throws
 * {@link InputError} for any other event.
 */
function toConfigChange(event: unknown): string {
  if (!isRecord(event) || event.source !== 'aws.imagebuilder' || event['detail-type'] !== CLOUDTRAIL || !isRecord(event.detail)) {
    throw new InputError(`expected an aws.imagebuilder "${CLOUDTRAIL}" event`);
  }
  if (event.detail.eventName !== 'UpdateDistributionConfiguration') {
    throw new InputError(`expected eventName UpdateDistributionConfiguration, got ${quote(event.detail.eventName, 80)}`);
  }
  const params = isRecord(event.detail.requestParameters) ? event.detail.requestParameters : {};
  const response = isRecord(event.detail.responseElements) ? event.detail.responseElements : {};
  return parseDistributionConfigurationArn(params.distributionConfigurationArn ?? response.distributionConfigurationArn).arn;
}

export { isRecord, toCleanupRequest, toConfigChange };
