/**
 * Replay by meaning (protocol §3): the same id with the same envelope, whatever the
 * signature bytes, is answered 200 with the original body and receipt bytes; the
 * same id with another envelope is 409 ID_CONFLICT naming the message on record.
 */
import { createPrivateKey } from 'node:crypto';
import { expect } from 'chai';
import { signCompactSync, x5cOf } from '../../src/envelope/jws.js';
import { MESSAGE_TYP, type Envelope } from '../../src/envelope/types.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import {
  chainOf,
  identity,
  signAs,
  startTestGateway,
  submit,
  writeTemp,
  type Identity,
  type TestGateway,
} from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';

const A = 'CN-GX-CZ';
const B = 'VN-LS';
/** Order of the P-256 group (SEC 2 §2.4.2): S and n − S are both valid ECDSA signatures. */
const P256_N = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');

interface Problem {
  code: string;
  digest?: string;
  location?: string;
}

/** The same JWS with S replaced by n − S (the "high-S" twin of an ES256 signature). */
function flipS(jws: string): string {
  const [h, p, sig] = jws.split('.') as [string, string, string];
  const raw = Buffer.from(sig, 'base64url');
  expect(raw.length).to.equal(64);
  const s = BigInt('0x' + raw.subarray(32).toString('hex'));
  const flipped = Buffer.from((P256_N - s).toString(16).padStart(64, '0'), 'hex');
  return `${h}.${p}.${Buffer.concat([raw.subarray(0, 32), flipped]).toString('base64url')}`;
}

/** The envelope signed with its members in another order and whitespace: same meaning. */
function signReordered(env: Envelope, who: Identity): string {
  const key = createPrivateKey(who.key);
  const reordered = Object.fromEntries(Object.entries(env).reverse());
  const header = { alg: 'ES256', typ: MESSAGE_TYP, x5c: x5cOf(chainOf(who)) };
  return signCompactSync(header, JSON.stringify(reordered, null, 2), key);
}

describe('replay by meaning (protocol §3)', function () {
  let t: TestGateway;
  let aSys: Identity;
  let clock = Date.now();

  before(async function () {
    const pki = await getTestPki();
    // An agreement that ends in an hour, so a replay can outlive it.
    const registry = JSON.parse(pki.files['registry.json']!) as {
      agreements: { parties: string[]; validUntil: string }[];
    };
    for (const ag of registry.agreements) {
      if (ag.parties.includes(A) && ag.parties.includes(B))
        ag.validUntil = new Date(clock + 3_600_000).toISOString();
    }
    t = await startTestGateway(
      { CASEBRIDGE_REGISTRY: writeTemp('registry.json', JSON.stringify(registry)) },
      { now: () => new Date(clock) },
    );
    aSys = await identity(A, 'system');
  });
  after(async () => t?.stop());

  it('answers a re-signed, a high-S and a re-serialized copy 200 with the original bytes', async function () {
    const env = sampleEnvelope('evidence.request', { from: A, to: B });
    const jws = signAs(env, aSys);
    const first = await submit(t.gw, aSys, jws);
    expect(first.status, first.text).to.equal(202);
    const receipt = first.json<{ receipt: string }>().receipt;

    const copies = [jws, signAs(env, aSys), flipS(jws), signReordered(env, aSys)];
    expect(new Set(copies).size).to.equal(4);
    for (const copy of copies) {
      const again = await submit(t.gw, aSys, copy);
      expect(again.status, again.text).to.equal(200);
      expect(again.text).to.equal(first.text);
      expect(again.json<{ receipt: string }>().receipt).to.equal(receipt);
      expect(again.headers['location']).to.equal(`/v1/messages/${env.id}`);
    }
    // The message on record is the first one, byte for byte.
    expect((await t.gw.store.getMessage(env.id))!.jws).to.equal(jws);
  });

  it('refuses another envelope under the same id: 409 naming the digest on record and its Location', async function () {
    const env = sampleEnvelope('evidence.request', { from: A, to: B });
    const first = await submit(t.gw, aSys, signAs(env, aSys));
    expect(first.status).to.equal(202);
    const digest = first.json<{ digest: string }>().digest;
    const changed = await submit(t.gw, aSys, signAs({ ...env, caseRef: 'OTHER-REF' }, aSys));
    expect(changed.status).to.equal(409);
    const p = changed.json<Problem>();
    expect(p.code).to.equal('ID_CONFLICT');
    expect(p.digest).to.equal(digest);
    expect(p.location).to.equal(`/v1/messages/${env.id}`);
    expect(changed.headers['location']).to.equal(`/v1/messages/${env.id}`);
  });

  it('accepts two differently signed copies racing each other once', async function () {
    const env = sampleEnvelope('evidence.request', { from: A, to: B });
    const copies = Array.from({ length: 6 }, () => signAs(env, aSys));
    const results = await Promise.all(copies.map((c) => submit(t.gw, aSys, c)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).to.deep.equal([200, 200, 200, 200, 200, 202]);
    expect(new Set(results.map((r) => r.text)).size).to.equal(1);
  });

  it('still answers a replay after the agreement expired; a new message is refused', async function () {
    const env = sampleEnvelope('evidence.request', { from: A, to: B });
    const first = await submit(t.gw, aSys, signAs(env, aSys));
    expect(first.status).to.equal(202);
    clock += 2 * 3_600_000;
    try {
      const again = await submit(t.gw, aSys, signAs(env, aSys));
      expect(again.status, again.text).to.equal(200);
      expect(again.text).to.equal(first.text);
      const fresh = sampleEnvelope('evidence.request', {
        from: A,
        to: B,
        createdAt: new Date(clock).toISOString(),
      });
      const refused = await submit(t.gw, aSys, signAs(fresh, aSys));
      expect(refused.status).to.equal(403);
      expect(refused.json<Problem>().code).to.equal('NOT_PERMITTED');
      // A changed envelope under the old id gets the agreement refusal first (check order).
      const changed = await submit(t.gw, aSys, signAs({ ...env, caseRef: 'X-2' }, aSys));
      expect(changed.json<Problem>().code).to.equal('NOT_PERMITTED');
    } finally {
      clock -= 2 * 3_600_000;
    }
  });
});
