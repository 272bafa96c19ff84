/**
 * The outbox and the inbox in PostgreSQL (protocol §5.2, §11). Several gateways
 * drain one outbox: a relay claims the due rows it takes (`FOR UPDATE SKIP LOCKED`,
 * `claimed_by`, `claim_until`), so another relay skips them until the claim lapses.
 * All times are the database's: gateways with skewed clocks agree on what is due.
 */
import type pg from 'pg';
import type { AuditActor } from '../../audit/types.js';
import type { MessageType } from '../../envelope/types.js';
import type { DeliverOutcome, OutboxItem } from '../../transport/ports.js';
import type { PgMessages, SealedColumns } from './messages.js';
import { run } from './pool.js';
import type { Tx } from './tx.js';

/** How long a relay holds the rows it took before another may take them. */
export const OUTBOX_CLAIM_S = 30;
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
 * Due rows that are free, whose claim lapsed, or (on a rescan) claimed by this
 * relay but not in its hands any more; claimed for `$1` in the same statement.
 */
const DUE_SQL = `WITH c AS (
    UPDATE outbox o SET claimed_by = $1, claim_until = now() + make_interval(secs => ${OUTBOX_CLAIM_S})
    FROM (SELECT seq FROM outbox
          WHERE next_attempt_at <= now()
            AND (claimed_by IS NULL OR claim_until <= now() OR ($2 AND claimed_by = $1))
            AND NOT (message_id = ANY($3::text[]))
          ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED) s
    WHERE o.seq = s.seq
    RETURNING o.seq, o.message_id, o.attempts)
  SELECT c.seq, c.message_id, c.attempts, b.sealed, b.wrapped_key, b.epoch, m.digest,
    m.log_index, m.from_agency, m.to_agency, m.type, m.accepted_at
  FROM c JOIN messages m ON m.id = c.message_id JOIN message_bodies b ON b.seq = m.seq
  ORDER BY c.seq`;

export class PgOutbox {
  private rescanAt = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly messages: PgMessages,
    private readonly write: <T>(run: (tx: Tx) => Promise<T>) => Promise<T>,
    /** This store's name in `claimed_by`. */
    private readonly holder: string,
  ) {}

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
