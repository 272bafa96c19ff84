/**
 * Signed checkpoints: C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint) in a
 * C2SP signed note (https://c2sp.org/signed-note) with an Ed25519 signature.
 *
 *   <origin>\n<size>\n<base64 root>\n
 *   \n
 *   — <key name> <base64(4-byte key id || 64-byte signature)>\n
 */
import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { AuditError } from './errors.js';
import { HASH_SIZE } from './merkle.js';

/** signed-note §Signature types: 0x01 = Ed25519. */
export const SIG_TYPE_ED25519 = 0x01;
/** signed-note §Format: a signature line starts with U+2014 EM DASH and a space. */
export const SIGNATURE_LINE_PREFIX = '\u2014 ';
/** signed-note §Format: verifiers must accept at least 16 signatures; we cap at Go's 100. */
const MAX_SIGNATURES = 100;
const MAX_NOTE_BYTES = 1 << 20;
const ED25519_KEY_SIZE = 32;
const ED25519_SIG_SIZE = 64;
const KEY_ID_SIZE = 4;
/** A string that would not encode as valid UTF-8. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export interface CheckpointBody {
  origin: string;
  size: number;
  root: Buffer;
}

/** A parsed verifier key: `<name>+<8 hex key id>+<base64(0x01 || key)>`. */
export interface NoteVerifier {
  name: string;
  keyId: Buffer;
  publicKey: KeyObject;
  /** The vkey text it came from. */
  vkey: string;
}

/** signed-note §Format: no ASCII control characters (below U+0020) other than newline. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) return true;
  }
  return false;
}

/** signed-note §Format: non-empty, no Unicode spaces, no '+'. Control characters are out too. */
function isValidKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+\p{Cc}]/u.test(name) && !LONE_SURROGATE.test(name);
}

/** Standard base64 (RFC 4648 §4), padded; rejects anything that would not re-encode identically. */
function decodeBase64Strict(s: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return undefined;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? b : undefined;
}

/** signed-note §Ed25519 signatures: SHA-256(name || 0x0A || 0x01 || 32-byte key)[:4]. */
export function keyIdFor(name: string, rawPublicKey: Uint8Array): Buffer {
  return createHash('sha256')
    .update(name, 'utf8')
    .update(Buffer.from([0x0a, SIG_TYPE_ED25519]))
    .update(rawPublicKey)
    .digest()
    .subarray(0, KEY_ID_SIZE);
}

function rawEd25519(publicKey: KeyObject): Buffer {
  if (publicKey.asymmetricKeyType !== 'ed25519')
    throw new AuditError('vkey-malformed', 'log key must be Ed25519');
  const jwk = publicKey.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string')
    throw new AuditError('vkey-malformed', 'cannot export the Ed25519 public key');
  return Buffer.from(jwk.x, 'base64url');
}

function publicOf(key: KeyObject): KeyObject {
  return key.type === 'private' ? createPublicKey(key) : key;
}

/** The vkey text publishing `publicKey` under `name` (protocol §6.3). */
export function vkeyFor(name: string, publicKey: KeyObject): string {
  if (!isValidKeyName(name)) throw new AuditError('vkey-malformed', 'bad key name');
  const raw = rawEd25519(publicOf(publicKey));
  const encoded = Buffer.concat([Buffer.from([SIG_TYPE_ED25519]), raw]).toString('base64');
  return `${name}+${keyIdFor(name, raw).toString('hex')}+${encoded}`;
}

/** Parses a vkey and checks its key id against its key. */
export function parseVkey(vkey: string): NoteVerifier {
  // The name and the hex id hold no '+'; the base64 key may.
  const first = vkey.indexOf('+');
  const second = first < 0 ? -1 : vkey.indexOf('+', first + 1);
  if (second < 0) throw new AuditError('vkey-malformed', 'vkey must be name+keyid+key');
  const name = vkey.slice(0, first);
  const idHex = vkey.slice(first + 1, second);
  const keyB64 = vkey.slice(second + 1);
  if (!isValidKeyName(name)) throw new AuditError('vkey-malformed', 'bad key name');
  if (!/^[0-9a-f]{8}$/.test(idHex))
    throw new AuditError('vkey-malformed', 'key id must be 8 lowercase hex digits');
  const key = decodeBase64Strict(keyB64);
  if (key === undefined || key.length !== 1 + ED25519_KEY_SIZE || key[0] !== SIG_TYPE_ED25519) {
    throw new AuditError('vkey-malformed', 'key must be base64(0x01 || 32-byte Ed25519 key)');
  }
  const raw = key.subarray(1);
  const keyId = keyIdFor(name, raw);
  if (keyId.toString('hex') !== idHex)
    throw new AuditError('vkey-malformed', 'key id does not match the key');
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
      format: 'jwk',
    });
  } catch (cause) {
    throw new AuditError('vkey-malformed', 'not an Ed25519 public key', { cause });
  }
  return { name, keyId, publicKey, vkey };
}

