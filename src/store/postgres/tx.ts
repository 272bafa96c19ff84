/**
 * One write transaction of the PostgreSQL store, and the group commit that runs
 * many of them as one (protocol §3: a 202 leaves only after its commit).
 *
 * Every transaction starts by locking the one row of `log_head`: that lock orders
 * the writes of every gateway on the database, so the holder knows the next log
 * index and the latest entry time, and indexes stay gap-free (a rollback gives
 * nothing back that it took). Entries, their tree nodes and history rows are
 * gathered while the writes run and inserted with the new head in one statement
 * before COMMIT; nothing in a transaction reads them back.
 */
import type pg from 'pg';
import { serializeEntry } from '../../audit/entry.js';
import { leafHash, nodesCompletedBy } from '../../audit/merkle.js';
import type { AuditDraft, NodeCoord, StoredEntry, TreeNode } from '../../audit/types.js';
import type { DecisionStatus } from '../../envelope/types.js';
import { CasebridgeError } from '../../errors.js';
import type {
  HistoryActor,
  HistoryEvent,
  MessageChange,
  MessageStatus,
} from '../../messages/types.js';
import { storeFailureOf, wrapWriteError } from '../errors.js';
import { run, type Queryable } from './pool.js';

/** The channel change events cross gateways on (see notify.ts). */
export const CHANGES_CHANNEL = 'casebridge_changes';
/** PostgreSQL refuses NOTIFY payloads of 8000 bytes and more. */
const MAX_PAYLOAD = 7000;

/** The perfect subtrees of the tree of `size` leaves, left to right: all an append reads. */
export function frontierCoords(size: number): NodeCoord[] {
  const out: NodeCoord[] = [];
  let start = 0;
  let width = 1;
  while (width * 2 <= size) width *= 2;
  for (let level = Math.log2(width); width >= 1; width /= 2, level--) {
    if (start + width <= size) {
      out.push({ level, index: start / width });
      start += width;
    }
  }
  return out;
}

const key = (level: number, index: number): string => `${level}/${index}`;

/** A statement over column arrays (see `Tx.defer`). */
export interface DeferredStatement {
  name: string;
  sql: string;
  /** Its row count must equal the rows deferred, else RowConflict fails the batch. */
  everyRow?: boolean;
}

/** A deferred insert found a row it assumed absent (another gateway wrote it meanwhile). */
class RowConflict extends Error {
  constructor() {
    super('a row the transaction assumed new exists');
  }
}

/** The log's head as a committed transaction left it, and the nodes an append needs next. */
export interface Frontier {
  size: number;
  nodes: Map<string, Buffer>;
}

interface HistoryIn {
  id: string;
  status: MessageStatus;
  event: HistoryEvent;
  decision: DecisionStatus | null;
  at: string;
  actor: HistoryActor;
}

/** A write's view of its transaction. */
export class Tx implements Queryable {
  size: number;
  lastTsMs: number;
  private readonly known: Map<string, Buffer>;
  private readonly entries: StoredEntry[] = [];
  private readonly nodes: TreeNode[] = [];
  private readonly historyRows: HistoryIn[] = [];
  private readonly deferred = new Map<
    string,
    { statement: DeferredStatement; rows: (readonly unknown[])[] }
  >();
  private readonly inserted = new Set<string>();
  /** Changes of the write running now. */
  changes: MessageChange[] = [];
  /** Changes of every write of the transaction, for NOTIFY. */
  readonly allChanges: MessageChange[] = [];

  constructor(
    readonly client: pg.PoolClient,
    head: { size: number; lastTsMs: number },
    known: Map<string, Buffer>,
    private readonly now: () => Date,
    private readonly origin: string,
    private readonly optimistic: boolean,
  ) {
    this.size = head.size;
    this.lastTsMs = head.lastTsMs;
    this.known = known;
  }

