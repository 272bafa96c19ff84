import { X509Certificate } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { expect } from 'chai';
import { compactVerify, decodeProtectedHeader } from 'jose';
import type { Envelope } from '../../src/envelope/types.js';
import { buildOpenApi } from '../../src/http/openapi.js';
import { issueCertificate, parsePemChain } from '../../src/pki/index.js';
import { createSchemaSet } from '../../src/schema/index.js';
import { SAMPLE_PERSONAL_STRINGS, sampleEnvelope } from '../fixtures/envelopes.js';
import { pgExec } from '../helpers/database.js';
import { openEvents } from '../helpers/events.js';
import {
  call,
  eventually,
  identity,
  signAs,
  startTestGateway,
  submit,
  type Identity,
  type TestGateway,
} from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';

const A = 'CN-GX-CZ';
const B = 'VN-LS';
/** Shares an agreement with A, none with B: a third agency for every A↔B message. */
const C = 'VN-CB';
const MIN = 60_000;

interface Claim {
  subject: string;
  name: string;
  at: string;
  expiresAt: string;
}
interface Item {
  id: string;
  type: string;
  status: string;
  decision: string | null;
  claim: Claim | null;
  deadline: string | null;
  overdue: boolean;
  dueSoon: boolean;
}
interface History {
  status: string;
  event: string;
  decision?: string;
  by: { agency: string; role: string; subject: string; name?: string };
}
const json = (data: unknown) => ({ type: 'application/json', data: JSON.stringify(data) });
const code = (r: { json<T>(): T }) => r.json<{ code: string }>().code;

function subjectOf(who: Identity): string {
  return 'sha256:' + new X509Certificate(who.cert).fingerprint256.replace(/:/g, '').toLowerCase();
}

