/**
 * The PostgreSQL store (protocol §11): the same ports and rules as the embedded
 * one, for several gateways on one database. Reads go through a pool; writes are
 * group-committed on one connection at a time (tx.ts), ordered across gateways by
 * the `log_head` row lock.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { AuditError } from '../../audit/errors.js';
import type {
  AuditActor,
  AuditDraft,
  Checkpoint,
  NodeCoord,
  StoredEntry,
} from '../../audit/types.js';
import type { RecordedMessage } from '../../messages/replay.js';
import type {
  ChangeListener,
  HistoryActor,
  HistoryItem,
  ListPage,
  ListQuery,
  MessageChange,
  MessageRecord,
} from '../../messages/types.js';
import type { ReviewAction } from '../../review/lifecycle.js';
import type { DeadlineCount, ReviewOutcome } from '../../review/ports.js';
import { epochOf } from '../../retention/keys.js';
import type { MessageVault } from '../../retention/vault.js';
import type {
  AcceptOutcome,
  AcceptResponse,
  NewMessage,
  ReceiptMaker,
} from '../../submission/ports.js';
import type { DeliverOutcome, OutboxItem } from '../../transport/ports.js';
import { storeFailureOf, type StoreFailure } from '../errors.js';
import type { Store, StoreHealth } from '../types.js';
import { PgFileIndex } from './files.js';
import { PgLease } from './lease.js';
import { changeView, PgMessages, type MessageRow } from './messages.js';
import { NO_DEADLINE } from '../rows.js';
import { ChangeListenerConnection } from './notify.js';
import { PgOutbox } from './outbox.js';
import { poolConfig, run, startError } from './pool.js';
import { migrate } from './schema.js';
import { GroupCommit, type Tx } from './tx.js';

export interface PostgresStoreOptions {
  url: string;
  now: () => Date;
  gatewayActor: AuditActor | undefined;
  vault: MessageVault;
  /** Connections for reads and writes. Default 10. */
  poolSize?: number;
  /** Most writes in one transaction. Default 512. */
  maxBatch?: number;
}

/** How long `health()` waits for `SELECT 1` before it calls the database unreachable. */
const HEALTH_TIMEOUT_MS = 2000;

interface CheckpointRow {
  size: number;
  root: Buffer;
  note: string;
  signed_at: string;
}

const toCheckpoint = (r: CheckpointRow | undefined): Checkpoint | undefined =>
  r && { size: r.size, root: r.root, text: r.note, signedAt: r.signed_at };

/** Opens the store: connects, migrates, listens. Any failure is one line naming the URL variable. */
export async function openPostgresStore(opts: PostgresStoreOptions): Promise<PgStore> {
  const pool = new pg.Pool(poolConfig(opts.url, opts.poolSize ?? 10));
  // An idle connection the server cut: the pool drops it and makes another when asked.
  pool.on('error', () => undefined);
  try {
    const client = await pool.connect();
    try {
      await migrate(client);
    } finally {
      client.release();
    }
  } catch (e) {
    await pool.end().catch(() => undefined);
    throw startError(opts.url, e);
  }
  const store = new PgStore(pool, opts);
  try {
    await store.listen();
    await store.startRelayHeartbeat();
  } catch (e) {
    await store.close();
    throw startError(opts.url, e);
  }
  return store;
}

