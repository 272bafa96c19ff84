import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { compactVerify, decodeProtectedHeader } from 'jose';
import type { Envelope } from '../../src/envelope/types.js';
import { issueCertificate, parsePemChain } from '../../src/pki/index.js';
import { SAMPLE_EXHIBIT, sampleEnvelope } from '../fixtures/envelopes.js';
import { uploadFile } from '../helpers/files.js';
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

interface Summary {
  id: string;
  priority: string;
  status: string;
  decision: string | null;
  claim: { subject: string; name: string; at: string; expiresAt: string } | null;
  inReplyTo: string | null;
}

describe('reading and deciding (protocol §5.3, §5.4)', function () {
  let t: TestGateway;
  let aSys: Identity;
  let aOfficer: Identity;
  let bSys: Identity;
  let bOfficer: Identity;
  let bOfficer2: Identity;
  let bAuditor: Identity;

  before(async function () {
    t = await startTestGateway();
    [aSys, aOfficer, bSys, bOfficer, bAuditor] = await Promise.all([
      identity(A, 'system'),
      identity(A, 'officer'),
      identity(B, 'system'),
      identity(B, 'officer'),
      identity(B, 'auditor'),
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
    // protocol §9.2: a transfer names an uploaded exhibit.
    expect((await uploadFile(t.gw, bSys, SAMPLE_EXHIBIT)).status).to.equal(204);
  });
  after(async () => t?.stop());

  async function accepted(env: Envelope, who = aSys): Promise<string> {
    const res = await submit(t.gw, who, signAs(env, who));
    expect(res.status, res.text).to.equal(202);
    return env.id;
  }

  async function delivered(id: string): Promise<void> {
    await eventually(
      async () => (await t.gw.store.getMessage(id))?.status === 'delivered',
      10_000,
      'delivery',
    );
  }

  it('lists the inbox most urgent first, then earliest respondBy, then oldest, with cursor paging', async function () {
    const day = 86_400_000;
    const routine = await accepted(sampleEnvelope('evidence.request', { priority: 'routine' }));
    const urgentLate = await accepted(
      sampleEnvelope('evidence.request', {
        priority: 'urgent',
        respondBy: new Date(Date.now() + 5 * day).toISOString(),
      }),
    );
    const urgentNoDeadline = await accepted(
      sampleEnvelope('evidence.request', { priority: 'urgent' }),
    );
    const urgentSoon = await accepted(
      sampleEnvelope('evidence.request', {
        priority: 'urgent',
        respondBy: new Date(Date.now() + day).toISOString(),
      }),
    );
    const emergency = await accepted(sampleEnvelope('funds.freeze', { priority: 'emergency' }));
    const expected = [emergency, urgentSoon, urgentLate, urgentNoDeadline, routine];

    const all = await call(t.gw, bOfficer, 'GET', '/v1/inbox');
    expect(all.status).to.equal(200);
    expect(all.json<{ items: Summary[] }>().items.map((i) => i.id)).to.deep.equal(expected);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `&cursor=${cursor}` : '';
      const page = await call(t.gw, bOfficer, 'GET', `/v1/inbox?limit=2${q}`);
      const body = page.json<{ items: Summary[]; nextCursor: string | null }>();
      expect(body.items.length).to.be.at.most(2);
      seen.push(...body.items.map((i) => i.id));
      cursor = body.nextCursor;
    } while (cursor);
    expect(seen).to.deep.equal(expected);

    const freezes = await call(t.gw, bOfficer, 'GET', '/v1/inbox?type=funds.freeze');
    expect(freezes.json<{ items: Summary[] }>().items.map((i) => i.id)).to.deep.equal([emergency]);
    const sent = await call(t.gw, aSys, 'GET', '/v1/messages?direction=sent&priority=urgent');
    expect(sent.json<{ items: Summary[] }>().items.map((i) => i.id)).to.deep.equal([
      urgentSoon,
      urgentLate,
      urgentNoDeadline,
    ]);
    const nothing = await call(t.gw, aSys, 'GET', '/v1/inbox');
    expect(nothing.json<{ items: Summary[] }>().items).to.deep.equal([]);
  });

  it('refuses bad list parameters with 400 INVALID_PARAMETER and auditors with 403', async function () {
    for (const q of [
      'limit=0',
      'limit=abc',
      'priority=high',
      'cursor=bogus',
      'status=lost',
      // Decisions are a filter of their own now.
      'status=rejected',
      'decision=claimed',
      'direction=up',
    ]) {
      const res = await call(t.gw, bOfficer, 'GET', `/v1/messages?${q}`);
      expect(res.status, q).to.equal(400);
      expect(res.json<{ code: string }>().code).to.equal('INVALID_PARAMETER');
    }
    const auditor = await call(t.gw, bAuditor, 'GET', '/v1/inbox');
    expect(auditor.status).to.equal(403);
    expect(auditor.json<{ code: string }>().code).to.equal('FORBIDDEN_ROLE');
  });

  it('lets one officer of the recipient claim, release and decide; the decision is a gateway-signed status.update', async function () {
    const id = await accepted(sampleEnvelope('evidence.request', { priority: 'urgent' }));
    await delivered(id);
    const path = `/v1/messages/${id}`;

    expect(
      (await call(t.gw, bSys, 'POST', `${path}/claim`)).json<{ code: string }>().code,
    ).to.equal('FORBIDDEN_ROLE');
    expect(
      (await call(t.gw, aOfficer, 'POST', `${path}/claim`)).json<{ code: string }>().code,
    ).to.equal('FORBIDDEN_ROLE');

    const noClaim = await call(t.gw, bOfficer, 'POST', `${path}/decision`, {
      type: 'application/json',
      data: JSON.stringify({ status: 'accepted' }),
    });
    expect(noClaim.status).to.equal(409);
    expect(noClaim.json<{ code: string }>().code).to.equal('NOT_CLAIMED');

    const claim = await call(t.gw, bOfficer, 'POST', `${path}/claim`);
    expect(claim.status, claim.text).to.equal(200);
    const second = await call(t.gw, bOfficer2, 'POST', `${path}/claim`);
    expect(second.status).to.equal(409);
    expect(second.json<{ code: string }>().code).to.equal('ALREADY_CLAIMED');
    expect(
      (await call(t.gw, bOfficer2, 'POST', `${path}/release`)).json<{ code: string }>().code,
    ).to.equal('NOT_CLAIMED');

    const release = await call(t.gw, bOfficer, 'POST', `${path}/release`);
    expect(release.status).to.equal(200);
    expect((await t.gw.store.getMessage(id))!.status).to.equal('delivered');
    expect((await call(t.gw, bOfficer2, 'POST', `${path}/claim`)).status).to.equal(200);

    const noReason = await call(t.gw, bOfficer2, 'POST', `${path}/decision`, {
      type: 'application/json',
      data: JSON.stringify({ status: 'rejected' }),
    });
    expect(noReason.status).to.equal(422);
    const problem = noReason.json<{ code: string; errors: { path: string; keyword: string }[] }>();
    expect(problem.code).to.equal('SCHEMA_INVALID');
    expect(problem.errors[0]).to.include({ path: '/reason', keyword: 'required' });
    const dup = await call(t.gw, bOfficer2, 'POST', `${path}/decision`, {
      type: 'application/json',
      data: '{"status":"accepted","status":"rejected"}',
    });
    expect(dup.json<{ code: string }>().code).to.equal('MALFORMED');
    const wrongType = await call(t.gw, bOfficer2, 'POST', `${path}/decision`, {
      type: 'text/plain',
      data: '{}',
    });
    expect(wrongType.json<{ code: string }>().code).to.equal('UNSUPPORTED_MEDIA_TYPE');

    const decided = await call(t.gw, bOfficer2, 'POST', `${path}/decision`, {
      type: 'application/json',
      data: JSON.stringify({ status: 'accepted' }),
    });
    expect(decided.status, decided.text).to.equal(202);
    const body = decided.json<{ id: string; receipt: string; decided: Summary }>();
    // `accepted` is not final: the officer keeps the claim.
    expect(body.decided).to.include({ id, status: 'claimed', decision: 'accepted' });
    expect(body.decided.claim).to.include({ name: 'Officer 02 VN-LS' });

    const final = await call(t.gw, bOfficer2, 'POST', `${path}/decision`, {
      type: 'application/json',
      data: JSON.stringify({ status: 'executed' }),
    });
    expect(final.status, final.text).to.equal(202);
    const finalBody = final.json<{ id: string; decided: Summary }>();
    expect(finalBody.decided).to.include({ id, status: 'decided', decision: 'executed' });
    expect(finalBody.decided.claim).to.equal(null);

    const original = (await t.gw.store.getMessage(id))!;
    expect(original.decision).to.equal('executed');
    expect(
      (await t.gw.store.history(id)).map((h) => [h.status, h.event, h.decision]),
    ).to.deep.equal([
      ['accepted', 'accepted', undefined],
      ['queued', 'queued', undefined],
      ['delivered', 'delivered', undefined],
      ['claimed', 'claimed', undefined],
      ['delivered', 'released', undefined],
      ['claimed', 'claimed', undefined],
      ['claimed', 'decided', 'accepted'],
      ['decided', 'decided', 'executed'],
    ]);

    // The sender reads the status.update: signed by the gateway on the officer's behalf.
    await delivered(body.id);
    const update = await call(t.gw, aOfficer, 'GET', `/v1/messages/${body.id}`);
    expect(update.status).to.equal(200);
    const m = update.json<{ jws: string; envelope: Envelope }>();
    expect(m.envelope).to.include({ type: 'status.update', from: B, to: A, inReplyTo: id });
    const officerCert = new X509Certificate(bOfficer2.cert);
    expect(m.envelope.body['decidedBy']).to.deep.equal({
      subject: 'sha256:' + officerCert.fingerprint256.replace(/:/g, '').toLowerCase(),
      name: 'Officer 02 VN-LS',
    });
    // Verified with the gateway certificate the test pins, never with the key the JWS carries.
    const pinned = parsePemChain((await getTestPki()).text('gateway/gateway.crt.pem'))[0]!;
    await compactVerify(m.jws, pinned.publicKey);
    const header = decodeProtectedHeader(m.jws);
    const carried = new X509Certificate(Buffer.from(header.x5c![0]!, 'base64'));
    expect(carried.raw.equals(pinned.raw)).to.equal(true);

    const thread = await call(t.gw, aOfficer, 'GET', `/v1/messages/${id}/thread`);
    expect(thread.json<{ items: Summary[] }>().items.map((i) => i.id)).to.deep.equal([
      id,
      body.id,
      finalBody.id,
    ]);
    const fromReply = await call(t.gw, bOfficer, 'GET', `/v1/messages/${body.id}/thread`);
    expect(fromReply.json<{ items: Summary[] }>().items.map((i) => i.id)).to.deep.equal([
      id,
      body.id,
      finalBody.id,
    ]);

    const again = await call(t.gw, bOfficer, 'POST', `${path}/claim`);
    expect(again.json<{ code: string }>().code).to.equal('ALREADY_DECIDED');

    const events = (await t.gw.store.entries(0, await t.gw.store.treeSize()))
      .map((e) => JSON.parse(e.bytes.toString('utf8')) as { event: string; messageId?: string })
      .filter((e) => e.messageId === id)
      .map((e) => e.event);
    expect(events).to.deep.equal([
      'message.accepted',
      'message.queued',
      'message.delivered',
      'message.claimed',
      'message.released',
      'message.claimed',
      'message.decided',
      'message.decided',
    ]);
  });

  it("lets the original sender's officers claim a reply addressed to them", async function () {
    const req = await accepted(sampleEnvelope('evidence.request'));
    const reply = await accepted(
      sampleEnvelope('evidence.transfer', { from: B, to: A, inReplyTo: req }),
      bSys,
    );
    await delivered(reply);
    expect((await call(t.gw, bOfficer, 'POST', `/v1/messages/${reply}/claim`)).status).to.equal(
      403,
    );
    const res = await call(t.gw, aOfficer, 'POST', `/v1/messages/${reply}/claim`);
    expect(res.status).to.equal(200);
  });
});

describe('before delivery (broker unreachable)', function () {
  let t: TestGateway;
  before(async function () {
    // Nothing listens on port 1: the relay keeps retrying, messages stay in the outbox.
    t = await startTestGateway({ CASEBRIDGE_AMQP_URL: 'amqp://guest:guest@127.0.0.1:1' });
  });
  after(async () => t?.stop());

  it('accepts into the outbox, refuses a claim with 409 NOT_DELIVERED, and reports not ready', async function () {
    const aSys = await identity(A, 'system');
    const env = sampleEnvelope('evidence.request');
    const res = await submit(t.gw, aSys, signAs(env, aSys));
    expect(res.status, res.text).to.equal(202);
    expect(await t.gw.store.outboxLag()).to.equal(1);
    const claim = await call(
      t.gw,
      await identity(B, 'officer'),
      'POST',
      `/v1/messages/${env.id}/claim`,
    );
    expect(claim.status).to.equal(409);
    expect(claim.json<{ code: string }>().code).to.equal('NOT_DELIVERED');

    const ready = await fetch(`${t.gw.adminUrl}/readyz`);
    expect(ready.status).to.equal(503);
    const body = (await ready.json()) as { checks: { broker: { ok: boolean } } };
    expect(body.checks.broker.ok).to.equal(false);
    const metrics = await (await fetch(`${t.gw.adminUrl}/metrics`)).text();
    expect(metrics).to.match(/^casebridge_outbox_lag 1$/m);
    expect(metrics).to.match(/^casebridge_broker_connected 0$/m);
  });
});