describe('review API (protocol §5.1, §5.4, §5.5)', function () {
  /** The gateway's clock runs `offset` ms ahead of the real one. */
  let offset = 0;
  let t: TestGateway;
  let aSys: Identity;
  let bSys: Identity;
  let aOfficer: Identity;
  let bOfficer: Identity;
  let bOfficer2: Identity;
  let cOfficer: Identity;

  before(async function () {
    t = await startTestGateway(
      { CASEBRIDGE_EVENTS_HEARTBEAT_S: '1' },
      { now: () => new Date(Date.now() + offset) },
    );
    [aSys, bSys, aOfficer, bOfficer, cOfficer] = await Promise.all([
      identity(A, 'system'),
      identity(B, 'system'),
      identity(A, 'officer'),
      identity(B, 'officer'),
      identity(C, 'officer'),
    ]);
    const pki = await getTestPki();
    const second = issueCertificate({
      caCert: pki.files['ca/vn-root.crt.pem']!,
      caKey: pki.files['ca/vn-root.key.pem']!,
      agency: B,
      role: 'officer',
      name: 'Officer 02 VN-LS',
    });
    bOfficer2 = { cert: second.chainPem, key: second.keyPem };
  });
  after(async () => t?.stop());
  afterEach(() => {
    offset = 0;
  });

  async function delivered(env: Envelope, who = aSys): Promise<string> {
    const res = await submit(t.gw, who, signAs(env, who));
    expect(res.status, res.text).to.equal(202);
    await eventually(
      async () => (await t.gw.store.getMessage(env.id))?.status === 'delivered',
      10_000,
      'delivery',
    );
    return env.id;
  }

  const get = async (who: Identity, id: string) => {
    const res = await call(t.gw, who, 'GET', `/v1/messages/${id}`);
    expect(res.status, res.text).to.equal(200);
    return res.json<Item & { history: History[] }>();
  };

  it('answers in the shapes its OpenAPI document describes', async function () {
    const root = fileURLToPath(new URL('../../../schemas/', import.meta.url));
    const doc = buildOpenApi(createSchemaSet(root).documents()) as { components: object };
    const ajv = new Ajv2020.default({ strict: false, allErrors: true });
    addFormats.default(ajv);
    ajv.addSchema({ $id: 'urn:test:openapi', components: doc.components });
    const check = (name: string, value: unknown) => {
      const v = ajv.compile({ $ref: `urn:test:openapi#/components/schemas/${name}` });
      expect(v(value), `${name}: ${JSON.stringify(v.errors)}`).to.equal(true);
    };
    const stream = await openEvents(t.gw, bOfficer);
    try {
      const id = await delivered(sampleEnvelope('funds.freeze'));
      check('MessagePage', (await call(t.gw, bOfficer, 'GET', '/v1/inbox')).json());
      check(
        'MessageSummary',
        (await call(t.gw, bOfficer, 'POST', `/v1/messages/${id}/claim`)).json(),
      );
      check('MessageDetail', await get(bOfficer, id));
      const decided = await call(
        t.gw,
        bOfficer,
        'POST',
        `/v1/messages/${id}/decision`,
        json({ status: 'in-progress' }),
      );
      check('DecisionResponse', decided.json());
      check('MessageDetail', await get(aSys, id));
      const claimed = await stream.next((e) => e.event === 'claimed' && e.data['id'] === id);
      check('StreamEventData', claimed.data);
    } finally {
      stream.close();
    }
  });

  it('lets exactly one of two officers claiming at once win', async function () {
    for (let round = 0; round < 5; round++) {
      const id = await delivered(sampleEnvelope('evidence.request'));
      const [r1, r2] = await Promise.all([
        call(t.gw, bOfficer, 'POST', `/v1/messages/${id}/claim`),
        call(t.gw, bOfficer2, 'POST', `/v1/messages/${id}/claim`),
      ]);
      const statuses = [r1.status, r2.status].sort();
      expect(statuses, `${r1.text} ${r2.text}`).to.deep.equal([200, 409]);
      const [win, lose] = r1.status === 200 ? [r1, r2] : [r2, r1];
      expect(code(lose)).to.equal('ALREADY_CLAIMED');
      const winner = win.json<Item>();
      const m = await get(bOfficer, id);
      expect(m.claim).to.deep.equal(winner.claim);
      expect(m.history.filter((h) => h.event === 'claimed')).to.have.length(1);
    }
  });

  it('shows the claim holder and the history actors by name and fingerprint, never in the audit log', async function () {
    const id = await delivered(sampleEnvelope('evidence.request'));
    const claim = await call(t.gw, bOfficer, 'POST', `/v1/messages/${id}/claim`);
    expect(claim.status, claim.text).to.equal(200);
    const item = claim.json<Item>();
    expect(item.status).to.equal('claimed');
    expect(item.claim).to.include({ subject: subjectOf(bOfficer), name: `Officer 01 ${B}` });
    expect(Date.parse(item.claim!.expiresAt) - Date.parse(item.claim!.at)).to.equal(1800_000);

    // The sender's agency sees the same; a third agency sees nothing at all.
    const seen = await get(aSys, id);
    expect(seen.claim).to.deep.equal(item.claim);
    const byEvent = new Map(seen.history.map((h) => [h.event, h.by]));
    expect(byEvent.get('accepted')).to.deep.include({
      agency: A,
      role: 'system',
      name: `Case System ${A}`,
    });
    expect(byEvent.get('claimed')).to.deep.equal({
      agency: B,
      role: 'officer',
      subject: subjectOf(bOfficer),
      name: `Officer 01 ${B}`,
    });
    expect((await call(t.gw, cOfficer, 'GET', `/v1/messages/${id}`)).status).to.equal(404);

    const log = (await t.gw.store.entries(0, await t.gw.store.treeSize()))
      .map((e) => e.bytes.toString('utf8'))
      .join('\n');
    expect(log).to.not.include('Officer 01');
    expect(log).to.not.include('Case System');
    expect(log).to.include(subjectOf(bOfficer));
  });

  it('lapses an expired claim at once for a reader or another officer, and records the lapse', async function () {
    const id = await delivered(sampleEnvelope('evidence.request'));
    expect((await call(t.gw, bOfficer, 'POST', `/v1/messages/${id}/claim`)).status).to.equal(200);
    expect(code(await call(t.gw, bOfficer2, 'POST', `/v1/messages/${id}/claim`))).to.equal(
      'ALREADY_CLAIMED',
    );

    offset = 30 * MIN + 1000; // past the default CASEBRIDGE_CLAIM_TTL_S of 1800
    const read = await get(bOfficer2, id);
    expect(read).to.include({ status: 'delivered', claim: null });
    // The holder cannot decide on a lapsed claim.
    const late = await call(
      t.gw,
      bOfficer,
      'POST',
      `/v1/messages/${id}/decision`,
      json({ status: 'accepted' }),
    );
    expect(code(late)).to.equal('NOT_CLAIMED');
    const taken = await call(t.gw, bOfficer2, 'POST', `/v1/messages/${id}/claim`);
    expect(taken.status, taken.text).to.equal(200);
    expect(taken.json<Item>().claim).to.include({ subject: subjectOf(bOfficer2) });

    const history = (await get(bOfficer, id)).history;
    const lapse = history.find((h) => h.event === 'lapsed');
    expect(lapse).to.deep.include({ status: 'delivered' });
    expect(lapse!.by).to.include({ agency: 'GW-DEMO', role: 'gateway' });
    expect(history.map((h) => h.event).slice(-3)).to.deep.equal(['claimed', 'lapsed', 'claimed']);
    const events = (await t.gw.store.entries(0, await t.gw.store.treeSize()))
      .map((e) => JSON.parse(e.bytes.toString('utf8')) as { event: string; messageId?: string })
      .filter((e) => e.messageId === id)
      .map((e) => e.event);
    expect(events.slice(-3)).to.deep.equal([
      'message.claimed',
      'message.claim-lapsed',
      'message.claimed',
    ]);
  });

  it('refuses a decision by a non-officer, by an officer of another agency and by an officer without the claim, before reading the body', async function () {
    const id = await delivered(sampleEnvelope('funds.freeze', { priority: 'emergency' }));
    expect((await call(t.gw, bOfficer, 'POST', `/v1/messages/${id}/claim`)).status).to.equal(200);
    const path = `/v1/messages/${id}/decision`;
    // A body that is not even JSON: authorization is decided first.
    const junk = { type: 'application/json', data: '{"status":' };
    const cases: [Identity, number, string][] = [
      [bSys, 403, 'FORBIDDEN_ROLE'],
      [aOfficer, 403, 'FORBIDDEN_ROLE'],
      [cOfficer, 404, 'NOT_FOUND'],
      [bOfficer2, 409, 'NOT_CLAIMED'],
    ];
    for (const [who, status, c] of cases) {
      const res = await call(t.gw, who, 'POST', path, junk);
      expect(res.status, res.text).to.equal(status);
      expect(code(res)).to.equal(c);
    }
    const holder = await call(t.gw, bOfficer, 'POST', path, junk);
    expect(code(holder)).to.equal('MALFORMED');
    const unknown = await call(t.gw, bOfficer, 'POST', path, json({ status: 'accepted', note: 1 }));
    expect(unknown.status).to.equal(422);
    expect(unknown.json<{ code: string; errors: { keyword: string }[] }>().errors[0]).to.include({
      keyword: 'additionalProperties',
    });
    const m = await get(bOfficer, id);
    expect(m).to.include({ status: 'claimed', decision: null });
  });

  it('keeps the claim through non-final decisions, ends it with a final one, and sends each to the sender signed by the pinned gateway certificate', async function () {
    const id = await delivered(sampleEnvelope('funds.freeze', { priority: 'urgent' }));
    const path = `/v1/messages/${id}`;
    const senderEvents = await openEvents(t.gw, aSys);
    try {
      expect((await call(t.gw, bOfficer, 'POST', `${path}/claim`)).status).to.equal(200);
      const updates: string[] = [];
      for (const d of [
        { status: 'received' },
        { status: 'needs-info', reason: 'TESTONLY which branch holds the account?' },
        { status: 'in-progress', partnerCaseRef: 'VN-LS/TEST/1' },
      ]) {
        const res = await call(t.gw, bOfficer, 'POST', `${path}/decision`, json(d));
        expect(res.status, res.text).to.equal(202);
        const body = res.json<{ id: string; decided: Item }>();
        expect(body.decided).to.include({ status: 'claimed', decision: d.status });
        expect(body.decided.claim).to.include({ subject: subjectOf(bOfficer) });
        updates.push(body.id);
      }
      const final = await call(
        t.gw,
        bOfficer,
        'POST',
        `${path}/decision`,
        json({ status: 'partially-executed' }),
      );
      expect(final.status, final.text).to.equal(202);
      const finalBody = final.json<{ id: string; decided: Item }>();
      expect(finalBody.decided).to.include({
        status: 'decided',
        decision: 'partially-executed',
        claim: null,
      });
      updates.push(finalBody.id);

      expect(code(await call(t.gw, bOfficer, 'POST', `${path}/claim`))).to.equal('ALREADY_DECIDED');
      expect(
        code(await call(t.gw, bOfficer, 'POST', `${path}/decision`, json({ status: 'executed' }))),
      ).to.equal('ALREADY_DECIDED');
      expect(code(await call(t.gw, bOfficer, 'POST', `${path}/release`))).to.equal('NOT_CLAIMED');

      // Each status.update reaches the sender's inbox and verifies with the pinned gateway key.
      const pinned = parsePemChain((await getTestPki()).text('gateway/gateway.crt.pem'))[0]!;
      for (const [k, u] of updates.entries()) {
        await eventually(
          async () => (await t.gw.store.getMessage(u))?.status === 'delivered',
          10_000,
          'update delivery',
        );
        const res = await call(t.gw, aSys, 'GET', `/v1/messages/${u}`);
        const m = res.json<{ jws: string; envelope: Envelope }>();
        const { payload, protectedHeader } = await compactVerify(m.jws, pinned.publicKey);
        const env = JSON.parse(Buffer.from(payload).toString('utf8')) as Envelope;
        expect(env).to.deep.equal(m.envelope);
        expect(env).to.include({ type: 'status.update', from: B, to: A, inReplyTo: id });
        expect(env.body['status']).to.equal(
          ['received', 'needs-info', 'in-progress', 'partially-executed'][k],
        );
        expect(env.body['decidedBy']).to.deep.equal({
          subject: subjectOf(bOfficer),
          name: `Officer 01 ${B}`,
        });
        expect(protectedHeader.typ).to.equal('casebridge-message+jws');
        expect(decodeProtectedHeader(m.jws).x5c![0]).to.equal(pinned.raw.toString('base64'));
      }
      const inbox = await call(t.gw, aSys, 'GET', '/v1/inbox?type=status.update&status=all');
      const ids = inbox.json<{ items: Item[] }>().items.map((i) => i.id);
      expect(ids).to.include.members(updates);

      // The sender heard each update arrive, and that its message was answered.
      await senderEvents.next((e) => e.event === 'arrived' && e.data['id'] === updates[3]);
      const replied = await senderEvents.next(
        (e) => e.event === 'replied' && e.data['id'] === id && e.data['status'] === 'decided',
      );
      expect(replied.data).to.deep.equal({
        id,
        type: 'funds.freeze',
        priority: 'urgent',
        status: 'decided',
      });
      expect((await get(aSys, id)).decision).to.equal('partially-executed');
    } finally {
      senderEvents.close();
    }
  });

  it('takes the decision of a status.update the recipient agency submits itself', async function () {
    const id = await delivered(sampleEnvelope('evidence.request'));
    expect((await call(t.gw, bOfficer, 'POST', `/v1/messages/${id}/claim`)).status).to.equal(200);
    const progress = sampleEnvelope('status.update', { from: B, to: A, inReplyTo: id });
    progress.body = { status: 'in-progress' };
    expect((await submit(t.gw, bSys, signAs(progress, bSys))).status).to.equal(202);
    expect(await get(bOfficer, id)).to.include({ status: 'claimed', decision: 'in-progress' });
    const done = sampleEnvelope('status.update', { from: B, to: A, inReplyTo: id });
    done.body = { status: 'executed' };
    expect((await submit(t.gw, bSys, signAs(done, bSys))).status).to.equal(202);
    const m = await get(bOfficer, id);
    expect(m).to.include({ status: 'decided', decision: 'executed', claim: null });
    expect(m.history.at(-1)).to.deep.include({
      status: 'decided',
      event: 'decided',
      decision: 'executed',
    });
    expect(m.history.at(-1)!.by).to.include({ agency: B, role: 'system' });
  });

  it('lists open work by default and finished work one filter away', async function () {
    const open = await delivered(sampleEnvelope('suspect.handover'));
    const done = await delivered(sampleEnvelope('suspect.handover'));
    expect((await call(t.gw, bOfficer, 'POST', `/v1/messages/${done}/claim`)).status).to.equal(200);
    const rejected = await call(
      t.gw,
      bOfficer,
      'POST',
      `/v1/messages/${done}/decision`,
      json({ status: 'rejected', reason: 'TESTONLY outside the agreement' }),
    );
    expect(rejected.status, rejected.text).to.equal(202);
    const ids = async (q: string) =>
      (await call(t.gw, bOfficer, 'GET', `/v1/inbox?type=suspect.handover${q}`))
        .json<{ items: Item[] }>()
        .items.map((i) => i.id);
    expect(await ids(''))
      .to.include(open)
      .and.not.include(done);
    expect(await ids('&status=open'))
      .to.include(open)
      .and.not.include(done);
    expect(await ids('&status=decided')).to.deep.equal([done]);
    expect(await ids('&status=all')).to.include.members([open, done]);
    expect(await ids('&status=all&decision=rejected')).to.deep.equal([done]);
    expect(await ids('&decision=none'))
      .to.include(open)
      .and.not.include(done);
    const sent = await call(t.gw, aSys, 'GET', `/v1/messages?direction=sent&type=suspect.handover`);
    expect(sent.json<{ items: Item[] }>().items.map((i) => i.id)).to.include.members([open, done]);
  });

  it('takes a freeze deadline from executeBy when it comes first, flags due-soon and overdue, counts them in /metrics and logs the overdue id', async function () {
    const now = Date.now();
    const respondBy = new Date(now + 6 * 60 * MIN).toISOString();
    const executeBy = new Date(now + 4 * 60 * MIN).toISOString();
    const freeze = sampleEnvelope('funds.freeze', {
      priority: 'emergency',
      createdAt: new Date(now - MIN).toISOString(),
      respondBy,
    });
    freeze.body['executeBy'] = executeBy;
    const id = await delivered(freeze);
    const later = sampleEnvelope('funds.freeze', {
      priority: 'emergency',
      respondBy: new Date(now + 5 * 60 * MIN).toISOString(),
    });
    later.body['executeBy'] = new Date(now + 48 * 60 * MIN).toISOString();
    const laterId = await delivered(later);

    const first = await call(
      t.gw,
      bOfficer,
      'GET',
      '/v1/inbox?priority=emergency&type=funds.freeze',
    );
    const items = first.json<{ items: Item[] }>().items;
    // Ordered by deadline: the 4-hour executeBy goes before a 5-hour respondBy.
    expect(items.map((i) => i.id).slice(0, 2)).to.deep.equal([id, laterId]);
    expect(items[0]).to.include({ deadline: executeBy, overdue: false, dueSoon: false });

    offset = 3 * 60 * MIN + 30 * MIN; // 3.5 h on: under a quarter of the 4 h 1 min left
    expect(await get(bOfficer, id)).to.include({ overdue: false, dueSoon: true });
    offset = 4 * 60 * MIN + MIN;
    expect(await get(aSys, id)).to.include({ overdue: true, dueSoon: false });
    const metrics = await (await fetch(`${t.gw.adminUrl}/metrics`)).text();
    expect(metrics).to.match(
      /^casebridge_messages_overdue\{agency="VN-LS",priority="emergency"\} [1-9]/m,
    );
    expect(metrics).to.match(
      /^casebridge_messages_due_soon\{agency="VN-LS",priority="emergency"\} \d+/m,
    );

    await t.gw.sweeper.sweep();
    const lines = t.logs.filter((l) => l.includes('message overdue'));
    const mine = lines.filter((l) => l.includes(id));
    expect(mine).to.have.length(1);
    for (const s of SAMPLE_PERSONAL_STRINGS) expect(mine[0]).to.not.include(s);
    expect(mine[0]).to.not.include(freeze.caseRef);
    await t.gw.sweeper.sweep();
    expect(t.logs.filter((l) => l.includes('message overdue') && l.includes(id))).to.have.length(1);
  });

  it('streams the caller agency’s changes as ids and statuses only, nothing to a third agency, with heartbeats and bounded streams', async function () {
    const [b, c] = await Promise.all([openEvents(t.gw, bOfficer), openEvents(t.gw, cOfficer)]);
    try {
      expect(b.status).to.equal(200);
      expect(b.headers['content-type']).to.match(/^text\/event-stream/);
      const env = sampleEnvelope('funds.freeze', { priority: 'emergency' });
      const id = await delivered(env);
      const arrived = await b.next((e) => e.event === 'arrived' && e.data['id'] === id);
      expect(arrived.data).to.deep.equal({
        id,
        type: 'funds.freeze',
        priority: 'emergency',
        status: 'delivered',
      });
      expect(Object.keys(JSON.parse(arrived.raw) as object)).to.deep.equal([
        'id',
        'type',
        'priority',
        'status',
      ]);
      expect((await call(t.gw, bOfficer2, 'POST', `/v1/messages/${id}/claim`)).status).to.equal(
        200,
      );
      await b.next(
        (e) => e.event === 'claimed' && e.data['id'] === id && e.data['status'] === 'claimed',
      );
      expect((await call(t.gw, bOfficer2, 'POST', `/v1/messages/${id}/release`)).status).to.equal(
        200,
      );
      await b.next((e) => e.event === 'released' && e.data['status'] === 'delivered');

      await eventually(async () => b.pings > 0 && c.pings > 0, 5000, 'heartbeats');
      expect(c.events.filter((e) => e.data['id'] === id)).to.deep.equal([]);
      expect(JSON.stringify(b.events)).to.not.include(env.caseRef);
    } finally {
      b.close();
      c.close();
    }

    // Eight streams per certificate at most; the ninth is refused, and closing frees them.
    const many = await Promise.all(Array.from({ length: 8 }, () => openEvents(t.gw, bSys)));
    try {
      expect(many.map((s) => s.status)).to.deep.equal(Array(8).fill(200));
      const ninth = await openEvents(t.gw, bSys);
      expect(ninth.status).to.equal(429);
      expect(JSON.parse(ninth.body)).to.include({ code: 'RATE_LIMITED' });
    } finally {
      for (const s of many) s.close();
    }
    await eventually(
      async () => {
        const text = await (await fetch(`${t.gw.adminUrl}/metrics`)).text();
        return /^casebridge_event_streams 0$/m.test(text);
      },
      5000,
      'streams cleaned up',
    );
    const again = await openEvents(t.gw, bSys);
    expect(again.status).to.equal(200);
    again.close();
    const auditor = await openEvents(t.gw, await identity(B, 'auditor'));
    expect(auditor.status).to.equal(403);
  });

  it('ends the event streams when the change feed of other gateways resumes after a gap (PostgreSQL)', async function () {
    if (t.databaseUrl === undefined) this.skip(); // one process on SQLite: no feed between gateways
    const b = await openEvents(t.gw, bOfficer);
    try {
      expect(b.status).to.equal(200);
      await pgExec(
        t.databaseUrl,
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'`,
      );
      // Its client reconnects and reads the list again (protocol §5.5).
      await eventually(async () => b.ended, 5000, 'the stream to end');
    } finally {
      b.close();
    }
    const again = await openEvents(t.gw, bOfficer);
    expect(again.status).to.equal(200);
    again.close();
  });
});

