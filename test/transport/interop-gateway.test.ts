import { X509Certificate, createHash } from 'node:crypto';
import amqp from 'amqplib';
import { expect } from 'chai';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { createTestVhost, type TestVhost } from '../helpers/amqp.js';
import {
  eventually,
  identity,
  signAs,
  startTestGateway,
  submit,
  type TestGateway,
} from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';

/**
 * protocol §5.2: the body is the sender's exact JWS, so any AMQP client can verify it
 * alone. This consumer uses amqplib, jose and node:crypto only: no gateway code.
 */
describe('interoperability: an agency reads its RabbitMQ inbox with its own client (protocol §5.2)', function () {
  this.timeout(60_000);
  let vhost: TestVhost;
  let t: TestGateway;

  before(async function () {
    vhost = await createTestVhost();
    t = await startTestGateway({
      CASEBRIDGE_AMQP_URL: vhost.url,
      CASEBRIDGE_EXTERNAL_INBOXES: 'VN-LS',
    });
  });
  after(async function () {
    await t?.stop();
    await vhost?.cleanup();
  });

  it('reports the broker ready in /readyz and connected in /metrics', async function () {
    await eventually(
      async () => (await fetch(`${t.gw.adminUrl}/readyz`)).status === 200,
      10_000,
      'ready',
    );
    const body = (await (await fetch(`${t.gw.adminUrl}/readyz`)).json()) as {
      checks: { broker: { ok: boolean; detail: string } };
    };
    expect(body.checks.broker).to.deep.equal({ ok: true, detail: 'amqp' });
    const metrics = await (await fetch(`${t.gw.adminUrl}/metrics`)).text();
    expect(metrics).to.match(/^casebridge_broker_connected 1$/m);
  });

  it('gets the exact JWS with the §5.2 properties and headers, and verifies sender and chain alone', async function () {
    const sender = await identity('CN-GX-CZ', 'system');
    const env = sampleEnvelope('evidence.request');
    const jws = signAs(env, sender);
    const res = await submit(t.gw, sender, jws);
    expect(res.status, res.text).to.equal(202);
    const accepted = res.json<{ digest: string; logIndex: number }>();
    await eventually(
      async () => (await t.gw.store.getMessage(env.id))?.status === 'queued',
      10_000,
      'queued',
    );

    const conn = await amqp.connect(vhost.url);
    const ch = await conn.createChannel();
    const msg = await new Promise<amqp.ConsumeMessage>((resolve) => {
      void ch.consume('casebridge.inbox.VN-LS', (m) => {
        if (m) resolve(m);
      });
    });
    ch.ack(msg);
    await conn.close();

    const body = msg.content.toString('ascii');
    expect(body).to.equal(jws);
    expect(msg.fields.routingKey).to.equal('VN-LS.evidence.request');
    expect(msg.fields.exchange).to.equal('casebridge.messages');
    expect(msg.properties).to.include({
      messageId: env.id,
      contentType: 'application/jose',
      type: 'evidence.request',
      deliveryMode: 2,
    });
    expect(Math.abs(msg.properties.timestamp * 1000 - Date.now())).to.be.below(60_000);
    const headers = msg.properties.headers ?? {};
    expect(headers['x-casebridge-digest']).to.equal(accepted.digest);
    expect(Number(headers['x-casebridge-log-index'])).to.equal(accepted.logIndex);
    expect(headers['x-casebridge-from']).to.equal('CN-GX-CZ');
    expect('sha256:' + createHash('sha256').update(msg.content).digest('hex')).to.equal(
      accepted.digest,
    );

    // Verify alone: signature with the x5c leaf, chain up to a trust anchor, sender = O.
    const header = decodeProtectedHeader(body);
    const chain = header.x5c!.map((c) => new X509Certificate(Buffer.from(c, 'base64')));
    const { payload } = await compactVerify(body, chain[0]!.publicKey, {
      algorithms: ['ES256', 'ES384', 'PS256', 'EdDSA'],
    });
    const envelope = JSON.parse(Buffer.from(payload).toString('utf8')) as {
      from: string;
      id: string;
    };
    expect(envelope.id).to.equal(env.id);
    const anchors = (await getTestPki()).files['trust.pem']!.match(
      /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g,
    )!.map((p) => new X509Certificate(p));
    let cert = chain[0]!;
    for (const next of [...chain.slice(1), undefined]) {
      const issuer = next ?? anchors.find((a) => cert.checkIssued(a));
      expect(issuer, 'issuer found').to.not.equal(undefined);
      expect(cert.verify(issuer!.publicKey)).to.equal(true);
      cert = issuer!;
      if (!next) break;
    }
    expect(anchors.some((a) => a.fingerprint256 === cert.fingerprint256)).to.equal(true);
    expect(chain[0]!.subject).to.include(`O=${envelope.from}`);

    // The gateway left the queue to the agency: no delivery recorded on its side.
    expect((await t.gw.store.getMessage(env.id))!.status).to.equal('queued');
  });
});
