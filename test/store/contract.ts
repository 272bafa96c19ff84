/**
 * One contract for every store (docs/operations.md, "Running several gateways"):
 * the same cases run against the embedded SQLite store, the PostgreSQL store and,
 * for the outbox and inbox, the in-memory fake the transport tests use.
 */
import { expect } from 'chai';
import {
  inclusionProof,
  MemoryTree,
  rootHash,
  leafHash,
  verifyInclusion,
  withNodes,
} from '../../src/audit/merkle.js';
import type { AuditActor } from '../../src/audit/types.js';
import { digestOf } from '../../src/envelope/jws.js';
import type { Envelope, MessageType } from '../../src/envelope/types.js';
import { CasebridgeError } from '../../src/errors.js';
import { envelopeDigest } from '../../src/messages/replay.js';
import { epochOf } from '../../src/retention/keys.js';
import type {
  InboxPort,
  MessageChange,
  NewMessage,
  OutboxPort,
  Store,
} from '../../src/store/types.js';
import { sampleEnvelope, SAMPLE_FROM, SAMPLE_TO } from '../fixtures/envelopes.js';

export const ACTOR: AuditActor = {
  agency: SAMPLE_FROM,
  role: 'system',
  subject: 'sha256:' + 'c'.repeat(64),
};
export const GATEWAY: AuditActor = {
  agency: 'GW-TEST',
  role: 'gateway',
  subject: 'sha256:' + '0'.repeat(64),
};
const OFFICER_A = { subject: 'sha256:' + 'a'.repeat(64), name: 'Officer A' };
const OFFICER_B = { subject: 'sha256:' + 'b'.repeat(64), name: 'Officer B' };
const RECIPIENT = (o: { subject: string; name: string }) => ({
  agency: SAMPLE_TO,
  role: 'officer',
  subject: o.subject,
  name: o.name,
});
const TTL = 60_000;

/** A store opened for one test, and the way to look into its database behind its back. */
export interface StoreUnderTest {
  store: Store;
  /** Runs one statement on the store's database with a connection of its own. */
  raw(sql: string): Promise<void>;
  /** Closes the store and removes its database. */
  close(): Promise<void>;
}

export type StoreFactory = () => Promise<StoreUnderTest>;

export function newMessage(
  type: MessageType = 'evidence.request',
  overrides: Partial<Envelope> = {},
  actor: NewMessage['actor'] = ACTOR,
): NewMessage {
  const envelope = sampleEnvelope(type, overrides);
  // The store keeps bytes as given; a syntactically compact JWS is enough here.
  const payload = Buffer.from(JSON.stringify(envelope)).toString('base64url');
  const jws = `eyJhbGciOiJFUzI1NiJ9.${payload}.c2ln`;
  return {
    id: envelope.id,
    digest: digestOf(jws),
    envelopeDigest: envelopeDigest(envelope),
    jws,
    envelope,
    actor,
  };
}

const receipt = (i: number) => `receipt-${i}`;

async function accepted(store: Store, m: NewMessage = newMessage()): Promise<NewMessage> {
  const out = await store.accept(m, receipt);
  expect(out.kind).to.equal('accepted');
  return m;
}

async function delivered(store: Store, m: NewMessage = newMessage()): Promise<NewMessage> {
  await accepted(store, m);
  expect(await store.deliver(m.id, m.digest, GATEWAY)).to.equal('delivered');
  return m;
}

/** Every entry from 0 up, gap-free, and a root the independent MemoryTree agrees on. */
export async function expectOneTree(store: Store): Promise<number> {
  const size = await store.treeSize();
  const entries = await store.entries(0, size);
  expect(entries.map((e) => e.index)).to.deep.equal(Array.from({ length: size }, (_, i) => i));
  const ref = new MemoryTree();
  for (const e of entries) ref.append(e.bytes);
  const root = await withNodes(
    (src) => rootHash(size, src),
    (c) => store.nodesAt(c),
  );
  expect(root.equals(ref.root())).to.equal(true, 'the stored tree has the root of its entries');
  for (const index of [0, Math.floor(size / 2), size - 1]) {
    if (index < 0 || index >= size) continue;
    const proof = await withNodes(
      (src) => inclusionProof(index, size, src),
      (c) => store.nodesAt(c),
    );
    const leaf = leafHash(entries[index]!.bytes);
    expect(verifyInclusion(leaf, index, size, proof, ref.root())).to.equal(true);
  }
  const ts = entries.map((e) =>
    Date.parse((JSON.parse(e.bytes.toString('utf8')) as { ts: string }).ts),
  );
  for (let i = 1; i < ts.length; i++) expect(ts[i]).to.be.at.least(ts[i - 1]!);
  return size;
}

