import { parseDistributionConfigurationArn, parseImageBuildArn } from './arn.ts';
import type { CleanupRequest } from './cleanup/cleanup.ts';
import type { CleanupSettings } from './cleanup/plan.ts';
import { InputError } from './errors.ts';
import type { ReconcileRequest } from './reconcile/reconcile.ts';

/** The detail-type of Image Builder's state-change event. */
const IMAGE_STATE_CHANGE = 'EC2 Image Builder Image State Change';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mode(value: unknown, where: string): 'apply' | 'plan' | undefined {
  if (value === undefined) return undefined;
  if (value === 'apply' || value === 'plan') return value;
  throw new InputError(`${where}: mode must be "apply" or "plan", got ${JSON.stringify(value)}`);
}

/**
 * Narrow what the reconcile function receives: an `EC2 Image Builder Image State Change` event (the
 * image build ARN is in `resources[0]`; the event carries no AMI IDs) or a manual payload
 * `{ "imageBuildVersionArn": "…", "mode": "plan" }`. Throws {@link InputError} naming what is wrong.
 */
function toReconcileRequest(event: unknown): ReconcileRequest {
  if (!isRecord(event)) throw new InputError('the event must be a JSON object');
  if ('detail-type' in event || 'source' in event) {
    if (event.source !== 'aws.imagebuilder' || event['detail-type'] !== IMAGE_STATE_CHANGE) {
      throw new InputError(
        `unsupported event: source ${JSON.stringify(event.source)}, detail-type ${JSON.stringify(event['detail-type'])}; expected aws.imagebuilder "${IMAGE_STATE_CHANGE}"`,
      );
    }
    const resources = event.resources;
    if (!Array.isArray(resources) || resources.length === 0) {
      throw new InputError('the Image State Change event has no resources; resources[0] must be the image build version ARN');
    }
    const arn = parseImageBuildArn(resources[0]);
    return { imageBuildVersionArn: arn.arn, trigger: 'eventbridge' };
  }
  if ('imageBuildVersionArn' in event) {
    const arn = parseImageBuildArn(event.imageBuildVersionArn);
    return { imageBuildVersionArn: arn.arn, trigger: 'manual', mode: mode(event.mode, 'manual payload') };
  }
  throw new InputError('unrecognised event: expected an Image Builder "Image State Change" event or {"imageBuildVersionArn": "…"}');
}

/** The status in an Image State Change event, if it is one (for logging). */
function eventStatus(event: unknown): string | undefined {
  if (!isRecord(event) || !isRecord(event.detail) || !isRecord(event.detail.state)) return undefined;
  const status = event.detail.state.status;
  return typeof status === 'string' ? status : undefined;
}

/** Parse a recheck queue message body. Throws {@link InputError}. */
function toRecheckRequest(body: string): ReconcileRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error: unknown) {
    throw new InputError('the recheck message is not JSON', { cause: error });
  }
  if (!isRecord(parsed)) throw new InputError('the recheck message must be a JSON object');
  const arn = parseImageBuildArn(parsed.imageBuildVersionArn);
  const attempt = parsed.attempt;
  if (typeof attempt !== 'number' || !Number.isInteger(attempt) || attempt < 1) {
    throw new InputError(`the recheck message needs a positive integer attempt, got ${JSON.stringify(attempt)}`);
  }
  const firstSeenAt = parsed.firstSeenAt;
  if (typeof firstSeenAt !== 'string' || Number.isNaN(Date.parse(firstSeenAt))) {
    throw new InputError(`the recheck message needs firstSeenAt as an ISO 8601 time, got ${JSON.stringify(firstSeenAt)}`);
  }
  const retries: Record<string, number> = {};
  if (isRecord(parsed.fastLaunchRetries)) {
    for (const [key, value] of Object.entries(parsed.fastLaunchRetries)) if (typeof value === 'number') retries[key] = value;
  }
  return {
    imageBuildVersionArn: arn.arn,
    trigger: 'sqs',
    attempt,
    firstSeenAt,
    mode: mode(parsed.mode, 'recheck message'),
    fastLaunchRetries: retries,
  };
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
    throw new InputError(`expected eventName UpdateDistributionConfiguration, got ${JSON.stringify(event.detail.eventName)}`);
  }
  if (event.detail.errorCode !== undefined) throw new InputError(`the call failed (${JSON.stringify(event.detail.errorCode)}): the configuration did not change`);
  const params = isRecord(event.detail.requestParameters) ? event.detail.requestParameters : {};
  const response = isRecord(event.detail.responseElements) ? event.detail.responseElements : {};
  return parseDistributionConfigurationArn(params.distributionConfigurationArn ?? response.distributionConfigurationArn).arn;
}

export { IMAGE_STATE_CHANGE, eventStatus, isRecord, toCleanupRequest, toConfigChange, toReconcileRequest, toRecheckRequest };
