/**
 * Notices steps of the wall clock (an NTP correction, a VM resumed, an operator's
 * `date -s`) by comparing it with the monotonic clock, which never steps. Nothing
 * the gateway schedules depends on the wall clock; a step is only recorded.
 */
import { performance } from 'node:perf_hooks';

export interface ClockWatchOptions {
  /** Wall clock, ms since the epoch. */
  wall?: () => number;
  /** Monotonic clock, ms. */
  mono?: () => number;
  intervalMs?: number;
  /** Smallest difference between the two clocks that counts as a step. */
  thresholdMs?: number;
  /** `stepMs` < 0: the wall clock went back. */
  onStep(stepMs: number): void;
}

/** A step is a jump of at least this much between two looks one interval apart. */
export const CLOCK_STEP_THRESHOLD_MS = 2000;

export class ClockWatch {
  private timer: NodeJS.Timeout | undefined;
  private readonly wall: () => number;
  private readonly mono: () => number;
  private readonly thresholdMs: number;
  private offset: number;

  constructor(private readonly opts: ClockWatchOptions) {
    this.wall = opts.wall ?? Date.now;
    this.mono = opts.mono ?? (() => performance.now());
    this.thresholdMs = opts.thresholdMs ?? CLOCK_STEP_THRESHOLD_MS;
    this.offset = this.wall() - this.mono();
  }

  start(): void {
    this.timer = setInterval(() => this.check(), this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Compares the clocks once, against the previous look; reports a step. */
  check(): void {
    const offset = this.wall() - this.mono();
    const step = offset - this.offset;
    this.offset = offset;
    // A slew (NTP adjusting the rate) moves the offset by well under a millisecond per look.
    if (Math.abs(step) >= this.thresholdMs) this.opts.onStep(Math.round(step));
  }
}
