import { gzipSync } from 'node:zlib';
import { connect } from 'node:tls';
import { expect } from 'chai';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import {
  auditEntriesOf,
  call,
  identity,
  signAs,
  startTestGateway,
  storeCounts,
  submit,
  type Identity,
  type TestGateway,
} from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';
import { complete, parseResponse, rawConnect } from '../helpers/raw.js';

interface Problem {
  code: string;
  status: number;
}

/** The `detail.code` of every message.refused entry appended since `from`. */
async function refusalsSince(t: TestGateway, from: number): Promise<string[]> {
  return (await auditEntriesOf<{ event: string; detail?: { code?: string } }>(t.gw.store, from))
    .filter((e) => e.event === 'message.refused')
    .map((e) => e.detail?.code ?? '');
}

describe('request bounds and body rules (protocol §3, §12)', function () {
  let t: TestGateway;
  let aSys: Identity;

  before(async function () {
    t = await startTestGateway({
      CASEBRIDGE_MAX_BYTES: '65536',
      CASEBRIDGE_BODY_TIMEOUT_S: '1',
      CASEBRIDGE_MAX_BODIES: '3',
      CASEBRIDGE_HEADER_TIMEOUT_S: '2',
    });
    aSys = await identity('CN-GX-CZ', 'system');
  });
  after(async () => t?.stop());

  it('refuses a compressed body with 415 and audits the refusal once, whether the gzip is good or corrupt', async function () {
    const jws = signAs(sampleEnvelope('evidence.request'), aSys);
    for (const [encoding, data] of [
      ['gzip', gzipSync(jws)],
      ['gzip', Buffer.from('1f8b08000000000000ffnot-gzip', 'latin1')],
      ['br', Buffer.from('corrupt brotli', 'latin1')],
    ] as const) {
      const size = await t.gw.store.treeSize();
      const before = storeCounts(t).messages;
      const x = await rawConnect(t.gw, aSys);
      x.socket.write(
        `POST /v1/messages HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/jose\r\n` +
          `content-encoding: ${encoding}\r\ncontent-length: ${data.length}\r\n\r\n`,
      );
      x.socket.write(data);
      const r = parseResponse(await x.until(complete));
      x.socket.destroy();
      expect(r.status, r.body).to.equal(415);
      expect((JSON.parse(r.body) as Problem).code).to.equal('UNSUPPORTED_MEDIA_TYPE');
      expect(storeCounts(t).messages).to.equal(before);
      expect(await refusalsSince(t, size)).to.deep.equal(['UNSUPPORTED_MEDIA_TYPE']);
    }
    expect(t.logs.filter((l) => l.includes('unhandled error'))).to.have.length(0);
  });

  it('refuses an unknown charset with 415 on any route, the decision route too', async function () {
    const jws = signAs(sampleEnvelope('evidence.request'), aSys);
    const res = await submit(t.gw, aSys, jws, 'application/jose; charset=x-unknown');
    expect(res.status).to.equal(415);
    expect(res.json<Problem>().code).to.equal('UNSUPPORTED_MEDIA_TYPE');
    const officer = await identity('VN-LS', 'officer');
    const decision = await call(
      t.gw,
      officer,
      'POST',
      `/v1/messages/${sampleEnvelope('evidence.request').id}/decision`,
      { type: 'application/json; charset=x-unknown', data: '{"status":"accepted"}' },
    );
    expect(decision.status).to.equal(415);
    expect(decision.json<Problem>().code).to.equal('UNSUPPORTED_MEDIA_TYPE');
    const utf8 = await submit(t.gw, aSys, jws, 'application/jose; charset=UTF-8');
    expect(utf8.status).to.equal(202);
  });

  it('answers 413 from Content-Length before reading, and sends no 100 Continue for it', async function () {
    const size = await t.gw.store.treeSize();
    const x = await rawConnect(t.gw, aSys);
    x.socket.write(
      'POST /v1/messages HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/jose\r\n' +
        `content-length: ${10 * 1024 * 1024}\r\nexpect: 100-continue\r\n\r\n`,
    );
    const r = parseResponse(await x.until(complete));
    x.socket.destroy();
    expect(r.informational).to.deep.equal([]);
    expect(r.status).to.equal(413);
    expect((JSON.parse(r.body) as Problem).code).to.equal('TOO_LARGE');
    expect(r.headers['connection']).to.equal('close');
    expect(await refusalsSince(t, size)).to.deep.equal(['TOO_LARGE']);
  });

  it('sends 100 Continue for a body that will be read, and accepts it', async function () {
    const jws = signAs(sampleEnvelope('evidence.request'), aSys);
    const x = await rawConnect(t.gw, aSys);
    x.socket.write(
      'POST /v1/messages HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/jose\r\n' +
        `content-length: ${jws.length}\r\nexpect: 100-continue\r\n\r\n`,
    );
    await x.until((s) => s.startsWith('HTTP/1.1 100'));
    x.socket.write(jws);
    const r = parseResponse(await x.until(complete));
    x.socket.destroy();
    expect(r.informational).to.deep.equal([100]);
    expect(r.status).to.equal(202);
  });

  it('counts a chunked body while it streams: 413 once it passes the limit', async function () {
    const x = await rawConnect(t.gw, aSys);
    x.socket.write(
      'POST /v1/messages HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/jose\r\n' +
        'transfer-encoding: chunked\r\n\r\n',
    );
    const chunk = 'a'.repeat(16 * 1024);
    for (let i = 0; i < 6 && !complete(x.received()); i++)
      x.socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    const r = parseResponse(await x.until(complete));
    x.socket.destroy();
    expect(r.status).to.equal(413);
    expect((JSON.parse(r.body) as Problem).code).to.equal('TOO_LARGE');
  });

  it('cuts a chunked body that never ends after the body timeout with 503 and Retry-After', async function () {
    const started = Date.now();
    const x = await rawConnect(t.gw, aSys);
    x.socket.write(
      'POST /v1/messages HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/jose\r\n' +
        'transfer-encoding: chunked\r\n\r\n5\r\nabcde\r\n',
    );
    const r = parseResponse(await x.until(complete, 8000));
    await x.closed;
    expect(r.status).to.equal(503);
    expect((JSON.parse(r.body) as Problem).code).to.equal('UNAVAILABLE');
    expect(Number(r.headers['retry-after'])).to.be.greaterThan(0);
    expect(Date.now() - started).to.be.lessThan(6000);
  });

  it('holds at most CASEBRIDGE_MAX_BODIES bodies at once; past it 503 with Retry-After', async function () {
    const open = await Promise.all([0, 1, 2].map(() => rawConnect(t.gw, aSys)));
    for (const x of open) {
      x.socket.write(
        'POST /v1/messages HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/jose\r\n' +
          'content-length: 1000\r\n\r\nabc',
      );
    }
    await new Promise((r) => setTimeout(r, 200));
    const res = await submit(t.gw, aSys, signAs(sampleEnvelope('evidence.request'), aSys));
    expect(res.status).to.equal(503);
    expect(res.json<Problem>().code).to.equal('UNAVAILABLE');
    expect(res.headers['retry-after']).to.match(/^\d+$/);
    for (const x of open) x.socket.destroy();
    await Promise.all(open.map((x) => x.closed));
    await new Promise((r) => setTimeout(r, 100));
    const later = await submit(t.gw, aSys, signAs(sampleEnvelope('evidence.request'), aSys));
    expect(later.status).to.equal(202);
  });

  it('drops a connection that sends no complete headers within the header timeout', async function () {
    const x = await rawConnect(t.gw, aSys);
    x.socket.write('POST /v1/messages HTTP/1.1\r\nhost: localhost\r\n');
    // CASEBRIDGE_HEADER_TIMEOUT_S is 2 here; Node checks it once a second.
    const closed = await Promise.race([
      x.closed.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 5_000)),
    ]);
    x.socket.destroy();
    expect(closed).to.equal(true);
  });

  it('offers AEAD suites only: a TLS 1.2 CBC/SHA-1 handshake fails, TLS 1.3 is the default', async function () {
    for (const ciphers of ['ECDHE-ECDSA-AES128-SHA', 'ECDHE-RSA-AES128-SHA', 'AES128-SHA256']) {
      await expectHandshakeFails(t, aSys, ciphers);
    }
    const x = await rawConnect(t.gw, aSys);
    expect(x.socket.getProtocol()).to.equal('TLSv1.3');
    x.socket.destroy();
    const v12 = await rawConnect(t.gw, aSys, { maxVersion: 'TLSv1.2' });
    expect(v12.socket.getCipher().name).to.match(/GCM|CHACHA20/);
    v12.socket.destroy();
  });
});

