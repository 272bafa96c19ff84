import { createHash, randomInt } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { expect } from 'chai';
import {
  identity,
  startTestGateway,
  type Identity,
  type TestGateway,
  tlsAs,
} from '../helpers/gateway.js';
import {
  createUpload,
  deterministicBytes,
  deterministicSha256,
  filesOnDisk,
  patchHeaders,
  raw,
  streamPatch,
  TUS,
} from '../helpers/files.js';

const A = 'CN-GX-CZ';

async function hashOf(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), async (src) => {
    for await (const c of src) h.update(c as Buffer);
  });
  return h.digest('hex');
}

describe('resumable evidence upload (protocol §9.1)', function () {
  this.timeout(180_000);

  it('completes a 1 GiB upload cut off three times at random points, and the stored file hashes right', async function () {
    const t = await startTestGateway();
    try {
      const aSys = await identity(A, 'system');
      const size = 1024 * 1024 * 1024;
      const sha256 = deterministicSha256(size);
      const created = await createUpload(t.gw, aSys, size, { sha256 });
      expect(created.status).to.equal(201);
      const loc = String(created.headers['location']);
      let offset = 0;
      const cuts = [1, 2, 3].map(() => randomInt(1, size / 4));
      for (const cutAfter of cuts) {
        const r = await streamPatch(t.gw, aSys, loc, offset, size, cutAfter);
        expect(r.cut).to.equal(true);
        const head = await raw(t.gw, aSys, 'HEAD', loc, TUS);
        expect(head.status).to.equal(200);
        const now = Number(head.headers['upload-offset']);
        expect(now)
          .to.be.at.least(offset)
          .and.at.most(offset + r.sent);
        offset = now;
      }
      expect(offset).to.be.greaterThan(0);
      const last = await streamPatch(t.gw, aSys, loc, offset, size);
      expect(last.status).to.equal(204);
      expect(last.offset).to.equal(size);
      const stored = join(t.dataDir, 'files', 'objects', A, sha256);
      expect(await hashOf(stored)).to.equal(sha256);
      expect((await t.gw.store.files.storedFile(A, sha256))?.size).to.equal(size);
    } finally {
      await t.stop();
    }
  });

  it('resumes through another gateway process sharing the files directory (file lock, hash recomputed from disk)', async function () {
    const shared = mkdtempSync(join(tmpdir(), 'casebridge-shared-files-'));
    const one: TestGateway = await startTestGateway({ CASEBRIDGE_FILES_DIR: shared });
    const two: TestGateway = await startTestGateway({ CASEBRIDGE_FILES_DIR: shared });
    try {
      const aSys = await identity(A, 'system');
      const size = 8 * 1024 * 1024;
      const sha256 = deterministicSha256(size);
      const created = await createUpload(one.gw, aSys, size, { sha256 });
      const loc = String(created.headers['location']);
      const cut = await streamPatch(one.gw, aSys, loc, 0, size, 3 * 1024 * 1024);
      expect(cut.cut).to.equal(true);
      // Both processes see the same upload and offset.
      const h1 = await raw(one.gw, aSys, 'HEAD', loc, TUS);
      const h2 = await raw(two.gw, aSys, 'HEAD', loc, TUS);
      expect(h2.headers['upload-offset']).to.equal(h1.headers['upload-offset']);
      const offset = Number(h2.headers['upload-offset']);
      const done = await streamPatch(two.gw, aSys, loc, offset, size);
      expect(done.status).to.equal(204);
      expect(await hashOf(join(shared, 'objects', A, sha256))).to.equal(sha256);
      expect(filesOnDisk(join(shared, 'locks'))).to.deep.equal([]);
      expect(
        filesOnDisk(join(shared, 'uploads')).filter((f) => !f.endsWith('.json')),
      ).to.deep.equal([]);
    } finally {
      await one.stop();
      await two.stop();
      rmSync(shared, { recursive: true, force: true });
    }
  });

  it('serializes PATCHes to one upload through two gateways: the holder lets go, bytes never interleave', async function () {
    const shared = mkdtempSync(join(tmpdir(), 'casebridge-shared-files-'));
    const one: TestGateway = await startTestGateway({ CASEBRIDGE_FILES_DIR: shared });
    const two: TestGateway = await startTestGateway({ CASEBRIDGE_FILES_DIR: shared });
    try {
      const aSys = await identity(A, 'system');
      const size = 16 * 1024 * 1024;
      const stall = 5 * 1024 * 1024;
      const sha256 = deterministicSha256(size);
      const created = await createUpload(one.gw, aSys, size, { sha256 });
      const loc = String(created.headers['location']);

      // Gateway 1 holds the upload's lock with a PATCH that stalls after 5 MiB.
      const held = heldPatch(one.gw, aSys, loc, 0, size, stall);
      await eventuallyOnDisk(join(shared, 'uploads', loc.split('/').pop()!), stall);
      // Gateway 2 gets the rest: it waits for the lock and asks the holder to let go;
      // the holder answers with the offset it reached and ends its connection.
      const started = Date.now();
      const rest = await streamPatch(two.gw, aSys, loc, stall, size);
      const waited = Date.now() - started;
      const first = await held.response;
      expect(first.status).to.equal(204);
      expect(first.offset).to.equal(stall);
      expect(first.connection).to.equal('close');
      expect(rest.status).to.equal(204);
      expect(rest.offset).to.equal(size);
      // It did not write while the lock was held (the holder's drain time is 3 s).
      expect(waited).to.be.at.least(2_500);
      expect(await hashOf(join(shared, 'objects', A, sha256))).to.equal(sha256);

      // Two PATCHes of a new upload race from offset 0, one through each gateway: one
      // writes, the other is refused (409) or stopped part way; the file hashes right.
      const size2 = 24 * 1024 * 1024;
      const sha2 = deterministicSha256(size2);
      const loc2 = String(
        (await createUpload(two.gw, aSys, size2, { sha256: sha2 })).headers['location'],
      );
      const race = await Promise.all([
        streamPatch(one.gw, aSys, loc2, 0, size2),
        streamPatch(two.gw, aSys, loc2, 0, size2),
      ]);
      expect(race.map((r) => r.status)).to.include(204);
      for (const r of race) expect(r.status).to.be.oneOf([204, 409, 503]);
      const now = Number((await raw(one.gw, aSys, 'HEAD', loc2, TUS)).headers['upload-offset']);
      if (now < size2)
        expect((await streamPatch(one.gw, aSys, loc2, now, size2)).status).to.equal(204);
      expect(await hashOf(join(shared, 'objects', A, sha2))).to.equal(sha2);
      expect(filesOnDisk(join(shared, 'locks'))).to.deep.equal([]);
      held.destroy();
    } finally {
      await one.stop();
      await two.stop();
      rmSync(shared, { recursive: true, force: true });
    }
  });
});

