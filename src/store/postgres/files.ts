/**
 * Evidence-file records in PostgreSQL (protocol §9): completed files per agency,
 * their bindings to accepted messages, and the custody events the log holds for
 * them, each written with its audit entry in the same transaction.
 */
import type pg from 'pg';
import type { AuditActor } from '../../audit/types.js';
import { CasebridgeError } from '../../errors.js';
import { fileDigest } from '../../files/digest.js';
import type {
  CustodyEvent,
  FileBinding,
  FileIndex,
  FileRef,
  StoredFile,
} from '../../files/types.js';
import { run } from './pool.js';
import type { Tx } from './tx.js';

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

const FILE_COLUMNS = 'f.agency, f.sha256, f.size, f.stored_at, f.log_index';

export class PgFileIndex implements FileIndex {
  constructor(
    private readonly pool: pg.Pool,
    private readonly write: <T>(run: (tx: Tx) => Promise<T>) => Promise<T>,
  ) {}

  async storedFile(agency: string, sha256: string): Promise<StoredFile | undefined> {
    const rows = await run<FileRow>(
      this.pool,
      'file_get',
      `SELECT ${FILE_COLUMNS} FROM files f WHERE f.agency = $1 AND f.sha256 = $2`,
      [agency, sha256],
    );
    return rows[0] && toStored(rows[0]);
  }

  async usage(agency: string): Promise<number> {
    const rows = await run<{ n: number }>(
      this.pool,
      'file_usage',
      'SELECT COALESCE(SUM(size), 0)::bigint AS n FROM files WHERE agency = $1',
      [agency],
    );
    return rows[0]!.n;
  }

  recordStored(
    file: FileRef & { agency: string },
    actor: AuditActor,
  ): Promise<'stored' | 'exists'> {
    return this.write(async (tx) => {
      const existing = await run(
        tx,
        'file_exists',
        'SELECT 1 FROM files WHERE agency = $1 AND sha256 = $2',
        [file.agency, file.sha256],
      );
      if (existing.length > 0) return 'exists';
      const at = tx.stamp();
      const { index } = tx.append(
        {
          event: 'file.stored',
          actor,
          digest: fileDigest(file.sha256),
          detail: { agency: file.agency, size: file.size },
        },
        at,
      );
      await run(
        tx,
        'file_insert',
        `WITH f AS (INSERT INTO files (agency, sha256, size, stored_at, stored_ms, log_index)
           VALUES ($1, $2, $3, $4, $5, $6))
         ${CUSTODY_INSERT}`,
        [
          file.agency,
          file.sha256,
          file.size,
          at.toISOString(),
          at.getTime(),
          index,
          'file.stored',
          null,
          actor.agency,
          actor.role,
          actor.subject,
        ],
      );
      return 'stored';
    });
  }

