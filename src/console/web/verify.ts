/**
 * What the console verifies in the browser, with WebCrypto, from the bytes it
 * fetched (protocol §10): JWS signatures (RFC 7515, protocol §2.1), certificate
 * chains to the configured anchors (RFC 5280 §6, simplified as the gateway does),
 * receipts (protocol §3), RFC 9162 inclusion and consistency proofs and C2SP
 * signed-note checkpoints (protocol §6). Every check returns a reason id, which
 * the page turns into a plain-language sentence; nothing here throws on bad input.
 */
import {
  attr,
  type Certificate,
  DerError,
  ecdsaDerToRaw,
  equalBytes,
  fromBase64,
  fromBase64Url,
  OID,
  parseCertificate,
  toHex,
} from './der.js';

export { parseCertificate, fromBase64, fromBase64Url, toHex } from './der.js';

export interface Check {
  ok: boolean;
  /** A catalog id (verify.*) saying why, in plain words. */
  reason: string;
  params?: Record<string, string>;
}

const pass = (reason: string, params?: Record<string, string>): Check =>
  params ? { ok: true, reason, params } : { ok: true, reason };
const fail = (reason: string, params?: Record<string, string>): Check =>
  params ? { ok: false, reason, params } : { ok: false, reason };

const subtle = () => crypto.subtle;
const utf8 = new TextEncoder();
const buf = (b: Uint8Array): ArrayBuffer =>
  b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest('SHA-256', buf(bytes)));
}

/** protocol §2.1: `sha256:` + lowercase hex over the exact ASCII bytes of the JWS. */
export async function digestOf(jws: string): Promise<string> {
  return 'sha256:' + toHex(await sha256(utf8.encode(jws)));
}

// ---------------------------------------------------------------- keys and signatures

type VerifyAlg = AlgorithmIdentifier | RsaPssParams | EcdsaParams;

interface KeySpec {
  importAlg: RsaHashedImportParams | EcKeyImportParams | Algorithm;
  verifyAlg: VerifyAlg;
  /** For ECDSA: the size of r and s. */
  ecSize?: number;
}

/** protocol §2.1 allow-list; anything else is refused before any key is imported. */
const JWS_ALGS: Record<string, KeySpec> = {
  ES256: {
    importAlg: { name: 'ECDSA', namedCurve: 'P-256' },
    verifyAlg: { name: 'ECDSA', hash: 'SHA-256' },
  },
  ES384: {
    importAlg: { name: 'ECDSA', namedCurve: 'P-384' },
    verifyAlg: { name: 'ECDSA', hash: 'SHA-384' },
  },
  PS256: {
    importAlg: { name: 'RSA-PSS', hash: 'SHA-256' },
    verifyAlg: { name: 'RSA-PSS', saltLength: 32 },
  },
  EdDSA: { importAlg: { name: 'Ed25519' }, verifyAlg: { name: 'Ed25519' } },
};

/** The WebCrypto parameters for a certificate signature by `issuer`'s key. */
function certSigSpec(sigAlg: string, issuer: Certificate): KeySpec | undefined {
  const ecHash: Record<string, string> = {
    [OID.ecdsaSha256]: 'SHA-256',
    [OID.ecdsaSha384]: 'SHA-384',
    [OID.ecdsaSha512]: 'SHA-512',
  };
  const rsaHash: Record<string, string> = {
    [OID.rsaSha256]: 'SHA-256',
    [OID.rsaSha384]: 'SHA-384',
    [OID.rsaSha512]: 'SHA-512',
  };
  if (ecHash[sigAlg] && issuer.keyAlg === OID.ecPublicKey) {
    const curve =
      issuer.keyCurve === OID.p256 ? 'P-256' : issuer.keyCurve === OID.p384 ? 'P-384' : undefined;
    if (!curve) return undefined;
    return {
      importAlg: { name: 'ECDSA', namedCurve: curve },
      verifyAlg: { name: 'ECDSA', hash: ecHash[sigAlg]! },
      ecSize: curve === 'P-256' ? 32 : 48,
    };
  }
  if (rsaHash[sigAlg] && issuer.keyAlg === OID.rsaEncryption) {
    return {
      importAlg: { name: 'RSASSA-PKCS1-v1_5', hash: rsaHash[sigAlg]! },
      verifyAlg: { name: 'RSASSA-PKCS1-v1_5' },
    };
  }
  if (sigAlg === OID.ed25519 && issuer.keyAlg === OID.ed25519) {
    return { importAlg: { name: 'Ed25519' }, verifyAlg: { name: 'Ed25519' } };
  }
  return undefined;
}

