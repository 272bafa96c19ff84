import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import type { AuditActor } from '../../src/audit/types.js';
import { FileLocker } from '../../src/files/file-lock.js';
import { TUS_VERSION, UploadService, type UploadProblem } from '../../src/files/uploads.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { sha256Hex, tusMetadata } from '../helpers/files.js';
import { GATEWAY } from '../store/contract.js';

const ACTOR: AuditActor = {
  agency: 'CN-GX-CZ',
  role: 'system',
  subject: 'sha256:' + 'a'.repeat(64),
};

/**
 * The upload service alone, behind plain HTTP: what it answers when another
 * request (of this process or another gateway's) keeps an upload's lock.
 */
describe('uploads: a lock another request keeps (protocol §9.1, §11)', function () {
  let dir: string;
  let store: SqliteStore;
  let server: Server;
  let port: number;
  const problems: UploadProblem[] = [];
  const internal: unknown[] = [];

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'casebridge-lock-'));
    store = new SqliteStore({ dataDir: dir, gatewayActor: GATEWAY });
    const uploads = new UploadService({
      directory: join(dir, 'files'),
      index: store.files,
      limits: { maxBytes: 1 << 20, quotaBytes: 1 << 30 },
      onInternalError: (e) => internal.push(e),
      lockTimeoutMs: 300,
    });
    server = createServer((req, res) => {
      void uploads.handle(req, res, ACTOR).then((problem) => {
        if (problem === undefined) return;
        problems.push(problem);
        res.statusCode = 503;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });

  after(async function () {
    await new Promise((r) => server.close(r));
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const send = (method: string, path: string, headers: Record<string, string>) =>
    new Promise<{ status: number; headers: IncomingHttpHeaders }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      });
      req.on('error', reject);
      req.end();
    });

  it('answers HEAD and DELETE UNAVAILABLE with a retry when the lock stays held, and logs no internal error', async function () {
    const created = await send('POST', '/v1/files', {
      'tus-resumable': TUS_VERSION,
      'upload-length': '10',
      'upload-metadata': tusMetadata({ sha256: sha256Hex(Buffer.alloc(10)) }),
    });
    expect(created.status).to.equal(201);
    const location = created.headers.location!;
    const id = location.split('/').pop()!;

    // Another process holds the lock and never lets go (its request hangs).
    const other = new FileLocker({ directory: join(dir, 'files', 'locks') });
    const held = other.newLock(id);
    await held.lock(new AbortController().signal, () => undefined);
    try {
      for (const method of ['HEAD', 'DELETE']) {
        problems.length = 0;
        const res = await send(method, location, { 'tus-resumable': TUS_VERSION });
        expect(res.status, method).to.equal(503);
        expect(problems, method).to.have.length(1);
        expect(problems[0]).to.include({ code: 'UNAVAILABLE', retryAfterS: 1 });
      }
    } finally {
      await held.unlock();
    }
    expect(internal).to.deep.equal([]);
    // Free again: the upload is there, untouched.
    const head = await send('HEAD', location, { 'tus-resumable': TUS_VERSION });
    expect(head.status).to.equal(200);
    expect(head.headers['upload-offset']).to.equal('0');
  });
});
