/**
 * Certificate issuing (RFC 5280 §4). The TBSCertificate is built with node-forge's
 * ASN.1 model around the SubjectPublicKeyInfo exported by node:crypto, so leaves and
 * CAs may use ECDSA, RSA or Ed25519 keys; the TBS bytes are signed with node:crypto.
 */
import type { X509Certificate } from 'node:crypto';
import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import {
  algorithmIdentifier,
  bitString,
  bool,
  embed,
  explicit,
  implicitPrimitive,
  namedBits,
  octets,
  oid,
  printable,
  seq,
  set,
  time,
  toDer,
  uint,
  utf8,
  type Asn1Node,
} from './asn1.js';
import { PkiError } from './errors.js';
import {
  algorithmForKey,
  asPrivateKey,
  generateKey,
  privateKeyPem,
  signWith,
  type KeyType,
} from './keys.js';
import { parsePemChain, toPem } from './pem.js';
import type { Role } from './types.js';
import { KEY_USAGE, OID, keyIdentifier, parseCertificate, type CertInfo } from './x509.js';

const DAY_MS = 86_400_000;
/** Leaves start a little in the past so a peer's clock skew does not refuse them. */
const BACKDATE_MS = 5 * 60_000;
export const DEFAULT_LEAF_DAYS = 730;
export const DEFAULT_CA_DAYS = 3650;
export const DEFAULT_CA_KEY_TYPE: KeyType = 'ec-p384';
export const DEFAULT_LEAF_KEY_TYPE: KeyType = 'ec-p256';
/** `serverNames` a gateway certificate gets unless told otherwise. */
export const GATEWAY_SERVER_NAMES = ['localhost', '127.0.0.1'] as const;

export interface IssuedCertificate {
  /** The new certificate alone. */
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
  /** The new certificate followed by the issuing intermediates (never a self-signed root). */
  chainPem: string;
  /** Lowercase hex, no leading zeros. */
  serialHex: string;
}

export interface IssueOptions {
  /** PEM: the issuing CA first; any certificates after it are its own chain. */
  caCert: string;
  caKey: string | KeyObject;
  agency: string;
  role: Role;
  name: string;
  keyType?: KeyType;
  /** Default: `now` minus 5 minutes. */
  notBefore?: Date;
  /** Default: `notBefore` + 730 days. */
  notAfter?: Date;
  /** Issue a CA certificate with this Subject (for tests: a "leaf" that is a CA). */
  isCa?: boolean;
  /** DNS names or IP addresses: adds subjectAltName and serverAuth. Gateway default: localhost, 127.0.0.1. */
  serverNames?: readonly string[];
  /** Use an existing key instead of generating one (keyPem is then empty). */
  publicKey?: KeyObject;
  now?: Date;
}

export interface CaOptions {
  /** Subject CN. */
  name: string;
  /** Subject O; defaults to `name`. */
  org?: string;
  /** Subject C (ISO 3166-1 alpha-2). */
  country?: string;
  keyType?: KeyType;
  notBefore?: Date;
  notAfter?: Date;
  /** basicConstraints pathLenConstraint; unlimited for roots by default, 0 for intermediates. */
  pathLen?: number;
  now?: Date;
}

interface Issuer {
  info: CertInfo;
  key: KeyObject;
  /** Certificates to append after the new one in `chainPem`. */
  chain: X509Certificate[];
}

interface Draft {
  subject: Array<[string, string]>;
  publicKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  ca: { pathLen: number | undefined } | undefined;
  eku: string[];
  serverNames: readonly string[];
}

function name(attrs: Array<[string, string]>): Asn1Node {
  // RFC 5280 §4.1.2.4: countryName is PrintableString; everything else UTF8String.
  return seq(
    attrs.map(([o, v]) => set([seq([oid(o), o === OID.countryName ? printable(v) : utf8(v)])])),
  );
}