/** Waits until the partial file holds `want` bytes (a HEAD would take the lock). */
async function eventuallyOnDisk(path: string, want: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((statSync(path, { throwIfNoEntry: false })?.size ?? 0) >= want) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the upload never reached ${want} bytes`);
}

/**
 * A PATCH of [offset, end) that sends `stallAt` bytes and then sends nothing more,
 * its connection kept open (a client stuck on a slow link, holding the lock).
 */
function heldPatch(
  gw: { url: string },
  who: Identity,
  location: string,
  offset: number,
  end: number,
  stallAt: number,
): {
  response: Promise<{ status: number; offset: number; connection: string | undefined }>;
  destroy: () => void;
} {
  let req: ReturnType<typeof request> | undefined;
  const response = tlsAs(who).then(
    (tls) =>
      new Promise<{ status: number; offset: number; connection: string | undefined }>(
        (resolve, reject) => {
          req = request(
            new URL(location, gw.url),
            { method: 'PATCH', ...tls, headers: patchHeaders(offset, end - offset) },
            (res) => {
              res.resume();
              res.on('end', () =>
                resolve({
                  status: res.statusCode ?? 0,
                  offset: Number(res.headers['upload-offset']),
                  connection: res.headers['connection'],
                }),
              );
            },
          );
          req.on('error', reject);
          for (const b of deterministicBytes(offset, offset + stallAt)) req.write(b);
        },
      ),
  );
  return { response, destroy: () => req?.destroy() };
}
