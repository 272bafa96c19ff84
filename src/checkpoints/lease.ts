import { performance } from 'node:perf_hooks';
import type { SignerLease } from './ports.js';

/** How long a lease lasts unless renewed, and how often it is renewed (protocol §11). */
export const LEASE_TTL_MS = 3000;
export const LEASE_RENEW_MS = 1000;
/** A renewal is trusted this much less long than the lease, for the time its answer took. */
const SAFETY_MS = 500;

export interface LeaseKeeperOptions {
  lease: SignerLease;
  /** This process, as the lease names it. */
  holder: string;
  ttlMs?: number;
  renewMs?: number;
  /** Called when this process gains or loses the lease. */
  onChange?: (held: boolean) => void;
  onError?: (e: unknown) => void;
}

/**
 * Keeps this process's claim on the signer lease: takes it when it is free,
 * renews it while held, gives it up at shutdown. A process that dies stops
 * renewing, and another takes the lease once it expires: within ttl + renew
 * interval (4 s by default, inside protocol §11's 5 s).
 */
export class LeaseKeeper {
  private timer: NodeJS.Timeout | undefined;
  /** Monotonic ms until which the last successful renewal is trusted. */
  private heldUntil = 0;
  private wasHeld = false;
  private renewing: Promise<void> | undefined;
  private readonly ttlMs: number;
  private readonly renewMs: number;

  constructor(private readonly opts: LeaseKeeperOptions) {
    this.ttlMs = opts.ttlMs ?? LEASE_TTL_MS;
    this.renewMs = opts.renewMs ?? LEASE_RENEW_MS;
  }

  /** Takes or renews the lease once, then keeps renewing it. */
  async start(): Promise<void> {
    await this.renew();
    this.timer = setInterval(() => void this.renew(), this.renewMs);
    this.timer.unref();
  }

  /** True while this process may sign. */
  get held(): boolean {
    return performance.now() < this.heldUntil;
  }

  get holder(): string {
    return this.opts.holder;
  }

  /** One renewal; overlapping calls share it. */
  renew(): Promise<void> {
    this.renewing ??= this.renewOnce().finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  private async renewOnce(): Promise<void> {
    const asked = performance.now();
    try {
      const ok = await this.opts.lease.acquire(this.opts.holder, this.ttlMs);
      this.heldUntil = ok ? asked + this.ttlMs - Math.min(SAFETY_MS, this.ttlMs / 4) : 0;
    } catch (e) {
      // A store that does not answer: what was renewed before still runs out on time.
      this.opts.onError?.(e);
    }
    this.noteChange();
  }

  private noteChange(): void {
    const held = this.held;
    if (held === this.wasHeld) return;
    this.wasHeld = held;
    this.opts.onChange?.(held);
  }

  /** Stops renewing and gives the lease up, so another process takes over at once. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.renewing;
    const had = this.heldUntil > 0;
    this.heldUntil = 0;
    this.noteChange();
    if (had) await this.opts.lease.release(this.opts.holder).catch((e) => this.opts.onError?.(e));
  }
}
