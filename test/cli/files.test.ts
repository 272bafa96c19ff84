import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import {
  identity,
  signAs,
  startTestGateway,
  submit,
  type TestGateway,
} from '../helpers/gateway.js';
import { sha256Hex } from '../helpers/files.js';
import { getTestPki } from '../helpers/pki.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const A = 'CN-GX-CZ';
const B = 'VN-LS';

function run(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      { env: { ...process.env, ...env } },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('casebridge submit --attach and fetch (protocol §7, §9)', function () {
  this.timeout(60_000);
  let t: TestGateway;
  let dir: string;
  let conn: (agency: string) => string[];
  const env: Record<string, string> = {};

  before(async function () {
    t = await startTestGateway();
    const pki = await getTestPki();
    dir = mkdtempSync(join(tmpdir(), 'casebridge-cli-files-'));
    env['CASEBRIDGE_UPLOAD_STATE'] = join(dir, 'state', 'uploads.json');
    conn = (agency) => [
      '--cert',
      pki.path(`agencies/${agency}/system.crt.pem`),
      '--key',
      pki.path(`agencies/${agency}/system.key.pem`),
      '--ca',
      pki.path('trust.pem'),
      '--url',
      t.gw.url.replace('127.0.0.1', 'localhost'),
    ];
  });
  after(async () => t?.stop());

  it('uploads the attachments, fills in the items, submits; fetch downloads, resumes and verifies', async function () {
    const aSys = await identity(A, 'system');
    const request = sampleEnvelope('evidence.request');
    expect((await submit(t.gw, aSys, signAs(request, aSys))).status).to.equal(202);

    const files = [randomBytes(70_000), randomBytes(1234)];
    const paths = files.map((f, k) => {
      const p = join(dir, `exhibit-${k}.bin`);
      writeFileSync(p, f);
      return p;
    });
    const transfer = sampleEnvelope('evidence.transfer', { from: B, to: A, inReplyTo: request.id });
    const item = (transfer.body as { items: Record<string, unknown>[] }).items[0]!;
    (transfer.body as { items: unknown[] }).items = [
      { ...item, exhibitNo: 'EX-1', sha256: '0'.repeat(64), size: 0 },
      { ...item, exhibitNo: 'EX-2', sha256: '0'.repeat(64), size: 0 },
    ];
    const envPath = join(dir, 'transfer.json');
    writeFileSync(envPath, JSON.stringify(transfer));

    const sent = await run(['submit', envPath, '--attach', ...paths, ...conn(B)], env);
    expect(sent.code, sent.stderr).to.equal(0);
    const body = JSON.parse(sent.stdout) as { id: string; status: string };
    expect(body.status).to.equal('accepted');
    const m = (await t.gw.store.getMessage(body.id))!;
    const items = (m.envelope!.body as { items: { sha256: string; size: number }[] }).items;
    expect(items.map((i) => [i.sha256, i.size])).to.deep.equal(
      files.map((f) => [sha256Hex(f), f.length]),
    );
    expect(await t.gw.store.files.boundFiles(body.id)).to.have.length(2);
    // The upload state is cleared once the uploads are done.
    expect(
      Object.keys(JSON.parse(readFileSync(env['CASEBRIDGE_UPLOAD_STATE']!, 'utf8')) as object),
    ).to.deep.equal([]);

    // A partial download from an earlier run is resumed with Range.
    const out = join(dir, 'out');
    const first = sha256Hex(files[0]!);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(out);
    writeFileSync(join(out, `${first}.partial`), files[0]!.subarray(0, 30_000));
    const fetched = await run(['fetch', body.id, '--out', out, ...conn(A)], env);
    expect(fetched.code, fetched.stderr).to.equal(0);
    for (const f of files) expect(readFileSync(join(out, sha256Hex(f))).equals(f)).to.equal(true);
    const ranges = (await t.gw.store.entries(0, await t.gw.store.treeSize()))
      .map((e) => JSON.parse(e.bytes.toString()) as { event: string; detail?: { start?: number } })
      .filter((e) => e.event === 'file.downloaded')
      .map((e) => e.detail?.start);
    expect(ranges).to.include(30_000);

    // A stored file that no longer matches its hash: fetch exits 1 and keeps nothing of it.
    const stored = join(t.dataDir, 'files', 'objects', B, first);
    chmodSync(stored, 0o640);
    const bad = Buffer.from(files[0]!);
    bad[100] = bad[100]! ^ 0xff;
    writeFileSync(stored, bad);
    const out2 = join(dir, 'out2');
    const refetch = await run(['fetch', body.id, '--out', out2, ...conn(A)], env);
    expect(refetch.code).to.equal(1);
    expect(existsSync(join(out2, first))).to.equal(false);
    expect(existsSync(join(out2, `${first}.partial`))).to.equal(false);
    expect(readFileSync(join(out2, sha256Hex(files[1]!))).equals(files[1]!)).to.equal(true);
  });

  it('submits an attachment the agency already keeps without sending its bytes again', async function () {
    const aSys = await identity(A, 'system');
    const request = sampleEnvelope('evidence.request');
    expect((await submit(t.gw, aSys, signAs(request, aSys))).status).to.equal(202);
    const p = join(dir, 'exhibit-0.bin');
    const transfer = sampleEnvelope('evidence.transfer', { from: B, to: A, inReplyTo: request.id });
    const envPath = join(dir, 'transfer2.json');
    writeFileSync(envPath, JSON.stringify(transfer));
    const before = await t.gw.store.treeSize();
    const sent = await run(['submit', envPath, '--attach', p, ...conn(B)], env);
    expect(sent.code, sent.stderr).to.equal(0);
    const events = (await t.gw.store.entries(before, await t.gw.store.treeSize())).map(
      (e) => (JSON.parse(e.bytes.toString()) as { event: string }).event,
    );
    expect(events).not.to.include('file.stored');
    expect(events).to.include('file.bound');
  });

  it('refuses --attach with a count of files different from the items (exit 2)', async function () {
    const envPath = join(dir, 'transfer.json');
    const res = await run(
      ['submit', envPath, '--attach', join(dir, 'exhibit-0.bin'), ...conn(B)],
      env,
    );
    expect(res.code).to.equal(2);
  });
});
