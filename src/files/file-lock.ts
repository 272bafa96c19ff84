/**
 * A tus `Locker` that works across gateway processes sharing CASEBRIDGE_FILES_DIR
 * (protocol §11). A lock is a file created exclusively (`O_EXCL`); its holder
 * refreshes its mtime while it holds it, so a lock left by a killed process goes
 * stale and is taken over. A waiter asks the holder to let go (the tus "request
 * release" of a stalled PATCH) by creating a `.release` file next to it.
 */
import { hostname } from 'node:os';
import { mkdirSync } from 'node:fs';
import { open, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ERRORS, type Lock, type Locker, type RequestRelease } from '@tus/server';

export interface FileLockerOptions {
  directory: string;
  /** A lock whose mtime is older than this is stale (its holder died). */
  staleMs?: number;
  /** How long lock() waits before giving up (tus answers 423 and the client retries). */
  acquireTimeoutMs?: number;
  /** Poll interval while waiting, and the holder's refresh interval. */
  pollMs?: number;
}

const HOST = hostname();

export class FileLocker implements Locker {
  readonly directory: string;
  readonly staleMs: number;
  readonly acquireTimeoutMs: number;
  readonly pollMs: number;

  constructor(opts: FileLockerOptions) {
    this.directory = opts.directory;
    this.staleMs = opts.staleMs ?? 10_000;
    this.acquireTimeoutMs = opts.acquireTimeoutMs ?? 20_000;
    this.pollMs = opts.pollMs ?? 100;
    mkdirSync(this.directory, { recursive: true });
  }

  newLock(id: string): Lock {
    return new FileLock(this, id);
  }
}

class FileLock implements Lock {
  private readonly path: string;
  private readonly releasePath: string;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly locker: FileLocker,
    id: string,
  ) {
    // Upload ids are the server's own random hex; anything else never reaches a path.
    if (!/^[0-9a-f]{32}$/.test(id)) throw ERRORS.FILE_NOT_FOUND;
    this.path = join(locker.directory, `${id}.lock`);
    this.releasePath = join(locker.directory, `${id}.release`);
  }

  async lock(signal: AbortSignal, requestRelease: RequestRelease): Promise<void> {
    const deadline = Date.now() + this.locker.acquireTimeoutMs;
    let asked = false;
    for (;;) {
      if (signal.aborted) throw ERRORS.ABORTED;
      if (await this.tryCreate()) break;
      if (await this.isStale()) {
        await rm(this.path, { force: true });
        continue;
      }
      if (!asked) {
        asked = true;
        await writeFile(this.releasePath, '').catch(() => undefined);
      }
      if (Date.now() > deadline) throw ERRORS.ERR_LOCK_TIMEOUT;
      await sleep(this.locker.pollMs);
    }
    await rm(this.releasePath, { force: true });
    this.heartbeat = setInterval(() => {
      const now = new Date();
      utimes(this.path, now, now).catch(() => undefined);
      // Another request (here or in another process) waits for this upload.
      stat(this.releasePath).then(
        () => void requestRelease(),
        () => undefined,
      );
    }, this.locker.pollMs);
    this.heartbeat.unref();
  }

  async unlock(): Promise<void> {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    await rm(this.path, { force: true });
  }

  private async tryCreate(): Promise<boolean> {
    try {
      const fh = await open(this.path, 'wx');
      try {
        await fh.writeFile(JSON.stringify({ pid: process.pid, host: HOST }));
      } finally {
        await fh.close();
      }
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    }
  }

  /** Stale: not refreshed for staleMs, or held by a process of this host that is gone. */
  private async isStale(): Promise<boolean> {
    try {
      const st = await stat(this.path);
      if (Date.now() - st.mtimeMs > this.locker.staleMs) return true;
      const owner = JSON.parse(await readFile(this.path, 'utf8')) as {
        pid?: number;
        host?: string;
      };
      if (owner.host === HOST && typeof owner.pid === 'number' && owner.pid !== process.pid) {
        return !alive(owner.pid);
      }
      return false;
    } catch {
      // Gone already (retry at once) or still being written by its creator (not stale).
      return false;
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
