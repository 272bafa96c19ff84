/**
 * Shared pieces of the fault tests: a keep-alive HTTPS client with a client
 * certificate, a bounded worker pool, a free-port finder, a read-only view of a
 * gateway's SQLite file, and the exactly-once assertions every fault test ends with.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  type X509Certificate,
} from 'node:crypto';
import { existsSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { vkeyFor } from '../../src/audit/checkpoint.js';
import { parseEntry } from '../../src/audit/entry.js';
import { exportBundle, type ExportLog } from '../../src/audit/export.js';
import { verifyBundle } from '../../src/audit/verify.js';
import type { AuditEntry, StoredEntry } from '../../src/audit/types.js';
import { signMessage } from '../../src/envelope/sign.js';
import type { Envelope } from '../../src/envelope/types.js';
import { parsePemChain } from '../../src/pki/pem.js';
import type { Checkpoint } from '../../src/store/types.js';
import { tableCounts, type Identity } from '../helpers/gateway.js';
import { openVault } from '../../src/retention/index.js';
import { getTestPki, testPkiPath } from '../helpers/pki.js';

export const FROM = 'CN-GX-CZ';
export const TO = 'VN-LS';

// ---- signing --------------------------------------------------------------

/** Signs envelopes as `who`, parsing the key and chain once (signAs parses them per call). */
export function signer(who: Identity): (env: Envelope) => string {
  const key: KeyObject = createPrivateKey(who.key);
  const chain: X509Certificate[] = parsePemChain(who.cert);
  return (env) => signMessage(env, { key, chain });
}

// ---- HTTP -----------------------------------------------------------------

