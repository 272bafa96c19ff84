import {
  constants,
  createHash,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
  type X509Certificate,
} from 'node:crypto';
import { CasebridgeError } from '../errors.js';
import type { AllowedAlg } from './types.js';

/** The parts of a compact JWS (RFC 7515 §7.1), still encoded. */
export interface CompactParts {
  protectedB64: string;
  payloadB64: string;
  signatureB64: string;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

/** Splits a compact JWS; refuses anything that is not three base64url segments. */
export function splitCompact(jws: string): CompactParts {
  const parts = jws.split('.');
  if (parts.length !== 3) throw new CasebridgeError('MALFORMED', 'a compact JWS has three parts');
  const [protectedB64, payloadB64, signatureB64] = parts as [string, string, string];
  for (const p of parts) {
    if (!B64URL.test(p)) throw new CasebridgeError('MALFORMED', 'JWS parts must be base64url');
  }
  // An empty signature is well-formed (alg "none"); the header rules refuse it next.
  if (protectedB64 === '')
    throw new CasebridgeError('MALFORMED', 'the JWS protected header is empty');
  return { protectedB64, payloadB64, signatureB64 };
}

/** protocol §2.1: `sha256:` + lowercase hex over the JWS's ASCII bytes. */
export function digestOf(jws: string): string {
  return 'sha256:' + createHash('sha256').update(jws, 'ascii').digest('hex');
}

/** `digestOf` over bytes as received (a broker body), which may not be ASCII at all. */
export function digestOfBytes(bytes: Uint8Array): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}

/** `sha256:` + hex of SHA-256 over a certificate's DER (protocol §6.1 `subject`). */
export function certificateSubject(cert: X509Certificate): string {
  return 'sha256:' + createHash('sha256').update(cert.raw).digest('hex');
}

/** The JWS algorithm our policy uses for a signing key (protocol §2.1 allow-list). */
export function algForKey(key: KeyObject): AllowedAlg {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return 'ES256';
      if (curve === 'secp384r1') return 'ES384';
      break;
    }
    case 'rsa':
    case 'rsa-pss':
      return 'PS256';
    case 'ed25519':
      return 'EdDSA';
    default:
      break;
  }
  throw new CasebridgeError('INVALID_PARAMETER', 'key type not usable for casebridge signatures');
}

/**
 * Signs synchronously with node:crypto. jose signs asynchronously, which cannot run
 * inside the store's acceptance transaction where the receipt is made; signatures
 * produced here are verified with jose in the tests.
 */
export function signCompactSync(
  header: Record<string, unknown>,
  payload: Uint8Array | string,
  key: KeyObject,
): string {
  const alg = header['alg'] as AllowedAlg;
  const signingInput =
    Buffer.from(JSON.stringify(header)).toString('base64url') +
    '.' +
    Buffer.from(payload).toString('base64url');
  const data = Buffer.from(signingInput, 'ascii');
  let sig: Buffer;
  switch (alg) {
    case 'ES256':
      sig = cryptoSign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
      break;
    case 'ES384':
      sig = cryptoSign('sha384', data, { key, dsaEncoding: 'ieee-p1363' });
      break;
    case 'PS256':
      // RFC 7518 §3.5: salt length equals the hash output size.
      sig = cryptoSign('sha256', data, {
        key,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: 32,
      });
      break;
    case 'EdDSA':
      sig = cryptoSign(null, data, key);
      break;
    default:
      throw new CasebridgeError('INVALID_PARAMETER', 'unsupported signing algorithm');
  }
  return signingInput + '.' + sig.toString('base64url');
}

/** RFC 7515 §4.1.6: x5c holds standard base64 DER, leaf first. */
export function x5cOf(chain: readonly X509Certificate[]): string[] {
  return chain.map((c) => c.raw.toString('base64'));
}

/** Does `key` suit `alg` (RFC 7518 §3.1, RFC 8037 §3.1; RSA at least 2048 bits as jose requires)? */
export function keyFits(alg: AllowedAlg, key: KeyObject): boolean {
  const details = key.asymmetricKeyDetails;
  switch (alg) {
    case 'ES256':
      return key.asymmetricKeyType === 'ec' && details?.namedCurve === 'prime256v1';
    case 'ES384':
      return key.asymmetricKeyType === 'ec' && details?.namedCurve === 'secp384r1';
    case 'PS256':
      return (
        (key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') &&
        (details?.modulusLength ?? 0) >= 2048
      );
    case 'EdDSA':
      return key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448';
  }
}

const B64URL_RE = /^[A-Za-z0-9_-]*$/;

/**
 * RFC 7515 §5.2 for one compact JWS whose header `alg` is already allowed:
 * returns the payload when the signature over `header.payload` verifies.
 * Callers decode the JWS with decodeJws first, which refuses non-canonical segments.
 */
export function verifyCompactJws(
  jws: string,
  key: KeyObject,
  alg: AllowedAlg,
): Uint8Array | undefined {
  const parts = jws.split('.');
  if (parts.length !== 3 || !parts.every((p) => B64URL_RE.test(p))) return undefined;
  const [h, p, s] = parts as [string, string, string];
  const ok = signatureVerifies(
    Buffer.from(`${h}.${p}`, 'ascii'),
    Buffer.from(s, 'base64url'),
    key,
    alg,
  );
  return ok ? Buffer.from(p, 'base64url') : undefined;
}

/**
 * Does `signature` over the JWS signing input verify with `key` under `alg`?
 * node:crypto directly, synchronously: on Node 20 jose verifies through WebCrypto
 * at about three times the cost, on the path of every submission. The tests check
 * this against jose on valid, tampered and wrong-key tokens.
 */
export function signatureVerifies(
  input: Buffer,
  signature: Buffer,
  key: KeyObject,
  alg: AllowedAlg,
): boolean {
  if (!keyFits(alg, key)) return false;
  try {
    switch (alg) {
      case 'ES256':
      case 'ES384':
        // RFC 7518 §3.4: R || S, fixed width.
        return (
          signature.length === (alg === 'ES256' ? 64 : 96) &&
          cryptoVerify(
            alg === 'ES256' ? 'sha256' : 'sha384',
            input,
            { key, dsaEncoding: 'ieee-p1363' },
            signature,
          )
        );
      case 'PS256':
        // RFC 7518 §3.5: MGF1 with SHA-256, salt as long as the hash.
        return cryptoVerify(
          'sha256',
          input,
          { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
          signature,
        );
      case 'EdDSA':
        return cryptoVerify(null, input, key, signature);
    }
  } catch {
    return false;
  }
}
