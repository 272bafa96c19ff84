import type { AuditActor, AuditDraft, NodeSource, StoredEntry } from '../audit/types.js';
import type { DecisionStatus, Envelope, MessageType, Priority } from '../envelope/types.js';

/** protocol §5.1 lifecycle. */
export type MessageStatus = 'accepted' | 'queued' | 'delivered' | 'claimed' | DecisionStatus;

export interface HistoryItem {
  status: MessageStatus;
  at: string;
  by: AuditActor;
}

/** A message as the gateway holds it. `jws` is the exact text received. */
export interface MessageRecord {
  id: string;
  digest: string;
  jws: string;
  envelope: Envelope;
  type: MessageType;
  from: string;
  to: string;
  priority: Priority;
  respondBy: string | null;
  inReplyTo: string | null;
  createdAt: string;
  acceptedAt: string;
  logIndex: number;
  status: MessageStatus;
  /** The latest decision, once an officer has decided (protocol §5.4). */
  decision: DecisionStatus | null;
  /** The claim holder's subject, while claimed. */
  claimedBy: string | null;
  /** The body of the original 202, replayed on an idempotent resubmission. */
  response: string;
}

/** What the submission path hands to the store once every check has passed. */
export interface NewMessage {
  id: string;
  digest: string;
  jws: string;
  envelope: Envelope;
  actor: AuditActor;
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
  | { kind: 'conflict' };

export type ClaimOutcome = 'claimed' | 'already-claimed' | 'not-delivered' | 'decided' | 'unknown';

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
  status?: MessageStatus;
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
  /** Rows due for a publish attempt, oldest first, excluding ids in `exclude`. */
  dueOutbox(limit: number, now: Date, exclude: ReadonlySet<string>): OutboxItem[];
  /** The broker confirmed these: status `queued`, audit `message.queued`. Idempotent. */
  markQueued(messageIds: readonly string[], actor: AuditActor): Promise<void>;
  /** A failed attempt: try again at `nextAttemptAt`. */
  reschedule(messageId: string, nextAttemptAt: Date, reason: string): void;
  /** Number of rows not yet queued. */
  outboxLag(): number;
}

/** The consumer's view of the inboxes. */
export interface InboxPort {
  /** Record delivery into the recipient's inbox, exactly once per message id. */
  deliver(messageId: string, digest: string, actor: AuditActor): Promise<DeliverOutcome>;
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
export interface Store extends OutboxPort, InboxPort, AuditStore {
  getMessage(id: string): MessageRecord | undefined;
  accept(msg: NewMessage, makeReceipt: ReceiptMaker): Promise<AcceptOutcome>;
  history(id: string): HistoryItem[];
  list(q: ListQuery): ListPage;
  /** Messages whose `inReplyTo` is `id`. */
  replies(id: string): MessageRecord[];
  claim(id: string, actor: AuditActor): Promise<ClaimOutcome>;
  release(id: string, actor: AuditActor): Promise<'released' | 'not-claimed'>;
  /** Records the decision on `id` and accepts the gateway-signed status.update in one transaction. */
  decide(
    id: string,
    status: DecisionStatus,
    actor: AuditActor,
    update: NewMessage,
    makeReceipt: ReceiptMaker,
  ): Promise<AcceptOutcome>;
  close(): void;
}
