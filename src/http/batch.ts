import { Router, type NextFunction, type Request, type Response } from 'express';
import { CasebridgeError, isCasebridgeError } from '../errors.js';
import type { Principal } from '../pki/types.js';
import { submitMessage, type AcceptTurn, type SubmitResult } from '../submission/submit.js';
import { principalOf } from './auth.js';
import type { HttpContext } from './context.js';
import { jwsFromBody, recordRefused, refusals, safeDigest } from './refusals.js';
import { problemLogged, type Problem } from './problem.js';

/** protocol §3.1: at most this many lines in one batch. */
export const MAX_BATCH_LINES = 1000;
/** protocol §3.1: a batch may be this many times `CASEBRIDGE_MAX_BYTES` in all. */
export const BATCH_BYTES_FACTOR = 16;
/**
 * Lines verified in one event-loop turn. Between slices other requests run, and
 * the store commits what the slice queued: a batch of 100 shares a handful of
 * commits instead of taking 100, without holding the loop for the whole batch.
 */
const SLICE = 32;
/**
 * Batches read or answered at once. Each holds up to 16 × CASEBRIDGE_MAX_BYTES,
 * so this bounds their memory (8 × 16 MiB by default); past it the answer is 503
 * with Retry-After (protocol §12), before a byte of the body is read.
 */
export const MAX_CONCURRENT_BATCHES = 8;
const RETRY_AFTER_S = 1;
const RELEASE = 'batchRelease';

/** One line of the answer (protocol §3.1); `line` counts from 1, like an editor. */
interface LineAnswer {
  line: number;
  status: number;
  body: SubmitResult['body'] | Problem;
}

/** Splits an ndjson body into lines; CRLF and one final newline are tolerated. */
function splitLines(body: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf(0x0a, start);
    if (end === -1) end = body.length;
    lines.push(body.subarray(start, end));
    if (lines.length > MAX_BATCH_LINES) {
      throw new CasebridgeError('TOO_LARGE', `a batch holds at most ${MAX_BATCH_LINES} lines`);
    }
    start = end + 1;
  }
  return lines;
}

/**
 * Reads the whole body, at most `limit` bytes. A declared Content-Length past the
 * limit is refused before a byte is read, a streamed body the moment it passes the
 * limit; either way the connection is closed after the answer rather than drained.
 */
function readBounded(req: Request, res: Response, limit: number): Promise<Buffer> {
  const tooLarge = () => {
    res.setHeader('connection', 'close');
    return new CasebridgeError('TOO_LARGE', `a batch holds at most ${limit} bytes`);
  };
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > limit) return Promise.reject(tooLarge());
  const coding = req.headers['content-encoding'];
  if (coding !== undefined && coding.toLowerCase() !== 'identity') {
    return Promise.reject(
      new CasebridgeError('UNSUPPORTED_MEDIA_TYPE', 'send the batch without a content coding'),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const done = (err?: unknown) => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('aborted', onError);
      if (err !== undefined) reject(err);
      else resolve(Buffer.concat(chunks, total));
    };
    const onData = (c: Buffer) => {
      total += c.length;
      if (total > limit) {
        req.pause();
        done(tooLarge());
      } else chunks.push(c);
    };
    const onEnd = () => done();
    const onError = () => done(new CasebridgeError('MALFORMED', 'the request was aborted'));
    req.on('data', onData).on('end', onEnd).on('error', onError).on('aborted', onError);
  });
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A chain of turns: each line's waits for the one before it to be done. */
function acceptTurns(count: number): AcceptTurn[] {
  const turns: AcceptTurn[] = [];
  let before: Promise<void> = Promise.resolve();
  for (let i = 0; i < count; i++) {
    let done!: () => void;
    const mine = new Promise<void>((resolve) => (done = resolve));
    const wait = before;
    turns.push({ wait: () => wait, done });
    before = mine;
  }
  return turns;
}

