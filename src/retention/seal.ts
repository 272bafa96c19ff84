/**
 * AES-256-GCM (NIST SP 800-38D) for message bytes at rest. Pure: no I/O.
 *
 * A sealed value is `version (1) || IV (12) || ciphertext || tag (16)`. The
 * additional authenticated data binds each value to where it belongs (the
 * message id, the epoch), so a ciphertext moved to another row does not open.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { systemRandom, type RandomFill } from './random-pool.js';

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

export function newKey(random: RandomFill = systemRandom): Buffer {
  const key = Buffer.alloc(KEY_BYTES);
  random(key, 0, KEY_BYTES);
  return key;
}

export function seal(
  key: Buffer,
  plain: Buffer,
  aad: string,
  random: RandomFill = systemRandom,
): Buffer {
  const out = Buffer.allocUnsafe(1 + IV_BYTES + plain.length + TAG_BYTES);
  out[0] = VERSION;
  random(out, 1, IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, out.subarray(1, 1 + IV_BYTES), {
    authTagLength: TAG_BYTES,
  });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  let at = 1 + IV_BYTES;
  at += cipher.update(plain).copy(out, at);
  at += cipher.final().copy(out, at);
  cipher.getAuthTag().copy(out, at);
  return out;
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
