import { mkdirSync, statfsSync } from 'node:fs';
import type { DataDirLock } from './sqlite/dir-lock.js';
import { WalSync } from './sqlite/wal-sync.js';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { serializeEntry } from '../audit/entry.js';
import { leafHash, nodesCompletedBy } from '../audit/merkle.js';
import type { AuditActor, AuditDraft, NodeSource, StoredEntry } from '../audit/types.js';
import type { DecisionStatus, MessageType, Priority } from '../envelope/types.js';
import { CasebridgeError, ConfigError } from '../errors.js';
import {
  deliverySteps,
  review,
  type Claim,
  type ReviewAction,
  type ReviewState,
  type Transition,
} from '../review/lifecycle.js';
import { handlingOf, type HandlingCode } from '../messages/handling.js';
import { envelopeDigest } from '../messages/replay.js';
import { soleSigner } from '../checkpoints/ports.js';
import { epochOf } from '../retention/keys.js';
import { localVault, type MessageVault, type SealedMessage } from '../retention/vault.js';
import { MIGRATE_1_TO_2, MIGRATE_2_TO_3, SCHEMA_SQL, SCHEMA_VERSION } from './schema.sql.js';
import {
  StoreUnavailableError,
  storeFailureOf,
  wrapWriteError,
  type StoreFailure,
} from './errors.js';
import { SqliteFileIndex } from './sqlite-files.js';
import type {
  AcceptOutcome,
  AcceptResponse,
  ChangeListener,
  Checkpoint,
  DeadlineCount,
  DeliverOutcome,
  HistoryActor,
  HistoryEvent,
  HistoryItem,
  ListPage,
  ListQuery,
  MessageChange,
  MessageRecord,
  MessageStatus,
  NewMessage,
  OutboxItem,
  ReceiptMaker,
  ReviewOutcome,
  Store,
  StoreHealth,
} from './types.js';
import type { NodeCoord } from '../audit/types.js';
import type { RecordedMessage } from '../messages/replay.js';
import { envelopeOf } from '../envelope/payload.js';
import {
  auditActor,
  deadlineKeys,
  decodeCursor,
  encodeCursor,
  messageRowValues,
  NO_DEADLINE,
} from './rows.js';

/** Review events that become audit entries, and their names (protocol §6.1). */
const REVIEW_AUDIT = {
  claimed: 'message.claimed',
  released: 'message.released',
  lapsed: 'message.claim-lapsed',
  decided: 'message.decided',
} as const;

export interface SqliteStoreOptions {
  dataDir: string;
  now?: () => Date;
  /** The actor of what the gateway does by itself, such as a claim lapse. */
  gatewayActor?: AuditActor;
  /** Longest a write waits for others to join its transaction (group commit). */
  maxBatch?: number;
  /** Free bytes the data directory must have at open; less is a full disk. Default 1 MiB. */
  minFreeBytes?: number;
  /** Seals message bytes at rest; default: `localVault(dataDir)` (tests and tools only). */
  vault?: MessageVault;
  /** The gateway's hold on the data directory, released when the store closes. */
  dirLock?: DataDirLock;
}

/** How often a store that failed to write tries a small write to see whether it can again. */
const PROBE_MS = 1000;
const DEFAULT_MIN_FREE = 1024 * 1024;

/** The small, mutable row of a message; its bytes live in message_bodies. */
interface MessageRow {
  seq: number;
  id: string;
  digest: string;
  envelope_digest: string;
  case_ref: string;
  type: string;
  from_agency: string;
  to_agency: string;
  priority: string;
  priority_rank: number;
  respond_by: string | null;
  deadline_key: number;
  in_reply_to: string | null;
  created_at: string;
  accepted_at: string;
  log_index: number;
  status: string;
  decision: string | null;
  claimed_by: string | null;
  deadline: string | null;
  due_soon_key: number;
  claimed_name: string | null;
  claimed_at: string | null;
  claim_expires_at: number | null;
  overdue_noted: number;
}

/**
 * The columns a delivery step reads (its audit entry, its change event). Reading
 * these instead of the whole row builds a far smaller object per step.
 */
type StepRow = Pick<
  MessageRow,
  | 'id'
  | 'digest'
  | 'type'
  | 'priority'
  | 'from_agency'
  | 'to_agency'
  | 'status'
  | 'decision'
  | 'in_reply_to'
>;

/** The sealed bytes of a message, or nulls once shredded. */
interface SealedColumns {
  sealed: Buffer | null;
  wrapped_key: Buffer | null;
  epoch: string | null;
}

interface FullRow extends MessageRow, SealedColumns {
  handling: string;
  response: string;
  shredded_at: string | null;
}

/** Columns of a message with its body. */
const FULL = `m.*, b.sealed, b.wrapped_key, b.epoch, b.handling, b.response, b.shredded_at
  FROM messages m JOIN message_bodies b ON b.seq = m.seq`;

const OUTBOX_RESCAN_MS = 5000;
/** The longest a row waits for its next attempt: the transport's backoff cap (30 s). */
const OUTBOX_MAX_DELAY_MS = 30_000;
const OUTBOX_COLUMNS = `o.seq, o.message_id, o.attempts, b.sealed, b.wrapped_key, b.epoch, m.digest,
  m.log_index, m.from_agency, m.to_agency, m.type, m.accepted_at`;
const OUTBOX_FROM = `outbox o JOIN messages m ON m.id = o.message_id JOIN message_bodies b ON b.seq = m.seq`;

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

function toOutboxItem(r: OutboxRow, jws: string): OutboxItem {
  return {
    messageId: r.message_id,
    jws,
    digest: r.digest,
    logIndex: r.log_index,
    from: r.from_agency,
    to: r.to_agency,
    type: r.type as MessageType,
    acceptedAt: r.accepted_at,
    attempts: r.attempts,
  };
}

interface HistoryRow {
  status: MessageStatus;
  event: HistoryEvent;
  decision: DecisionStatus | null;
  at: string;
  actor_agency: string;
  actor_role: string;
  actor_subject: string;
  actor_name: string | null;
}

