/**
 * Envelope encryption of message bytes (docs/operations.md, "Data at rest"): each
 * message is sealed with a key of its own (AES-256-GCM), and that key is wrapped
 * under the epoch key of the day it was stored. The store calls this and nothing
 * else; it holds ciphertext and wrapped keys, never a key that opens them.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { existsSync, writeFileSync } from 'node:fs';
import { epochOf, dataKeyPem, FileEpochKeys, readDataKey, type EpochKeys } from './keys.js';
import { RandomPool } from './random-pool.js';
import { newKey, open, seal } from './seal.js';

export interface SealedMessage {
  sealed: Buffer;
  wrappedKey: Buffer;
  epoch: string;
}

/** A sealed message whose epoch key is gone: a bug or a lost key directory, never a normal read. */
export class KeyMissingError extends Error {
  constructor(readonly epoch: string) {
    super(`no key for epoch ${epoch}`);
    this.name = 'KeyMissingError';
  }
}

const messageAad = (id: string) => `casebridge message v1 ${id}`;
const keyAad = (id: string, epoch: string) => `casebridge message key v1 ${id} ${epoch}`;

export class MessageVault {
  /** Message keys and IVs: one CSPRNG call per many seals. */
  private readonly random = new RandomPool();

  constructor(readonly keys: EpochKeys) {}

  /** Seals `jws` under a new message key, wrapped under the epoch key of `at`. */
  seal(id: string, jws: string, at: Date): SealedMessage {
    const epoch = epochOf(at);
    const epochKey = this.keys.get(epoch, true)!;
    const key = newKey(this.random.fill);
    try {
      return {
        sealed: seal(key, Buffer.from(jws, 'ascii'), messageAad(id), this.random.fill),
        wrappedKey: seal(epochKey, key, keyAad(id, epoch), this.random.fill),
        epoch,
      };
    } finally {
      key.fill(0);
    }
  }

  open(id: string, s: SealedMessage): string {
    const key = this.unwrap(id, s);
    try {
      return open(key, s.sealed, messageAad(id)).toString('ascii');
    } finally {
      key.fill(0);
    }
  }

  /** The message key wrapped again under the epoch of `at` (a message kept past its day). */
  rewrap(id: string, s: SealedMessage, at: Date): { wrappedKey: Buffer; epoch: string } {
    const epoch = epochOf(at);
    const key = this.unwrap(id, s);
    try {
      const epochKey = this.keys.get(epoch, true)!;
      return { wrappedKey: seal(epochKey, key, keyAad(id, epoch), this.random.fill), epoch };
    } finally {
      key.fill(0);
    }
  }

  hasKey(epoch: string): boolean {
    return this.keys.get(epoch, false) !== undefined;
  }

  private unwrap(id: string, s: SealedMessage): Buffer {
    const epochKey = this.keys.get(s.epoch, false);
    if (epochKey === undefined) throw new KeyMissingError(s.epoch);
    return open(epochKey, s.wrappedKey, keyAad(id, s.epoch));
  }
}

/** The vault of a gateway: the data key file and the key directory. */
export function openVault(dataKeyPath: string, keyDir: string): MessageVault {
  return new MessageVault(new FileEpochKeys(keyDir, readDataKey(dataKeyPath)));
}

/**
 * For a store opened without a vault (tests, tools): a data key kept in
 * `<dataDir>/keys` next to the epoch keys. Real encryption, but no separation of
 * keys from data; the gateway always passes the vault of CASEBRIDGE_DATA_KEY.
 */
export function localVault(dataDir: string): MessageVault {
  const dir = join(dataDir, 'keys');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'local-data.key.pem');
  if (!existsSync(path)) writeFileSync(path, dataKeyPem(), { mode: 0o600 });
  return openVault(path, dir);
}
