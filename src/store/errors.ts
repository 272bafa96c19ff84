/**
 * Store failures the gateway survives. SQLite, PostgreSQL and file-system errors
 * are wrapped here, where they enter our code, and identified by their `code`
 * property only. A full disk, a failing disk or a database out of reach makes
 * writes `503 UNAVAILABLE` with `Retry-After` (protocol §4); writes work again
 * once the cause is gone.
 */
import { CasebridgeError } from '../errors.js';

/**
 * Why the store cannot write: no space left, the disk refused the write, the
 * database is out of reach, or the embedded store's thread has stopped.
 */
export type StoreFailure = 'disk-full' | 'io-error' | 'unreachable' | 'stopped';

/** Seconds a client should wait before trying a write again. */
export const STORE_RETRY_AFTER_S = 5;

/** What `/readyz` says for each failure (protocol §11). */
export const FAILURE_DETAIL: Record<StoreFailure, string> = {
  'disk-full': 'disk full',
  'io-error': 'disk write error',
  unreachable: 'database unreachable',
  stopped: 'store thread stopped',
};

const MESSAGE: Record<StoreFailure, string> = {
  'disk-full': 'the gateway has no disk space for the write; nothing was stored, try again later',
  'io-error': 'the gateway could not write to its store; nothing was stored, try again later',
  unreachable: 'the gateway cannot reach its database; nothing was stored, try again later',
  stopped: 'the gateway cannot write to its store until it is restarted; try again later',
};

export class StoreUnavailableError extends CasebridgeError {
  readonly reason: StoreFailure;
  /** The code of the wrapped error (`SQLITE_FULL`, `ENOSPC`, `ECONNREFUSED`, `57P01`, …). */
  readonly causeCode: string;

  constructor(reason: StoreFailure, causeCode: string, cause?: unknown) {
    super('UNAVAILABLE', MESSAGE[reason], { cause, retryAfterS: STORE_RETRY_AFTER_S });
    this.name = 'StoreUnavailableError';
    this.reason = reason;
    this.causeCode = causeCode;
  }
}

/** Node errno codes of a connection that could not be made or was cut. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * PostgreSQL SQLSTATEs of a server that is going away or not taking work:
 * class 08 (connection exception), admin/crash shutdown, cannot connect now,
 * too many connections, and a server out of memory.
 */
function pgUnreachable(code: string): boolean {
  return (
    code.startsWith('08') ||
    code === '57P01' ||
    code === '57P02' ||
    code === '57P03' ||
    code === '53300' ||
    code === '53200'
  );
}

/**
 * node-postgres reports some connection failures without a code; they are
 * recognised by the driver's own fixed messages, never by text from the server.
 */
const DRIVER_CONNECTION_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
];

/**
 * Classifies a store error by its code: SQLite result codes (extended ones too, as
 * better-sqlite3 reports them), PostgreSQL SQLSTATEs and Node errno codes. Anything
 * else is not a condition to wait out and is returned as `undefined`.
 */
export function storeFailureOf(err: unknown): StoreFailure | undefined {
  const code = codeOf(err);
  if (code === undefined) return driverConnectionError(err) ? 'unreachable' : undefined;
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT' || code === '53100')
    return 'disk-full';
  if (
    code === 'SQLITE_IOERR' ||
    code.startsWith('SQLITE_IOERR_') ||
    code === 'EIO' ||
    code === '58030'
  )
    return 'io-error';
  if (CONNECTION_CODES.has(code) || pgUnreachable(code)) return 'unreachable';
  return undefined;
}

function driverConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return DRIVER_CONNECTION_MESSAGES.some((m) => err.message.startsWith(m));
}

/** The error as a StoreUnavailableError when it is one of ours to wait out, else itself. */
export function wrapWriteError(err: unknown): unknown {
  if (err instanceof StoreUnavailableError) return err;
  const reason = storeFailureOf(err);
  return reason === undefined
    ? err
    : new StoreUnavailableError(reason, codeOf(err) ?? 'connection', err);
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
