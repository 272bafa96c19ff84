/**
 * The hostile corpus: every file in test/hostile/cases is one attack with its
 * expected status and code. For every case: the code is as expected, the process
 * is still up, nothing new is in the store (unless accepted), the audit log gains
 * only the one message.refused entry for an authenticated refusal (none for an
 * unauthenticated one). At the end every accepted message verifies offline.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { vkeyFor } from '../../src/audit/checkpoint.js';
import { verifyBundle } from '../../src/audit/verify.js';
import {
  auditEntriesOf,
  call,
  eventually,
  identity,
  startTestGateway,
  storeCounts,
  type TestGateway,
} from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';
import { complete, parseResponse, rawConnect } from '../helpers/raw.js';
import {
  buildRequest,
  hostileWorld,
  type BuiltRequest,
  type HostileCase,
  type HostileWorld,
} from './builder.js';

const CASES_DIR = fileURLToPath(new URL('../../../test/hostile/cases/', import.meta.url));

interface Answer {
  status: number;
  code: string | undefined;
}

async function send(t: TestGateway, r: BuiltRequest): Promise<Answer> {
  if (r.declaredLength !== undefined) {
    const x = await rawConnect(t.gw, r.client);
    x.socket.write(
      `POST /v1/messages HTTP/1.1\r\nhost: localhost\r\ncontent-type: ${r.contentType}\r\n` +
        `content-length: ${r.declaredLength}\r\n\r\n`,
    );
    const res = parseResponse(await x.until(complete));
    x.socket.destroy();
    return { status: res.status, code: (JSON.parse(res.body) as { code?: string }).code };
  }
  const pki = await getTestPki();
  return new Promise((resolve, reject) => {
    const req = request(
      new URL('/v1/messages', t.gw.url),
      {
        method: 'POST',
        agent: false,
        ca: pki.files['trust.pem'],
        servername: 'localhost',
        ...(r.client ? { cert: r.client.cert, key: r.client.key } : {}),
        headers: { 'content-type': r.contentType, 'content-length': r.body.length, ...r.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let code: string | undefined;
          try {
            code = (JSON.parse(text) as { code?: string }).code;
          } catch {
            code = undefined;
          }
          resolve({ status: res.statusCode ?? 0, code });
        });
      },
    );
    req.on('error', reject);
    req.end(r.body);
  });
}

interface Entry {
  event: string;
  messageId?: string;
  detail?: { code?: string };
}

async function entriesSince(t: TestGateway, from: number): Promise<Entry[]> {
  return (
    (await auditEntriesOf<Entry>(t.gw.store, from))
      // Delivery of earlier accepted messages runs on; only acceptance and refusal matter here.
      .filter((e) => e.event === 'message.accepted' || e.event === 'message.refused')
  );
}

describe('hostile corpus (test/hostile/cases)', function () {
  const files = readdirSync(CASES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort();
  let t: TestGateway;
  let world: HostileWorld;
  const accepted: string[] = [];

  before(async function () {
    this.timeout(60_000);
    world = await hostileWorld();
    t = await startTestGateway({
      CASEBRIDGE_CRL: world.crlPath,
      CASEBRIDGE_MAX_BYTES: '65536',
      CASEBRIDGE_EXPORT_GRANT: 'CN-GX-CZ',
    });
  });
  after(async () => t?.stop());

  it('holds at least 60 cases, each with an expected status', function () {
    expect(files.length).to.be.at.least(60);
  });

  for (const file of files) {
    const c = JSON.parse(readFileSync(CASES_DIR + file, 'utf8')) as HostileCase;
    it(`${file.replace(/\.json$/, '')}: ${c.about} → ${c.expect.status} ${c.expect.code ?? ''}`, async function () {
      const built = buildRequest(c, world);
      const size = await t.gw.store.treeSize();
      const messages = storeCounts(t).messages;

      const answer = await send(t, built);
      expect(answer.status, JSON.stringify(answer)).to.equal(c.expect.status);
      if (c.expect.code !== undefined) expect(answer.code).to.equal(c.expect.code);

      // The process is up and serving.
      const aSys = await identity('CN-GX-CZ', 'system');
      expect((await call(t.gw, aSys, 'GET', '/v1/openapi.json')).status).to.equal(200);

      const added = await entriesSince(t, size);
      if (answer.status === 202) {
        expect(storeCounts(t).messages).to.equal(messages + 1);
        expect(added.map((e) => e.event)).to.deep.equal(['message.accepted']);
        accepted.push(built.id!);
      } else {
        expect(storeCounts(t).messages).to.equal(messages);
        if (answer.status === 401) expect(added).to.deep.equal([]);
        else {
          expect(added.map((e) => [e.event, e.detail?.code])).to.deep.equal([
            ['message.refused', c.expect.code],
          ]);
        }
      }
    });
  }

  it('every accepted message verifies offline, with the log key and anchors pinned', async function () {
    this.timeout(30_000);
    expect(accepted.length).to.be.at.least(3);
    const pki = await getTestPki();
    await eventually(
      async () =>
        ((await t.gw.store.latestCheckpoint())?.size ?? 0) >= (await t.gw.store.treeSize()),
    );
    const auditor = await identity('CN-GX-CZ', 'auditor');
    const res = await call(t.gw, auditor, 'GET', '/v1/audit/export?messages=true');
    expect(res.status).to.equal(200);
    const lines = res.text.split('\n').filter((l) => l.length > 0);
    const exported = lines.filter((l) => l.includes('"jws"')).length;
    expect(exported).to.be.at.least(accepted.length);
    const logKey = createPublicKey(createPrivateKey(pki.files['log/log.key.pem']!));
    const report = await verifyBundle(lines, {
      checkSignatures: true,
      vkey: vkeyFor(`casebridge/GW-DEMO`, logKey),
      trustAnchors: [pki.files['trust.pem']!],
    });
    expect(report.failures, JSON.stringify(report.failures.slice(0, 3))).to.deep.equal([]);
    expect(report.ok).to.equal(true);
  });
});
