/**
 * A small DER reader (ITU-T X.690) and the X.509 fields the console checks
 * (RFC 5280 §4.1): enough to verify certificate signatures with WebCrypto.
 * Input is hostile: every read is bounds-checked and throws DerError.
 */

export class DerError extends Error {
  override name = 'DerError';
}

export interface Tlv {
  /** The identifier octet (class, constructed bit and tag number < 31). */
  tag: number;
  /** Contents only. */
  value: Uint8Array;
  /** The whole element: identifier, length and contents. */
  raw: Uint8Array;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8: 0x0c,
  PRINTABLE: 0x13,
  IA5: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  BMP: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Reads one TLV at `offset`; definite lengths only, as DER requires (X.690 §10.1). */
export function readTlv(buf: Uint8Array, offset = 0): Tlv {
  if (offset + 2 > buf.length) throw new DerError('truncated element');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not used in X.509');
  let len = buf[offset + 1]!;
  let pos = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError('unsupported length');
    if (pos + n > buf.length) throw new DerError('truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + i]!;
    if (len < 0x80 || (n > 1 && buf[pos] === 0)) throw new DerError('non-minimal length');
    pos += n;
  }
  if (pos + len > buf.length) throw new DerError('truncated contents');
  return { tag, value: buf.subarray(pos, pos + len), raw: buf.subarray(offset, pos + len) };
}

/** The elements inside a constructed value. */
export function children(t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let pos = 0;
  while (pos < t.value.length) {
    const c = readTlv(t.value, pos);
    out.push(c);
    pos += c.raw.length;
  }
  return out;
}

export function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new DerError(`expected ${what}`);
  return t;
}

/** Dotted-decimal OID (X.690 §8.19). */
export function oid(t: Tlv): string {
  const v = expect(t, TAG.OID, 'an OID').value;
  if (v.length === 0) throw new DerError('empty OID');
  const parts: number[] = [];
  let n = 0;
  for (let i = 0; i < v.length; i++) {
    n = n * 128 + (v[i]! & 0x7f);
    if (!(v[i]! & 0x80)) {
      parts.push(n);
      n = 0;
    }
  }
  const first = parts.shift()!;
  const a = first < 40 ? 0 : first < 80 ? 1 : 2;
  return [a, first - a * 40, ...parts].join('.');
}

function text(t: Tlv): string {
  switch (t.tag) {
    case TAG.UTF8:
      return new TextDecoder('utf-8', { fatal: true }).decode(t.value);
    case TAG.PRINTABLE:
    case TAG.IA5:
      return String.fromCharCode(...t.value);
    case TAG.BMP: {
      let s = '';
      for (let i = 0; i + 1 < t.value.length; i += 2)
        s += String.fromCharCode((t.value[i]! << 8) | t.value[i + 1]!);
      return s;
    }
    default:
      throw new DerError('unsupported string type');
  }
}

/** UTCTime / GeneralizedTime as RFC 5280 §4.1.2.5 restricts them (UTC, seconds, "Z"). */
export function time(t: Tlv): Date {
  const s = String.fromCharCode(...t.value);
  let m: RegExpExecArray | null;
  if (t.tag === TAG.UTC_TIME && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    const yy = Number(m[1]);
    return new Date(
      Date.UTC(yy >= 50 ? 1900 + yy : 2000 + yy, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!),
    );
  }
  if (t.tag === TAG.GENERALIZED_TIME && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s))) {
    return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  }
  throw new DerError('bad time');
}

export const OID = {
  commonName: '2.5.4.3',
  countryName: '2.5.4.6',
  organizationName: '2.5.4.10',
  organizationalUnitName: '2.5.4.11',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  ecPublicKey: '1.2.840.10045.2.1',
  p256: '1.2.840.10045.3.1.7',
  p384: '1.3.132.0.34',
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsaPss: '1.2.840.113549.1.1.10',
  ed25519: '1.3.101.112',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  ecdsaSha512: '1.2.840.10045.4.3.4',
  rsaSha256: '1.2.840.113549.1.1.11',
  rsaSha384: '1.2.840.113549.1.1.12',
  rsaSha512: '1.2.840.113549.1.1.13',
} as const;

export interface NameAttr {
  oid: string;
  value: string;
}

export interface Certificate {
  der: Uint8Array;
  tbs: Uint8Array;
  serialHex: string;
  /** DER of the issuer and subject Names, compared byte for byte (RFC 5280 §7.1 simplified). */
  issuerDer: Uint8Array;
  subjectDer: Uint8Array;
  issuer: NameAttr[];
  subject: NameAttr[];
  notBefore: Date;
  notAfter: Date;
  spki: Uint8Array;
  /** SPKI algorithm OID and, for EC keys, the curve OID. */
  keyAlg: string;
  keyCurve: string | undefined;
  /** signatureAlgorithm OID, and the one inside the TBS (they must match, §4.1.1.2). */
  sigAlg: string;
  tbsSigAlg: string;
  /** signatureValue without the unused-bits octet. */
  signature: Uint8Array;
  basicConstraints: { ca: boolean; pathLen: number | undefined } | undefined;
}

