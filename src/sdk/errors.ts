/** What the SDK throws: a problem from the gateway, a transport failure, or a failed check. */

/** An RFC 9457 problem the gateway answered (protocol §4). Switch on `code`. */
export interface ProblemBody {
  type?: string;
  title?: string;
  status: number;
  code: string;
  detail?: string;
  errors?: { path: string; keyword: string; message: string; allowedValues?: unknown[] }[];
  digest?: string;
  location?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: ProblemBody,
    /** `Retry-After` in seconds, when the gateway sent one (429, 503). */
    readonly retryAfterS?: number,
  ) {
    super(`${status} ${problem.code}${problem.detail ? `: ${problem.detail}` : ''}`);
    this.name = 'ApiError';
  }

  get code(): string {
    return this.problem.code;
  }
}

/** The gateway could not be reached, or the connection broke before an answer. */
export class TransportError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransportError';
  }
}

export type CheckFailure =
  | 'malformed'
  | 'wrong-type'
  | 'certificate-not-pinned'
  | 'signature-invalid'
  | 'checkpoint-invalid'
  | 'proof-invalid'
  | 'mismatch';

/** A receipt, proof or checkpoint that does not verify against what the caller pinned. */
export class VerificationError extends Error {
  constructor(
    readonly reason: CheckFailure,
    detail: string,
  ) {
    super(detail);
    this.name = 'VerificationError';
  }
}