export interface Reply {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface KeepAliveClient {
  /** POST /v1/messages; rejects on any transport error (reset, refused, timeout). */
  submit(jws: string): Promise<Reply>;
  /** GET `path`. */
  get(path: string): Promise<Reply>;
  close(): void;
}

/**
 * Many requests over a few keep-alive TLS connections with `who`'s client
 * certificate, so a fault test measures the gateway, not TLS handshakes.
 */
export function keepAliveClient(
  baseUrl: string,
  who: Identity,
  ca: string,
  maxSockets = 16,
  timeoutMs = 15_000,
): KeepAliveClient {
  const agent = new Agent({ keepAlive: true, maxSockets, cert: who.cert, key: who.key, ca });
  const send = (method: string, path: string, body?: string) =>
    new Promise<Reply>((resolve, reject) => {
      const req = request(
        new URL(path, baseUrl),
        {
          method,
          agent,
          servername: 'localhost',
          headers:
            body === undefined
              ? {}
              : {
                  'content-type': 'application/jose',
                  'content-length': Buffer.byteLength(body),
                },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              text: Buffer.concat(chunks).toString('utf8'),
              headers: res.headers,
            }),
          );
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  return {
    submit: (jws: string) => send('POST', '/v1/messages', jws),
    get: (path: string) => send('GET', path),
    close() {
      agent.destroy();
    },
  };
}

/** Runs `fn` over `items` with at most `concurrency` at a time; rejects on the first failure. */
export async function pool<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

export { freePort } from '../helpers/gateway.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- the store, read from outside ----------------------------------------

export interface StoreSnapshot {
  /** id → status and log index of every stored message. */
  messages: Map<
    string,
    { status: string; logIndex: number; digest: string; jws: string; response: string }
  >;
  /** id → number of rows in `deliveries`. */
  deliveries: Map<string, number>;
  /** Every audit entry, index order, as stored. */
  entries: StoredEntry[];
  checkpoints: Checkpoint[];
  outbox: number;
}

/**
 * Opens the gateway's SQLite file read-only and reads everything the assertions need.
 * Message bytes are sealed at rest: they are opened with the epoch keys in
 * `<dataDir>/keys` and the data key the store ran with: the local one a store opened
 * in-process keeps there, else the test PKI's (what a gateway process is given).
 */
export function readStoreFile(dataDir: string, dataKeyPath?: string): StoreSnapshot {
  const keyDir = join(dataDir, 'keys');
  const local = join(keyDir, 'local-data.key.pem');
  const vault = openVault(
    dataKeyPath ?? (existsSync(local) ? local : testPkiPath('data/data.key.pem')),
    keyDir,
  );
  const db = new Database(join(dataDir, 'casebridge.sqlite'), {
    readonly: true,
    fileMustExist: true,
  });
  try {
    const messages = new Map<
      string,
      { status: string; logIndex: number; digest: string; jws: string; response: string }
    >();
    for (const r of db
      .prepare(
        `SELECT m.id, m.status, m.log_index, m.digest, b.sealed, b.wrapped_key, b.epoch, b.response
         FROM messages m JOIN message_bodies b ON b.seq = m.seq`,
      )
      .all() as {
      id: string;
      status: string;
      log_index: number;
      digest: string;
      sealed: Buffer | null;
      wrapped_key: Buffer | null;
      epoch: string | null;
      response: string;
    }[]) {
      const jws =
        r.sealed === null || r.wrapped_key === null || r.epoch === null
          ? ''
          : vault.open(r.id, { sealed: r.sealed, wrappedKey: r.wrapped_key, epoch: r.epoch });
      messages.set(r.id, {
        status: r.status,
        logIndex: r.log_index,
        digest: r.digest,
        jws,
        response: r.response,
      });
    }
    const deliveries = new Map<string, number>();
    for (const r of db
      .prepare('SELECT message_id, COUNT(*) AS n FROM deliveries GROUP BY message_id')
      .all() as { message_id: string; n: number }[]) {
      deliveries.set(r.message_id, r.n);
    }
    const entries = (
      db.prepare('SELECT idx, entry FROM audit_entries ORDER BY idx').all() as {
        idx: number;
        entry: Buffer;
      }[]
    ).map((r) => ({ index: r.idx, bytes: r.entry }));
    const checkpoints = (
      db.prepare('SELECT size, root, note, signed_at FROM checkpoints ORDER BY size').all() as {
        size: number;
        root: Buffer;
        note: string;
        signed_at: string;
      }[]
    ).map((r) => ({ size: r.size, root: r.root, text: r.note, signedAt: r.signed_at }));
    const outbox = (db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number }).n;
    return { messages, deliveries, entries, checkpoints, outbox };
  } finally {
    db.close();
  }
}

/**
 * `readStoreFile` for a gateway on either engine: with `databaseUrl` (the
 * CASEBRIDGE_DATABASE_URL it ran with) the PostgreSQL database, else the file.
 */
export async function readStore(
  dataDir: string,
  opts: { dataKeyPath?: string; databaseUrl?: string | undefined } = {},
): Promise<StoreSnapshot> {
  if (opts.databaseUrl === undefined) return readStoreFile(dataDir, opts.dataKeyPath);
  const vault = openVault(
    opts.dataKeyPath ?? testPkiPath('data/data.key.pem'),
    join(dataDir, 'keys'),
  );
  const c = new pg.Client({ connectionString: opts.databaseUrl, types: INT8_AS_NUMBER });
  await c.connect();
  try {
    const messages: StoreSnapshot['messages'] = new Map();
    const rows = await c.query<{
      id: string;
      status: string;
      log_index: number;
      digest: string;
      sealed: Buffer | null;
      wrapped_key: Buffer | null;
      epoch: string | null;
      response: string;
    }>(`SELECT m.id, m.status, m.log_index, m.digest, b.sealed, b.wrapped_key, b.epoch, b.response
        FROM messages m JOIN message_bodies b ON b.seq = m.seq`);
    for (const r of rows.rows) {
      const jws =
        r.sealed === null || r.wrapped_key === null || r.epoch === null
          ? ''
          : vault.open(r.id, { sealed: r.sealed, wrappedKey: r.wrapped_key, epoch: r.epoch });
      messages.set(r.id, {
        status: r.status,
        logIndex: r.log_index,
        digest: r.digest,
        jws,
        response: r.response,
      });
    }
    const deliveries = new Map<string, number>();
    const d = await c.query<{ message_id: string; n: number }>(
      'SELECT message_id, COUNT(*) AS n FROM deliveries GROUP BY message_id',
    );
    for (const r of d.rows) deliveries.set(r.message_id, r.n);
    const entries = (
      await c.query<{ idx: number; entry: Buffer }>(
        'SELECT idx, entry FROM audit_entries ORDER BY idx',
      )
    ).rows.map((r) => ({ index: r.idx, bytes: r.entry }));
    const checkpoints = (
      await c.query<{ size: number; root: Buffer; note: string; signed_at: string }>(
        'SELECT size, root, note, signed_at FROM checkpoints ORDER BY size',
      )
    ).rows.map((r) => ({ size: r.size, root: r.root, text: r.note, signedAt: r.signed_at }));
    const outbox = (await c.query<{ n: number }>('SELECT COUNT(*) AS n FROM outbox')).rows[0]!.n;
    return { messages, deliveries, entries, checkpoints, outbox };
  } finally {
    await c.end();
  }
}

/** int8 as a JavaScript number, as the store reads it. */
const INT8_AS_NUMBER = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'),
} as pg.CustomTypesConfig;

