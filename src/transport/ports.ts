/** The transport's view of the store: the outbox it drains and the inboxes it fills (protocol §5.2). */
import type { AuditActor } from '../audit/types.js';
import type { MessageType } from '../envelope/types.js';

/** One message waiting in the outbox for the transport. */
export interface OutboxItem {
  messageId: string;
  jws: string;
  digest: string;
  logIndex: number;
  from: string;
  to: string;
  type: MessageType;
  acceptedAt: string;
  attempts: number;
}

export type DeliverOutcome = 'delivered' | 'duplicate' | 'unknown';

export interface OutboxPort {
  /**
   * Rows due for a publish attempt, in accept order, excluding ids in `exclude`.
   * Due-ness is the store's own schedule: a step of the wall clock plays no part.
   * Where several gateways share a store, a row handed to one is not handed to
   * another until that one's claim on it lapses.
   */
  dueOutbox(limit: number, exclude: ReadonlySet<string>): Promise<OutboxItem[]>;
  /** The broker confirmed these: status `queued`, audit `message.queued`. Idempotent. */
  markQueued(messageIds: readonly string[], actor: AuditActor): Promise<void>;
  /** A failed attempt: try again in `delayMs`. */
  reschedule(messageId: string, delayMs: number, reason: string): Promise<void>;
  /** Number of rows not yet queued. */
  outboxLag(): Promise<number>;
}

export interface InboxPort {
  /** Record delivery into the recipient's inbox, exactly once per message id. */
  deliver(messageId: string, digest: string, actor: AuditActor): Promise<DeliverOutcome>;
}