async function expectHandshakeFails(t: TestGateway, who: Identity, ciphers: string): Promise<void> {
  const pki = await getTestPki();
  const url = new URL(t.gw.url);
  const outcome = await new Promise<string>((resolve) => {
    const s = connect({
      host: url.hostname,
      port: Number(url.port),
      servername: 'localhost',
      ca: pki.files['trust.pem'],
      cert: who.cert,
      key: who.key,
      maxVersion: 'TLSv1.2',
      ciphers,
    });
    s.once('secureConnect', () => {
      s.destroy();
      resolve(`connected with ${s.getCipher().name}`);
    });
    s.once('error', () => resolve('failed'));
  });
  expect(outcome, ciphers).to.equal('failed');
}

describe('rate limit per principal (protocol §12)', function () {
  let t: TestGateway;
  before(async function () {
    t = await startTestGateway({ CASEBRIDGE_RATE_PER_MIN: '3' });
  });
  after(async () => t?.stop());

  it('answers 429 RATE_LIMITED with Retry-After past CASEBRIDGE_RATE_PER_MIN, per certificate subject', async function () {
    const aSys = await identity('CN-GX-CZ', 'system');
    const aOfficer = await identity('CN-GX-CZ', 'officer');
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof submit>> | undefined;
    for (let i = 0; i < 4; i++) {
      last = await submit(t.gw, aSys, signAs(sampleEnvelope('evidence.request'), aSys));
      statuses.push(last.status);
    }
    expect(statuses).to.deep.equal([202, 202, 202, 429]);
    expect(last!.json<Problem>().code).to.equal('RATE_LIMITED');
    expect(Number(last!.headers['retry-after'])).to.be.within(1, 60);
    // Another principal of the same agency has its own bucket.
    const other = await submit(
      t.gw,
      aOfficer,
      signAs(sampleEnvelope('evidence.request'), aOfficer),
    );
    expect(other.status).to.equal(202);
    // Reads are not limited.
    expect((await call(t.gw, aSys, 'GET', '/v1/inbox')).status).to.equal(200);
  });
});
