import { CasebridgeError, type ErrorCode } from '../errors.js';

/**
 * Why an audit-log operation refused its input. Stable strings: callers and tests
 * switch on `reason`, never on message text.
 */
export type AuditErrorReason =
  /** Entry bytes are not a well-formed, canonical protocol §6.1 entry. */
  | 'entry-malformed'
  /** A draft cannot be serialized (bad timestamp, non-finite number, …). */
  | 'draft-invalid'
  /** A vkey is not `<name>+<8 hex>+<base64(0x01 || key)>` or its key id does not match. */
  | 'vkey-malformed'
  /** A checkpoint is not a well-formed C2SP signed note / tlog checkpoint. */
  | 'checkpoint-malformed'
  /** No signature line of the note comes from the expected key. */
  | 'checkpoint-unknown-key'
  /** A signature line from the expected key does not verify. */
  | 'checkpoint-bad-signature'
  /** A proof or root was asked for an index/size outside the tree. */
  | 'range-invalid'
  /** The node source lacks a node the algorithm needs (storage bug or corruption). */
  | 'node-missing';

const CODE_BY_REASON: Record<AuditErrorReason, ErrorCode> = {
  'entry-malformed': 'MALFORMED',
  'draft-invalid': 'INTERNAL',
  'vkey-malformed': 'MALFORMED',
  'checkpoint-malformed': 'MALFORMED',
  'checkpoint-unknown-key': 'SIGNATURE_INVALID',
  'checkpoint-bad-signature': 'SIGNATURE_INVALID',
  'range-invalid': 'INVALID_PARAMETER',
  'node-missing': 'INTERNAL',
};

/** A refusal from the audit core; `code` follows the shared table, `reason` is finer. */
export class AuditError extends CasebridgeError {
  readonly reason: AuditErrorReason;

  constructor(reason: AuditErrorReason, detail: string, options?: { cause?: unknown }) {
    super(CODE_BY_REASON[reason], detail, options);
    this.name = 'AuditError';
    this.reason = reason;
  }
}

export function isAuditError(e: unknown): e is AuditError {
  return e instanceof AuditError;
}