export function batchRoutes(ctx: HttpContext): Router {
  const r = Router();
  const limit = ctx.maxBytes * BATCH_BYTES_FACTOR;
  let active = 0;

  /**
   * protocol §3 on one line: its token of the principal's rate (protocol §12), its
   * size, then the rest; never throws. A line past the rate is refused alone.
   */
  async function submitLine(
    line: Buffer,
    client: Principal,
    rated = true,
    turn?: AcceptTurn,
  ): Promise<SubmitResult | unknown> {
    try {
      const wait = rated ? ctx.rateLimiter.take(client.subject) : 0;
      if (wait > 0) {
        throw new CasebridgeError(
          'RATE_LIMITED',
          `too many submissions; retry this line in ${wait} s`,
          { retryAfterS: wait },
        );
      }
      if (line.length > ctx.maxBytes) {
        throw new CasebridgeError('TOO_LARGE', 'the line exceeds the size limit');
      }
      return await submitMessage(jwsFromBody(line), client, ctx.submission, turn);
    } catch (e) {
      return new Failure(e);
    } finally {
      turn?.done();
    }
  }

  /** The answer line of one outcome; a refusal is recorded like a single one. */
  async function answerOf(
    n: number,
    line: Buffer,
    outcome: SubmitResult | Failure,
    client: Principal,
    req: Request,
  ): Promise<LineAnswer> {
    if (!(outcome instanceof Failure)) {
      if (outcome.status === 202) ctx.metrics.accepted.inc({ type: outcome.type });
      return { line: n, status: outcome.status, body: outcome.body };
    }
    let problem = problemLogged(outcome.error, req, ctx.logger);
    // A full disk (UNAVAILABLE) says nothing about the line: not a refusal; nor is
    // the rate, which is not audited for single submissions either.
    if (!NOT_AUDITED.has(problem.code)) {
      try {
        await recordRefused(ctx, client, problem.code, safeDigest(line));
      } catch (e) {
        problem = problemLogged(e, req, ctx.logger);
      }
    }
    return { line: n, status: problem.status, body: problem };
  }

  r.post(
    '/v1/messages/batch',
    (_req: Request, res: Response, next: NextFunction) => {
      if (active >= MAX_CONCURRENT_BATCHES) {
        res.setHeader('retry-after', String(RETRY_AFTER_S));
        // The body is not read, so the connection cannot carry another request.
        res.setHeader('connection', 'close');
        throw new CasebridgeError('UNAVAILABLE', 'too many batches at once; try again shortly');
      }
      active++;
      let held = true;
      const release = () => {
        if (held) active--;
        held = false;
      };
      // Freed once the answer is ready (a keep-alive client sends its next batch as
      // soon as it has read this answer), or when the connection goes away.
      res.locals[RELEASE] = release;
      res.once('close', release);
      next();
    },
    (req: Request, res: Response, next: NextFunction) => {
      // protocol §3 order for the whole request: size, then media type.
      readBounded(req, res, limit)
        .then((body) => {
          req.body = body;
          if (!req.is('application/x-ndjson')) {
            throw new CasebridgeError(
              'UNSUPPORTED_MEDIA_TYPE',
              'send one compact JWS per line as application/x-ndjson',
            );
          }
          next();
        }, next)
        .catch(next);
    },
    async (req: Request, res: Response) => {
      const client = principalOf(res);
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const lines = splitLines(body);
      if (lines.length === 0) throw new CasebridgeError('MALFORMED', 'the batch holds no line');

      // Every line is submitted without waiting for the one before, so their
      // writes join the store's group commit; the answers keep input order.
      // Their writes reach the store in input order (AcceptTurn).
      const outcomes: Promise<SubmitResult | Failure>[] = [];
      const turns = acceptTurns(lines.length);
      for (let i = 0; i < lines.length; i++) {
        if (i > 0 && i % SLICE === 0) await nextTurn();
        outcomes.push(
          submitLine(lines[i]!, client, true, turns[i]) as Promise<SubmitResult | Failure>,
        );
      }
      const settled = await Promise.all(outcomes);
      // A reply to an earlier line of the same batch may have been checked before
      // that line was committed; now that all are, such a line is tried once more.
      let acceptedBefore = false;
      for (let i = 0; i < settled.length; i++) {
        const o = settled[i]!;
        if (!(o instanceof Failure)) acceptedBefore ||= o.status === 202;
        else if (acceptedBefore && isUnknownReference(o.error)) {
          // The line's token was taken on its first try.
          settled[i] = (await submitLine(lines[i]!, client, false)) as SubmitResult | Failure;
        }
      }
      const answers = await Promise.all(
        settled.map((o, i) => answerOf(i + 1, lines[i]!, o, client, req)),
      );
      (res.locals[RELEASE] as () => void)();
      // Lines refused for the rate say their wait; the answer's Retry-After is the longest.
      const waits = settled.map(retryAfterOf);
      if (waits.some((w) => w > 0)) res.setHeader('retry-after', String(Math.max(...waits)));
      await sendLines(
        res.status(200).type('application/x-ndjson'),
        answers.map((a) => JSON.stringify(a) + '\n'),
      );
    },
  );
  r.use('/v1/messages', refusals(ctx));
  return r;
}

/**
 * Sends the answer lines, the last one only once the rest has drained. A client
 * on a keep-alive connection sends its next batch the moment it has read the
 * last byte; if the socket still waits for a drain then, Node's HTTP server
 * pauses the socket for pipelining, and over TLS the records already decrypted
 * reach the paused parser, which fails the connection (HPE_PAUSED). Writing the
 * last small line after the drain leaves nothing pending when the next request
 * comes.
 */
async function sendLines(res: Response, lines: readonly string[]): Promise<void> {
  const head = lines.slice(0, -1).join('');
  const last = lines[lines.length - 1] ?? '';
  res.setHeader('content-length', Buffer.byteLength(head) + Buffer.byteLength(last));
  if (!res.write(head)) {
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done).off('close', done);
        resolve();
      };
      res.on('drain', done).on('close', done);
    });
  }
  res.end(last);
}

/** Refusals of a line that are answered but not audited as message.refused. */
const NOT_AUDITED: ReadonlySet<string> = new Set(['INTERNAL', 'UNAVAILABLE', 'RATE_LIMITED']);

function retryAfterOf(o: SubmitResult | Failure): number {
  if (!(o instanceof Failure) || !isCasebridgeError(o.error)) return 0;
  return o.error.code === 'RATE_LIMITED' ? (o.error.retryAfterS ?? 0) : 0;
}

function isUnknownReference(e: unknown): boolean {
  return isCasebridgeError(e) && e.code === 'UNKNOWN_REFERENCE';
}

/** A line's refusal or failure, kept as a value so one line never fails the others. */
class Failure {
  constructor(readonly error: unknown) {}
}