/** An outbox row that a write inserted, as dueOutbox hands it out. */
interface FreshRow {
  seq: number;
  item: OutboxItem;
}

/** What a write collects while it runs; acted on only once its commit is on disk. */
interface Collected {
  changes: MessageChange[];
  outbox: FreshRow[];
}

/** Most fresh outbox rows kept in memory; past it (a stalled transport) the table is read again. */
const FRESH_MAX = 4096;

interface PendingWrite {
  run: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** The embedded store: one SQLite file under the data directory, WAL, fsync on commit. */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly now: () => Date;
  private readonly gatewayActor: AuditActor | undefined;
  private readonly maxBatch: number;
  private readonly vault: MessageVault;
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
  /** Whether a row may wait for a retry: found by each full scan, set by each reschedule. */
  private retriesMayBeDue = true;
  /**
   * The latest node written at each level of the tree (level 0: the leaf hash), so an
   * append reads its left siblings from memory, not from the database. Cleared when a
   * transaction rolls back, since its nodes are then gone.
   */
  private frontier: ({ index: number; hash: Buffer } | undefined)[] = [];
  private readonly appendSource: NodeSource;
  private readonly listeners: ChangeListener[] = [];
  /** Changes and outbox rows of the write running now; used only once its commit is on disk. */
  private collecting: Collected | undefined;
  /**
   * Outbox rows committed and flushed since `freshFrom`, in seq order, with what
   * dueOutbox hands out: the transport gets a row just accepted without reading
   * it back and opening its sealed bytes. Complete for every seq above
   * `freshFrom` (unset: not complete); each full scan starts it again from the
   * table's highest seq.
   */
  private fresh: FreshRow[] = [];
  private freshFrom: number | undefined;
  private readonly dataDir: string;
  private readonly dirLock: DataDirLock | undefined;
  /** Set while writes fail for a reason to wait out; cleared by the next write that commits. */
  private failure: StoreFailure | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private readonly probe: Database.Statement;
  private readonly walSync: WalSync;
  /** `ts` of the latest entry, in ms (see stamp). */
  private lastTsMs = 0;
  private readonly schedAnchor = Date.now();
  private readonly monoAnchor = performance.now();
  /** Evidence-file records (protocol §9), in the same database and transactions. */
  readonly files: SqliteFileIndex;
  /** One process opens the file, so it alone signs. */
  readonly lease = soleSigner;

  /** Throws StoreUnavailableError when the data directory has no room (or refuses writes). */
  constructor(opts: SqliteStoreOptions) {
    this.dataDir = opts.dataDir;
    this.dirLock = opts.dirLock;
    try {
      mkdirSync(opts.dataDir, { recursive: true });
      const free = freeBytesOf(opts.dataDir);
      if (free !== undefined && free < (opts.minFreeBytes ?? DEFAULT_MIN_FREE)) {
        throw new StoreUnavailableError('disk-full', 'ENOSPC');
      }
      this.db = new Database(join(opts.dataDir, 'casebridge.sqlite'));
    } catch (e) {
      throw wrapWriteError(e);
    }
    this.now = opts.now ?? (() => new Date());
    this.gatewayActor = opts.gatewayActor;
    try {
      this.db.pragma('journal_mode = WAL');
      // NORMAL: a commit only writes its WAL frames; WalSync then flushes the WAL to
      // disk on the thread pool, and no write is answered before that flush is done
      // (protocol §3). SQLite still syncs around its own checkpoints.
      this.db.pragma('synchronous = NORMAL');
      this.db.pragma('foreign_keys = ON');
      // Removed and rewritten rows are overwritten with zeros, not left in free pages.
      this.db.pragma('secure_delete = ON');
      this.vault = opts.vault ?? localVault(opts.dataDir);
      this.ensureSchema();
      this.probe = this.db.prepare(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      );
      // A real write at open: a disk that cannot take one fails the start, not the first request.
      this.probe.run('opened_at', new Date().toISOString());
      // The probe created the WAL; from now on it is flushed through this handle.
      this.walSync = new WalSync(opts.dataDir, 'casebridge.sqlite-wal', () => {
        if (this.pending.length > 0) this.scheduleFlush();
      });
    } catch (e) {
      this.db.close();
      throw wrapWriteError(e);
    }
    this.maxBatch = opts.maxBatch ?? 512;
    this.stmt = this.prepare();
    this.runBatch = this.db.transaction((batch: PendingWrite[]) => batch.map((w) => w.run()));
    this.runOne = this.db.transaction((w: PendingWrite) => w.run());
    const last = this.stmt.maxIndex.get() as { m: number | null };
    this.size = last.m === null ? 0 : last.m + 1;
    if (last.m !== null) {
      const { entry } = this.stmt.getEntry.get(last.m) as { entry: Buffer };
      this.lastTsMs = Date.parse((JSON.parse(entry.toString('utf8')) as { ts: string }).ts);
    }
    // Due times persisted by an earlier run were on that run's clock. Whatever the
    // wall clock did meanwhile, no row waits longer than the longest backoff.
    const latest = this.schedNow() + OUTBOX_MAX_DELAY_MS;
    try {
      this.stmt.clampOutbox.run(latest, latest);
    } catch (e) {
      this.db.close();
      throw wrapWriteError(e);
    }
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
    this.appendSource = {
      node: (level, index) => {
        const f = this.frontier[level];
        return f !== undefined && f.index === index ? f.hash : this.nodeSource.node(level, index);
      },
    };
    this.files = new SqliteFileIndex({
      db: this.db,
      write: (run) => this.write(run),
      appendEntry: (draft, at) => this.appendEntry(draft, at),
      now: this.now,
    });
  }

