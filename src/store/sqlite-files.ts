/**
 * The embedded store's evidence-file records (protocol §9): completed files per
 * agency, their bindings to accepted messages, and the custody events the audit
 * log holds for them. The bytes live in the content-addressed directory, not here.
 */
import type Database from 'better-sqlite3';
import type { AuditActor, AuditDraft, StoredEntry } from '../audit/types.js';
import { CasebridgeError } from '../errors.js';
import { fileDigest } from '../files/digest.js';
import type { CustodyEvent, FileBinding, FileIndex, FileRef, StoredFile } from '../files/types.js';

export const FILES_SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS files (
  agency     TEXT NOT NULL,
  sha256     TEXT NOT NULL,
  size       INTEGER NOT NULL,
  stored_at  TEXT NOT NULL,
  stored_ms  INTEGER NOT NULL,
  log_index  INTEGER NOT NULL,
  PRIMARY KEY (agency, sha256)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_age ON files (stored_ms);
CREATE TABLE IF NOT EXISTS file_bindings (
  message_id TEXT NOT NULL,
  sha256     TEXT NOT NULL,
  agency     TEXT NOT NULL,
  PRIMARY KEY (message_id, sha256)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS file_bindings_file ON file_bindings (agency, sha256);
-- The custody entries of the audit log, indexed by file (the log itself is indexed by position).
CREATE TABLE IF NOT EXISTS file_custody (
  n             INTEGER PRIMARY KEY AUTOINCREMENT,
  agency        TEXT NOT NULL,
  sha256        TEXT NOT NULL,
  event         TEXT NOT NULL,
  message_id    TEXT,
  log_index     INTEGER NOT NULL,
  at            TEXT NOT NULL,
  actor_agency  TEXT NOT NULL,
  actor_role    TEXT NOT NULL,
  actor_subject TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS file_custody_file ON file_custody (agency, sha256, n);
`;

/** What the message store lends the file records: its group commit and its log append. */
export interface FileIndexHost {
  db: Database.Database;
  write<T>(run: () => T): Promise<T>;
  appendEntry(draft: AuditDraft, at: Date): StoredEntry;
  now(): Date;
}

interface FileRow {
  agency: string;
  sha256: string;
  size: number;
  stored_at: string;
  log_index: number;
}

const toStored = (r: FileRow): StoredFile => ({
  agency: r.agency,
  sha256: r.sha256,
  size: r.size,
  storedAt: r.stored_at,
  logIndex: r.log_index,
});

export class SqliteFileIndex implements FileIndex {
  private readonly stmt;

  constructor(private readonly host: FileIndexHost) {
    const db = host.db;
    db.exec(FILES_SCHEMA_SQL);
    this.stmt = {
      get: db.prepare('SELECT * FROM files WHERE agency = ? AND sha256 = ?'),
      usage: db.prepare('SELECT COALESCE(SUM(size), 0) AS n FROM files WHERE agency = ?'),
      insert: db.prepare(`INSERT INTO files (agency, sha256, size, stored_at, stored_ms, log_index)
        VALUES (?, ?, ?, ?, ?, ?)`),
      bind: db.prepare(
        'INSERT OR IGNORE INTO file_bindings (message_id, sha256, agency) VALUES (?, ?, ?)',
      ),
      bound: db.prepare(`SELECT f.* FROM file_bindings b
        JOIN files f ON f.agency = b.agency AND f.sha256 = b.sha256
        WHERE b.message_id = ? AND b.sha256 = ?`),
      boundAll: db.prepare(`SELECT f.* FROM file_bindings b
        JOIN files f ON f.agency = b.agency AND f.sha256 = b.sha256
        WHERE b.message_id = ? ORDER BY f.sha256`),
      expirable: db.prepare(`SELECT f.* FROM files f WHERE f.stored_ms < ? AND NOT EXISTS
        (SELECT 1 FROM file_bindings b WHERE b.agency = f.agency AND b.sha256 = f.sha256)
        ORDER BY f.stored_ms LIMIT ?`),
      isBound: db.prepare('SELECT 1 FROM file_bindings WHERE agency = ? AND sha256 = ? LIMIT 1'),
      remove: db.prepare('DELETE FROM files WHERE agency = ? AND sha256 = ?'),
      addCustody: db.prepare(`INSERT INTO file_custody
        (agency, sha256, event, message_id, log_index, at, actor_agency, actor_role, actor_subject)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      // A file's custody before and within this message: stored, bound to it, downloaded from it.
      custody: db.prepare(`SELECT c.* FROM file_bindings b JOIN file_custody c
        ON c.agency = b.agency AND c.sha256 = b.sha256
        WHERE b.message_id = ? AND (c.message_id IS NULL OR c.message_id = b.message_id)
        ORDER BY c.log_index`),
    };
  }

  async storedFile(agency: string, sha256: string): Promise<StoredFile | undefined> {
    const r = this.stmt.get.get(agency, sha256) as FileRow | undefined;
    return r && toStored(r);
  }

  async usage(agency: string): Promise<number> {
    return (this.stmt.usage.get(agency) as { n: number }).n;
  }

  recordStored(
    file: FileRef & { agency: string },
    actor: AuditActor,
  ): Promise<'stored' | 'exists'> {
    return this.host.write(() => {
      if (this.stmt.get.get(file.agency, file.sha256) !== undefined) return 'exists';
      const at = this.host.now();
      const { index } = this.host.appendEntry(
        {
          event: 'file.stored',
          actor,
          digest: fileDigest(file.sha256),
          detail: { agency: file.agency, size: file.size },
        },
        at,
      );
      this.stmt.insert.run(
        file.agency,
        file.sha256,
        file.size,
        at.toISOString(),
        at.getTime(),
        index,
      );
      this.custodyRow(file.agency, file.sha256, 'file.stored', null, index, at, actor);
      return 'stored';
    });
  }

  /**
   * Binds the transfer's files to the message: `file.bound` after its
   * `message.accepted`. Runs inside the acceptance transaction; a file that
   * expired since the submission's check fails the whole acceptance.
   */
  bindInTx(messageId: string, binding: FileBinding, actor: AuditActor, at: Date): void {
    binding.files.forEach((f, k) => {
      const r = this.stmt.get.get(binding.agency, f.sha256) as FileRow | undefined;
      if (r === undefined || r.size !== f.size) {
        throw new CasebridgeError('UNKNOWN_FILE', 'an item names no completed upload', {
          errors: [
            {
              path: `/body/items/${k}`,
              keyword: 'uploadedFile',
              message: 'must name a completed upload of the sending agency',
            },
          ],
        });
      }
      if (this.stmt.bind.run(messageId, f.sha256, binding.agency).changes === 0) return;
      const { index } = this.host.appendEntry(
        {
          event: 'file.bound',
          actor,
          messageId,
          digest: fileDigest(f.sha256),
          detail: { agency: binding.agency, size: f.size },
        },
        at,
      );
      this.custodyRow(binding.agency, f.sha256, 'file.bound', messageId, index, at, actor);
    });
  }

  async boundFile(messageId: string, sha256: string): Promise<StoredFile | undefined> {
    const r = this.stmt.bound.get(messageId, sha256) as FileRow | undefined;
    return r && toStored(r);
  }

  async boundFiles(messageId: string): Promise<StoredFile[]> {
    return (this.stmt.boundAll.all(messageId) as FileRow[]).map(toStored);
  }

  recordDownload(
    messageId: string,
    file: StoredFile,
    actor: AuditActor,
    range: { start: number; end: number },
  ): Promise<void> {
    return this.host.write(() => {
      const at = this.host.now();
      const { index } = this.host.appendEntry(
        {
          event: 'file.downloaded',
          actor,
          messageId,
          digest: fileDigest(file.sha256),
          detail: { agency: file.agency, start: range.start, end: range.end },
        },
        at,
      );
      this.custodyRow(file.agency, file.sha256, 'file.downloaded', messageId, index, at, actor);
    });
  }

  expireUnbound(before: Date, actor: AuditActor, limit: number): Promise<StoredFile[]> {
    return this.host.write(() => {
      const rows = this.stmt.expirable.all(before.getTime(), limit) as FileRow[];
      const at = this.host.now();
      for (const r of rows) {
        this.stmt.remove.run(r.agency, r.sha256);
        const { index } = this.host.appendEntry(
          {
            event: 'file.expired',
            actor,
            digest: fileDigest(r.sha256),
            detail: { agency: r.agency, size: r.size },
          },
          at,
        );
        this.custodyRow(r.agency, r.sha256, 'file.expired', null, index, at, actor);
      }
      return rows.map(toStored);
    });
  }

  async custody(messageId: string): Promise<CustodyEvent[]> {
    const rows = this.stmt.custody.all(messageId) as {
      sha256: string;
      event: CustodyEvent['event'];
      message_id: string | null;
      log_index: number;
      at: string;
      actor_agency: string;
      actor_role: string;
      actor_subject: string;
    }[];
    return rows.map((r) => ({
      event: r.event,
      sha256: r.sha256,
      logIndex: r.log_index,
      at: r.at,
      actor: { agency: r.actor_agency, role: r.actor_role, subject: r.actor_subject },
      messageId: r.message_id,
    }));
  }

  private custodyRow(
    agency: string,
    sha256: string,
    event: CustodyEvent['event'],
    messageId: string | null,
    logIndex: number,
    at: Date,
    actor: AuditActor,
  ): void {
    this.stmt.addCustody.run(
      agency,
      sha256,
      event,
      messageId,
      logIndex,
      at.toISOString(),
      actor.agency,
      actor.role,
      actor.subject,
    );
  }
}
