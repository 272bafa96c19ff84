/**
 * The outbox and the inbox in PostgreSQL (protocol §5.2, §11). Several gateways
 * drain one outbox: a relay claims the due rows it takes (`FOR UPDATE SKIP LOCKED`,
 * `claimed_by`, `claim_until`), so another relay skips them until the claim lapses.
 * A claim also lapses when its holder stops beating: each store keeps a row
 * `alive:<origin>` in `leases`, renewed every second for three, so the rows a
 * killed gateway had in flight go to another within seconds, not after the 30 s
 * claim. All times are the database's: gateways with skewed clocks agree on what
 * is due.
 */
import type pg from 'pg';
import type { AuditActor } from '../../audit/types.js';
import type { MessageType } from '../../envelope/types.js';
import type { DeliverOutcome, OutboxItem } from '../../transport/ports.js';
import type { PgMessages, SealedColumns } from './messages.js';
import { PgLease } from './lease.js';
import { run } from './pool.js';
import type { Tx } from './tx.js';

/** How long a relay holds the rows it took before another may take them. */
export const OUTBOX_CLAIM_S = 30;
/** How long a relay's heartbeat lasts unless renewed, and how often it is renewed. */
export const RELAY_ALIVE_MS = 3000;
export const RELAY_BEAT_MS = 1000;
/** Heartbeat rows of relays that stopped this long ago are removed at the next start. */
const DEAD_BEAT_AFTER = '1 day';
const ALIVE_PREFIX = 'alive:';
/** How often a relay takes back its own claimed rows that it dropped without a word. */
export const OUTBOX_RESCAN_MS = 5000;
/** The longest a row waits for its next attempt: the transport's backoff cap (30 s). */
const OUTBOX_MAX_DELAY_MS = 30_000;

interface OutboxRow extends SealedColumns {
  seq: number;
  message_id: string;
  attempts: number;
  digest: string;
  log_index: number;
  from_agency: string;
  to_agency: string;
  type: string;
  accepted_at: string;
}

/**
 * Due rows that are free, whose claim lapsed, whose holder's heartbeat stopped, or
 * (on a rescan) claimed by this relay but not in its hands any more; claimed for
 * `$1` in the same statement.
 */
const DUE_SQL = `WITH c AS (
    UPDATE outbox o SET claimed_by = $1, claim_until = now() + make_interval(secs => ${OUTBOX_CLAIM_S})
    FROM (SELECT q.seq FROM outbox q
          WHERE q.next_attempt_at <= now()
            AND (q.claimed_by IS NULL OR q.claim_until <= now() OR ($2 AND q.claimed_by = $1)
              OR (q.claimed_by <> $1 AND NOT EXISTS (SELECT 1 FROM leases l
                WHERE l.name = '${ALIVE_PREFIX}' || q.claimed_by AND l.expires_at > now())))
            AND NOT (q.message_id = ANY($3::text[]))
          ORDER BY q.seq LIMIT $4 FOR UPDATE OF q SKIP LOCKED) s
    WHERE o.seq = s.seq
    RETURNING o.seq, o.message_id, o.attempts)
  SELECT c.seq, c.message_id, c.attempts, b.sealed, b.wrapped_key, b.epoch, m.digest,
    m.log_index, m.from_agency, m.to_agency, m.type, m.accepted_at
  FROM c JOIN messages m ON m.id = c.message_id JOIN message_bodies b ON b.seq = m.seq
  ORDER BY c.seq`;

