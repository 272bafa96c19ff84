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
  if (p.location !== undefined) res.location(p.location);
  res.status(p.status).type('application/problem+json').send(JSON.stringify(p));
}

/** Maps express/body-parser errors and our own to problem+json; never leaks a stack. */
export function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) {
      next(err);
      return;
    }
    if (err instanceof CasebridgeError && err.retryAfterS !== undefined) {
      res.setHeader('retry-after', String(Math.ceil(err.retryAfterS)));
    }
    sendProblem(res, toProblem(err, req, logger));
  };
}

export function toProblem(err: unknown, req: Request, logger: Logger): Problem {
  if (err instanceof CasebridgeError)
    return problemOf(err.code, err.message, err.errors, err.members);
  const e = err as { type?: string; status?: number };
  if (e && e.type === 'entity.too.large')
    return problemOf('TOO_LARGE', 'the body exceeds the size limit');
  if (e && (e.type === 'entity.parse.failed' || e.type === 'encoding.unsupported')) {
    return problemOf('MALFORMED', 'the body could not be read');
  }
  if (e && e.type === 'request.aborted') return problemOf('MALFORMED', 'the request was aborted');
  logger.error('unhandled error', {
    route: req.route?.path ?? req.path,
    method: req.method,
    error: err instanceof Error ? err.name : typeof err,
    // The message of a library error may carry request data; the stack does not.
    stack: err instanceof Error ? err.stack?.split('\n').slice(1, 6).join('\n') : undefined,
  });
  return problemOf('INTERNAL', 'an internal error occurred; it has been logged');
}