export class PgStore implements Store {
  readonly files: PgFileIndex;
  readonly lease: PgLease;
  /** This store among the gateways: `claimed_by` of its outbox rows, origin of its NOTIFYs. */
  readonly origin = `${process.pid}-${randomBytes(6).toString('hex')}`;
  private readonly commit: GroupCommit;
  private readonly messages: PgMessages;
  private readonly outbox: PgOutbox;
  private readonly listeners: ChangeListener[] = [];
  private readonly gapListeners: (() => void)[] = [];
  private readonly changes: ChangeListenerConnection;
  private readonly now: () => Date;
  private readonly vault: MessageVault;
  private failure: StoreFailure | undefined;
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    opts: PostgresStoreOptions,
  ) {
    this.now = opts.now;
    this.vault = opts.vault;
    this.commit = new GroupCommit({
      pool,
      now: opts.now,
      origin: this.origin,
      maxBatch: opts.maxBatch ?? 512,
      published: (c) => this.publish(c),
      health: (f) => {
        this.failure = f;
      },
    });
    const write = <T>(fn: (tx: Tx) => Promise<T>): Promise<T> => this.commit.write(fn);
    this.files = new PgFileIndex(pool, write);
    this.messages = new PgMessages({
      vault: opts.vault,
      gatewayActor: opts.gatewayActor,
      bindFiles: (tx, id, msg, at) => this.files.bindInTx(tx, id, msg.files!, msg.actor, at),
    });
    this.outbox = new PgOutbox(pool, this.messages, write, this.origin);
    this.lease = new PgLease(pool);
    this.changes = new ChangeListenerConnection(
      opts.url,
      this.origin,
      (c) => this.publish(c),
      () => this.gapped(),
    );
  }

  /** @internal Starts the change feed of other gateways. */
  listen(): Promise<void> {
    return this.changes.start();
  }

  /** @internal Starts the heartbeat that keeps this store's outbox claims alive. */
  startRelayHeartbeat(): Promise<void> {
    return this.outbox.startBeating();
  }

  private write<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.commit.write(fn);
  }

  // ---- change feed ----------------------------------------------------------

  onChange(listener: ChangeListener): void {
    this.listeners.push(listener);
  }

  onGap(listener: () => void): void {
    this.gapListeners.push(listener);
  }

  private gapped(): void {
    for (const l of this.gapListeners) {
      try {
        l();
      } catch {
        // As with changes: a listener's failure stays its own.
      }
    }
  }

  private publish(changes: readonly MessageChange[]): void {
    for (const c of changes) {
      for (const l of this.listeners) {
        try {
          l(c);
        } catch {
          // A listener's failure never undoes or blocks a committed write.
        }
      }
    }
  }

  // ---- health -----------------------------------------------------------------

  async health(): Promise<StoreHealth> {
    let outboxOldestAgeS = 0;
    let failure = this.failure;
    try {
      const rows = await withTimeout(
        run<{ at: string | null }>(
          this.pool,
          'health',
          `SELECT (SELECT m.accepted_at FROM outbox o JOIN messages m ON m.id = o.message_id
             ORDER BY o.seq LIMIT 1) AS at`,
        ),
        HEALTH_TIMEOUT_MS,
      );
      const at = rows[0]?.at;
      if (at) outboxOldestAgeS = Math.max(0, (this.now().getTime() - Date.parse(at)) / 1000);
      // The server answers again; a full disk stays reported until a write commits.
      if (failure === 'unreachable') failure = this.failure = undefined;
    } catch (e) {
      failure = storeFailureOf(e) ?? 'unreachable';
      this.failure = failure;
    }
    return { engine: 'postgres', failure, freeBytes: undefined, outboxOldestAgeS };
  }

  // ---- audit log ----------------------------------------------------------------

  append(draft: AuditDraft): Promise<StoredEntry> {
    return this.write((tx) => Promise.resolve(tx.append(draft, tx.stamp())));
  }

  async treeSize(): Promise<number> {
    const rows = await run<{ size: number }>(this.pool, 'log_size', 'SELECT size FROM log_head');
    return rows[0]!.size;
  }

  async entries(start: number, end: number): Promise<StoredEntry[]> {
    const rows = await run<{ idx: number; entry: Buffer }>(
      this.pool,
      'log_entries',
      'SELECT idx, entry FROM audit_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx',
      [start, end],
    );
    return rows.map((r) => ({ index: r.idx, bytes: r.entry }));
  }

  /** Every node a proof needs, in one round trip. */
  async nodesAt(coords: readonly NodeCoord[]): Promise<Buffer[]> {
    if (coords.length === 0) return [];
    const rows = await run<{ hash: Buffer | null }>(
      this.pool,
      'log_nodes',
      `SELECT n.hash FROM unnest($1::integer[], $2::bigint[]) WITH ORDINALITY AS c (level, idx, k)
       LEFT JOIN audit_nodes n ON n.level = c.level AND n.idx = c.idx ORDER BY c.k`,
      [coords.map((c) => c.level), coords.map((c) => c.index)],
    );
    return rows.map((r, k) => {
      if (r.hash === null) {
        const c = coords[k]!;
        throw new AuditError('node-missing', `node (${c.level}, ${c.index}) missing`);
      }
      return r.hash;
    });
  }

  async latestCheckpoint(): Promise<Checkpoint | undefined> {
    const rows = await run<CheckpointRow>(
      this.pool,
      'cp_latest',
      'SELECT size, root, note, signed_at FROM checkpoints ORDER BY size DESC LIMIT 1',
    );
    return toCheckpoint(rows[0]);
  }

  async checkpointAt(size: number): Promise<Checkpoint | undefined> {
    const rows = await run<CheckpointRow>(
      this.pool,
      'cp_at',
      'SELECT size, root, note, signed_at FROM checkpoints WHERE size = $1',
      [size],
    );
    return toCheckpoint(rows[0]);
  }

  async checkpoints(fromSize: number, toSize: number): Promise<Checkpoint[]> {
    const rows = await run<CheckpointRow>(
      this.pool,
      'cp_range',
      `SELECT size, root, note, signed_at FROM checkpoints WHERE size >= $1 AND size <= $2
       ORDER BY size`,
      [fromSize, toSize],
    );
    return rows.map((r) => toCheckpoint(r)!);
  }

  async addCheckpoint(cp: Checkpoint): Promise<void> {
    await run(
      this.pool,
      'cp_add',
      `INSERT INTO checkpoints (size, root, note, signed_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (size) DO NOTHING`,
      [cp.size, cp.root, cp.text, cp.signedAt],
    );
  }

  // ---- messages -----------------------------------------------------------------

  getMessage(id: string): Promise<MessageRecord | undefined> {
    return this.messages.getMessage(this.pool, id);
  }

  history(id: string): Promise<HistoryItem[]> {
    return this.messages.history(this.pool, id);
  }

  list(q: ListQuery): Promise<ListPage> {
    return this.messages.list(this.pool, q);
  }

  replies(id: string): Promise<MessageRecord[]> {
    return this.messages.replies(this.pool, id);
  }

  recorded(id: string): Promise<(RecordedMessage & { response: AcceptResponse }) | undefined> {
    return this.messages.recorded(this.pool, id);
  }

  accept(msg: NewMessage, makeReceipt: ReceiptMaker): Promise<AcceptOutcome> {
    return this.write(async (tx) => {
      const outcome = await this.messages.acceptInTx(tx, msg, makeReceipt);
      if (outcome.kind === 'accepted') await this.messages.answerInTx(tx, msg);
      return outcome;
    });
  }

  review(id: string, action: ReviewAction, actor: HistoryActor): Promise<ReviewOutcome> {
    return this.write(async (tx): Promise<ReviewOutcome> => {
      const row = await this.messages.row(tx, id);
      if (!row) return { kind: 'unknown' };
      return this.messages.applyReview(tx, row, action, actor);
    });
  }

  decide(
    id: string,
    action: Extract<ReviewAction, { kind: 'decide' }>,
    actor: HistoryActor,
    update: NewMessage,
    makeReceipt: ReceiptMaker,
  ): Promise<{ review: ReviewOutcome; accept?: AcceptOutcome }> {
    return this.write(async (tx) => {
      const row = await this.messages.row(tx, id);
      if (!row) return { review: { kind: 'unknown' } as ReviewOutcome };
      const outcome = await this.messages.applyReview(tx, row, action, actor);
      if (outcome.kind !== 'done') return { review: outcome };
      return { review: outcome, accept: await this.messages.acceptInTx(tx, update, makeReceipt) };
    });
  }

  async lapseExpired(now: Date, actor: AuditActor, limit: number): Promise<number> {
    const due = await run<{ id: string }>(
      this.pool,
      'claims_expired',
      `SELECT id FROM messages WHERE status = 'claimed' AND claim_expires_at <= $1
       ORDER BY claim_expires_at LIMIT $2`,
      [now.getTime(), limit],
    );
    if (due.length === 0) return 0;
    return this.write(async (tx) => {
      // Read again inside the transaction: the claim may have been renewed or released,
      // here or by another gateway.
      const rows = await this.messages.rows(
        tx,
        due.map((d) => d.id),
      );
      let n = 0;
      for (const { id } of due) {
        const row = rows.get(id);
        if (!row || row.status !== 'claimed') continue;
        const outcome = await this.messages.applyReview(tx, row, { kind: 'lapse' }, actor);
        if (outcome.kind === 'done' && outcome.record.status === 'delivered') n++;
      }
      return n;
    });
  }

  async takeNewlyOverdue(now: Date, limit: number): Promise<MessageChange['message'][]> {
    const OVERDUE = `status <> 'decided' AND NOT overdue_noted AND deadline_key <= $1`;
    const any = await run(
      this.pool,
      'overdue_any',
      `SELECT 1 FROM messages WHERE ${OVERDUE} LIMIT 1`,
      [now.getTime()],
    );
    if (any.length === 0) return [];
    return this.write(async (tx) => {
      // Marked under the sequencer lock: of several gateways, one reports each message.
      const rows = await run<MessageRow>(
        tx,
        'overdue_take',
        `UPDATE messages SET overdue_noted = true WHERE seq IN (
           SELECT seq FROM messages WHERE ${OVERDUE} ORDER BY deadline_key LIMIT $2)
         RETURNING *`,
        [now.getTime(), limit],
      );
      rows.sort((a, b) => a.deadline_key - b.deadline_key || a.seq - b.seq);
      return rows.map(changeView);
    });
  }

  async deadlineCounts(now: Date): Promise<DeadlineCount[]> {
    return run<DeadlineCount>(
      this.pool,
      'deadline_counts',
      `SELECT to_agency AS agency, priority,
         (count(*) FILTER (WHERE deadline_key <= $1))::integer AS overdue,
         (count(*) FILTER (WHERE deadline_key > $1 AND due_soon_key <= $1))::integer AS "dueSoon"
       FROM messages WHERE status <> 'decided' AND deadline_key < ${NO_DEADLINE}
       GROUP BY to_agency, priority`,
      [now.getTime()],
    );
  }

  // ---- outbox and inbox ---------------------------------------------------------

  dueOutbox(limit: number, exclude: ReadonlySet<string>): Promise<OutboxItem[]> {
    return this.outbox.dueOutbox(limit, exclude);
  }

  markQueued(messageIds: readonly string[], actor: AuditActor): Promise<void> {
    return this.outbox.markQueued(messageIds, actor);
  }

  reschedule(messageId: string, delayMs: number, reason: string): Promise<void> {
    return this.outbox.reschedule(messageId, delayMs, reason);
  }

  outboxLag(): Promise<number> {
    return this.outbox.outboxLag();
  }

  deliver(messageId: string, digest: string, actor: AuditActor): Promise<DeliverOutcome> {
    return this.outbox.deliver(messageId, digest, actor);
  }

  // ---- retention ------------------------------------------------------------------

  async liveEpochs(): Promise<string[]> {
    const rows = await run<{ epoch: string }>(
      this.pool,
      'live_epochs',
      'SELECT DISTINCT epoch FROM message_bodies WHERE sealed IS NOT NULL ORDER BY epoch',
    );
    return rows.map((r) => r.epoch);
  }

  shredEpoch(epoch: string, actor: AuditActor): Promise<{ shredded: number; carried: number }> {
    return this.write(async (tx) => {
      const at = tx.stamp();
      const rows = await run<{
        seq: number;
        id: string;
        digest: string;
        from_agency: string;
        to_agency: string;
        type: string;
        sealed: Buffer;
        wrapped_key: Buffer;
        pending: boolean;
      }>(
        tx,
        'sealed_in',
        `SELECT b.seq, m.id, m.digest, m.from_agency, m.to_agency, m.type, b.sealed,
           b.wrapped_key, o.message_id IS NOT NULL AS pending
         FROM message_bodies b JOIN messages m ON m.seq = b.seq
         LEFT JOIN outbox o ON o.message_id = m.id
         WHERE b.epoch = $1 AND b.sealed IS NOT NULL ORDER BY b.seq`,
        [epoch],
      );
      const shred: number[] = [];
      const moved: { seq: number; key: Buffer; epoch: string }[] = [];
      let carried = 0;
      for (const r of rows) {
        if (r.pending) {
          // Not yet handed to the broker: the transport still needs the bytes, and
          // the retention period starts again in the current epoch.
          if (epochOf(at) !== epoch) {
            const sealed = { sealed: r.sealed, wrappedKey: r.wrapped_key, epoch };
            const m = this.vault.rewrap(r.id, sealed, at);
            moved.push({ seq: r.seq, key: m.wrappedKey, epoch: m.epoch });
          }
          carried++;
          continue;
        }
        shred.push(r.seq);
        tx.append(
          {
            event: 'message.shredded',
            actor,
            messageId: r.id,
            digest: r.digest,
            from: r.from_agency,
            to: r.to_agency,
            type: r.type,
            detail: { epoch },
          },
          at,
        );
      }
      if (moved.length > 0) {
        await run(
          tx,
          'bodies_rewrap',
          `UPDATE message_bodies b SET wrapped_key = v.k, epoch = v.e
           FROM unnest($1::bigint[], $2::bytea[], $3::text[]) AS v (seq, k, e) WHERE b.seq = v.seq`,
          [moved.map((m) => m.seq), moved.map((m) => m.key), moved.map((m) => m.epoch)],
        );
      }
      if (shred.length > 0) {
        await run(
          tx,
          'bodies_shred',
          `UPDATE message_bodies SET sealed = NULL, wrapped_key = NULL, epoch = NULL,
             shredded_at = $2 WHERE seq = ANY($1::bigint[])`,
          [shred, at.toISOString()],
        );
      }
      return { shredded: shred.length, carried };
    });
  }

  // ---- lifecycle --------------------------------------------------------------------

  /** Commits the writes still queued, then closes; later writes are refused. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.commit.close();
    await this.outbox.stopBeating();
    await this.changes.close();
    await this.pool.end().catch(() => undefined);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(Object.assign(new Error('database did not answer in time'), { code: 'ETIMEDOUT' }));
    }, ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e as Error);
      },
    );
  });
}
