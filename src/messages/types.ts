/**
 * Messages as the gateway holds them, and the narrow port that reads them
 * (protocol §5). Stores implement it; the HTTP routes, review and the audit
 * export use it.
 */
import type { AuditActor } from '../audit/types.js';
import type { DecisionStatus, Envelope, MessageType, Priority } from '../envelope/types.js';
import type { Claim, LifecycleStatus, ReviewEvent } from '../review/lifecycle.js';
import type { HandlingCode } from './handling.js';

/** protocol §5.1 lifecycle; the decision is a field of its own. */
export type MessageStatus = LifecycleStatus;

/**
 * Who acted, with the certificate CN at the time of the action. The name is shown
 * to the two agencies of the message only, and never written to the audit log.
 */
export interface HistoryActor extends AuditActor {
  name?: string;
}

/** What a history row records: a lifecycle step or a review event. */
export type HistoryEvent = 'accepted' | 'queued' | 'delivered' | Exclude<ReviewEvent, 'noted'>;

export interface HistoryItem {
  /** The lifecycle status after the event. */
  status: MessageStatus;
  event: HistoryEvent;
  /** Set on `decided`. */
  decision?: DecisionStatus;
  at: string;
  by: HistoryActor;
}

/**
 * A message as the gateway holds it. `jws` is the exact text received; it and the
 * envelope are null once the retention period has shredded the content
 * (`shreddedAt`), while the metadata below stays.
 */
export interface MessageRecord {
  id: string;
  digest: string;
  jws: string | null;
  envelope: Envelope | null;
  /** When the content was destroyed (docs/operations.md, "Data at rest"). */
  shreddedAt: string | null;
  type: MessageType;
  caseRef: string;
  handling: HandlingCode;
  from: string;
  to: string;
  priority: Priority;
  respondBy: string | null;
  /** The earliest of `respondBy` and a freeze's `executeBy` (protocol §5.5). */
  deadline: string | null;
  inReplyTo: string | null;
  createdAt: string;
  acceptedAt: string;
  logIndex: number;
  status: MessageStatus;
  /** The latest decision (protocol §5.1). */
  decision: DecisionStatus | null;
  /** The claim as stored; it may have expired and await its lapse (see `effectiveState`). */
  claim: Claim | null;
  /** The body of the original 202, replayed on an idempotent resubmission. */
  response: string;
}

export interface ListQuery {
  agency: string;
  direction: 'received' | 'sent';
  /** A lifecycle status, or `open` (every status but `decided`); unset = all. */
  status?: MessageStatus | 'open';
  /** A decision, or `none` (not decided at all). */
  decision?: DecisionStatus | 'none';
  type?: MessageType;
  priority?: Priority;
  limit: number;
  /** Opaque, from a previous page's `nextCursor`. */
  cursor?: string;
}

export interface ListPage {
  items: MessageRecord[];
  nextCursor: string | null;
}

/** A committed change to a message, for the event stream (protocol §5.5). */
export interface MessageChange {
  event: 'delivered' | ReviewEvent;
  message: Pick<
    MessageRecord,
    'id' | 'type' | 'priority' | 'from' | 'to' | 'status' | 'decision' | 'inReplyTo'
  >;
}

export type ChangeListener = (change: MessageChange) => void;

/** Reading messages: one, a page of a queue, a history, the replies to one. */
export interface MessageReader {
  getMessage(id: string): Promise<MessageRecord | undefined>;
  history(id: string): Promise<HistoryItem[]>;
  /** Ordered by priority, then deadline, then acceptance (protocol §5.3). */
  list(q: ListQuery): Promise<ListPage>;
  /** Messages whose `inReplyTo` is `id`, in acceptance order. */
  replies(id: string): Promise<MessageRecord[]>;
}

/** Committed changes, after their commit, once per changed message. */
export interface ChangeFeed {
  onChange(listener: ChangeListener): void;
  /**
   * Called when changes committed by other processes may have been missed: the
   * feed between them was down and is back. Whoever follows the changes reads
   * again. A store that only one process writes never calls it.
   */
  onGap?(listener: () => void): void;
}
