/**
 * Handling codes through the API (protocol §2.2, docs/handling.md): H3 content never
 * leaves in an export, and no H2/H3 message is the parent of a message to a third agency.
 */
import { expect } from 'chai';
import { verifyBundle } from '../../src/audit/verify.js';
import { getTestPki } from '../helpers/pki.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
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

const A = 'CN-GX-CZ';
const B = 'VN-LS';
const C = 'VN-CB';

describe('handling codes through the API (protocol §2.2)', function () {
  let t: TestGateway;
  let aSys: Identity;
  let bSys: Identity;
  const ids: Record<string, string> = {};

  before(async function () {
    t = await startTestGateway({ CASEBRIDGE_EXPORT_GRANT: `${A},${B}` });
    [aSys, bSys] = await Promise.all([identity(A, 'system'), identity(B, 'system')]);
    for (const handling of ['H0', 'H2', 'H3'] as const) {
      const env = { ...sampleEnvelope('evidence.request', { from: A, to: B }), handling };
      const res = await submit(t.gw, aSys, signAs(env, aSys));
      expect(res.status, res.text).to.equal(202);
      ids[handling] = env.id;
    }
    await eventually(
      async () =>
        (await Promise.all(Object.values(ids).map((id) => t.gw.store.getMessage(id)))).every(
          (m) => m?.status === 'delivered',
        ),
      10_000,
      'delivery',
    );
    await eventually(
      async () => (await t.gw.store.latestCheckpoint())?.size === (await t.gw.store.treeSize()),
      5_000,
      'checkpoint',
    );
  });
  after(async () => t?.stop());

  for (const who of [A, B]) {
    it(`leaves H3 content out of an export with messages (auditor of ${who}); its entries stay`, async function () {
      const auditor = await identity(who, 'auditor');
      const res = await call(t.gw, auditor, 'GET', '/v1/audit/export?messages=true');
      expect(res.status, res.text).to.equal(200);
      const lines = res.text.trim().split('\n');
      const exported = lines
        .map((l) => JSON.parse(l) as { kind: string; id?: string; leaf?: string })
        .filter((l) => l.kind === 'message')
        .map((l) => l.id);
      expect(exported).to.include(ids['H0']);
      expect(exported).to.include(ids['H2']);
      expect(exported).not.to.include(ids['H3']);
      const events = lines
        .map((l) => JSON.parse(l) as { kind: string; leaf?: string })
        .filter((l) => l.kind === 'entry' && l.leaf !== undefined)
        .map(
          (l) =>
            JSON.parse(Buffer.from(l.leaf!, 'base64').toString('utf8')) as {
              event: string;
              messageId?: string;
            },
        )
        .filter((e) => e.messageId === ids['H3'])
        .map((e) => e.event);
      expect(events).to.include('message.accepted');
      const pinned = (await getTestPki()).text('trust.pem');
      const report = await verifyBundle(lines, {
        checkSignatures: true,
        vkey: (await call(t.gw, auditor, 'GET', '/v1/audit/key')).text.trim(),
        trustAnchors:
          pinned.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [],
      });
      expect(report.ok, JSON.stringify(report.firstFailure)).to.equal(true);
    });
  }

  it('the recipient reads its own H3 message in full', async function () {
    const res = await call(t.gw, bSys, 'GET', `/v1/messages/${ids['H3']}`);
    expect(res.status).to.equal(200);
    expect(res.json<{ content: string; jws: string }>().content).to.equal('available');
  });

  it('refuses an H3 or H2 message as the inReplyTo of a message to a third agency', async function () {
    for (const h of ['H2', 'H3']) {
      const env = sampleEnvelope('status.update', { from: A, to: C, inReplyTo: ids[h]! });
      const res = await submit(t.gw, aSys, signAs(env, aSys));
      expect(res.status, res.text).to.equal(422);
      expect(res.json<{ code: string }>().code).to.equal('UNKNOWN_REFERENCE');
      expect(await t.gw.store.getMessage(env.id)).to.equal(undefined);
    }
    // Between the two parties, the same reference is fine.
    const reply = sampleEnvelope('status.update', { from: B, to: A, inReplyTo: ids['H3']! });
    expect((await submit(t.gw, bSys, signAs(reply, bSys))).status).to.equal(202);
  });
});
