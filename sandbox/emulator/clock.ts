/**
 * The sandbox clock: simulated time that runs `speed` times faster than real time and can be advanced by
 * hand (tests). Simulated delays (AMI copies, Fast Launch provisioning, queue delays) use it.
 */
interface Timer {
  due: number;
  fn: () => void;
}

class SandboxClock {
  private readonly realStart = Date.now();
  private readonly simStart: number;
  private offset = 0;
  private timers: Timer[] = [];
  private ticker: NodeJS.Timeout | undefined;
  /** Holds in force (`hold()`), the simulated time when the first began and the real time then. */
  private holds = 0;
  private heldAt = 0;
  private heldOffset = 0;
  private heldSince = 0;
  speed: number;

  constructor(options: { speed?: number; start?: number } = {}) {
    this.speed = options.speed ?? 1;
    this.simStart = options.start ?? Date.now();
  }

  /** Simulated epoch milliseconds. */
  now(): number {
    if (this.holds > 0) return this.heldAt + (this.offset - this.heldOffset);
    return this.simStart + (Date.now() - this.realStart) * this.speed + this.offset;
  }

  /**
   * Stop simulated time from running by itself until the returned function is called (hand advances still
   * move it): for sandbox work that takes real time no AWS counterpart takes in simulated time, such as
   * loading a function's bundle for a new execution environment (Lambda's init phase takes well under a
   * second; at a speed of 3000 a load of 300 ms would otherwise be 15 simulated minutes). Holds nest.
   */
  hold(): () => void {
    if (this.holds === 0) {
      this.heldAt = this.now();
      this.heldOffset = this.offset;
      this.heldSince = Date.now();
    }
    this.holds += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds -= 1;
      if (this.holds === 0) this.offset -= (Date.now() - this.heldSince) * this.speed;
    };
  }

  date(): Date {
    return new Date(this.now());
  }

  iso(): string {
    return this.date().toISOString();
  }

  /** Run `fn` after `ms` of simulated time. */
  after(ms: number, fn: () => void): void {
    this.timers.push({ due: this.now() + ms, fn });
    this.ensureTicker();
  }

  /**
   * Jump simulated time forward, firing every timer that falls due on the way in order, including the
   * timers those timers set (a build's later phases).
   */
  advance(ms: number): void {
    const target = this.now() + ms;
    for (;;) {
      const next = this.timers.reduce((min, t) => Math.min(min, t.due), Number.POSITIVE_INFINITY);
      if (next > target) break;
      this.offset += Math.max(0, next - this.now());
      this.tick();
    }
    this.offset += Math.max(0, target - this.now());
    this.tick();
  }

  /** Real milliseconds for a simulated duration. */
  realMs(simMs: number): number {
    return simMs / this.speed;
  }

  private ensureTicker(): void {
    if (this.ticker !== undefined) return;
    this.ticker = setInterval(() => this.tick(), 20);
    this.ticker.unref();
  }

  private tick(): void {
    const now = this.now();
    const due = this.timers.filter((t) => t.due <= now);
    if (due.length === 0) return;
    this.timers = this.timers.filter((t) => t.due > now);
    for (const timer of due.sort((a, b) => a.due - b.due)) timer.fn();
  }

  stop(): void {
    if (this.ticker !== undefined) clearInterval(this.ticker);
    this.ticker = undefined;
    this.timers = [];
  }
}

export { SandboxClock };