  /** Any statement sees what the writes before it deferred: those go first. */
  async query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    if (this.deferred.size > 0) await this.flushDeferred();
    return this.client.query<R>(config);
  }

  /**
   * Adds one row to a multi-row statement that runs before the transaction's next
   * statement: many acceptances of a batch become one INSERT. The statement takes
   * each column as an array, `$1` the first.
   */
  defer(statement: DeferredStatement, row: readonly unknown[]): void {
    let d = this.deferred.get(statement.name);
    if (d === undefined) this.deferred.set(statement.name, (d = { statement, rows: [] }));
    d.rows.push(row);
  }

  private async flushDeferred(): Promise<void> {
    const all = [...this.deferred.values()];
    this.deferred.clear();
    for (const { statement, rows } of all) {
      const columns = rows[0]!.map((_, k) => rows.map((r) => r[k]));
      let written: number | null;
      try {
        const res = await this.client.query({
          name: statement.name,
          text: statement.sql,
          values: columns,
        });
        written = res.rowCount;
      } catch (e) {
        throw wrapWriteError(e);
      }
      if (statement.everyRow === true && written !== rows.length) throw new RowConflict();
    }
  }

  /** The wall clock, but never before the latest entry's `ts`: entry times never decrease. */
  stamp(): Date {
    const t = this.now().getTime();
    return new Date(Math.max(t, this.lastTsMs));
  }

  /** Appends one entry and the tree nodes it completes (level 0 included). */
  append(draft: AuditDraft, at: Date): StoredEntry {
    const index = this.size;
    const bytes = serializeEntry(draft, index, at);
    const known = this.known;
    const completed = nodesCompletedBy(index, leafHash(bytes), {
      node(level, i) {
        const h = known.get(key(level, i));
        if (h === undefined) throw new Error(`audit tree node ${level}/${i} missing`);
        return h;
      },
    });
    for (const n of completed) {
      known.set(key(n.level, n.index), n.hash);
      this.nodes.push(n);
    }
    const entry = { index, bytes };
    this.entries.push(entry);
    this.size = index + 1;
    this.lastTsMs = Math.max(this.lastTsMs, at.getTime());
    return entry;
  }

  addHistory(
    id: string,
    status: MessageStatus,
    event: HistoryEvent,
    decision: DecisionStatus | null,
    at: string,
    actor: HistoryActor,
  ): void {
    this.historyRows.push({ id, status, event, decision, at, actor });
  }

  /**
   * Whether a message row of `id` may exist. Optimistically only when this
   * transaction inserted it: new rows are inserted with ON CONFLICT DO NOTHING, and
   * a row that was there after all fails the batch, which then runs again with
   * every acceptance looking first (see GroupCommit).
   */
  mayExist(id: string): boolean {
    return !this.optimistic || this.inserted.has(id);
  }

  /** A message row this transaction inserted. */
  insertedMessage(id: string): void {
    this.inserted.add(id);
  }

  changed(change: MessageChange): void {
    this.changes.push(change);
  }

  /** The frontier of the head this transaction leaves, for the next one. */
  frontier(): Frontier {
    const nodes = new Map<string, Buffer>();
    for (const c of frontierCoords(this.size)) {
      const h = this.known.get(key(c.level, c.index));
      if (h !== undefined) nodes.set(key(c.level, c.index), h);
    }
    return { size: this.size, nodes };
  }

  /** Writes what the writes gathered, the new head and the notifications: one statement. */
  async finish(): Promise<void> {
    const h = this.historyRows;
    const payloads = notifyPayloads(this.origin, this.allChanges);
    await run(this, 'tx_finish', FINISH_SQL, [
      this.entries.map((e) => e.index),
      this.entries.map((e) => e.bytes),
      this.nodes.map((n) => n.level),
      this.nodes.map((n) => n.index),
      this.nodes.map((n) => n.hash),
      h.map((r) => r.id),
      h.map((r) => r.status),
      h.map((r) => r.event),
      h.map((r) => r.decision),
      h.map((r) => r.at),
      h.map((r) => r.actor.agency),
      h.map((r) => r.actor.role),
      h.map((r) => r.actor.subject),
      h.map((r) => r.actor.name ?? null),
      this.size,
      this.lastTsMs,
      payloads,
    ]);
  }
}

