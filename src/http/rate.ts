/**
 * protocol §12: submissions are rate-limited per principal, a token bucket per
 * certificate subject. `ratePerMin` tokens refill over a minute and the bucket
 * holds at most that many, so a quiet client may send a minute's worth at once.
 * Memory is bounded: at most `maxBuckets` buckets (about 100 bytes each) are kept,
 * the least recently used forgotten first; only authenticated principals get one.
 */
import type { NextFunction, Request, Response } from 'express';
import { CasebridgeError } from '../errors.js';
import { principalOf } from './auth.js';

interface Bucket {
  tokens: number;
  at: number;
}

export const DEFAULT_MAX_BUCKETS = 10_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    private readonly ratePerMin: number,
    private readonly now: () => number,
    private readonly maxBuckets = DEFAULT_MAX_BUCKETS,
  ) {
    this.perMs = ratePerMin / 60_000;
  }

  /** Takes a token for `key`; returns 0 when taken, else the seconds until one is due. */
  take(key: string): number {
    return this.ask(key, true);
  }

  /** Like `take`, but leaves the token: 0 when one is there, else the seconds until one is due. */
  peek(key: string): number {
    return this.ask(key, false);
  }

  private ask(key: string, take: boolean): number {
    const t = this.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = { tokens: this.ratePerMin, at: t };
    } else {
      this.buckets.delete(key);
      b.tokens = Math.min(this.ratePerMin, b.tokens + Math.max(0, t - b.at) * this.perMs);
      b.at = t;
    }
    this.buckets.set(key, b);
    if (this.buckets.size > this.maxBuckets) this.buckets.delete(this.buckets.keys().next().value!);
    if (b.tokens >= 1) {
      if (take) b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000));
  }

  get size(): number {
    return this.buckets.size;
  }
}

/**
 * Middleware for the submission routes; after client authentication, before the
 * body. A single submission takes a token. A batch takes none here, since each of
 * its lines takes one (protocol §3.1, src/http/batch.ts); it is refused whole only
 * when not one token is left.
 */
export function rateLimit(limiter: RateLimiter) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (
      req.method !== 'POST' ||
      (req.path !== '/v1/messages' && req.path !== '/v1/messages/batch')
    ) {
      next();
      return;
    }
    const subject = principalOf(res).subject;
    const wait = req.path === '/v1/messages' ? limiter.take(subject) : limiter.peek(subject);
    if (wait === 0) {
      next();
      return;
    }
    res.setHeader('retry-after', String(wait));
    next(new CasebridgeError('RATE_LIMITED', 'too many submissions; retry later'));
  };
}
