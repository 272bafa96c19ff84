import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import Database from 'better-sqlite3';
import type { Envelope } from '../../src/envelope/types.js';
import { ConfigError } from '../../src/errors.js';
import { SCHEMA_VERSION } from '../../src/store/schema.sql.js';
import { SqliteStore } from '../../src/store/index.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { SCHEMA_V1_SQL } from '../fixtures/store-v1.js';
import { ON_POSTGRES } from '../helpers/database.js';

const OFFICER = ['VN-LS', 'officer', 'sha256:' + 'b'.repeat(64)] as const;
const SYSTEM = ['CN-GX-CZ', 'system', 'sha256:' + 'a'.repeat(64)] as const;

/** A version-1 row: the decision was the status then. */
function insertV1(
  db: Database.Database,
  env: Envelope,
  status: string,
  decision: string | null,
  history: string[],
): void {
  const payload = Buffer.from(JSON.stringify(env)).toString('base64url');
  const { lastInsertRowid } = db
    .prepare(
      `INSERT INTO messages (id, digest, case_ref, type, from_agency, to_agency, priority,
       priority_rank, respond_by, respond_by_key, in_reply_to, created_at, accepted_at, log_index,
       status, decision, claimed_by) VALUES (?, 'sha256:0', ?, ?, ?, ?, ?, 1, ?, ?, NULL, ?, ?, 0, ?, ?, ?)`,
    )
    .run(
      env.id,
      env.caseRef,
      env.type,
      env.from,
      env.to,
      env.priority,
      env.respondBy ?? null,
      env.respondBy ? Date.parse(env.respondBy) : Number.MAX_SAFE_INTEGER,
      env.createdAt,
      env.createdAt,
      status,
      decision,
      status === 'claimed' ? OFFICER[2] : null,
    );
  db.prepare('INSERT INTO message_bodies (seq, jws, response) VALUES (?, ?, ?)').run(
    lastInsertRowid,
    `eyJhbGciOiJFUzI1NiJ9.${payload}.c2ln`,
    '{}',
  );
  history.forEach((s, i) => {
    db.prepare(
      `INSERT INTO message_history (message_id, status, at, actor_agency, actor_role, actor_subject)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ).run(
      env.id,
      s,
      new Date(Date.parse(env.createdAt) + i).toISOString(),
      ...(i < 3 ? SYSTEM : OFFICER),
    );
  });
}

describe('store: schema migration 1 → 2', function () {
  before(function () {
    // These cases open the embedded store's file directly; in the PostgreSQL run the
    // same properties are covered by test/store/contract.test.ts.
    if (ON_POSTGRES) this.skip();
  });
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'casebridge-mig-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('splits status and decision, keeps claims, recomputes freeze deadlines and history events', async function () {
    const db = new Database(join(dir, 'casebridge.sqlite'));
    db.exec(SCHEMA_V1_SQL);
    db.prepare("INSERT INTO meta (key, value) VALUES ('schema_version', '1')").run();
    const base = ['accepted', 'queued', 'delivered'];
    const freeze = sampleEnvelope('funds.freeze', {
      respondBy: new Date(Date.now() + 6 * 3600_000).toISOString(),
    });
    freeze.body['executeBy'] = new Date(Date.now() + 4 * 3600_000).toISOString();
    insertV1(db, freeze, 'claimed', null, [...base, 'claimed']);
    const rejected = sampleEnvelope('evidence.request');
    insertV1(db, rejected, 'rejected', 'rejected', [...base, 'claimed', 'rejected']);
    const accepted = sampleEnvelope('evidence.request');
    insertV1(db, accepted, 'accepted', 'accepted', [...base, 'claimed', 'accepted']);
    const released = sampleEnvelope('suspect.handover');
    insertV1(db, released, 'delivered', null, [...base, 'claimed', 'delivered']);
    db.close();

    const store = new SqliteStore({ dataDir: dir });
    try {
      const f = (await store.getMessage(freeze.id))!;
      expect(f).to.include({
        status: 'claimed',
        decision: null,
        deadline: freeze.body['executeBy'],
      });
      expect(f.claim).to.include({ subject: OFFICER[2] });
      expect(Date.parse(f.claim!.expiresAt)).to.be.greaterThan(Date.now());
      expect(await store.getMessage(rejected.id)).to.include({
        status: 'decided',
        decision: 'rejected',
      });
      // `accepted` was final before; it is not now, and the claim was already gone.
      expect(await store.getMessage(accepted.id)).to.include({
        status: 'delivered',
        decision: 'accepted',
      });
      expect(
        (await store.history(accepted.id)).map((h) => [h.status, h.event, h.decision]),
      ).to.deep.equal([
        ['accepted', 'accepted', undefined],
        ['queued', 'queued', undefined],
        ['delivered', 'delivered', undefined],
        ['claimed', 'claimed', undefined],
        ['delivered', 'decided', 'accepted'],
      ]);
      expect((await store.history(rejected.id)).at(-1)).to.deep.include({
        status: 'decided',
        event: 'decided',
      });
      expect((await store.history(released.id)).at(-1)).to.deep.include({
        status: 'delivered',
        event: 'released',
      });
      const list = await store.list({
        agency: 'VN-LS',
        direction: 'received',
        status: 'open',
        limit: 10,
      });
      expect(list.items.map((m) => m.id)).to.include.members([freeze.id, accepted.id, released.id]);
      expect(list.items.map((m) => m.id)).to.not.include(rejected.id);
    } finally {
      store.close();
    }
    const meta = new Database(join(dir, 'casebridge.sqlite'), { readonly: true });
    try {
      expect(
        meta.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get(),
      ).to.deep.equal({ value: String(SCHEMA_VERSION) });
    } finally {
      meta.close();
    }
    // Opening again changes nothing.
    new SqliteStore({ dataDir: dir }).close();
  });

  it('refuses a store of a newer schema version (protocol §11)', function () {
    new SqliteStore({ dataDir: dir }).close();
    const db = new Database(join(dir, 'casebridge.sqlite'));
    db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema_version'").run();
    db.close();
    expect(() => new SqliteStore({ dataDir: dir }))
      .to.throw(ConfigError)
      .with.property('variable', 'CASEBRIDGE_DATA_DIR');
  });
});
