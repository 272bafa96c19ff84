/** What review (claim, release, lapse, decide, deadlines) needs of a store (protocol §5.3–§5.5). */
import type { AuditActor } from '../audit/types.js';
import type { Priority } from '../envelope/types.js';
import type { HistoryActor, MessageChange, MessageRecord } from '../messages/types.js';
import type { AcceptOutcome, NewMessage, ReceiptMaker } from '../submission/ports.js';
import type { Refusal, ReviewAction } from './lifecycle.js';

/** What a review action came to; the use case picks the error code. */
export type ReviewOutcome =
  | { kind: 'done'; record: MessageRecord }
  | { kind: 'refused'; refusal: Refusal; record: MessageRecord }
  | { kind: 'unknown' };

/** Open messages with a deadline, counted by recipient agency and priority (protocol §5.5). */
export interface DeadlineCount {
  agency: string;
  priority: Priority;
  overdue: number;
  dueSoon: number;
}

/**
 * The store applies the rules of lifecycle.ts to the row it reads inside its own
 * transaction and writes what they return; a refusal is an outcome, and commits
 * nothing of its own.
 */
export interface ReviewPort {
  /** Applies a claim, release or lapse. */
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
  /** Lapses claims that expired by `now`; returns how many. */
  lapseExpired(now: Date, actor: AuditActor, limit: number): Promise<number>;
  /** Open messages whose deadline passed by `now` and were not reported before; marks them. */
  takeNewlyOverdue(now: Date, limit: number): Promise<MessageChange['message'][]>;
  deadlineCounts(now: Date): Promise<DeadlineCount[]>;
}
