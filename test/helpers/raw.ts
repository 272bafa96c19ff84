/**
 * Raw HTTP/1.1 over mutual TLS, for tests that need control over framing:
 * Expect: 100-continue, chunked bodies that stop, declared lengths that lie.
 */
import { connect, type TLSSocket } from 'node:tls';
import type { Gateway } from '../../src/app.js';
import { getTestPki } from './pki.js';
import type { Identity } from './gateway.js';

export interface RawExchange {
  socket: TLSSocket;
  /** Everything the server sent so far. */
  received(): string;
  /** Resolves with the received text once `pred` holds on it, or when the socket closes. */
  until(pred: (text: string) => boolean, timeoutMs?: number): Promise<string>;
  closed: Promise<void>;
}

export async function rawConnect(
  gw: Gateway,
  who: Identity | undefined,
  tls: { ciphers?: string; maxVersion?: 'TLSv1.2' | 'TLSv1.3'; cert?: string; key?: string } = {},
): Promise<RawExchange> {
  const pki = await getTestPki();
  const url = new URL(gw.url);
  const socket = connect({
    host: url.hostname,
    port: Number(url.port),
    servername: 'localhost',
    ca: pki.files['trust.pem'],
    ...(who ? { cert: who.cert, key: who.key } : {}),
    ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
    ...(tls.ciphers ? { ciphers: tls.ciphers } : {}),
    ...(tls.maxVersion ? { maxVersion: tls.maxVersion } : {}),
  });
  let text = '';
  const waiters: Array<() => void> = [];
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1');
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<void>((resolve) => {
    socket.on('close', () => {
      for (const w of waiters.splice(0)) w();
      resolve();
    });
  });
  let isClosed = false;
  void closed.then(() => (isClosed = true));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  return {
    socket,
    received: () => text,
    closed,
    until(pred, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no such answer: ${text}`)), timeoutMs);
        const check = () => {
          if (pred(text) || isClosed) {
            clearTimeout(timer);
            resolve(text);
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}

/** Status code and headers of the first (final) response in `text`, skipping 1xx. */
export function parseResponse(text: string): {
  status: number;
  headers: Record<string, string>;
  body: string;
  informational: number[];
} {
  const informational: number[] = [];
  let rest = text;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) return { status: 0, headers: {}, body: '', informational };
    const head = rest.slice(0, end).split('\r\n');
    const status = Number(head[0]!.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (const line of head.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    rest = rest.slice(end + 4);
    if (status >= 100 && status < 200) {
      informational.push(status);
      continue;
    }
    return { status, headers, body: rest, informational };
  }
}

/** True once a full final response (headers and Content-Length body) has arrived. */
export function complete(text: string): boolean {
  const r = parseResponse(text);
  if (r.status === 0) return false;
  const len = Number(r.headers['content-length'] ?? '0');
  return Buffer.byteLength(r.body, 'latin1') >= len;
}