function extension(o: string, critical: boolean, value: Asn1Node): Asn1Node {
  return seq(
    critical ? [oid(o), bool(true), octets(toDer(value))] : [oid(o), octets(toDer(value))],
  );
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const url = new URL(`http://[${ip}]/`).hostname.slice(1, -1); // normalises "::1" forms
  const halves = url.split('::');
  const parse = (s: string | undefined): string[] => (s ? s.split(':') : []);
  const head = parse(halves[0]);
  const tail = parse(halves[1]);
  const groups = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  return Buffer.concat(groups.map((g) => Buffer.from(g.padStart(4, '0'), 'hex')));
}

/** A random positive serial of 16 bytes (RFC 5280 §4.1.2.2: at most 20 octets). */
function newSerial(): Buffer {
  const s = randomBytes(16);
  s[0] = s[0]! & 0x7f || 0x01;
  return s;
}

function build(
  draft: Draft,
  issuer: Issuer | 'self',
  selfKey?: KeyObject,
): { der: Buffer; serialHex: string } {
  const spkiDer = draft.publicKey.export({ type: 'spki', format: 'der' });
  const ski = keyIdentifier(spkiDer);
  const subjectName = name(draft.subject);
  const signKey = issuer === 'self' ? selfKey! : issuer.key;
  const alg = algorithmForKey(signKey);
  const issuerName = issuer === 'self' ? subjectName : embed(issuer.info.subjectDer);
  const aki =
    issuer === 'self' ? ski : (issuer.info.subjectKeyId ?? keyIdentifier(issuer.info.spkiDer));

  const exts: Asn1Node[] = [
    extension(
      OID.basicConstraints,
      true,
      seq(
        draft.ca
          ? [bool(true), ...(draft.ca.pathLen === undefined ? [] : [uint(draft.ca.pathLen)])]
          : [],
      ),
    ),
    extension(
      OID.keyUsage,
      true,
      namedBits(
        draft.ca ? [KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign] : [KEY_USAGE.digitalSignature],
      ),
    ),
  ];
  if (draft.eku.length > 0) exts.push(extension(OID.extKeyUsage, false, seq(draft.eku.map(oid))));
  if (draft.serverNames.length > 0) {
    const names = draft.serverNames.map((n) =>
      isIP(n) ? implicitPrimitive(7, ipBytes(n)) : implicitPrimitive(2, Buffer.from(n, 'ascii')),
    );
    exts.push(extension(OID.subjectAltName, false, seq(names)));
  }
  exts.push(extension(OID.subjectKeyIdentifier, false, octets(ski)));
  exts.push(extension(OID.authorityKeyIdentifier, false, seq([implicitPrimitive(0, aki)])));

  const serial = newSerial();
  const tbs = seq([
    explicit(0, uint(2)), // v3
    uint(serial),
    algorithmIdentifier(alg),
    issuerName,
    seq([time(draft.notBefore), time(draft.notAfter)]),
    subjectName,
    embed(spkiDer),
    explicit(3, seq(exts)),
  ]);
  const tbsDer = toDer(tbs);
  const sig = signWith(alg, signKey, tbsDer);
  const der = toDer(seq([embed(tbsDer), algorithmIdentifier(alg), bitString(sig)]));
  return { der, serialHex: parseCertificate(der).serialHex };
}

function loadIssuer(caCertPem: string, caKey: string | KeyObject): Issuer {
  const [ca, ...rest] = parsePemChain(caCertPem);
  const info = parseCertificate(ca!.raw);
  if (!info.basicConstraints?.ca)
    throw new PkiError('bad-usage', 'the issuing certificate is not a CA');
  const key = asPrivateKey(caKey);
  const pub = createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (!pub.equals(info.spkiDer))
    throw new PkiError('malformed', 'the CA key does not match the CA certificate');
  const isRoot = (c: X509Certificate): boolean => c.checkIssued(c) && c.verify(c.publicKey);
  return { info, key, chain: [ca!, ...rest].filter((c) => !isRoot(c)) };
}

