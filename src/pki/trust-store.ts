/**
 * Certificate path validation against configured anchors (protocol §1.1, §1.5;
 * RFC 5280 §6.1, simplified to what casebridge needs: no policies, no name
 * constraints — a critical extension we do not understand refuses the chain).
 *
 * Hot path: the signature and structure checks of a presented chain are cached by
 * the chain's DER; validity, revocation and the subject's registration are
 * checked on every call.
 *
 * Caches hold nothing of a chain that does not lead to a trust anchor: an
 * unauthenticated peer may present a fresh, large certificate on every
 * connection, and must not be able to grow the process. Both caches are bounded
 * in bytes (`cacheBytes` each).
 */
import type { X509Certificate } from 'node:crypto';
import { createHash } from 'node:crypto';
import { addRevoked, verifyCrlSignature, verifyCrls, type ParsedCrl } from './crl.js';
import { ByteLru } from './byte-lru.js';
import { PkiError } from './errors.js';
import { chainFromX5c, parsePemChain } from './pem.js';
import { ROLES, type ChainFailure, type Principal, type Role } from './types.js';
import {
  KEY_USAGE,
  OID,
  UNDERSTOOD_EXTENSIONS,
  certificateNames,
  certificateSubjectId,
  parseCertificate,
  type CertInfo,
} from './x509.js';

export interface TrustStoreOptions {
  /** PEM bundle of trust anchors (e.g. one root per country). */
  anchorsPem: string;
  /** PEM with zero or more `X509 CRL` blocks. */
  crlPem?: string;
  /** Roles accepted in Subject OU; default all of protocol §1.1. */
  roles?: readonly Role[];
  /** Subject O must satisfy this (for roles other than `gateway`); e.g. `registry.hasAgency`. */
  isKnownOrg?: (o: string) => boolean;
  /** OU=gateway is accepted only with O equal to this id, and this O only with OU=gateway. Unset: OU=gateway is refused. */
  gatewayId?: string;
  /** Longest chain accepted, anchor included. Default 6. */
  maxPathLength?: number;
  /** Entries of each cache at most. Default 10 000. */
  cacheSize?: number;
  /** Bytes of each cache at most (estimated from certificate sizes). Default 16 MiB. */
  cacheBytes?: number;
}

/** What the caches hold now (tests and metrics). */
export interface CacheStats {
  paths: { entries: number; bytes: number; maxBytes: number };
  parsed: { entries: number; bytes: number; maxBytes: number };
}

export interface CrlSummary {
  /** CRL blocks loaded. */
  crls: number;
  /** Revoked serials across all verified CRLs. */
  revoked: number;
  /** CRLs whose issuer (an intermediate) has not been seen yet; verified when it is. */
  pending: number;
}

interface Cert {
  x509: X509Certificate;
  info: CertInfo;
}

/** A certificate on a built path, with its fingerprint computed once. */
interface PathCert extends Cert {
  fp: string;
}

/** The cacheable outcome of building a path for one presented chain. */
interface PathResult {
  /** Leaf first, anchor last. */
  path: PathCert[];
  subject: string;
  /** A failure that does not depend on time, revocation or registration. */
  failure?: { kind: ChainFailure; detail: string };
  fields?: { agency: string; role: Role; name: string };
}

interface Revocation {
  /** Revoked serials by issuer fingerprint256. */
  byIssuer: Map<string, Set<string>>;
  /** Not yet verifiable CRLs by issuer Name DER (hex). Verified (and moved) when their issuer is validated. */
  pending: Map<string, ParsedCrl[]>;
  count: number;
}

const DEFAULT_MAX_PATH = 6;
const DEFAULT_CACHE = 10_000;
const DEFAULT_CACHE_BYTES = 16 * 1024 * 1024;
/**
 * Bytes an X509Certificate costs beyond its DER: OpenSSL's parsed form and the JS
 * wrapper. Measured roughly (heap and RSS over 10 000 parses); an upper estimate.
 */
const CERT_OVERHEAD = 4096;
const certBytes = (der: Uint8Array): number => 2 * der.length + CERT_OVERHEAD;
const MAX_LEARNED_INTERMEDIATES = 1_000;

