import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { serializeEntry } from '../audit/entry.js';
import { leafHash, nodesCompletedBy } from '../audit/merkle.js';
import type { AuditActor, AuditDraft, NodeSource, StoredEntry } from '../audit/types.js';
import type { DecisionStatus, Envelope, MessageType, Priority } from '../envelope/types.js';
import { CasebridgeError } from '../errors.js';
import { SCHEMA_SQL, SCHEMA_VERSION } from './schema.sql.js';
import type {
  AcceptOutcome,
  AcceptResponse,
  Checkpoint,
  ClaimOutcome,
  DeliverOutcome,
  HistoryItem,
  ListPage,
  ListQuery,
  MessageRecord,
  MessageStatus,
  NewMessage,
  OutboxItem,
  ReceiptMaker,
  Store,
} from './types.js';

const PRIORITY_RANK: Record<Priority, number> = { emergency: 0, urgent: 1, routine: 2 };
/** Sorts messages without `respondBy` after every dated one. */
const NO_DEADLINE = Number.MAX_SAFE_INTEGER;
/** Statuses from which a message can be claimed (protocol §5.4). */
const CLAIMABLE: ReadonlySet<MessageStatus> = new Set(['delivered', 'needs-info', 'in-progress']);
const DECIDABLE: ReadonlySet<MessageStatus> = new Set(['claimed']);

export interface SqliteStoreOptions {
  dataDir: string;
  now?: () => Date;
  /** Longest a write waits for others to join its transaction (group commit). */
  maxBatch?: number;
}

/** The small, mutable row of a message; its bytes live in message_bodies. */
interface MessageRow {
  seq: number;
  id: string;
  digest: string;
  case_ref: string;
  type: string;
  from_agency: string;
  to_agency: string;
  priority: string;
  priority_rank: number;
  respond_by: string | null;
  respond_by_key: number;
  in_reply_to: string | null;
  created_at: string;
  accepted_at: string;
  log_index: number;
  status: string;
  decision: string | null;
  claimed_by: string | null;
}

interface FullRow extends MessageRow {
  jws: string;
  response: string;
}

/** Columns of a message with its body. */
const FULL = 'm.*, b.jws, b.response FROM messages m JOIN message_bodies b ON b.seq = m.seq';

const OUTBOX_RESCAN_MS = 5000;
const OUTBOX_COLUMNS = `o.seq, o.message_id, o.attempts, b.jws, m.digest, m.log_index, m.from_agency,
  m.to_agency, m.type, m.accepted_at`;
const OUTBOX_FROM = `outbox o JOIN messages m ON m.id = o.message_id JOIN message_bodies b ON b.seq = m.seq`;

interface OutboxRow {
  seq: number;
  message_id: string;
  attempts: number;
  jws: string;
  digest: string;
  log_index: number;
  from_agency: string;
  to_agency: string;
  type: string;
  accepted_at: string;
}

function toOutboxItem(r: OutboxRow): OutboxItem {
  return {
    messageId: r.message_id,
    jws: r.jws,
    digest: r.digest,
    logIndex: r.log_index,
    from: r.from_agency,
    to: r.to_agency,
    type: r.type as MessageType,
    acceptedAt: r.accepted_at,
    attempts: r.attempts,
  };
}

interface PendingWrite {
  run: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** The embedded store: one SQLite file under the data directory, WAL, fsync on commit. */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly now: () => Date;
  private readonly maxBatch: number;
  private size: number;
  private pending: PendingWrite[] = [];
  private readonly runBatch: (batch: PendingWrite[]) => unknown[];
  private readonly runOne: (w: PendingWrite) => unknown;
  private closed = false;
  private flushScheduled = false;
  private readonly nodeSource: NodeSource;
  private readonly stmt: ReturnType<SqliteStore['prepare']>;
  /** Highest outbox seq handed out since the last full scan (see dueOutbox). */
  private outboxCursor = 0;
  private outboxScanAt = 0;

