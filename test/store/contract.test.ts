import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import pg from 'pg';
import { MemoryTree, rootHash, withNodes } from '../../src/audit/merkle.js';
import { ConfigError } from '../../src/errors.js';
import { localVault } from '../../src/retention/vault.js';
import { StoreUnavailableError, storeFailureOf } from '../../src/store/errors.js';
import { RELAY_ALIVE_MS, RELAY_BEAT_MS } from '../../src/store/postgres/outbox.js';
import { openPostgresStore, SCHEMA_VERSION, type PgStore } from '../../src/store/postgres/index.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import type { MessageChange } from '../../src/store/types.js';
import {
  createTestDatabase,
  databaseUrl,
  dropTestDatabase,
  PG_HOST,
  PG_PORT,
} from '../helpers/database.js';
import { FakeInbox, FakeOutbox } from '../transport/fakes.js';
import {
  describeOutboxContract,
  describeStoreContract,
  expectOneTree,
  GATEWAY,
  newMessage,
  storeOutbox,
  type StoreUnderTest,
} from './contract.js';

const STORE_MODULE = new URL('../../src/store/postgres/index.js', import.meta.url).href;
const VAULT_MODULE = new URL('../../src/retention/vault.js', import.meta.url).href;

async function sqliteStore(): Promise<StoreUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), 'casebridge-contract-'));
  const store = new SqliteStore({ dataDir: dir, gatewayActor: GATEWAY });
  return {
    store,
    raw: async (sql) => {
      const db = new Database(join(dir, 'casebridge.sqlite'));
      try {
        db.exec(sql);
      } finally {
        db.close();
      }
    },
    close: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A fresh database, and stores opened on it that share one vault (as gateways share a key directory). */
class PgFixture {
  readonly stores: PgStore[] = [];
  private constructor(
    readonly name: string,
    readonly dir: string,
  ) {}

  static async create(): Promise<PgFixture> {
    return new PgFixture(await createTestDatabase(), mkdtempSync(join(tmpdir(), 'casebridge-pg-')));
  }

  get url(): string {
    return databaseUrl(this.name);
  }

  async open(url = this.url): Promise<PgStore> {
    const store = await openPostgresStore({
      url,
      now: () => new Date(),
      gatewayActor: GATEWAY,
      vault: localVault(this.dir),
    });
    this.stores.push(store);
    return store;
  }

  async raw(sql: string): Promise<void> {
    const c = new pg.Client({ connectionString: this.url });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  }

  async close(): Promise<void> {
    for (const s of this.stores) await s.close();
    await dropTestDatabase(this.name);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function postgresStore(): Promise<StoreUnderTest> {
  const f = await PgFixture.create();
  const store = await f.open();
  return { store, raw: (sql) => f.raw(sql), close: () => f.close() };
}

describeStoreContract('SQLite', sqliteStore);
describeStoreContract('PostgreSQL', postgresStore);

describeOutboxContract('SQLite', async () => storeOutbox(await sqliteStore(), 5000));
describeOutboxContract('PostgreSQL', async () => storeOutbox(await postgresStore(), 5000));
describeOutboxContract('in-memory fake', async () => {
  const outbox = new FakeOutbox();
  const inbox = new FakeInbox();
  return {
    outbox,
    inbox,
    enqueue: () => {
      const item = outbox.add('VN-LS');
      inbox.known.add(item.messageId);
      return Promise.resolve({ id: item.messageId, digest: item.digest });
    },
    rescanMs: 0,
    close: () => Promise.resolve(),
  };
});

describe('store: PostgreSQL only (protocol §11)', function () {
  this.timeout(30_000);
  let f: PgFixture;
  beforeEach(async () => {
    f = await PgFixture.create();
  });
  afterEach(async () => {
    await f.close();
  });

  it('refuses UPDATE, DELETE and TRUNCATE of the log, checkpoints and history in the database', async function () {
    const store = await f.open();
    await store.accept(newMessage(), (i) => `r${i}`);
    for (const sql of [
      "UPDATE audit_entries SET entry = '\\x00' WHERE idx = 0",
      'TRUNCATE audit_entries',
      'TRUNCATE audit_nodes',
      'TRUNCATE checkpoints',
      "UPDATE message_history SET actor_name = 'someone else'",
      'DELETE FROM message_history',
      'TRUNCATE message_history',
    ]) {
      let err: unknown;
      try {
        await f.raw(sql);
      } catch (e) {
        err = e;
      }
      expect((err as Error | undefined)?.message, sql).to.match(/append-only/);
    }
    await expectOneTree(store);
  });

  it('keeps one gap-free log when two stores append on one database at once', async function () {
    const [a, b] = [await f.open(), await f.open()];
    const writes = [];
    for (let i = 0; i < 150; i++) {
      const s = i % 2 === 0 ? a : b;
      writes.push(
        i % 3 === 0
          ? s.append({ event: 'registry.loaded', actor: GATEWAY })
          : s.accept(newMessage(), (k) => `r${k}`),
      );
    }
    await Promise.all(writes);
    const size = await expectOneTree(a);
    expect(size).to.equal(150);
    // The other store reads the same tree: size and root are the database's, not cached.
    const entries = await b.entries(0, await b.treeSize());
    const ref = new MemoryTree();
    for (const e of entries) ref.append(e.bytes);
    const root = await withNodes(
      (src) => rootHash(size, src),
      (c) => b.nodesAt(c),
    );
    expect(root.equals(ref.root())).to.equal(true);
  });

  it('accepts one id submitted to two stores at once exactly once', async function () {
    const [a, b] = [await f.open(), await f.open()];
    for (let round = 0; round < 5; round++) {
      const m = newMessage();
      const others = Array.from({ length: 10 }, () => newMessage());
      const outcomes = await Promise.all([
        a.accept(m, (k) => `a${k}`),
        b.accept({ ...m }, (k) => `b${k}`),
        ...others.map((o, k) => (k % 2 === 0 ? a : b).accept(o, (i) => `r${i}`)),
      ]);
      expect(
        outcomes
          .slice(0, 2)
          .map((o) => o.kind)
          .sort(),
      ).to.deep.equal(['accepted', 'replay']);
      expect(outcomes.slice(2).every((o) => o.kind === 'accepted')).to.equal(true);
    }
    expect(await expectOneTree(a)).to.equal(55);
  });

  it('splits the outbox between two stores without handing a row to both', async function () {
    const [a, b] = [await f.open(), await f.open()];
    const ids = new Set<string>();
    await Promise.all(
      Array.from({ length: 60 }, async () => {
        const m = newMessage();
        await a.accept(m, (k) => `r${k}`);
        ids.add(m.id);
      }),
    );
    const got: string[] = [];
    const takeA: string[] = [];
    const takeB: string[] = [];
    for (let round = 0; round < 10; round++) {
      const [x, y] = await Promise.all([a.dueOutbox(7, new Set()), b.dueOutbox(7, new Set())]);
      takeA.push(...x.map((i) => i.messageId));
      takeB.push(...y.map((i) => i.messageId));
    }
    got.push(...takeA, ...takeB);
    expect(new Set(got).size).to.equal(got.length, 'no row handed out twice');
    expect(new Set(got)).to.deep.equal(ids);
    expect(takeA.length).to.be.above(0);
    expect(takeB.length).to.be.above(0);
    // A relay that gives up its claim (reschedule) lets the other take the row.
    const one = takeA[0]!;
    await a.reschedule(one, 0, 'nack');
    expect((await b.dueOutbox(10, new Set())).map((i) => i.messageId)).to.deep.equal([one]);
  });

  it('lets another store take an outbox row once the claim of a dead one lapsed', async function () {
    const a = await f.open();
    const b = await f.open();
    const m = newMessage();
    await a.accept(m, (k) => `r${k}`);
    expect((await a.dueOutbox(10, new Set())).map((i) => i.messageId)).to.deep.equal([m.id]);
    expect(await b.dueOutbox(10, new Set())).to.deep.equal([]);
    // The claim's end, as if 30 s had passed on the database's clock.
    await f.raw("UPDATE outbox SET claim_until = now() - interval '1 second'");
    expect((await b.dueOutbox(10, new Set())).map((i) => i.messageId)).to.deep.equal([m.id]);
    // The late publish of the first relay and the takeover's both reach the inbox once.
    expect(await b.deliver(m.id, m.digest, GATEWAY)).to.equal('delivered');
    expect(await a.deliver(m.id, m.digest, GATEWAY)).to.equal('duplicate');
    await a.markQueued([m.id], GATEWAY);
    await b.markQueued([m.id], GATEWAY);
    expect(await a.outboxLag()).to.equal(0);
    await expectOneTree(a);
  });

  it('frees the outbox rows of a killed store within seconds, by its stopped heartbeat', async function () {
    const m = newMessage();
    const b = await f.open();
    await b.accept(m, (k) => `r${k}`);
    // Another gateway process claims the row, then dies with SIGKILL: no close, no release.
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { openPostgresStore } from ${JSON.stringify(STORE_MODULE)};
         import { localVault } from ${JSON.stringify(VAULT_MODULE)};
         const store = await openPostgresStore({ url: process.env.URL, now: () => new Date(),
           gatewayActor: JSON.parse(process.env.ACTOR), vault: localVault(process.env.DIR) });
         const got = await store.dueOutbox(10, new Set());
         process.stdout.write(JSON.stringify(got.map((i) => i.messageId)) + '\\n');
         setInterval(() => {}, 1000);`,
      ],
      {
        env: { ...process.env, URL: f.url, DIR: f.dir, ACTOR: JSON.stringify(GATEWAY) },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
    expect(JSON.parse(line)).to.deep.equal([m.id]);
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(
      await b.dueOutbox(10, new Set()),
      'claimed by the other, alive a moment ago',
    ).to.deep.equal([]);
    const t0 = performance.now();
    let got: string[] = [];
    while (got.length === 0 && performance.now() - t0 < 10_000) {
      await new Promise((r) => setTimeout(r, 200));
      got = (await b.dueOutbox(10, new Set())).map((i) => i.messageId);
    }
    expect(got).to.deep.equal([m.id]);
    // The heartbeat's lifetime and a renewal, far inside the 30 s claim.
    expect(performance.now() - t0).to.be.below(RELAY_ALIVE_MS + 2 * RELAY_BEAT_MS);
  });

  it('frees the outbox rows of a store that closes at once', async function () {
    const [a, b] = [await f.open(), await f.open()];
    const m = newMessage();
    await a.accept(m, (k) => `r${k}`);
    expect((await a.dueOutbox(10, new Set())).map((i) => i.messageId)).to.deep.equal([m.id]);
    expect(await b.dueOutbox(10, new Set())).to.deep.equal([]);
    await a.close();
    expect((await b.dueOutbox(10, new Set())).map((i) => i.messageId)).to.deep.equal([m.id]);
  });

  it('moves the signer lease to another store once the holder stops renewing', async function () {
    const [a, b] = [await f.open(), await f.open()];
    expect(await a.lease.acquire('gw-a', 1000)).to.equal(true);
    expect(await b.lease.acquire('gw-b', 1000)).to.equal(false);
    expect(await a.lease.acquire('gw-a', 1000)).to.equal(true);
    const stopped = Date.now();
    let took = false;
    while (!took && Date.now() - stopped < 3000) {
      took = await b.lease.acquire('gw-b', 1000);
      if (!took) await new Promise((r) => setTimeout(r, 100));
    }
    expect(took).to.equal(true);
    expect(Date.now() - stopped).to.be.below(1500);
    expect(await a.lease.acquire('gw-a', 1000)).to.equal(false);
    await b.lease.release('gw-b');
    expect(await a.lease.acquire('gw-a', 1000)).to.equal(true);
  });

  it('passes change events to the other store after the commit, without names', async function () {
    const [a, b] = [await f.open(), await f.open()];
    const atB: MessageChange[] = [];
    const atA: MessageChange[] = [];
    b.onChange((c) => atB.push(c));
    a.onChange((c) => atA.push(c));
    const m = newMessage();
    await a.accept(m, (k) => `r${k}`);
    await a.deliver(m.id, m.digest, GATEWAY);
    const until = Date.now() + 3000;
    while (atB.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(atB.map((c) => `${c.event}:${c.message.id}`)).to.deep.equal([`delivered:${m.id}`]);
    expect(atA).to.have.length(1, 'its own change once, not again from NOTIFY');
  });

  it('says when its change feed resumes after a gap, and passes changes again', async function () {
    const [a, b] = [await f.open(), await f.open()];
    let gaps = 0;
    b.onGap(() => gaps++);
    const atB: MessageChange[] = [];
    b.onChange((c) => atB.push(c));
    const waitFor = async (ok: () => boolean, what: string) => {
      const until = Date.now() + 5000;
      while (!ok() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(ok(), what).to.equal(true);
    };
    // The server ends every LISTEN connection of this database (as a failover would).
    await f.raw(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE datname = current_database() AND query LIKE 'LISTEN%'`);
    const m = newMessage();
    await waitFor(() => gaps === 1, 'one gap reported once the feed listens again');
    await a.accept(m, (k) => `r${k}`);
    await a.deliver(m.id, m.digest, GATEWAY);
    await waitFor(() => atB.length === 1, 'a change after the gap reaches the other store');
    expect(atB[0]!.message.id).to.equal(m.id);
    expect(gaps).to.equal(1);
  });

  it('stops the start on a schema version it does not know, in one line', async function () {
    const a = await f.open();
    await a.close();
    await f.raw(`UPDATE meta SET value = '${SCHEMA_VERSION + 1}' WHERE key = 'schema_version'`);
    let err: unknown;
    try {
      await f.open();
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as ConfigError).message).to.equal(
      `CASEBRIDGE_DATABASE_URL: holds store schema version ${SCHEMA_VERSION + 1}; this gateway knows up to ${SCHEMA_VERSION}`,
    );
  });

  it('migrates once when two gateways start together', async function () {
    await Promise.all([f.open(), f.open(), f.open()]);
    const c = new pg.Client({ connectionString: f.url });
    await c.connect();
    const { rows } = await c.query<{ value: string }>(
      "SELECT value FROM meta WHERE key = 'schema_version'",
    );
    await c.end();
    expect(rows).to.deep.equal([{ value: String(SCHEMA_VERSION) }]);
  });

  it('names CASEBRIDGE_DATABASE_URL, never the password, when the database cannot be reached', async function () {
    let err: unknown;
    try {
      await f.open(`postgres://casebridge:s3cret-pw@127.0.0.1:1/${f.name}`);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg).to.match(/^CASEBRIDGE_DATABASE_URL: cannot reach the database at 127\.0\.0\.1:1\//);
    expect(msg).not.to.contain('s3cret');
    expect(msg).not.to.contain('\n');
  });

  it('answers writes with UNAVAILABLE while the server is out of reach, reports it, and recovers', async function () {
    const proxy = await tcpProxy(PG_HOST, PG_PORT);
    try {
      const store = await f.open(`postgres://postgres@127.0.0.1:${proxy.port}/${f.name}`);
      await store.accept(newMessage(), (k) => `r${k}`);
      expect((await store.health()).failure).to.equal(undefined);
      proxy.down();
      let err: unknown;
      try {
        await store.accept(newMessage(), (k) => `r${k}`);
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(StoreUnavailableError);
      expect((err as StoreUnavailableError).reason).to.equal('unreachable');
      expect((err as StoreUnavailableError).retryAfterS).to.be.above(0);
      expect((await store.health()).failure).to.equal('unreachable');
      await proxy.up();
      const back = await store.accept(newMessage(), (k) => `r${k}`);
      expect(back.kind).to.equal('accepted');
      expect((await store.health()).failure).to.equal(undefined);
      expect(await expectOneTree(store)).to.equal(2);
    } finally {
      proxy.close();
    }
  });

  it('classifies PostgreSQL failures to wait out', function () {
    expect(storeFailureOf({ code: '57P01' })).to.equal('unreachable');
    expect(storeFailureOf({ code: '08006' })).to.equal('unreachable');
    expect(storeFailureOf({ code: 'ECONNREFUSED' })).to.equal('unreachable');
    expect(storeFailureOf(new Error('Connection terminated unexpectedly'))).to.equal('unreachable');
    expect(storeFailureOf({ code: '53100' })).to.equal('disk-full');
    expect(storeFailureOf({ code: '23505' })).to.equal(undefined);
  });
});

/** A TCP relay to the server that the test can cut and restore: the server "goes away" without stopping it. */
async function tcpProxy(
  host: string,
  port: number,
): Promise<{
  port: number;
  down(): void;
  up(): Promise<void>;
  close(): void;
}> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let listenPort = 0;
  const start = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = connect(port, host);
        sockets.add(client);
        sockets.add(upstream);
        client.pipe(upstream).pipe(client);
        const end = () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        client.on('error', end).on('close', end);
        upstream.on('error', end).on('close', end);
      });
      server.listen(listenPort, '127.0.0.1', () => {
        listenPort = (server!.address() as { port: number }).port;
        resolve();
      });
    });
  await start();
  const down = () => {
    server?.close();
    server = undefined;
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return { port: listenPort, down, up: start, close: down };
}
