/**
 * The parts of an X.509 certificate (RFC 5280 §4.1) that node:crypto's
 * X509Certificate does not expose faithfully: exact Name bytes, typed Subject
 * attributes, validity instants, and the extensions the trust checks need.
 */
import { createHash } from 'node:crypto';
import { PkiError } from './errors.js';
import {
  TAG,
  children,
  content,
  ctx,
  decodeOid,
  decodeString,
  decodeTime,
  expectTag,
  integerHex,
  readRoot,
  whole,
  type DerNode,
} from './der.js';

export const OID = {
  // RFC 5280 §4.1.2.4 attribute types
  countryName: '2.5.4.6',
  organizationName: '2.5.4.10',
  organizationalUnitName: '2.5.4.11',
  commonName: '2.5.4.3',
  // RFC 5280 §4.2.1 extensions
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  crlNumber: '2.5.29.20',
  crlReason: '2.5.29.21',
  invalidityDate: '2.5.29.24',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  // RFC 5280 §4.2.1.12
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  anyExtendedKeyUsage: '2.5.29.37.0',
  // Signature algorithms: RFC 5758 §3.2, RFC 4055 §5, RFC 8410 §3
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
  ed25519: '1.3.101.112',
} as const;

/** RFC 5280 §4.2.1.3 KeyUsage bit numbers. */
export const KEY_USAGE = {
  digitalSignature: 0,
  keyCertSign: 5,
  cRLSign: 6,
} as const;

export interface Extension {
  critical: boolean;
  /** The extnValue OCTET STRING contents (the DER of the extension's own value). */
  value: Buffer;
}

export interface NameAttribute {
  oid: string;
  value: string;
}

export interface CertInfo {
  der: Buffer;
  tbs: Buffer;
  serialHex: string;
  issuerDer: Buffer;
  subjectDer: Buffer;
  subject: NameAttribute[];
  notBefore: Date;
  notAfter: Date;
  spkiDer: Buffer;
  extensions: Map<string, Extension>;
  basicConstraints: { ca: boolean; pathLen: number | undefined } | undefined;
  keyUsage: Set<number> | undefined;
  extKeyUsage: string[] | undefined;
  subjectKeyId: Buffer | undefined;
}

/** Extensions whose meaning this module enforces or that carry no constraint. */
export const UNDERSTOOD_EXTENSIONS: ReadonlySet<string> = new Set([
  OID.subjectKeyIdentifier,
  OID.keyUsage,
  OID.subjectAltName,
  OID.basicConstraints,
  OID.authorityKeyIdentifier,
  OID.extKeyUsage,
]);

export function parseName(buf: Buffer, name: DerNode): NameAttribute[] {
  expectTag(name, TAG.SEQUENCE, 'Name');
  const out: NameAttribute[] = [];
  for (const rdn of children(buf, name)) {
    expectTag(rdn, TAG.SET, 'RelativeDistinguishedName');
    for (const atv of children(buf, rdn)) {
      expectTag(atv, TAG.SEQUENCE, 'AttributeTypeAndValue');
      const [t, v, extra] = children(buf, atv);
      if (extra || !v) throw new PkiError('malformed', 'DER: bad AttributeTypeAndValue');
      out.push({
        oid: decodeOid(content(buf, expectTag(t, TAG.OID, 'attribute type'))),
        value: decodeString(buf, v),
      });
    }
  }
  return out;
}

export function parseExtensions(buf: Buffer, exts: DerNode): Map<string, Extension> {
  const map = new Map<string, Extension>();
  for (const ext of children(buf, expectTag(exts, TAG.SEQUENCE, 'Extensions'))) {
    const parts = children(buf, expectTag(ext, TAG.SEQUENCE, 'Extension'));
    const oid = decodeOid(content(buf, expectTag(parts[0], TAG.OID, 'extnID')));
    let i = 1;
    let critical = false;
    if (parts[i]?.tag === TAG.BOOLEAN) {
      const b = content(buf, parts[i]!);
      // X.690 §11.1: DER TRUE is 0xFF; a DEFAULT FALSE must be omitted.
      if (b.length !== 1 || b[0] !== 0xff)
        throw new PkiError('malformed', 'DER: bad critical flag');
      critical = true;
      i++;
    }
    const value = content(buf, expectTag(parts[i], TAG.OCTET_STRING, 'extnValue'));
    if (parts.length !== i + 1) throw new PkiError('malformed', 'DER: bad Extension');
    // RFC 5280 §4.2: a certificate must not include more than one instance of an extension.
    if (map.has(oid)) throw new PkiError('malformed', `duplicate extension ${oid}`);
    map.set(oid, { critical, value });
  }
  return map;
}

function bitSet(bits: Buffer): Set<number> {
  if (bits.length === 0 || bits[0]! > 7) throw new PkiError('malformed', 'DER: bad BIT STRING');
  const set = new Set<number>();
  for (let i = 1; i < bits.length; i++) {
    for (let b = 0; b < 8; b++) if (bits[i]! & (0x80 >> b)) set.add((i - 1) * 8 + b);
  }
  return set;
}

