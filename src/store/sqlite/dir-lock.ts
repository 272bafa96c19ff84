/**
 * One gateway process per embedded store (protocol §11). The store's tree frontier,
 * its outbox and its group commit live in the process that opened it, so a second
 * process writing the same SQLite file would fork the log. The lock is an exclusive
 * SQLite transaction held open on a file of its own beside the store: the operating
 * system drops it when the process ends, also by SIGKILL, so nothing stale is left
 * behind, and tools may still read the store file itself while the gateway runs.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError } from '../../errors.js';
import { wrapWriteError } from '../errors.js';

export const LOCK_FILE = 'gateway.lock';

export class DataDirLock {
  private constructor(private db: Database.Database | undefined) {}

  /** Takes the data directory, or stops the start with one line naming it. */
  static acquire(dataDir: string): DataDirLock {
    let db: Database.Database | undefined;
    try {
      mkdirSync(dataDir, { recursive: true });
      db = new Database(join(dataDir, LOCK_FILE), { timeout: 0 });
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE');
      return new DataDirLock(db);
    } catch (e) {
      db?.close();
      if ((e as { code?: unknown }).code === 'SQLITE_BUSY') {
        throw new ConfigError(
          'CASEBRIDGE_DATA_DIR',
          'is in use by another gateway process; an embedded store has one process (set CASEBRIDGE_DATABASE_URL for several)',
        );
      }
      throw wrapWriteError(e);
    }
  }

  /** True when some process holds the lock on `dataDir` (for tools that must not run beside a gateway). */
  static isHeld(dataDir: string): boolean {
    let lock: DataDirLock;
    try {
      lock = DataDirLock.acquire(dataDir);
    } catch (e) {
      if (e instanceof ConfigError) return true;
      throw e;
    }
    lock.release();
    return false;
  }

  release(): void {
    const db = this.db;
    this.db = undefined;
    db?.close();
  }
}
