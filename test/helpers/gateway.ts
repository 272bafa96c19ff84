/**
 * Starts a real gateway (HTTPS with mutual TLS, SQLite under a temp dir) on free
 * ports, and talks to it with real client certificates from the test PKI.
 */
import { createPrivateKey, type X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import winston from 'winston';
import type { AuditLogReader } from '../../src/audit/types.js';
import { startGateway, type Gateway } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { signMessage } from '../../src/envelope/sign.js';
import type { Envelope } from '../../src/envelope/types.js';
import { parsePemChain } from '../../src/pki/pem.js';
import {
  createTestDatabase,
  databaseUrl,
  dropTestDatabase,
  ON_POSTGRES,
  pgCountsSync,
} from './database.js';
import { getTestPki } from './pki.js';

export interface Identity {
  cert: string;
  key: string;
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = Record<string, unknown>>(): T;
}

export interface TestGateway {
  gw: Gateway;
  dataDir: string;
  /** The gateway's PostgreSQL database when the suite runs on PostgreSQL. */
  databaseUrl?: string;
  /** Every operational log line the gateway wrote. */
  logs: string[];
  stop(): Promise<void>;
}

/**
 * The environment of a test gateway. When the suite runs on PostgreSQL, each call
 * makes a fresh database (`CASEBRIDGE_DATABASE_URL`); `releaseTestEnv` drops it.
 */
export async function testEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const pki = await getTestPki();
  const dataDir = mkdtempSync(join(tmpdir(), 'casebridge-gw-'));
  const database =
    ON_POSTGRES && extra['CASEBRIDGE_DATABASE_URL'] === undefined
      ? { CASEBRIDGE_DATABASE_URL: databaseUrl(await createTestDatabase()) }
      : {};
  return {
    ...database,
    CASEBRIDGE_HOST: '127.0.0.1',
    CASEBRIDGE_PORT: '0',
    CASEBRIDGE_ADMIN_PORT: '0',
    CASEBRIDGE_DATA_DIR: dataDir,
    CASEBRIDGE_TLS_CERT: pki.path('gateway/gateway.crt.pem'),
    CASEBRIDGE_TLS_KEY: pki.path('gateway/gateway.key.pem'),
    CASEBRIDGE_TRUST: pki.path('trust.pem'),
    CASEBRIDGE_CRL: pki.path('crl.pem'),
    CASEBRIDGE_REGISTRY: pki.path('registry.json'),
    CASEBRIDGE_LOG_KEY: pki.path('log/log.key.pem'),
    CASEBRIDGE_DATA_KEY: pki.path('data/data.key.pem'),
    CASEBRIDGE_CHECKPOINT_MS: '100',
    ...extra,
  };
}

export async function startTestGateway(
  extra: Record<string, string> = {},
  opts: { now?: () => Date } = {},
): Promise<TestGateway> {
  const env = await testEnv(extra);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(chunk.toString('utf8'));
      cb();
    },
  });
  const logger = winston.createLogger({
    level: 'debug',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream: sink })],
  });
  const gw = await startGateway({
    config: loadConfig(env),
    logger,
    ...(opts.now ? { now: opts.now } : {}),
  });
  return {
    gw,
    dataDir: env['CASEBRIDGE_DATA_DIR']!,
    ...(env['CASEBRIDGE_DATABASE_URL'] !== undefined
      ? { databaseUrl: env['CASEBRIDGE_DATABASE_URL'] }
      : {}),
    logs,
    async stop() {
      await gw.close();
      await releaseTestEnv(env);
    },
  };
}

/** Removes what `testEnv` made: the data directory and, on PostgreSQL, the database. */
export async function releaseTestEnv(env: Record<string, string>): Promise<void> {
  rmSync(env['CASEBRIDGE_DATA_DIR']!, { recursive: true, force: true });
  const url = env['CASEBRIDGE_DATABASE_URL'];
  if (url !== undefined && ON_POSTGRES) {
    const name = new URL(url).pathname.slice(1);
    if (name.startsWith('casebridge_test_')) await dropTestDatabase(name);
  }
}

