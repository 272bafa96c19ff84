/**
 * Connections, and the error classification at the edge of the driver: a server
 * that is down, shutting down or out of reach becomes StoreUnavailableError
 * (503 with Retry-After); the pool makes new connections once it is back.
 */
import pg from 'pg';
import { ConfigError } from '../../errors.js';
import { storeFailureOf, wrapWriteError } from '../errors.js';

/** int8 as a JavaScript number: every bigint of the schema stays below 2^53. */
const INT8_OID = 20;
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (v: string) => unknown {
    if (oid === INT8_OID && format !== 'binary') return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text') as (v: string) => unknown;
  },
} as pg.CustomTypesConfig;

/** How long a new connection may take before the store counts as unreachable. */
export const CONNECT_TIMEOUT_MS = 5000;

export function poolConfig(url: string, max: number): pg.PoolConfig {
  return {
    connectionString: url,
    max,
    types,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    application_name: 'casebridge',
    keepAlive: true,
  };
}

export function clientConfig(url: string): pg.ClientConfig {
  return {
    connectionString: url,
    types,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: 'casebridge',
    keepAlive: true,
  };
}

/** Something to run a query on: the pool (reads, single statements) or a transaction's client. */
export interface Queryable {
  query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>>;
}

/** Runs one statement; a failure to wait out comes back as StoreUnavailableError. */
export async function run<R extends pg.QueryResultRow>(
  db: Queryable,
  name: string | undefined,
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  try {
    const config: pg.QueryConfig = name === undefined ? { text, values } : { name, text, values };
    return (await db.query<R>(config)).rows;
  } catch (e) {
    throw wrapWriteError(e);
  }
}

/** Where the URL points, without user or password: for messages. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    const port = u.port === '' ? '5432' : u.port;
    return `${u.hostname}:${port}${u.pathname}`;
  } catch {
    return 'the database';
  }
}

/** A start that cannot open the database: one line naming the variable (protocol §11). */
export function startError(url: string, e: unknown): Error {
  if (e instanceof ConfigError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  const c = typeof code === 'string' ? code : undefined;
  const where = describeUrl(url);
  let why: string;
  if (storeFailureOf(e) === 'unreachable') why = `cannot reach the database at ${where}`;
  else if (c?.startsWith('28')) why = `the database at ${where} refused the login`;
  else if (c === '3D000') why = `names a database that does not exist (${where})`;
  else why = `cannot open the database at ${where}`;
  return new ConfigError('CASEBRIDGE_DATABASE_URL', `${why} (${c ?? 'connection failed'})`, {
    cause: e,
  });
}