async function verifyWith(
  spki: Uint8Array,
  spec: KeySpec,
  signature: Uint8Array,
  data: Uint8Array,
): Promise<boolean> {
  try {
    const key = await subtle().importKey('spki', buf(spki), spec.importAlg, false, ['verify']);
    return await subtle().verify(spec.verifyAlg, key, buf(signature), buf(data));
  } catch {
    return false;
  }
}

async function certSignedBy(cert: Certificate, issuer: Certificate): Promise<boolean> {
  if (cert.sigAlg !== cert.tbsSigAlg) return false;
  const spec = certSigSpec(cert.sigAlg, issuer);
  if (!spec) return false;
  let sig = cert.signature;
  if (spec.ecSize !== undefined) {
    try {
      sig = ecdsaDerToRaw(sig, spec.ecSize);
    } catch {
      return false;
    }
  }
  return verifyWith(issuer.spki, spec, sig, cert.tbs);
}

// ---------------------------------------------------------------- JWS

export interface DecodedJws {
  header: Record<string, unknown>;
  payload: Uint8Array;
  signingInput: Uint8Array;
  signature: Uint8Array;
  x5c: Certificate[];
}

/** Decodes a compact JWS; undefined when it is not one (then nothing else can be checked). */
export function decodeJws(jws: string): DecodedJws | undefined {
  const parts = jws.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const header = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(fromBase64Url(parts[0]!)),
    ) as unknown;
    if (typeof header !== 'object' || header === null || Array.isArray(header)) return undefined;
    const h = header as Record<string, unknown>;
    const x5c = Array.isArray(h['x5c'])
      ? (h['x5c'] as unknown[]).map((c) => parseCertificate(fromBase64(String(c))))
      : [];
    return {
      header: h,
      payload: fromBase64Url(parts[1]!),
      signingInput: utf8.encode(`${parts[0]}.${parts[1]}`),
      signature: fromBase64Url(parts[2]!),
      x5c,
    };
  } catch (e) {
    if (e instanceof DerError || e instanceof SyntaxError || e instanceof TypeError)
      return undefined;
    if (e instanceof DOMException) return undefined;
    throw e;
  }
}

/** The signature over the signing input by the leaf of x5c, for an allowed alg and typ. */
export async function checkJwsSignature(jws: DecodedJws | undefined, typ: string): Promise<Check> {
  if (!jws) return fail('verify.jws.malformed');
  const alg = String(jws.header['alg']);
  const spec = JWS_ALGS[alg];
  if (!spec) return fail('verify.jws.alg', { alg });
  if (jws.header['typ'] !== typ) return fail('verify.jws.typ');
  const leaf = jws.x5c[0];
  if (!leaf) return fail('verify.jws.noCert');
  const ok = await verifyWith(leaf.spki, spec, jws.signature, jws.signingInput);
  return ok
    ? pass('verify.jws.ok', { alg, signer: attr(leaf.subject, OID.commonName) ?? '' })
    : fail('verify.jws.bad', { alg });
}

// ---------------------------------------------------------------- certificate chains

export interface Anchors {
  certs: Certificate[];
}

