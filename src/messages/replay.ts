/**
 * Replay by meaning (protocol §3): a resubmission is the same message when its
 * envelope is the same once canonicalized with RFC 8785, whatever the signature
 * bytes (ECDSA signs differently each time, and S may be re-encoded as n − S).
 * Pure rules, no I/O: the store keeps this digest with each message, so the
 * comparison never needs the body, which retention may have destroyed.
 */
import { createHash } from 'node:crypto';
import { canonicalBytes } from '../envelope/jcs.js';

/** `sha256:` + lowercase hex of SHA-256 over the RFC 8785 canonical envelope. */
export function envelopeDigest(envelope: unknown): string {
  return `sha256:${createHash('sha256').update(canonicalBytes(envelope)).digest('hex')}`;
}

/** What the store remembers of an accepted message to answer a resubmission of its id. */
export interface RecordedMessage {
  /** Digest of the exact JWS on record (protocol §2.1). */
  digest: string;
  envelopeDigest: string;
}

export type Resubmission = 'new' | 'replay' | 'conflict';

/** The one rule: same id and same canonical envelope is a replay; same id otherwise a conflict. */
export function classifyResubmission(
  recorded: RecordedMessage | undefined,
  envelopeDigestOfNew: string,
): Resubmission {
  if (recorded === undefined) return 'new';
  return recorded.envelopeDigest === envelopeDigestOfNew ? 'replay' : 'conflict';
}

/** The resource of a message (protocol §3 `Location`). */
export function messageLocation(id: string): string {
  return `/v1/messages/${id}`;
}
