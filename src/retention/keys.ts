/**
 * The keys of data at rest (docs/operations.md, "Data at rest"):
 *
 *  - the data key (`CASEBRIDGE_DATA_KEY`), a 32-byte key in a PEM-armoured file
 *    the operator keeps like the TLS key; it only wraps epoch keys;
 *  - one epoch key per UTC day, random, stored wrapped under the data key in its
 *    own file in the key directory (`CASEBRIDGE_KEY_DIR`), never in the database.
 *
 * Each message's own data key is wrapped under the epoch key of the day it was
 * stored. Destroying an epoch key file makes every message of that day
 * unreadable in the database and in every copy of it.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { KEY_BYTES, newKey, open, seal, SealError } from './seal.js';

export const DATA_KEY_LABEL = 'CASEBRIDGE DATA KEY';
const EPOCH_RE = /^\d{4}-\d{2}-\d{2}$/;
/** An epoch key file; the epoch is the first group. */
export const EPOCH_FILE_RE = /^epoch-(\d{4}-\d{2}-\d{2})\.key$/;
/** A temporary file an epoch key is written to before it takes its name (see tempPathOf). */
export const EPOCH_TEMP_RE = /^epoch-\d{4}-\d{2}-\d{2}\.key\.\d+\.[0-9a-f]+\.tmp$/;

/** The epoch (UTC day) a value sealed at `at` belongs to. */
export function epochOf(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** A new data key file's text. */
export function dataKeyPem(key: Buffer = newKey()): string {
  const b64 = key.toString('base64');
  return `-----BEGIN ${DATA_KEY_LABEL}-----\n${b64}\n-----END ${DATA_KEY_LABEL}-----\n`;
}

/** Reads a data key file; a bad one is a ConfigError naming `variable`. */
export function readDataKey(path: string, variable = 'CASEBRIDGE_DATA_KEY'): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(variable, `cannot read ${path}`, { cause: e });
  }
  const m = new RegExp(
    `^-----BEGIN ${DATA_KEY_LABEL}-----\\r?\\n([A-Za-z0-9+/=\\r\\n]+?)\\r?\\n-----END ${DATA_KEY_LABEL}-----\\s*$`,
  ).exec(text.trim() + '\n');
  const key = m?.[1] === undefined ? undefined : Buffer.from(m[1].replace(/\s/g, ''), 'base64');
  if (key === undefined || key.length !== KEY_BYTES) {
    throw new ConfigError(
      variable,
      `must hold one ${KEY_BYTES}-byte key armoured as "${DATA_KEY_LABEL}" (casebridge init-dev writes one)`,
    );
  }
  return key;
}

/** The epoch keys, as the message vault uses them. */
export interface EpochKeys {
  /** The key of `epoch`; with `create`, made (durably) when missing. */
  get(epoch: string, create: boolean): Buffer | undefined;
  /** Every epoch that still has a key, oldest first. */
  list(): string[];
  /** Destroys the key of `epoch` for good. Idempotent. */
  destroy(epoch: string): void;
}

/** The associated data an epoch key is sealed under: it only opens as the key of its own day. */
export const epochKeyAad = (epoch: string) => `casebridge epoch key v1 ${epoch}`;

/** A fresh temporary name next to `path`, unique to this process. */
export function tempPathOf(path: string): string {
  return `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeDurably(path: string, bytes: Buffer): void {
  const fd = openSync(path, 'w', 0o600);
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Epoch keys in files under `dir`, each wrapped under the data key. */
export class FileEpochKeys implements EpochKeys {
  private readonly cache = new Map<string, Buffer>();

  constructor(
    private readonly dir: string,
    private readonly dataKey: Buffer,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  private pathOf(epoch: string): string {
    if (!EPOCH_RE.test(epoch)) throw new Error(`not an epoch: ${epoch}`);
    return join(this.dir, `epoch-${epoch}.key`);
  }

  get(epoch: string, create: boolean): Buffer | undefined {
    const cached = this.cache.get(epoch);
    if (cached !== undefined) return cached;
    const path = this.pathOf(epoch);
    if (!existsSync(path)) {
      if (!create) return undefined;
      this.create(epoch, path);
    }
    let key: Buffer;
    try {
      key = open(this.dataKey, readFileSync(path), epochKeyAad(epoch));
    } catch (e) {
      if (!(e instanceof SealError)) throw e;
      throw new ConfigError(
        'CASEBRIDGE_DATA_KEY',
        `does not open the epoch key ${epoch} in ${this.dir} (another data key?)`,
      );
    }
    this.cache.set(epoch, key);
    return key;
  }

  /**
   * Writes a new epoch key unless one is there already. Gateways sharing the key
   * directory may start a day at the same moment: the key file is created
   * exclusively (a hard link, atomic on local and network file systems alike), so
   * the first one wins, and every process then reads the winner's key.
   */
  private create(epoch: string, path: string): void {
    const tmp = tempPathOf(path);
    writeDurably(tmp, seal(this.dataKey, newKey(), epochKeyAad(epoch)));
    try {
      linkSync(tmp, path);
    } catch (e) {
      if ((e as { code?: unknown }).code !== 'EEXIST') throw e;
    } finally {
      unlinkSync(tmp);
    }
    fsyncDir(this.dir);
  }

  list(): string[] {
    return readdirSync(this.dir)
      .map((f) => EPOCH_FILE_RE.exec(f)?.[1])
      .filter((e): e is string => e !== undefined)
      .sort();
  }

  destroy(epoch: string): void {
    const key = this.cache.get(epoch);
    if (key !== undefined) key.fill(0);
    this.cache.delete(epoch);
    const path = this.pathOf(epoch);
    if (!existsSync(path)) return;
    // Overwrite before unlinking: on a plain filesystem the old blocks are gone too.
    // (Copy-on-write filesystems and SSDs may keep them; docs/operations.md says so.)
    writeDurably(path, randomBytes(readFileSync(path).length));
    unlinkSync(path);
    fsyncDir(this.dir);
  }
}
