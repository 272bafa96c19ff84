/**
 * Store failures the gateway survives. SQLite and file-system errors are wrapped
 * here, where they enter our code, and identified by their `code` property only.
 * A full disk or a failing disk makes writes `503 UNAVAILABLE` with `Retry-After`
 * (protocol §4); reads go on, and writes work again once the cause is gone.
 */
import { CasebridgeError } from '../errors.js';

/** Why the store cannot write: no space left, or the disk refused the write. */
export type StoreFailure = 'disk-full' | 'io-error';

/** Seconds a client should wait before trying a write again. */
export const STORE_RETRY_AFTER_S = 5;

/** What `/readyz` says for each failure (protocol §11). */
export const FAILURE_DETAIL: Record<StoreFailure, string> = {
  'disk-full': 'disk full',
  'io-error': 'disk write error',
};

export class StoreUnavailableError extends CasebridgeError {
  readonly reason: StoreFailure;
  /** The code of the wrapped error (`SQLITE_FULL`, `SQLITE_IOERR_WRITE`, `ENOSPC`, …). */
  readonly causeCode: string;

  constructor(reason: StoreFailure, causeCode: string, cause?: unknown) {
    super(
      'UNAVAILABLE',
      reason === 'disk-full'
        ? 'the gateway has no disk space for the write; nothing was stored, try again later'
        : 'the gateway could not write to its store; nothing was stored, try again later',
      { cause, retryAfterS: STORE_RETRY_AFTER_S },
    );
    this.name = 'StoreUnavailableError';
    this.reason = reason;
    this.causeCode = causeCode;
  }
}

/**
 * Classifies a write error by its code: SQLite result codes (extended ones too, as
 * better-sqlite3 reports them) and Node errno codes. Anything else is not a
 * condition to wait out and is returned as `undefined`.
 */
export function storeFailureOf(err: unknown): StoreFailure | undefined {
  const code = codeOf(err);
  if (code === undefined) return undefined;
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') return 'disk-full';
  if (code === 'SQLITE_IOERR' || code.startsWith('SQLITE_IOERR_') || code === 'EIO')
    return 'io-error';
  return undefined;
}

/** The error as a StoreUnavailableError when it is one of ours to wait out, else itself. */
export function wrapWriteError(err: unknown): unknown {
  if (err instanceof StoreUnavailableError) return err;
  const reason = storeFailureOf(err);
  return reason === undefined ? err : new StoreUnavailableError(reason, codeOf(err)!, err);
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