/** Rows of a table in the store right now (cheap; for polling while a gateway runs). */
export function countRows(
  table: 'deliveries' | 'outbox',
  dataDir: string,
  databaseUrl?: string,
): number {
  return tableCounts(dataDir, databaseUrl, [table])[table]!;
}

/** Delivery rows in the store right now. */
export function countDeliveries(dataDir: string, databaseUrl?: string): number {
  return countRows('deliveries', dataDir, databaseUrl);
}

// ---- exactly-once assertions ---------------------------------------------

export function parseEntries(stored: readonly StoredEntry[]): AuditEntry[] {
  return stored.map((e) => parseEntry(e.bytes));
}

/** event → (message id → how many entries). */
export function eventCounts(entries: readonly AuditEntry[]): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const e of entries) {
    if (e.messageId === undefined) continue;
    let m = out.get(e.event);
    if (!m) out.set(e.event, (m = new Map()));
    m.set(e.messageId, (m.get(e.messageId) ?? 0) + 1);
  }
  return out;
}

/** The log's indexes are exactly 0..n-1, in order, and each entry says so itself. */
export function assertContiguous(
  stored: readonly StoredEntry[],
  entries: readonly AuditEntry[],
): void {
  stored.forEach((s, i) =>
    assert.equal(s.index, i, `stored entry at position ${i} has index ${s.index}`),
  );
  entries.forEach((e, i) =>
    assert.equal(e.index, i, `entry at position ${i} says index ${e.index}`),
  );
}

/**
 * Every id in `ids` reached 'delivered' exactly once: one `deliveries` row, one
 * `message.accepted`, `message.queued` and `message.delivered` entry each; and no
 * message the test does not know about was accepted.
 */
export function assertExactlyOnce(
  ids: ReadonlySet<string>,
  snap: Pick<StoreSnapshot, 'messages' | 'deliveries'>,
  entries: readonly AuditEntry[],
): void {
  const counts = eventCounts(entries);
  const problems: string[] = [];
  for (const id of ids) {
    const m = snap.messages.get(id);
    if (!m) {
      problems.push(`${id}: not stored (lost)`);
      continue;
    }
    if (m.status !== 'delivered') problems.push(`${id}: status ${m.status}`);
    const d = snap.deliveries.get(id) ?? 0;
    if (d !== 1) problems.push(`${id}: ${d} delivery rows`);
    for (const ev of ['message.accepted', 'message.queued', 'message.delivered']) {
      const n = counts.get(ev)?.get(id) ?? 0;
      if (n !== 1) problems.push(`${id}: ${n} × ${ev}`);
    }
  }
  for (const id of snap.messages.keys())
    if (!ids.has(id)) problems.push(`${id}: stored but never submitted by the test`);
  for (const [ev, m] of counts) {
    for (const id of m.keys()) if (!ids.has(id)) problems.push(`${id}: ${ev} for an unknown id`);
  }
  assert.deepEqual(problems.slice(0, 20), [], `${problems.length} exactly-once violations`);
  assert.equal(snap.deliveries.size, ids.size, 'one delivery row per message, no more');
}

