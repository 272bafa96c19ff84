/**
 * PKCS#12 files (RFC 7292) so a person can import a certificate and its key into a
 * browser (protocol §10). node-forge writes PKCS#12 for RSA keys only, so the PFX is
 * assembled here from its primitives, for any key type:
 * - the key as a pkcs8ShroudedKeyBag: PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC
 *   (RFC 8018 §6.2), as current browsers and OpenSSL 3 expect, on node:crypto;
 * - the leaf and its intermediates as certBags, in a plain `data` ContentInfo
 *   (certificates are public);
 * - an HMAC-SHA256 integrity MAC keyed by the RFC 7292 Appendix B.2 derivation.
 */
import {
  createCipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  pbkdf2Sync,
  randomBytes,
} from 'node:crypto';
import forge from 'node-forge';
import { explicit, nul, octets, oid, seq, set, toDer, uint, type Asn1Node } from './asn1.js';
import { parsePemChain } from './pem.js';

const OID = {
  data: '1.2.840.113549.1.7.1', // RFC 2315 §14
  keyBag: '1.2.840.113549.1.12.10.1.2', // pkcs8ShroudedKeyBag, RFC 7292 §4.2.2
  certBag: '1.2.840.113549.1.12.10.1.3', // RFC 7292 §4.2.3
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20', // RFC 2985 §5.5.1
  localKeyId: '1.2.840.113549.1.9.21', // RFC 2985 §5.5.2
  sha256: '2.16.840.1.101.3.4.2.1',
  pbes2: '1.2.840.113549.1.5.13', // RFC 8018 §A.4
  pbkdf2: '1.2.840.113549.1.5.12', // RFC 8018 §A.2
  hmacWithSha256: '1.2.840.113549.2.9',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
};
const SHA256_BLOCK = 64;
const SHA256_BYTES = 32;
const AES256_KEY_BYTES = 32;
const AES_IV_BYTES = 16;
/** RFC 7292 Appendix B.3: ID byte 3 derives the MAC key. */
const MAC_KEY_ID = 3;
const PFX_VERSION = 3;
const SALT_BYTES = 16;
/** RFC 8018 §4.2 asks for at least 1,000; 2,048 is OpenSSL's PKCS#12 default. */
const DEFAULT_ITERATIONS = 2048;

export interface Pkcs12Options {
  password: string;
  /** The name a browser shows for the certificate. */
  friendlyName: string;
  iterations?: number;
}

/** UTF-16BE code units (a BMPString's content); with `terminate`, two zero bytes follow. */
function utf16be(s: string, terminate = false): Buffer {
  const bytes = Buffer.alloc((s.length + (terminate ? 1 : 0)) * 2);
  for (let i = 0; i < s.length; i++) bytes.writeUInt16BE(s.charCodeAt(i), i * 2);
  return bytes;
}

/** forge writes a BMPSTRING's value as UTF-16BE itself. */
function bmpString(s: string): Asn1Node {
  return forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.BMPSTRING, false, s);
}

/** `len` bytes of `src` repeated (RFC 7292 B.2 steps 2 and 3). */
function repeatTo(src: Buffer, len: number): Buffer {
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i++) out[i] = src[i % src.length]!;
  return out;
}

/** RFC 7292 Appendix B.2 key derivation with SHA-256; the password as a BMPString. */
export function pkcs12Kdf(
  password: string,
  salt: Buffer,
  id: number,
  iterations: number,
  n: number,
): Buffer {
  const v = SHA256_BLOCK;
  const D = Buffer.alloc(v, id);
  const pass = utf16be(password, true);
  const S = repeatTo(salt, v * Math.ceil(salt.length / v));
  const P = repeatTo(pass, v * Math.ceil(pass.length / v));
  const I = Buffer.concat([S, P]);
  const out: Buffer[] = [];
  for (let produced = 0; produced < n; produced += SHA256_BYTES) {
    let A = createHash('sha256').update(D).update(I).digest();
    for (let r = 1; r < iterations; r++) A = createHash('sha256').update(A).digest();
    out.push(A);
    // I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block, B = A repeated to v bytes.
    const B = repeatTo(A, v);
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k]! + B[k]! + carry;
        I[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return Buffer.concat(out).subarray(0, n);
}

/** EncryptedPrivateKeyInfo (RFC 5958 §3) with PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC. */
function shroud(pkcs8: Buffer, password: string, iterations: number): Asn1Node {
  const salt = randomBytes(SALT_BYTES);
  const iv = randomBytes(AES_IV_BYTES);
  const key = pbkdf2Sync(
    Buffer.from(password, 'utf8'),
    salt,
    iterations,
    AES256_KEY_BYTES,
    'sha256',
  );
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const encrypted = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
  const pbkdf2Params = seq([
    octets(salt),
    uint(iterations),
    uint(AES256_KEY_BYTES),
    seq([oid(OID.hmacWithSha256), nul()]),
  ]);
  const algorithm = seq([
    oid(OID.pbes2),
    seq([seq([oid(OID.pbkdf2), pbkdf2Params]), seq([oid(OID.aes256Cbc), octets(iv)])]),
  ]);
  return seq([algorithm, octets(encrypted)]);
}

const attribute = (type: string, value: Asn1Node): Asn1Node => seq([oid(type), set([value])]);

/** A ContentInfo of type `data` around DER (RFC 2315 §7). */
const dataContent = (der: Buffer): Asn1Node => seq([oid(OID.data), explicit(0, octets(der))]);

/** The PFX for a PEM chain (leaf first) and its PKCS#8 private key. */
export function toPkcs12(chainPem: string, keyPem: string, opts: Pkcs12Options): Buffer {
  const iterations = opts.iterations ?? DEFAULT_ITERATIONS;
  const chain = parsePemChain(chainPem);
  const leaf = chain[0];
  if (leaf === undefined) throw new RangeError('the chain holds no certificate');
  const localKeyId = createHash('sha1').update(leaf.raw).digest();
  const attributes = set([
    attribute(OID.friendlyName, bmpString(opts.friendlyName)),
    attribute(OID.localKeyId, octets(localKeyId)),
  ]);

  const certBags = chain.map((cert, i) =>
    seq([
      oid(OID.certBag),
      explicit(0, seq([oid(OID.x509Certificate), explicit(0, octets(cert.raw))])),
      ...(i === 0 ? [attributes] : []),
    ]),
  );
  const pkcs8 = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
  const keyBag = seq([
    oid(OID.keyBag),
    explicit(0, shroud(pkcs8, opts.password, iterations)),
    attributes,
  ]);

  const authSafe = toDer(
    seq([dataContent(toDer(seq(certBags))), dataContent(toDer(seq([keyBag])))]),
  );
  const salt = randomBytes(SALT_BYTES);
  const macKey = pkcs12Kdf(opts.password, salt, MAC_KEY_ID, iterations, SHA256_BYTES);
  const mac = createHmac('sha256', macKey).update(authSafe).digest();
  const macData = seq([
    seq([seq([oid(OID.sha256), nul()]), octets(mac)]),
    octets(salt),
    uint(iterations),
  ]);
  return toDer(seq([uint(PFX_VERSION), dataContent(authSafe), macData]));
}
