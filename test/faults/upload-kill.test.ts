/**
 * kill -9 of a gateway process in the middle of an evidence upload (protocol §9.1),
 * then a restart on the same data: the upload resumes from what reached the disk,
 * completes with the right hash, and nothing on disk is unaccounted for.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import type { Gateway } from '../../src/app.js';
import { freePort, identity, testEnv } from '../helpers/gateway.js';
import {
  createUpload,
  deterministicBytes,
  deterministicSha256,
  filesOnDisk,
  raw,
  streamPatch,
  TUS,
} from '../helpers/files.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const A = 'CN-GX-CZ';

function startChild(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [MAIN, 'serve'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`not ready: ${out.slice(-2000)}`)), 30_000);
    child.stderr!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('"message":"casebridge started"')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', () => reject(new Error(`exited: ${out.slice(-2000)}`)));
  });
}

describe('kill -9 during an evidence upload (protocol §9.1)', function () {
  this.timeout(120_000);

  it('resumes after a restart from the bytes on disk, stores the right file, leaves no orphan', async function () {
    const port = await freePort();
    const env = await testEnv({
      CASEBRIDGE_PORT: String(port),
      CASEBRIDGE_ADMIN_PORT: String(await freePort()),
    });
    const gw = { url: `https://127.0.0.1:${port}` } as Gateway;
    const aSys = await identity(A, 'system');
    const size = 48 * 1024 * 1024;
    const sha256 = deterministicSha256(size);
    let child = await startChild(env);
    try {
      const created = await createUpload(gw, aSys, size, { sha256 });
      expect(created.status).to.equal(201);
      const loc = String(created.headers['location']);

      // Stream a third, then kill the process while the PATCH is still open.
      const first = streamPatch(gw, aSys, loc, 0, size, size).catch(() => undefined);
      const partial = join(env['CASEBRIDGE_DATA_DIR']!, 'files', 'uploads', loc.slice(-32));
      for (let i = 0; i < 300; i++) {
        await new Promise((r) => setTimeout(r, 20));
        const st = await import('node:fs').then((fs) =>
          fs.statSync(partial, { throwIfNoEntry: false }),
        );
        if (st !== undefined && st.size > size / 3) break;
      }
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      await first;

      child = await startChild(env);
      const head = await raw(gw, aSys, 'HEAD', loc, TUS);
      expect(head.status).to.equal(200);
      const offset = Number(head.headers['upload-offset']);
      expect(offset).to.be.greaterThan(0).and.below(size);
      // The bytes on disk are exactly the stream's prefix.
      const h = createHash('sha256');
      for (const b of deterministicBytes(0, offset)) h.update(b);
      expect(createHash('sha256').update(readFileSync(partial)).digest('hex')).to.equal(
        h.digest('hex'),
      );

      const done = await streamPatch(gw, aSys, loc, offset, size);
      expect(done.status).to.equal(204);
      const files = join(env['CASEBRIDGE_DATA_DIR']!, 'files');
      const stored = readFileSync(join(files, 'objects', A, sha256));
      expect(createHash('sha256').update(stored).digest('hex')).to.equal(sha256);
      // Accounted for: the stored file, the completed upload's record; no lock, no partial.
      expect(filesOnDisk(files)).to.deep.equal([
        `objects/${A}/${sha256}`,
        `uploads/${loc.slice(-32)}.json`,
      ]);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
