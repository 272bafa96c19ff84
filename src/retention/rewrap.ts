/**
 * Rotation of the data key (docs/operations.md, "Key rotation"): each epoch key file
 * is opened with the current data key and sealed again under the new one, with the
 * same associated data. Message keys and message bytes never depend on the data
 * key, so nothing in the database changes.
 *
 * Crash-safe file by file: the new file is written under a temporary name and
 * synced, renamed over the old one, and the directory synced. At every moment
 * each epoch has exactly one file, under the old key or the new one; a rerun
 * recognises the files already under the new key and rewraps the rest.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  EPOCH_FILE_RE,
  EPOCH_TEMP_RE,
  epochKeyAad,
  fsyncDir,
  readDataKey,
  tempPathOf,
  writeDurably,
} from './keys.js';
import { open, seal, SealError } from './seal.js';

/**
 * The data key a store opened without a vault writes into `<dataDir>/keys` for
 * itself (vault.ts, `localVault`: tests and tools). A gateway never writes or
 * reads it: it always opens its vault with CASEBRIDGE_DATA_KEY.
 */
export const LOCAL_DATA_KEY_FILE = 'local-data.key.pem';

/**
 * Where an epoch key file stands: under the current data key, under the new one,
 * under the local key of a store opened without a vault, or under none of them
 * (another key, or bytes that are not a sealed key at all).
 */
export type EpochKeyState = 'current' | 'new' | 'local' | 'unknown';

export interface EpochKeyFile {
  epoch: string;
  /** The file's path. */
  path: string;
  state: EpochKeyState;
}

export interface RewrapKeys {
  current: Buffer;
  next: Buffer;
}

/** Every epoch key file of `dir`, oldest first. */
function epochFiles(dir: string): { epoch: string; path: string }[] {
  return readdirSync(dir)
    .map((f) => ({ epoch: EPOCH_FILE_RE.exec(f)?.[1], path: join(dir, f) }))
    .filter((f): f is { epoch: string; path: string } => f.epoch !== undefined)
    .sort((a, b) => (a.epoch < b.epoch ? -1 : a.epoch > b.epoch ? 1 : 0));
}

function opensWith(key: Buffer, sealed: Buffer, epoch: string): boolean {
  try {
    open(key, sealed, epochKeyAad(epoch)).fill(0);
    return true;
  } catch (e) {
    if (e instanceof SealError) return false;
    throw e;
  }
}

/** The local data key of `dir`, when a store opened without a vault left one there. */
export function localDataKeyOf(dir: string): Buffer | undefined {
  const path = join(dir, LOCAL_DATA_KEY_FILE);
  if (!existsSync(path)) return undefined;
  try {
    return readDataKey(path, LOCAL_DATA_KEY_FILE);
  } catch {
    return undefined;
  }
}

/** Which key each epoch key file of `dir` opens with. Reads only. */
export function inspectEpochKeys(dir: string, keys: RewrapKeys): EpochKeyFile[] {
  const local = localDataKeyOf(dir);
  try {
    return epochFiles(dir).map(({ epoch, path }) => {
      const sealed = readFileSync(path);
      const state: EpochKeyState = opensWith(keys.next, sealed, epoch)
        ? 'new'
        : opensWith(keys.current, sealed, epoch)
          ? 'current'
          : local !== undefined && opensWith(local, sealed, epoch)
            ? 'local'
            : 'unknown';
      return { epoch, path, state };
    });
  } finally {
    local?.fill(0);
  }
}

/** Temporary files an interrupted write left in `dir` (this command's or a gateway's). */
export function leftoverTemporaries(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => EPOCH_TEMP_RE.test(f))
    .sort()
    .map((f) => join(dir, f));
}

/**
 * Removes the temporary files an interrupted run left. Only while no gateway runs:
 * a gateway creating a day's key writes one of these for a moment.
 */
export function removeTemporaries(dir: string): number {
  const found = leftoverTemporaries(dir);
  for (const path of found) unlinkSync(path);
  if (found.length > 0) fsyncDir(dir);
  return found.length;
}

/**
 * Seals the epoch key in `path` again under `keys.next`. Throws SealError when the
 * file does not open with `keys.current`; then nothing was written.
 *
 * The old file's bytes are overwritten once the new file holds its name, as
 * `destroy` does, so on a plain filesystem the old wrapping does not linger in
 * free blocks; unless another name (a hard-linked backup) still refers to them.
 */
export function rewrapEpochKey(dir: string, epoch: string, path: string, keys: RewrapKeys): void {
  const aad = epochKeyAad(epoch);
  const oldFd = openSync(path, 'r+');
  try {
    const old = readFileSync(oldFd);
    const key = open(keys.current, old, aad);
    const tmp = tempPathOf(path);
    try {
      writeDurably(tmp, seal(keys.next, key, aad));
      renameSync(tmp, path);
    } catch (e) {
      if (existsSync(tmp)) unlinkSync(tmp);
      throw e;
    } finally {
      key.fill(0);
    }
    fsyncDir(dir);
    if (fstatSync(oldFd).nlink === 0) {
      writeSync(oldFd, randomBytes(old.length), 0, old.length, 0);
      fsyncSync(oldFd);
    }
  } finally {
    closeSync(oldFd);
  }
}