export function parseAnchors(pems: readonly Uint8Array[]): Anchors {
  return { certs: pems.map((d) => parseCertificate(d)) };
}

/**
 * Builds leaf → anchor from the certificates the JWS carried and the configured
 * anchors, verifying each signature, CA flag, path length and validity at `at`
 * and now. Returns the path's subjects for display.
 */
export async function checkChain(
  chain: readonly Certificate[],
  anchors: Anchors,
  at: Date,
  now: Date,
): Promise<Check & { path?: Certificate[] }> {
  const leaf = chain[0];
  if (!leaf) return fail('verify.chain.empty');
  const path: Certificate[] = [leaf];
  const unused = chain.slice(1);
  let anchored = false;
  while (path.length < 8) {
    const cur = path[path.length - 1]!;
    let next: Certificate | undefined;
    for (const a of anchors.certs) {
      if (equalBytes(a.subjectDer, cur.issuerDer) && (await certSignedBy(cur, a))) {
        next = a;
        anchored = true;
        break;
      }
    }
    if (anchored) {
      path.push(next!);
      break;
    }
    const idx = await findIndexAsync(
      unused,
      async (c) => equalBytes(c.subjectDer, cur.issuerDer) && (await certSignedBy(cur, c)),
    );
    if (idx < 0) break;
    path.push(unused.splice(idx, 1)[0]!);
  }
  if (!anchored) return fail('verify.chain.untrusted');
  for (let i = 1; i < path.length; i++) {
    const bc = path[i]!.basicConstraints;
    if (!bc?.ca) return fail('verify.chain.notCa');
    if (bc.pathLen !== undefined && i - 1 > bc.pathLen) return fail('verify.chain.pathLen');
  }
  if (leaf.basicConstraints?.ca) return fail('verify.chain.leafCa');
  for (const c of path) {
    if (at < c.notBefore || at > c.notAfter) return { ...fail('verify.chain.atCreated'), path };
    if (now < c.notBefore || now > c.notAfter) return { ...fail('verify.chain.now'), path };
  }
  const top = path[path.length - 1]!;
  return {
    ...pass('verify.chain.ok', {
      anchor: attr(top.subject, OID.commonName) ?? attr(top.subject, OID.organizationName) ?? '',
      length: String(path.length),
    }),
    path,
  };
}

async function findIndexAsync<T>(xs: T[], pred: (x: T) => Promise<boolean>): Promise<number> {
  for (let i = 0; i < xs.length; i++) if (await pred(xs[i]!)) return i;
  return -1;
}

// ---------------------------------------------------------------- RFC 9162 Merkle proofs

const LEAF_PREFIX = 0x00; // RFC 9162 §2.1.1
const NODE_PREFIX = 0x01;

export async function leafHash(entry: Uint8Array): Promise<Uint8Array> {
  const b = new Uint8Array(entry.length + 1);
  b[0] = LEAF_PREFIX;
  b.set(entry, 1);
  return sha256(b);
}

async function nodeHash(l: Uint8Array, r: Uint8Array): Promise<Uint8Array> {
  const b = new Uint8Array(65);
  b[0] = NODE_PREFIX;
  b.set(l, 1);
  b.set(r, 33);
  return sha256(b);
}

const lsb = (n: number) => n % 2 === 1;
const half = (n: number) => Math.floor(n / 2);

/** RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or undefined if malformed. */
export async function rootFromInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
): Promise<Uint8Array | undefined> {
  if (index >= size || index < 0) return undefined;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return undefined;
    if (lsb(fn) || fn === sn) {
      r = await nodeHash(p, r);
      if (!lsb(fn)) {
        while (!lsb(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 ? r : undefined;
}

/** RFC 9162 §2.1.4.2: whether `proof` shows tree (size1, root1) is a prefix of (size2, root2). */
export async function verifyConsistency(
  size1: number,
  size2: number,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): Promise<boolean> {
  if (size1 > size2 || size1 < 1) return false;
  if (size1 === size2) return proof.length === 0 && equalBytes(root1, root2);
  if (proof.length === 0) return false;
  const path = (size1 & (size1 - 1)) === 0 ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (lsb(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (lsb(fn) || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (!lsb(fn)) {
        while (!lsb(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equalBytes(fr, root1) && equalBytes(sr, root2);
}

// ---------------------------------------------------------------- C2SP signed notes

export interface LogKey {
  name: string;
  keyIdHex: string;
  raw: Uint8Array;
  vkey: string;
}

/** signed-note vkey `<name>+<8 hex key id>+<base64(0x01 || 32-byte key)>`, key id checked. */
export async function parseVkey(vkey: string): Promise<LogKey | undefined> {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey.trim());
  if (!m) return undefined;
  let key: Uint8Array;
  try {
    key = fromBase64(m[3]!);
  } catch {
    return undefined;
  }
  if (key.length !== 33 || key[0] !== 0x01) return undefined;
  const raw = key.subarray(1);
  const id = await keyId(m[1]!, raw);
  if (toHex(id) !== m[2]) return undefined;
  return { name: m[1]!, keyIdHex: m[2]!, raw, vkey: vkey.trim() };
}

/** signed-note: SHA-256(name || 0x0A || 0x01 || key)[:4]. */
async function keyId(name: string, raw: Uint8Array): Promise<Uint8Array> {
  const n = utf8.encode(name);
  const b = new Uint8Array(n.length + 2 + raw.length);
  b.set(n);
  b[n.length] = 0x0a;
  b[n.length + 1] = 0x01;
  b.set(raw, n.length + 2);
  return (await sha256(b)).subarray(0, 4);
}

export interface SignedCheckpoint {
  origin: string;
  size: number;
  root: Uint8Array;
  text: string;
}

/**
 * Parses a C2SP tlog-checkpoint and checks its Ed25519 signature line by `key`.
 * Returns the checkpoint only when a signature by that key verifies.
 */
export async function openCheckpoint(
  note: string,
  key: LogKey,
): Promise<{ check: Check; checkpoint?: SignedCheckpoint }> {
  const split = note.indexOf('\n\n');
  if (split < 0) return { check: fail('verify.checkpoint.malformed') };
  const text = note.slice(0, split + 1);
  const lines = text.split('\n');
  const [origin, sizeText, rootB64] = lines;
  if (!origin || !sizeText || !/^(0|[1-9]\d*)$/.test(sizeText) || !rootB64)
    return { check: fail('verify.checkpoint.malformed') };
  let root: Uint8Array;
  try {
    root = fromBase64(rootB64);
  } catch {
    return { check: fail('verify.checkpoint.malformed') };
  }
  if (root.length !== 32) return { check: fail('verify.checkpoint.malformed') };
  if (origin !== key.name) return { check: fail('verify.checkpoint.origin') };
  const prefix = `\u2014 ${key.name} `;
  const pub = await subtle().importKey('raw', buf(key.raw), { name: 'Ed25519' }, false, ['verify']);
  for (const line of note.slice(split + 2).split('\n')) {
    if (!line.startsWith(prefix)) continue;
    let sig: Uint8Array;
    try {
      sig = fromBase64(line.slice(prefix.length));
    } catch {
      continue;
    }
    if (sig.length !== 68 || toHex(sig.subarray(0, 4)) !== key.keyIdHex) continue;
    const ok = await subtle().verify(
      { name: 'Ed25519' },
      pub,
      buf(sig.subarray(4)),
      buf(utf8.encode(text)),
    );
    if (ok) {
      return {
        check: pass('verify.checkpoint.ok', { size: sizeText, key: key.keyIdHex }),
        checkpoint: { origin, size: Number(sizeText), root, text: note },
      };
    }
  }
  return { check: fail('verify.checkpoint.badSig', { key: key.keyIdHex }) };
}
