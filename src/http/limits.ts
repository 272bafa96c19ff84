/**
 * protocol §12 bounds on what a request may hold while it is in flight, and the
 * body rules every route shares (protocol §3):
 *
 * - `Content-Encoding` other than `identity` is refused (415): the gateway hashes
 *   and stores the exact bytes it was sent, so it takes no compressed bodies and
 *   runs no decompressor on hostile input;
 * - a `charset` other than UTF-8 is refused (415);
 * - a declared `Content-Length` over the route's limit is answered 413 before a
 *   byte of the body is read, and `100 Continue` is only sent once a body will be
 *   read; chunked bodies are counted while they stream (the body parsers);
 * - at most `maxBodies` request bodies are open at once, each for at most
 *   `bodyTimeoutMs`; past either bound the answer is 503 with `Retry-After`.
 *
 * Header, keep-alive and connection bounds are set on the server (`boundServer`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'node:https';
import type { NextFunction, Request, Response } from 'express';
import { CasebridgeError } from '../errors.js';
import { sendProblem, toProblem } from './problem.js';

export interface InFlightLimits {
  /** protocol §3 message body limit (CASEBRIDGE_MAX_BYTES). */
  maxBytes: number;
  /** Time to receive the request headers. */
  headerTimeoutMs: number;
  /** Time to receive a whole request body, from the end of its headers. */
  bodyTimeoutMs: number;
  /** Time an idle keep-alive connection is kept. */
  idleTimeoutMs: number;
  /** Open connections; past it new ones are closed at once. */
  maxConnections: number;
  /** Request bodies read at the same time. */
  maxBodies: number;
}

/** Limit of routes that take small JSON bodies (decisions) and of any other route. */
export const SMALL_BODY_LIMIT = 64 * 1024;
/** protocol §3.1: a batch may hold up to 16 message limits. */
export const BATCH_FACTOR = 16;
/** Retry-After of a 503 for a bound in flight: the bound frees within seconds. */
export const RETRY_AFTER_S = 1;

/**
 * The body limit of a route, or undefined for routes that own their bodies and
 * limits (evidence files, protocol §9: tus uploads up to CASEBRIDGE_FILE_MAX_BYTES).
 */
export function bodyLimitFor(path: string, maxBytes: number): number | undefined {
  if (path === '/v1/files' || path.startsWith('/v1/files/')) return undefined;
  if (path === '/v1/messages/batch') return maxBytes * BATCH_FACTOR;
  if (path === '/v1/messages') return maxBytes;
  return SMALL_BODY_LIMIT;
}

function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/** The media type's charset parameter, lowercased, if any. */
function charsetOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  const m = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(contentType);
  return m === null ? undefined : (m[1] ?? m[2] ?? '').toLowerCase();
}

/** Refuses what no route accepts, before any body is read. Throws CasebridgeError. */
export function checkBodyHeaders(req: IncomingMessage, limit: number | undefined): void {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    throw new CasebridgeError(
      'UNSUPPORTED_MEDIA_TYPE',
      'send the body without Content-Encoding: compressed bodies are not accepted',
    );
  }
  const charset = charsetOf(req.headers['content-type']);
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new CasebridgeError('UNSUPPORTED_MEDIA_TYPE', 'the only charset accepted is utf-8');
  }
  const declared = req.headers['content-length'];
  if (limit !== undefined && declared !== undefined) {
    const n = /^\d+$/.test(declared) ? Number(declared) : NaN;
    if (Number.isNaN(n)) throw new CasebridgeError('MALFORMED', 'Content-Length is not a number');
    if (n > limit)
      throw new CasebridgeError('TOO_LARGE', `the body exceeds the limit of ${limit} bytes`);
  }
}

/** A counting semaphore without a queue: a request that finds no slot is refused. */
export class Slots {
  private used = 0;
  constructor(readonly size: number) {}
  tryTake(): boolean {
    if (this.used >= this.size) return false;
    this.used++;
    return true;
  }
  give(): void {
    if (this.used > 0) this.used--;
  }
  get inUse(): number {
    return this.used;
  }
}

/**
 * App-wide middleware, after client authentication and before any route: the body
 * header rules, then a body slot and the body timer, then `100 Continue`.
 */
export function bodyGuard(limits: InFlightLimits, slots: Slots) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const limit = bodyLimitFor(req.path, limits.maxBytes);
    try {
      checkBodyHeaders(req, limit);
    } catch (e) {
      next(e);
      return;
    }
    if (!hasBody(req)) {
      next();
      return;
    }
    if (!slots.tryTake()) {
      next(unavailable('too many request bodies in flight'));
      return;
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      slots.give();
    };
    // protocol §12: a body that has not arrived in time (a chunked body that never
    // ends, a slow sender) is cut; its slot is free again at once.
    // Answered here rather than through next(): the route that reads the body is still
    // running and will see its stream end.
    const timer = setTimeout(() => {
      if (!res.headersSent) {
        sendProblem(res, toProblem(unavailable('the request body did not arrive in time')));
      }
      release();
      res.once('finish', () => req.socket.destroySoon());
    }, limits.bodyTimeoutMs);
    timer.unref();
    req.once('end', () => clearTimeout(timer));
    res.once('close', release);
    // Only now may the client send the body it announced with Expect (RFC 9110 §10.1.1).
    if (/100-continue/i.test(req.headers['expect'] ?? '')) res.writeContinue();
    next();
  };
}

export function unavailable(detail: string): CasebridgeError {
  return new CasebridgeError('UNAVAILABLE', detail);
}

/**
 * Header, keep-alive and connection bounds on the HTTPS server. Node's own
 * request timeout is off: the body timer above answers 503 instead of a bare 408,
 * and evidence uploads (which may take long) keep their connection while active.
 * `checkContinue` hands requests to the app without `100 Continue`; bodyGuard
 * sends it once the body will be read.
 */
export function boundServer(
  server: Server,
  app: (req: IncomingMessage, res: ServerResponse) => void,
  limits: InFlightLimits,
): void {
  server.headersTimeout = limits.headerTimeoutMs;
  // How often Node looks for connections past headersTimeout (its default is 30 s).
  server.requestTimeout = 0;
  server.keepAliveTimeout = limits.idleTimeoutMs;
  server.maxConnections = limits.maxConnections;
  server.on('checkContinue', app);
}

/**
 * Reads a whole request body into memory, at most `limit` bytes: past the limit it
 * fails with TOO_LARGE at once and reads no more (the connection then closes with
 * the answer), where a parser that drains the body first would wait for a chunked
 * body to end. No decoding: the exact bytes, as the protocol hashes them.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(new CasebridgeError('TOO_LARGE', `the body exceeds the limit of ${limit} bytes`));
        return;
      }
      chunks.push(c);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(new CasebridgeError('MALFORMED', 'the request body could not be read', { cause: e }));
    };
    const onClose = () => {
      cleanup();
      reject(new CasebridgeError('MALFORMED', 'the request was aborted'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

/** Middleware: `req.body` = the raw body (Buffer), at most `limit` bytes. */
export function rawBody(limit: number) {
  return (req: Request, res: Response, next: NextFunction): void => {
    readBody(req, limit).then(
      (body) => {
        req.body = body;
        next();
      },
      (e: unknown) => {
        // After a timeout answer the client is gone; nothing more to say.
        if (!res.headersSent) next(e);
      },
    );
  };
}
