/**
 * Random bytes for message keys and IVs, drawn from a buffer that one
 * `randomFillSync` call refills: a seal needs 56 bytes in three pieces, and a
 * call into the CSPRNG per piece costs more than the bytes themselves.
 *
 * Each byte is handed out once and wiped from the pool as it leaves. Bytes not
 * yet handed out sit in memory until used, as the CSPRNG's own state does; the
 * epoch keys the same memory holds already open everything these would seal.
 */
import { randomFillSync } from 'node:crypto';

/** Fills `n` bytes of `into` from `offset` with fresh random bytes. */
export type RandomFill = (into: Uint8Array, offset: number, n: number) => void;

export const systemRandom: RandomFill = (into, offset, n) => {
  randomFillSync(into, offset, n);
};

/** Refill size: 73 seals per CSPRNG call. */
const POOL_BYTES = 4096;

export class RandomPool {
  private readonly pool: Buffer;
  /** Bytes before this offset were handed out (and are zero). */
  private used: number;

  constructor(bytes = POOL_BYTES) {
    this.pool = Buffer.alloc(bytes);
    this.used = bytes;
  }

  /** A `RandomFill` drawing from this pool. */
  readonly fill: RandomFill = (into, offset, n) => {
    if (n > this.pool.length) {
      randomFillSync(into, offset, n);
      return;
    }
    if (this.used + n > this.pool.length) {
      randomFillSync(this.pool);
      this.used = 0;
    }
    const end = this.used + n;
    this.pool.copy(into, offset, this.used, end);
    this.pool.fill(0, this.used, end);
    this.used = end;
  };
}