describe('claim lapse on the gateway timer (short CASEBRIDGE_CLAIM_TTL_S)', function () {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway({ CASEBRIDGE_CLAIM_TTL_S: '1' });
  });
  after(async () => t?.stop());

  it('returns the message to delivered, with a message.claim-lapsed entry, a history item and an event, without any request', async function () {
    const aSys = await identity(A, 'system');
    const bOfficer = await identity(B, 'officer');
    const env = sampleEnvelope('evidence.request');
    expect((await submit(t.gw, aSys, signAs(env, aSys))).status).to.equal(202);
    await eventually(
      async () => (await t.gw.store.getMessage(env.id))?.status === 'delivered',
      10_000,
      'delivery',
    );
    const stream = await openEvents(t.gw, bOfficer);
    try {
      const claim = await call(t.gw, bOfficer, 'POST', `/v1/messages/${env.id}/claim`);
      expect(claim.status).to.equal(200);
      const lapsed = await stream.next(
        (e) => e.event === 'lapsed' && e.data['id'] === env.id,
        5000,
      );
      expect(lapsed.data['status']).to.equal('delivered');
    } finally {
      stream.close();
    }
    const m = (await t.gw.store.getMessage(env.id))!;
    expect(m.status).to.equal('delivered');
    expect(m.claim).to.equal(null);
    expect((await t.gw.store.history(env.id)).at(-1)).to.deep.include({
      status: 'delivered',
      event: 'lapsed',
    });
    const last = (await t.gw.store.entries(0, await t.gw.store.treeSize()))
      .map(
        (e) =>
          JSON.parse(e.bytes.toString('utf8')) as {
            event: string;
            messageId?: string;
            actor: { role: string };
          },
      )
      .filter((e) => e.messageId === env.id)
      .at(-1)!;
    expect(last.event).to.equal('message.claim-lapsed');
    expect(last.actor.role).to.equal('gateway');
  });
});
