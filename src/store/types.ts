import type { AuditActor, AuditDraft, NodeSource, StoredEntry } from '../audit/types.js';
import type { DecisionStatus, Envelope, MessageType, Priority } from '../envelope/types.js';
import type {
  Claim,
  LifecycleStatus,
  Refusal,
  ReviewAction,
  ReviewEvent,
} from '../review/lifecycle.js';
import type { RecordedMessage } from '../messages/replay.js';
import type { HandlingCode } from '../messages/handling.js';
import type { FileBinding } from '../files/types.js';

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

/** Signs the receipt inside the acceptance transaction, so the stored response is the one sent. */
export type ReceiptMaker = (logIndex: number, acceptedAt: string) => string;

export type AcceptOutcome =
  | { kind: 'accepted'; response: AcceptResponse }
  | { kind: 'replay'; response: AcceptResponse }
  /** The id is taken by another envelope; `digest` is the JWS digest on record. */
  | { kind: 'conflict'; digest: string };

/** What a review action came to; the use case picks the error code. */
export type ReviewOutcome =
  | { kind: 'done'; record: MessageRecord }
  | { kind: 'refused'; refusal: Refusal; record: MessageRecord }
  | { kind: 'unknown' };

/** A committed change to a message, for the event stream (protocol §5.5). */
export interface MessageChange {
  event: 'delivered' | ReviewEvent;
  message: Pick<
    MessageRecord,
    'id' | 'type' | 'priority' | 'from' | 'to' | 'status' | 'decision' | 'inReplyTo'
  >;
}

export type ChangeListener = (change: MessageChange) => void;

/** Open messages with a deadline, counted by recipient agency and priority (protocol §5.5). */
export interface DeadlineCount {
  agency: string;
  priority: Priority;
  overdue: number;
  dueSoon: number;
}

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

export interface Checkpoint {
  size: number;
  root: Buffer;
  /** The signed note, exactly as served. */
  text: string;
  signedAt: string;
}

/** The transport's view of the outbox (protocol §5.2). */
export interface OutboxPort {
  /**
   * Rows due for a publish attempt, in accept order, excluding ids in `exclude`.
   * Due-ness is the store's own monotonic schedule: the wall clock plays no part.
   */
  dueOutbox(limit: number, exclude: ReadonlySet<string>): OutboxItem[];
  /** The broker confirmed these: status `queued`, audit `message.queued`. Idempotent. */
  markQueued(messageIds: readonly string[], actor: AuditActor): Promise<void>;
  /** A failed attempt: try again in `delayMs` (monotonic). */
  reschedule(messageId: string, delayMs: number, reason: string): void;
  /** Number of rows not yet queued. */
  outboxLag(): number;
}

/** The consumer's view of the inboxes. */
export interface InboxPort {
  /** Record delivery into the recipient's inbox, exactly once per message id. */
  deliver(messageId: string, digest: string, actor: AuditActor): Promise<DeliverOutcome>;
}

/** What the retention task needs of the store (docs/operations.md, "Data at rest"). */
export interface RetentionPort {
  /** Epochs that still hold sealed message content, oldest first. */
  liveEpochs(): string[];
  /**
   * Destroys the content of every message sealed in `epoch`, one `message.shredded`
   * entry each; a message still waiting in the outbox keeps its content, its key
   * moving to the current epoch. The epoch key itself is the caller's to destroy.
   */
  shredEpoch(epoch: string, actor: AuditActor): Promise<{ shredded: number; carried: number }>;
}

/** The audit log's storage (protocol §6). */
export interface AuditStore {
  treeSize(): number;
  entries(start: number, end: number): StoredEntry[];
  nodes(): NodeSource;
  append(draft: AuditDraft): Promise<StoredEntry>;
  latestCheckpoint(): Checkpoint | undefined;
  checkpointAt(size: number): Checkpoint | undefined;
  checkpoints(fromSize: number, toSize: number): Checkpoint[];
  addCheckpoint(cp: Checkpoint): void;
}

/**
 * The gateway's storage. The embedded implementation is SQLite; a server database
 * implements the same interface. Every method that changes a message also appends
 * its audit entry in the same transaction.
 */
/** What submission asks before the acceptance transaction (protocol §3 replay). */
export interface ReplayPort {
  /** The digests and original response of the message accepted under `id`; never reads its body. */
  recorded(id: string): (RecordedMessage & { response: AcceptResponse }) | undefined;
}

export interface Store extends OutboxPort, InboxPort, AuditStore, ReplayPort, RetentionPort {
  getMessage(id: string): MessageRecord | undefined;
  accept(msg: NewMessage, makeReceipt: ReceiptMaker): Promise<AcceptOutcome>;
  history(id: string): HistoryItem[];
  list(q: ListQuery): ListPage;
  /** Messages whose `inReplyTo` is `id`. */
  replies(id: string): MessageRecord[];
  /** Applies a claim, release or lapse under the lifecycle rules (review/lifecycle.ts). */
  review(id: string, action: ReviewAction, actor: HistoryActor): Promise<ReviewOutcome>;
  /**
   * Records an officer's decision on `id` and, only if the rules allow it, accepts the
   * gateway-signed status.update in the same transaction.
   */
  decide(
    id: string,
    action: Extract<ReviewAction, { kind: 'decide' }>,
    actor: HistoryActor,
    update: NewMessage,
    makeReceipt: ReceiptMaker,
  ): Promise<{ review: ReviewOutcome; accept?: AcceptOutcome }>;
  /** Lapses claims that expired by `now` (protocol §5.5); returns how many. */
  lapseExpired(now: Date, actor: AuditActor, limit: number): Promise<number>;
  /** Ids of open messages whose deadline passed by `now` and were not reported before; marks them. */
  takeNewlyOverdue(now: Date, limit: number): Promise<MessageChange['message'][]>;
  deadlineCounts(now: Date): DeadlineCount[];
  /** Called after each commit, once per changed message. */
  onChange(listener: ChangeListener): void;
  close(): void;
}
