/**
 * The console's in-browser verification code, run under Node's WebCrypto against
 * the gateway's own implementations: RFC 9162 proofs from the audit tree, C2SP
 * signed notes from the checkpointer, JWS of every allowed algorithm from the signer,
 * chains issued by the test PKI. The browser tests then run the same code in Chromium.
 */
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { checkpointText, signNote, vkeyFor } from '../../src/audit/checkpoint.js';
import { consistencyProof, inclusionProof, MemoryTree, rootHash } from '../../src/audit/merkle.js';
import { signMessage, signReceipt } from '../../src/envelope/sign.js';
import type { KeyType } from '../../src/pki/index.js';
import { parsePemChain } from '../../src/pki/pem.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { getTestPki, issueTestCert } from '../helpers/pki.js';

interface Check {
  ok: boolean;
  reason: string;
}
interface Lib {
  rootFromInclusion(
    i: number,
    n: number,
    leaf: Uint8Array,
    p: Uint8Array[],
  ): Promise<Uint8Array | undefined>;
  verifyConsistency(
    a: number,
    b: number,
    ra: Uint8Array,
    rb: Uint8Array,
    p: Uint8Array[],
  ): Promise<boolean>;
  leafHash(entry: Uint8Array): Promise<Uint8Array>;
  parseVkey(v: string): Promise<unknown>;
  openCheckpoint(
    note: string,
    key: unknown,
  ): Promise<{ check: Check; checkpoint?: { size: number } }>;
  decodeJws(jws: string): { x5c: unknown[] } | undefined;
  checkJwsSignature(jws: unknown, typ: string): Promise<Check>;
  parseCertificate(der: Uint8Array): unknown;
  checkChain(chain: unknown[], anchors: { certs: unknown[] }, at: Date, now: Date): Promise<Check>;
}

const lib = (): Promise<Lib> =>
  import(
    pathToFileURL(join(process.cwd(), 'dist', 'console-lib', 'verify.js')).href
  ) as Promise<Lib>;
const entry = (i: number) => Buffer.from(`{"v":1,"index":${i}}`);
const eq = (a: Uint8Array | undefined, b: Uint8Array) =>
  a !== undefined && Buffer.from(a).equals(Buffer.from(b));

