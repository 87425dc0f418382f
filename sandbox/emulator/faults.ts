import type { SandboxClock } from './clock.ts';
import { AwsError } from './protocol/errors.ts';
import { MODEL_THROTTLING } from './throttling-codes.ts';

/**
 * Faults the sandbox injects, set by scenario files and the control API (`POST /_sandbox/faults`).
 * Matching fields left out match everything.
 */
interface ErrorFault {
  /** The service (`ec2`, `ssm`, …); any when left out. */
  service?: string;
  operation?: string;
  account?: string;
  region?: string;
  code: string;
  message?: string;
  status?: number;
  /** How many times it fires; unlimited when left out. */
  count?: number;
  /** Fire on every n-th matching call only (1 in n, deterministic): `every: 10` throttles 10 %. */
  every?: number;
}

/**
 * Hold a matching call before it runs until the test releases it ({@link Faults.release}), so that a test
 * can force one interleaving of concurrent runs instead of hoping for it. Fires `count` times (default 1).
 */
interface PauseFault {
  operation: string;
  account?: string;
  region?: string;
  count?: number;
}

/** A call held by a {@link PauseFault}. */
interface HeldCall {
  operation: string;
  account: string;
  region: string;
}

interface LatencyFault {
  operation?: string;
  account?: string;
  region?: string;
  ms: number;
}

/**
 * Token buckets per (account, region, kind of call), like EC2's request rate limits: "Amazon EC2 throttles
 * EC2 API requests for each AWS account on a per-Region basis", with a token bucket per category of action
 * (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/throttling.html).
 */
interface ThrottleFault {
  service?: string;
  account?: string;
  region?: string;
  /** Operation name prefix ("Describe" for reads, or a full name). */
  operationPrefix?: string;
  /** Operations that share this bucket (e.g. EC2's mutating actions); with a prefix, both must match. */
  operations?: string[];
  /** Names the bucket, so that two rules with the same prefix keep apart buckets. */
  bucket?: string;
  /** Bucket size. */
  burst: number;
  /** Tokens refilled per second (real time). */
  ratePerSecond: number;
  /**
   * The throttling error to answer where the operation's model lists more than one (Image Builder's
   * DistributeImage lists both CallRateLimitExceededException and TooManyRequestsException): one the service's
   * model declares (with `service`); an operation that does not list it gets its default. Default: see
   * {@link throttleError}.
   */
  code?: string;
}

interface FaultSettings {
  errors?: ErrorFault[];
  latency?: LatencyFault[];
  throttles?: ThrottleFault[];
  /** `account/region` cells whose AMI copy fails during Image Builder distribution. */
  failedCopies?: string[];
  /** Reads of a new AMI that miss it (eventual consistency), per account. */
  invisibleReads?: number;
  /** AMIs (or `account/region` cells) whose Fast Launch enabling fails. */
  fastLaunchFailures?: string[];
  /** AMIs (or `account/region` cells) that SSM's asynchronous validation of an `aws:ec2:image` value rejects. */
  ssmImageValidationFailures?: string[];
  /** EventBridge deliveries held back: events whose resources start with `resourcePrefix` arrive `seconds` late. */
  eventDelays?: { resourcePrefix: string; seconds: number }[];
  pauses?: PauseFault[];
  /**
   * Deliver everything twice: each EventBridge event (rule targets, schedules) and each SQS message.
   * EventBridge delivers "at least once" (EventBridge User Guide, "Amazon EventBridge event retry policy
   * and using dead-letter queues": "your target might receive the same event more than once"), and a
   * standard queue "might deliver a copy of a message more than once" (SQS Developer Guide, "At-least-once
   * delivery"). `sequential`: the second delivery starts when the first has finished; `concurrent`: both at
   * once. A second copy of an SQS message that its function reports as failed stays in the queue, like any
   * copy, and is received again after the visibility timeout. Default `off`.
   */
  duplicateDeliveries?: DuplicateDeliveries;
}

type DuplicateDeliveries = 'off' | 'sequential' | 'concurrent';

function matches(rule: { operation?: string; account?: string; region?: string }, op: string, account: string, region: string): boolean {
  return (
    (rule.operation === undefined || rule.operation === op) &&
    (rule.account === undefined || rule.account === account) &&
    (rule.region === undefined || rule.region === region)
  );
}

