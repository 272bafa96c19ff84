/**
 * tus 1.0 requests for the evidence-file tests (protocol §9.1), over mutual TLS with
 * real client certificates, and a few helpers for the data directory.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import type { Gateway } from '../../src/app.js';
import { collect, tlsAs, type Identity, type Response } from './gateway.js';

export const TUS = { 'tus-resumable': '1.0.0' };

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** tus Upload-Metadata: comma-separated `key base64(value)`. */
export function tusMetadata(meta: Record<string, string>): string {
  return Object.entries(meta)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',');
}

/** The headers of a tus PATCH from `offset` of `length` bytes; no length: chunked. */
export function patchHeaders(offset: number, length?: number): Record<string, string> {
  return {
    ...TUS,
    'upload-offset': String(offset),
    'content-type': 'application/offset+octet-stream',
    ...(length === undefined
      ? { 'transfer-encoding': 'chunked' }
      : { 'content-length': String(length) }),
  };
}

export async function raw(
  gw: Gateway,
  who: Identity | undefined,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Buffer,
): Promise<Response> {
  const tls = await tlsAs(who);
  const url = new URL(path, gw.url);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ...tls,
        headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) },
      },
      (res) => collect(res, resolve),
    );
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

export function createUpload(
  gw: Gateway,
  who: Identity,
  length: number,
  meta: Record<string, string>,
): Promise<Response> {
  return raw(gw, who, 'POST', '/v1/files', {
    ...TUS,
    'upload-length': String(length),
    'upload-metadata': tusMetadata(meta),
  });
}

export function patchUpload(
  gw: Gateway,
  who: Identity,
  location: string,
  offset: number,
  data: Buffer,
  extra: Record<string, string> = {},
): Promise<Response> {
  return raw(
    gw,
    who,
    'PATCH',
    location,
    {
      ...TUS,
      'upload-offset': String(offset),
      'content-type': 'application/offset+octet-stream',
      ...extra,
    },
    data,
  );
}

/** Creates and completes an upload in one PATCH; returns the final response. */
export async function uploadFile(gw: Gateway, who: Identity, data: Buffer): Promise<Response> {
  const created = await createUpload(gw, who, data.length, { sha256: sha256Hex(data) });
  if (created.status === 200) return created;
  if (created.status !== 201) return created;
  return patchUpload(gw, who, String(created.headers['location']), 0, data);
}

/** Every file under the gateway's files directory, relative, excluding lock files. */
export function filesOnDisk(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const abs = join(dir, rel);
    if (!existsSync(abs)) return;
    for (const e of readdirSync(abs, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out.sort();
}

import { createCipheriv } from 'node:crypto';

const BLOCK = 1024 * 1024;
const GEN_KEY = Buffer.alloc(16, 7);
const ZEROS = Buffer.alloc(BLOCK);

/** Block `k` of a deterministic pseudo-random byte stream (AES-128-CTR over zeros, fast). */
function block(k: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(k, 0);
  const c = createCipheriv('aes-128-ctr', GEN_KEY, iv);
  return c.update(ZEROS);
}

/** Bytes [start, end) of the deterministic stream, yielded in blocks of at most 1 MiB. */
export function* deterministicBytes(start: number, end: number): Generator<Buffer> {
  let pos = start;
  while (pos < end) {
    const k = Math.floor(pos / BLOCK);
    const b = block(k);
    const from = pos - k * BLOCK;
    const to = Math.min(BLOCK, end - k * BLOCK);
    yield b.subarray(from, to);
    pos = k * BLOCK + to;
  }
}

export function deterministicSha256(length: number): string {
  const h = createHash('sha256');
  for (const b of deterministicBytes(0, length)) h.update(b);
  return h.digest('hex');
}

/**
 * A PATCH streaming [offset, end) of the deterministic stream; with `cutAfter`,
 * the connection is destroyed once that many bytes were written (a dropped link).
 */
export async function streamPatch(
  gw: { url: string },
  who: Identity,
  location: string,
  offset: number,
  end: number,
  cutAfter?: number,
): Promise<{ status: number; offset?: number; cut: boolean; sent: number }> {
  const tls = await tlsAs(who);
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(location, gw.url),
      { method: 'PATCH', ...tls, headers: patchHeaders(offset, end - offset) },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            offset: Number(res.headers['upload-offset']),
            cut: false,
            sent,
          }),
        );
      },
    );
    let sent = 0;
    let cut = false;
    req.on('error', (e) => (cut ? resolve({ status: 0, cut: true, sent }) : reject(e)));
    const gen = deterministicBytes(offset, end);
    const pump = () => {
      for (;;) {
        if (cutAfter !== undefined && sent >= cutAfter) {
          cut = true;
          req.destroy();
          return;
        }
        const next = gen.next();
        if (next.done) {
          req.end();
          return;
        }
        sent += next.value.length;
        if (!req.write(next.value)) {
          req.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}