function name(t: Tlv): NameAttr[] {
  const out: NameAttr[] = [];
  for (const rdn of children(expect(t, TAG.SEQUENCE, 'a Name'))) {
    for (const atv of children(expect(rdn, TAG.SET, 'an RDN'))) {
      const [type, value] = children(expect(atv, TAG.SEQUENCE, 'an attribute'));
      out.push({ oid: oid(type!), value: text(value!) });
    }
  }
  return out;
}

function algorithm(t: Tlv | undefined): string {
  const [id] = children(expect(t, TAG.SEQUENCE, 'an AlgorithmIdentifier'));
  return oid(id!);
}

function bitString(t: Tlv | undefined): Uint8Array {
  const v = expect(t, TAG.BIT_STRING, 'a BIT STRING').value;
  if (v.length === 0 || v[0] !== 0) throw new DerError('bit strings here have no unused bits');
  return v.subarray(1);
}

function unsigned(v: Uint8Array): number {
  let n = 0;
  for (const b of v) n = n * 256 + b;
  return n;
}

export function parseCertificate(der: Uint8Array): Certificate {
  const outer = expect(readTlv(der), TAG.SEQUENCE, 'a Certificate');
  if (outer.raw.length !== der.length) throw new DerError('trailing bytes after the certificate');
  const [tbsT, sigAlgT, sigT] = children(outer);
  const tbs = expect(tbsT, TAG.SEQUENCE, 'a TBSCertificate');
  const f = children(tbs);
  let i = 0;
  if (f[0]?.tag === 0xa0) i++; // [0] EXPLICIT version
  const serial = expect(f[i++], TAG.INTEGER, 'a serial number');
  const tbsSigAlg = algorithm(f[i++]);
  const issuerT = f[i++]!;
  const validity = children(expect(f[i++], TAG.SEQUENCE, 'a Validity'));
  const subjectT = f[i++]!;
  const spkiT = expect(f[i++], TAG.SEQUENCE, 'a SubjectPublicKeyInfo');
  const [keyAlgT] = children(spkiT);
  const keyAlgParts = children(expect(keyAlgT, TAG.SEQUENCE, 'a key algorithm'));
  const keyAlg = oid(keyAlgParts[0]!);
  const keyCurve = keyAlgParts[1]?.tag === TAG.OID ? oid(keyAlgParts[1]) : undefined;

  let basicConstraints: Certificate['basicConstraints'];
  for (; i < f.length; i++) {
    if (f[i]!.tag !== 0xa3) continue; // [3] EXPLICIT extensions
    const [exts] = children(f[i]!);
    for (const ext of children(expect(exts, TAG.SEQUENCE, 'extensions'))) {
      const parts = children(ext);
      const id = oid(parts[0]!);
      const value = expect(parts[parts.length - 1], TAG.OCTET_STRING, 'an extension value');
      if (id === OID.basicConstraints) {
        const bc = children(expect(readTlv(value.value), TAG.SEQUENCE, 'basicConstraints'));
        let ca = false;
        let pathLen: number | undefined;
        for (const c of bc) {
          if (c.tag === TAG.BOOLEAN) ca = c.value[0] === 0xff;
          else if (c.tag === TAG.INTEGER) pathLen = unsigned(c.value);
        }
        basicConstraints = { ca, pathLen };
      }
    }
  }

  return {
    der,
    tbs: tbs.raw,
    serialHex: [...serial.value].map((b) => b.toString(16).padStart(2, '0')).join(''),
    issuerDer: issuerT.raw,
    subjectDer: subjectT.raw,
    issuer: name(issuerT),
    subject: name(subjectT),
    notBefore: time(validity[0]!),
    notAfter: time(validity[1]!),
    spki: spkiT.raw,
    keyAlg,
    keyCurve,
    sigAlg: algorithm(sigAlgT),
    tbsSigAlg,
    signature: bitString(sigT),
    basicConstraints,
  };
}

/** The value of the one attribute `oid` in a Name, or undefined. */
export function attr(n: NameAttr[], id: string): string | undefined {
  return n.find((a) => a.oid === id)?.value;
}

/** ECDSA-Sig-Value (RFC 3279 §2.2.3) → the fixed-size r || s WebCrypto verifies. */
export function ecdsaDerToRaw(sig: Uint8Array, size: number): Uint8Array {
  const [r, s] = children(expect(readTlv(sig), TAG.SEQUENCE, 'an ECDSA signature'));
  const out = new Uint8Array(size * 2);
  for (const [k, part] of [r, s].entries()) {
    let v = expect(part, TAG.INTEGER, 'an integer').value;
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    if (v.length > size) throw new DerError('ECDSA integer too long');
    out.set(v, k * size + size - v.length);
  }
  return out;
}

export function pemToDer(pem: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  const re = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/g;
  for (let m = re.exec(pem); m; m = re.exec(pem)) out.push(fromBase64(m[1]!.replace(/\s+/g, '')));
  return out;
}

export function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** base64url without padding (RFC 7515 §2), canonical only. */
export function fromBase64Url(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) throw new DerError('bad base64url');
  const b = s.replace(/-/g, '+').replace(/_/g, '/');
  return fromBase64(b + '='.repeat((4 - (b.length % 4)) % 4));
}

export function toBase64(b: Uint8Array): string {
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

export function toHex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