class Faults {
  settings: Required<FaultSettings>;
  private buckets = new Map<string, { tokens: number; at: number }>();
  private seen = new Map<ErrorFault, number>();
  private holding: (HeldCall & { release: () => void })[] = [];

  constructor(settings: FaultSettings = {}) {
    this.settings = Faults.normalize(settings);
  }

  static normalize(settings: FaultSettings): Required<FaultSettings> {
    return {
      errors: settings.errors ?? [],
      latency: settings.latency ?? [],
      throttles: (settings.throttles ?? []).map(checkedThrottle),
      failedCopies: settings.failedCopies ?? [],
      invisibleReads: settings.invisibleReads ?? 0,
      fastLaunchFailures: settings.fastLaunchFailures ?? [],
      ssmImageValidationFailures: settings.ssmImageValidationFailures ?? [],
      eventDelays: settings.eventDelays ?? [],
      pauses: (settings.pauses ?? []).map((p) => ({ ...p })),
      duplicateDeliveries: settings.duplicateDeliveries ?? 'off',
    };
  }

  set(settings: FaultSettings): void {
    this.settings = Faults.normalize(settings);
    this.buckets.clear();
    this.seen.clear();
  }

  merge(settings: FaultSettings): void {
    const n = Faults.normalize(settings);
    this.settings = {
      errors: [...this.settings.errors, ...n.errors],
      latency: [...this.settings.latency, ...n.latency],
      throttles: [...this.settings.throttles, ...n.throttles],
      failedCopies: [...this.settings.failedCopies, ...n.failedCopies],
      invisibleReads: settings.invisibleReads ?? this.settings.invisibleReads,
      fastLaunchFailures: [...this.settings.fastLaunchFailures, ...n.fastLaunchFailures],
      ssmImageValidationFailures: [...this.settings.ssmImageValidationFailures, ...n.ssmImageValidationFailures],
      eventDelays: [...this.settings.eventDelays, ...n.eventDelays],
      pauses: [...this.settings.pauses, ...n.pauses],
      duplicateDeliveries: settings.duplicateDeliveries ?? this.settings.duplicateDeliveries,
    };
  }

  /** The calls held by pauses right now, oldest first. */
  held(): HeldCall[] {
    return this.holding.map(({ operation, account, region }) => ({ operation, account, region }));
  }

  /** Let held calls go on (those of `operation`, or all); returns how many were released. */
  release(operation?: string): number {
    const go = this.holding.filter((h) => operation === undefined || h.operation === operation);
    this.holding = this.holding.filter((h) => !go.includes(h));
    for (const h of go) h.release();
    return go.length;
  }

  /** Apply latency, throttling and injected errors before an operation runs. Throws {@link AwsError}. */
  async before(service: string, op: string, account: string, region: string, clock: SandboxClock): Promise<void> {
    const pause = this.settings.pauses.find((p) => matches(p, op, account, region) && (p.count ?? 1) > 0);
    if (pause !== undefined) {
      pause.count = (pause.count ?? 1) - 1;
      await new Promise<void>((release) => this.holding.push({ operation: op, account, region, release }));
    }
    const delay = this.settings.latency.filter((l) => matches(l, op, account, region)).reduce((sum, l) => sum + l.ms, 0);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, clock.realMs(delay)));
    for (const throttle of this.settings.throttles) {
      if (throttle.service !== undefined && throttle.service !== service) continue;
      if (throttle.account !== undefined && throttle.account !== account) continue;
      if (throttle.region !== undefined && throttle.region !== region) continue;
      if (throttle.operationPrefix !== undefined && !op.startsWith(throttle.operationPrefix)) continue;
      if (throttle.operations !== undefined && !throttle.operations.includes(op)) continue;
      const key = `${service}/${account}/${region}/${throttle.bucket ?? throttle.operationPrefix ?? '*'}`;
      const now = Date.now();
      const bucket = this.buckets.get(key) ?? { tokens: throttle.burst, at: now };
      bucket.tokens = Math.min(throttle.burst, bucket.tokens + ((now - bucket.at) / 1000) * throttle.ratePerSecond);
      bucket.at = now;
      this.buckets.set(key, bucket);
      if (bucket.tokens < 1) throw throttleError(service, op, throttle.code);
      bucket.tokens -= 1;
    }
    const error = this.settings.errors.find((e) => {
      if (!matches(e, op, account, region) || (e.service !== undefined && e.service !== service) || (e.count !== undefined && e.count <= 0))
        return false;
      if (e.every === undefined) return true;
      const n = (this.seen.get(e) ?? 0) + 1;
      this.seen.set(e, n);
      return n % e.every === 0;
    });
    if (error !== undefined) {
      if (error.count !== undefined) error.count -= 1;
      throw new AwsError(error.code, error.message ?? `${error.code} (injected by the sandbox)`, error.status ?? 400);
    }
  }

  /** Simulated milliseconds an event delivery is held back (0: on time). */
  eventDelayMs(resources: string[]): number {
    const delay = this.settings.eventDelays.find((d) => resources.some((r) => r.startsWith(d.resourcePrefix)));
    return (delay?.seconds ?? 0) * 1000;
  }

  copyFails(account: string, region: string): boolean {
    return this.settings.failedCopies.includes(`${account}/${region}`);
  }

  ssmImageValidationFails(imageId: string, account: string, region: string): boolean {
    return (
      this.settings.ssmImageValidationFailures.includes(imageId) ||
      this.settings.ssmImageValidationFailures.includes(`${account}/${region}`)
    );
  }

  fastLaunchFails(imageId: string, account: string, region: string): boolean {
    return this.settings.fastLaunchFailures.includes(imageId) || this.settings.fastLaunchFailures.includes(`${account}/${region}`);
  }
}

