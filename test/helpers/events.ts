/** A server-sent-events client for tests: real HTTPS with a client certificate. */
import { request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Gateway } from '../../src/app.js';
import type { Identity } from './gateway.js';
import { eventually } from './gateway.js';
import { getTestPki } from './pki.js';

export interface StreamEvent {
  event: string;
  data: Record<string, unknown>;
  /** The raw `data:` text, to check nothing else is carried. */
  raw: string;
}

export interface EventStream {
  status: number;
  headers: IncomingMessage['headers'];
  /** The response body when the stream was refused. */
  body: string;
  events: StreamEvent[];
  pings: number;
  /** The gateway ended the stream. */
  ended: boolean;
  /** Waits until an event matching `pred` arrived; returns it. */
  next(pred: (e: StreamEvent) => boolean, ms?: number): Promise<StreamEvent>;
  close(): void;
}

export async function openEvents(gw: Gateway, who: Identity): Promise<EventStream> {
  const pki = await getTestPki();
  return new Promise((resolve, reject) => {
    const req = request(
      new URL('/v1/events', gw.url),
      {
        method: 'GET',
        agent: false,
        ca: pki.files['trust.pem'],
        servername: 'localhost',
        cert: who.cert,
        key: who.key,
        headers: { accept: 'text/event-stream' },
      },
      (res) => {
        const stream: EventStream = {
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: '',
          events: [],
          pings: 0,
          ended: false,
          async next(pred, ms = 10_000) {
            let found: StreamEvent | undefined;
            await eventually(
              async () => (found = stream.events.find(pred)) !== undefined,
              ms,
              'event',
            );
            return found!;
          },
          close: () => req.destroy(),
        };
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (stream.status !== 200) {
            stream.body += chunk;
            return;
          }
          buffer += chunk;
          let cut: number;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let event = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line === ': ping') stream.pings++;
              else if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data.push(line.slice(6));
            }
            if (data.length > 0) {
              const raw = data.join('\n');
              stream.events.push({ event, raw, data: JSON.parse(raw) as Record<string, unknown> });
            }
          }
        });
        res.on('error', () => {});
        res.on('close', () => (stream.ended = true));
        if (stream.status === 200) resolve(stream);
        else res.on('end', () => resolve(stream));
      },
    );
    req.on('error', (e) => {
      if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') reject(e);
    });
    req.end();
  });
}
