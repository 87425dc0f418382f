import { parseDistributionConfigurationArn } from '../core/arn.ts';
import { InputError } from '../core/errors.ts';
import { quote } from '../core/input.ts';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const CLOUDTRAIL = 'AWS API Call via CloudTrail';

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
  if (event.detail.errorCode !== undefined)
    throw new InputError(`the call failed (${JSON.stringify(event.detail.errorCode)}): the configuration did not change`);
  const params = isRecord(event.detail.requestParameters) ? event.detail.requestParameters : {};
  const response = isRecord(event.detail.responseElements) ? event.detail.responseElements : {};
  return parseDistributionConfigurationArn(params.distributionConfigurationArn ?? response.distributionConfigurationArn).arn;
}

export { isRecord, toConfigChange };
