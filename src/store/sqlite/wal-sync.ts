/**
 * The embedded store's durable commit, off the event loop. SQLite runs with
 * `synchronous = NORMAL`: a commit writes its WAL frames into the file (the page
 * cache) and returns without a flush. This class then flushes the WAL file with
 * fdatasync(2) on libuv's thread pool, and a write is answered only once a flush
 * that started after its commit has finished, so every 202 still follows the
 * fsync of what it promises (protocol §3).
 *
 * One flush runs at a time; commits made meanwhile wait for the next one, which
 * then covers all of them (group commit across flushes). `onIdle` hears when a
 * flush ends with nothing queued, so the store can hold its writes back while a
 * flush runs and commit them together the moment it ends. fdatasync flushes the
 * file's data and its size, whichever descriptor wrote them, so a handle of our
 * own on the WAL that SQLite writes is enough. The WAL is never deleted while
 * the store is open (SQLite removes it when the last connection closes, after a
 * checkpoint that syncs the database file) and a `wal_checkpoint(TRUNCATE)` keeps
 * its inode.
 */
import { closeSync, fdatasync, fdatasyncSync, fsyncSync, openSync } from 'node:fs';
import { join } from 'node:path';

interface Waiter {
  ok: () => void;
  fail: (e: unknown) => void;
}

export class WalSync {
  private readonly fd: number;
  /** Waiting for a flush that has not started yet. */
  private queued: Waiter[] = [];
  /** Covered by the flush running now. */
  private running: Waiter[] | undefined;
  private closed = false;

  /** `file` (the WAL) must exist; its directory entry is flushed once here. */
  constructor(
    dir: string,
    file: string,
    private readonly onIdle: () => void = () => {},
  ) {
    this.fd = openSync(join(dir, file), 'r+');
    try {
      const d = openSync(dir, 'r');
      try {
        fsyncSync(d);
      } finally {
        closeSync(d);
      }
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  /** True while a flush runs on the thread pool. */
  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Calls `ok` once everything written to the WAL before this call is on disk. */
  request(ok: () => void, fail: (e: unknown) => void): void {
    if (this.closed) {
      fail(new Error('the store is closed'));
      return;
    }
    this.queued.push({ ok, fail });
    if (this.running === undefined) this.start();
  }

  private start(): void {
    const batch = this.queued;
    this.queued = [];
    this.running = batch;
    fdatasync(this.fd, (err) => {
      this.running = undefined;
      if (this.closed) {
        // flushNow answered these already; the descriptor is ours to close now.
        closeSync(this.fd);
        return;
      }
      for (const w of batch) settle(w, err);
      if (this.queued.length > 0) this.start();
      else this.onIdle();
    });
  }

  /**
   * Flushes on this thread and answers every waiter, then closes (for close()).
   * A flush still running on the pool closes the descriptor when it returns.
   */
  flushNow(): void {
    if (this.closed) return;
    this.closed = true;
    const waiters = [...(this.running ?? []), ...this.queued];
    this.queued = [];
    let err: unknown;
    try {
      fdatasyncSync(this.fd);
    } catch (e) {
      err = e;
    }
    for (const w of waiters) settle(w, err);
    if (this.running === undefined) closeSync(this.fd);
  }
}

function settle(w: Waiter, err: unknown): void {
  if (err) w.fail(err);
  else w.ok();
}
