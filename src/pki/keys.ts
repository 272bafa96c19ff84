import { createPrivateKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { PkiError } from './errors.js';
import { OID } from './x509.js';

export const KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa', 'ed25519'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

/** Generates a key pair with node:crypto (forge's JS RSA keygen is far too slow). */
export function generateKey(
  type: KeyType,
  opts: { rsaBits?: number } = {},
): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (type) {
    case 'ec-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'ec-p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
    case 'rsa':
      return generateKeyPairSync('rsa', { modulusLength: opts.rsaBits ?? 2048 });
    case 'ed25519':
      return generateKeyPairSync('ed25519');
  }
}

export function privateKeyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function asPrivateKey(key: string | KeyObject): KeyObject {
  if (typeof key !== 'string') return key;
  try {
    return createPrivateKey(key);
  } catch (e) {
    throw new PkiError('malformed', 'not a private key', { cause: e });
  }
}

/** A signature algorithm: its AlgorithmIdentifier and how node:crypto computes it. */
export interface SignatureAlgorithm {
  oid: string;
  /** RFC 4055 §5: RSA PKCS#1 v1.5 AlgorithmIdentifiers carry NULL parameters; ECDSA and EdDSA none. */
  nullParams: boolean;
  /** The digest node:crypto applies, or null for EdDSA. */
  hash: string | null;
  keyType: 'ec' | 'rsa' | 'ed25519';
}

const ALGORITHMS: readonly SignatureAlgorithm[] = [
  { oid: OID.ecdsaWithSha256, nullParams: false, hash: 'sha256', keyType: 'ec' },
  { oid: OID.ecdsaWithSha384, nullParams: false, hash: 'sha384', keyType: 'ec' },
  { oid: OID.ecdsaWithSha512, nullParams: false, hash: 'sha512', keyType: 'ec' },
  { oid: OID.sha256WithRsa, nullParams: true, hash: 'sha256', keyType: 'rsa' },
  { oid: OID.sha384WithRsa, nullParams: true, hash: 'sha384', keyType: 'rsa' },
  { oid: OID.sha512WithRsa, nullParams: true, hash: 'sha512', keyType: 'rsa' },
  { oid: OID.ed25519, nullParams: false, hash: null, keyType: 'ed25519' },
];

export function algorithmByOid(oid: string): SignatureAlgorithm | undefined {
  return ALGORITHMS.find((a) => a.oid === oid);
}

/** The algorithm a CA key signs with: the hash matches the curve strength. */
export function algorithmForKey(key: KeyObject): SignatureAlgorithm {
  const find = (oid: string): SignatureAlgorithm => algorithmByOid(oid)!;
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return find(OID.ecdsaWithSha256);
      if (curve === 'secp384r1') return find(OID.ecdsaWithSha384);
      if (curve === 'secp521r1') return find(OID.ecdsaWithSha512);
      throw new PkiError('malformed', `unsupported EC curve ${String(curve)}`);
    }
    case 'rsa':
      return find(OID.sha256WithRsa);
    case 'ed25519':
      return find(OID.ed25519);
    default:
      throw new PkiError('malformed', `unsupported CA key type ${String(key.asymmetricKeyType)}`);
  }
}

export function signWith(alg: SignatureAlgorithm, key: KeyObject, data: Buffer): Buffer {
  return sign(alg.hash, data, key);
}

/** Verifies `sig` over `data`; the key's type must match the algorithm (no algorithm confusion). */
export function verifyWith(
  alg: SignatureAlgorithm,
  key: KeyObject,
  data: Buffer,
  sig: Buffer,
): boolean {
  if (key.asymmetricKeyType !== alg.keyType) return false;
  try {
    return verify(alg.hash, data, key, sig);
  } catch {
    return false;
  }
}