  /** Creates the schema, or migrates an older one; refuses a newer one (protocol §11). */
  private ensureSchema(): void {
    const db = this.db;
    const hasMeta = db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")
      .get();
    const row = hasMeta
      ? (db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as
          { value: string } | undefined)
      : undefined;
    const version = row === undefined ? SCHEMA_VERSION : Number(row.value);
    if (!Number.isSafeInteger(version) || version > SCHEMA_VERSION || version < 1) {
      db.close();
      throw new ConfigError(
        'CASEBRIDGE_DATA_DIR',
        `holds store schema version ${row?.value}; this gateway knows up to ${SCHEMA_VERSION}`,
      );
    }
    db.transaction(() => {
      if (version < 2) this.migrate1to2();
      if (version < 3) this.migrate2to3();
      db.exec(SCHEMA_SQL);
      db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(
        'schema_version',
        String(SCHEMA_VERSION),
      );
    })();
  }

  /** Version 2 → 3: message bytes sealed at rest, under the epoch of their acceptance day. */
  private migrate2to3(): void {
    const rows = this.db
      .prepare(
        `SELECT m.seq, m.id, m.accepted_at, b.jws, b.response FROM messages m
         JOIN message_bodies b ON b.seq = m.seq`,
      )
      .all() as { seq: number; id: string; accepted_at: string; jws: string; response: string }[];
    this.db.exec(MIGRATE_2_TO_3);
    // Stores of version 2 written before the replay digest existed lack its column.
    const columns = this.db.prepare('PRAGMA table_info(messages)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'envelope_digest')) {
      this.db.exec("ALTER TABLE messages ADD COLUMN envelope_digest TEXT NOT NULL DEFAULT ''");
      const setDigest = this.db.prepare('UPDATE messages SET envelope_digest = ? WHERE seq = ?');
      for (const r of rows) setDigest.run(envelopeDigest(envelopeOf(r.jws)), r.seq);
    }
    const insert = this.db.prepare(`INSERT INTO message_bodies
      (seq, sealed, wrapped_key, epoch, handling, response) VALUES (?, ?, ?, ?, ?, ?)`);
    for (const r of rows) {
      const sealed = this.vault.seal(r.id, r.jws, new Date(r.accepted_at));
      const env = envelopeOf(r.jws);
      insert.run(
        r.seq,
        sealed.sealed,
        sealed.wrappedKey,
        sealed.epoch,
        handlingOf(env),
        r.response,
      );
    }
  }