// ---- a gateway process ------------------------------------------------------

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** One `casebridge serve` child; restartable on the same env. */
export class GatewayProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  stderrTail = '';
  starts = 0;

  /** `wrap`: a command to run the gateway under, e.g. `['faketime', …]`. */
  constructor(
    private readonly env: Record<string, string>,
    private readonly wrap: readonly string[] = [],
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The exit code or signal of the current child, undefined while it runs. */
  exitNow(): number | string | undefined {
    const c = this.child;
    return c?.exitCode ?? c?.signalCode ?? undefined;
  }

  /** Resolves with the exit of the current child. */
  exit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.exited ?? Promise.resolve({ code: null, signal: null });
  }

  /** Spawns and resolves once the gateway logged that it listens. */
  async start(timeoutMs = 30_000): Promise<void> {
    const [cmd, ...args] = [...this.wrap, process.execPath, MAIN, 'serve'];
    const child = spawn(cmd!, args, {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    this.starts++;
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    let buffered = '';
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`gateway not ready in ${timeoutMs} ms:\n${this.stderrTail}`)),
        timeoutMs,
      );
      child.stderr!.on('data', (c: Buffer) => {
        const text = c.toString('utf8');
        this.stderrTail = (this.stderrTail + text).slice(-8000);
        buffered += text;
        if (buffered.includes('"message":"casebridge started"')) {
          clearTimeout(timer);
          buffered = '';
          resolve();
        }
      });
      void this.exited!.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`gateway exited during start (${code}/${signal}):\n${this.stderrTail}`));
      });
    });
    await ready;
  }

  async kill9(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGKILL');
    const { signal } = await this.exited!;
    assert.equal(signal, 'SIGKILL');
  }

  /** Clean shutdown; resolves with the exit code. */
  async term(timeoutMs = 30_000): Promise<number | null> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return c?.exitCode ?? null;
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    const { code } = await this.exited!;
    clearTimeout(timer);
    return code;
  }
}

// ---- offline verification ---------------------------------------------------

/** The audit tables of a closed gateway's file, as the exporter reads them. */
export function fileReader(snap: StoreSnapshot): ExportLog {
  return {
    entries: (start, end) => snap.entries.slice(start, end),
    checkpoints: (from, to) => snap.checkpoints.filter((c) => c.size >= from && c.size <= to),
    latestCheckpoint: () => snap.checkpoints[snap.checkpoints.length - 1],
  };
}

/**
 * Exports the whole log of a closed gateway's file with its messages and verifies
 * it offline (protocol §6.5), against the log key and anchors of `pkiFiles`
 * (default: the test PKI).
 */
export async function verifyStoreOffline(
  snap: StoreSnapshot,
  pkiFiles?: Record<string, string>,
): Promise<void> {
  const files = pkiFiles ?? (await getTestPki()).files;
  const logKey = createPublicKey(files['log/log.key.pem']!);
  const vkey = vkeyFor('casebridge/GW-DEMO', logKey);
  const anchors = parsePemChain(files['trust.pem']!).map((x) => x.toString());
  const lines: string[] = [];
  for await (const line of exportBundle(
    {
      store: fileReader(snap),
      origin: 'casebridge/GW-DEMO',
      vkey,
      gatewayChain: parsePemChain(files['gateway/gateway.crt.pem']!).map((x) => x.toString()),
      trustAnchors: anchors,
      messagesFor: (list) =>
        list.flatMap((id) => {
          const m = snap.messages.get(id);
          if (!m) return [];
          return [
            { id, jws: m.jws, receipt: (JSON.parse(m.response) as { receipt: string }).receipt },
          ];
        }),
    },
    { messages: true },
  )) {
    lines.push(line);
  }
  const report = await verifyBundle(lines, { checkSignatures: true, vkey, trustAnchors: anchors });
  assert.equal(report.ok, true, `bundle verification: ${JSON.stringify(report.firstFailure)}`);
  assert.equal(report.entries, snap.entries.length);
}
