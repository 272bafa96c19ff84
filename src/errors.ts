/**
 * The error hierarchy. Every refusal carries a stable `code` (protocol §4); the HTTP
 * layer maps codes to statuses through `STATUS_BY_CODE` and nothing else.
 * Messages must never contain personal data from a message body.
 */

export const STATUS_BY_CODE = {
  // protocol §1.2
  CLIENT_CERT_REQUIRED: 401,
  CLIENT_CERT_UNTRUSTED: 401,
  // protocol §3, in check order
  TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  MALFORMED: 400,
  BAD_HEADER: 422,
  CERT_INVALID: 422,
  SIGNATURE_INVALID: 422,
  SCHEMA_INVALID: 422,
  SENDER_MISMATCH: 403,
  FORBIDDEN_ROLE: 403,
  NOT_PERMITTED: 403,
  STALE: 422,
  UNKNOWN_REFERENCE: 422,
  UNKNOWN_FILE: 422,
  ID_CONFLICT: 409,
  // Evidence files
  DIGEST_MISMATCH: 422,
  QUOTA_EXCEEDED: 507,
  INSUFFICIENT_STORAGE: 507,
  // tus 1.0 (protocol §9.1): a PATCH at the wrong offset, a chunk failing its Upload-Checksum.
  OFFSET_MISMATCH: 409,
  CHECKSUM_MISMATCH: 460,
  // RFC 9110 §15.5.17: a Range outside a downloaded file.
  RANGE_NOT_SATISFIABLE: 416,
  // protocol §5.3, §5.4
  NOT_FOUND: 404,
  ALREADY_CLAIMED: 409,
  // Codes for the rest of the API (protocol §4).
  INVALID_PARAMETER: 400,
  NOT_CLAIMED: 409,
  ALREADY_DECIDED: 409,
  NOT_DELIVERED: 409,
  RATE_LIMITED: 429,
  // protocol §10: a state-changing browser request from another site, or without the console's token.
  CROSS_SITE_REFUSED: 403,
  UNAVAILABLE: 503,
  INTERNAL: 500,
} as const;

export type ErrorCode = keyof typeof STATUS_BY_CODE;

/** One schema failure, as protocol §4 puts it in `errors`. */
export interface ValidationIssue {
  path: string;
  keyword: string;
  message: string;
  /** For `enum` (and `const`): the values the member may take. */
  allowedValues?: readonly unknown[];
}

/**
 * Problem members beyond RFC 9457's, for a refusal the caller can act on: an
 * `ID_CONFLICT` names the message on record (protocol §3).
 */
export interface ProblemMembers {
  digest?: string;
  /** Also sent as the `Location` header. */
  location?: string;
}

export class CasebridgeError extends Error {
  readonly code: ErrorCode;
  readonly errors: ValidationIssue[] | undefined;
  /** Seconds for the `Retry-After` header of a 503 or 429 (protocol §4). */
  readonly retryAfterS: number | undefined;
  readonly members: ProblemMembers | undefined;

  constructor(
    code: ErrorCode,
    detail: string,
    options?: {
      cause?: unknown;
      errors?: ValidationIssue[];
      retryAfterS?: number;
      members?: ProblemMembers;
    },
  ) {
    super(detail, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CasebridgeError';
    this.code = code;
    this.errors = options?.errors;
    this.retryAfterS = options?.retryAfterS;
    this.members = options?.members;
  }

  get status(): number {
    return STATUS_BY_CODE[this.code];
  }
}

export function isCasebridgeError(e: unknown): e is CasebridgeError {
  return e instanceof CasebridgeError;
}

/** A configuration problem: the process stops with one line naming the variable (protocol §8). */
export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, reason: string, options?: { cause?: unknown }) {
    super(
      `${variable}: ${reason}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'ConfigError';
    this.variable = variable;
  }
}
