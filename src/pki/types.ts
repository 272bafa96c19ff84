import type { X509Certificate } from 'node:crypto';

/** protocol §1.1: the certificate Subject `OU`. */
export const ROLES = ['system', 'officer', 'auditor', 'gateway'] as const;
export type Role = (typeof ROLES)[number];

/** Who a verified certificate says it is (protocol §1.1). */
export interface Principal {
  /** Subject `O`: agency id, or the gateway id for the gateway's own certificate. */
  agency: string;
  /** Subject `OU`. */
  role: Role;
  /** Subject `CN`: display name or officer id. Personal data: never logged. */
  name: string;
  /** `sha256:` + lowercase hex of SHA-256 over the leaf certificate DER (protocol §6.1). */
  subject: string;
  /** The verified leaf. */
  certificate: X509Certificate;
  /** Validity of the whole path, anchor included: latest notBefore, earliest notAfter (ms). */
  validity: { notBefore: number; notAfter: number };
}

/** Why a certificate chain was refused. Stable, safe to log and to put in an audit `detail`. */
export type ChainFailure =
  'malformed' | 'untrusted' | 'expired' | 'not-yet-valid' | 'revoked' | 'bad-subject' | 'bad-usage';
