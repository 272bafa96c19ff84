import { randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { compactVerify } from 'jose';
import type { Envelope } from '../../src/envelope/types.js';
import { sampleEnvelope, SAMPLE_PERSONAL_STRINGS } from '../fixtures/envelopes.js';
import { MAX_CONCURRENT_BATCHES } from '../../src/http/batch.js';
import {
  auditEntriesOf,
  call,
  eventually,
  identity,
  signAs,
  startTestGateway,
  storeCounts,
  type Identity,
  type Response,
  type TestGateway,
} from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';
import { pgExec } from '../helpers/database.js';

const A = 'CN-GX-CZ';
const B = 'VN-LS';
const MAX_BYTES = 262144;
const NDJSON = 'application/x-ndjson';

interface Answer {
  line: number;
  status: number;
  body: {
    id?: string;
    digest?: string;
    logIndex?: number;
    status?: string | number;
    receipt?: string;
    code?: string;
  };
}

interface Problem {
  code: string;
  status: number;
}

describe('batch submission over mutual TLS (protocol §3.1)', function () {
  let t: TestGateway;
  let aSys: Identity;
  let bSys: Identity;
  let pinned: X509Certificate;

  before(async function () {
    // Each line takes a token of the rate (tested on its own below); these tests send thousands.
    t = await startTestGateway({
      CASEBRIDGE_MAX_BYTES: String(MAX_BYTES),
      CASEBRIDGE_RATE_PER_MIN: '1000000',
    });
    [aSys, bSys] = await Promise.all([identity(A, 'system'), identity(B, 'system')]);
    pinned = new X509Certificate(readFileSync(t.gw.config.tlsCert));
  });
  after(async () => t?.stop());

  function batch(lines: readonly string[], who = aSys, type = NDJSON): Promise<Response> {
    return call(t.gw, who, 'POST', '/v1/messages/batch', {
      type,
      data: lines.map((l) => l + '\n').join(''),
    });
  }

  function answers(res: Response): Answer[] {
    expect(res.status, res.text).to.equal(200);
    expect(res.headers['content-type']).to.match(/^application\/x-ndjson/);
    expect(res.text.endsWith('\n')).to.equal(true);
    return res.text
      .slice(0, -1)
      .split('\n')
      .map((l) => JSON.parse(l) as Answer);
  }

  async function refusedEntries(from: number): Promise<Record<string, unknown>[]> {
    return (await auditEntriesOf(t.gw.store, from)).filter((e) => e['event'] === 'message.refused');
  }

  const env = (over: Partial<Envelope> = {}) => sampleEnvelope('evidence.request', over);

  it('answers every line in order: good lines accepted with receipts, bad ones refused alone', async function () {
    const good1 = env();
    const good2 = env();
    const good3 = env();
    // A changed character inside the signature (not the last one, whose low bits are padding).
    const signedJws = signAs(env(), aSys);
    const at = signedJws.length - 10;
    const tampered =
      signedJws.slice(0, at) + (signedJws[at] === 'A' ? 'B' : 'A') + signedJws.slice(at + 1);
    const wrongSender = env({ from: B, to: A });
    const before = storeCounts(t).messages;
    const auditBefore = await t.gw.store.treeSize();

    const res = await batch([
      signAs(good1, aSys),
      tampered,
      'not a jws',
      signAs(good2, aSys),
      signAs(wrongSender, bSys),
      signAs(good3, aSys),
    ]);
    const got = answers(res);
    expect(got.map((a) => a.line)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(got.map((a) => a.status)).to.deep.equal([202, 422, 400, 202, 403, 202]);
    expect(got.map((a) => a.body.code)).to.deep.equal([
      undefined,
      'SIGNATURE_INVALID',
      'MALFORMED',
      undefined,
      'SENDER_MISMATCH',
      undefined,
    ]);
    // Every line is what the gateway's own OpenAPI document says a batch answer line is.
    const doc = (await call(t.gw, aSys, 'GET', '/v1/openapi.json')).json();
    const ajv = new Ajv2020.default({ strict: false });
    addFormats.default(ajv);
    ajv.addSchema({ $id: 'urn:test:openapi', components: doc['components'] });
    const lineSchema = ajv.compile({
      $ref: 'urn:test:openapi#/components/schemas/BatchAnswerLine',
    });
    for (const a of got) expect(lineSchema(a), JSON.stringify(lineSchema.errors)).to.equal(true);
    // Each refusal is a whole problem object with its own status.
    for (const a of got.filter((x) => x.status >= 400)) {
      expect(a.body).to.include({ status: a.status });
      expect(a.body).to.have.keys(['type', 'title', 'status', 'code', 'detail']);
    }

    const accepted = [good1, good2, good3];
    const acceptedAnswers = [got[0]!, got[3]!, got[5]!];
    for (const [k, a] of acceptedAnswers.entries()) {
      expect(a.body.id).to.equal(accepted[k]!.id);
      expect(a.body.status).to.equal('accepted');
      const { payload } = await compactVerify(a.body.receipt!, pinned.publicKey);
      const receipt = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>;
      expect(receipt).to.include({
        messageId: accepted[k]!.id,
        digest: a.body.digest,
        logIndex: a.body.logIndex,
      });
      // Durable and readable the moment the answer arrived.
      const stored = (await t.gw.store.getMessage(accepted[k]!.id))!;
      expect(stored.logIndex).to.equal(a.body.logIndex);
      expect(JSON.parse(stored.response)).to.deep.equal(a.body);
    }
    expect(storeCounts(t).messages).to.equal(before + 3);

    // Refusals are audited one by one, content-free, like single submissions.
    const refused = await refusedEntries(auditBefore);
    expect(refused.map((e) => (e['detail'] as { code: string }).code)).to.have.members([
      'SIGNATURE_INVALID',
      'MALFORMED',
      'SENDER_MISMATCH',
    ]);
    const text = (await t.gw.store.entries(auditBefore, await t.gw.store.treeSize()))
      .map((e) => e.bytes.toString('utf8'))
      .join('\n');
    for (const s of SAMPLE_PERSONAL_STRINGS) expect(text).not.to.include(s);
    for (const s of SAMPLE_PERSONAL_STRINGS) expect(t.logs.join('\n')).not.to.include(s);
  });

  it('replays within and across batches with the original body', async function () {
    const first = env();

    // The same message in a later batch, and one message twice in one batch.
    const firstJws = signAs(first, aSys);
    const r1 = answers(await batch([firstJws]));
    expect(r1[0]!.status).to.equal(202);
    const againJws = signAs(env(), aSys);
    const r2 = answers(await batch([firstJws, againJws, againJws]));
    expect(r2.map((a) => a.status)).to.deep.equal([200, 202, 200]);
    expect(r2[0]!.body).to.deep.equal(r1[0]!.body);
    expect(r2[2]!.body).to.deep.equal(r2[1]!.body);
  });

  it('accepts a duplicate id once and answers the other copy as a conflict', async function () {
    const original = env();
    const changed = { ...original, caseRef: original.caseRef + '-B' };
    const before = storeCounts(t).messages;
    const got = answers(await batch([signAs(original, aSys), signAs(changed, aSys)]));
    expect(got.map((a) => a.status)).to.deep.equal([202, 409]);
    expect(got[1]!.body.code).to.equal('ID_CONFLICT');
    expect(storeCounts(t).messages).to.equal(before + 1);
    expect((await t.gw.store.getMessage(original.id))!.envelope!.caseRef).to.equal(
      original.caseRef,
    );
  });

  it('accepts the earlier of two copies even when the store answers its checks later', async function () {
    // A store over the network (PostgreSQL) may answer the lines' reads out of order.
    const original = env();
    const changed = { ...original, caseRef: original.caseRef + '-B' };
    const store = t.gw.store;
    const recorded = store.recorded.bind(store);
    let first = true;
    store.recorded = async (id) => {
      const slow = id === original.id && first;
      first = false;
      if (slow) await new Promise((r) => setTimeout(r, 100));
      return recorded(id);
    };
    try {
      const got = answers(await batch([signAs(original, aSys), signAs(changed, aSys)]));
      expect(got.map((a) => a.status)).to.deep.equal([202, 409]);
    } finally {
      store.recorded = recorded;
    }
    expect((await store.getMessage(original.id))!.envelope!.caseRef).to.equal(original.caseRef);
  });

  it('lets a line reply to an earlier line of the same batch', async function () {
    const requestEnv = env();
    const followUp = sampleEnvelope('status.update', { inReplyTo: requestEnv.id });
    const orphan = sampleEnvelope('status.update', { inReplyTo: randomUUID() });
    const got = answers(
      await batch([signAs(requestEnv, aSys), signAs(followUp, aSys), signAs(orphan, aSys)]),
    );
    expect(got.map((a) => a.status)).to.deep.equal([202, 202, 422]);
    expect(got[2]!.body.code).to.equal('UNKNOWN_REFERENCE');
  });

  it('gives a line whose durable write fails its own problem, the others are accepted', async function () {
    const doomed = env();
    const fine = [env(), env(), env()];
    // A real failure inside the shared transaction: the database refuses this one row.
    const refuse = await refuseOneRow(t, doomed.id);
    try {
      const got = answers(
        await batch([
          signAs(fine[0]!, aSys),
          signAs(doomed, aSys),
          signAs(fine[1]!, aSys),
          signAs(fine[2]!, aSys),
        ]),
      );
      expect(got.map((a) => a.status)).to.deep.equal([202, 500, 202, 202]);
      expect(got[1]!.body.code).to.equal('INTERNAL');
      for (const e of fine) expect(await t.gw.store.getMessage(e.id)).to.not.equal(undefined);
      expect(await t.gw.store.getMessage(doomed.id)).to.equal(undefined);
    } finally {
      await refuse.drop();
    }
    // The log stayed gap-free: the failed write's index was used again, and every
    // index up to the size holds its entry (the transport appends queued and delivered
    // entries meanwhile, so the next message need not be the last one).
    const after = env();
    const next = answers(await batch([signAs(after, aSys)]));
    const idx = next[0]!.body.logIndex!;
    const [entry] = await t.gw.store.entries(idx, idx + 1);
    expect(JSON.parse(entry!.bytes.toString('utf8'))).to.include({
      event: 'message.accepted',
      index: idx,
      messageId: after.id,
    });
    const size = await t.gw.store.treeSize();
    const all = await t.gw.store.entries(0, size);
    expect(all.map((e) => e.index)).to.deep.equal([...Array(size).keys()]);
  });

  describe('limits', function () {
    async function expectWhole(res: Response, status: number, code: string) {
      expect(res.status, res.text).to.equal(status);
      expect(res.headers['content-type']).to.match(/^application\/problem\+json/);
      expect(res.json<Problem>().code).to.equal(code);
    }

    it('refuses more than 1,000 lines as a whole, storing nothing', async function () {
      const jws = signAs(env(), aSys);
      const before = storeCounts(t).messages;
      await expectWhole(await batch(Array(1001).fill(jws)), 413, 'TOO_LARGE');
      expect(storeCounts(t).messages).to.equal(before);
    });

    it('accepts exactly 1,000 lines', async function () {
      this.timeout(60_000);
      const lines = Array.from({ length: 1000 }, () => signAs(env(), aSys));
      const got = answers(await batch(lines));
      expect(got).to.have.length(1000);
      expect(got.every((a, i) => a.line === i + 1 && a.status === 202)).to.equal(true);
      const indexes = got.map((a) => a.body.logIndex!);
      expect(new Set(indexes).size).to.equal(1000);
    });

    it('refuses a declared length over 16 × the size limit before reading it', async function () {
      const pki = await getTestPki();
      const res = await new Promise<{ status: number; code: string }>((resolve, reject) => {
        const req = request(
          new URL('/v1/messages/batch', t.gw.url),
          {
            method: 'POST',
            agent: false,
            ca: pki.files['trust.pem'],
            servername: 'localhost',
            cert: aSys.cert,
            key: aSys.key,
            headers: { 'content-type': NDJSON, 'content-length': MAX_BYTES * 16 + 1 },
          },
          (r) => {
            const chunks: Buffer[] = [];
            r.on('data', (c: Buffer) => chunks.push(c));
            r.on('end', () =>
              resolve({
                status: r.statusCode ?? 0,
                code: (JSON.parse(Buffer.concat(chunks).toString()) as Problem).code,
              }),
            );
          },
        );
        req.on('error', reject);
        // Only a few bytes are sent: the answer must not wait for the rest.
        req.write('x');
      });
      expect(res).to.deep.equal({ status: 413, code: 'TOO_LARGE' });
    });

    it('refuses a streamed (chunked) body once it passes 16 × the size limit', async function () {
      const pki = await getTestPki();
      const line = Buffer.from('A'.repeat(MAX_BYTES - 1) + '\n');
      const res = await new Promise<{ status: number; code: string }>((resolve, reject) => {
        const req = request(
          new URL('/v1/messages/batch', t.gw.url),
          {
            method: 'POST',
            agent: false,
            ca: pki.files['trust.pem'],
            servername: 'localhost',
            cert: aSys.cert,
            key: aSys.key,
            headers: { 'content-type': NDJSON, 'transfer-encoding': 'chunked' },
          },
          (r) => {
            const chunks: Buffer[] = [];
            r.on('data', (c: Buffer) => chunks.push(c));
            r.on('end', () =>
              resolve({
                status: r.statusCode ?? 0,
                code: (JSON.parse(Buffer.concat(chunks).toString()) as Problem).code,
              }),
            );
          },
        );
        req.on('error', reject);
        let sent = 0;
        const pump = () => {
          while (sent < 20) {
            sent++;
            if (!req.write(line)) return void req.once('drain', pump);
          }
          req.end();
        };
        pump();
      });
      expect(res).to.deep.equal({ status: 413, code: 'TOO_LARGE' });
    });

    it('answers 503 with Retry-After past the concurrent batches, and takes them again after', async function () {
      const pki = await getTestPki();
      const jws = signAs(env(), aSys);
      // Eight batches whose bodies are still arriving hold every place.
      const open = Array.from({ length: MAX_CONCURRENT_BATCHES }, () => {
        const req = request(new URL('/v1/messages/batch', t.gw.url), {
          method: 'POST',
          agent: false,
          ca: pki.files['trust.pem'],
          servername: 'localhost',
          cert: aSys.cert,
          key: aSys.key,
          headers: { 'content-type': NDJSON, 'transfer-encoding': 'chunked' },
        });
        const answer = new Promise<number>((resolve, reject) => {
          req.on('response', (r) => {
            r.resume();
            r.on('end', () => resolve(r.statusCode ?? 0));
          });
          req.on('error', reject);
        });
        req.write(jws);
        return { req, answer };
      });
      let res: Response | undefined;
      await eventually(async () => {
        res = await batch([jws]);
        return res.status === 503;
      });
      expect(res!.json<Problem>().code).to.equal('UNAVAILABLE');
      expect(res!.headers['retry-after']).to.equal('1');
      for (const o of open) o.req.end('\n');
      expect(await Promise.all(open.map((o) => o.answer))).to.deep.equal(
        Array(MAX_CONCURRENT_BATCHES).fill(200),
      );
      expect(answers(await batch([signAs(env(), aSys)]))[0]!.status).to.equal(202);
    });

    it('refuses one line over the size limit on its own', async function () {
      const good = env();
      const got = answers(await batch([signAs(good, aSys), 'A'.repeat(MAX_BYTES + 1)]));
      expect(got.map((a) => a.status)).to.deep.equal([202, 413]);
      expect(got[1]!.body.code).to.equal('TOO_LARGE');
    });

    it('refuses another media type, and an empty batch', async function () {
      const jws = signAs(env(), aSys);
      await expectWhole(
        await batch([jws], aSys, 'application/jose'),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      );
      await expectWhole(await batch([]), 400, 'MALFORMED');
    });

    it('audits a whole refused batch, without a digest', async function () {
      const auditBefore = await t.gw.store.treeSize();
      await expectWhole(
        await batch([signAs(env(), aSys)], aSys, 'text/plain'),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      );
      const refused = await refusedEntries(auditBefore);
      expect(refused).to.have.length(1);
      expect(refused[0]!['detail']).to.deep.equal({ code: 'UNSUPPORTED_MEDIA_TYPE' });
      expect(refused[0]).to.not.have.property('digest');
    });
  });
});

describe('batch lines and the rate limit (protocol §3.1, §12)', function () {
  const RATE = 5;
  let t: TestGateway;
  let aSys: Identity;

  before(async function () {
    t = await startTestGateway({ CASEBRIDGE_RATE_PER_MIN: String(RATE) });
    aSys = await identity(A, 'system');
  });
  after(async () => t?.stop());

  const send = (lines: readonly string[]) =>
    call(t.gw, aSys, 'POST', '/v1/messages/batch', {
      type: NDJSON,
      data: lines.map((l) => l + '\n').join(''),
    });

  it('counts every line against the principal: lines past the budget get 429 alone, the others are accepted', async function () {
    const before = storeCounts(t).messages;
    const auditBefore = await t.gw.store.treeSize();
    const lines = Array.from({ length: RATE + 3 }, () =>
      signAs(sampleEnvelope('evidence.request'), aSys),
    );
    const res = await send(lines);
    expect(res.status, res.text).to.equal(200);
    const got = res.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Answer);
    expect(got.map((a) => a.line)).to.deep.equal(lines.map((_, i) => i + 1));
    expect(got.map((a) => a.status)).to.deep.equal([
      ...Array<number>(RATE).fill(202),
      ...Array<number>(3).fill(429),
    ]);
    for (const a of got.slice(RATE)) expect(a.body.code).to.equal('RATE_LIMITED');
    expect(Number(res.headers['retry-after'])).to.be.within(1, 60);
    expect(storeCounts(t).messages).to.equal(before + RATE);
    // Like a single 429, a line past the rate is not audited as a refusal.
    const refused = (await auditEntriesOf(t.gw.store, auditBefore)).filter(
      (e) => e['event'] === 'message.refused',
    );
    expect(refused).to.deep.equal([]);

    // The budget is spent: the next batch is refused whole, before its body is read,
    // and so is a single submission.
    const again = await send([signAs(sampleEnvelope('evidence.request'), aSys)]);
    expect(again.status, again.text).to.equal(429);
    expect(again.json<Problem>().code).to.equal('RATE_LIMITED');
    expect(Number(again.headers['retry-after'])).to.be.within(1, 60);
    const single = await call(t.gw, aSys, 'POST', '/v1/messages', {
      type: 'application/jose',
      data: signAs(sampleEnvelope('evidence.request'), aSys),
    });
    expect(single.status).to.equal(429);
    expect(storeCounts(t).messages).to.equal(before + RATE);
  });
});
/** A trigger in the gateway's database that refuses the message row of `id`, on either engine. */
async function refuseOneRow(t: TestGateway, id: string): Promise<{ drop(): Promise<void> }> {
  const url = t.gw.config.databaseUrl;
  if (url !== undefined) {
    await pgExec(
      url,
      `CREATE FUNCTION test_refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'refused by test'; END $$;
       CREATE TRIGGER test_refuse_one BEFORE INSERT ON messages
         FOR EACH ROW WHEN (NEW.id = '${id}') EXECUTE FUNCTION test_refuse_one();`,
    );
    return {
      drop: async () => {
        await pgExec(
          url,
          'DROP TRIGGER test_refuse_one ON messages; DROP FUNCTION test_refuse_one()',
        );
      },
    };
  }
  const db = new Database(join(t.dataDir, 'casebridge.sqlite'));
  db.exec(`CREATE TRIGGER test_refuse_one BEFORE INSERT ON messages
    WHEN NEW.id = '${id}' BEGIN SELECT RAISE(ABORT, 'refused by test'); END`);
  return {
    drop: () => {
      db.exec('DROP TRIGGER test_refuse_one');
      db.close();
      return Promise.resolve();
    },
  };
}