  private migrate1to2(): void {
    this.db.exec(MIGRATE_1_TO_2);
    const rows = this.db
      .prepare(
        `SELECT m.seq, m.created_at, b.jws FROM messages m JOIN message_bodies b ON b.seq = m.seq
         WHERE m.respond_by IS NOT NULL OR m.type = 'funds.freeze'`,
      )
      .all() as { seq: number; created_at: string; jws: string }[];
    const set = this.db.prepare(
      'UPDATE messages SET deadline = ?, deadline_key = ?, due_soon_key = ? WHERE seq = ?',
    );
    for (const r of rows) {
      const d = deadlineKeys(envelopeOf(r.jws), r.created_at);
      set.run(d.deadline, d.deadlineKey, d.dueSoonKey, r.seq);
    }
    // Claims carried over get a fresh default lapse time from the migration on.
    this.db
      .prepare("UPDATE messages SET claim_expires_at = ? WHERE status = 'claimed'")
      .run(this.now().getTime() + 1_800_000);
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
      getStepRow: db.prepare(`SELECT id, digest, type, priority, from_agency, to_agency, status,
        decision, in_reply_to FROM messages WHERE id = ?`),
      getMessage: db.prepare(`SELECT ${FULL} WHERE m.id = ?`),
      insertMessage: db.prepare(`INSERT INTO messages
        (id, digest, envelope_digest, case_ref, type, from_agency, to_agency, priority, priority_rank,
         respond_by, deadline, deadline_key, due_soon_key, in_reply_to, created_at, accepted_at,
         log_index, status)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'accepted')`),
      insertBody:
        db.prepare(`INSERT INTO message_bodies (seq, sealed, wrapped_key, epoch, handling, response)
        VALUES (?, ?, ?, ?, ?, ?)`),
      liveEpochs: db.prepare(
        'SELECT DISTINCT epoch FROM message_bodies WHERE sealed IS NOT NULL ORDER BY epoch',
      ),
      sealedIn: db.prepare(`SELECT b.seq, m.id, m.digest, m.from_agency, m.to_agency, m.type,
        b.sealed, b.wrapped_key, b.epoch, o.message_id IS NOT NULL AS pending
        FROM message_bodies b JOIN messages m ON m.seq = b.seq
        LEFT JOIN outbox o ON o.message_id = m.id
        WHERE b.epoch = ? AND b.sealed IS NOT NULL ORDER BY b.seq`),
      rewrap: db.prepare('UPDATE message_bodies SET wrapped_key = ?, epoch = ? WHERE seq = ?'),
      shred: db.prepare(`UPDATE message_bodies SET sealed = NULL, wrapped_key = NULL, epoch = NULL,
        shredded_at = ? WHERE seq = ?`),
      getResponse: db.prepare('SELECT response FROM message_bodies WHERE seq = ?'),
      getRecorded: db.prepare(`SELECT m.digest, m.envelope_digest, b.response
        FROM messages m JOIN message_bodies b ON b.seq = m.seq WHERE m.id = ?`),
      setStatus: db.prepare('UPDATE messages SET status = ? WHERE id = ?'),
      setReview: db.prepare(`UPDATE messages SET status = @status, decision = @decision,
        claimed_by = @subject, claimed_name = @name, claimed_at = @at, claim_expires_at = @expires
        WHERE id = @id`),
      insertHistory: db.prepare(`INSERT INTO message_history
        (message_id, status, event, decision, at, actor_agency, actor_role, actor_subject, actor_name)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      history: db.prepare(`SELECT status, event, decision, at, actor_agency, actor_role,
        actor_subject, actor_name FROM message_history WHERE message_id = ? ORDER BY n`),
      expiredClaims: db.prepare(`SELECT * FROM messages
        WHERE status = 'claimed' AND claim_expires_at <= ? ORDER BY claim_expires_at LIMIT ?`),
      newlyOverdue: db.prepare(`SELECT * FROM messages
        WHERE status <> 'decided' AND overdue_noted = 0 AND deadline_key <= ?
        ORDER BY deadline_key LIMIT ?`),
      markOverdue: db.prepare(
        'UPDATE messages SET overdue_noted = 1 WHERE id = ? AND overdue_noted = 0',
      ),
      deadlineCounts: db.prepare(`SELECT to_agency AS agency, priority,
        SUM(deadline_key <= @now) AS overdue,
        SUM(deadline_key > @now AND due_soon_key <= @now) AS dueSoon
        FROM messages WHERE status <> 'decided' AND deadline_key < ${NO_DEADLINE}
        GROUP BY to_agency, priority`),
      insertOutbox: db.prepare('INSERT INTO outbox (message_id, next_attempt_at) VALUES (?, ?)'),
      deleteOutbox: db.prepare('DELETE FROM outbox WHERE message_id = ?'),
      dueFresh: db.prepare(`SELECT ${OUTBOX_COLUMNS} FROM ${OUTBOX_FROM}
        WHERE o.seq > ? AND o.next_attempt_at <= ? ORDER BY o.seq LIMIT ?`),
      dueRetries: db.prepare(`SELECT ${OUTBOX_COLUMNS} FROM ${OUTBOX_FROM}
        WHERE o.seq <= ? AND o.attempts > 0 AND o.next_attempt_at <= ? ORDER BY o.seq LIMIT ?`),
      anyRetry: db.prepare('SELECT 1 FROM outbox WHERE attempts > 0 LIMIT 1'),
      // AUTOINCREMENT: every later row has a higher seq than any issued so far.
      outboxHighest: db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'"),
      clampOutbox: db.prepare('UPDATE outbox SET next_attempt_at = ? WHERE next_attempt_at > ?'),
      reschedule: db.prepare(
        'UPDATE outbox SET next_attempt_at = ?, attempts = attempts + 1, last_error = ? WHERE message_id = ?',
      ),
      outboxLag: db.prepare('SELECT COUNT(*) AS n FROM outbox'),
      outboxOldest: db.prepare(
        'SELECT m.accepted_at AS at FROM outbox o JOIN messages m ON m.id = o.message_id ORDER BY o.seq LIMIT 1',
      ),
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
   * While a WAL flush runs, writes wait and commit together when it ends: a write
   * committed during the flush would be durable no sooner (it needs the next one),
   * and one commit of many writes rewrites the shared pages once, not once per write.
   */
  private write<T>(run: () => T): Promise<T> {
    if (this.closed)
      return Promise.reject(new CasebridgeError('UNAVAILABLE', 'the store is closed'));
    const got: Collected = { changes: [], outbox: [] };
    // A replayed write starts afresh; what it collected is used after its commit.
    const collect = (): T => {
      got.changes.length = 0;
      got.outbox.length = 0;
      this.collecting = got;
      try {
        return run();
      } finally {
        this.collecting = undefined;
      }
    };
    return new Promise<T>((resolve, reject) => {
      const committed = (v: unknown) => {
        this.keepFresh(got.outbox);
        resolve(v as T);
        this.publish(got.changes);
      };
      this.pending.push({ run: collect, resolve: committed, reject });
      this.scheduleFlush();
    });
  }

  /** Commits the queued writes in the next turn, or when the running WAL flush ends. */
  private scheduleFlush(): void {
    if (this.flushScheduled || this.walSync.busy) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  onChange(listener: ChangeListener): void {
    this.listeners.push(listener);
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

  private changed(row: StepRow, event: MessageChange['event']): void {
    this.collecting?.changes.push({ event, message: changeView(row) });
  }

  /** Adds a durable write's outbox rows to `fresh`, or gives it up until the next full scan. */
  private keepFresh(rows: readonly FreshRow[]): void {
    for (const r of rows) {
      if (this.freshFrom === undefined || r.seq <= this.freshFrom) continue;
      const last = this.fresh[this.fresh.length - 1];
      if (this.fresh.length >= FRESH_MAX || (last !== undefined && r.seq <= last.seq)) {
        this.dropFresh();
        return;
      }
      this.fresh.push(r);
    }
  }

  private dropFresh(): void {
    this.fresh = [];
    this.freshFrom = undefined;
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
      this.wrote();
      this.whenDurable(
        () => batch.forEach((w, k) => w.resolve(values[k])),
        (err) => batch.forEach((w) => w.reject(err)),
      );
      return;
    } catch (e) {
      // Something in the batch failed and the whole transaction rolled back.
      this.size = sizeBefore;
      this.frontier = [];
      this.noteFailure(e);
    }
    // Rare path: each write again in a transaction of its own, so only the failing one fails.
    // On a full disk each fails too, and every caller hears so: none got its 202.
    for (const w of batch) {
      const at = this.size;
      try {
        const value = this.runOne(w);
        this.wrote();
        this.whenDurable(() => w.resolve(value), w.reject);
      } catch (e) {
        this.size = at;
        this.frontier = [];
        this.noteFailure(e);
        w.reject(wrapWriteError(e));
      }
    }
  }

  /**
   * Calls `ok` once what has committed so far is on disk, or `fail` if the flush
   * failed. The commit itself returned already: the flush runs off the event loop,
   * and every commit made while one flush runs shares the next.
   */
  private whenDurable(ok: () => void, fail: (e: unknown) => void): void {
    this.walSync.request(ok, (e) => {
      // Committed rows whose flush failed are not in `fresh`; the table has them.
      this.dropFresh();
      this.noteFailure(e);
      fail(wrapWriteError(e));
    });
  }

  // ---- write health -------------------------------------------------------

  private wrote(): void {
    if (this.failure === undefined) return;
    this.failure = undefined;
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = undefined;
  }

  private noteFailure(e: unknown): void {
    const reason = storeFailureOf(e);
    if (reason === undefined) return;
    this.failure = reason;
    if (this.probeTimer || this.closed) return;
    // Nothing may write for a while; a small write each second notices when space is back.
    this.probeTimer = setInterval(() => {
      try {
        this.probe.run('probe_at', new Date().toISOString());
        this.wrote();
      } catch (err) {
        this.noteFailure(err);
      }
    }, PROBE_MS);
    this.probeTimer.unref();
  }

  /** Why writes fail right now, or undefined when the last write committed (for /readyz). */
  writeFailure(): StoreFailure | undefined {
    return this.failure;
  }

  health(): Promise<StoreHealth> {
    return Promise.resolve({
      engine: 'sqlite',
      failure: this.failure,
      freeBytes: freeBytesOf(this.dataDir),
      outboxOldestAgeS: this.outboxOldestAgeS(),
    });
  }

  // ---- audit log ----------------------------------------------------------

  /** Appends one entry and its tree nodes. Must run inside a transaction. */
  private appendEntry(draft: AuditDraft, at: Date): StoredEntry {
    const index = this.size;
    const bytes = serializeEntry(draft, index, at);
    this.stmt.putEntry.run(index, bytes);
    for (const n of nodesCompletedBy(index, leafHash(bytes), this.appendSource)) {
      if (n.level > 0) this.stmt.putNode.run(n.level, n.index, n.hash);
      this.frontier[n.level] = n;
    }
    this.size = index + 1;
    this.lastTsMs = Math.max(this.lastTsMs, at.getTime());
    return { index, bytes };
  }

  /**
   * The time for a new entry: the wall clock, but never before the latest entry's
   * `ts`, so entry timestamps never decrease when the clock is stepped back.
   */
  private stamp(): Date {
    const t = this.now().getTime();
    return t >= this.lastTsMs ? new Date(t) : new Date(this.lastTsMs);
  }

  /**
   * The outbox's scheduling clock, in ms: the wall clock read once at open, then
   * advanced by the monotonic clock only. A step of the wall clock moves no row's
   * turn; rows leave in accept order (outbox seq) and retries after their backoff.
   */
  private schedNow(): number {
    return this.schedAnchor + (performance.now() - this.monoAnchor);
  }

  append(draft: AuditDraft): Promise<StoredEntry> {
    return this.write(() => this.appendEntry(draft, this.stamp()));
  }

  treeSize(): Promise<number> {
    return Promise.resolve(this.size);
  }

  entries(start: number, end: number): Promise<StoredEntry[]> {
    return Promise.resolve(this.entriesNow(start, end));
  }

  private entriesNow(start: number, end: number): StoredEntry[] {
    const rows = this.stmt.entries.all(start, end) as { idx: number; entry: Buffer }[];
    return rows.map((r) => ({ index: r.idx, bytes: r.entry }));
  }

  /** Streams entries in pages, so an export of millions never sits in memory. */
  *iterateEntries(start: number, end: number, page = 1000): Generator<StoredEntry> {
    for (let i = start; i < end; i += page) {
      yield* this.entriesNow(i, Math.min(end, i + page));
    }
  }

  /** The tree's nodes, read synchronously (tests and tools over a local store). */
  nodes(): NodeSource {
    return this.nodeSource;
  }

  nodesAt(coords: readonly NodeCoord[]): Promise<Buffer[]> {
    return Promise.resolve(coords.map((c) => this.nodeSource.node(c.level, c.index)));
  }

  latestCheckpoint(): Promise<Checkpoint | undefined> {
    return Promise.resolve(toCheckpoint(this.stmt.latestCheckpoint.get()));
  }

  checkpointAt(size: number): Promise<Checkpoint | undefined> {
    return Promise.resolve(toCheckpoint(this.stmt.checkpointAt.get(size)));
  }

  checkpoints(fromSize: number, toSize: number): Promise<Checkpoint[]> {
    return Promise.resolve(
      this.stmt.checkpoints.all(fromSize, toSize).map((r) => toCheckpoint(r)!),
    );
  }

  async addCheckpoint(cp: Checkpoint): Promise<void> {
    await this.write(() => this.stmt.addCheckpoint.run(cp.size, cp.root, cp.text, cp.signedAt));
  }

  // ---- messages -----------------------------------------------------------

  async getMessage(id: string): Promise<MessageRecord | undefined> {
    const row = this.stmt.getMessage.get(id) as FullRow | undefined;
    return row && this.toRecord(row);
  }

  /** The JWS of a row, opened; null once shredded. */
  private openJws(id: string, r: SealedColumns): string | null {
    if (r.sealed === null || r.wrapped_key === null || r.epoch === null) return null;
    return this.vault.open(id, { sealed: r.sealed, wrappedKey: r.wrapped_key, epoch: r.epoch });
  }

  private toRecord(r: FullRow): MessageRecord {
    const jws = this.openJws(r.id, r);
    return {
      id: r.id,
      digest: r.digest,
      jws,
      envelope: jws === null ? null : envelopeOf(jws),
      shreddedAt: r.shredded_at,
      type: r.type as MessageType,
      caseRef: r.case_ref,
      handling: r.handling as HandlingCode,
      from: r.from_agency,
      to: r.to_agency,
      priority: r.priority as Priority,
      respondBy: r.respond_by,
      deadline: r.deadline,
      inReplyTo: r.in_reply_to,
      createdAt: r.created_at,
      acceptedAt: r.accepted_at,
      logIndex: r.log_index,
      status: r.status as MessageStatus,
      decision: r.decision as DecisionStatus | null,
      claim: r.status === 'claimed' ? claimOf(r) : null,
      response: r.response,
    };
  }

  async recorded(
    id: string,
  ): Promise<(RecordedMessage & { response: AcceptResponse }) | undefined> {
    const row = this.stmt.getRecorded.get(id) as
      { digest: string; envelope_digest: string; response: string } | undefined;
    if (!row) return undefined;
    return {
      digest: row.digest,
      envelopeDigest: row.envelope_digest,
      response: JSON.parse(row.response) as AcceptResponse,
    };
  }

  accept(msg: NewMessage, makeReceipt: ReceiptMaker): Promise<AcceptOutcome> {
    return this.write(() => {
      const outcome = this.acceptInTx(msg, makeReceipt);
      if (outcome.kind === 'accepted') this.answerInTx(msg);
      return outcome;
    });
  }

  private acceptInTx(msg: NewMessage, makeReceipt: ReceiptMaker): AcceptOutcome {
    // Checked again here: two submissions of one id may share a batch.
    const existing = this.stmt.getRow.get(msg.id) as MessageRow | undefined;
    if (existing) {
      // protocol §3: compared by meaning (RFC 8785 envelope digest), never by signature bytes.
      if (existing.envelope_digest !== msg.envelopeDigest)
        return { kind: 'conflict', digest: existing.digest };
      const { response } = this.stmt.getResponse.get(existing.seq) as { response: string };
      return { kind: 'replay', response: JSON.parse(response) as AcceptResponse };
    }
    const at = this.stamp();
    const acceptedAt = at.toISOString();
    const env = msg.envelope;
    const draft: AuditDraft = {
      event: 'message.accepted',
      actor: auditActor(msg.actor),
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
    const { lastInsertRowid } = this.stmt.insertMessage.run(
      ...messageRowValues(msg, acceptedAt, index),
    );
    const sealed = this.vault.seal(env.id, msg.jws, at);
    this.stmt.insertBody.run(
      lastInsertRowid,
      sealed.sealed,
      sealed.wrappedKey,
      sealed.epoch,
      handlingOf(env),
      JSON.stringify(response),
    );
    this.addHistory(env.id, 'accepted', 'accepted', null, acceptedAt, msg.actor);
    if (msg.files !== undefined) this.files.bindInTx(env.id, msg.files, msg.actor, at);
    const outboxRow = this.stmt.insertOutbox.run(env.id, this.schedNow());
    this.collecting?.outbox.push({
      seq: Number(outboxRow.lastInsertRowid),
      item: {
        messageId: env.id,
        jws: msg.jws,
        digest: msg.digest,
        logIndex: index,
        from: env.from,
        to: env.to,
        type: env.type,
        acceptedAt,
        attempts: 0,
      },
    });
    return { kind: 'accepted', response };
  }

  /**
   * protocol §5.1: a status.update from the recipient of the message it answers
   * sets that message's decision (a gateway-issued one was applied by `decide`).
   */
  private answerInTx(msg: NewMessage): void {
    const env = msg.envelope;
    const status = env.body['status'];
    if (env.type !== 'status.update' || env.inReplyTo === undefined) return;
    if (typeof status !== 'string') return;
    const row = this.stmt.getRow.get(env.inReplyTo) as MessageRow | undefined;
    if (!row || row.to_agency !== env.from) return;
    this.applyReview(row, { kind: 'answer', decision: status as DecisionStatus }, msg.actor);
  }

  private addHistory(
    id: string,
    status: MessageStatus,
    event: HistoryEvent,
    decision: DecisionStatus | null,
    at: string,
    actor: HistoryActor,
  ): void {
    this.stmt.insertHistory.run(
      id,
      status,
      event,
      decision,
      at,
      actor.agency,
      actor.role,
      actor.subject,
      actor.name ?? null,
    );
  }

  /**
   * Moves a message along its delivery lifecycle by the rules of review/lifecycle.ts,
   * each step with its history row and audit entry. In a transaction.
   */
  private deliverySteps(row: StepRow, event: 'confirmed' | 'delivered', actor: AuditActor): void {
    const steps = deliverySteps(row.status as MessageStatus, event);
    if (steps.length === 0) return;
    const at = this.stamp();
    for (const status of steps) {
      this.stmt.setStatus.run(status, row.id);
      this.addHistory(row.id, status, status, null, at.toISOString(), actor);
      this.appendEntry(messageDraft(row, `message.${status}`, actor), at);
      if (status === 'delivered') this.changed({ ...row, status }, 'delivered');
    }
  }

  /**
   * Applies a review action by the rules of review/lifecycle.ts: each transition
   * they return is written with its history row and audit entry. In a transaction.
   */
  private applyReview(row: MessageRow, action: ReviewAction, actor: HistoryActor): ReviewOutcome {
    const at = this.stamp();
    const result = review(stateOf(row), action, at);
    let cur = row;
    for (const t of result.transitions) cur = this.applyTransition(cur, t, actor, at);
    const record = this.record(row.id);
    return result.refusal === undefined
      ? { kind: 'done', record }
      : { kind: 'refused', refusal: result.refusal, record };
  }

  private applyTransition(
    row: MessageRow,
    t: Transition,
    caller: HistoryActor,
    at: Date,
  ): MessageRow {
    const next = t.next;
    this.stmt.setReview.run({
      id: row.id,
      status: next.status,
      decision: next.decision,
      subject: next.claim?.subject ?? null,
      name: next.claim?.name ?? null,
      at: next.claim?.at ?? null,
      expires: next.claim === null ? null : Date.parse(next.claim.expiresAt),
    });
    const updated: MessageRow = {
      ...row,
      status: next.status,
      decision: next.decision,
      claimed_by: next.claim?.subject ?? null,
      claimed_name: next.claim?.name ?? null,
      claimed_at: next.claim?.at ?? null,
      claim_expires_at: next.claim === null ? null : Date.parse(next.claim.expiresAt),
    };
    this.changed(updated, t.event);
    if (t.event === 'noted') return updated;
    const actor = t.by === 'gateway' ? (this.gatewayActor ?? caller) : caller;
    this.addHistory(row.id, next.status, t.event, t.decision ?? null, at.toISOString(), actor);
    const draft = messageDraft(row, REVIEW_AUDIT[t.event], actor);
    if (t.decision !== undefined) draft.detail = { status: t.decision };
    this.appendEntry(draft, at);
    return updated;
  }

  private record(id: string): MessageRecord {
    return this.toRecord(this.stmt.getMessage.get(id) as FullRow);
  }

  async history(id: string): Promise<HistoryItem[]> {
    const rows = this.stmt.history.all(id) as HistoryRow[];
    return rows.map((r) => ({
      status: r.status,
      event: r.event,
      ...(r.decision === null ? {} : { decision: r.decision }),
      at: r.at,
      by: {
        agency: r.actor_agency,
        role: r.actor_role,
        subject: r.actor_subject,
        ...(r.actor_name === null ? {} : { name: r.actor_name }),
      },
    }));
  }

  async list(q: ListQuery): Promise<ListPage> {
    const column = q.direction === 'received' ? 'm.to_agency' : 'm.from_agency';
    const where = [`${column} = ?`];
    const args: (string | number)[] = [q.agency];
    if (q.status === 'open') {
      where.push("m.status <> 'decided'");
    } else if (q.status) {
      where.push('m.status = ?');
      args.push(q.status);
    }
    if (q.decision === 'none') {
      where.push('m.decision IS NULL');
    } else if (q.decision) {
      where.push('m.decision = ?');
      args.push(q.decision);
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
      where.push('(m.priority_rank, m.deadline_key, m.seq) > (?, ?, ?)');
      args.push(rank, key, seq);
    }
    const sql = `SELECT ${FULL} WHERE ${where.join(' AND ')}
      ORDER BY m.priority_rank, m.deadline_key, m.seq LIMIT ?`;
    const rows = this.db.prepare(sql).all(...args, q.limit + 1) as FullRow[];
    const more = rows.length > q.limit;
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r) => this.toRecord(r)),
      nextCursor:
        more && last ? encodeCursor([last.priority_rank, last.deadline_key, last.seq]) : null,
    };
  }

  async replies(id: string): Promise<MessageRecord[]> {
    return (this.stmt.replies.all(id) as FullRow[]).map((r) => this.toRecord(r));
  }

  review(id: string, action: ReviewAction, actor: HistoryActor): Promise<ReviewOutcome> {
    return this.write((): ReviewOutcome => {
      const row = this.stmt.getRow.get(id) as MessageRow | undefined;
      if (!row) return { kind: 'unknown' };
      return this.applyReview(row, action, actor);
    });
  }

  decide(
    id: string,
    action: Extract<ReviewAction, { kind: 'decide' }>,
    actor: HistoryActor,
    update: NewMessage,
    makeReceipt: ReceiptMaker,
  ): Promise<{ review: ReviewOutcome; accept?: AcceptOutcome }> {
    return this.write(() => {
      const row = this.stmt.getRow.get(id) as MessageRow | undefined;
      if (!row) return { review: { kind: 'unknown' } as ReviewOutcome };
      const outcome = this.applyReview(row, action, actor);
      if (outcome.kind !== 'done') return { review: outcome };
      return { review: outcome, accept: this.acceptInTx(update, makeReceipt) };
    });
  }

  lapseExpired(now: Date, actor: AuditActor, limit: number): Promise<number> {
    const due = this.stmt.expiredClaims.all(now.getTime(), limit) as MessageRow[];
    if (due.length === 0) return Promise.resolve(0);
    return this.write(() => {
      let n = 0;
      for (const { id } of due) {
        // Read again inside the transaction: the claim may have been renewed or released.
        const row = this.stmt.getRow.get(id) as MessageRow | undefined;
        if (!row || row.status !== 'claimed') continue;
        const outcome = this.applyReview(row, { kind: 'lapse' }, actor);
        if (outcome.kind === 'done' && outcome.record.status === 'delivered') n++;
      }
      return n;
    });
  }

  takeNewlyOverdue(now: Date, limit: number): Promise<MessageChange['message'][]> {
    const due = this.stmt.newlyOverdue.all(now.getTime(), limit) as MessageRow[];
    if (due.length === 0) return Promise.resolve([]);
    // Noted again inside the transaction: two sweeps may have read the same rows.
    return this.write(() => due.filter((r) => this.stmt.markOverdue.run(r.id).changes === 1)).then(
      (noted) => noted.map(changeView),
    );
  }

  async deadlineCounts(now: Date): Promise<DeadlineCount[]> {
    return this.stmt.deadlineCounts.all({ now: now.getTime() }) as DeadlineCount[];
  }

  // ---- outbox and inbox ports --------------------------------------------

  /**
   * Rows due for a publish attempt. Fresh rows are read from a cursor past the
   * ones already handed out, so a busy relay reads each JWS once instead of
   * re-reading (and discarding) its whole in-flight window on every call; rows
   * rescheduled after a failure come back when due. Every few seconds the cursor
   * restarts at 0, so a row a caller dropped without rescheduling is found again.
   */
  async dueOutbox(limit: number, exclude: ReadonlySet<string>): Promise<OutboxItem[]> {
    const t = this.schedNow();
    if (t - this.outboxScanAt >= OUTBOX_RESCAN_MS) {
      this.outboxCursor = 0;
      this.outboxScanAt = t;
      this.retriesMayBeDue = this.stmt.anyRetry.get() !== undefined;
      this.fresh = [];
      this.freshFrom = (this.stmt.outboxHighest.get() as { seq: number } | undefined)?.seq ?? 0;
    }
    const out: OutboxItem[] = [];
    const take = (rows: OutboxRow[], advance: boolean) => {
      for (const r of rows) {
        if (out.length === limit) return;
        if (advance) this.outboxCursor = Math.max(this.outboxCursor, r.seq);
        if (!exclude.has(r.message_id)) {
          // Outbox rows are never shredded (shredEpoch carries them), so the JWS is there.
          out.push(toOutboxItem(r, this.openJws(r.message_id, r)!));
        }
      }
    };
    if (this.outboxCursor > 0 && this.retriesMayBeDue) {
      take(
        this.stmt.dueRetries.all(this.outboxCursor, t, limit + exclude.size) as OutboxRow[],
        false,
      );
    }
    const fromFresh = this.freshFrom !== undefined && this.outboxCursor >= this.freshFrom;
    if (out.length < limit && fromFresh) {
      // Every row committed past the cursor is in `fresh`: no read needed.
      let k = 0;
      while (k < this.fresh.length && this.fresh[k]!.seq <= this.outboxCursor) k++;
      while (k < this.fresh.length && out.length < limit) {
        const r = this.fresh[k++]!;
        this.outboxCursor = r.seq;
        if (!exclude.has(r.item.messageId)) out.push(r.item);
      }
      this.fresh.splice(0, k);
    } else if (out.length < limit) {
      // After a restart of the scan, rows in flight come first and are skipped.
      const want = limit - out.length + (this.outboxCursor === 0 ? exclude.size : 0);
      const rows = this.stmt.dueFresh.all(this.outboxCursor, t, want) as OutboxRow[];
      take(rows, true);
      // Every due row to the table's end was taken: from here on `fresh` has the rest.
      if (rows.length < want && out.length < limit && this.freshFrom !== undefined) {
        this.outboxCursor = Math.max(this.outboxCursor, this.freshFrom);
      }
    }
    return out;
  }

  markQueued(messageIds: readonly string[], actor: AuditActor): Promise<void> {
    if (messageIds.length === 0) return Promise.resolve();
    return this.write(() => {
      for (const id of messageIds) {
        this.stmt.deleteOutbox.run(id);
        const row = this.stmt.getStepRow.get(id) as StepRow | undefined;
        // The consumer may already have recorded delivery (and with it `queued`).
        if (row) this.deliverySteps(row, 'confirmed', actor);
      }
    });
  }

  async reschedule(messageId: string, delayMs: number, reason: string): Promise<void> {
    const at = this.schedNow() + Math.min(Math.max(0, delayMs), OUTBOX_MAX_DELAY_MS);
    this.retriesMayBeDue = true;
    await this.write(() => this.stmt.reschedule.run(at, reason, messageId));
  }

  async outboxLag(): Promise<number> {
    return (this.stmt.outboxLag.get() as { n: number }).n;
  }

  /** Seconds since the oldest outbox row was accepted, on the entries' clock; 0 when empty. */
  private outboxOldestAgeS(): number {
    const row = this.stmt.outboxOldest.get() as { at: string } | undefined;
    if (!row) return 0;
    return Math.max(0, (this.stamp().getTime() - Date.parse(row.at)) / 1000);
  }

  deliver(messageId: string, digest: string, actor: AuditActor): Promise<DeliverOutcome> {
    return this.write(() => {
      const row = this.stmt.getStepRow.get(messageId) as StepRow | undefined;
      if (!row || row.digest !== digest) return 'unknown';
      const at = this.stamp().toISOString();
      const inserted = this.stmt.insertDelivery.run(messageId, row.to_agency, at);
      if (inserted.changes === 0) return 'duplicate';
      this.deliverySteps(row, 'delivered', actor);
      return 'delivered';
    });
  }

  // ---- retention -----------------------------------------------------------

  async liveEpochs(): Promise<string[]> {
    return (this.stmt.liveEpochs.all() as { epoch: string }[]).map((r) => r.epoch);
  }

  shredEpoch(epoch: string, actor: AuditActor): Promise<{ shredded: number; carried: number }> {
    return this.write(() => {
      const at = this.now();
      const rows = this.stmt.sealedIn.all(epoch) as (SealedColumns & {
        seq: number;
        id: string;
        digest: string;
        from_agency: string;
        to_agency: string;
        type: string;
        pending: number;
      })[];
      let shredded = 0;
      let carried = 0;
      for (const r of rows) {
        if (r.pending === 1) {
          // Not yet handed to the broker: the transport still needs the bytes, and
          // the retention period starts again in the current epoch.
          if (epochOf(at) !== epoch) {
            const s: SealedMessage = { sealed: r.sealed!, wrappedKey: r.wrapped_key!, epoch };
            const moved = this.vault.rewrap(r.id, s, at);
            this.stmt.rewrap.run(moved.wrappedKey, moved.epoch, r.seq);
          }
          carried++;
          continue;
        }
        this.stmt.shred.run(at.toISOString(), r.seq);
        this.appendEntry(
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
        shredded++;
      }
      return { shredded, carried };
    }).then((outcome) => {
      // Old page images must not linger in the write-ahead log either.
      this.db.pragma('wal_checkpoint(TRUNCATE)');
      return outcome;
    });
  }

  /** Commits the writes still queued, then closes; later writes are refused. */
  async close(): Promise<void> {
    this.closeNow();
  }

  /** `close`, synchronously: for the last moment of a shutdown that cannot wait. */
  closeNow(): void {
    if (this.closed) return;
    while (this.pending.length > 0) this.flush();
    this.closed = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = undefined;
    // Whoever still waits for a flush gets it now, on this thread.
    this.walSync.flushNow();
    this.db.close();
    this.dirLock?.release();
  }
}

function freeBytesOf(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

function messageDraft(row: StepRow, event: AuditDraft['event'], actor: AuditActor): AuditDraft {
  return {
    event,
    actor: auditActor(actor),
    messageId: row.id,
    digest: row.digest,
    from: row.from_agency,
    to: row.to_agency,
    type: row.type,
  };
}

function claimOf(r: MessageRow): Claim | null {
  if (r.claimed_by === null) return null;
  return {
    subject: r.claimed_by,
    name: r.claimed_name ?? '',
    at: r.claimed_at ?? '',
    expiresAt: new Date(r.claim_expires_at ?? 0).toISOString(),
  };
}

function stateOf(r: MessageRow): ReviewState {
  return {
    status: r.status as MessageStatus,
    decision: r.decision as DecisionStatus | null,
    claim: r.status === 'claimed' ? claimOf(r) : null,
  };
}

function changeView(r: StepRow): MessageChange['message'] {
  return {
    id: r.id,
    type: r.type as MessageType,
    priority: r.priority as Priority,
    from: r.from_agency,
    to: r.to_agency,
    status: r.status as MessageStatus,
    decision: r.decision as DecisionStatus | null,
    inReplyTo: r.in_reply_to,
  };
}

function toCheckpoint(row: unknown): Checkpoint | undefined {
  if (!row) return undefined;
  const r = row as { size: number; root: Buffer; note: string; signed_at: string };
  return { size: r.size, root: r.root, text: r.note, signedAt: r.signed_at };
}
