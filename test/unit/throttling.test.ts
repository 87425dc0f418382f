import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ServiceException } from '@smithy/core/client';
import { classifyCode, toFailure } from '../../src/lib/core/errors.ts';
import { THROTTLING_CODES } from '../../src/lib/core/throttling.ts';

/** An SDK exception as the clients throw it: the code in `name`, the HTTP status in `$metadata`. */
function sdkError(name: string, httpStatusCode: number): ServiceException {
  return new ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode }, message: `${name} from the service` });
}

describe('throttling codes', () => {
  it('are what the installed SDK says they are (scripts/gen-throttling-codes.mjs --check)', () => {
    expect(() => execFileSync('node', ['scripts/gen-throttling-codes.mjs', '--check'], { stdio: 'pipe' })).not.toThrow();
  });

  it.each([
    // Image Builder (GetImage, GetDistributionConfiguration, ListImagePipelineImages name both)
    ['CallRateLimitExceededException', 429],
    ['TooManyRequestsException', 429],
    // License Manager
    ['RateLimitExceededException', 429],
    // EC2 (query protocol, no modelled error shape), STS and IAM, the JSON services
    ['RequestLimitExceeded', 503],
    ['Throttling', 400],
    ['ThrottlingException', 400],
  ])('%s is reported as throttled', (code, status) => {
    expect(THROTTLING_CODES.has(code)).toBe(true);
    expect(toFailure(sdkError(code, status)).kind).toBe('throttled');
  });

  it('an unknown code answered with HTTP 429 is throttled too', () => {
    expect(toFailure(sdkError('SomeNewRateException', 429)).kind).toBe('throttled');
  });

  it('a quota of resources is not throttling: a retry does not help soon', () => {
    expect(classifyCode('ServiceQuotaExceededException')).toBe('error');
    expect(classifyCode('ResourceLimitExceededException')).toBe('error');
  });
});
