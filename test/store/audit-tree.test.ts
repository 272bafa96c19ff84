import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import {
  consistencyProof,
  inclusionProof,
  leafHash,
  MemoryTree,
  rootHash,
  verifyConsistency,
  verifyInclusion,
} from '../../src/audit/merkle.js';
import type { AuditActor } from '../../src/audit/types.js';
import { SqliteStore } from '../../src/store/index.js';
import { ON_POSTGRES } from '../helpers/database.js';

const ACTOR: AuditActor = {
  agency: 'GW-DEMO',
  role: 'gateway',
  subject: 'sha256:' + 'a'.repeat(64),
};

async function fill(store: SqliteStore, n: number): Promise<void> {
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    writes.push(
      store.append({
        event: 'message.queued',
        actor: ACTOR,
        digest: 'sha256:' + createHash('sha256').update(String(i)).digest('hex'),
      }),
    );
  }
  await Promise.all(writes);
}

/** An independent tree over the stored bytes, to check the store's nodes against. */
async function reference(store: SqliteStore): Promise<MemoryTree> {
  const tree = new MemoryTree();
  for (const e of await store.entries(0, await store.treeSize())) tree.append(e.bytes);
  return tree;
}

describe('store: the audit Merkle tree in SQLite (protocol §6.2)', function () {
  before(function () {
    // These cases open the embedded store's file directly; in the PostgreSQL run the
    // same properties are covered by test/store/contract.test.ts.
    if (ON_POSTGRES) this.skip();
  });
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'casebridge-tree-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('serves inclusion and consistency proofs that verify for every index and size up to 300', async function () {
    const store = new SqliteStore({ dataDir: dir });
    await fill(store, 300);
    const ref = await reference(store);
    const entries = await store.entries(0, 300);
    const src = store.nodes();
    for (let size = 1; size <= 300; size++) {
      const root = ref.root(size);
      expect(rootHash(size, src).equals(root), `root ${size}`).to.equal(true);
      for (let index = 0; index < size; index++) {
        const proof = inclusionProof(index, size, src);
        const ok = verifyInclusion(leafHash(entries[index]!.bytes), index, size, proof, root);
        if (!ok) expect.fail(`inclusion ${index}/${size}`);
      }
      for (let from = 1; from <= size; from += 7) {
        const proof = consistencyProof(from, size, src);
        if (!verifyConsistency(from, size, proof, ref.root(from), root))
          expect.fail(`consistency ${from}→${size}`);
      }
    }
    store.close();
  });

  it('serves proofs for random indexes of a 100,000-entry log, and survives a reopen', async function () {
    this.timeout(120_000);
    let store = new SqliteStore({ dataDir: dir, maxBatch: 4096 });
    await fill(store, 100_000);
    store.close();
    store = new SqliteStore({ dataDir: dir });
    expect(await store.treeSize()).to.equal(100_000);
    const ref = await reference(store);
    const root = ref.root();
    for (let i = 0; i < 500; i++) {
      const index = Math.floor(Math.random() * 100_000);
      const [entry] = await store.entries(index, index + 1);
      const proof = inclusionProof(index, 100_000, store.nodes());
      expect(verifyInclusion(leafHash(entry!.bytes), index, 100_000, proof, root)).to.equal(true);
    }
    // Appending after a reopen continues the same tree.
    await fill(store, 3);
    expect(rootHash(100_003, store.nodes()).equals((await reference(store)).root())).to.equal(true);
    store.close();
  });

  it('refuses UPDATE and DELETE of log rows inside the database itself', async function () {
    const store = new SqliteStore({ dataDir: dir });
    await fill(store, 4);
    store.addCheckpoint({
      size: 4,
      root: Buffer.alloc(32),
      text: 'x',
      signedAt: new Date().toISOString(),
    });
    store.close();
    const db = new Database(join(dir, 'casebridge.sqlite'));
    try {
      for (const sql of [
        "UPDATE audit_entries SET entry = x'00' WHERE idx = 1",
        'DELETE FROM audit_entries WHERE idx = 3',
        "UPDATE audit_nodes SET hash = x'00' WHERE level = 1 AND idx = 0",
        'DELETE FROM audit_nodes',
        "UPDATE checkpoints SET note = 'y'",
        'DELETE FROM checkpoints',
      ]) {
        expect(() => db.prepare(sql).run(), sql)
          .to.throw()
          .with.property('code', 'SQLITE_CONSTRAINT_TRIGGER');
      }
      expect(
        (db.prepare('SELECT COUNT(*) AS n FROM audit_entries').get() as { n: number }).n,
      ).to.equal(4);
    } finally {
      db.close();
    }
  });
});