export class PgOutbox {
  private rescanAt = 0;
  /** This relay's heartbeat: the row `alive:<holder>` of `leases`. */
  private readonly alive: PgLease;
  private beatTimer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly messages: PgMessages,
    private readonly write: <T>(run: (tx: Tx) => Promise<T>) => Promise<T>,
    /** This store's name in `claimed_by`. */
    private readonly holder: string,
  ) {
    this.alive = new PgLease(pool, ALIVE_PREFIX + holder);
  }

  /**
   * Starts this relay's heartbeat: one beat now (so its claims count as alive from
   * the first), then one every second. Removes the rows of relays long gone.
   */
  async startBeating(): Promise<void> {
    await run(
      this.pool,
      'relay_beats_prune',
      `DELETE FROM leases WHERE name LIKE '${ALIVE_PREFIX}%' AND expires_at < now() - interval '${DEAD_BEAT_AFTER}'`,
    );
    await this.beat();
    this.beatTimer = setInterval(() => {
      // A beat that fails is retried on the next tick; the claims lapse meanwhile.
      this.beating ??= this.beat()
        .catch(() => undefined)
        .finally(() => {
          this.beating = undefined;
        });
    }, RELAY_BEAT_MS);
    this.beatTimer.unref();
  }

  private async beat(): Promise<void> {
    await this.alive.acquire(this.holder, RELAY_ALIVE_MS);
  }

  /** Stops the heartbeat and drops its row: what this relay still claims is free at once. */
  async stopBeating(): Promise<void> {
    if (this.beatTimer) clearInterval(this.beatTimer);
    this.beatTimer = undefined;
    await this.beating;
    await this.alive.release(this.holder).catch(() => undefined);
  }

  async dueOutbox(limit: number, exclude: ReadonlySet<string>): Promise<OutboxItem[]> {
    if (limit <= 0) return [];
    const t = performance.now();
    const rescan = t - this.rescanAt >= OUTBOX_RESCAN_MS;
    if (rescan) this.rescanAt = t;
    const rows = await run<OutboxRow>(this.pool, 'outbox_due', DUE_SQL, [
      this.holder,
      rescan,
      [...exclude],
      limit,
    ]);
    // Outbox rows are never shredded (shredEpoch carries them), so the JWS is there.
    return rows.map((r) => ({
      messageId: r.message_id,
      jws: this.messages.openJws(r.message_id, r)!,
      digest: r.digest,
      logIndex: r.log_index,
      from: r.from_agency,
      to: r.to_agency,
      type: r.type as MessageType,
      acceptedAt: r.accepted_at,
      attempts: r.attempts,
    }));
  }

  /** Removes the rows and records `queued` where the consumer has not already: one batch, no loop of reads. */
  markQueued(messageIds: readonly string[], actor: AuditActor): Promise<void> {
    if (messageIds.length === 0) return Promise.resolve();
    return this.write(async (tx) => {
      await run(tx, 'outbox_delete', 'DELETE FROM outbox WHERE message_id = ANY($1::text[])', [
        messageIds,
      ]);
      const rows = await this.messages.rows(tx, messageIds);
      const ids: string[] = [];
      const statuses: string[] = [];
      for (const id of new Set(messageIds)) {
        const row = rows.get(id);
        // The consumer may already have recorded delivery (and with it `queued`).
        if (!row) continue;
        const status = this.messages.deliveryStepsInTx(tx, row, 'confirmed', actor);
        if (status === undefined) continue;
        ids.push(id);
        statuses.push(status);
      }
      if (ids.length === 0) return;
      await run(
        tx,
        'msg_set_statuses',
        `UPDATE messages m SET status = v.status
         FROM unnest($1::text[], $2::text[]) AS v (id, status) WHERE m.id = v.id`,
        [ids, statuses],
      );
    });
  }

  /** The next attempt on the database's clock; the claim is given up so any relay may retry. */
  async reschedule(messageId: string, delayMs: number, reason: string): Promise<void> {
    const delay = Math.min(Math.max(0, delayMs), OUTBOX_MAX_DELAY_MS);
    await run(
      this.pool,
      'outbox_reschedule',
      `UPDATE outbox SET next_attempt_at = now() + make_interval(secs => $2::double precision / 1000),
         attempts = attempts + 1, last_error = $3, claimed_by = NULL, claim_until = NULL
       WHERE message_id = $1`,
      [messageId, delay, reason],
    );
  }

  async outboxLag(): Promise<number> {
    const rows = await run<{ n: number }>(
      this.pool,
      'outbox_lag',
      'SELECT count(*) AS n FROM outbox',
    );
    return rows[0]!.n;
  }

  /** Exactly once per message id: a second delivery (after a relay's takeover) is absorbed. */
  deliver(messageId: string, digest: string, actor: AuditActor): Promise<DeliverOutcome> {
    return this.write(async (tx) => {
      const row = await this.messages.row(tx, messageId);
      if (!row || row.digest !== digest) return 'unknown';
      const at = tx.stamp().toISOString();
      const inserted = await run(
        tx,
        'inbox_deliver',
        `INSERT INTO deliveries (message_id, agency, delivered_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING RETURNING 1`,
        [messageId, row.to_agency, at],
      );
      if (inserted.length === 0) return 'duplicate';
      const status = this.messages.deliveryStepsInTx(tx, row, 'delivered', actor);
      if (status !== undefined) {
        await run(tx, 'msg_set_status', 'UPDATE messages SET status = $2 WHERE id = $1', [
          messageId,
          status,
        ]);
      }
      return 'delivered';
    });
  }
}