/**
 * What a service answers a caller going too fast, from the service models the SDK ships
 * (throttling-codes.ts, generated by scripts/gen-throttling-codes.mjs): the rate-limit error the operation
 * lists, with the model's HTTP status (Image Builder `CallRateLimitExceededException` 429, License Manager
 * `RateLimitExceededException` 429, Organizations `TooManyRequestsException` 429, SQS `RequestThrottled` 403,
 * DynamoDB and SSM `ThrottlingException` 400). Of several, `code` picks one; else one with HTTP 429, else
 * `ThrottlingException`, else the first listed. An operation whose model lists none gets the service's
 * common error: EC2 `RequestLimitExceeded` 503 ("The maximum request rate permitted by the Amazon EC2 APIs
 * has been exceeded", https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html, a server
 * error), the query services (STS, IAM, Auto Scaling) `Throttling` 400, S3 `SlowDown` 503
 * (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html), the JSON services
 * `ThrottlingException` 400 ("The request was denied due to request throttling", each API Reference's Common
 * Errors page).
 */
function throttleError(service: string, op: string, code?: string): AwsError {
  const model = MODEL_THROTTLING[service];
  const listed = model?.operations[op] ?? [];
  const chosen =
    (code !== undefined && listed.includes(code) ? code : undefined) ??
    listed.find((c) => model?.errors[c] === 429) ??
    listed.find((c) => c === 'ThrottlingException') ??
    listed[0];
  if (chosen !== undefined) return new AwsError(chosen, 'Rate exceeded', model?.errors[chosen] ?? 400);
  if (service === 'ec2') return new AwsError('RequestLimitExceeded', 'Request limit exceeded.', 503);
  if (service === 's3') return new AwsError('SlowDown', 'Please reduce your request rate.', 503);
  if (service === 'sts' || service === 'iam' || service === 'autoscaling') return new AwsError('Throttling', 'Rate exceeded', 400);
  return new AwsError('ThrottlingException', 'Rate exceeded', 400);
}

/** A throttle whose `code` is a rate-limit error its service's model declares (else the fault is refused). */
function checkedThrottle(throttle: ThrottleFault): ThrottleFault {
  if (throttle.code === undefined) return throttle;
  const declared = Object.keys(MODEL_THROTTLING[throttle.service ?? '']?.errors ?? {});
  if (!declared.includes(throttle.code))
    throw new AwsError(
      'InvalidFault',
      `throttle code ${throttle.code}: the model of ${throttle.service ?? '(no service)'} declares ${declared.length === 0 ? 'no rate-limit error' : declared.join(', ')}`,
    );
  return throttle;
}

export { Faults };
export type { DuplicateDeliveries, ErrorFault, FaultSettings, HeldCall, LatencyFault, PauseFault, ThrottleFault };