export class TrustStore {
  private readonly anchors: Cert[];
  private readonly anchorFps: Set<string>;
  /** Anchor subject names (ASCII case folded), for the chain prefilter. */
  private readonly anchorNames: Set<string>;
  private readonly roles: ReadonlySet<string>;
  private readonly isKnownOrg: ((o: string) => boolean) | undefined;
  private readonly gatewayId: string | undefined;
  private readonly maxPath: number;
  /** Path results of chains that reached an anchor, by a hash of the chain's DER. */
  private readonly cache: ByteLru<string, PathResult>;
  /** Parsed certificates of chains that reached an anchor, by base64 DER. */
  private readonly parsedCache: ByteLru<string, X509Certificate>;
  /** Intermediates that have chained to an anchor, by fingerprint256: CRL issuers for later reloads. */
  private readonly intermediates = new Map<string, X509Certificate>();
  private revocation: Revocation;
  private readonly infoCache = new WeakMap<X509Certificate, CertInfo>();

  /** Throws PkiError('malformed') on an unusable anchor bundle or CRL. */
  constructor(options: TrustStoreOptions) {
    const anchors = tagged('anchors', () => parsePemChain(options.anchorsPem));
    this.anchors = tagged('anchors', () =>
      anchors.map((x509) => ({ x509, info: parseCertificate(x509.raw) })),
    );
    for (const a of this.anchors) {
      if (!a.x509.ca)
        throw new PkiError('malformed', 'a trust anchor is not a CA certificate', {
          source: 'anchors',
        });
    }
    this.anchorFps = new Set(anchors.map((a) => a.fingerprint256));
    this.anchorNames = new Set(this.anchors.map((a) => nameKey(a.info.subjectDer)));
    this.roles = new Set(options.roles ?? ROLES);
    this.isKnownOrg = options.isKnownOrg;
    this.gatewayId = options.gatewayId;
    this.maxPath = options.maxPathLength ?? DEFAULT_MAX_PATH;
    const entries = options.cacheSize ?? DEFAULT_CACHE;
    const bytes = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
    this.cache = new ByteLru(bytes, entries);
    this.parsedCache = new ByteLru(bytes, entries);
    this.revocation = this.loadRevocation(options.crlPem ?? '');
  }

  /**
   * `chainFromX5c` with parsed certificates reused across calls: constructing an
   * X509Certificate costs far more than a cached verifyChain. Only certificates of
   * chains that reached an anchor are reused (see verifyChain). Throws PkiError('malformed').
   */
  chainFromX5c(x5c: unknown): X509Certificate[] {
    if (Array.isArray(x5c) && x5c.length > 0 && x5c.length <= this.maxPath) {
      const hits = x5c.map((b64) =>
        typeof b64 === 'string' ? this.parsedCache.get(b64) : undefined,
      );
      if (hits.every((c) => c !== undefined)) return hits as X509Certificate[];
      if (x5c.every((b) => typeof b === 'string'))
        this.refuseUnreachable((x5c as string[]).map((b) => Buffer.from(b, 'base64')));
    }
    return chainFromX5c(x5c, this.maxPath);
  }

  /** The same for DER certificates (e.g. a TLS peer's chain). */
  chainFromDer(ders: readonly Uint8Array[]): X509Certificate[] {
    return this.chainFromX5c(ders.map((d) => Buffer.from(d).toString('base64')));
  }

  /**
   * Refuses, before any certificate is parsed, a chain whose names cannot lead to
   * an anchor: parsing a large certificate costs milliseconds, and an
   * unauthenticated peer chooses how many it sends. Names are compared with ASCII
   * case folded; a false match only means the full check runs. Throws PkiError.
   */
  private refuseUnreachable(ders: Buffer[]): void {
    let names: Array<{ issuer: string; subject: string }>;
    try {
      names = ders.map((d) => {
        const n = certificateNames(d);
        return { issuer: nameKey(n.issuer), subject: nameKey(n.subject) };
      });
    } catch {
      return; // malformed: the full parse says why
    }
    const unused = names.slice(1);
    let cur = names[0]!;
    for (let step = 0; step < this.maxPath; step++) {
      if (this.anchorNames.has(cur.issuer) || this.anchorNames.has(cur.subject)) return;
      const i = unused.findIndex((n) => n.subject === cur.issuer);
      if (i < 0) break;
      cur = unused.splice(i, 1)[0]!;
    }
    throw new PkiError('untrusted', 'the chain does not lead to a trust anchor');
  }