async function events(store: Store, from: number): Promise<string[]> {
  const size = await store.treeSize();
  return (await store.entries(from, size)).map(
    (e) => (JSON.parse(e.bytes.toString('utf8')) as { event: string }).event,
  );
}

export function describeStoreContract(name: string, factory: StoreFactory): void {
  describe(`store contract: ${name}`, function () {
    let t: StoreUnderTest;
    let store: Store;
    beforeEach(async () => {
      t = await factory();
      store = t.store;
    });
    afterEach(async () => {
      await t.close();
    });

    describe('accepting and group commit', function () {
      it('answers two copies of one message in one batch with accepted and replay, another envelope with conflict', async function () {
        const m = newMessage();
        const [a, b] = await Promise.all([
          store.accept(m, () => 'r1'),
          store.accept({ ...m }, () => 'r2'),
        ]);
        expect([a.kind, b.kind].sort()).to.deep.equal(['accepted', 'replay']);
        const resigned = await store.accept(
          { ...m, digest: 'sha256:' + '0'.repeat(64) },
          () => 'r3',
        );
        expect(resigned.kind).to.equal('replay');
        const other = await store.accept(
          { ...m, envelopeDigest: 'sha256:' + '1'.repeat(64) },
          () => 'r4',
        );
        expect(other).to.deep.equal({ kind: 'conflict', digest: m.digest });
        expect(await store.treeSize()).to.equal(1);
        const rec = await store.recorded(m.id);
        expect(rec?.envelopeDigest).to.equal(m.envelopeDigest);
        expect(rec?.response.logIndex).to.equal(0);
      });

      it('commits concurrent writes together; one failing write fails alone', async function () {
        const msgs = Array.from({ length: 20 }, () => newMessage());
        const failing = newMessage();
        const results = await Promise.allSettled([
          ...msgs.slice(0, 10).map((m) => store.accept(m, receipt)),
          store.accept(failing, () => {
            throw new CasebridgeError('INTERNAL', 'no receipt');
          }),
          ...msgs.slice(10).map((m) => store.accept(m, receipt)),
        ]);
        const refused = results[10] as PromiseRejectedResult;
        expect(refused.status).to.equal('rejected');
        expect((refused.reason as CasebridgeError).code).to.equal('INTERNAL');
        expect(results.filter((r) => r.status === 'fulfilled')).to.have.length(20);
        for (const m of msgs) {
          const r = (await store.getMessage(m.id))!;
          expect(r.jws).to.equal(m.jws);
          expect(JSON.parse(r.response)).to.include({ receipt: `receipt-${r.logIndex}` });
        }
        expect(await store.getMessage(failing.id)).to.equal(undefined);
        expect(await expectOneTree(store)).to.equal(20);
        expect(await store.outboxLag()).to.equal(20);
      });

      it('gives gap-free indexes to many concurrent writes of every kind', async function () {
        const first = await Promise.all(Array.from({ length: 30 }, () => accepted(store)));
        await Promise.all([
          ...Array.from({ length: 60 }, () => store.accept(newMessage(), receipt)),
          ...first.map((m) => store.deliver(m.id, m.digest, GATEWAY)),
          ...Array.from({ length: 20 }, () =>
            store.append({ event: 'registry.loaded', actor: GATEWAY, detail: { agencies: 3 } }),
          ),
        ]);
        // 30 + 60 accepted, 30 × (queued, delivered), 20 appends.
        expect(await expectOneTree(store)).to.equal(30 + 60 + 60 + 20);
      });
    });

    describe('reading', function () {
      it('reads a message with its history, and replies in acceptance order', async function () {
        const m = await delivered(store);
        const rec = (await store.getMessage(m.id))!;
        expect(rec).to.include({ id: m.id, status: 'delivered', from: SAMPLE_FROM, to: SAMPLE_TO });
        expect(rec.envelope).to.deep.equal(m.envelope);
        expect((await store.history(m.id)).map((h) => h.event)).to.deep.equal([
          'accepted',
          'queued',
          'delivered',
        ]);
        const r1 = newMessage('evidence.transfer', {
          inReplyTo: m.id,
          from: SAMPLE_TO,
          to: SAMPLE_FROM,
        });
        const r2 = newMessage('evidence.transfer', {
          inReplyTo: m.id,
          from: SAMPLE_TO,
          to: SAMPLE_FROM,
        });
        await accepted(store, r1);
        await accepted(store, r2);
        expect((await store.replies(m.id)).map((r) => r.id)).to.deep.equal([r1.id, r2.id]);
        expect(await store.getMessage('00000000-0000-4000-8000-000000000000')).to.equal(undefined);
      });

      it('pages with cursors in priority, deadline and acceptance order, with filters', async function () {
        const inDays = (d: number) => new Date(Date.now() + d * 86_400_000).toISOString();
        const specs: Partial<Envelope>[] = [
          { priority: 'routine' },
          { priority: 'routine', respondBy: inDays(3) },
          { priority: 'emergency' },
          { priority: 'urgent', respondBy: inDays(5) },
          { priority: 'urgent', respondBy: inDays(2) },
          { priority: 'routine', respondBy: inDays(1) },
          { priority: 'emergency', respondBy: inDays(9) },
        ];
        const ms: NewMessage[] = [];
        for (const s of specs) ms.push(await accepted(store, newMessage('evidence.request', s)));
        // Expected: emergency (dated first, then undated), urgent by deadline, routine by deadline, undated last.
        const want = [ms[6], ms[2], ms[4], ms[3], ms[5], ms[1], ms[0]].map((m) => m!.id);
        const seen: string[] = [];
        let cursor: string | undefined;
        for (let i = 0; i < 10; i++) {
          const page = await store.list({
            agency: SAMPLE_TO,
            direction: 'received',
            limit: 3,
            ...(cursor === undefined ? {} : { cursor }),
          });
          seen.push(...page.items.map((r) => r.id));
          if (page.nextCursor === null) break;
          cursor = page.nextCursor;
        }
        expect(seen).to.deep.equal(want);
        const sent = await store.list({ agency: SAMPLE_FROM, direction: 'sent', limit: 50 });
        expect(sent.items).to.have.length(7);
        expect(
          (await store.list({ agency: SAMPLE_FROM, direction: 'received', limit: 50 })).items,
        ).to.have.length(0);
        const urgent = await store.list({
          agency: SAMPLE_TO,
          direction: 'received',
          priority: 'urgent',
          limit: 50,
        });
        expect(urgent.items.map((r) => r.id)).to.deep.equal([ms[4]!.id, ms[3]!.id]);
        await store.deliver(ms[0]!.id, ms[0]!.digest, GATEWAY);
        const byStatus = await store.list({
          agency: SAMPLE_TO,
          direction: 'received',
          status: 'delivered',
          limit: 50,
        });
        expect(byStatus.items.map((r) => r.id)).to.deep.equal([ms[0]!.id]);
        const open = await store.list({
          agency: SAMPLE_TO,
          direction: 'received',
          status: 'open',
          limit: 50,
        });
        expect(open.items).to.have.length(7);
        const none = await store.list({
          agency: SAMPLE_TO,
          direction: 'received',
          decision: 'none',
          limit: 50,
        });
        expect(none.items).to.have.length(7);
        const typed = await store.list({
          agency: SAMPLE_TO,
          direction: 'received',
          type: 'funds.freeze',
          limit: 50,
        });
        expect(typed.items).to.have.length(0);
        let bad: unknown;
        try {
          await store.list({
            agency: SAMPLE_TO,
            direction: 'received',
            limit: 5,
            cursor: 'nonsense',
          });
        } catch (e) {
          bad = e;
        }
        expect((bad as CasebridgeError).code).to.equal('INVALID_PARAMETER');
      });
    });

    describe('review', function () {
      it('claims, refuses a second officer as an outcome, releases, and lapses', async function () {
        const m = await delivered(store);
        const before = await store.treeSize();
        const claim = await store.review(
          m.id,
          { kind: 'claim', officer: OFFICER_A, ttlMs: TTL },
          RECIPIENT(OFFICER_A),
        );
        expect(claim.kind).to.equal('done');
        expect(claim.kind === 'done' && claim.record.claim?.subject).to.equal(OFFICER_A.subject);
        const second = await store.review(
          m.id,
          { kind: 'claim', officer: OFFICER_B, ttlMs: TTL },
          RECIPIENT(OFFICER_B),
        );
        expect(second.kind).to.equal('refused');
        expect(second.kind === 'refused' && second.refusal).to.equal('already-claimed');
        const notHers = await store.review(
          m.id,
          { kind: 'release', officer: OFFICER_B },
          RECIPIENT(OFFICER_B),
        );
        expect(notHers.kind === 'refused' && notHers.refusal).to.equal('not-claimed');
        const release = await store.review(
          m.id,
          { kind: 'release', officer: OFFICER_A },
          RECIPIENT(OFFICER_A),
        );
        expect(release.kind === 'done' && release.record.status).to.equal('delivered');
        expect(await events(store, before)).to.deep.equal(['message.claimed', 'message.released']);

        await store.review(
          m.id,
          { kind: 'claim', officer: OFFICER_B, ttlMs: 300 },
          RECIPIENT(OFFICER_B),
        );
        expect(await store.lapseExpired(new Date(), GATEWAY, 10)).to.equal(0);
        // The lapse is decided on the store's clock inside the transaction: wait it out.
        await new Promise((r) => setTimeout(r, 400));
        expect(await store.lapseExpired(new Date(), GATEWAY, 10)).to.equal(1);
        const rec = (await store.getMessage(m.id))!;
        expect(rec.status).to.equal('delivered');
        expect(rec.claim).to.equal(null);
        expect((await events(store, before)).slice(-1)).to.deep.equal(['message.claim-lapsed']);
        const unknown = await store.review(
          '00000000-0000-4000-8000-000000000000',
          { kind: 'release', officer: OFFICER_A },
          RECIPIENT(OFFICER_A),
        );
        expect(unknown.kind).to.equal('unknown');
        await expectOneTree(store);
      });

      it('refuses a claim before delivery, and decides with the status.update in one transaction', async function () {
        const early = await accepted(store);
        const r = await store.review(
          early.id,
          { kind: 'claim', officer: OFFICER_A, ttlMs: TTL },
          RECIPIENT(OFFICER_A),
        );
        expect(r.kind === 'refused' && r.refusal).to.equal('not-delivered');

        const m = await delivered(store);
        const update = () =>
          newMessage(
            'status.update',
            { inReplyTo: m.id, from: SAMPLE_TO, to: SAMPLE_FROM },
            RECIPIENT(OFFICER_A),
          );
        const refused = await store.decide(
          m.id,
          { kind: 'decide', officer: OFFICER_A, decision: 'executed', ttlMs: TTL },
          RECIPIENT(OFFICER_A),
          update(),
          receipt,
        );
        expect(refused.review.kind === 'refused' && refused.review.refusal).to.equal('not-claimed');
        expect(refused.accept).to.equal(undefined);
        await store.review(
          m.id,
          { kind: 'claim', officer: OFFICER_A, ttlMs: TTL },
          RECIPIENT(OFFICER_A),
        );
        const before = await store.treeSize();
        const u = update();
        const done = await store.decide(
          m.id,
          { kind: 'decide', officer: OFFICER_A, decision: 'executed', ttlMs: TTL },
          RECIPIENT(OFFICER_A),
          u,
          receipt,
        );
        expect(done.review.kind === 'done' && done.review.record.status).to.equal('decided');
        expect(done.accept?.kind).to.equal('accepted');
        expect(await events(store, before)).to.deep.equal(['message.decided', 'message.accepted']);
        const rec = (await store.getMessage(m.id))!;
        expect(rec).to.include({ status: 'decided', decision: 'executed' });
        expect((await store.getMessage(u.id))!.inReplyTo).to.equal(m.id);
        const again = await store.review(
          m.id,
          { kind: 'claim', officer: OFFICER_B, ttlMs: TTL },
          RECIPIENT(OFFICER_B),
        );
        expect(again.kind === 'refused' && again.refusal).to.equal('decided');
      });

      it('publishes committed changes only, after their commit', async function () {
        const seen: MessageChange[] = [];
        store.onChange((c) => seen.push(c));
        const m = await delivered(store);
        await store.review(
          m.id,
          { kind: 'claim', officer: OFFICER_A, ttlMs: TTL },
          RECIPIENT(OFFICER_A),
        );
        await store
          .accept(newMessage(), () => {
            throw new Error('no receipt');
          })
          .catch(() => undefined);
        await new Promise((r) => setTimeout(r, 200));
        const mine = seen
          .filter((c) => c.message.id === m.id)
          .map((c) => `${c.event}:${c.message.status}`);
        expect(mine).to.deep.equal(['delivered:delivered', 'claimed:claimed']);
        expect(JSON.stringify(seen)).not.to.contain('Officer');
      });

      it('reports a passed deadline once, and counts open deadlines', async function () {
        const m = await accepted(
          store,
          newMessage('evidence.request', {
            respondBy: new Date(Date.now() + 60_000).toISOString(),
          }),
        );
        expect(await store.takeNewlyOverdue(new Date(), 10)).to.deep.equal([]);
        const later = new Date(Date.now() + 120_000);
        const counts = await store.deadlineCounts(later);
        expect(counts).to.deep.equal([
          { agency: SAMPLE_TO, priority: 'routine', overdue: 1, dueSoon: 0 },
        ]);
        // Two sweeps at once (a timer's and an explicit one) report it once between them.
        const both = await Promise.all([
          store.takeNewlyOverdue(later, 10),
          store.takeNewlyOverdue(later, 10),
        ]);
        expect(both.flat().map((x) => x.id)).to.deep.equal([m.id]);
        expect(await store.takeNewlyOverdue(later, 10)).to.deep.equal([]);
      });
    });

    describe('the audit log', function () {
      it('keeps checkpoints, ignoring a second one of a size', async function () {
        await store.append({ event: 'gateway.started', actor: GATEWAY });
        const cp = {
          size: 1,
          root: Buffer.alloc(32, 1),
          text: 'note 1\n',
          signedAt: new Date().toISOString(),
        };
        await store.addCheckpoint(cp);
        await store.addCheckpoint({ ...cp, text: 'other\n' });
        await store.addCheckpoint({ ...cp, size: 3, text: 'note 3\n' });
        expect((await store.latestCheckpoint())?.size).to.equal(3);
        expect((await store.checkpointAt(1))?.text).to.equal('note 1\n');
        expect((await store.checkpointAt(1))?.root.equals(cp.root)).to.equal(true);
        expect(await store.checkpointAt(2)).to.equal(undefined);
        expect((await store.checkpoints(0, 5)).map((c) => c.size)).to.deep.equal([1, 3]);
      });

      it('refuses UPDATE and DELETE of entries, nodes, checkpoints and history inside the database', async function () {
        await accepted(store);
        await store.append({ event: 'gateway.started', actor: GATEWAY });
        await store.addCheckpoint({ size: 2, root: Buffer.alloc(32), text: 'n\n', signedAt: 'x' });
        for (const sql of [
          'UPDATE audit_entries SET entry = entry WHERE idx = 0',
          'DELETE FROM audit_entries',
          'UPDATE audit_nodes SET hash = hash',
          'DELETE FROM audit_nodes',
          "UPDATE checkpoints SET note = 'forged'",
          'DELETE FROM checkpoints',
          "UPDATE message_history SET status = 'decided'",
          'DELETE FROM message_history',
        ]) {
          let failed = false;
          try {
            await t.raw(sql);
          } catch {
            failed = true;
          }
          expect(failed, sql).to.equal(true);
        }
        expect(await expectOneTree(store)).to.equal(2);
      });
    });

    describe('retention', function () {
      it('shreds the content of an epoch, carrying what the outbox still holds', async function () {
        const gone = await accepted(store);
        const kept = await accepted(store);
        await store.markQueued([gone.id], GATEWAY);
        const epoch = epochOf(new Date());
        expect(await store.liveEpochs()).to.deep.equal([epoch]);
        const before = await store.treeSize();
        const out = await store.shredEpoch(epoch, GATEWAY);
        expect(out).to.deep.equal({ shredded: 1, carried: 1 });
        const g = (await store.getMessage(gone.id))!;
        expect(g.jws).to.equal(null);
        expect(g.envelope).to.equal(null);
        expect(g.shreddedAt).to.be.a('string');
        expect(g.digest).to.equal(gone.digest);
        expect((await store.getMessage(kept.id))!.jws).to.equal(kept.jws);
        expect(await events(store, before)).to.deep.equal(['message.shredded']);
        const replay = await store.accept(gone, receipt);
        expect(replay.kind).to.equal('replay');
      });
    });

    describe('evidence-file records', function () {
      const sha = (c: string) => c.repeat(64);
      it('records a file once, binds it in the acceptance, keeps custody, and expires only unbound files', async function () {
        const file = { agency: SAMPLE_FROM, sha256: sha('1'), size: 100 };
        expect(await store.files.recordStored(file, ACTOR)).to.equal('stored');
        expect(await store.files.recordStored(file, ACTOR)).to.equal('exists');
        expect(
          await store.files.recordStored({ ...file, sha256: sha('2'), size: 5 }, ACTOR),
        ).to.equal('stored');
        expect(await store.files.usage(SAMPLE_FROM)).to.equal(105);
        expect((await store.files.storedFile(SAMPLE_FROM, sha('1')))?.size).to.equal(100);
        expect(await store.files.storedFile(SAMPLE_TO, sha('1'))).to.equal(undefined);

        const m = newMessage();
        m.files = { agency: SAMPLE_FROM, files: [{ sha256: sha('1'), size: 100 }] };
        const before = await store.treeSize();
        await accepted(store, m);
        expect(await events(store, before)).to.deep.equal(['message.accepted', 'file.bound']);
        expect((await store.files.boundFile(m.id, sha('1')))?.agency).to.equal(SAMPLE_FROM);
        expect(await store.files.boundFile(m.id, sha('2'))).to.equal(undefined);
        expect((await store.files.boundFiles(m.id)).map((f) => f.sha256)).to.deep.equal([sha('1')]);
        const bound = (await store.files.boundFile(m.id, sha('1')))!;
        await store.files.recordDownload(m.id, bound, RECIPIENT(OFFICER_A), { start: 0, end: 99 });
        expect((await store.files.custody(m.id)).map((c) => c.event)).to.deep.equal([
          'file.stored',
          'file.bound',
          'file.downloaded',
        ]);

        const bad = newMessage();
        bad.files = { agency: SAMPLE_FROM, files: [{ sha256: sha('3'), size: 1 }] };
        let err: unknown;
        try {
          await store.accept(bad, receipt);
        } catch (e) {
          err = e;
        }
        expect((err as CasebridgeError).code).to.equal('UNKNOWN_FILE');
        expect(await store.getMessage(bad.id)).to.equal(undefined);

        const expired = await store.files.expireUnbound(new Date(Date.now() + 1000), GATEWAY, 10);
        expect(expired.map((f) => f.sha256)).to.deep.equal([sha('2')]);
        expect(await store.files.storedFile(SAMPLE_FROM, sha('2'))).to.equal(undefined);
        expect(await store.files.storedFile(SAMPLE_FROM, sha('1'))).not.to.equal(undefined);
        await expectOneTree(store);
      });
    });
  });
}