  constructor(opts: SqliteStoreOptions) {
    mkdirSync(opts.dataDir, { recursive: true });
    this.db = new Database(join(opts.dataDir, 'casebridge.sqlite'));
    this.db.pragma('journal_mode = WAL');
    // FULL: a commit is on disk before the 202 leaves (protocol §3).
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA_SQL);
    this.db
      .prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)')
      .run('schema_version', String(SCHEMA_VERSION));
    this.now = opts.now ?? (() => new Date());
    this.maxBatch = opts.maxBatch ?? 512;
    this.stmt = this.prepare();
    this.runBatch = this.db.transaction((batch: PendingWrite[]) => batch.map((w) => w.run()));
    this.runOne = this.db.transaction((w: PendingWrite) => w.run());
    const last = this.stmt.maxIndex.get() as { m: number | null };
    this.size = last.m === null ? 0 : last.m + 1;
    const { getNode, getEntry } = this.stmt;
    this.nodeSource = {
      node(level: number, index: number): Buffer {
        // Leaf hashes are not stored: they are the hash of the stored entry bytes.
        if (level === 0) {
          const entry = getEntry.get(index) as { entry: Buffer } | undefined;
          if (!entry) throw new Error(`audit entry ${index} missing`);
          return leafHash(entry.entry);
        }
        const row = getNode.get(level, index) as { hash: Buffer } | undefined;
        if (!row) throw new Error(`audit tree node ${level}/${index} missing`);
        return row.hash;
      },
    };
  }

  private prepare() {
    const db = this.db;
    return {
      maxIndex: db.prepare('SELECT MAX(idx) AS m FROM audit_entries'),
      getNode: db.prepare('SELECT hash FROM audit_nodes WHERE level = ? AND idx = ?'),
      getEntry: db.prepare('SELECT entry FROM audit_entries WHERE idx = ?'),
      putNode: db.prepare('INSERT INTO audit_nodes (level, idx, hash) VALUES (?, ?, ?)'),
      putEntry: db.prepare('INSERT INTO audit_entries (idx, entry) VALUES (?, ?)'),
      entries: db.prepare(
        'SELECT idx, entry FROM audit_entries WHERE idx >= ? AND idx < ? ORDER BY idx',
      ),
      getRow: db.prepare('SELECT * FROM messages WHERE id = ?'),
      getMessage: db.prepare(`SELECT ${FULL} WHERE m.id = ?`),
      insertMessage: db.prepare(`INSERT INTO messages
        (id, digest, case_ref, type, from_agency, to_agency, priority, priority_rank,
         respond_by, respond_by_key, in_reply_to, created_at, accepted_at, log_index, status)
        VALUES (@id, @digest, @caseRef, @type, @from, @to, @priority, @rank,
         @respondBy, @respondByKey, @inReplyTo, @createdAt, @acceptedAt, @logIndex, 'accepted')`),
      insertBody: db.prepare('INSERT INTO message_bodies (seq, jws, response) VALUES (?, ?, ?)'),
      getResponse: db.prepare('SELECT response FROM message_bodies WHERE seq = ?'),
      setStatus: db.prepare('UPDATE messages SET status = ?, claimed_by = ? WHERE id = ?'),
      setDecision: db.prepare('UPDATE messages SET decision = ? WHERE id = ?'),
      insertHistory: db.prepare(`INSERT INTO message_history
        (message_id, status, at, actor_agency, actor_role, actor_subject) VALUES (?, ?, ?, ?, ?, ?)`),
      history: db.prepare(
        'SELECT status, at, actor_agency, actor_role, actor_subject FROM message_history WHERE message_id = ? ORDER BY n',
      ),
      insertOutbox: db.prepare('INSERT INTO outbox (message_id, next_attempt_at) VALUES (?, ?)'),
      deleteOutbox: db.prepare('DELETE FROM outbox WHERE message_id = ?'),
      dueFresh: db.prepare(`SELECT ${OUTBOX_COLUMNS} FROM ${OUTBOX_FROM}
        WHERE o.seq > ? AND o.next_attempt_at <= ? ORDER BY o.seq LIMIT ?`),
      dueRetries: db.prepare(`SELECT ${OUTBOX_COLUMNS} FROM ${OUTBOX_FROM}
        WHERE o.seq <= ? AND o.attempts > 0 AND o.next_attempt_at <= ? ORDER BY o.seq LIMIT ?`),
      reschedule: db.prepare(
        'UPDATE outbox SET next_attempt_at = ?, attempts = attempts + 1, last_error = ? WHERE message_id = ?',
      ),
      outboxLag: db.prepare('SELECT COUNT(*) AS n FROM outbox'),
      insertDelivery: db.prepare(
        'INSERT OR IGNORE INTO deliveries (message_id, agency, delivered_at) VALUES (?, ?, ?)',
      ),
      replies: db.prepare(`SELECT ${FULL} WHERE m.in_reply_to = ? ORDER BY m.seq`),
      latestCheckpoint: db.prepare('SELECT * FROM checkpoints ORDER BY size DESC LIMIT 1'),
      checkpointAt: db.prepare('SELECT * FROM checkpoints WHERE size = ?'),
      checkpoints: db.prepare(
        'SELECT * FROM checkpoints WHERE size >= ? AND size <= ? ORDER BY size',
      ),
      addCheckpoint: db.prepare(
        'INSERT OR IGNORE INTO checkpoints (size, root, note, signed_at) VALUES (?, ?, ?, ?)',
      ),
    };
  }

  // ---- group commit -------------------------------------------------------

  /**
   * Queues a write to run inside the next shared transaction: concurrent requests
   * share one commit and one fsync. Writes are closures over the store's state, so
   * a batch that fails can be rolled back and replayed one write at a time.
   * (A savepoint per write would isolate failures too, at twice the cost per write.)
   */
  private write<T>(run: () => T): Promise<T> {
    if (this.closed)
      return Promise.reject(new CasebridgeError('UNAVAILABLE', 'the store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closed) return;
    const batch = this.pending.splice(0, this.maxBatch);
    if (this.pending.length > 0) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    if (batch.length === 0) return;
    const sizeBefore = this.size;
    try {
      const values = this.runBatch(batch);
      batch.forEach((w, k) => w.resolve(values[k]));
      return;
    } catch {
      // Something in the batch failed and the whole transaction rolled back.
      this.size = sizeBefore;
    }
    // Rare path: each write again in a transaction of its own, so only the failing one fails.
    for (const w of batch) {
      const at = this.size;
      try {
        w.resolve(this.runOne(w));
      } catch (e) {
        this.size = at;
        w.reject(e);
      }
    }
  }

  // ---- audit log ----------------------------------------------------------

  /** Appends one entry and its tree nodes. Must run inside a transaction. */
  private appendEntry(draft: AuditDraft, at: Date): StoredEntry {
    const index = this.size;
    const bytes = serializeEntry(draft, index, at);
    this.stmt.putEntry.run(index, bytes);
    for (const n of nodesCompletedBy(index, leafHash(bytes), this.nodeSource)) {
      if (n.level > 0) this.stmt.putNode.run(n.level, n.index, n.hash);
    }
    this.size = index + 1;
    return { index, bytes };
  }

  append(draft: AuditDraft): Promise<StoredEntry> {
    return this.write(() => this.appendEntry(draft, this.now()));
  }

  treeSize(): number {
    return this.size;
  }

  entries(start: number, end: number): StoredEntry[] {
    const rows = this.stmt.entries.all(start, end) as { idx: number; entry: Buffer }[];
    return rows.map((r) => ({ index: r.idx, bytes: r.entry }));
  }

  /** Streams entries in pages, so an export of millions never sits in memory. */
  *iterateEntries(start: number, end: number, page = 1000): Generator<StoredEntry> {
    for (let i = start; i < end; i += page) {
      yield* this.entries(i, Math.min(end, i + page));
    }
  }

  nodes(): NodeSource {
    return this.nodeSource;
  }

  latestCheckpoint(): Checkpoint | undefined {
    return toCheckpoint(this.stmt.latestCheckpoint.get());
  }

  checkpointAt(size: number): Checkpoint | undefined {
    return toCheckpoint(this.stmt.checkpointAt.get(size));
  }

  checkpoints(fromSize: number, toSize: number): Checkpoint[] {
    return this.stmt.checkpoints.all(fromSize, toSize).map((r) => toCheckpoint(r)!);
  }

  addCheckpoint(cp: Checkpoint): void {
    this.stmt.addCheckpoint.run(cp.size, cp.root, cp.text, cp.signedAt);
  }

  // ---- messages -----------------------------------------------------------

  getMessage(id: string): MessageRecord | undefined {
    const row = this.stmt.getMessage.get(id) as FullRow | undefined;
    return row && toRecord(row);
  }

  accept(msg: NewMessage, makeReceipt: ReceiptMaker): Promise<AcceptOutcome> {
    return this.write(() => this.acceptInTx(msg, makeReceipt));
  }

  private acceptInTx(msg: NewMessage, makeReceipt: ReceiptMaker): AcceptOutcome {
    // Checked again here: two submissions of one id may share a batch.
    const existing = this.stmt.getRow.get(msg.id) as MessageRow | undefined;
    if (existing) {
      if (existing.digest !== msg.digest) return { kind: 'conflict' };
      const { response } = this.stmt.getResponse.get(existing.seq) as { response: string };
      return { kind: 'replay', response: JSON.parse(response) as AcceptResponse };
    }
    const at = this.now();
    const acceptedAt = at.toISOString();
    const env = msg.envelope;
    const draft: AuditDraft = {
      event: 'message.accepted',
      actor: msg.actor,
      messageId: env.id,
      digest: msg.digest,
      from: env.from,
      to: env.to,
      type: env.type,
      ...(env.inReplyTo === undefined ? {} : { inReplyTo: env.inReplyTo }),
    };
    const { index } = this.appendEntry(draft, at);
    const response: AcceptResponse = {
      id: env.id,
      digest: msg.digest,
      logIndex: index,
      status: 'accepted',
      receipt: makeReceipt(index, acceptedAt),
    };
    const { lastInsertRowid } = this.stmt.insertMessage.run({
      id: env.id,
      digest: msg.digest,
      caseRef: env.caseRef,
      type: env.type,
      from: env.from,
      to: env.to,
      priority: env.priority,
      rank: PRIORITY_RANK[env.priority],
      respondBy: env.respondBy ?? null,
      respondByKey: env.respondBy === undefined ? NO_DEADLINE : Date.parse(env.respondBy),
      inReplyTo: env.inReplyTo ?? null,
      createdAt: env.createdAt,
      acceptedAt,
      logIndex: index,
    });
    this.stmt.insertBody.run(lastInsertRowid, msg.jws, JSON.stringify(response));
    this.addHistory(env.id, 'accepted', acceptedAt, msg.actor);
    this.stmt.insertOutbox.run(env.id, at.getTime());
    return { kind: 'accepted', response };
  }

  private addHistory(id: string, status: MessageStatus, at: string, actor: AuditActor): void {
    this.stmt.insertHistory.run(id, status, at, actor.agency, actor.role, actor.subject);
  }

  /** Moves a message to `status`, with its history row and audit entry. In a transaction. */
  private transition(
    row: MessageRow,
    status: MessageStatus,
    event: AuditDraft['event'],
    actor: AuditActor,
    claimedBy: string | null,
    detail?: AuditDraft['detail'],
  ): void {
    const at = this.now();
    this.stmt.setStatus.run(status, claimedBy, row.id);
    this.addHistory(row.id, status, at.toISOString(), actor);
    this.appendEntry(
      {
        event,
        actor,
        messageId: row.id,
        digest: row.digest,
        from: row.from_agency,
        to: row.to_agency,
        type: row.type,
        ...(detail === undefined ? {} : { detail }),
      },
      at,
    );
  }

  history(id: string): HistoryItem[] {
    const rows = this.stmt.history.all(id) as {
      status: MessageStatus;
      at: string;
      actor_agency: string;
      actor_role: string;
      actor_subject: string;
    }[];
    return rows.map((r) => ({
      status: r.status,
      at: r.at,
      by: { agency: r.actor_agency, role: r.actor_role, subject: r.actor_subject },
    }));
  }

  list(q: ListQuery): ListPage {
    const column = q.direction === 'received' ? 'm.to_agency' : 'm.from_agency';
    const where = [`${column} = ?`];
    const args: (string | number)[] = [q.agency];
    if (q.status) {
      where.push('m.status = ?');
      args.push(q.status);
    }
    if (q.type) {
      where.push('m.type = ?');
      args.push(q.type);
    }
    if (q.priority) {
      where.push('m.priority = ?');
      args.push(q.priority);
    }
    if (q.cursor !== undefined) {
      const [rank, key, seq] = decodeCursor(q.cursor);
      where.push('(m.priority_rank, m.respond_by_key, m.seq) > (?, ?, ?)');
      args.push(rank, key, seq);
    }
    const sql = `SELECT ${FULL} WHERE ${where.join(' AND ')}
      ORDER BY m.priority_rank, m.respond_by_key, m.seq LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, q.limit + 1) as FullRow[];
    const more = rows.length > q.limit;
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      items: page.map(toRecord),
      nextCursor:
        more && last ? encodeCursor([last.priority_rank, last.respond_by_key, last.seq]) : null,
    };
  }

  replies(id: string): MessageRecord[] {
    return (this.stmt.replies.all(id) as FullRow[]).map(toRecord);
  }

  claim(id: string, actor: AuditActor): Promise<ClaimOutcome> {
    return this.write((): ClaimOutcome => {
      const row = this.stmt.getRow.get(id) as MessageRow | undefined;
      if (!row) return 'unknown';
      if (row.status === 'claimed') return 'already-claimed';
      if (!CLAIMABLE.has(row.status as MessageStatus)) {
        return row.decision === null ? 'not-delivered' : 'decided';
      }
      this.transition(row, 'claimed', 'message.claimed', actor, actor.subject);
      return 'claimed';
    });
  }

  release(id: string, actor: AuditActor): Promise<'released' | 'not-claimed'> {
    return this.write(() => {
      const row = this.stmt.getRow.get(id) as MessageRow | undefined;
      if (!row || row.status !== 'claimed' || row.claimed_by !== actor.subject)
        return 'not-claimed';
      // The message goes back to the status it had before the claim.
      const before = this.history(id)
        .map((h) => h.status)
        .filter((s) => s !== 'claimed')
        .pop();
      this.transition(row, before ?? 'delivered', 'message.released', actor, null);
      return 'released';
    });
  }

  decide(
    id: string,
    status: DecisionStatus,
    actor: AuditActor,
    update: NewMessage,
    makeReceipt: ReceiptMaker,
  ): Promise<AcceptOutcome> {
    return this.write(() => {
      const row = this.stmt.getRow.get(id) as MessageRow | undefined;
      if (!row || !DECIDABLE.has(row.status as MessageStatus) || row.claimed_by !== actor.subject) {
        throw new CasebridgeError(
          'NOT_CLAIMED',
          'the message must be claimed by you before a decision',
        );
      }
      this.transition(row, status, 'message.decided', actor, null, { status });
      this.stmt.setDecision.run(status, id);
      return this.acceptInTx(update, makeReceipt);
    });
  }

  // ---- outbox and inbox ports --------------------------------------------

  /**
   * Rows due for a publish attempt. Fresh rows are read from a cursor past the
   * ones already handed out, so a busy relay reads each JWS once instead of
   * re-reading (and discarding) its whole in-flight window on every call; rows
   * rescheduled after a failure come back when due. Every few seconds the cursor
   * restarts at 0, so a row a caller dropped without rescheduling is found again.
   */
  dueOutbox(limit: number, now: Date, exclude: ReadonlySet<string>): OutboxItem[] {
    const t = now.getTime();
    if (t - this.outboxScanAt >= OUTBOX_RESCAN_MS || t < this.outboxScanAt) {
      this.outboxCursor = 0;
      this.outboxScanAt = t;
    }
    const out: OutboxItem[] = [];
    const take = (rows: OutboxRow[], advance: boolean) => {
      for (const r of rows) {
        if (out.length === limit) return;
        if (advance) this.outboxCursor = Math.max(this.outboxCursor, r.seq);
        if (!exclude.has(r.message_id)) out.push(toOutboxItem(r));
      }
    };
    if (this.outboxCursor > 0) {
      take(
        this.stmt.dueRetries.all(this.outboxCursor, t, limit + exclude.size) as OutboxRow[],
        false,
      );
    }
    if (out.length < limit) {
      // After a restart of the scan, rows in flight come first and are skipped.
      const extra = this.outboxCursor === 0 ? exclude.size : 0;
      take(
        this.stmt.dueFresh.all(this.outboxCursor, t, limit - out.length + extra) as OutboxRow[],
        true,
      );
    }
    return out;
  }

  markQueued(messageIds: readonly string[], actor: AuditActor): Promise<void> {
    if (messageIds.length === 0) return Promise.resolve();
    return this.write(() => {
      for (const id of messageIds) {
        this.stmt.deleteOutbox.run(id);
        const row = this.stmt.getRow.get(id) as MessageRow | undefined;
        // The consumer may already have recorded delivery (and with it `queued`).
        if (row && row.status === 'accepted') {
          this.transition(row, 'queued', 'message.queued', actor, null);
        }
      }
    });
  }

  reschedule(messageId: string, nextAttemptAt: Date, reason: string): void {
    this.stmt.reschedule.run(nextAttemptAt.getTime(), reason, messageId);
  }

  outboxLag(): number {
    return (this.stmt.outboxLag.get() as { n: number }).n;
  }

  deliver(messageId: string, digest: string, actor: AuditActor): Promise<DeliverOutcome> {
    return this.write(() => {
      const row = this.stmt.getRow.get(messageId) as MessageRow | undefined;
      if (!row || row.digest !== digest) return 'unknown';
      const at = this.now().toISOString();
      const inserted = this.stmt.insertDelivery.run(messageId, row.to_agency, at);
      if (inserted.changes === 0) return 'duplicate';
      if (row.status === 'accepted') {
        // The broker's confirm and the consumer race; the lifecycle stays in order.
        this.transition(row, 'queued', 'message.queued', actor, null);
      }
      this.transition({ ...row, status: 'queued' }, 'delivered', 'message.delivered', actor, null);
      return 'delivered';
    });
  }

  /** Commits the writes still queued, then closes; later writes are refused. */
  close(): void {
    if (this.closed) return;
    while (this.pending.length > 0) this.flush();
    this.closed = true;
    this.db.close();
  }
}

/** The envelope is the JWS payload, already strictly parsed once at submission. */
function envelopeOf(jws: string): Envelope {
  const payload = jws.slice(jws.indexOf('.') + 1, jws.lastIndexOf('.'));
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Envelope;
}

function toRecord(r: FullRow): MessageRecord {
  const envelope = envelopeOf(r.jws);
  return {
    id: r.id,
    digest: r.digest,
    jws: r.jws,
    envelope,
    type: r.type as MessageType,
    from: r.from_agency,
    to: r.to_agency,
    priority: r.priority as Priority,
    respondBy: r.respond_by,
    inReplyTo: r.in_reply_to,
    createdAt: r.created_at,
    acceptedAt: r.accepted_at,
    logIndex: r.log_index,
    status: r.status as MessageStatus,
    decision: r.decision as DecisionStatus | null,
    claimedBy: r.claimed_by,
    response: r.response,
  };
}

function toCheckpoint(row: unknown): Checkpoint | undefined {
  if (!row) return undefined;
  const r = row as { size: number; root: Buffer; note: string; signed_at: string };
  return { size: r.size, root: r.root, text: r.note, signedAt: r.signed_at };
}

function encodeCursor(parts: [number, number, number]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

function decodeCursor(cursor: string): [number, number, number] {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 3 && v.every((n) => Number.isSafeInteger(n))) {
      return v as [number, number, number];
    }
  } catch {
    // fall through
  }
  throw new CasebridgeError('INVALID_PARAMETER', 'cursor is not one this server issued');
}
