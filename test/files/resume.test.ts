import { createHash, randomInt } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { expect } from 'chai';
import { identity, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import {
  createUpload,
  deterministicSha256,
  filesOnDisk,
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
});
