/** What the retention task needs of the store (docs/operations.md, "Data at rest"). */
import type { AuditActor } from '../audit/types.js';

export interface RetentionPort {
  /** Epochs that still hold sealed message content, oldest first. */
  liveEpochs(): Promise<string[]>;
  /**
   * Destroys the content of every message sealed in `epoch`, one `message.shredded`
   * entry each; a message still waiting in the outbox keeps its content, its key
   * moving to the current epoch. The epoch key itself is the caller's to destroy.
   */
  shredEpoch(epoch: string, actor: AuditActor): Promise<{ shredded: number; carried: number }>;
}
