/**
 * Retention with crypto-shredding (docs/operations.md, "Data at rest"): message bytes
 * are sealed at rest; past the retention period the content is gone from the
 * database and from a copy taken before, even with the data key, while the audit
 * log, its proofs and an offline verification still hold.
 */
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { startGateway } from '../../src/app.js';
import { verifyCheckpoint } from '../../src/audit/checkpoint.js';
import { leafHash, verifyInclusion } from '../../src/audit/merkle.js';
import { loadConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import {
  KeyMissingError,
  MessageVault,
  FileEpochKeys,
  SealError,
  Shredder,
  epochOf,
  expiredEpochs,
  openVault,
  readDataKey,
} from '../../src/retention/index.js';
import { open } from '../../src/retention/seal.js';
import { SqliteStore } from '../../src/store/index.js';
import { receiptMaker } from '../../src/submission/submit.js';
import { createPrivateKey } from 'node:crypto';
import { parsePemChain } from '../../src/pki/pem.js';
import { digestOf } from '../../src/envelope/jws.js';
import { envelopeDigest } from '../../src/messages/replay.js';
import { sampleEnvelope, SAMPLE_PERSONAL_STRINGS } from '../fixtures/envelopes.js';
import {
  call,
  eventually,
  identity,
  signAs,
  startTestGateway,
  submit,
  testEnv,
  type Identity,
  type TestGateway,
} from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';
import { databaseNameOf, dropTestDatabase, pgDatabaseBytes, pgExec } from '../helpers/database.js';

const DAY = 86_400_000;
const A = 'CN-GX-CZ';
const MAIN = join(fileURLToPath(new URL('../../../', import.meta.url)), 'dist/src/cli/main.js');

interface SealedRow {
  sealed: Buffer | null;
  wrapped_key: Buffer | null;
  epoch: string | null;
  shredded_at: string | null;
}

function sealedRow(dbFile: string, id: string): SealedRow {
  const db = new Database(dbFile, { readonly: true });
  try {
    return db
      .prepare(
        `SELECT b.sealed, b.wrapped_key, b.epoch, b.shredded_at FROM message_bodies b
         JOIN messages m ON m.seq = b.seq WHERE m.id = ?`,
      )
      .get(id) as SealedRow;
  } finally {
    db.close();
  }
}

/** The sealed columns of a message in the gateway's database, on either engine. */
async function storedRow(t: TestGateway, id: string): Promise<SealedRow> {
  const url = t.gw.config.databaseUrl;
  if (url === undefined) return sealedRow(join(t.dataDir, 'casebridge.sqlite'), id);
  const [row] = await pgExec(
    url,
    `SELECT b.sealed, b.wrapped_key, b.epoch, b.shredded_at FROM message_bodies b
     JOIN messages m ON m.seq = b.seq WHERE m.id = $1`,
    [id],
  );
  return row as SealedRow;
}

/**
 * The gateway's database as bytes: SQLite's main file and write-ahead log, or every
 * value of PostgreSQL's tables (the server's files are not the test's to read; old
 * row versions there are what the destroyed epoch key leaves unreadable).
 */
async function storedBytes(t: TestGateway): Promise<Buffer> {
  const url = t.gw.config.databaseUrl;
  return url === undefined ? dbBytes(t.dataDir) : pgDatabaseBytes(url);
}

/** Every byte of the database: main file and write-ahead log. */
function dbBytes(dir: string): Buffer {
  const parts = ['casebridge.sqlite', 'casebridge.sqlite-wal']
    .map((f) => join(dir, f))
    .filter((p) => existsSync(p))
    .map((p) => readFileSync(p));
  return Buffer.concat(parts);
}

describe('retention: crypto-shredding of message content', function () {
  this.timeout(60_000);

  describe('through the gateway', function () {
    let t: TestGateway;
    let offset = 0;
    let aSys: Identity;
    let aAuditor: Identity;
    let id: string;
    let jws: string;
    let copyDir: string;

    before(async function () {
      t = await startTestGateway(
        { CASEBRIDGE_RETENTION_DAYS: '30', CASEBRIDGE_EXPORT_GRANT: A },
        { now: () => new Date(Date.now() + offset) },
      );
      [aSys, aAuditor] = await Promise.all([identity(A, 'system'), identity(A, 'auditor')]);
      const env = sampleEnvelope('evidence.request');
      id = env.id;
      jws = signAs(env, aSys);
      expect((await submit(t.gw, aSys, jws)).status).to.equal(202);
      // Delivered, and out of the outbox: a row still there would be carried, not shredded.
      await eventually(
        async () =>
          (await t.gw.store.getMessage(id))?.status === 'delivered' &&
          (await t.gw.store.outboxLag()) === 0,
        10_000,
        'delivery',
      );
      copyDir = mkdtempSync(join(tmpdir(), 'casebridge-backup-'));
    });
    after(async () => {
      await t?.stop();
      if (copyDir) rmSync(copyDir, { recursive: true, force: true });
    });

    it('stores the JWS sealed: neither it nor any body text is in the database files', async function () {
      const bytes = await storedBytes(t);
      expect(bytes.length).to.be.above(0);
      const payload = jws.split('.')[1]!;
      expect(bytes.includes(Buffer.from(payload.slice(0, 40)))).to.equal(false);
      for (const s of SAMPLE_PERSONAL_STRINGS)
        expect(bytes.includes(Buffer.from(s)), s).to.equal(false);
      expect((await t.gw.store.getMessage(id))!.jws).to.equal(jws);
    });

    it('after retention the content is gone from the database and from a copy taken before, given the data key', async function () {
      // A backup, taken while the message was live: a copy of the files, or what a dump
      // of PostgreSQL would hold.
      let before: SealedRow;
      if (t.gw.config.databaseUrl === undefined) {
        for (const f of ['casebridge.sqlite', 'casebridge.sqlite-wal']) {
          if (existsSync(join(t.dataDir, f))) copyFileSync(join(t.dataDir, f), join(copyDir, f));
        }
        before = sealedRow(join(copyDir, 'casebridge.sqlite'), id);
      } else {
        before = await storedRow(t, id);
      }
      expect(before.sealed).to.be.instanceOf(Buffer);
      const pki = await getTestPki();
      const keyDir = join(t.dataDir, 'keys');
      const sealed = () => ({
        sealed: before.sealed!,
        wrappedKey: before.wrapped_key!,
        epoch: before.epoch!,
      });
      // Control: before shredding, the copy opens with the data key and the key directory.
      expect(openVault(pki.path('data/data.key.pem'), keyDir).open(id, sealed())).to.equal(jws);

      // Nothing is due within the period...
      offset = 29 * DAY;
      expect((await t.gw.shredder!.runOnce()).epochs).to.deep.equal([]);
      // ...and everything of the message's day is once it has passed.
      offset = 31 * DAY + DAY;
      const report = await t.gw.shredder!.runOnce();
      expect(report.epochs).to.deep.equal([before.epoch]);
      expect(report.shredded).to.equal(1);
      expect(existsSync(join(keyDir, `epoch-${before.epoch}.key`))).to.equal(false);

      // The database: no sealed bytes, no wrapped key, not even in free pages or the WAL.
      const after = await storedRow(t, id);
      expect(after).to.include({ sealed: null, wrapped_key: null, epoch: null });
      expect(after.shredded_at).to.be.a('string');
      const now = await storedBytes(t);
      expect(now.includes(before.sealed!.subarray(20, 60))).to.equal(false);
      expect(now.includes(before.wrapped_key!.subarray(13, 45))).to.equal(false);

      // The copy still holds the ciphertext, but nothing opens it any more.
      const vault = openVault(pki.path('data/data.key.pem'), keyDir);
      expect(() => vault.open(id, sealed())).to.throw(KeyMissingError);
      // The data key alone does not open the message key: it only ever wrapped epoch keys.
      const dataKey = readDataKey(pki.path('data/data.key.pem'));
      expect(() =>
        open(dataKey, before.wrapped_key!, `casebridge message key v1 ${id} ${before.epoch}`),
      ).to.throw(SealError);
    });

    it('reads say the content is shredded; the record, its history and its proof remain', async function () {
      const res = await call(t.gw, aSys, 'GET', `/v1/messages/${id}`);
      expect(res.status, res.text).to.equal(200);
      const body = res.json<Record<string, unknown>>();
      expect(body).to.include({ id, content: 'shredded', status: 'delivered' });
      expect(body).not.to.have.property('jws');
      expect(body).not.to.have.property('envelope');
      expect(body['shreddedAt']).to.be.a('string');
      expect((body['history'] as unknown[]).length).to.be.at.least(3);
      const list = await call(t.gw, aSys, 'GET', '/v1/messages?direction=sent');
      const item = list
        .json<{ items: { id: string; content: string }[] }>()
        .items.find((m) => m.id === id);
      expect(item?.content).to.equal('shredded');

      await eventually(
        async () => (await t.gw.store.latestCheckpoint())?.size === (await t.gw.store.treeSize()),
        5_000,
        'checkpoint',
      );
      const proof = (await call(t.gw, aSys, 'GET', `/v1/messages/${id}/proof`)).json<{
        index: number;
        size: number;
        hashes: string[];
        checkpoint: string;
      }>();
      const key = (await call(t.gw, aSys, 'GET', '/v1/audit/key')).text.trim();
      const cp = verifyCheckpoint(proof.checkpoint, key);
      const [entry] = await t.gw.store.entries(proof.index, proof.index + 1);
      expect(
        verifyInclusion(
          leafHash(entry!.bytes),
          proof.index,
          proof.size,
          proof.hashes.map((h) => Buffer.from(h, 'base64')),
          cp.root,
        ),
      ).to.equal(true);
      const events = (await t.gw.store.entries(0, await t.gw.store.treeSize()))
        .map((e) => JSON.parse(e.bytes.toString('utf8')) as { event: string; messageId?: string })
        .filter((e) => e.messageId === id)
        .map((e) => e.event);
      expect(events).to.deep.equal([
        'message.accepted',
        'message.queued',
        'message.delivered',
        'message.shredded',
      ]);
    });

    it('an export with messages after shredding still passes casebridge audit verify', async function () {
      const res = await call(t.gw, aAuditor, 'GET', '/v1/audit/export?messages=true');
      expect(res.status, res.text).to.equal(200);
      const lines = res.text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { kind: string; id?: string });
      expect(lines.some((l) => l.kind === 'message' && l.id === id)).to.equal(false);
      const pki = await getTestPki();
      const file = join(copyDir, 'bundle.ndjson');
      writeFileSync(file, res.text);
      const vkey = (await call(t.gw, aAuditor, 'GET', '/v1/audit/key')).text.trim();
      const r = spawnSync(
        process.execPath,
        [MAIN, 'audit', 'verify', file, '--vkey', vkey, '--trust', pki.path('trust.pem')],
        { encoding: 'utf8' },
      );
      expect(r.status, r.stdout + r.stderr).to.equal(0);
      expect(r.stdout).to.match(/^OK /);
    });
  });

  describe('in the store', function () {
    let dir: string;
    let store: SqliteStore | undefined;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'casebridge-retention-'));
    });
    afterEach(() => {
      store?.close();
      store = undefined;
      rmSync(dir, { recursive: true, force: true });
    });

    it('keeps a message the transport has not taken yet: its key moves to the current epoch', async function () {
      let clock = new Date('2026-03-01T10:00:00.000Z');
      const now = () => clock;
      const keys = new FileEpochKeys(
        join(dir, 'keys'),
        readDataKey((await getTestPki()).path('data/data.key.pem')),
      );
      const vault = new MessageVault(keys);
      store = new SqliteStore({ dataDir: dir, now, vault });
      const pki = await getTestPki();
      const sys = await identity(A, 'system');
      const env = sampleEnvelope('evidence.request');
      const jws = signAs(env, sys);
      const digest = digestOf(jws);
      const gateway = {
        key: createPrivateKey(pki.files['gateway/gateway.key.pem']!),
        chain: parsePemChain(pki.files['gateway/gateway.crt.pem']!),
      };
      const actor = { agency: A, role: 'system', subject: `sha256:${'a'.repeat(64)}` };
      const outcome = await store.accept(
        { id: env.id, digest, envelopeDigest: envelopeDigest(env), jws, envelope: env, actor },
        receiptMaker(env, digest, gateway),
      );
      expect(outcome.kind).to.equal('accepted');
      expect(keys.list()).to.deep.equal(['2026-03-01']);

      clock = new Date('2026-04-15T00:00:00.000Z');
      const gw = { agency: 'GW-DEMO', role: 'gateway', subject: `sha256:${'b'.repeat(64)}` };
      const shredder = new Shredder({ store, keys, retentionDays: 30, actor: gw, now });
      const report = await shredder.runOnce();
      expect(report).to.deep.include({ epochs: ['2026-03-01'], shredded: 0, carried: 1 });
      expect(keys.list()).to.deep.equal(['2026-04-15']);
      expect(await store.liveEpochs()).to.deep.equal(['2026-04-15']);
      const [item] = await store.dueOutbox(10, new Set());
      expect(item?.jws).to.equal(jws);
      expect((await store.getMessage(env.id))?.jws).to.equal(jws);
    });

    it('migrates a version 2 store: plaintext bodies sealed, the old pages zeroed', async function () {
      const sys = await identity(A, 'system');
      const env = sampleEnvelope('evidence.request');
      const jws = signAs(env, sys);
      // A version 2 store holds message_bodies (seq, jws, response) in plaintext.
      store = new SqliteStore({ dataDir: dir });
      const pki = await getTestPki();
      const gateway = {
        key: createPrivateKey(pki.files['gateway/gateway.key.pem']!),
        chain: parsePemChain(pki.files['gateway/gateway.crt.pem']!),
      };
      const actor = { agency: A, role: 'system', subject: `sha256:${'a'.repeat(64)}` };
      const digest = digestOf(jws);
      await store.accept(
        { id: env.id, digest, envelopeDigest: envelopeDigest(env), jws, envelope: env, actor },
        receiptMaker(env, digest, gateway),
      );
      store.close();
      store = undefined;
      const file = join(dir, 'casebridge.sqlite');
      const db = new Database(file);
      const response = (
        db.prepare('SELECT response FROM message_bodies').get() as { response: string }
      ).response;
      db.exec(`DROP TABLE message_bodies;
        CREATE TABLE message_bodies (seq INTEGER PRIMARY KEY, jws TEXT NOT NULL, response TEXT NOT NULL);`);
      db.prepare('INSERT INTO message_bodies (seq, jws, response) VALUES (1, ?, ?)').run(
        jws,
        response,
      );
      db.prepare("UPDATE meta SET value = '2' WHERE key = 'schema_version'").run();
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
      expect(dbBytes(dir).includes(Buffer.from(jws.split('.')[1]!.slice(0, 40)))).to.equal(true);

      store = new SqliteStore({ dataDir: dir });
      expect((await store.getMessage(env.id))?.jws).to.equal(jws);
      expect((await store.getMessage(env.id))?.handling).to.equal(env.handling ?? 'H1');
      store.close();
      store = undefined;
      const check = new Database(file);
      check.pragma('wal_checkpoint(TRUNCATE)');
      check.close();
      expect(dbBytes(dir).includes(Buffer.from(jws.split('.')[1]!.slice(0, 40)))).to.equal(false);
    });

    it('expires an epoch only once its whole day is older than the period', function () {
      const epochs = ['2026-01-01', '2026-01-02'];
      expect(expiredEpochs(epochs, new Date('2026-01-31T23:59:59.999Z'), 30)).to.deep.equal([]);
      expect(expiredEpochs(epochs, new Date('2026-02-01T00:00:00.000Z'), 30)).to.deep.equal([
        '2026-01-01',
      ]);
      expect(epochOf(new Date('2026-01-02T23:59:59.999Z'))).to.equal('2026-01-02');
    });
  });

  describe('configuration', function () {
    it('stops the start with one line naming CASEBRIDGE_DATA_KEY or CASEBRIDGE_KEY_DIR', async function () {
      const bad = join(mkdtempSync(join(tmpdir(), 'casebridge-dk-')), 'data.key.pem');
      writeFileSync(bad, 'not a key\n');
      const env = await testEnv({ CASEBRIDGE_DATA_KEY: bad });
      const e1 = await startGateway({ config: loadConfig(env) }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(e1).to.be.instanceOf(ConfigError);
      expect((e1 as ConfigError).variable).to.equal('CASEBRIDGE_DATA_KEY');

      // A store whose key directory was lost: the start refuses rather than serve unreadable rows.
      const t = await startTestGateway();
      const sys = await identity(A, 'system');
      expect(
        (await submit(t.gw, sys, signAs(sampleEnvelope('evidence.request'), sys))).status,
      ).to.equal(202);
      await t.gw.close();
      rmSync(join(t.dataDir, 'keys'), { recursive: true, force: true });
      // The same store again: the data directory, and on PostgreSQL the same database.
      const url = t.gw.config.databaseUrl;
      const again = await testEnv({
        CASEBRIDGE_DATA_DIR: t.dataDir,
        ...(url === undefined ? {} : { CASEBRIDGE_DATABASE_URL: url }),
      });
      const e2 = await startGateway({ config: loadConfig(again) }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(e2).to.be.instanceOf(ConfigError);
      expect((e2 as ConfigError).variable).to.equal('CASEBRIDGE_KEY_DIR');
      rmSync(t.dataDir, { recursive: true, force: true });
      if (url !== undefined) await dropTestDatabase(databaseNameOf(url));
    });
  });
});
