/**
 * The checkpoint signer lease (protocol §11) as one row of `leases`, on the
 * database's clock: gateways with skewed clocks still agree on who holds it.
 */
import type pg from 'pg';
import type { SignerLease } from '../../checkpoints/ports.js';
import { run } from './pool.js';

const SIGNER_LEASE = 'checkpoint-signer';

/** A named row of `leases`: the signer's by default; a relay's heartbeat too (outbox.ts). */
export class PgLease implements SignerLease {
  constructor(
    private readonly pool: pg.Pool,
    private readonly name: string = SIGNER_LEASE,
  ) {}

  /** Takes the row if it is free, expired or already ours; true while `holder` holds it. */
  async acquire(holder: string, ttlMs: number): Promise<boolean> {
    const rows = await run(
      this.pool,
      'lease_acquire',
      `INSERT INTO leases (name, holder, expires_at)
       VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3::double precision / 1000))
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
       WHERE leases.holder = excluded.holder OR leases.expires_at <= clock_timestamp()
       RETURNING holder`,
      [this.name, holder, ttlMs],
    );
    return rows.length === 1;
  }

  async release(holder: string): Promise<void> {
    await run(this.pool, 'lease_release', 'DELETE FROM leases WHERE name = $1 AND holder = $2', [
      this.name,
      holder,
    ]);
  }
}
