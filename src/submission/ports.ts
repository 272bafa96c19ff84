/** What the submission use case needs of a store (protocol §3). */
import type { Envelope, MessageType } from '../envelope/types.js';
import type { FileBinding } from '../files/types.js';
import type { RecordedMessage } from '../messages/replay.js';
import type { HistoryActor } from '../messages/types.js';

/** What the submission path hands to the store once every check has passed. */
export interface NewMessage {
  id: string;
  digest: string;
  /** RFC 8785 digest of the envelope: what a replay is compared on (protocol §3). */
  envelopeDigest: string;
  jws: string;
  envelope: Envelope;
  actor: HistoryActor;
  /** An evidence.transfer's files, bound to it in the acceptance transaction (protocol §9.2). */
  files?: FileBinding;
}

/** The 202 body of protocol §3. */
export interface AcceptResponse {
  id: string;
  digest: string;
  logIndex: number;
  status: 'accepted';
  receipt: string;
}

/** What a receipt says besides where and when the message was logged (protocol §3). */
export interface ReceiptFields {
  messageId: string;
  digest: string;
  from: string;
  to: string;
  type: MessageType;
}

/**
 * Signs the receipt inside the acceptance transaction, so the stored response is the
 * one sent. A gateway's receipt maker carries its `fields`, so a store on another
 * thread can sign the same receipt there with the gateway's key.
 */
export type ReceiptMaker = ((logIndex: number, acceptedAt: string) => string) & {
  readonly fields?: ReceiptFields;
};

export type AcceptOutcome =
  | { kind: 'accepted'; response: AcceptResponse }
  | { kind: 'replay'; response: AcceptResponse }
  /** The id is taken by another envelope; `digest` is the JWS digest on record. */
  | { kind: 'conflict'; digest: string };

/** Accepting a message: its log entry, row, sealed body, outbox row and bindings in one commit. */
export interface AcceptPort {
  /** The digests and original response of the message accepted under `id`; never reads its body. */
  recorded(id: string): Promise<(RecordedMessage & { response: AcceptResponse }) | undefined>;
  /**
   * Accepts `msg`, deciding again inside the transaction whether it is new, a
   * replay or a conflict: two submissions of one id may commit together.
   */
  accept(msg: NewMessage, makeReceipt: ReceiptMaker): Promise<AcceptOutcome>;
}
