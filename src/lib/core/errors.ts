/**
 * Typed errors for the reconciler. Every error carries a `kind` that decides what happens next:
 *
 * - `input`: the request itself is wrong (malformed event, ARN of the wrong shape). Never retried.
 * - `access-denied`: a role is missing or does not allow the call. Recorded for that account; not retried.
 * - `throttled`: the SDK's adaptive retry gave up. Retryable on a later run.
 * - `not-found`: the resource does not exist (yet). Often eventual consistency; retryable.
 * - `invalid`: AWS rejected the parameters. Not retried.
 * - `unavailable`: the service or call is not available in that region/account.
 * - `error`: anything else.
 *
 * SDK exceptions are converted at the adapter boundary with {@link toFailure}; callers never see SDK types.
 */
import { isThrottlingCode } from './throttling.ts';

type FailureKind = 'input' | 'access-denied' | 'throttled' | 'not-found' | 'invalid' | 'unavailable' | 'error';

/** A failure as it appears in a report: plain data, JSON-safe. */
interface Failure {
  kind: FailureKind;
  code: string;
  message: string;
}

class ReconcilerError extends Error {
  readonly kind: FailureKind;
  readonly code: string;

  constructor(message: string, options: { kind: FailureKind; code?: string; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ReconcilerError';
    this.kind = options.kind;
    this.code = options.code ?? options.kind;
  }
}

/** The request itself is wrong: a malformed event, an ARN of the wrong shape, a bad option. */
class InputError extends ReconcilerError {
  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
    super(message, { kind: 'input', code: options.code ?? 'InvalidInput', cause: options.cause });
    this.name = 'InputError';
  }
}

/** Invalid configuration (environment variables, settings). */
class ConfigError extends ReconcilerError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { kind: 'input', code: 'InvalidConfiguration', cause: options.cause });
    this.name = 'ConfigError';
  }
}

/** sts:AssumeRole into a target account failed. */
class AssumeRoleError extends ReconcilerError {
  readonly accountId: string;
  readonly roleArn: string;

  constructor(accountId: string, roleArn: string, cause: unknown) {
    const inner = toFailure(cause);
    super(`cannot assume ${roleArn} in account ${accountId}: ${inner.code}: ${inner.message}`, {
      kind: inner.kind === 'throttled' ? 'throttled' : 'access-denied',
      code: inner.code,
      cause,
    });
    this.name = 'AssumeRoleError';
    this.accountId = accountId;
    this.roleArn = roleArn;
  }
}

/**
 * An account outside the deployment's allow-list of target accounts: its role is never assumed, and its
 * cells are skipped with this as the reason.
 */
class NotATargetAccountError extends ReconcilerError {
  readonly accountId: string;

  constructor(accountId: string) {
    super(`account ${accountId} is not one of the deployment's targetAccounts (RECONCILER_TARGET_ACCOUNTS): its role is not assumed`, {
      kind: 'access-denied',
      code: NOT_A_TARGET_ACCOUNT,
    });
    this.name = 'NotATargetAccountError';
    this.accountId = accountId;
  }
}

/** The code of {@link NotATargetAccountError}, as a report's failure carries it. */
const NOT_A_TARGET_ACCOUNT = 'NotATargetAccount';

/** An AWS call failed; wraps the SDK error with the call and where it was made. */
class AwsCallError extends ReconcilerError {
  readonly operation: string;
  readonly accountId: string;
  readonly region: string;

  constructor(operation: string, accountId: string, region: string, cause: unknown) {
    const inner = toFailure(cause);
    super(`${operation} in ${accountId}/${region} failed: ${inner.code}: ${inner.message}`, {
      kind: inner.kind,
      code: inner.code,
      cause,
    });
    this.name = 'AwsCallError';
    this.operation = operation;
    this.accountId = accountId;
    this.region = region;
  }
}

/** Narrow an unknown thrown value to an Error (wrapping anything else). */
function asError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : JSON.stringify(value));
}

const ACCESS_CODES = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'AuthFailure',
  'InvalidClientTokenId',
  'ExpiredToken',
  'ExpiredTokenException',
  'OptInRequired',
  'UnrecognizedClientException',
  'ForbiddenException',
]);
const INVALID_CODES = new Set([
  'InvalidParameterValue',
  'InvalidParameterValueException',
  'InvalidParameter',
  'InvalidParameterCombination',
  'InvalidRequest',
  'InvalidRequestException',
  'ValidationException',
  'ValidationError',
  'MissingParameter',
  'IncorrectState',
  'IdempotentParameterMismatch',
]);

function classifyCode(code: string, httpStatusCode?: number): FailureKind {
  if (ACCESS_CODES.has(code)) return 'access-denied';
  // one set for the report and for the client factory's limiter (src/lib/core/throttling.ts, from the SDK)
  if (isThrottlingCode(code, httpStatusCode)) return 'throttled';
  if (code.endsWith('NotFound') || code.endsWith('NotFoundException') || code === 'ParameterNotFound') return 'not-found';
  if (INVALID_CODES.has(code) || code.startsWith('InvalidParameter') || code.endsWith('.Malformed')) return 'invalid';
  if (code === 'UnknownEndpoint' || code === 'UnsupportedOperation' || code === 'ServiceUnavailableException') {
    return 'unavailable';
  }
  return 'error';
}

/**
 * Convert anything thrown (SDK exception, our own error, a string) into a report-safe {@link Failure}.
 * SDK v3 exceptions carry the AWS error code in `name` (and `Code` for EC2 query errors).
 */
function toFailure(value: unknown): Failure {
  if (value instanceof ReconcilerError) return { kind: value.kind, code: value.code, message: value.message };
  const error = asError(value);
  const record = error as Error & { Code?: unknown; code?: unknown; $metadata?: { httpStatusCode?: unknown } };
  const code = typeof record.Code === 'string' ? record.Code : typeof record.code === 'string' ? record.code : error.name;
  const status = typeof record.$metadata?.httpStatusCode === 'number' ? record.$metadata.httpStatusCode : undefined;
  const kind = error.name === 'CredentialsProviderError' ? 'access-denied' : classifyCode(code, status);
  return { kind, code, message: error.message };
}

/**
 * The IAM action an access-denied message names. AWS's refusals say "User: <principal> is not authorized to
 * perform: <action> on resource: <resource> …" (IAM User Guide, "Troubleshoot access denied error messages"),
 * EC2's inside its UnauthorizedOperation text, before the encoded message.
 */
function deniedAction(message: string): string | undefined {
  return /not authorized to perform:? ([a-z0-9-]+:[A-Za-z0-9*]+)/.exec(message)?.[1];
}

/** A failure in a few words, for a reason or a note: its code, and the action IAM denied when it names one. */
function briefFailure(failure: Failure): string {
  const action = failure.kind === 'access-denied' ? deniedAction(failure.message) : undefined;
  return action === undefined ? failure.code : `${failure.code}: not authorized to perform: ${action}`;
}

export {
  AssumeRoleError,
  NOT_A_TARGET_ACCOUNT,
  NotATargetAccountError,
  AwsCallError,
  ConfigError,
  InputError,
  ReconcilerError,
  asError,
  briefFailure,
  classifyCode,
  deniedAction,
  toFailure,
};
export type { Failure, FailureKind };
