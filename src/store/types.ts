/**
 * A store is an adapter of the narrow ports its callers own: messages/, submission/,
 * review/, audit/, transport/, retention/ and files/. This file only composes
 * them for the composition root and the adapters (SQLite, PostgreSQL); nothing
 * in the core imports it.
 */
import type { AuditLog, CheckpointStore } from '../audit/types.js';
import type { SignerLease } from '../checkpoints/ports.js';
import type { FileIndex } from '../files/types.js';
import type { ChangeFeed, MessageReader } from '../messages/types.js';
import type { RetentionPort } from '../retention/ports.js';
import type { ReviewPort } from '../review/ports.js';
import type { AcceptPort } from '../submission/ports.js';
import type { InboxPort, OutboxPort } from '../transport/ports.js';
import type { StoreFailure } from './errors.js';

export type { AuditLog, AuditLogReader, Checkpoint, CheckpointStore } from '../audit/types.js';
export type {
  ChangeListener,
  HistoryActor,
  HistoryEvent,
  HistoryItem,
  ListPage,
  ListQuery,
  MessageChange,
  MessageRecord,
  MessageStatus,
} from '../messages/types.js';
export type { RetentionPort } from '../retention/ports.js';
export type { DeadlineCount, ReviewOutcome } from '../review/ports.js';
export type {
  AcceptOutcome,
  AcceptResponse,
  NewMessage,
  ReceiptMaker,
} from '../submission/ports.js';
export type { DeliverOutcome, InboxPort, OutboxItem, OutboxPort } from '../transport/ports.js';

/** How the store is doing, for /readyz and the metrics. */
export interface StoreHealth {
  /** `sqlite` or `postgres`. */
  engine: string;
  /** Why writes fail right now; undefined when the last write committed. */
  failure: StoreFailure | undefined;
  /** Bytes free for the store, when the platform says (embedded store only). */
  freeBytes: number | undefined;
  /** Seconds since the oldest outbox row was accepted; 0 when empty. */
  outboxOldestAgeS: number;
}

export interface Store
  extends
    MessageReader,
    ChangeFeed,
    AcceptPort,
    ReviewPort,
    AuditLog,
    CheckpointStore,
    OutboxPort,
    InboxPort,
    RetentionPort {
  /** Evidence-file records (protocol §9), in the same database and transactions. */
  readonly files: FileIndex;
  /** Who signs checkpoints when several gateways share the store (protocol §11). */
  readonly lease: SignerLease;
  /** Asks the database; a store that cannot answer reports a failure, it does not throw. */
  health(): Promise<StoreHealth>;
  /** Commits the writes still queued, then closes; later writes are refused. */
  close(): Promise<void>;
}