function checkBody(body: CheckpointBody): void {
  if (body.origin.length === 0 || /\p{Cc}/u.test(body.origin)) {
    throw new AuditError('checkpoint-malformed', 'origin must be one non-empty line');
  }
  if (!Number.isSafeInteger(body.size) || body.size < 0)
    throw new AuditError('checkpoint-malformed', 'bad size');
  if (body.root.length !== HASH_SIZE)
    throw new AuditError('checkpoint-malformed', 'root must be 32 bytes');
}

/** The note text (tlog-checkpoint §Note text); what the signature covers. */
export function checkpointText(body: CheckpointBody): string {
  checkBody(body);
  return `${body.origin}\n${body.size}\n${body.root.toString('base64')}\n`;
}

/**
 * Signs `text` (which must end in a newline) as a C2SP signed note with one
 * Ed25519 signature line.
 */
export function signNote(text: string, name: string, privateKey: KeyObject): string {
  if (!isValidKeyName(name)) throw new AuditError('checkpoint-malformed', 'bad key name');
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') {
    throw new AuditError('checkpoint-malformed', 'log key must be an Ed25519 private key');
  }
  if (
    !text.endsWith('\n') ||
    text.includes('\n\n') ||
    hasControl(text) ||
    LONE_SURROGATE.test(text)
  ) {
    throw new AuditError(
      'checkpoint-malformed',
      'note text must be non-blank lines, each ending in a newline',
    );
  }
  const raw = rawEd25519(createPublicKey(privateKey));
  const signature = sign(null, Buffer.from(text, 'utf8'), privateKey);
  const blob = Buffer.concat([keyIdFor(name, raw), signature]).toString('base64');
  return `${text}\n${SIGNATURE_LINE_PREFIX}${name} ${blob}\n`;
}

/** Signs a checkpoint as a C2SP signed note with one Ed25519 signature. */
export function signCheckpoint(body: CheckpointBody, name: string, privateKey: KeyObject): string {
  return signNote(checkpointText(body), name, privateKey);
}

const bad = (detail: string): AuditError => new AuditError('checkpoint-malformed', detail);

/**
 * Verifies a C2SP signed note against `vkey` and returns its text (with the final
 * newline). Throws AuditError: `checkpoint-malformed`, `checkpoint-unknown-key` (no
 * signature from this key; others are ignored, as signed-note requires) or
 * `checkpoint-bad-signature` (a signature from this key fails: the whole note is
 * rejected).
 */
export function openNote(note: string, vkey: string | NoteVerifier): string {
  const verifier = typeof vkey === 'string' ? parseVkey(vkey) : vkey;
  if (note.length > MAX_NOTE_BYTES) throw bad('note too large');
  // signed-note §Format: valid UTF-8 (a JS string with no lone surrogates), no control characters but newline.
  if (hasControl(note) || LONE_SURROGATE.test(note)) throw bad('forbidden characters');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw bad('no signature block');
  const text = note.slice(0, split + 1);
  const sigBlock = note.slice(split + 2);
  if (!sigBlock.endsWith('\n')) throw bad('signature block must end in a newline');
  const lines = sigBlock.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw bad('too many signatures');

  let verified = false;
  for (const line of lines) {
    if (!line.startsWith(SIGNATURE_LINE_PREFIX)) throw bad('bad signature line');
    const rest = line.slice(SIGNATURE_LINE_PREFIX.length);
    const space = rest.lastIndexOf(' ');
    if (space <= 0) throw bad('bad signature line');
    const name = rest.slice(0, space);
    const blob = decodeBase64Strict(rest.slice(space + 1));
    if (!isValidKeyName(name) || blob === undefined || blob.length <= KEY_ID_SIZE)
      throw bad('bad signature line');
    // signed-note §Signatures: only the (name, key id) pair identifies a key; ignore the others.
    if (name !== verifier.name || !blob.subarray(0, KEY_ID_SIZE).equals(verifier.keyId)) continue;
    const signature = blob.subarray(KEY_ID_SIZE);
    let ok = false;
    try {
      ok =
        signature.length === ED25519_SIG_SIZE &&
        verify(null, Buffer.from(text, 'utf8'), verifier.publicKey, signature);
    } catch {
      ok = false;
    }
    if (!ok) throw new AuditError('checkpoint-bad-signature', 'note signature does not verify');
    verified = true;
  }
  if (!verified)
    throw new AuditError('checkpoint-unknown-key', 'note is not signed by the expected key');
  return text;
}

/** Verifies a signed checkpoint against `vkey` and returns its body (see openNote for the errors). */
export function verifyCheckpoint(note: string, vkey: string | NoteVerifier): CheckpointBody {
  return parseCheckpointText(openNote(note, vkey));
}

/** tlog-checkpoint §Note text: origin, size, root, then optional non-empty extension lines. */
function parseCheckpointText(text: string): CheckpointBody {
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3 || lines.some((l) => l.length === 0))
    throw bad('checkpoint needs origin, size and root lines');
  const [origin, sizeText, rootText] = lines as [string, string, string];
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) throw bad('bad tree size');
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw bad('tree size too large');
  const root = decodeBase64Strict(rootText);
  if (root === undefined || root.length !== HASH_SIZE) throw bad('root must be base64 of 32 bytes');
  return { origin, size, root };
}
