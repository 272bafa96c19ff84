import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { expect } from 'chai';
import {
  collect,
  type Identity,
  identity,
  type Response,
  startTestGateway,
  type TestGateway,
  tlsAs,
} from '../helpers/gateway.js';
import {
  createUpload,
  filesOnDisk,
  patchHeaders,
  patchUpload,
  raw,
  sha256Hex,
  TUS,
  uploadFile,
} from '../helpers/files.js';

const A = 'CN-GX-CZ';
const B = 'VN-LS';

describe('evidence upload over tus 1.0 (protocol §9.1)', function () {
  let t: TestGateway;
  let aSys: Identity;
  let aOfficer: Identity;
  let aAuditor: Identity;
  let bSys: Identity;

  before(async function () {
    t = await startTestGateway({
      CASEBRIDGE_FILE_MAX_BYTES: String(4 * 1024 * 1024),
      CASEBRIDGE_FILE_QUOTA_BYTES: String(6 * 1024 * 1024),
    });
    [aSys, aOfficer, aAuditor, bSys] = await Promise.all([
      identity(A, 'system'),
      identity(A, 'officer'),
      identity(A, 'auditor'),
      identity(B, 'system'),
    ]);
  });
  after(async () => t?.stop());

  const filesDir = () => join(t.dataDir, 'files');
  const uploadsLeft = () => filesOnDisk(join(filesDir(), 'uploads'));

  it('advertises tus 1.0 with creation, termination and checksum', async function () {
    const res = await raw(t.gw, aSys, 'OPTIONS', '/v1/files');
    expect(res.status).to.be.oneOf([200, 204]);
    expect(res.headers['tus-version']).to.include('1.0.0');
    const ext = String(res.headers['tus-extension']).split(',');
    expect(ext).to.include.members(['creation', 'termination', 'checksum']);
    expect(String(res.headers['tus-checksum-algorithm'])).to.include('sha256');
  });

  it('stores a file uploaded in chunks, hashed as written, once per agency', async function () {
    const data = randomBytes(300_000);
    const sha256 = sha256Hex(data);
    const created = await createUpload(t.gw, aSys, data.length, { sha256, filename: 'x.bin' });
    expect(created.status, created.text).to.equal(201);
    const loc = String(created.headers['location']);
    expect(loc).to.match(/^\/v1\/files\/[0-9a-f]{32}$/);
    let offset = 0;
    for (const size of [100_000, 150_000, 50_000]) {
      const res = await patchUpload(t.gw, aSys, loc, offset, data.subarray(offset, offset + size));
      expect(res.status, res.text).to.equal(204);
      offset += size;
      expect(res.headers['upload-offset']).to.equal(String(offset));
    }
    const head = await raw(t.gw, aSys, 'HEAD', loc, TUS);
    expect(head.headers['upload-offset']).to.equal(String(data.length));
    expect(head.headers['upload-length']).to.equal(String(data.length));
    // The client's file name is not kept anywhere, nor told back with who uploaded.
    expect(String(head.headers['upload-metadata'] ?? '')).not.to.include('filename');
    expect(head.headers['upload-metadata']).to.equal(
      `sha256 ${Buffer.from(sha256).toString('base64')}`,
    );
    const stored = readFileSync(join(filesDir(), 'objects', A, sha256));
    expect(sha256Hex(stored)).to.equal(sha256);
    expect((await t.gw.store.files.storedFile(A, sha256))?.size).to.equal(data.length);

    // A second upload of the same bytes by the same agency is answered at once.
    const again = await createUpload(t.gw, aOfficer, data.length, { sha256 });
    expect(again.status).to.equal(200);
    expect(again.headers['upload-offset']).to.equal(String(data.length));
    const head2 = await raw(t.gw, aOfficer, 'HEAD', String(again.headers['location']), TUS);
    expect(head2.headers['upload-offset']).to.equal(String(data.length));

    // Another agency keeps its own copy.
    expect((await uploadFile(t.gw, bSys, data)).status).to.equal(204);
    expect(filesOnDisk(join(filesDir(), 'objects'))).to.include.members([
      `${A}/${sha256}`,
      `${B}/${sha256}`,
    ]);
    const stored1 = (await t.gw.store.entries(0, await t.gw.store.treeSize()))
      .map((e) => JSON.parse(e.bytes.toString()) as { event: string; digest?: string })
      .filter((e) => e.event === 'file.stored' && e.digest === `sha256:${sha256}`);
    expect(stored1).to.have.length(2);
    expect(uploadsLeft().filter((f) => !f.endsWith('.json'))).to.deep.equal([]);
  });

  it('refuses a wrong declared hash with 422 DIGEST_MISMATCH and keeps nothing', async function () {
    const data = randomBytes(10_000);
    const created = await createUpload(t.gw, aSys, data.length, {
      sha256: sha256Hex(data.subarray(1)),
    });
    expect(created.status).to.equal(201);
    const before = uploadsLeft();
    const res = await patchUpload(t.gw, aSys, String(created.headers['location']), 0, data);
    expect(res.status).to.equal(422);
    expect(res.headers['content-type']).to.match(/^application\/problem\+json/);
    expect(res.json().code).to.equal('DIGEST_MISMATCH');
    expect(uploadsLeft().length).to.be.below(before.length);
    expect(filesOnDisk(join(filesDir(), 'objects', A))).not.to.include(sha256Hex(data));
    const head = await raw(t.gw, aSys, 'HEAD', String(created.headers['location']), TUS);
    expect(head.status).to.equal(404);
  });

  it('refuses bytes beyond the declared length, and a PATCH at the wrong offset', async function () {
    const data = randomBytes(1000);
    const created = await createUpload(t.gw, aSys, data.length, { sha256: sha256Hex(data) });
    const loc = String(created.headers['location']);
    const big = await patchUpload(t.gw, aSys, loc, 0, Buffer.concat([data, data]));
    expect(big.status).to.equal(413);
    expect(big.json().code).to.equal('TOO_LARGE');
    const wrong = await patchUpload(t.gw, aSys, loc, 5, data.subarray(5));
    expect(wrong.status).to.equal(409);
    expect(wrong.json().code).to.equal('OFFSET_MISMATCH');
    expect((await raw(t.gw, aSys, 'DELETE', loc, TUS)).status).to.equal(204);
  });

  it('keeps the tus 1.0 rules of a PATCH: version, content type, offset, a chunked body past the length', async function () {
    const data = randomBytes(1000);
    const created = await createUpload(t.gw, aSys, data.length, { sha256: sha256Hex(data) });
    const loc = String(created.headers['location']);
    const noVersion = await raw(
      t.gw,
      aSys,
      'PATCH',
      loc,
      { 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
      data,
    );
    expect(noVersion.status).to.equal(412);
    expect(noVersion.headers['tus-version']).to.equal('1.0.0');
    expect(noVersion.json().code).to.equal('INVALID_PARAMETER');
    const wrongType = await patchUpload(t.gw, aSys, loc, 0, data, {
      'content-type': 'application/octet-stream',
    });
    expect(wrongType.status).to.equal(400);
    expect(wrongType.headers['tus-resumable']).to.equal('1.0.0');
    expect(wrongType.json().code).to.equal('INVALID_PARAMETER');
    const badOffset = await patchUpload(t.gw, aSys, loc, 0, data, { 'upload-offset': '00' });
    expect(badOffset.status).to.equal(400);
    expect((await raw(t.gw, aSys, 'HEAD', loc, TUS)).headers['upload-offset']).to.equal('0');

    // A chunked body (no Content-Length) is cut at the declared length.
    const chunked = await chunkedPatch(t.gw, aSys, loc, [data, data]);
    expect(chunked.status).to.equal(413);
    expect(chunked.json().code).to.equal('TOO_LARGE');
    const head = await raw(t.gw, aSys, 'HEAD', loc, TUS);
    const offset = Number(head.headers['upload-offset']);
    expect(offset).to.be.at.most(data.length);
    const rest = await patchUpload(t.gw, aSys, loc, offset, data.subarray(offset));
    expect(rest.status, rest.text).to.equal(204);
    expect(rest.headers['upload-offset']).to.equal(String(data.length));
    expect((await t.gw.store.files.storedFile(A, sha256Hex(data)))?.size).to.equal(data.length);
  });

  it('refuses a file over CASEBRIDGE_FILE_MAX_BYTES from Upload-Length, before any byte', async function () {
    const res = await createUpload(t.gw, aSys, 4 * 1024 * 1024 + 1, { sha256: 'a'.repeat(64) });
    expect(res.status).to.equal(413);
    expect(res.json().code).to.equal('TOO_LARGE');
  });

  it("refuses an upload past the agency's quota with 507 QUOTA_EXCEEDED", async function () {
    // 300 kB stored, plus 4 MiB in progress, plus 2 MiB more > 6 MiB.
    const first = await createUpload(t.gw, aSys, 4 * 1024 * 1024, { sha256: 'b'.repeat(64) });
    expect(first.status).to.equal(201);
    const res = await createUpload(t.gw, aSys, 2 * 1024 * 1024, { sha256: 'c'.repeat(64) });
    expect(res.status).to.equal(507);
    expect(res.json().code).to.equal('QUOTA_EXCEEDED');
    expect(
      (await raw(t.gw, aSys, 'DELETE', String(first.headers['location']), TUS)).status,
    ).to.equal(204);
    expect(
      (await createUpload(t.gw, aSys, 2 * 1024 * 1024, { sha256: 'c'.repeat(64) })).status,
    ).to.equal(201);
  });

  it('requires a declared sha256 of 64 lowercase hex', async function () {
    for (const meta of [{}, { sha256: 'A'.repeat(64) }, { sha256: 'a'.repeat(63) }]) {
      const res = await createUpload(t.gw, aSys, 10, meta);
      expect(res.status).to.equal(400);
      expect(res.json().code).to.equal('INVALID_PARAMETER');
    }
  });

  it('lets only system and officer principals upload, and only to their own uploads', async function () {
    const res = await createUpload(t.gw, aAuditor, 10, { sha256: 'd'.repeat(64) });
    expect(res.status).to.equal(403);
    expect(res.json().code).to.equal('FORBIDDEN_ROLE');
    const none = await raw(t.gw, undefined, 'POST', '/v1/files', TUS);
    expect(none.status).to.equal(401);
    expect(none.json().code).to.equal('CLIENT_CERT_REQUIRED');

    const data = randomBytes(100);
    const created = await createUpload(t.gw, aSys, data.length, { sha256: sha256Hex(data) });
    const loc = String(created.headers['location']);
    for (const method of ['HEAD', 'PATCH', 'DELETE']) {
      const r =
        method === 'PATCH'
          ? await patchUpload(t.gw, bSys, loc, 0, data)
          : await raw(t.gw, bSys, method, loc, TUS);
      expect(r.status, method).to.equal(404);
    }
    expect((await raw(t.gw, aSys, 'HEAD', loc, TUS)).headers['upload-offset']).to.equal('0');
    for (const bad of ['/v1/files/..%2f..%2fcasebridge.sqlite', '/v1/files/xyz']) {
      expect((await raw(t.gw, aSys, 'HEAD', bad, TUS)).status).to.equal(404);
    }
  });

  it('checks a chunk against Upload-Checksum and discards it on a mismatch (460)', async function () {
    const data = randomBytes(2000);
    const created = await createUpload(t.gw, aSys, data.length, { sha256: sha256Hex(data) });
    const loc = String(created.headers['location']);
    const chunk = data.subarray(0, 1000);
    const good = Buffer.from(sha256Hex(chunk), 'hex').toString('base64');
    const bad = Buffer.from(sha256Hex(data.subarray(1, 1001)), 'hex').toString('base64');
    const refused = await patchUpload(t.gw, aSys, loc, 0, chunk, {
      'upload-checksum': `sha256 ${bad}`,
    });
    expect(refused.status).to.equal(460);
    expect(refused.json().code).to.equal('CHECKSUM_MISMATCH');
    expect((await raw(t.gw, aSys, 'HEAD', loc, TUS)).headers['upload-offset']).to.equal('0');
    const ok = await patchUpload(t.gw, aSys, loc, 0, chunk, {
      'upload-checksum': `sha256 ${good}`,
    });
    expect(ok.status).to.equal(204);
    const rest = await patchUpload(t.gw, aSys, loc, 1000, data.subarray(1000));
    expect(rest.status).to.equal(204);
    expect(await t.gw.store.files.storedFile(A, sha256Hex(data))).not.to.equal(undefined);
  });
});

/** A PATCH sent with `Transfer-Encoding: chunked`, one chunk per buffer. */
async function chunkedPatch(
  gw: { url: string },
  who: Identity,
  location: string,
  chunks: Buffer[],
): Promise<Response> {
  const tls = await tlsAs(who);
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(location, gw.url),
      { method: 'PATCH', ...tls, headers: patchHeaders(0) },
      (res) => collect(res, resolve),
    );
    // The gateway may answer and close before the last chunk is written.
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}
