/**
 * X.509 v2 CRLs (RFC 5280 §5). node-forge has no CRL support, so they are built on
 * its ASN.1 model and parsed with the strict DER reader; signatures via node:crypto.
 */
import { X509Certificate, createPublicKey, type KeyObject } from 'node:crypto';
import {
  algorithmIdentifier,
  bitString,
  embed,
  explicit,
  implicitPrimitive,
  octets,
  oid,
  seq,
  time,
  toDer,
  uint,
  type Asn1Node,
} from './asn1.js';
import {
  TAG,
  children,
  content,
  ctx,
  decodeOid,
  decodeTime,
  expectTag,
  integerHex,
  normalizeSerialHex,
  readRoot,
  whole,
  type DerNode,
} from './der.js';
import { PkiError } from './errors.js';
import { algorithmByOid, algorithmForKey, asPrivateKey, signWith, verifyWith } from './keys.js';
import { pemBlocks, toPem } from './pem.js';
import { KEY_USAGE, OID, keyIdentifier, parseCertificate, parseExtensions } from './x509.js';

export const CRL_PEM_LABEL = 'X509 CRL';

export interface RevokedEntry {
  /** Hex, any case, leading zeros and colons ignored. */
  serialHex: string;
  at: Date;
}

export interface CreateCrlOptions {
  /** PEM of the issuing CA (first block). */
  caCert: string | X509Certificate;
  caKey: string | KeyObject;
  revoked?: readonly RevokedEntry[];
  thisUpdate: Date;
  nextUpdate: Date;
  /** RFC 5280 §5.2.3; default: `thisUpdate` in seconds, so later CRLs get larger numbers. */
  crlNumber?: bigint;
}

export interface ParsedCrl {
  der: Buffer;
  /** The exact TBSCertList bytes that were signed. */
  tbs: Buffer;
  signatureAlgorithm: string;
  signature: Buffer;
  issuerDer: Buffer;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  crlNumber: bigint | undefined;
  revoked: RevokedEntry[];
}

/** CRL and CRL-entry extensions we understand; any other critical one makes the CRL unusable (RFC 5280 §5.2). */
const UNDERSTOOD_CRL_EXTENSIONS = new Set<string>([OID.authorityKeyIdentifier, OID.crlNumber]);
const UNDERSTOOD_ENTRY_EXTENSIONS = new Set<string>([OID.crlReason, OID.invalidityDate]);

function ext(o: string, value: Asn1Node): Asn1Node {
  return seq([oid(o), octets(toDer(value))]);
}

/** Builds and signs a v2 CRL; returns PEM (`-----BEGIN X509 CRL-----`). */
export function createCrl(o: CreateCrlOptions): string {
  const caX509 = typeof o.caCert === 'string' ? new X509Certificate(o.caCert) : o.caCert;
  const ca = parseCertificate(caX509.raw);
  const key = asPrivateKey(o.caKey);
  if (!createPublicKey(key).export({ type: 'spki', format: 'der' }).equals(ca.spkiDer)) {
    throw new PkiError('malformed', 'the CA key does not match the CA certificate');
  }
  const alg = algorithmForKey(key);
  const revoked = o.revoked ?? [];
  const crlNumber = o.crlNumber ?? BigInt(Math.floor(o.thisUpdate.getTime() / 1000));
  const tbsItems: Asn1Node[] = [
    uint(1), // RFC 5280 §5.1.2.1: v2
    algorithmIdentifier(alg),
    embed(ca.subjectDer),
    time(o.thisUpdate),
    time(o.nextUpdate),
  ];
  // RFC 5280 §5.1.2.6: omitted, not empty, when nothing is revoked.
  if (revoked.length > 0) {
    tbsItems.push(
      seq(
        revoked.map((r) =>
          seq([uint(Buffer.from(padHex(normalizeSerialHex(r.serialHex)), 'hex')), time(r.at)]),
        ),
      ),
    );
  }
  const aki = ca.subjectKeyId ?? keyIdentifier(ca.spkiDer);
  tbsItems.push(
    explicit(
      0,
      seq([
        ext(OID.authorityKeyIdentifier, seq([implicitPrimitive(0, aki)])), // §5.2.1
        ext(OID.crlNumber, uint(crlNumber)), // §5.2.3
      ]),
    ),
  );
  const tbsDer = toDer(seq(tbsItems));
  const sig = signWith(alg, key, tbsDer);
  return toPem(
    CRL_PEM_LABEL,
    toDer(seq([embed(tbsDer), algorithmIdentifier(alg), bitString(sig)])),
  );
}

const padHex = (h: string): string => (h.length % 2 ? `0${h}` : h);

function rejectUnknownCritical(buf: Buffer, node: DerNode, understood: Set<string>): void {
  for (const [o, e] of parseExtensions(buf, node)) {
    if (e.critical && !understood.has(o))
      throw new PkiError('malformed', `CRL has an unsupported critical extension ${o}`);
  }
}

