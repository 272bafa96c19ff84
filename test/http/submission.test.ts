import { createHmac, createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { expect } from 'chai';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { signCompactSync } from '../../src/envelope/jws.js';
import {
  MESSAGE_TYPES,
  MESSAGE_TYP,
  type Envelope,
  type MessageType,
} from '../../src/envelope/types.js';
import { createCrl, createRootCa, issueCertificate } from '../../src/pki/index.js';
import { SAMPLE_EXHIBIT, sampleEnvelope, SAMPLE_PERSONAL_STRINGS } from '../fixtures/envelopes.js';
import { uploadFile } from '../helpers/files.js';
import {
  call,
  identity,
  signAs,
  startTestGateway,
  storeCounts,
  submit,
  writeTemp,
  type Identity,
  type TestGateway,
} from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';

const A = 'CN-GX-CZ';
const B = 'VN-LS';
const C = 'VN-CB';

interface Problem {
  code: string;
  status: number;
  errors?: { path: string; keyword: string }[];
}

describe('submission over mutual TLS (protocol §3)', function () {
  let t: TestGateway;
  let aSys: Identity;
  let aOfficer: Identity;
  let aAuditor: Identity;
  let bSys: Identity;
  let bOfficer: Identity;
  let cSys: Identity;
  let registryPath: string;

  before(async function () {
    const pki = await getTestPki();
    // The dev registry, with the CN-GX-CZ↔VN-CB agreement narrowed to requests only,
    // so a type outside an agreement can be refused.
    const registry = JSON.parse(pki.files['registry.json']!) as {
      agreements: { parties: string[]; types: string[] }[];
    };
    for (const ag of registry.agreements) {
      if (ag.parties.includes(C)) ag.types = ['evidence.request'];
    }
    registryPath = writeTemp('registry.json', JSON.stringify(registry));
    t = await startTestGateway({
      CASEBRIDGE_REGISTRY: registryPath,
      CASEBRIDGE_MAX_BYTES: '65536',
    });
    [aSys, aOfficer, aAuditor, bSys, bOfficer, cSys] = await Promise.all([
      identity(A, 'system'),
      identity(A, 'officer'),
      identity(A, 'auditor'),
      identity(B, 'system'),
      identity(B, 'officer'),
      identity(C, 'system'),
    ]);
    // protocol §9.2: the sample transfer names an uploaded exhibit.
    for (const who of [aSys, bSys]) {
      expect((await uploadFile(t.gw, who, SAMPLE_EXHIBIT)).status).to.equal(204);
    }
  });
  after(async () => t?.stop());

  /** Rows in the store's message table, read with a connection of our own. */
  function messageCount(): number {
    return storeCounts(t).messages;
  }

  async function send(env: Envelope, signer = aSys, client = signer) {
    return submit(t.gw, client, signAs(env, signer));
  }

  describe('accepts', function () {
    const accepted = new Map<MessageType, string>();

    it('a valid message of each of the five types, with a receipt that verifies', async function () {
      const request = sampleEnvelope('evidence.request');
      for (const type of MESSAGE_TYPES) {
        const reply = type === 'evidence.transfer' || type === 'status.update';
        // Replies go from the recipient back to the requester.
        const env = reply
          ? sampleEnvelope(type, { from: B, to: A, inReplyTo: request.id })
          : type === 'evidence.request'
            ? request
            : sampleEnvelope(type);
        const res = await send(env, reply ? bSys : aSys);
        expect(res.status, res.text).to.equal(202);
        const body = res.json<{
          id: string;
          digest: string;
          logIndex: number;
          status: string;
          receipt: string;
        }>();
        expect(body.id).to.equal(env.id);
        expect(body.status).to.equal('accepted');
        expect(body.digest).to.match(/^sha256:[0-9a-f]{64}$/);
        expect(res.headers['location']).to.equal(`/v1/messages/${env.id}`);

        // The receipt is a JWS by the gateway certificate, over the protocol §3 members.
        const header = decodeProtectedHeader(body.receipt);
        expect(header.typ).to.equal('casebridge-receipt+jws');
        const gatewayCert = new X509Certificate(Buffer.from(header.x5c![0]!, 'base64'));
        expect(gatewayCert.subject).to.include('OU=gateway');
        const pinned = new X509Certificate(readFileSync(t.gw.config.tlsCert));
        expect(gatewayCert.fingerprint256).to.equal(pinned.fingerprint256);
        const { payload } = await compactVerify(body.receipt, pinned.publicKey);
        const receipt = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<
          string,
          unknown
        >;
        expect(receipt).to.include({
          messageId: env.id,
          digest: body.digest,
          logIndex: body.logIndex,
          from: env.from,
          to: env.to,
          type,
        });
        expect(Date.parse(receipt['acceptedAt'] as string)).to.be.closeTo(Date.now(), 10_000);
        accepted.set(type, env.id);
      }
    });

    it('lets the recipient read it, and hides it from a third agency', async function () {
      const id = accepted.get('evidence.request')!;
      const asRecipient = await call(t.gw, bOfficer, 'GET', `/v1/messages/${id}`);
      expect(asRecipient.status).to.equal(200);
      const m = asRecipient.json<{
        id: string;
        envelope: Envelope;
        jws: string;
        history: { status: string }[];
      }>();
      expect(m.id).to.equal(id);
      expect(m.envelope.from).to.equal(A);
      expect(m.history[0]!.status).to.equal('accepted');
      const asSender = await call(t.gw, aSys, 'GET', `/v1/messages/${id}`);
      expect(asSender.status).to.equal(200);
      expect(asSender.json<{ jws: string }>().jws).to.equal(m.jws);

      const asThird = await call(t.gw, cSys, 'GET', `/v1/messages/${id}`);
      expect(asThird.status).to.equal(404);
      expect(asThird.json<Problem>().code).to.equal('NOT_FOUND');
      const unknown = await call(t.gw, cSys, 'GET', `/v1/messages/${randomUUID()}`);
      expect(unknown.json<Problem>().code).to.equal('NOT_FOUND');
      expect(unknown.text.length).to.equal(asThird.text.length);
    });

    it('replays the same message with 200 and the original body; other bytes under the same id get 409', async function () {
      const env = sampleEnvelope('evidence.request');
      const jws = signAs(env, aSys);
      const first = await submit(t.gw, aSys, jws);
      expect(first.status).to.equal(202);
      const again = await submit(t.gw, aSys, jws);
      expect(again.status).to.equal(200);
      expect(again.text).to.equal(first.text);
      const changed = await send({ ...env, caseRef: 'OTHER-REF' });
      expect(changed.status).to.equal(409);
      expect(changed.json<Problem>().code).to.equal('ID_CONFLICT');
      expect((await t.gw.store.getMessage(env.id))!.envelope!.caseRef).to.equal(env.caseRef);
    });

    it('accepts parallel duplicates exactly once', async function () {
      const env = sampleEnvelope('evidence.request');
      const jws = signAs(env, aSys);
      const results = await Promise.all(Array.from({ length: 8 }, () => submit(t.gw, aSys, jws)));
      const statuses = results.map((r) => r.status).sort();
      expect(statuses.filter((s) => s === 202)).to.have.length(1);
      expect(statuses.filter((s) => s === 200)).to.have.length(7);
      expect(new Set(results.map((r) => r.json<{ logIndex: number }>().logIndex)).size).to.equal(1);
    });
  });

  describe('refuses, storing nothing', function () {
    let before: number;
    let auditBefore: number;
    beforeEach(async function () {
      before = messageCount();
      auditBefore = await t.gw.store.treeSize();
    });

    async function expectRefused(
      res: { status: number; text: string; json<T>(): T },
      status: number,
      code: string,
    ) {
      expect(res.status, res.text).to.equal(status);
      const p = res.json<Problem>();
      expect(p.code).to.equal(code);
      expect(p.status).to.equal(status);
      expect(messageCount()).to.equal(before);
      for (const s of SAMPLE_PERSONAL_STRINGS) expect(res.text).not.to.include(s);
      return p;
    }

    function forge(header: Record<string, unknown>, env: Envelope, sig = 'AAAA'): string {
      const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
      return `${b64(header)}.${b64(env)}.${sig}`;
    }

    it('a request without a client certificate: 401 CLIENT_CERT_REQUIRED', async function () {
      const res = await call(t.gw, undefined, 'POST', '/v1/messages', {
        type: 'application/jose',
        data: signAs(sampleEnvelope('evidence.request'), aSys),
      });
      await expectRefused(res, 401, 'CLIENT_CERT_REQUIRED');
      expect(res.headers['content-type']).to.match(/^application\/problem\+json/);
    });

    it('a client certificate from an untrusted CA: 401 CLIENT_CERT_UNTRUSTED', async function () {
      const rogue = createRootCa({ name: 'Rogue Root', country: 'CN' });
      const leaf = issueCertificate({
        caCert: rogue.certPem,
        caKey: rogue.keyPem,
        agency: A,
        role: 'system',
        name: 'rogue',
      });
      const who = { cert: leaf.chainPem, key: leaf.keyPem };
      const res = await submit(t.gw, who, signAs(sampleEnvelope('evidence.request'), aSys));
      await expectRefused(res, 401, 'CLIENT_CERT_UNTRUSTED');
    });

    it('a body over the limit: 413 TOO_LARGE (before the media type is looked at)', async function () {
      const res = await submit(t.gw, aSys, 'a'.repeat(70_000), 'text/plain');
      await expectRefused(res, 413, 'TOO_LARGE');
    });

    it('the wrong content type: 415 UNSUPPORTED_MEDIA_TYPE', async function () {
      const res = await submit(
        t.gw,
        aSys,
        signAs(sampleEnvelope('evidence.request'), aSys),
        'application/json',
      );
      await expectRefused(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    });

    it('a plain JSON envelope: 415 as application/json, 400 MALFORMED as application/jose', async function () {
      const json = JSON.stringify(sampleEnvelope('evidence.request'));
      await expectRefused(
        await submit(t.gw, aSys, json, 'application/json'),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      );
      await expectRefused(await submit(t.gw, aSys, json), 400, 'MALFORMED');
    });

    it('not a compact JWS: 400 MALFORMED', async function () {
      await expectRefused(await submit(t.gw, aSys, 'not-a-jws'), 400, 'MALFORMED');
      await expectRefused(await submit(t.gw, aSys, 'e30.e30.e30.e30'), 400, 'MALFORMED');
    });

    it('a payload with a duplicate member name: 400 MALFORMED', async function () {
      const env = sampleEnvelope('evidence.request');
      const json = JSON.stringify(env).replace('"caseRef":', '"caseRef":"X","caseRef":');
      const key = createPrivateKey(aSys.key);
      const header = {
        alg: 'ES256',
        typ: MESSAGE_TYP,
        x5c: [new X509Certificate(aSys.cert).raw.toString('base64')],
      };
      const jws = signCompactSync(header, json, key);
      await expectRefused(await submit(t.gw, aSys, jws), 400, 'MALFORMED');
      expect(await t.gw.store.getMessage(env.id)).to.equal(undefined);
    });

    it('alg "none": 422 BAD_HEADER', async function () {
      const env = sampleEnvelope('evidence.request');
      const x5c = [new X509Certificate(aSys.cert).raw.toString('base64')];
      const res = await submit(t.gw, aSys, forge({ alg: 'none', typ: MESSAGE_TYP, x5c }, env, ''));
      await expectRefused(res, 422, 'BAD_HEADER');
    });

    it('HS256 keyed with the signer public key: 422 BAD_HEADER', async function () {
      const env = sampleEnvelope('evidence.request');
      const cert = new X509Certificate(aSys.cert);
      const header = { alg: 'HS256', typ: MESSAGE_TYP, x5c: [cert.raw.toString('base64')] };
      const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(env)).toString('base64url')}`;
      const pub = cert.publicKey.export({ type: 'spki', format: 'pem' });
      const sig = createHmac('sha256', pub).update(input).digest('base64url');
      await expectRefused(await submit(t.gw, aSys, `${input}.${sig}`), 422, 'BAD_HEADER');
    });

    it('RS256, a missing typ, crit and b64:false: 422 BAD_HEADER', async function () {
      const env = sampleEnvelope('evidence.request');
      const x5c = [new X509Certificate(aSys.cert).raw.toString('base64')];
      for (const header of [
        { alg: 'RS256', typ: MESSAGE_TYP, x5c },
        { alg: 'ES256', x5c },
        { alg: 'ES256', typ: MESSAGE_TYP, x5c, crit: ['exp'], exp: 1 },
        { alg: 'ES256', typ: MESSAGE_TYP, x5c, b64: false, crit: ['b64'] },
        { alg: 'ES256', typ: MESSAGE_TYP },
      ]) {
        await expectRefused(await submit(t.gw, aSys, forge(header, env)), 422, 'BAD_HEADER');
      }
    });

    it('an x5c chain from an untrusted CA: 422 CERT_INVALID', async function () {
      const rogue = createRootCa({ name: 'Rogue Root', country: 'VN' });
      const leaf = issueCertificate({
        caCert: rogue.certPem,
        caKey: rogue.keyPem,
        agency: A,
        role: 'system',
        name: 'rogue',
      });
      const res = await submit(
        t.gw,
        aSys,
        signAs(sampleEnvelope('evidence.request'), { cert: leaf.chainPem, key: leaf.keyPem }),
      );
      const p = await expectRefused(res, 422, 'CERT_INVALID');
      expect(p.code).to.equal('CERT_INVALID');
    });

    async function issued(opts: {
      notBefore?: Date;
      notAfter?: Date;
    }): Promise<Identity & { serialHex: string }> {
      const pki = await getTestPki();
      const leaf = issueCertificate({
        caCert: pki.files['ca/cn-root.crt.pem']!,
        caKey: pki.files['ca/cn-root.key.pem']!,
        agency: A,
        role: 'system',
        name: 'special',
        ...opts,
      });
      return { cert: leaf.chainPem, key: leaf.keyPem, serialHex: leaf.serialHex };
    }

    it('an expired signer certificate: 422 CERT_INVALID', async function () {
      const day = 86_400_000;
      const who = await issued({
        notBefore: new Date(Date.now() - 30 * day),
        notAfter: new Date(Date.now() - day),
      });
      await expectRefused(
        await submit(t.gw, aSys, signAs(sampleEnvelope('evidence.request'), who)),
        422,
        'CERT_INVALID',
      );
    });

    it('a not-yet-valid signer certificate: 422 CERT_INVALID', async function () {
      const day = 86_400_000;
      const who = await issued({
        notBefore: new Date(Date.now() + day),
        notAfter: new Date(Date.now() + 30 * day),
      });
      await expectRefused(
        await submit(t.gw, aSys, signAs(sampleEnvelope('evidence.request'), who)),
        422,
        'CERT_INVALID',
      );
    });

    it('a revoked certificate, after a CRL reload: 422 CERT_INVALID as signer, 401 over TLS', async function () {
      const pki = await getTestPki();
      const who = await issued({});
      const env = sampleEnvelope('evidence.request');
      const first = await submit(t.gw, who, signAs(env, who));
      expect(first.status, first.text).to.equal(202);
      before = messageCount();

      const crlPath = writeTemp('crl.pem', '');
      const crl = createCrl({
        caCert: pki.files['ca/cn-root.crt.pem']!,
        caKey: pki.files['ca/cn-root.key.pem']!,
        revoked: [{ serialHex: who.serialHex, at: new Date() }],
        thisUpdate: new Date(),
        nextUpdate: new Date(Date.now() + 7 * 86_400_000),
      });
      writeFileSync(crlPath, crl);
      (t.gw.config as { crl: string | undefined }).crl = crlPath;
      await t.gw.reloadCrl();

      const signed = await submit(t.gw, aSys, signAs(sampleEnvelope('evidence.request'), who));
      await expectRefused(signed, 422, 'CERT_INVALID');
      const overTls = await submit(t.gw, who, signAs(sampleEnvelope('evidence.request'), aSys));
      await expectRefused(overTls, 401, 'CLIENT_CERT_UNTRUSTED');
    });

    it('a signature that does not verify: 422 SIGNATURE_INVALID', async function () {
      const jws = signAs(sampleEnvelope('evidence.request'), aSys);
      const [h, p] = jws.split('.');
      const other = signAs(sampleEnvelope('evidence.request'), aSys).split('.')[2];
      await expectRefused(await submit(t.gw, aSys, `${h}.${p}.${other}`), 422, 'SIGNATURE_INVALID');
    });

    it('unknown members: 422 SCHEMA_INVALID with errors', async function () {
      const env = { ...sampleEnvelope('evidence.request'), extra: 'x' } as unknown as Envelope;
      const p = await expectRefused(await send(env), 422, 'SCHEMA_INVALID');
      expect(p.errors!.length).to.be.greaterThan(0);
      expect(p.errors![0]).to.include({ keyword: 'additionalProperties', path: '/extra' });
      const several = { ...sampleEnvelope('evidence.request'), priority: 'asap', extra: 1 };
      const r = await expectRefused(
        await send(several as unknown as Envelope),
        422,
        'SCHEMA_INVALID',
      );
      expect(r.errors!.map((e) => e.path).sort()).to.deep.equal(['/extra', '/priority']);
      const bodyExtra = sampleEnvelope('evidence.request');
      (bodyExtra.body as Record<string, unknown>)['unexpected'] = 1;
      const q = await expectRefused(await send(bodyExtra), 422, 'SCHEMA_INVALID');
      expect(q.errors![0]!.path).to.match(/^\/body/);
    });

    it("agency A's certificate signing from: B: 403 SENDER_MISMATCH", async function () {
      const env = sampleEnvelope('evidence.request', { from: B, to: A });
      await expectRefused(await send(env, aSys, aSys), 403, 'SENDER_MISMATCH');
    });

    it("A's TLS client submitting a message signed by B: 403 SENDER_MISMATCH", async function () {
      const env = sampleEnvelope('evidence.request', { from: B, to: A });
      await expectRefused(await send(env, bSys, aSys), 403, 'SENDER_MISMATCH');
    });

    it('an auditor submitting: 403 FORBIDDEN_ROLE', async function () {
      await expectRefused(
        await send(sampleEnvelope('evidence.request'), aSys, aAuditor),
        403,
        'FORBIDDEN_ROLE',
      );
      await expectRefused(
        await send(sampleEnvelope('evidence.request'), aAuditor, aSys),
        403,
        'FORBIDDEN_ROLE',
      );
    });

    it('an officer may submit for its own agency', async function () {
      const res = await send(sampleEnvelope('evidence.request'), aOfficer, aOfficer);
      expect(res.status).to.equal(202);
      before = messageCount();
    });

    it('no agreement for the pair, or for the type: 403 NOT_PERMITTED', async function () {
      await expectRefused(
        await send(sampleEnvelope('evidence.request', { to: 'CN-GD' })),
        403,
        'NOT_PERMITTED',
      );
      const unknown = await expectRefused(
        await send(sampleEnvelope('evidence.request', { to: 'KH-NOWHERE' })),
        403,
        'NOT_PERMITTED',
      );
      const noAgreement = await expectRefused(
        await send(sampleEnvelope('funds.freeze', { to: C })),
        403,
        'NOT_PERMITTED',
      );
      // An unregistered recipient and a missing agreement are told apart in `detail`.
      expect((unknown as { detail?: string }).detail).not.to.equal(
        (noAgreement as { detail?: string }).detail,
      );
      const ok = await send(sampleEnvelope('evidence.request', { to: C }));
      expect(ok.status).to.equal(202);
    });

    it('createdAt too far in the future: 422 STALE', async function () {
      const env = sampleEnvelope('evidence.request', {
        createdAt: new Date(Date.now() + 3_600_000).toISOString(),
      });
      await expectRefused(await send(env), 422, 'STALE');
    });

    it('inReplyTo to an unknown message, or to one between other agencies: 422 UNKNOWN_REFERENCE', async function () {
      const unknown = sampleEnvelope('status.update', { from: B, to: A, inReplyTo: randomUUID() });
      await expectRefused(await send(unknown, bSys), 422, 'UNKNOWN_REFERENCE');

      const other = sampleEnvelope('evidence.request', { to: C });
      expect((await send(other)).status).to.equal(202);
      before = messageCount();
      const across = sampleEnvelope('status.update', { from: B, to: A, inReplyTo: other.id });
      await expectRefused(await send(across, bSys), 422, 'UNKNOWN_REFERENCE');
    });

    it('writes a content-free message.refused audit entry for an authenticated refusal', async function () {
      const env = sampleEnvelope('evidence.request', { to: 'CN-GD' });
      await expectRefused(await send(env), 403, 'NOT_PERMITTED');
      const entries = await t.gw.store.entries(auditBefore, await t.gw.store.treeSize());
      const refused = entries
        .map((e) => JSON.parse(e.bytes.toString('utf8')) as Record<string, unknown>)
        .filter((e) => e['event'] === 'message.refused');
      expect(refused).to.have.length(1);
      expect(refused[0]!['detail']).to.deep.equal({ code: 'NOT_PERMITTED' });
      expect(refused[0]!['digest']).to.match(/^sha256:/);
      const text = entries.map((e) => e.bytes.toString('utf8')).join('\n');
      for (const s of SAMPLE_PERSONAL_STRINGS) expect(text).not.to.include(s);
    });
  });

  describe('afterwards', function () {
    it('kept personal data out of every audit entry', async function () {
      const all = (await t.gw.store.entries(0, await t.gw.store.treeSize()))
        .map((e) => e.bytes.toString('utf8'))
        .join('\n');
      expect(all).to.include('"message.accepted"');
      expect(all).to.include('"type":"suspect.handover"');
      for (const s of SAMPLE_PERSONAL_STRINGS) expect(all).not.to.include(s);
    });

    it('counted requests by code and accepted messages by type in /metrics', async function () {
      const text = await (await fetch(`${t.gw.adminUrl}/metrics`)).text();
      expect(text).to.match(/^casebridge_messages_accepted_total\{type="funds\.freeze"\} [1-9]/m);
      expect(text).to.match(
        /^casebridge_http_requests_total\{[^}]*status="403",code="NOT_PERMITTED"\} [1-9]/m,
      );
      expect(text).to.match(/^casebridge_messages_refused_total\{code="BAD_HEADER"\} [1-9]/m);
      const health = await fetch(`${t.gw.adminUrl}/healthz`);
      expect(health.status).to.equal(200);
      const ready = await fetch(`${t.gw.adminUrl}/readyz`);
      expect(ready.status).to.equal(200);
    });

    it('kept personal data out of the operational log', function () {
      const all = t.logs.join('\n');
      expect(all).to.include('submission refused');
      for (const s of SAMPLE_PERSONAL_STRINGS) expect(all).not.to.include(s);
    });
  });
});
