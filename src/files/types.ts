/**
 * Evidence files (protocol §9): the narrow ports the upload, binding, download,
 * expiry and export use cases own. The store adapters implement them.
 */
import type { AuditActor } from '../audit/types.js';

/** An exhibit named by content: 64 lowercase hex of SHA-256, and its length. */
export interface FileRef {
  sha256: string;
  size: number;
}

/** A completed upload, kept once per agency (protocol §9.1). */
export interface StoredFile extends FileRef {
  agency: string;
  storedAt: string;
  /** The log index of its `file.stored` entry. */
  logIndex: number;
}

/** One custody event of the gateway's own record, as in the audit log (protocol §9.4). */
export interface CustodyEvent {
  event: 'file.stored' | 'file.bound' | 'file.downloaded' | 'file.expired';
  sha256: string;
  logIndex: number;
  at: string;
  actor: AuditActor;
  messageId: string | null;
}

/** What submission hands to the acceptance transaction for an evidence.transfer. */
export interface FileBinding {
  agency: string;
  files: FileRef[];
}

/** The file records of the gateway's store. Every write appends its audit entry in the same transaction. */
export interface FileIndex {
  /** The completed upload of `agency` with this hash, if any. */
  storedFile(agency: string, sha256: string): Promise<StoredFile | undefined>;
  /** Bytes of completed files the agency keeps. */
  usage(agency: string): Promise<number>;
  /**
   * Records a completed, verified file (`file.stored`). `exists` when the agency
   * already keeps it: no second entry.
   */
  recordStored(file: FileRef & { agency: string }, actor: AuditActor): Promise<'stored' | 'exists'>;
  /** The file bound to `messageId` under this hash, with the agency that keeps it. */
  boundFile(messageId: string, sha256: string): Promise<StoredFile | undefined>;
  /** Every file bound to `messageId`. */
  boundFiles(messageId: string): Promise<StoredFile[]>;
  /** `file.downloaded`. */
  recordDownload(
    messageId: string,
    file: StoredFile,
    actor: AuditActor,
    range: { start: number; end: number },
  ): Promise<void>;
  /**
   * Removes the records of files no accepted message references that were stored
   * before `before`, each with a `file.expired` entry, and returns them so their
   * bytes can be deleted.
   */
  expireUnbound(before: Date, actor: AuditActor, limit: number): Promise<StoredFile[]>;
  /** The gateway's custody entries for the files bound to `messageId`. */
  custody(messageId: string): Promise<CustodyEvent[]>;
}