function parseBasicConstraints(v: Buffer): { ca: boolean; pathLen: number | undefined } {
  const root = readRoot(v);
  const parts = children(v, expectTag(root, TAG.SEQUENCE, 'BasicConstraints'));
  let ca = false;
  let pathLen: number | undefined;
  let i = 0;
  if (parts[i]?.tag === TAG.BOOLEAN) {
    ca = content(v, parts[i]!)[0] === 0xff;
    i++;
  }
  if (parts[i]?.tag === TAG.INTEGER) {
    const n = content(v, parts[i]!);
    if (n.length > 2 || (n[0]! & 0x80) !== 0)
      throw new PkiError('malformed', 'bad pathLenConstraint');
    pathLen = n.readUIntBE(0, n.length);
    i++;
  }
  if (i !== parts.length) throw new PkiError('malformed', 'bad BasicConstraints');
  return { ca, pathLen };
}

/** Parses a DER certificate; throws PkiError('malformed') on anything unexpected. */
export function parseCertificate(der: Buffer): CertInfo {
  const root = readRoot(der);
  const [tbsNode, algNode, sigNode, extra] = children(
    der,
    expectTag(root, TAG.SEQUENCE, 'Certificate'),
  );
  expectTag(algNode, TAG.SEQUENCE, 'signatureAlgorithm');
  expectTag(sigNode, TAG.BIT_STRING, 'signatureValue');
  if (extra) throw new PkiError('malformed', 'DER: bad Certificate');
  const tbs = children(der, expectTag(tbsNode, TAG.SEQUENCE, 'TBSCertificate'));
  let i = 0;
  if (tbs[i]?.tag === ctx(0)) i++; // version
  const serial = expectTag(tbs[i++], TAG.INTEGER, 'serialNumber');
  expectTag(tbs[i++], TAG.SEQUENCE, 'signature');
  const issuer = expectTag(tbs[i++], TAG.SEQUENCE, 'issuer');
  const validity = children(der, expectTag(tbs[i++], TAG.SEQUENCE, 'validity'));
  const subject = expectTag(tbs[i++], TAG.SEQUENCE, 'subject');
  const spki = expectTag(tbs[i++], TAG.SEQUENCE, 'subjectPublicKeyInfo');
  while (tbs[i] && (tbs[i]!.tag === 0x81 || tbs[i]!.tag === 0x82)) i++; // unique identifiers
  let extensions = new Map<string, Extension>();
  if (tbs[i]?.tag === ctx(3)) {
    const [seq, more] = children(der, tbs[i]!);
    if (more || !seq) throw new PkiError('malformed', 'DER: bad extensions');
    extensions = parseExtensions(der, seq);
    i++;
  }
  if (i !== tbs.length || validity.length !== 2)
    throw new PkiError('malformed', 'DER: bad TBSCertificate');

  const bc = extensions.get(OID.basicConstraints);
  const ku = extensions.get(OID.keyUsage);
  const eku = extensions.get(OID.extKeyUsage);
  const ski = extensions.get(OID.subjectKeyIdentifier);
  return {
    der,
    tbs: whole(der, tbsNode!),
    serialHex: integerHex(content(der, serial)),
    issuerDer: whole(der, issuer),
    subjectDer: whole(der, subject),
    subject: parseName(der, subject),
    notBefore: decodeTime(der, validity[0]!),
    notAfter: decodeTime(der, validity[1]!),
    spkiDer: whole(der, spki),
    extensions,
    basicConstraints: bc ? parseBasicConstraints(bc.value) : undefined,
    keyUsage: ku
      ? bitSet(content(ku.value, expectTag(readRoot(ku.value), TAG.BIT_STRING, 'KeyUsage')))
      : undefined,
    extKeyUsage: eku
      ? children(eku.value, expectTag(readRoot(eku.value), TAG.SEQUENCE, 'ExtKeyUsage')).map((n) =>
          decodeOid(content(eku.value, expectTag(n, TAG.OID, 'KeyPurposeId'))),
        )
      : undefined,
    subjectKeyId: ski
      ? content(ski.value, expectTag(readRoot(ski.value), TAG.OCTET_STRING, 'SKI'))
      : undefined,
  };
}

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING value. */
export function keyIdentifier(spkiDer: Buffer): Buffer {
  const [, bits] = children(
    spkiDer,
    expectTag(readRoot(spkiDer), TAG.SEQUENCE, 'SubjectPublicKeyInfo'),
  );
  const b = content(spkiDer, expectTag(bits, TAG.BIT_STRING, 'subjectPublicKey'));
  return createHash('sha1').update(b.subarray(1)).digest();
}

/** `sha256:` + lowercase hex SHA-256 of the certificate DER (protocol §6.1). */
export function certificateSubjectId(der: Uint8Array): string {
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

/**
 * The issuer and subject Name DER of a certificate, read without parsing the rest:
 * what a chain-building prefilter needs before anything costly is done for a peer.
 * Throws PkiError('malformed').
 */
export function certificateNames(der: Buffer): { issuer: Buffer; subject: Buffer } {
  const root = children(der, expectTag(readRoot(der), TAG.SEQUENCE, 'Certificate'));
  const tbs = children(der, expectTag(root[0], TAG.SEQUENCE, 'TBSCertificate'));
  let i = tbs[0]?.tag === ctx(0) ? 1 : 0;
  i += 2; // serialNumber, signature
  const issuer = expectTag(tbs[i], TAG.SEQUENCE, 'issuer');
  const subject = expectTag(tbs[i + 2], TAG.SEQUENCE, 'subject');
  return { issuer: whole(der, issuer), subject: whole(der, subject) };
}
