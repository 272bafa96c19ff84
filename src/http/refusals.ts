import type { NextFunction, Request, Response } from 'express';
import { digestOf } from '../envelope/jws.js';
import { CasebridgeError, isCasebridgeError, type ErrorCode } from '../errors.js';
import type { Principal } from '../pki/types.js';
import { recordRefusal } from '../submission/submit.js';
import { principalOf } from './auth.js';
import type { HttpContext } from './context.js';
import { sendProblem, toProblem } from './problem.js';

export const UNSIGNED_HINT =
  'this is a plain JSON envelope: sign it first (`casebridge sign`, the SDK, or any JWS library; protocol §2.1)';

/** A body whose first non-blank byte opens a JSON object: an envelope someone forgot to sign. */
export function looksLikeJson(body: unknown): boolean {
  if (!Buffer.isBuffer(body)) return false;
  for (const b of body) {
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) continue;
    return b === 0x7b;
  }
  return false;
}

/** Reads a compact JWS from raw bytes: ASCII only, one trailing newline (or CRLF) tolerated. */
export function jwsFromBody(body: unknown): string {
  if (!Buffer.isBuffer(body))
    throw new CasebridgeError('MALFORMED', 'the body must be a compact JWS');
  if (looksLikeJson(body)) throw new CasebridgeError('MALFORMED', UNSIGNED_HINT);
  let end = body.length;
  if (end > 0 && body[end - 1] === 0x0a) end--;
  if (end > 0 && body[end - 1] === 0x0d) end--;
  for (let i = 0; i < end; i++) {
    const b = body[i]!;
    if (b < 0x21 || b > 0x7e)
      throw new CasebridgeError('MALFORMED', 'a compact JWS is printable ASCII');
  }
  return body.toString('ascii', 0, end);
}

/** The digest of bytes that read as a JWS, for the refusal's audit entry; else undefined. */
export function safeDigest(body: Buffer): string | undefined {
  if (body.length === 0) return undefined;
  try {
    return digestOf(jwsFromBody(body));
  } catch (e) {
    if (isCasebridgeError(e)) return undefined;
    throw e;
  }
}

/** protocol §3: a refusal is counted, logged and audited with its code and digest only. */
export async function recordRefused(
  ctx: HttpContext,
  client: Principal,
  code: ErrorCode,
  digest: string | undefined,
): Promise<void> {
  ctx.metrics.refused.inc({ code });
  ctx.logger.info('submission refused', {
    code,
    agency: client.agency,
    role: client.role,
    digest,
  });
  await recordRefusal(ctx.store, client, code, digest);
}

const NOT_AUDITED: ReadonlySet<ErrorCode> = new Set(['INTERNAL', 'UNAVAILABLE', 'RATE_LIMITED']);

/**
 * Error middleware of the submission routes, mounted in their router and at app
 * level for refusals raised before the route (body rules, limits in limits.ts): a refusal of an authenticated
 * submitter is recorded, then answered as problem+json. A whole batch refused
 * (size, media type) has no one digest.
 */
export function refusals(ctx: HttpContext) {
  return async (err: unknown, req: Request, res: Response, next: NextFunction) => {
    const single = req.path === '/';
    const batch = req.path === '/batch';
    if (req.method !== 'POST' || !(single || batch) || res.locals['principal'] === undefined) {
      return next(err);
    }
    const problem = toProblem(err);
    // A failure, load shedding or a rate limit says nothing about the message: not a
    // refusal to audit (and a flood must not grow the append-only log).
    if (NOT_AUDITED.has(problem.code)) {
      if (problem.code === 'RATE_LIMITED' || problem.code === 'UNAVAILABLE')
        ctx.metrics.refused.inc({ code: problem.code });
      return next(err);
    }
    const digest = single && Buffer.isBuffer(req.body) ? safeDigest(req.body) : undefined;
    try {
      await recordRefused(ctx, principalOf(res), problem.code, digest);
    } catch (e) {
      return next(e);
    }
    sendProblem(res, problem);
  };
}