describe('console verification code (protocol §10, RFC 9162, RFC 7515)', function () {
  let v: Lib;
  const tree = new MemoryTree();
  before(async function () {
    v = await lib();
    for (let i = 0; i < 70; i++) tree.append(entry(i));
  });

  it('derives the root from every inclusion proof of trees up to 70 leaves, and not from a wrong one', async function () {
    for (let size = 1; size <= 70; size++) {
      const root = rootHash(size, tree);
      for (let i = 0; i < size; i++) {
        const proof = inclusionProof(i, size, tree);
        expect(
          eq(await v.rootFromInclusion(i, size, await v.leafHash(entry(i)), proof), root),
        ).to.equal(true);
      }
      if (size > 1) {
        const bad = await v.rootFromInclusion(
          0,
          size,
          await v.leafHash(entry(1)),
          inclusionProof(0, size, tree),
        );
        expect(eq(bad, root)).to.equal(false);
        expect(await v.rootFromInclusion(size, size, await v.leafHash(entry(0)), [])).to.equal(
          undefined,
        );
      }
    }
  });

  it('accepts every consistency proof between sizes up to 40 and refuses altered ones (a fork)', async function () {
    for (let b = 1; b <= 40; b++) {
      for (let a = 1; a <= b; a++) {
        const proof = consistencyProof(a, b, tree);
        const ra = rootHash(a, tree);
        const rb = rootHash(b, tree);
        expect(await v.verifyConsistency(a, b, ra, rb, proof), `${a}→${b}`).to.equal(true);
        if (a < b) {
          const forked = Buffer.from(ra);
          forked[0]! ^= 1;
          expect(await v.verifyConsistency(a, b, forked, rb, proof), `fork ${a}→${b}`).to.equal(
            false,
          );
          expect(
            await v.verifyConsistency(a, b, ra, rb, proof.slice(1)),
            `short ${a}→${b}`,
          ).to.equal(false);
        }
      }
    }
    expect(await v.verifyConsistency(5, 4, rootHash(5, tree), rootHash(4, tree), [])).to.equal(
      false,
    );
  });

  it('checks a C2SP signed-note checkpoint with the log key, and nothing else', async function () {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const name = 'casebridge/GW-TEST';
    const text = checkpointText({ origin: name, size: 70, root: rootHash(70, tree) });
    const note = signNote(text, name, privateKey);
    const key = await v.parseVkey(vkeyFor(name, publicKey));
    expect(key).to.not.equal(undefined);
    const opened = await v.openCheckpoint(note, key);
    expect(opened.check.ok).to.equal(true);
    expect(opened.checkpoint?.size).to.equal(70);
    const altered = note.replace('\n70\n', '\n71\n');
    expect((await v.openCheckpoint(altered, key)).check.ok).to.equal(false);
    const other = generateKeyPairSync('ed25519');
    const otherKey = await v.parseVkey(vkeyFor(name, other.publicKey));
    expect((await v.openCheckpoint(note, otherKey)).check.reason).to.equal(
      'verify.checkpoint.badSig',
    );
    expect(
      await v.parseVkey(vkeyFor(name, publicKey).replace(/\+[0-9a-f]{8}\+/, '+00000000+')),
    ).to.equal(undefined);
  });

  const algs: Array<[KeyType, string]> = [
    ['ec-p256', 'ES256'],
    ['ec-p384', 'ES384'],
    ['rsa', 'PS256'],
    ['ed25519', 'EdDSA'],
  ];
  for (const [keyType, alg] of algs) {
    it(`verifies a ${alg} message signature and its chain to the anchors; refuses altered bytes`, async function () {
      const pki = await getTestPki();
      const cert = await issueTestCert({ keyType });
      const jws = signMessage(sampleEnvelope('evidence.request'), {
        key: cert.key,
        chain: cert.chain,
      });
      const decoded = v.decodeJws(jws);
      const sig = await v.checkJwsSignature(decoded, 'casebridge-message+jws');
      expect(sig, alg).to.include({ ok: true });
      const anchors = {
        certs: parsePemChain(pki.text('trust.pem')).map((c) => v.parseCertificate(c.raw)),
      };
      const now = new Date();
      expect(await v.checkChain(decoded!.x5c, anchors, now, now)).to.include({ ok: true });
      const [h, p, s] = jws.split('.');
      const flipped = `${h}.${p!.slice(0, 10)}${p![10] === 'A' ? 'B' : 'A'}${p!.slice(11)}.${s}`;
      expect(
        (await v.checkJwsSignature(v.decodeJws(flipped), 'casebridge-message+jws')).ok,
      ).to.equal(false);
      // A receipt is not a message: the typ is checked before the signature.
      expect((await v.checkJwsSignature(decoded, 'casebridge-receipt+jws')).reason).to.equal(
        'verify.jws.typ',
      );
    });
  }

  it('refuses a chain to a root that is not an anchor, and a certificate outside its validity', async function () {
    const pki = await getTestPki();
    const anchors = {
      certs: parsePemChain(pki.text('trust.pem')).map((c) => v.parseCertificate(c.raw)),
    };
    const stranger = await issueTestCert({ issuer: 'untrusted' });
    const jws = signReceipt(
      {
        messageId: 'x',
        digest: 'sha256:00',
        logIndex: 0,
        acceptedAt: new Date().toISOString(),
        from: 'A',
        to: 'B',
        type: 'funds.freeze',
      } as never,
      { key: stranger.key, chain: stranger.chain },
    );
    const now = new Date();
    expect((await v.checkChain(v.decodeJws(jws)!.x5c, anchors, now, now)).reason).to.equal(
      'verify.chain.untrusted',
    );
    const old = await issueTestCert({
      notBefore: new Date(Date.now() - 10 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const oldJws = signMessage(sampleEnvelope('evidence.request'), {
      key: old.key,
      chain: old.chain,
    });
    expect((await v.checkChain(v.decodeJws(oldJws)!.x5c, anchors, now, now)).ok).to.equal(false);
  });
});
