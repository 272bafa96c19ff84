import assert from 'node:assert/strict';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import {
  keyIdFor,
  openNote,
  parseVkey,
  signCheckpoint,
  signNote,
  verifyCheckpoint,
  vkeyFor,
} from '../../src/audit/checkpoint.js';
import { AuditError } from '../../src/audit/errors.js';

/** golang.org/x/mod/sumdb/note note_test.go / package doc example (also quoted by C2SP signed-note users). */
const GO = {
  vkey: 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
  skey: 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz',
  text: "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n",
  note:
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n" +
    '\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n',
};

function goPrivateKey(): KeyObject {
  // skey = PRIVATE+KEY+<name>+<id>+base64(0x01 || 32-byte seed); PKCS#8 wraps the seed (RFC 8410).
  const seed = Buffer.from(GO.skey.split('+').slice(4).join('+'), 'base64').subarray(1);
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

function reason(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof AuditError ? e.reason : 'untyped';
  }
  return undefined;
}

const NAME = 'casebridge/GW-DEMO';
const root = createHash('sha256').update('root').digest();

describe('audit/checkpoint: C2SP signed-note and tlog-checkpoint', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const vkey = vkeyFor(NAME, publicKey);

  it('reproduces the Go sumdb/note reference note and vkey byte for byte', () => {
    const key = goPrivateKey();
    assert.equal(vkeyFor('PeterNeumann', createPublicKey(key)), GO.vkey);
    assert.equal(signNote(GO.text, 'PeterNeumann', key), GO.note);
    assert.equal(openNote(GO.note, GO.vkey), GO.text);
    assert.equal(
      reason(() => openNote(GO.note.replace('cryptography', 'cryptographY'), GO.vkey)),
      'checkpoint-bad-signature',
    );
  });

  it('computes the key id as SHA-256(name || 0x0A || 0x01 || key)[:4] and publishes the vkey', () => {
    const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
    const want = createHash('sha256')
      .update(Buffer.concat([Buffer.from(NAME), Buffer.from([0x0a, 0x01]), raw]))
      .digest()
      .subarray(0, 4);
    assert.deepEqual(keyIdFor(NAME, raw), want);
    assert.equal(
      vkey,
      `${NAME}+${want.toString('hex')}+${Buffer.concat([Buffer.from([1]), raw]).toString('base64')}`,
    );
    const parsed = parseVkey(vkey);
    assert.equal(parsed.name, NAME);
    assert.deepEqual(parsed.keyId, want);
    assert.equal(vkeyFor(NAME, parsed.publicKey), vkey);
  });

  it('writes the checkpoint body and signature line byte for byte', () => {
    const note = signCheckpoint({ origin: NAME, size: 41, root }, NAME, privateKey);
    const [body, sigLine] = note.split('\n\n') as [string, string];
    assert.equal(body + '\n', `${NAME}\n41\n${root.toString('base64')}\n`);
    assert.ok(sigLine.endsWith('\n'));
    const bytes = Buffer.from(sigLine, 'utf8');
    assert.deepEqual(bytes.subarray(0, 4), Buffer.from([0xe2, 0x80, 0x94, 0x20]));
    const [dash, name, b64] = sigLine.slice(0, -1).split(' ') as [string, string, string];
    assert.equal(dash, '\u2014');
    assert.equal(name, NAME);
    const blob = Buffer.from(b64, 'base64');
    assert.equal(blob.length, 68);
    assert.deepEqual(blob.subarray(0, 4), parseVkey(vkey).keyId);
    assert.deepEqual(verifyCheckpoint(note, vkey), { origin: NAME, size: 41, root });
  });

  it('signs and verifies the empty tree', () => {
    const empty = createHash('sha256').digest();
    const note = signCheckpoint({ origin: NAME, size: 0, root: empty }, NAME, privateKey);
    assert.deepEqual(verifyCheckpoint(note, vkey), { origin: NAME, size: 0, root: empty });
  });

  it('ignores signatures from other keys but needs one from the expected key', () => {
    const other = generateKeyPairSync('ed25519');
    const a = signCheckpoint({ origin: NAME, size: 3, root }, NAME, privateKey);
    const b = signCheckpoint(
      { origin: NAME, size: 3, root },
      'witness.example/w1',
      other.privateKey,
    );
    const both = a + (b.split('\n\n')[1] as string);
    assert.equal(verifyCheckpoint(both, vkey).size, 3);
    assert.equal(
      reason(() => verifyCheckpoint(b, vkey)),
      'checkpoint-unknown-key',
    );
    // Same name, other key: a different key id, so still unknown.
    const sameName = signCheckpoint({ origin: NAME, size: 3, root }, NAME, other.privateKey);
    assert.equal(
      reason(() => verifyCheckpoint(sameName, vkey)),
      'checkpoint-unknown-key',
    );
  });

  it('rejects tampering and malformed notes with typed reasons', () => {
    const note = signCheckpoint({ origin: NAME, size: 41, root }, NAME, privateKey);
    assert.equal(
      reason(() => verifyCheckpoint(note.replace('\n41\n', '\n42\n'), vkey)),
      'checkpoint-bad-signature',
    );
    assert.equal(
      reason(() => verifyCheckpoint(note.replace('\u2014', '--'), vkey)),
      'checkpoint-malformed',
    );
    assert.equal(
      reason(() => verifyCheckpoint(note.slice(0, -1), vkey)),
      'checkpoint-malformed',
    );
    assert.equal(
      reason(() => verifyCheckpoint(note.replace('\n\n', '\n'), vkey)),
      'checkpoint-malformed',
    );
    assert.equal(
      reason(() => verifyCheckpoint('garbage', vkey)),
      'checkpoint-malformed',
    );
    assert.equal(
      reason(() => verifyCheckpoint(note.replace('\n', '\r\n'), vkey)),
      'checkpoint-malformed',
    );
    // A properly signed note whose text is not a checkpoint.
    const notCheckpoint = signNote('hello\n01\nAAAA\n', NAME, privateKey);
    assert.equal(
      reason(() => verifyCheckpoint(notCheckpoint, vkey)),
      'checkpoint-malformed',
    );
    assert.equal(
      reason(() => signCheckpoint({ origin: 'a\nb', size: 1, root }, NAME, privateKey)),
      'checkpoint-malformed',
    );
    assert.equal(
      reason(() =>
        signCheckpoint({ origin: NAME, size: 1, root: Buffer.alloc(31) }, NAME, privateKey),
      ),
      'checkpoint-malformed',
    );
  });

  it('rejects malformed vkeys', () => {
    const [name, id] = vkey.split('+') as [string, string];
    const key = vkey.slice(name.length + id.length + 2);
    assert.equal(
      reason(() => parseVkey(`${name}+${id}`)),
      'vkey-malformed',
    );
    assert.equal(
      reason(() => parseVkey(`${name}+00000000+${key}`)),
      'vkey-malformed',
    );
    assert.equal(
      reason(() => parseVkey(`${name}+${id}+${key.slice(0, -4)}`)),
      'vkey-malformed',
    );
    assert.equal(
      reason(() => parseVkey(`bad name+${id}+${key}`)),
      'vkey-malformed',
    );
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    assert.equal(
      reason(() => vkeyFor(NAME, p256.publicKey)),
      'vkey-malformed',
    );
  });
});