  /** Sizes of the caches, for tests and metrics. */
  cacheStats(): CacheStats {
    const stat = (c: ByteLru<string, unknown>) => ({
      entries: c.size,
      bytes: c.bytes,
      maxBytes: c.maxBytes,
    });
    return { paths: stat(this.cache), parsed: stat(this.parsedCache) };
  }

  anchorCertificates(): X509Certificate[] {
    return this.anchors.map((a) => a.x509);
  }

  anchorsPem(): string[] {
    return this.anchors.map((a) => a.x509.toString());
  }

  /**
   * Replaces all revocation data (SIGHUP). A CRL that is malformed or whose
   * signature fails against its known issuer throws, and the old data stays.
   */
  reloadCrls(pem: string): CrlSummary {
    const next = this.loadRevocation(pem);
    this.revocation = next;
    return this.crlSummary();
  }

  crlSummary(): CrlSummary {
    const r = this.revocation;
    let revoked = 0;
    for (const s of r.byIssuer.values()) revoked += s.size;
    let pending = 0;
    for (const l of r.pending.values()) pending += l.length;
    return { crls: r.count, revoked, pending };
  }

  /**
   * Validates `chain` (leaf first, then intermediates; the root may be included)
   * at instant `at` and returns who the leaf says it is. Throws PkiError.
   */
  verifyChain(chain: readonly X509Certificate[], at: Date): Principal {
    if (Number.isNaN(at.getTime())) throw new RangeError('verifyChain: invalid date');
    const result = this.pathFor(chain);
    const { path } = result;
    if (
      result.failure &&
      (result.failure.kind === 'malformed' || result.failure.kind === 'untrusted')
    ) {
      throw new PkiError(result.failure.kind, result.failure.detail);
    }
    const t = at.getTime();
    let notBefore = -Infinity;
    let notAfter = Infinity;
    for (const [i, c] of path.entries()) {
      notBefore = Math.max(notBefore, c.info.notBefore.getTime());
      notAfter = Math.min(notAfter, c.info.notAfter.getTime());
      const what =
        i === 0
          ? 'the certificate'
          : i === path.length - 1
            ? 'the trust anchor'
            : 'an intermediate CA';
      if (t < c.info.notBefore.getTime())
        throw new PkiError('not-yet-valid', `${what} is not valid yet`);
      if (t > c.info.notAfter.getTime()) throw new PkiError('expired', `${what} has expired`);
    }
    this.checkRevocation(path);
    if (result.failure) throw new PkiError(result.failure.kind, result.failure.detail);
    const f = result.fields!;
    // O=<gateway id> is the operator: its gateway certificate and its auditors (protocol §1.1).
    const operatorRole = f.role === 'gateway' || f.role === 'auditor';
    if (
      this.gatewayId !== undefined &&
      (f.role === 'gateway'
        ? f.agency !== this.gatewayId
        : f.agency === this.gatewayId && !operatorRole)
    ) {
      throw new PkiError(
        'bad-subject',
        'OU=gateway goes with O=<gateway id>, which only gateway and auditor certificates carry',
      );
    }
    if (f.role === 'gateway' && this.gatewayId === undefined) {
      throw new PkiError('bad-subject', 'gateway certificates are not accepted here');
    }
    if (!this.roles.has(f.role))
      throw new PkiError('bad-subject', `role ${f.role} is not accepted here`);
    const operator = this.gatewayId !== undefined && f.agency === this.gatewayId;
    if (!operator && this.isKnownOrg && !this.isKnownOrg(f.agency)) {
      throw new PkiError('bad-subject', 'Subject O is not a registered agency');
    }
    return {
      agency: f.agency,
      role: f.role,
      name: f.name,
      subject: result.subject,
      certificate: chain[0]!,
      validity: { notBefore, notAfter },
    };
  }

