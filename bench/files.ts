/**
 * Evidence files (protocol §9): upload throughput through a real gateway process
 * (mutual TLS, tus PATCH, SHA-256 while writing, fsync and rename at the end)
 * beside the raw cost of the same work without the gateway: fs write plus
 * SHA-256 of the same bytes, in the same run. Also the gateway's RSS growth
 * during the upload and during the download of the same file.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createUpload } from '../test/helpers/files.js';
import { freePort, identity, testEnv, type Identity } from '../test/helpers/gateway.js';
import { getTestPki } from '../test/helpers/pki.js';
import type { Gateway } from '../src/app.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const MiB = 1024 * 1024;
const BLOCK = randomBytes(MiB);

function* blocks(bytes: number): Generator<Buffer> {
  for (let n = 0; n < bytes; n += MiB)
    yield n + MiB <= bytes ? BLOCK : BLOCK.subarray(0, bytes - n);
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Samples a process's RSS every 50 ms until stopped; returns the peak. */
function sampleRss(pid: number): () => number {
  let peak = rssOf(pid);
  const t = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 50);
  return () => {
    clearInterval(t);
    return Math.max(peak, rssOf(pid));
  };
}

async function rawWriteAndHash(bytes: number, dir: string): Promise<number> {
  const t0 = performance.now();
  const hash = createHash('sha256');
  const out = createWriteStream(join(dir, 'raw.bin'));
  for (const b of blocks(bytes)) {
    hash.update(b);
    if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) =>
    out.end((e?: Error | null) => (e ? reject(e) : resolve())),
  );
  hash.digest();
  const s = (performance.now() - t0) / 1000;
  rmSync(join(dir, 'raw.bin'));
  return bytes / MiB / s;
}

function patch(
  url: string,
  who: Identity,
  ca: string,
  location: string,
  bytes: number,
  agent: Agent,
) {
  return new Promise<number>((resolve, reject) => {
    const req = request(
      new URL(location, url),
      {
        method: 'PATCH',
        agent,
        ca,
        servername: 'localhost',
        headers: {
          'tus-resumable': '1.0.0',
          'upload-offset': '0',
          'content-type': 'application/offset+octet-stream',
          'content-length': String(bytes),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    const gen = blocks(bytes);
    const pump = () => {
      for (;;) {
        const n = gen.next();
        if (n.done) return void req.end();
        if (!req.write(n.value)) return void req.once('drain', pump);
      }
    };
    pump();
  });
}

function download(url: string, path: string, ca: string, agent: Agent) {
  return new Promise<number>((resolve, reject) => {
    const req = request(new URL(path, url), { agent, ca, servername: 'localhost' }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => resolve(n));
    });
    req.on('error', reject);
    req.end();
  });
}

export async function benchFiles(opts: { bytes: number }): Promise<Record<string, number>> {
  const pki = await getTestPki();
  const ca = pki.files['trust.pem']!;
  const port = await freePort();
  const env = await testEnv({
    CASEBRIDGE_PORT: String(port),
    CASEBRIDGE_ADMIN_PORT: String(await freePort()),
    CASEBRIDGE_LOG_LEVEL: 'warn',
  });
  const dataDir = env['CASEBRIDGE_DATA_DIR']!;
  const child = spawn(process.execPath, [MAIN, 'serve'], {
    env: { ...process.env, ...env, CASEBRIDGE_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stderr!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('casebridge started')) resolve();
    });
    child.once('exit', () => reject(new Error(out.slice(-2000))));
  });
  const url = `https://127.0.0.1:${port}`;
  const gw = { url } as Gateway;
  const scratch = mkdtempSync(join(tmpdir(), 'casebridge-bench-files-'));
  try {
    const aSys = await identity('CN-GX-CZ', 'system');
    const agent = new Agent({ keepAlive: true, cert: aSys.cert, key: aSys.key, ca });
    const hash = createHash('sha256');
    for (const b of blocks(opts.bytes)) hash.update(b);
    const sha256 = hash.digest('hex');

    const raw = await rawWriteAndHash(opts.bytes, scratch);
    const created = await createUpload(gw, aSys, opts.bytes, { sha256 });
    const location = String(created.headers['location']);
    const rss0 = rssOf(child.pid!);
    const peakUp = sampleRss(child.pid!);
    const t0 = performance.now();
    const status = await patch(url, aSys, ca, location, opts.bytes, agent);
    const upSeconds = (performance.now() - t0) / 1000;
    const upPeak = peakUp();
    if (status !== 204) throw new Error(`upload answered ${status}`);

    // Download needs a bound file: a transfer naming it, from A to B in reply to a request.
    const { sampleEnvelope } = await import('../test/fixtures/envelopes.js');
    const { signAs } = await import('../test/helpers/gateway.js');
    const bSys = await identity('VN-LS', 'system');
    const req = sampleEnvelope('evidence.request', { from: 'VN-LS', to: 'CN-GX-CZ' });
    await post(url, bSys, ca, signAs(req, bSys));
    const transfer = sampleEnvelope('evidence.transfer', { inReplyTo: req.id });
    (transfer.body as { items: Record<string, unknown>[] }).items[0]!['sha256'] = sha256;
    (transfer.body as { items: Record<string, unknown>[] }).items[0]!['size'] = opts.bytes;
    await post(url, aSys, ca, signAs(transfer, aSys));
    const bAgent = new Agent({ keepAlive: true, cert: bSys.cert, key: bSys.key, ca });
    const rss1 = rssOf(child.pid!);
    const peakDown = sampleRss(child.pid!);
    const t1 = performance.now();
    const got = await download(url, `/v1/messages/${transfer.id}/files/${sha256}`, ca, bAgent);
    const downSeconds = (performance.now() - t1) / 1000;
    const downPeak = peakDown();
    if (got !== opts.bytes) throw new Error(`downloaded ${got} of ${opts.bytes} bytes`);
    agent.destroy();
    bAgent.destroy();
    const upload = opts.bytes / MiB / upSeconds;
    return {
      bytes: opts.bytes,
      raw_write_sha256_MBps: raw,
      upload_MBps: upload,
      upload_vs_raw: upload / raw,
      download_MBps: opts.bytes / MiB / downSeconds,
      rss_growth_upload_MiB: (upPeak - rss0) / MiB,
      rss_growth_download_MiB: (downPeak - rss1) / MiB,
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(scratch, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function post(url: string, who: Identity, ca: string, jws: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL('/v1/messages', url),
      {
        method: 'POST',
        agent: false,
        ca,
        servername: 'localhost',
        cert: who.cert,
        key: who.key,
        headers: { 'content-type': 'application/jose' },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () =>
          res.statusCode === 202 ? resolve() : reject(new Error(`${res.statusCode} ${body}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(jws);
  });
}