function validity(
  o: { now?: Date; notBefore?: Date; notAfter?: Date },
  days: number,
): { notBefore: Date; notAfter: Date } {
  const now = o.now ?? new Date();
  const notBefore = o.notBefore ?? new Date(now.getTime() - BACKDATE_MS);
  const notAfter = o.notAfter ?? new Date(notBefore.getTime() + days * DAY_MS);
  if (!(notAfter.getTime() > notBefore.getTime()))
    throw new RangeError('notAfter must be after notBefore');
  return { notBefore, notAfter };
}

function result(
  der: Buffer,
  serialHex: string,
  keyPem: string,
  chain: X509Certificate[],
): IssuedCertificate {
  const certPem = toPem('CERTIFICATE', der);
  return {
    certPem,
    keyPem,
    chainPem: certPem + chain.map((c) => c.toString()).join(''),
    serialHex,
  };
}

/** Issues an agency, gateway or test certificate under `caCert` (protocol §1.1: O=agency, OU=role, CN=name). */
export function issueCertificate(o: IssueOptions): IssuedCertificate {
  const issuer = loadIssuer(o.caCert, o.caKey);
  const pair = o.publicKey ? undefined : generateKey(o.keyType ?? DEFAULT_LEAF_KEY_TYPE);
  const serverNames = o.serverNames ?? (o.role === 'gateway' ? GATEWAY_SERVER_NAMES : []);
  const { der, serialHex } = build(
    {
      subject: [
        [OID.organizationName, o.agency],
        [OID.organizationalUnitName, o.role],
        [OID.commonName, o.name],
      ],
      publicKey: o.publicKey ?? pair!.publicKey,
      ...validity(o, DEFAULT_LEAF_DAYS),
      ca: o.isCa ? { pathLen: 0 } : undefined,
      eku: o.isCa
        ? []
        : serverNames.length > 0
          ? [OID.serverAuth, OID.clientAuth]
          : [OID.clientAuth],
      serverNames: o.isCa ? [] : serverNames,
    },
    issuer,
  );
  return result(der, serialHex, pair ? privateKeyPem(pair.privateKey) : '', issuer.chain);
}

function caSubject(o: CaOptions): Array<[string, string]> {
  return [
    ...(o.country ? ([[OID.countryName, o.country]] as Array<[string, string]>) : []),
    [OID.organizationName, o.org ?? o.name],
    [OID.commonName, o.name],
  ];
}

/** A self-signed root CA (basicConstraints CA:true, keyCertSign + cRLSign). */
export function createRootCa(o: CaOptions): IssuedCertificate {
  const pair = generateKey(o.keyType ?? DEFAULT_CA_KEY_TYPE, { rsaBits: 3072 });
  const { der, serialHex } = build(
    {
      subject: caSubject(o),
      publicKey: pair.publicKey,
      ...validity(o, DEFAULT_CA_DAYS),
      ca: { pathLen: o.pathLen },
      eku: [],
      serverNames: [],
    },
    'self',
    pair.privateKey,
  );
  return result(der, serialHex, privateKeyPem(pair.privateKey), []);
}

/** An intermediate CA under `caCert`; `chainPem` is the intermediate plus its non-root issuers. */
export function createIntermediateCa(
  o: CaOptions & { caCert: string; caKey: string | KeyObject },
): IssuedCertificate {
  const issuer = loadIssuer(o.caCert, o.caKey);
  const pair = generateKey(o.keyType ?? DEFAULT_CA_KEY_TYPE, { rsaBits: 3072 });
  const { der, serialHex } = build(
    {
      subject: caSubject(o),
      publicKey: pair.publicKey,
      ...validity(o, DEFAULT_CA_DAYS),
      ca: { pathLen: o.pathLen ?? 0 },
      eku: [],
      serverNames: [],
    },
    issuer,
  );
  return result(der, serialHex, privateKeyPem(pair.privateKey), issuer.chain);
}
