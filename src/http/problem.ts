import type { NextFunction, Request, Response } from 'express';
import {
  CasebridgeError,
  STATUS_BY_CODE,
  type ErrorCode,
  type ProblemMembers,
  type ValidationIssue,
} from '../errors.js';
import type { Logger } from '../ops/logger.js';

/** RFC 9457 problem details, protocol §4. */
export interface Problem extends ProblemMembers {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  errors?: ValidationIssue[];
}

const TITLES: Record<ErrorCode, string> = {
  CLIENT_CERT_REQUIRED: 'A client certificate is required',
  CLIENT_CERT_UNTRUSTED: 'The client certificate is not trusted',
  TOO_LARGE: 'The request body is too large',
  UNSUPPORTED_MEDIA_TYPE: 'Unsupported media type',
  MALFORMED: 'Malformed message',
  BAD_HEADER: 'The JWS header breaks the rules',
  CERT_INVALID: 'The signer certificate is invalid',
  SIGNATURE_INVALID: 'The signature is invalid',
  SCHEMA_INVALID: 'The message does not match its schema',
  SENDER_MISMATCH: 'The sender does not match the certificates',
  FORBIDDEN_ROLE: 'This role may not do that',
  NOT_PERMITTED: 'No agreement permits this message',
  STALE: 'The message is not fresh',
  UNKNOWN_REFERENCE: 'The referenced message is unknown',
  UNKNOWN_FILE: 'A referenced evidence file is unknown',
  DIGEST_MISMATCH: 'The file does not match its declared digest',
  QUOTA_EXCEEDED: "The agency's file quota is exhausted",
  INSUFFICIENT_STORAGE: 'The gateway has no room for the file',
  OFFSET_MISMATCH: 'The upload is at another offset',
  CHECKSUM_MISMATCH: 'The chunk does not match its checksum',
  RANGE_NOT_SATISFIABLE: 'The range is not satisfiable',
  ID_CONFLICT: 'The id was used for a different message',
  NOT_FOUND: 'Not found',
  ALREADY_CLAIMED: 'Already claimed by another officer',
  INVALID_PARAMETER: 'Invalid parameter',
  NOT_CLAIMED: 'Not claimed by you',
  ALREADY_DECIDED: 'Already decided',
  NOT_DELIVERED: 'Not yet delivered',
  RATE_LIMITED: 'Too many requests',
  CROSS_SITE_REFUSED: 'Refused as a cross-site request',
  UNAVAILABLE: 'Temporarily unavailable',
  INTERNAL: 'Internal error',
};

export const PROBLEM_TYPE_PREFIX = 'urn:casebridge:problem:';

export function problemOf(
  code: ErrorCode,
  detail: string,
  errors?: ValidationIssue[],
  members?: ProblemMembers,
): Problem {
  return {
    type: PROBLEM_TYPE_PREFIX + code,
    title: TITLES[code],
    status: STATUS_BY_CODE[code],
    code,
    detail,
    ...(errors === undefined ? {} : { errors }),
    ...(members?.digest === undefined ? {} : { digest: members.digest }),
    ...(members?.location === undefined ? {} : { location: members.location }),
  };
}

/** Said when the error names no better delay; protocol §4 wants one on every 503 and 429. */
const DEFAULT_RETRY_AFTER_S = 5;

export function sendProblem(res: Response, p: Problem): void {
  res.locals['code'] = p.code;
  if ((p.status === 503 || p.status === 429) && !res.hasHeader('retry-after')) {
    res.setHeader('retry-after', String(DEFAULT_RETRY_AFTER_S));
  }
  // A body that was refused unread is not drained: the connection ends with the answer.
  if (!res.req.complete) res.setHeader('connection', 'close');
  if (p.location !== undefined) res.location(p.location);
  res.status(p.status).type('application/problem+json').send(JSON.stringify(p));
}

/**
 * The last error handler: maps any error to problem+json, never leaks a stack, and
 * logs an internal error exactly once (here, and nowhere else).
 */
export function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const problem = toProblem(err);
    if (problem.code === 'INTERNAL') logInternal(logger, err, req);
    if (res.headersSent) {
      // Too late for a problem: the response is cut, the process carries on.
      res.destroy();
      return;
    }
    if (err instanceof CasebridgeError && err.retryAfterS !== undefined) {
      res.setHeader('retry-after', String(Math.ceil(err.retryAfterS)));
    }
    sendProblem(res, problem);
  };
}

/** toProblem for callers that answer the error themselves: an internal error is logged here, once. */
export function problemLogged(err: unknown, req: Request, logger: Logger): Problem {
  const p = toProblem(err);
  if (p.code === 'INTERNAL') logInternal(logger, err, req);
  return p;
}

function logInternal(logger: Logger, err: unknown, req: Request): void {
  logger.error('unhandled error', {
    route: (req.route as { path?: string } | undefined)?.path ?? 'unmatched',
    method: req.method,
    error: err instanceof Error ? err.name : typeof err,
    // The message of a library error may carry request data; the stack does not.
    stack: err instanceof Error ? err.stack?.split('\n').slice(1, 6).join('\n') : undefined,
  });
}

/** body-parser / raw-body error types (http-errors `type`), by what the client did wrong. */
const BODY_ERRORS: Record<string, ErrorCode> = {
  'entity.too.large': 'TOO_LARGE',
  'encoding.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
  'charset.unsupported': 'UNSUPPORTED_MEDIA_TYPE',
  'entity.parse.failed': 'MALFORMED',
  'entity.verify.failed': 'MALFORMED',
  'request.aborted': 'MALFORMED',
  'request.size.invalid': 'MALFORMED',
  'stream.encoding.set': 'MALFORMED',
};

/** By HTTP status, for other client errors a library raised (http-errors with `expose`). */
const CLIENT_STATUS: Record<number, ErrorCode> = {
  400: 'MALFORMED',
  404: 'NOT_FOUND',
  413: 'TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
  503: 'UNAVAILABLE',
};

/**
 * Maps an error to its problem; pure: it never logs (errorHandler and problemLogged
 * do, once). Unknown errors are INTERNAL. The request and logger arguments of
 * older callers are ignored.
 */
export function toProblem(err: unknown, _req?: Request, _logger?: Logger): Problem {
  if (err instanceof CasebridgeError)
    return problemOf(err.code, err.message, err.errors, err.members);
  const e = (err ?? {}) as { type?: unknown; status?: unknown; expose?: unknown };
  const byType = typeof e.type === 'string' ? BODY_ERRORS[e.type] : undefined;
  if (byType !== undefined) return problemOf(byType, 'the request body could not be read');
  const byStatus =
    typeof e.status === 'number' && e.expose === true ? CLIENT_STATUS[e.status] : undefined;
  if (byStatus !== undefined) return problemOf(byStatus, 'the request could not be read');
  return problemOf('INTERNAL', 'an internal error occurred; it has been logged');
}