const FINISH_SQL = `WITH
  e AS (INSERT INTO audit_entries (idx, entry)
    SELECT * FROM unnest($1::bigint[], $2::bytea[])),
  n AS (INSERT INTO audit_nodes (level, idx, hash)
    SELECT * FROM unnest($3::integer[], $4::bigint[], $5::bytea[])),
  h AS (INSERT INTO message_history
    (message_id, status, event, decision, at, actor_agency, actor_role, actor_subject, actor_name)
    SELECT * FROM unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
      $11::text[], $12::text[], $13::text[], $14::text[])),
  l AS (UPDATE log_head SET size = $15, last_ts_ms = $16)
SELECT count(pg_notify('${CHANGES_CHANNEL}', p)) AS n FROM unnest($17::text[]) AS p`;

/** The changes as NOTIFY payloads of the origin, each below PostgreSQL's limit. */
function notifyPayloads(origin: string, changes: readonly MessageChange[]): string[] {
  const out: string[] = [];
  let part: string[] = [];
  let bytes = 0;
  const flush = () => {
    if (part.length > 0) out.push(`{"o":${JSON.stringify(origin)},"c":[${part.join(',')}]}`);
    part = [];
    bytes = 0;
  };
  for (const c of changes) {
    // Ids, types, agencies and statuses only: never content (protocol §5.5).
    const s = JSON.stringify({ event: c.event, message: c.message });
    if (bytes + s.length > MAX_PAYLOAD) flush();
    part.push(s);
    bytes += s.length + 1;
  }
  flush();
  return out;
}

interface Pending {
  run: (tx: Tx) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  changes: MessageChange[];
}

export interface GroupCommitOptions {
  pool: pg.Pool;
  now: () => Date;
  /** Identifies this store in NOTIFY payloads, so it skips its own. */
  origin: string;
  maxBatch: number;
  /** Committed changes of this process, after their commit. */
  published: (changes: readonly MessageChange[]) => void;
  /** A write failed for a reason to wait out, or committed (undefined). */
  health: (failure: ReturnType<typeof storeFailureOf>) => void;
}

/** A COMMIT whose answer was lost: it may or may not have happened, so no write is replayed. */
class CommitUncertain extends Error {
  constructor(readonly original: unknown) {
    super('commit outcome unknown');
  }
}

/**
 * Queues writes and runs them in shared transactions, one batch at a time, on one
 * connection: concurrent requests share one lock of `log_head` and one COMMIT.
 * Writes are closures over the transaction, so a batch that fails rolls back and
 * each write runs again in a transaction of its own: only the failing one fails.
 */
export class GroupCommit {
  private pending: Pending[] = [];
  private scheduled = false;
  private running = false;
  private closed = false;
  /** The frontier after this process's last commit; used when the head has not moved since. */
  private cached: Frontier = { size: 0, nodes: new Map() };

  constructor(private readonly opts: GroupCommitOptions) {}

