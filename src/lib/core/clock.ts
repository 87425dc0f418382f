/**
 * Time: the machine's clock, and AWS's.
 *
 * Cleanup's guards measure ages (minimum age, last launch, grace) against AWS's clock, never the local one
 * alone: a laptop eight days ahead must not make a few-hours-old AMI look old. The SDK corrects its own clock
 * skew for signing (it moves `systemClockOffset` once a response's `Date` header differs by five minutes or
 * more: @aws-sdk/core's AwsSdkSigV4Signer and getUpdatedSystemClockOffset), so requests succeed against AWS
 * whatever the local clock says; the client factory therefore reads the `Date` header of every response
 * itself ({@link ServiceClock}) and cleanup compares it with the local clock.
 */

/**
 * The most the local clock may differ from AWS's before cleanup refuses to apply: the SDK's own threshold for
 * a skewed clock (five minutes). Plan still runs, with ages on AWS's clock.
 */
const MAX_CLOCK_SKEW_MS = 5 * 60_000;

/**
 * Where the machine's clock can be replaced: a function in `globalThis` under this symbol. Only the local
 * sandbox sets it, to its own clock, for the functions and the command line it runs in-process (as Lambda's
 * clock follows AWS's, through the Amazon Time Sync Service): the bundles it loads are separate module
 * instances and share only the process's globals.
 */
const LOCAL_CLOCK = Symbol.for('imagebuilder-reconciler.local-clock');

/** The machine's clock, in epoch milliseconds. */
function localNow(): number {
  const clock = (globalThis as Record<symbol, unknown>)[LOCAL_CLOCK];
  return typeof clock === 'function' ? Number(clock()) : Date.now();
}

/** Whether the machine's clock is replaced (only the sandbox does it, for what it runs in-process). */
function localClockReplaced(): boolean {
  return typeof (globalThis as Record<symbol, unknown>)[LOCAL_CLOCK] === 'function';
}

/** Replace the machine's clock (the sandbox's in-process functions and CLI). */
function setLocalClock(clock: () => number): void {
  (globalThis as Record<symbol, unknown>)[LOCAL_CLOCK] = clock;
}

/** Restore the machine's clock, if `clock` is still the one set (a sandbox stopping leaves a newer one alone). */
function releaseLocalClock(clock: () => number): void {
  const globals = globalThis as Record<symbol, unknown>;
  if (globals[LOCAL_CLOCK] === clock) delete globals[LOCAL_CLOCK];
}

/**
 * AWS's clock as its responses give it: each response's `Date` header (RFC 7231, one-second resolution)
 * against the local clock when it arrived. A response's time is stamped before it travels, so latency only
 * makes AWS's clock look behind: the offset kept is the largest seen (the least delayed response).
 */
class ServiceClock {
  private offset: number | undefined;

  constructor(private readonly local: () => number = localNow) {}

  /** Note a response's `Date` header (ignored when absent or unreadable). */
  observe(dateHeader: string | undefined): void {
    if (dateHeader === undefined) return;
    const service = Date.parse(dateHeader);
    if (Number.isNaN(service)) return;
    // the header is truncated to the second: the service's time is somewhere in [service, service + 1 s)
    const offset = service + 500 - this.local();
    this.offset = this.offset === undefined ? offset : Math.max(this.offset, offset);
  }

  /** AWS's time minus the local clock, in ms; undefined until a response has said. */
  offsetMs(): number | undefined {
    return this.offset;
  }

  /** AWS's time now: the local clock corrected by the offset (the local clock when none is known). */
  now(): Date {
    return new Date(this.local() + (this.offset ?? 0));
  }
}

/**
 * Whether the local clock may be trusted to act: `undefined` when it agrees with AWS's within
 * {@link MAX_CLOCK_SKEW_MS}, else why not.
 */
function clockRefusal(offsetMs: number | undefined): string | undefined {
  if (offsetMs === undefined) return "AWS's clock could not be read (no Date header in any response): ages cannot be checked";
  if (Math.abs(offsetMs) <= MAX_CLOCK_SKEW_MS) return undefined;
  const minutes = Math.round(Math.abs(offsetMs) / 60_000);
  const human =
    minutes >= 2 * 1440
      ? `${Math.round(minutes / 1440)} days`
      : minutes >= 120
        ? `${Math.round(minutes / 60)} hours`
        : `${minutes} minutes`;
  return `the local clock is ${human} ${offsetMs < 0 ? 'ahead of' : 'behind'} AWS's (more than ${MAX_CLOCK_SKEW_MS / 60_000} minutes): set the clock right (NTP) and run again`;
}

export { LOCAL_CLOCK, MAX_CLOCK_SKEW_MS, ServiceClock, clockRefusal, localNow, localClockReplaced, releaseLocalClock, setLocalClock };
