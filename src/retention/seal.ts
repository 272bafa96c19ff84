/**
 * AES-256-GCM (NIST SP 800-38D) for message bytes at rest. Pure: no I/O.
 *
 * A sealed value is `version (1) || IV (12) || ciphertext || tag (16)`. The
 * additional authenticated data binds each value to where it belongs (the
 * message id, the epoch), so a ciphertext moved to another row does not open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export const KEY_BYTES = 32;
const VERSION = 1;
const IV_BYTES = 12; // SP 800-38D §8.2: 96-bit IVs, random, one key per few values
const TAG_BYTES = 16;

/** A value that does not open: wrong key, wrong context, or altered bytes. */
export class SealError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'SealError';
  }
}

export function newKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

export function seal(key: Buffer, plain: Buffer, aad: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([Buffer.of(VERSION), iv, body, cipher.getAuthTag()]);
}

export function open(key: Buffer, sealed: Buffer, aad: string): Buffer {
  if (sealed.length < 1 + IV_BYTES + TAG_BYTES || sealed[0] !== VERSION) {
    throw new SealError('not a sealed value of a known version');
  }
  const iv = sealed.subarray(1, 1 + IV_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([
      decipher.update(sealed.subarray(1 + IV_BYTES, sealed.length - TAG_BYTES)),
      decipher.final(),
    ]);
  } catch {
    throw new SealError('the value does not open with this key');
  }
}
