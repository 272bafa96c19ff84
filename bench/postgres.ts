/**
 * PostgreSQL mode (issue 11): one gateway, then two gateway processes on one
 * database and one broker, single-message submissions at the peak, each beside
 * the raw broker confirm rate of the same run. The load is split evenly: each
 * gateway gets its own client with half the connections, so two gateways see
 * the same total concurrency as one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import pg from 'pg';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestVhost } from '../test/helpers/amqp.js';
import {
  createTestDatabase,
  databaseUrl,
  dropTestDatabase,
  PG_HOST,
  PG_PORT,
} from '../test/helpers/database.js';
import { testEnv } from '../test/helpers/gateway.js';
import type { LoadClient } from './load.js';
import {
  brokerConfirmRate,
  CONNECTIONS,
  loadClient,
  signed,
  SINGLE,
  WARMUP,
  type PipelineSizes,
} from './pipeline.js';
import { startServer, type ServerProcess } from './servers.js';

const round = (v: number, digits = 3) => Number(v.toFixed(digits));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the database says about the sequencer and the size of what was written. */
interface DbFigures {
  /** Write transactions: each moves the one `log_head` row once. */
  writeTx: number;
  entries: number;
  logBytes: number;
  databaseBytes: number;
}

async function dbFigures(database: string): Promise<DbFigures> {
  const c = new pg.Client({ host: PG_HOST, port: PG_PORT, user: 'postgres', database });
  await c.connect();
  try {
    // Table statistics reach the shared counters within a second of a transaction's end.
    await sleep(1200);
    const r = await c.query<{ tx: string; entries: string; log: string; db: string }>(
      `SELECT (SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'log_head') AS tx,
              (SELECT size FROM log_head) AS entries,
              pg_total_relation_size('audit_entries') + pg_total_relation_size('audit_nodes') AS log,
              pg_database_size(current_database()) AS db`,
    );
    const row = r.rows[0]!;
    return {
      writeTx: Number(row.tx),
      entries: Number(row.entries),
      logBytes: Number(row.log),
      databaseBytes: Number(row.db),
    };
  } finally {
    await c.end();
  }
}

/** The one-gateway rate of this run, for the two-gateway ratio. */
let oneGatewayRate: number | undefined;

export async function benchPostgres(
  sizes: PipelineSizes,
  gateways: number,
): Promise<Record<string, number>> {
  const n = sizes.messages;
  const confirmRate = await brokerConfirmRate(n);
  const vhost = await createTestVhost();
  const database = await createTestDatabase();
  const shared = mkdtempSync(join(tmpdir(), 'casebridge-bench-pg-'));
  const servers: ServerProcess[] = [];
  const clients: LoadClient[] = [];
  const envs: Record<string, string>[] = [];
  try {
    for (let k = 0; k < gateways; k++) {
      const env = await testEnv({
        CASEBRIDGE_DATABASE_URL: databaseUrl(database),
        CASEBRIDGE_AMQP_URL: vhost.url,
        CASEBRIDGE_KEY_DIR: join(shared, 'keys'),
        CASEBRIDGE_FILES_DIR: join(shared, 'files'),
        CASEBRIDGE_LOG_LEVEL: 'info',
        CASEBRIDGE_CHECKPOINT_MS: '500',
        CASEBRIDGE_RATE_PER_MIN: '1000000',
        CASEBRIDGE_MAX_BODIES: '1024',
      });
      envs.push(env);
      const server = await startServer('gateway', env);
      servers.push(server);
      clients.push(await loadClient(server, Math.max(1, Math.round(CONNECTIONS / gateways))));
    }
    const delivered = async () =>
      (await Promise.all(servers.map((s) => s.delivered()))).reduce((a, b) => a + b, 0);
    const each = async (count: number) =>
      Promise.all(
        clients.map(async () => (await signed(Math.ceil(count / gateways))).map((m) => m.jws)),
      );

    // Warm-up through every gateway, then the measured phase, all gateways at once.
    const warm = await each(WARMUP);
    await Promise.all(
      clients.map((c, k) => c.ok({ cmd: 'closed', target: SINGLE, bodies: warm[k]! })),
    );
    const bodies = await each(n);
    const sent = bodies.reduce((a, b) => a + b.length, 0);
    const db0 = await dbFigures(database);
    const cpu0 = servers.map((s) => s.cpuMs());
    const t0 = performance.now();
    await Promise.all(
      clients.map((c, k) => c.ok({ cmd: 'closed', target: SINGLE, bodies: bodies[k]! })),
    );
    const acceptSeconds = (performance.now() - t0) / 1000;
    const cpuMs = servers.reduce((a, s, k) => a + s.cpuMs() - cpu0[k]!, 0);
    const target = warm.reduce((a, b) => a + b.length, 0) + sent;
    const until = Date.now() + 120_000;
    while ((await delivered()) < target && Date.now() < until) await sleep(20);
    const deliverSeconds = (performance.now() - t0) / 1000;
    if ((await delivered()) < target) throw new Error('not every message was delivered');
    const db1 = await dbFigures(database);
    const writeTx = db1.writeTx - db0.writeTx;

    const rate = sent / acceptSeconds;
    if (gateways === 1) oneGatewayRate = rate;
    return {
      gateways,
      messages: sent,
      broker_confirm_rate: Math.round(confirmRate),
      accept_rate: Math.round(rate),
      ratio_vs_broker: round(rate / confirmRate),
      delivered_rate: Math.round(sent / deliverSeconds),
      gateway_cpu_ms_per_msg: round(cpuMs / sent),
      // The sequencer: write transactions (accept, queued and delivered together), how many
      // messages each carried, and the time per transaction, the bound on the lock's hold time.
      write_tx: writeTx,
      messages_per_write_tx: round(sent / writeTx, 2),
      ms_per_write_tx: round((deliverSeconds * 1000) / writeTx, 3),
      log_bytes_per_entry: Math.round(db1.logBytes / db1.entries),
      database_bytes_per_message: Math.round((db1.databaseBytes - db0.databaseBytes) / sent),
      ...(gateways > 1 && oneGatewayRate !== undefined
        ? { rate_vs_one_gateway: round(rate / oneGatewayRate) }
        : {}),
    };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(servers.map((s) => s.stop().catch(() => {})));
    for (const env of envs) rmSync(env['CASEBRIDGE_DATA_DIR']!, { recursive: true, force: true });
    rmSync(shared, { recursive: true, force: true });
    await dropTestDatabase(database);
    await vhost.cleanup();
  }
}