/** The dev PKI certificate of a sample agency's principal. */
export async function identity(
  agency: string,
  role: 'system' | 'officer' | 'auditor',
): Promise<Identity> {
  const pki = await getTestPki();
  return {
    cert: pki.files[`agencies/${agency}/${role}.crt.pem`]!,
    key: pki.files[`agencies/${agency}/${role}.key.pem`]!,
  };
}

export function signAs(envelope: Envelope, who: Identity): string {
  return signMessage(envelope, { key: createPrivateKey(who.key), chain: parsePemChain(who.cert) });
}

export function chainOf(who: Identity): X509Certificate[] {
  return parsePemChain(who.cert);
}

/** The TLS options of a request by `who` (none: no client certificate), trusting the test PKI. */
export async function tlsAs(who: Identity | undefined) {
  const pki = await getTestPki();
  return {
    agent: false as const,
    ca: pki.files['trust.pem'],
    servername: 'localhost',
    ...(who ? { cert: who.cert, key: who.key } : {}),
  };
}

/** Reads an answer whole. */
export function collect(res: IncomingMessage, resolve: (r: Response) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    resolve({
      status: res.statusCode ?? 0,
      headers: res.headers,
      text,
      json: <T>() => JSON.parse(text) as T,
    });
  });
}

/** One HTTPS request over a fresh connection, with `who`'s client certificate (or none). */
export async function call(
  gw: Gateway,
  who: Identity | undefined,
  method: string,
  path: string,
  body?: { type: string; data: string | Buffer },
): Promise<Response> {
  const tls = await tlsAs(who);
  const url = new URL(path, gw.url);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ...tls,
        headers: body
          ? { 'content-type': body.type, 'content-length': Buffer.byteLength(body.data) }
          : {},
      },
      (res) => collect(res, resolve),
    );
    req.on('error', reject);
    if (body) req.write(body.data);
    req.end();
  });
}

export function submit(
  gw: Gateway,
  who: Identity,
  jws: string | Buffer,
  type = 'application/jose',
): Promise<Response> {
  return call(gw, who, 'POST', '/v1/messages', { type, data: jws });
}

export { eventually } from './amqp.js';

export function writeTemp(name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'casebridge-t-'));
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

/** Row counts of the gateway's store, read with a connection of its own. */
export function storeCounts(t: TestGateway): {
  messages: number;
  history: number;
  outbox: number;
  deliveries: number;
} {
  const n = tableCounts(t.dataDir, t.databaseUrl, [
    'messages',
    'message_history',
    'outbox',
    'deliveries',
  ]);
  return {
    messages: n['messages']!,
    history: n['message_history']!,
    outbox: n['outbox']!,
    deliveries: n['deliveries']!,
  };
}

/**
 * Row counts of store tables right now, read behind the gateway's back: from its
 * PostgreSQL database when it has one, else from its SQLite file (cheap enough to poll).
 */
export function tableCounts(
  dataDir: string,
  databaseUrl: string | undefined,
  tables: readonly string[],
): Record<string, number> {
  if (databaseUrl !== undefined) return pgCountsSync(databaseUrl, tables);
  for (const table of tables)
    if (!/^[a-z_]+$/.test(table)) throw new Error(`not a table: ${table}`);
  const db = new Database(join(dataDir, 'casebridge.sqlite'), {
    readonly: true,
    fileMustExist: true,
  });
  try {
    return Object.fromEntries(
      tables.map((table) => [
        table,
        (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n,
      ]),
    );
  } finally {
    db.close();
  }
}

/** A TCP port nobody listens on right now (bind 0, read it, release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** The audit entries [from, end of log) of a store, parsed. */
export async function auditEntriesOf<E = Record<string, unknown>>(
  store: Pick<AuditLogReader, 'entries' | 'treeSize'>,
  from = 0,
): Promise<E[]> {
  const stored = await store.entries(from, await store.treeSize());
  return stored.map((e) => JSON.parse(e.bytes.toString('utf8')) as E);
}
