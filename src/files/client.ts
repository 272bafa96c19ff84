/**
 * The client side of evidence files (protocol §9, §7): hash a file, upload it
 * resumably over tus with the caller's client certificate, download a bound file
 * with resumption by Range, and check every byte against its hash. Used by the
 * CLI; any integrator can use it the same way.
 */
import { createHash } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
} from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DefaultHttpStack, Upload } from 'tus-js-client';
import { UPLOAD_PATH } from './uploads.js';
import type { FileRef } from './types.js';

export interface FileClientOptions {
  url: string;
  cert: string;
  key: string;
  ca?: string;
  /** Where upload URLs are remembered between runs, so an interrupted upload resumes. */
  stateFile?: string;
  /** Bytes per PATCH: each request stays well inside the gateway's body timeout. */
  chunkSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export class FileTransferError extends Error {
  constructor(
    readonly kind: 'refused' | 'mismatch' | 'network',
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'FileTransferError';
  }
}

const DEFAULT_CHUNK = 16 * 1024 * 1024;

export async function hashFile(path: string): Promise<FileRef> {
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(createReadStream(path), async (src) => {
    for await (const chunk of src) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  });
  return { sha256: hash.digest('hex'), size };
}

function agentOf(o: FileClientOptions): Agent {
  return new Agent({
    keepAlive: true,
    cert: o.cert,
    key: o.key,
    ...(o.ca === undefined ? {} : { ca: o.ca }),
  });
}

function readState(path: string | undefined): Record<string, string> {
  if (path === undefined || !existsSync(path)) return {};
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>;
  } catch {
    return {};
  }
}

async function writeState(path: string | undefined, state: Record<string, string>): Promise<void> {
  if (path === undefined) return;
  mkdirSync(dirname(path), { recursive: true });
  await writeFile(`${path}.tmp`, JSON.stringify(state, null, 2));
  await rename(`${path}.tmp`, path);
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function send(
  o: FileClientOptions,
  agent: Agent,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, o.url), { method, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', (e) => reject(new FileTransferError('network', e.message)));
    req.end();
  });
}

function refusal(a: Answer, what: string): FileTransferError {
  let code: string | undefined;
  try {
    code = (JSON.parse(a.body) as { code?: string }).code;
  } catch {
    // not problem+json
  }
  return new FileTransferError(
    'refused',
    `${what}: ${a.status} ${code ?? ''}`.trim(),
    a.status,
    code,
  );
}

/**
 * Uploads `path` (whose hash and size the caller computed) and returns once the
 * gateway keeps it. A file the agency already keeps costs one request; an upload
 * interrupted in an earlier run resumes from the offset the gateway has.
 */
export async function uploadEvidence(
  o: FileClientOptions,
  path: string,
  ref: FileRef,
): Promise<void> {
  const agent = agentOf(o);
  try {
    const key = `${new URL(o.url).origin} ${ref.sha256} ${ref.size}`;
    const state = readState(o.stateFile);
    let uploadUrl = state[key];
    if (uploadUrl === undefined) {
      const created = await send(o, agent, 'POST', UPLOAD_PATH, {
        'tus-resumable': '1.0.0',
        'upload-length': String(ref.size),
        'upload-metadata': `sha256 ${Buffer.from(ref.sha256).toString('base64')}`,
      });
      if (created.status === 200) {
        o.onProgress?.(ref.size, ref.size);
        return;
      }
      if (created.status !== 201) throw refusal(created, 'upload refused');
      uploadUrl = new URL(String(created.headers['location']), o.url).href;
      state[key] = uploadUrl;
      await writeState(o.stateFile, state);
    }
    await runTus(o, agent, path, ref, uploadUrl);
    const done = readState(o.stateFile);
    delete done[key];
    await writeState(o.stateFile, done);
  } finally {
    agent.destroy();
  }
}

function runTus(
  o: FileClientOptions,
  agent: Agent,
  path: string,
  ref: FileRef,
  uploadUrl: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const upload = new Upload(createReadStream(path), {
      endpoint: new URL(UPLOAD_PATH, o.url).href,
      uploadUrl,
      uploadSize: ref.size,
      chunkSize: o.chunkSize ?? DEFAULT_CHUNK,
      metadata: { sha256: ref.sha256 },
      retryDelays: [0, 500, 1000, 2000, 5000, 10000, 20000],
      httpStack: new DefaultHttpStack({ agent }),
      onProgress: (sent, total) => o.onProgress?.(sent, total),
      onSuccess: () => resolve(),
      onError: (e) => {
        const res = (e as { originalResponse?: { getStatus(): number; getBody(): string } })
          .originalResponse;
        if (res)
          reject(
            refusal(
              { status: res.getStatus(), headers: {}, body: res.getBody() },
              'upload refused',
            ),
          );
        else reject(new FileTransferError('network', e.message));
      },
    });
    upload.start();
  });
}

/**
 * Downloads one bound file of a message into `dest`, resuming a partial
 * `dest.partial` with Range, and verifies the whole file's SHA-256 before the
 * rename into place. A mismatch leaves no file under `dest`.
 */
export async function downloadEvidence(
  o: FileClientOptions,
  messageId: string,
  ref: FileRef,
  dest: string,
): Promise<void> {
  const partial = `${dest}.partial`;
  const have = existsSync(partial) ? statSync(partial).size : 0;
  const agent = agentOf(o);
  try {
    const start = have < ref.size ? have : 0;
    const headers: Record<string, string> =
      start > 0 ? { range: `bytes=${start}-`, 'if-range': `"${ref.sha256}"` } : {};
    await new Promise<void>((resolve, reject) => {
      const path = `/v1/messages/${encodeURIComponent(messageId)}/files/${ref.sha256}`;
      const req = request(new URL(path, o.url), { agent, headers }, (res) => {
        const status = res.statusCode ?? 0;
        if (status !== 200 && status !== 206) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            reject(
              refusal(
                { status, headers: res.headers, body: Buffer.concat(chunks).toString() },
                'download refused',
              ),
            ),
          );
          return;
        }
        const append = status === 206;
        let done = append ? start : 0;
        res.on('data', (c: Buffer) => {
          done += c.length;
          o.onProgress?.(done, ref.size);
        });
        pipeline(res, createWriteStream(partial, { flags: append ? 'a' : 'w' })).then(
          resolve,
          (e: Error) => reject(new FileTransferError('network', e.message)),
        );
      });
      req.on('error', (e) => reject(new FileTransferError('network', e.message)));
      req.end();
    });
  } finally {
    agent.destroy();
  }
  const got = await hashFile(partial);
  if (got.sha256 !== ref.sha256 || got.size !== ref.size) {
    const { rm } = await import('node:fs/promises');
    await rm(partial, { force: true });
    throw new FileTransferError(
      'mismatch',
      `${ref.sha256}: the bytes do not hash to the transfer's sha256`,
    );
  }
  await rename(partial, dest);
}

/** The default state file: next to the user's other casebridge state. */
export function defaultStateFile(): string {
  const base = process.env['XDG_STATE_HOME'] ?? join(process.env['HOME'] ?? '.', '.local', 'state');
  return join(base, 'casebridge', 'uploads.json');
}
