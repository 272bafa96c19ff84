/**
 * protocol §11: exactly one process signs checkpoints at a time. The lease lives in
 * the store, on the store's clock, so gateways with skewed clocks still agree.
 */
export interface SignerLease {
  /**
   * Takes the lease for `holder`, or renews it, for `ttlMs` from now; true while
   * `holder` holds it. Another holder gets it only once it has expired.
   */
  acquire(holder: string, ttlMs: number): Promise<boolean>;
  /** Gives the lease up (an orderly shutdown), so another process may take it at once. */
  release(holder: string): Promise<void>;
}

/** A store only one process ever opens (the embedded SQLite file): the lease is always ours. */
export const soleSigner: SignerLease = {
  acquire: () => Promise.resolve(true),
  release: () => Promise.resolve(),
};