/** The outbox and inbox of a store, or the transport tests' fake, with a way to fill it. */
export interface OutboxUnderTest {
  outbox: OutboxPort;
  inbox: InboxPort;
  /** Puts a new message into the outbox, known to the inbox. */
  enqueue(): Promise<{ id: string; digest: string }>;
  /** How long a row handed out and dropped may take to come back. */
  rescanMs: number;
  close(): Promise<void>;
}

export function describeOutboxContract(
  name: string,
  factory: () => Promise<OutboxUnderTest>,
): void {
  describe(`outbox and inbox contract: ${name}`, function () {
    let t: OutboxUnderTest;
    beforeEach(async () => {
      t = await factory();
    });
    afterEach(async () => {
      await t.close();
    });
    const none = new Set<string>();

    it('hands out due rows in accept order, within the limit and past the excluded ones', async function () {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await t.enqueue()).id);
      expect(await t.outbox.outboxLag()).to.equal(5);
      const first = await t.outbox.dueOutbox(2, new Set([ids[0]!]));
      expect(first.map((i) => i.messageId)).to.deep.equal([ids[1], ids[2]]);
      expect(first[0]!.attempts).to.equal(0);
      expect(first[0]!.jws.split('.')).to.have.length(3);
      // The excluded row may come now or on a later scan; the next ones come now.
      const rest = (await t.outbox.dueOutbox(10, new Set([ids[1]!, ids[2]!]))).map(
        (i) => i.messageId,
      );
      expect(rest).to.include.members([ids[3], ids[4]]);
      expect(rest).not.to.include(ids[1]);
      expect(rest).not.to.include(ids[2]);
      expect(rest.indexOf(ids[3]!)).to.be.below(rest.indexOf(ids[4]!));
    });

    it('hands out rows accepted after a read in accept order, as accepted', async function () {
      // As a transport does: what it holds is excluded from the next read.
      const held = new Set<string>();
      const due = async (limit: number) => {
        const items = await t.outbox.dueOutbox(limit, held);
        for (const i of items) held.add(i.messageId);
        return items;
      };
      const first = await t.enqueue();
      expect((await due(10)).map((i) => i.messageId)).to.deep.equal([first.id]);
      const later = [];
      for (let i = 0; i < 3; i++) later.push(await t.enqueue());
      const a = await due(2);
      expect(a.map((i) => i.messageId)).to.deep.equal([later[0]!.id, later[1]!.id]);
      for (const [k, item] of a.entries()) {
        expect(item.digest).to.equal(later[k]!.digest);
        expect(item.attempts).to.equal(0);
        expect(item.jws.split('.')).to.have.length(3);
      }
      expect((await due(10)).map((i) => i.messageId)).to.deep.equal([later[2]!.id]);
      expect(await due(10)).to.deep.equal([]);
    });

    it('gives back a row that was handed out and dropped', async function () {
      const { id } = await t.enqueue();
      expect((await t.outbox.dueOutbox(10, none)).map((i) => i.messageId)).to.deep.equal([id]);
      const deadline = Date.now() + t.rescanMs + 3000;
      let back = false;
      while (!back && Date.now() < deadline) {
        back = (await t.outbox.dueOutbox(10, none)).some((i) => i.messageId === id);
        if (!back) await new Promise((r) => setTimeout(r, 100));
      }
      expect(back).to.equal(true);
    });

    it('reschedules a failed attempt after its delay, counting attempts', async function () {
      const { id } = await t.enqueue();
      await t.outbox.dueOutbox(10, none);
      await t.outbox.reschedule(id, 60_000, 'broker said no');
      expect((await t.outbox.dueOutbox(10, none)).map((i) => i.messageId)).not.to.include(id);
      const { id: id2 } = await t.enqueue();
      await t.outbox.dueOutbox(10, none);
      await t.outbox.reschedule(id2, 0, 'try again');
      await new Promise((r) => setTimeout(r, 20));
      const again = await t.outbox.dueOutbox(10, none);
      expect(again.map((i) => i.messageId)).to.include(id2);
      expect(again.find((i) => i.messageId === id2)!.attempts).to.equal(1);
    });

    it('removes queued rows, idempotently', async function () {
      const a = await t.enqueue();
      const b = await t.enqueue();
      await t.outbox.markQueued([a.id], GATEWAY);
      await t.outbox.markQueued([a.id], GATEWAY);
      expect(await t.outbox.outboxLag()).to.equal(1);
      const due = await t.outbox.dueOutbox(10, none);
      expect(due.map((i) => i.messageId)).to.deep.equal([b.id]);
      await t.outbox.markQueued([a.id, b.id, b.id], GATEWAY);
      expect(await t.outbox.outboxLag()).to.equal(0);
    });

    it('delivers into an inbox exactly once per message id', async function () {
      const a = await t.enqueue();
      expect(await t.inbox.deliver(a.id, a.digest, GATEWAY)).to.equal('delivered');
      expect(await t.inbox.deliver(a.id, a.digest, GATEWAY)).to.equal('duplicate');
      const outcomes = await Promise.all(
        [1, 2, 3].map(() => t.inbox.deliver(a.id, a.digest, GATEWAY)),
      );
      expect(outcomes).to.deep.equal(['duplicate', 'duplicate', 'duplicate']);
      expect(
        await t.inbox.deliver('00000000-0000-4000-8000-000000000000', a.digest, GATEWAY),
      ).to.equal('unknown');
      const b = await t.enqueue();
      const race = await Promise.all([1, 2, 3].map(() => t.inbox.deliver(b.id, b.digest, GATEWAY)));
      expect(race.filter((o) => o === 'delivered')).to.have.length(1);
    });
  });
}

/** The outbox of a real store, filled by acceptances. */
export function storeOutbox(t: StoreUnderTest, rescanMs: number): OutboxUnderTest {
  return {
    outbox: t.store,
    inbox: t.store,
    async enqueue() {
      const m = await accepted(t.store);
      return { id: m.id, digest: m.digest };
    },
    rescanMs,
    close: () => t.close(),
  };
}