  private checkRevocation(path: PathCert[]): void {
    const rev = this.revocation;
    for (let i = 0; i + 1 < path.length; i++) {
      const { x509: issuer, fp } = path[i + 1]!;
      if (!rev.byIssuer.has(fp) && rev.pending.size > 0) this.resolvePending(rev, issuer);
      if (rev.byIssuer.get(fp)?.has(path[i]!.info.serialHex)) {
        throw new PkiError(
          'revoked',
          i === 0 ? 'the certificate is revoked' : 'an intermediate CA is revoked',
        );
      }
    }
  }

  /** Verifies CRLs that wait for `issuer`, which the caller has just validated. */
  private resolvePending(rev: Revocation, issuer: X509Certificate): void {
    const key = this.parsed(issuer).subjectDer.toString('hex');
    const crls = rev.pending.get(key);
    if (!crls) return;
    for (const crl of crls) {
      // Fail closed: revocation status cannot be determined from a CRL that does not verify.
      if (!verifyCrlSignature(crl, issuer))
        throw new PkiError('untrusted', "the issuer's CRL does not verify");
    }
    rev.pending.delete(key);
    for (const crl of crls) addRevoked(rev.byIssuer, issuer.fingerprint256, crl);
  }

  private loadRevocation(pem: string): Revocation {
    const candidates = [...this.anchors.map((a) => a.x509), ...this.intermediates.values()];
    const v = tagged('crl', () => verifyCrls(pem, candidates));
    const pending = new Map<string, ParsedCrl[]>();
    for (const crl of v.unresolved) {
      const key = crl.issuerDer.toString('hex');
      pending.set(key, [...(pending.get(key) ?? []), crl]);
    }
    return { byIssuer: v.byIssuer, pending, count: v.count };
  }

  private pathFor(chain: readonly X509Certificate[]): PathResult {
    const h = createHash('sha256');
    for (const c of chain) h.update(`${c.raw.length}:`).update(c.raw);
    const key = h.digest('hex');
    const hit = this.cache.get(key);
    if (hit) return hit;
    const result = this.buildPath(chain);
    if (!reachedAnchor(result)) return result;
    // Chained to an anchor: the result and the parsed certificates may be reused.
    let bytes = CERT_OVERHEAD;
    for (const c of chain) {
      bytes += c.raw.length;
      const b64 = c.raw.toString('base64');
      if (!this.parsedCache.has(b64)) this.parsedCache.set(b64, c, b64.length + certBytes(c.raw));
    }
    this.cache.set(key, result, bytes);
    return result;
  }

  private buildPath(chain: readonly X509Certificate[]): PathResult {
    const fail = (
      kind: ChainFailure,
      detail: string,
      path: Cert[] = [],
      subject = '',
    ): PathResult => ({
      path: path.map(withFp),
      subject,
      failure: { kind, detail },
    });
    if (chain.length === 0) return fail('malformed', 'empty certificate chain');
    if (chain.length > this.maxPath) return fail('malformed', 'certificate chain too long');
    let certs: Cert[];
    try {
      certs = chain.map((x509) => ({ x509, info: this.parsed(x509) }));
    } catch (e) {
      if (e instanceof PkiError) return fail('malformed', e.message);
      throw e;
    }
    const leaf = certs[0]!;
    const subject = certificateSubjectId(leaf.x509.raw);

    // Build leaf → anchor, preferring an anchor at each step; each supplied certificate used at most once.
    const path: Cert[] = [leaf];
    const unused = certs.slice(1);
    let anchored = false;
    while (path.length < this.maxPath) {
      const cur = path[path.length - 1]!.x509;
      const signs = (c: Cert): boolean => cur.checkIssued(c.x509) && cur.verify(c.x509.publicKey);
      const anchor = this.anchors.find(signs);
      if (anchor) {
        path.push(anchor);
        anchored = true;
        break;
      }
      const idx = unused.findIndex(signs);
      if (idx < 0) break;
      path.push(unused.splice(idx, 1)[0]!);
    }
    if (!anchored)
      return fail('untrusted', 'the chain does not lead to a trust anchor', path, subject);

    for (let i = 1; i < path.length; i++) {
      const ca = path[i]!.info;
      if (!ca.basicConstraints?.ca)
        return fail('untrusted', 'an issuer is not a CA', path, subject);
      if (ca.keyUsage && !ca.keyUsage.has(KEY_USAGE.keyCertSign)) {
        return fail('untrusted', 'an issuer may not sign certificates', path, subject);
      }
      // RFC 5280 §4.2.1.9: intermediates below this CA, leaf excluded.
      if (ca.basicConstraints.pathLen !== undefined && i - 1 > ca.basicConstraints.pathLen) {
        return fail('untrusted', 'path length constraint exceeded', path, subject);
      }
    }
    for (let i = 1; i < path.length - 1; i++) {
      if (unknownCritical(path[i]!.info))
        return fail(
          'untrusted',
          'an intermediate has an unknown critical extension',
          path,
          subject,
        );
      this.learnIntermediate(path[i]!.x509);
    }

    const li = leaf.info;
    if (li.basicConstraints?.ca)
      return fail('bad-usage', 'the certificate is a CA certificate', path, subject);
    if (unknownCritical(li))
      return fail('bad-usage', 'the certificate has an unknown critical extension', path, subject);
    if (li.keyUsage && !li.keyUsage.has(KEY_USAGE.digitalSignature)) {
      return fail('bad-usage', 'the certificate may not sign', path, subject);
    }
    if (
      li.extKeyUsage &&
      !li.extKeyUsage.includes(OID.clientAuth) &&
      !li.extKeyUsage.includes(OID.anyExtendedKeyUsage)
    ) {
      return fail('bad-usage', 'the certificate is not for client authentication', path, subject);
    }

    const fields = subjectFields(li);
    if (typeof fields === 'string') return fail('bad-subject', fields, path, subject);
    return { path: path.map(withFp), subject, fields };
  }

