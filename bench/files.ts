/**
 * Evidence files (protocol §9): upload throughput through a real gateway process
 * (mutual TLS, one tus PATCH, SHA-256 while writing, fsync and rename at the end)
 * beside the raw cost of the same work without the gateway: fs write plus
 * SHA-256 of the same bytes in the same 1 MiB blocks the client sends, and one
 * fsync at the end, in the same run (measured before and after the uploads; the
 * faster one is the baseline). Also the gateway's RSS growth (its own process)
 * during the upload and during the download of the same file, and, for
 * comparison, the same upload through @tus/server's own PATCH handler.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fsyncPath } from '../src/files/objects.js';
import { createUpload } from '../test/helpers/files.js';
import { freePort, identity, testEnv, type Identity } from '../test/helpers/gateway.js';
import { getTestPki } from '../test/helpers/pki.js';
import type { Gateway } from '../src/app.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const MiB = 1024 * 1024;
const BLOCKS = [randomBytes(MiB), randomBytes(MiB)];

/** The bytes of upload `variant`: one random MiB repeated (each variant its own hash). */
function* blocks(bytes: number, variant = 0): Generator<Buffer> {
  const block = BLOCKS[variant]!;
  for (let n = 0; n < bytes; n += MiB)
    yield n + MiB <= bytes ? block : block.subarray(0, bytes - n);
}

function sha256Of(bytes: number, variant: number): string {
  const hash = createHash('sha256');
  for (const b of blocks(bytes, variant)) hash.update(b);
  return hash.digest('hex');
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
  const path = join(dir, 'raw.bin');
  // A buffer that lets the next block hash while the last one is written, as in the gateway.
  const out = createWriteStream(path, { highWaterMark: 8 * MiB });
  for (const b of blocks(bytes)) {
    hash.update(b);
    if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((resolve, reject) =>
    out.end((e?: Error | null) => (e ? reject(e) : resolve())),
  );
  hash.digest();
  // The gateway fsyncs a completed file once, before its rename into the store.
  await fsyncPath(path);
  const s = (performance.now() - t0) / 1000;
  rmSync(join(dir, 'raw.bin'));
  return bytes / MiB / s;
}

function patch(
  url: string,
  ca: string,
  location: string,
  bytes: number,
  agent: Agent,
  variant: number,
  extra: Record<string, string> = {},
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
          ...extra,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    const gen = blocks(bytes, variant);
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

/** The gateway's RSS growth (MiB) and the MB/s of one upload or download. */
async function measured(
  pid: number,
  bytes: number,
  run: () => Promise<void>,
): Promise<{ MBps: number; rssGrowthMiB: number }> {
  const rss0 = rssOf(pid);
  const peak = sampleRss(pid);
  const t0 = performance.now();
  await run();
  const seconds = (performance.now() - t0) / 1000;
  return { MBps: bytes / MiB / seconds, rssGrowthMiB: (peak() - rss0) / MiB };
}

export async function benchFiles(opts: { bytes: number }): Promise<Record<string, number>> {
  const { bytes } = opts;
  const pki = await getTestPki();
  const ca = pki.files['trust.pem']!;
  const port = await freePort();
  const env = await testEnv({
    CASEBRIDGE_PORT: String(port),
    CASEBRIDGE_ADMIN_PORT: String(await freePort()),
    CASEBRIDGE_LOG_LEVEL: 'warn',
    // The operational default (the test environment checkpoints every 100 ms).
    CASEBRIDGE_CHECKPOINT_MS: '500',
    // One PATCH carries the whole file; the default body timeout would cut a slow disk.
    CASEBRIDGE_BODY_TIMEOUT_S: '3600',
    CASEBRIDGE_FILE_MAX_BYTES: String(Math.max(bytes, 4 * 1024 * MiB)),
    CASEBRIDGE_FILE_QUOTA_BYTES: String(4 * bytes + MiB),
  });
  const dataDir = env['CASEBRIDGE_DATA_DIR']!;
  // BENCH_FILES_PROF=DIR writes a CPU profile of the gateway process there.
  const prof = process.env['BENCH_FILES_PROF'];
  const flags = prof === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${prof}`];
  const child = spawn(process.execPath, [...flags, MAIN, 'serve'], {
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
  const pid = child.pid!;
  const url = `https://127.0.0.1:${port}`;
  const gw = { url } as Gateway;
  const scratch = mkdtempSync(join(tmpdir(), 'casebridge-bench-files-'));
  try {
    const aSys = await identity('CN-GX-CZ', 'system');
    const agent = new Agent({ keepAlive: true, cert: aSys.cert, key: aSys.key, ca });
    const upload = async (variant: number, extra?: Record<string, string>) => {
      const sha256 = sha256Of(bytes, variant);
      const created = await createUpload(gw, aSys, bytes, { sha256 });
      if (created.status !== 201) throw new Error(`create answered ${created.status}`);
      const location = String(created.headers['location']);
      const m = await measured(pid, bytes, async () => {
        const status = await patch(url, ca, location, bytes, agent, variant, extra);
        if (status !== 204) throw new Error(`upload answered ${status}`);
      });
      return { ...m, sha256 };
    };

    const rawBefore = await rawWriteAndHash(bytes, scratch);
    const lean = await upload(0);
    // A PATCH naming Tus-Version is left to @tus/server's handler (src/files/uploads.ts):
    // the same bytes' cost through its web-stream bridge, for comparison.
    const viaTus = await upload(1, { 'tus-version': '1.0.0' });
    const rawAfter = await rawWriteAndHash(bytes, scratch);
    const raw = Math.max(rawBefore, rawAfter);

    // Download needs a bound file: a transfer naming it, from A to B in reply to a request.
    const { sampleEnvelope } = await import('../test/fixtures/envelopes.js');
    const { signAs } = await import('../test/helpers/gateway.js');
    const bSys = await identity('VN-LS', 'system');
    const req = sampleEnvelope('evidence.request', { from: 'VN-LS', to: 'CN-GX-CZ' });
    await post(url, bSys, ca, signAs(req, bSys));
    const transfer = sampleEnvelope('evidence.transfer', { inReplyTo: req.id });
    (transfer.body as { items: Record<string, unknown>[] }).items[0]!['sha256'] = lean.sha256;
    (transfer.body as { items: Record<string, unknown>[] }).items[0]!['size'] = bytes;
    await post(url, aSys, ca, signAs(transfer, aSys));
    const bAgent = new Agent({ keepAlive: true, cert: bSys.cert, key: bSys.key, ca });
    const down = await measured(pid, bytes, async () => {
      const path = `/v1/messages/${transfer.id}/files/${lean.sha256}`;
      const got = await download(url, path, ca, bAgent);
      if (got !== bytes) throw new Error(`downloaded ${got} of ${bytes} bytes`);
    });
    agent.destroy();
    bAgent.destroy();
    return {
      bytes,
      raw_write_sha256_MBps: raw,
      upload_MBps: lean.MBps,
      upload_vs_raw: lean.MBps / raw,
      upload_tus_server_MBps: viaTus.MBps,
      upload_tus_server_vs_raw: viaTus.MBps / raw,
      download_MBps: down.MBps,
      upload_rss_growth_mb: lean.rssGrowthMiB,
      download_rss_growth_mb: down.rssGrowthMiB,
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
