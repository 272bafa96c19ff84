import { Router, type Request, type Response } from 'express';
import { CasebridgeError } from '../errors.js';
import type { StreamData, StreamEvent } from '../review/events.js';
import { requireRole } from './auth.js';
import type { HttpContext } from './context.js';

/** A subscriber this far behind (bytes not yet taken by its socket) is cut off. */
const MAX_BUFFERED = 256 * 1024;
const RETRY_AFTER_S = 10;

/**
 * protocol §5.5 `GET /v1/events`: server-sent events (WHATWG HTML §9.2) of the
 * caller agency's queue changes. Each event is `event: <name>` with
 * `data: {"id","type","priority","status"}`; comments (`: ping`) keep the
 * connection alive. There is no replay: after a reconnect, read the list again.
 */
export function eventRoutes(ctx: HttpContext): Router {
  const r = Router();
  r.get('/v1/events', (req: Request, res: Response) => {
    const p = requireRole(res, ['system', 'officer'], 'the event stream');
    let heartbeat: NodeJS.Timeout | undefined;
    let unsubscribe = () => {};
    const end = () => {
      if (heartbeat) clearInterval(heartbeat);
      heartbeat = undefined;
      unsubscribe();
    };
    const write = (text: string) => {
      if (res.writableEnded || res.destroyed) return end();
      res.write(text);
      if (res.writableLength > MAX_BUFFERED) {
        end();
        res.destroy();
      }
    };
    const sub = ctx.events.subscribe({
      agency: p.agency,
      subject: p.subject,
      send: (event: StreamEvent, data: StreamData) =>
        write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
      close: () => {
        end();
        res.end();
      },
    });
    if ('full' in sub) {
      res.setHeader('retry-after', String(RETRY_AFTER_S));
      throw sub.full === 'principal'
        ? new CasebridgeError('RATE_LIMITED', 'too many event streams open for this certificate')
        : new CasebridgeError('UNAVAILABLE', 'the gateway serves no more event streams now');
    }
    unsubscribe = sub.unsubscribe;
    req.on('close', end);
    res.on('close', end);
    res.status(200);
    res.setHeader('content-type', 'text/event-stream; charset=utf-8');
    res.setHeader('x-accel-buffering', 'no');
    res.flushHeaders();
    res.write(`retry: ${RETRY_AFTER_S * 1000}\n: ready\n\n`);
    heartbeat = setInterval(() => write(': ping\n\n'), ctx.heartbeatMs);
    heartbeat.unref();
  });
  return r;
}