  private parsed(x509: X509Certificate): CertInfo {
    let info = this.infoCache.get(x509);
    if (!info) this.infoCache.set(x509, (info = parseCertificate(x509.raw)));
    return info;
  }

  private learnIntermediate(x509: X509Certificate): void {
    if (this.anchorFps.has(x509.fingerprint256) || this.intermediates.has(x509.fingerprint256))
      return;
    if (this.intermediates.size >= MAX_LEARNED_INTERMEDIATES) return;
    this.intermediates.set(x509.fingerprint256, x509);
  }
}

const withFp = (c: Cert): PathCert => ({ ...c, fp: c.x509.fingerprint256 });

/** A Name's DER with ASCII letters folded to lower case, as a map key. */
function nameKey(der: Buffer): string {
  return der.toString('latin1').toLowerCase();
}

/** A path result whose chain led to a trust anchor (whatever else is wrong with it). */
function reachedAnchor(r: PathResult): boolean {
  return (
    r.failure === undefined || (r.failure.kind !== 'untrusted' && r.failure.kind !== 'malformed')
  );
}

/** Marks configuration errors with the input they came from (the caller names the variable). */
function tagged<T>(source: 'anchors' | 'crl', fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof PkiError) throw new PkiError(e.failure, e.message, { cause: e, source });
    throw e;
  }
}

function unknownCritical(info: CertInfo): boolean {
  for (const [oid, e] of info.extensions)
    if (e.critical && !UNDERSTOOD_EXTENSIONS.has(oid)) return true;
  return false;
}

/** protocol §1.1: exactly one O, one OU naming a role, one non-empty CN. Returns a reason on failure. */
function subjectFields(info: CertInfo): { agency: string; role: Role; name: string } | string {
  const all = (oid: string): string[] =>
    info.subject.filter((a) => a.oid === oid).map((a) => a.value);
  const o = all(OID.organizationName);
  const ou = all(OID.organizationalUnitName);
  const cn = all(OID.commonName);
  if (o.length !== 1 || o[0]!.length === 0) return 'Subject must hold exactly one O';
  if (ou.length !== 1 || !(ROLES as readonly string[]).includes(ou[0]!))
    return 'Subject OU must be exactly one role';
  if (cn.length !== 1 || cn[0]!.trim().length === 0) return 'Subject must hold exactly one CN';
  return { agency: o[0]!, role: ou[0] as Role, name: cn[0]! };
}

/** Convenience for callers mapping a refusal to a protocol §4 code. */
export function chainFailureOf(e: unknown): ChainFailure | undefined {
  return e instanceof PkiError ? e.failure : undefined;
}
