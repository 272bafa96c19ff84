import type { ChainFailure } from './types.js';

/**
 * Why a certificate, chain or CRL was refused. `failure` is stable and safe to log;
 * callers map it to `CERT_INVALID` (a signer) or `CLIENT_CERT_UNTRUSTED` (a TLS client).
 */
export class PkiError extends Error {
  readonly failure: ChainFailure;
  /** Which configured input was unusable, when a TrustStore refuses its configuration. */
  readonly source: 'anchors' | 'crl' | undefined;

  constructor(
    failure: ChainFailure,
    detail: string,
    options?: { cause?: unknown; source?: 'anchors' | 'crl' },
  ) {
    super(detail, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PkiError';
    this.failure = failure;
    this.source = options?.source;
  }
}

export function isPkiError(e: unknown): e is PkiError {
  return e instanceof PkiError;
}
