/**
 * Why the command line could not talk to AWS, in one line with what to do about it.
 *
 * The reconciler's library records AWS failures as data (a cell that cannot be read is `pending` or `failed`),
 * which is right for a Lambda function that will run again. On the command line the same failures, when they
 * come from the caller's own setup (an endpoint that refuses connections, no credentials, an expired token,
 * credentials that may not make the first call), are not a state of the image: they are the reason nothing
 * could be looked at. {@link diagnose} recognises them anywhere in an error's cause chain.
 */
import { ReconcilerError, type Failure } from '../lib/core/errors.ts';

/** Where the CLI was pointed: what the one line names. */
interface Target {
  endpoint: string | undefined;
  profile: string | undefined;
  region: string;
}

type Cause = 'unreachable' | 'no-credentials' | 'expired' | 'rejected-credentials' | 'access-denied';

interface Diagnosis {
  cause: Cause;
  /** One line: the cause, then what to do. */
  message: string;
}

/** Network failures of the HTTP client (Node's system error codes, the SDK's timeout names). */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'TimeoutError',
  'RequestTimeout',
]);
/** STS and service answers for credentials past their expiry (STS error reference; EC2 error codes). */
const EXPIRED_CODES = new Set(['ExpiredToken', 'ExpiredTokenException', 'RequestExpired', 'TokenRefreshRequired']);
/** Keys AWS does not know or signatures it cannot verify. */
const REJECTED_CODES = new Set([
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'SignatureDoesNotMatch',
  'AuthFailure',
  'InvalidAccessKeyId',
  'IncompleteSignature',
]);
const DENIED_CODES = new Set(['AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation', 'Forbidden', 'ForbiddenException']);

interface Link {
  name: string;
  code: string | undefined;
  message: string;
}

/** The error and its causes, outermost first (also the errors of an AggregateError, as Node's dual-stack connect throws). */
function chain(value: unknown): Link[] {
  const links: Link[] = [];
  const seen = new Set<unknown>();
  const visit = (v: unknown, depth: number): void => {
    if (v === undefined || v === null || seen.has(v) || depth > 8) return;
    seen.add(v);
    if (v instanceof Error) {
      const record = v as Error & { code?: unknown; Code?: unknown };
      const code =
        typeof record.Code === 'string'
          ? record.Code
          : typeof record.code === 'string'
            ? record.code
            : v instanceof ReconcilerError
              ? v.code
              : undefined;
      links.push({ name: v.name, code, message: v.message });
      if (v instanceof AggregateError) for (const inner of v.errors) visit(inner, depth + 1);
      visit(v.cause, depth + 1);
    } else if (typeof v === 'object' && 'code' in v && 'message' in v) {
      const failure = v as Failure;
      links.push({ name: failure.code, code: failure.code, message: failure.message });
    }
  };
  visit(value, 0);
  return links;
}

function codesOf(links: Link[]): string[] {
  return links.flatMap((l) => [l.code, l.name]).filter((x): x is string => x !== undefined);
}

function hostOf(endpoint: string): string {
  try {
    return new URL(endpoint).host;
  } catch {
    return endpoint;
  }
}

function profileHint(target: Target): string {
  return target.profile === undefined ? '' : ` of profile "${target.profile}"`;
}

/**
 * The one line for an error that comes from the caller's setup, or undefined when the error is something else.
 * @param error anything thrown, or a report's {@link Failure}
 * @param operation the call that failed, when known (for access denied)
 */
function diagnose(error: unknown, target: Target, operation?: string): Diagnosis | undefined {
  const links = chain(error);
  const codes = codesOf(links);
  const network = codes.find((code) => NETWORK_CODES.has(code));
  if (network !== undefined) {
    const what =
      network === 'ECONNREFUSED'
        ? 'connection refused'
        : network === 'ENOTFOUND' || network === 'EAI_AGAIN'
          ? 'host not found'
          : network === 'ECONNRESET' || network === 'EPIPE'
            ? 'connection reset'
            : 'no answer (timed out)';
    if (target.endpoint !== undefined) {
      const sandbox = /^(127\.|localhost|\[::1\])/.test(hostOf(target.endpoint)) ? ' Is the sandbox running (npm run sandbox)?' : '';
      return {
        cause: 'unreachable',
        message: `cannot reach ${target.endpoint}: ${what}.${sandbox} Check --endpoint-url (or AWS_ENDPOINT_URL).`,
      };
    }
    return {
      cause: 'unreachable',
      message: `cannot reach AWS in ${target.region}: ${what}. Check the network, a proxy (HTTPS_PROXY) or --region.`,
    };
  }
  if (links.some((l) => l.name === 'CredentialsProviderError' || l.name === 'ProviderError')) {
    if (target.profile !== undefined) {
      const detail = links.find((l) => l.name === 'CredentialsProviderError')?.message ?? '';
      return {
        cause: 'no-credentials',
        message: `no AWS credentials for profile "${target.profile}": ${detail.replace(/\.$/, '')}. Log in (aws sso login --profile ${target.profile}) or fix the profile in ~/.aws/config.`,
      };
    }
    return {
      cause: 'no-credentials',
      message:
        'no AWS credentials found: pass --profile (or set AWS_PROFILE), or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (for the sandbox: AWS_ACCESS_KEY_ID=111111111111 AWS_SECRET_ACCESS_KEY=sandbox).',
    };
  }
  const expired = codes.find((code) => EXPIRED_CODES.has(code));
  if (expired !== undefined) {
    const how =
      target.profile === undefined
        ? 'get new session credentials'
        : `aws sso login --profile ${target.profile}, or new session credentials`;
    return { cause: 'expired', message: `the AWS credentials${profileHint(target)} have expired (${expired}): ${how}, then run again.` };
  }
  const rejected = codes.find((code) => REJECTED_CODES.has(code));
  if (rejected !== undefined) {
    return {
      cause: 'rejected-credentials',
      message: `AWS does not accept the credentials${profileHint(target)} (${rejected}): check the access key and secret, or pick another --profile.`,
    };
  }
  const denied = codes.find((code) => DENIED_CODES.has(code));
  if (denied !== undefined) {
    const call = operation === undefined ? 'the first call' : operation;
    return {
      cause: 'access-denied',
      message: `access denied to ${call} (${denied}): the credentials${profileHint(target)} need that permission; use a role or --profile that has it.`,
    };
  }
  return undefined;
}

/**
 * One line for any other error: the code once (never `Error: Error:` or `EADDRINUSE: listen EADDRINUSE`),
 * then the message.
 */
function oneLine(failure: Failure): string {
  const message = failure.message.split('\n')[0] ?? '';
  if (failure.code === '' || failure.code === 'Error' || failure.code === failure.kind || message.includes(failure.code)) return message;
  return `${failure.code}: ${message}`;
}

export { diagnose, oneLine };
export type { Cause, Diagnosis, Target };
