/**
 * PostgreSQL for tests: each gateway or store under test gets a database of its
 * own on the real server, dropped when the test is done. `CASEBRIDGE_TEST_STORE=postgres`
 * runs every gateway of the suite on PostgreSQL instead of SQLite.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_HOST = process.env['CASEBRIDGE_TEST_PG_HOST'] ?? '127.0.0.1';
export const PG_PORT = Number(process.env['CASEBRIDGE_TEST_PG_PORT'] ?? 5432);

/** True when the suite runs its gateways on PostgreSQL. */
export const ON_POSTGRES = process.env['CASEBRIDGE_TEST_STORE'] === 'postgres';

function adminClient(): pg.Client {
  return new pg.Client({ host: PG_HOST, port: PG_PORT, user: 'postgres', database: 'postgres' });
}

export function databaseUrl(name: string): string {
  return `postgres://postgres@${PG_HOST}:${PG_PORT}/${name}`;
}

/** Creates an empty database; returns its name. */
export async function createTestDatabase(): Promise<string> {
  const name = `casebridge_test_${randomBytes(6).toString('hex')}`;
  const c = adminClient();
  await c.connect();
  try {
    await c.query(`CREATE DATABASE ${name}`);
  } finally {
    await c.end();
  }
  return name;
}

/** Drops a test database, cutting any connection a killed process left behind. */
export async function dropTestDatabase(name: string): Promise<void> {
  if (!/^casebridge_test_[0-9a-f]+$/.test(name)) throw new Error(`not a test database: ${name}`);
  const c = adminClient();
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await c.end();
  }
}

/** The name of the database a test URL names. */
export function databaseNameOf(url: string): string {
  return new URL(url).pathname.replace(/^\//, '');
}

/**
 * Row counts of tables in a test database, read synchronously with `psql` (for
 * helpers that read the SQLite file synchronously, such as storeCounts).
 */
export function pgCountsSync(url: string, tables: readonly string[]): Record<string, number> {
  for (const t of tables) if (!/^[a-z_]+$/.test(t)) throw new Error(`not a table name: ${t}`);
  // One row, one column per table, so the order of the answer is the order asked.
  const sql = `SELECT ${tables.map((t) => `(SELECT count(*) FROM ${t})`).join(', ')}`;
  const out = execFileSync(
    'psql',
    [
      '-XAt',
      '-F',
      ',',
      '-h',
      PG_HOST,
      '-p',
      String(PG_PORT),
      '-U',
      'postgres',
      '-d',
      databaseNameOf(url),
      '-c',
      sql,
    ],
    { encoding: 'utf8' },
  );
  const counts = out.trim().split(',').map(Number);
  return Object.fromEntries(tables.map((t, i) => [t, counts[i]!]));
}

/** Runs statements on a test database with a connection of its own (behind the store's back). */
export async function pgExec(
  url: string,
  sql: string,
  values: unknown[] = [],
): Promise<pg.QueryResultRow[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql, values)).rows;
  } finally {
    await c.end();
  }
}

/**
 * Every value of every table of a test database, as bytes (bytea as is, the rest
 * as text): what "in the database" means for PostgreSQL, whose files the test
 * cannot read. Old row versions and the WAL are not included.
 */
export async function pgDatabaseBytes(url: string): Promise<Buffer> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const tables = await c.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    );
    const parts: Buffer[] = [];
    for (const { table_name } of tables.rows) {
      const { rows } = await c.query<Record<string, unknown>>(`SELECT * FROM "${table_name}"`);
      for (const row of rows) {
        for (const v of Object.values(row)) {
          if (v === null || v === undefined) continue;
          parts.push(Buffer.isBuffer(v) ? v : Buffer.from(String(v)));
        }
      }
    }
    return Buffer.concat(parts);
  } finally {
    await c.end();
  }
}