/** Parses one DER CRL (structure only; see `verifyCrlSignature`). */
export function parseCrl(der: Buffer): ParsedCrl {
  const root = readRoot(der);
  const [tbsNode, algNode, sigNode, extra] = children(
    der,
    expectTag(root, TAG.SEQUENCE, 'CertificateList'),
  );
  if (extra) throw new PkiError('malformed', 'DER: bad CertificateList');
  const sigBits = content(der, expectTag(sigNode, TAG.BIT_STRING, 'signatureValue'));
  if (sigBits[0] !== 0) throw new PkiError('malformed', 'DER: signature has unused bits');
  const outerAlg = children(der, expectTag(algNode, TAG.SEQUENCE, 'signatureAlgorithm'));
  const tbs = children(der, expectTag(tbsNode, TAG.SEQUENCE, 'TBSCertList'));
  let i = 0;
  if (tbs[i]?.tag === TAG.INTEGER) {
    if (integerHex(content(der, tbs[i]!)) !== '1')
      throw new PkiError('malformed', 'unsupported CRL version');
    i++;
  }
  const innerAlg = expectTag(tbs[i++], TAG.SEQUENCE, 'signature');
  // RFC 5280 §5.1.1.2: the outer algorithm must equal the signed one.
  if (!whole(der, innerAlg).equals(whole(der, algNode!)))
    throw new PkiError('malformed', 'CRL algorithm mismatch');
  const issuer = expectTag(tbs[i++], TAG.SEQUENCE, 'issuer');
  const thisNode = tbs[i++];
  if (!thisNode) throw new PkiError('malformed', 'DER: missing thisUpdate');
  const thisUpdate = decodeTime(der, thisNode);
  let nextUpdate: Date | undefined;
  if (tbs[i] && (tbs[i]!.tag === TAG.UTC_TIME || tbs[i]!.tag === TAG.GENERALIZED_TIME))
    nextUpdate = decodeTime(der, tbs[i++]!);
  const revoked: RevokedEntry[] = [];
  if (tbs[i]?.tag === TAG.SEQUENCE) {
    for (const entry of children(der, tbs[i++]!)) {
      const [serial, at, exts, more] = children(
        der,
        expectTag(entry, TAG.SEQUENCE, 'revoked entry'),
      );
      if (more || !at) throw new PkiError('malformed', 'DER: bad revoked entry');
      if (exts) rejectUnknownCritical(der, exts, UNDERSTOOD_ENTRY_EXTENSIONS);
      revoked.push({
        serialHex: integerHex(content(der, expectTag(serial, TAG.INTEGER, 'serial'))),
        at: decodeTime(der, at),
      });
    }
  }
  let crlNumber: bigint | undefined;
  if (tbs[i]?.tag === ctx(0)) {
    const [extSeq, more] = children(der, tbs[i++]!);
    if (more || !extSeq) throw new PkiError('malformed', 'DER: bad crlExtensions');
    rejectUnknownCritical(der, extSeq, UNDERSTOOD_CRL_EXTENSIONS);
    const n = parseExtensions(der, extSeq).get(OID.crlNumber);
    if (n)
      crlNumber = BigInt(
        `0x${integerHex(content(n.value, expectTag(readRoot(n.value), TAG.INTEGER, 'CRLNumber')))}`,
      );
  }
  if (i !== tbs.length) throw new PkiError('malformed', 'DER: bad TBSCertList');
  return {
    der,
    tbs: whole(der, tbsNode!),
    signatureAlgorithm: decodeOid(content(der, expectTag(outerAlg[0], TAG.OID, 'algorithm OID'))),
    signature: sigBits.subarray(1),
    issuerDer: whole(der, issuer),
    thisUpdate,
    nextUpdate,
    crlNumber,
    revoked,
  };
}

/** Every `X509 CRL` block of a PEM text (a file may hold one per CA). */
export function parseCrlPem(pem: string): ParsedCrl[] {
  return pemBlocks(pem, CRL_PEM_LABEL).map(parseCrl);
}

/** True when `issuer` is named by the CRL and its key made the signature. */
export function verifyCrlSignature(crl: ParsedCrl, issuer: X509Certificate): boolean {
  const info = parseCertificate(issuer.raw);
  if (!info.subjectDer.equals(crl.issuerDer)) return false;
  // RFC 5280 §4.2.1.3: a CRL issuer must be allowed to sign CRLs.
  if (info.keyUsage && !info.keyUsage.has(KEY_USAGE.cRLSign)) return false;
  const alg = algorithmByOid(crl.signatureAlgorithm);
  if (!alg) return false;
  return verifyWith(alg, issuer.publicKey, crl.tbs, crl.signature);
}

export interface VerifiedCrls {
  /** Revoked serials (normalized hex) by issuer certificate SHA-256 fingerprint (`X509Certificate.fingerprint256`). */
  byIssuer: Map<string, Set<string>>;
  /** CRLs whose issuer is not among the candidates yet (e.g. an intermediate not seen so far). */
  unresolved: ParsedCrl[];
  count: number;
}

/**
 * Parses a CRL PEM text and verifies each CRL against the candidate issuers with
 * its name. A CRL whose named issuer is a candidate but whose signature fails is
 * refused (throws); one whose issuer is unknown is returned in `unresolved`.
 */
export function verifyCrls(pem: string, candidates: readonly X509Certificate[]): VerifiedCrls {
  const crls = parseCrlPem(pem);
  const byIssuer = new Map<string, Set<string>>();
  const unresolved: ParsedCrl[] = [];
  for (const crl of crls) {
    const named = candidates.filter((c) =>
      parseCertificate(c.raw).subjectDer.equals(crl.issuerDer),
    );
    if (named.length === 0) {
      unresolved.push(crl);
      continue;
    }
    const issuer = named.find((c) => verifyCrlSignature(crl, c));
    if (!issuer) throw new PkiError('malformed', 'a CRL signature does not verify with its issuer');
    addRevoked(byIssuer, issuer.fingerprint256, crl);
  }
  return { byIssuer, unresolved, count: crls.length };
}

/** Revocation is permanent here: several CRLs of one issuer add up. */
export function addRevoked(map: Map<string, Set<string>>, issuerFp: string, crl: ParsedCrl): void {
  let set = map.get(issuerFp);
  if (!set) map.set(issuerFp, (set = new Set()));
  for (const r of crl.revoked) set.add(r.serialHex);
}
