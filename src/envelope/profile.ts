/**
 * The one acceptance predicate of a casebridge JWS (protocol §2.1, §2.2), shared by
 * the gateway (submission) and the offline verifier (protocol §6.5), so that a
 * message that got a receipt always verifies:
 *
 *  1. decodeJws: canonical base64url, strict UTF-8, strict JSON;
 *  2. checkHeader: the `alg` allow-list, the exact `typ`, no `crit`, no `b64`,
 *     no key source but `x5c`;
 *  3. the signer chain from `x5c`, resolved by the caller (the gateway's trust
 *     store, or the auditor's anchors), valid now where the caller knows "now";
 *  4. the signature by the leaf key;
 *  5. signingTimeProblem: the signing time inside the validity of the whole chain
 *     and, at the gateway, within the clock skew and the maximum age.
 * Pure: no store, no HTTP, no clock of its own.
 */
import type { KeyObject } from 'node:crypto';
import { CasebridgeError } from '../errors.js';
import { isRfc3339DateTime } from '../schema/formats.js';
import { decodeJws, type DecodedJws } from './decode.js';
import { signatureVerifies } from './jws.js';
import { ALLOWED_ALGS, type AllowedAlg } from './types.js';

/** Header members whose presence would let a key come from somewhere other than x5c. */
const FORBIDDEN_HEADER_MEMBERS = ['jku', 'jwk', 'x5u'];
/** Longest `x5c` accepted (leaf, intermediates, optionally the anchor). */
export const MAX_X5C = 8;

export interface CheckedHeader {
  alg: AllowedAlg;
  x5c: string[];
}

/** protocol §2.1 header rules; throws `CasebridgeError('BAD_HEADER')`. */
export function checkHeader(h: Record<string, unknown>, typ: string): CheckedHeader {
  const alg = h['alg'];
  if (typeof alg !== 'string' || !(ALLOWED_ALGS as readonly string[]).includes(alg)) {
    throw new CasebridgeError('BAD_HEADER', `alg must be one of ${ALLOWED_ALGS.join(', ')}`);
  }
  if (h['typ'] !== typ) throw new CasebridgeError('BAD_HEADER', `typ must be ${typ}`);
  // RFC 7797: whatever its value, `b64` changes how a reader must read the payload
  // unless `crit` names it; no casebridge reader understands either (protocol §2.1).
  if ('b64' in h) throw new CasebridgeError('BAD_HEADER', 'the b64 parameter is not accepted');
  if ('crit' in h) throw new CasebridgeError('BAD_HEADER', 'no crit extensions are understood');
  for (const m of FORBIDDEN_HEADER_MEMBERS) {
    if (m in h)
      throw new CasebridgeError('BAD_HEADER', `${m} is not accepted; the key comes from x5c`);
  }
  const x5c = h['x5c'];
  if (
    !Array.isArray(x5c) ||
    x5c.length === 0 ||
    x5c.length > MAX_X5C ||
    !x5c.every((c) => typeof c === 'string' && c.length > 0)
  ) {
    throw new CasebridgeError('BAD_HEADER', 'x5c must be a non-empty array of base64 certificates');
  }
  return { alg: alg as AllowedAlg, x5c: x5c as string[] };
}

/** A resolved signer: at least its key; callers add what their chain check knows. */
export interface SignerKey {
  key: KeyObject;
}

export interface SignedJws<S extends SignerKey> {
  decoded: DecodedJws;
  alg: AllowedAlg;
  signer: S;
}

/**
 * Steps 1-4 of the predicate. `resolveSigner` parses and checks the `x5c` chain and
 * throws `CasebridgeError('CERT_INVALID')` when it is refused. Throws
 * `CasebridgeError` with MALFORMED, BAD_HEADER, CERT_INVALID or SIGNATURE_INVALID.
 */
export function verifySigned<S extends SignerKey>(
  jws: string,
  typ: string,
  resolveSigner: (x5c: string[]) => S,
): SignedJws<S> {
  const decoded = decodeJws(jws);
  const { alg, x5c } = checkHeader(decoded.header, typ);
  const signer = resolveSigner(x5c);
  const input = Buffer.from(`${decoded.protectedB64}.${decoded.payloadB64}`, 'ascii');
  if (!signatureVerifies(input, decoded.signature, signer.key, alg)) {
    throw new CasebridgeError(
      'SIGNATURE_INVALID',
      'the signature does not verify with the x5c leaf key',
    );
  }
  return { decoded, alg, signer };
}

/** The validity of a whole chain: the latest notBefore and the earliest notAfter, ms. */
export interface Validity {
  notBefore: number;
  notAfter: number;
}

/** The gateway's freshness limits (protocol §2.2); the offline verifier has none. */
export interface Freshness {
  now: number;
  /** How far in the future a signing time may lie. */
  skewMs: number;
  /** How far in the past a signing time may lie. */
  maxAgeMs: number;
}

export type SigningTimeProblem =
  'invalid' | 'before-validity' | 'after-validity' | 'in-future' | 'too-old';

/** An RFC 3339 date-time as casebridge reads it (schema `date-time`), in ms; else undefined. */
export function signingTimeOf(value: unknown): number | undefined {
  if (typeof value !== 'string' || !isRfc3339DateTime(value)) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

/**
 * Step 5: protocol §2.2, a signing time lies inside the validity of the signer's
 * whole chain (so the chain was valid when the message was signed) and, at the
 * gateway, at most `skewMs` ahead of and `maxAgeMs` behind its clock.
 */
export function signingTimeProblem(
  at: number | undefined,
  validity: Validity,
  freshness?: Freshness,
): SigningTimeProblem | undefined {
  if (at === undefined || Number.isNaN(at)) return 'invalid';
  if (at < validity.notBefore) return 'before-validity';
  if (at > validity.notAfter) return 'after-validity';
  if (freshness !== undefined) {
    if (at > freshness.now + freshness.skewMs) return 'in-future';
    if (at < freshness.now - freshness.maxAgeMs) return 'too-old';
  }
  return undefined;
}

const TIME_DETAILS: Record<SigningTimeProblem, string> = {
  invalid: 'createdAt is not a valid RFC 3339 date-time',
  'before-validity': "createdAt is before the signer chain's validity began",
  'after-validity': "createdAt is after the signer chain's validity ended",
  'in-future': 'createdAt is further in the future than the allowed clock skew',
  'too-old': 'createdAt is older than the maximum message age',
};

/** The human-readable reason of a signing-time problem (never switch on it). */
export function signingTimeDetail(p: SigningTimeProblem): string {
  return TIME_DETAILS[p];
}
