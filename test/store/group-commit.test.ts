import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { envelopeDigest } from '../../src/messages/replay.js';
import { rootHash, MemoryTree } from '../../src/audit/merkle.js';
import type { AuditActor } from '../../src/audit/types.js';
import { digestOf } from '../../src/envelope/jws.js';
import { CasebridgeError } from '../../src/errors.js';
import { SqliteStore, type NewMessage } from '../../src/store/index.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { ON_POSTGRES } from '../helpers/database.js';

const ACTOR: AuditActor = {
  agency: 'CN-GX-CZ',
  role: 'system',
  subject: 'sha256:' + 'c'.repeat(64),
};

function message(): NewMessage {
  const envelope = sampleEnvelope('evidence.request');
  // The store keeps bytes as given; a syntactically compact JWS is enough here.
  const payload = Buffer.from(JSON.stringify(envelope)).toString('base64url');
  const jws = `eyJhbGciOiJFUzI1NiJ9.${payload}.c2ln`;
  return {
    id: envelope.id,
    digest: digestOf(jws),
    envelopeDigest: envelopeDigest(envelope),
    jws,
    envelope,
    actor: ACTOR,
  };
}

describe('store: group commit', function () {
  before(function () {
    // These cases open the embedded store's file directly; in the PostgreSQL run the
    // same properties are covered by test/store/contract.test.ts.
    if (ON_POSTGRES) this.skip();
  });
  let dir: string;
  let store: SqliteStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'casebridge-gc-'));
    store = new SqliteStore({ dataDir: dir });
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('commits concurrent writes together; one failing write fails alone', async function () {
    const msgs = Array.from({ length: 20 }, message);
    const update = message();
    const results = await Promise.allSettled([
      ...msgs.slice(0, 10).map((m) => store.accept(m, (i) => `receipt-${i}`)),
      // Fails inside the transaction (after its audit entry), once the ten accepts above joined it.
      store.accept(update, () => {
        throw new CasebridgeError('INTERNAL', 'no receipt');
      }),
      ...msgs.slice(10).map((m) => store.accept(m, (i) => `receipt-${i}`)),
    ]);
    const refused = results[10]!;
    expect(refused.status).to.equal('rejected');
    const reason = (refused as PromiseRejectedResult).reason as CasebridgeError;
    expect(reason).to.be.instanceOf(CasebridgeError);
    expect(reason.code).to.equal('INTERNAL');
    expect(results.filter((r) => r.status === 'fulfilled')).to.have.length(20);

    // Every accepted message is stored once, with the log index its receipt names.
    const records = await Promise.all(msgs.map((m) => store.getMessage(m.id)));
    const indexes = records.map((r) => r!.logIndex).sort((a, b) => a - b);
    expect(indexes).to.deep.equal(Array.from({ length: 20 }, (_, i) => i));
    for (const m of msgs) {
      const r = (await store.getMessage(m.id))!;
      expect(JSON.parse(r.response)).to.include({ receipt: `receipt-${r.logIndex}` });
    }
    expect(await store.getMessage(update.id)).to.equal(undefined);

    // The tree in the store is exactly the tree over the committed entries.
    const entries = await store.entries(0, await store.treeSize());
    expect(entries.map((e) => e.index)).to.deep.equal(indexes);
    const ref = new MemoryTree();
    for (const e of entries) ref.append(e.bytes);
    expect(rootHash(await store.treeSize(), store.nodes()).equals(ref.root())).to.equal(true);
    expect(await store.outboxLag()).to.equal(20);
  });

  it('answers two copies of one message in one batch with accepted and replay', async function () {
    const m = message();
    const [a, b] = await Promise.all([
      store.accept(m, () => 'r1'),
      store.accept({ ...m }, () => 'r2'),
    ]);
    expect([a.kind, b.kind].sort()).to.deep.equal(['accepted', 'replay']);
    // Other signature bytes over the same envelope: still a replay (protocol §3).
    const resigned = await store.accept({ ...m, digest: 'sha256:' + '0'.repeat(64) }, () => 'r3');
    expect(resigned.kind).to.equal('replay');
    const other = await store.accept(
      { ...m, envelopeDigest: 'sha256:' + '1'.repeat(64) },
      () => 'r4',
    );
    expect(other).to.deep.equal({ kind: 'conflict', digest: m.digest });
    expect(await store.treeSize()).to.equal(1);
  });
});