  /**
   * Binds the transfer's files to the message: `file.bound` after its
   * `message.accepted`. Runs inside the acceptance transaction; a file that
   * expired since the submission's check fails the whole acceptance.
   */
  async bindInTx(
    tx: Tx,
    messageId: string,
    binding: FileBinding,
    actor: AuditActor,
    at: Date,
  ): Promise<void> {
    const rows = await run<{ sha256: string; size: number }>(
      tx,
      'file_sizes',
      'SELECT sha256, size FROM files WHERE agency = $1 AND sha256 = ANY($2::text[])',
      [binding.agency, binding.files.map((f) => f.sha256)],
    );
    const sizes = new Map(rows.map((r) => [r.sha256, r.size]));
    binding.files.forEach((f, k) => {
      if (sizes.get(f.sha256) !== f.size) {
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
    });
    const bound = await run<{ sha256: string }>(
      tx,
      'file_bind',
      `INSERT INTO file_bindings (message_id, sha256, agency)
       SELECT $1, s, $2 FROM unnest($3::text[]) AS s ON CONFLICT DO NOTHING RETURNING sha256`,
      [messageId, binding.agency, binding.files.map((f) => f.sha256)],
    );
    const fresh = new Set(bound.map((r) => r.sha256));
    const custody: { sha256: string; index: number }[] = [];
    for (const f of binding.files) {
      if (!fresh.delete(f.sha256)) continue;
      const { index } = tx.append(
        {
          event: 'file.bound',
          actor,
          messageId,
          digest: fileDigest(f.sha256),
          detail: { agency: binding.agency, size: f.size },
        },
        at,
      );
      custody.push({ sha256: f.sha256, index });
    }
    if (custody.length === 0) return;
    await run(
      tx,
      'file_custody_many',
      `INSERT INTO file_custody
         (agency, sha256, event, message_id, log_index, at, actor_agency, actor_role, actor_subject)
       SELECT $1, s, 'file.bound', $2, i, $3, $4, $5, $6
       FROM unnest($7::text[], $8::bigint[]) WITH ORDINALITY AS c (s, i, k) ORDER BY k`,
      [
        binding.agency,
        messageId,
        at.toISOString(),
        actor.agency,
        actor.role,
        actor.subject,
        custody.map((c) => c.sha256),
        custody.map((c) => c.index),
      ],
    );
  }

  async boundFile(messageId: string, sha256: string): Promise<StoredFile | undefined> {
    const rows = await run<FileRow>(
      this.pool,
      'file_bound',
      `SELECT ${FILE_COLUMNS} FROM file_bindings b
       JOIN files f ON f.agency = b.agency AND f.sha256 = b.sha256
       WHERE b.message_id = $1 AND b.sha256 = $2`,
      [messageId, sha256],
    );
    return rows[0] && toStored(rows[0]);
  }

  async boundFiles(messageId: string): Promise<StoredFile[]> {
    const rows = await run<FileRow>(
      this.pool,
      'file_bound_all',
      `SELECT ${FILE_COLUMNS} FROM file_bindings b
       JOIN files f ON f.agency = b.agency AND f.sha256 = b.sha256
       WHERE b.message_id = $1 ORDER BY f.sha256`,
      [messageId],
    );
    return rows.map(toStored);
  }

  recordDownload(
    messageId: string,
    file: StoredFile,
    actor: AuditActor,
    range: { start: number; end: number },
  ): Promise<void> {
    return this.write(async (tx) => {
      const at = tx.stamp();
      const { index } = tx.append(
        {
          event: 'file.downloaded',
          actor,
          messageId,
          digest: fileDigest(file.sha256),
          detail: { agency: file.agency, start: range.start, end: range.end },
        },
        at,
      );
      await run(tx, 'file_custody_one', CUSTODY_INSERT_ALONE, [
        file.agency,
        file.sha256,
        at.toISOString(),
        index,
        'file.downloaded',
        messageId,
        actor.agency,
        actor.role,
        actor.subject,
      ]);
    });
  }

  expireUnbound(before: Date, actor: AuditActor, limit: number): Promise<StoredFile[]> {
    return this.write(async (tx) => {
      const rows = await run<FileRow & { stored_ms: number }>(
        tx,
        'file_expire',
        `DELETE FROM files WHERE (agency, sha256) IN (
           SELECT f.agency, f.sha256 FROM files f WHERE f.stored_ms < $1 AND NOT EXISTS
             (SELECT 1 FROM file_bindings b WHERE b.agency = f.agency AND b.sha256 = f.sha256)
           ORDER BY f.stored_ms LIMIT $2)
         RETURNING agency, sha256, size, stored_at, stored_ms, log_index`,
        [before.getTime(), limit],
      );
      // RETURNING keeps no order: the entries follow the age of the files, as the query chose them.
      rows.sort((a, b) => a.stored_ms - b.stored_ms || a.sha256.localeCompare(b.sha256));
      const at = tx.stamp();
      for (const r of rows) {
        const { index } = tx.append(
          {
            event: 'file.expired',
            actor,
            digest: fileDigest(r.sha256),
            detail: { agency: r.agency, size: r.size },
          },
          at,
        );
        await run(tx, 'file_custody_one', CUSTODY_INSERT_ALONE, [
          r.agency,
          r.sha256,
          at.toISOString(),
          index,
          'file.expired',
          null,
          actor.agency,
          actor.role,
          actor.subject,
        ]);
      }
      return rows.map(toStored);
    });
  }

  async custody(messageId: string): Promise<CustodyEvent[]> {
    const rows = await run<{
      sha256: string;
      event: CustodyEvent['event'];
      message_id: string | null;
      log_index: number;
      at: string;
      actor_agency: string;
      actor_role: string;
      actor_subject: string;
    }>(
      this.pool,
      'file_custody',
      `SELECT c.sha256, c.event, c.message_id, c.log_index, c.at, c.actor_agency, c.actor_role,
         c.actor_subject
       FROM file_bindings b JOIN file_custody c ON c.agency = b.agency AND c.sha256 = b.sha256
       WHERE b.message_id = $1 AND (c.message_id IS NULL OR c.message_id = b.message_id)
       ORDER BY c.log_index`,
      [messageId],
    );
    return rows.map((r) => ({
      event: r.event,
      sha256: r.sha256,
      logIndex: r.log_index,
      at: r.at,
      actor: { agency: r.actor_agency, role: r.actor_role, subject: r.actor_subject },
      messageId: r.message_id,
    }));
  }
}

/** The custody row of a `files` insert in the same statement ($1–$6 the file, $7… the event). */
const CUSTODY_INSERT = `INSERT INTO file_custody
  (agency, sha256, event, message_id, log_index, at, actor_agency, actor_role, actor_subject)
  VALUES ($1, $2, $7, $8, $6, $4, $9, $10, $11)`;

const CUSTODY_INSERT_ALONE = `INSERT INTO file_custody
  (agency, sha256, at, log_index, event, message_id, actor_agency, actor_role, actor_subject)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`;