  write<T>(run: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.closed)
      return Promise.reject(new CasebridgeError('UNAVAILABLE', 'the store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({
        run,
        resolve: resolve as (v: unknown) => void,
        reject,
        changes: [],
      });
      this.kick();
    });
  }

  /** Commits what is queued, then refuses new writes. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running || this.scheduled || this.pending.length > 0) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Starts a drain unless one runs: a running drain picks up what is queued meanwhile. */
  private kick(): void {
    if (this.running || this.scheduled) return;
    this.scheduled = true;
    // Let the writes of this turn of the event loop join the batch.
    setImmediate(() => {
      this.scheduled = false;
      void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.pending.length > 0) {
        await this.runBatch(this.pending.splice(0, this.opts.maxBatch));
      }
    } finally {
      // Set in the same step as the last look at the queue: no write slips between.
      this.running = false;
    }
  }

  /** `optimistic`: acceptances assume their id is new (see Tx.mayExist). */
  private async runBatch(batch: Pending[], optimistic = true): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.opts.pool.connect();
    } catch (e) {
      this.fail(batch, e);
      return;
    }
    // A connection lost while checked out must not become an unhandled 'error' event.
    const onError = (): void => undefined;
    client.on('error', onError);
    let broken: unknown;
    try {
      const values = await this.attempt(client, batch, optimistic);
      this.committed(batch, values);
      return;
    } catch (e) {
      if (e instanceof CommitUncertain || storeFailureOf(e) === 'unreachable') {
        broken = e instanceof CommitUncertain ? e.original : e;
        this.fail(batch, broken);
        return;
      }
      if (batch.length === 1 && !(e instanceof RowConflict && optimistic)) {
        this.fail(batch, e);
        return;
      }
    } finally {
      client.removeListener('error', onError);
      client.release(broken instanceof Error ? broken : undefined);
    }
    // Rare path: each write again in a transaction of its own, looking before it inserts.
    for (const w of batch) await this.runBatch([w], false);
  }

  private async attempt(
    client: pg.PoolClient,
    batch: Pending[],
    optimistic: boolean,
  ): Promise<unknown[]> {
    const tx = await this.begin(client, optimistic);
    const values: unknown[] = [];
    try {
      for (const w of batch) {
        w.changes = [];
        tx.changes = w.changes;
        values.push(await w.run(tx));
        tx.allChanges.push(...w.changes);
      }
      await tx.finish();
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
    try {
      await client.query('COMMIT');
    } catch (e) {
      throw storeFailureOf(e) === 'unreachable' ? new CommitUncertain(e) : e;
    }
    this.cached = tx.frontier();
    return values;
  }

  /** BEGIN and the lock of the head in one round trip; the frontier only when the head moved. */
  private async begin(client: pg.PoolClient, optimistic: boolean): Promise<Tx> {
    const results = (await client.query(
      'BEGIN; SELECT size, last_ts_ms FROM log_head FOR UPDATE',
    )) as unknown as pg.QueryResult<{ size: number; last_ts_ms: number }>[];
    const head = results[1]!.rows[0];
    if (head === undefined) throw new Error('log_head row missing');
    let known: Map<string, Buffer>;
    if (head.size === this.cached.size) {
      known = new Map(this.cached.nodes);
    } else {
      known = new Map();
      const coords = frontierCoords(head.size);
      if (coords.length > 0) {
        const rows = await run<{ level: number; idx: number; hash: Buffer }>(
          client,
          'frontier',
          `SELECT n.level, n.idx, n.hash FROM unnest($1::integer[], $2::bigint[]) AS c (level, idx)
           JOIN audit_nodes n ON n.level = c.level AND n.idx = c.idx`,
          [coords.map((c) => c.level), coords.map((c) => c.index)],
        );
        for (const r of rows) known.set(key(r.level, r.idx), r.hash);
      }
    }
    return new Tx(
      client,
      { size: head.size, lastTsMs: head.last_ts_ms },
      known,
      this.opts.now,
      this.opts.origin,
      optimistic,
    );
  }

  private committed(batch: Pending[], values: unknown[]): void {
    this.opts.health(undefined);
    batch.forEach((w, k) => w.resolve(values[k]));
    for (const w of batch) this.opts.published(w.changes);
  }

  private fail(batch: Pending[], e: unknown): void {
    const reason = storeFailureOf(e);
    if (reason !== undefined) this.opts.health(reason);
    const err = wrapWriteError(e);
    for (const w of batch) w.reject(err);
  }
}
