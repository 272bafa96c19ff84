/** The PKI: issuing, CRLs, and the chain checks of protocol §1.1 and §1.5. */
export { ROLES, type Role, type Principal, type ChainFailure } from './types.js';
export { PkiError, isPkiError } from './errors.js';
export { KEY_TYPES, generateKey, type KeyType } from './keys.js';
export { parsePemChain, chainFromX5c, x5cFromChain, pemBlocks, toPem } from './pem.js';
export { certificateSubjectId } from './x509.js';
export {
  issueCertificate,
  createRootCa,
  createIntermediateCa,
  DEFAULT_LEAF_DAYS,
  type IssueOptions,
  type CaOptions,
  type IssuedCertificate,
} from './issue.js';
export {
  createCrl,
  parseCrl,
  parseCrlPem,
  verifyCrls,
  verifyCrlSignature,
  CRL_PEM_LABEL,
  type CreateCrlOptions,
  type ParsedCrl,
  type RevokedEntry,
  type VerifiedCrls,
} from './crl.js';
export {
  TrustStore,
  chainFailureOf,
  type TrustStoreOptions,
  type CrlSummary,
} from './trust-store.js';
export {
  generateDevPki,
  devPkcs12Files,
  DEV_AGENCIES,
  DEV_GATEWAY_ID,
  DEV_PKCS12_PASSWORD,
  type DevPkiFiles,
  type DevPkiOptions,
} from './dev-pki.js';
export { toPkcs12, type Pkcs12Options } from './pkcs12.js';
// The one filesystem adapter here; kept in its own module.
export { writeDevPki } from './write-dev-pki.js';
