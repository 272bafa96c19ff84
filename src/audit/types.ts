/** protocol §6.1 audit entries. */

export type AuditEvent =
  | 'message.accepted'
  | 'message.refused'
  | 'message.queued'
  | 'message.delivered'
  | 'message.claimed'
  | 'message.released'
  | 'message.claim-lapsed'
  | 'message.decided'
  | 'message.dead-lettered'
  | 'message.shredded'
  | 'pki.crl-loaded'
  | 'registry.loaded'
  | 'gateway.started'
  | 'clock.stepped'

  // protocol §9.4 evidence-file custody
  | 'file.stored'
  | 'file.bound'
  | 'file.downloaded'
  | 'file.expired';

export interface AuditActor {
  agency: string;
  role: string;
  /** `sha256:` + hex of SHA-256 over the actor certificate DER. */
  subject: string;
}

/** What a caller hands to the log; the log adds `v`, `index` and `ts`. */
export interface AuditDraft {
  event: AuditEvent;
  actor: AuditActor;
  messageId?: string;
  digest?: string;
  from?: string;
  to?: string;
  type?: string;
  inReplyTo?: string;
  /** Metadata only (codes, counts, statuses, digests): never personal data. */
  detail?: Record<string, string | number | boolean>;
}

export interface AuditEntry extends AuditDraft {
  v: 1;
  index: number;
  ts: string;
}

/** One stored entry: the exact bytes that were hashed, and their parsed form. */
export interface StoredEntry {
  index: number;
  bytes: Buffer;
}

/** A perfect subtree hash: covers leaves [index * 2^level, (index + 1) * 2^level). */
export interface TreeNode {
  level: number;
  index: number;
  hash: Buffer;
}

/** Random access to stored perfect-subtree hashes (level 0 = leaf hashes). */
export interface NodeSource {
  node(level: number, index: number): Buffer;
}

/** Where a stored perfect-subtree hash sits: `level` 0 is a leaf. */
export interface NodeCoord {
  level: number;
  index: number;
}

/** A signed tree head (protocol §6.3), as kept by the log. */
export interface Checkpoint {
  size: number;
  root: Buffer;
  /** The signed note, exactly as served. */
  text: string;
  signedAt: string;
}

/** Reading the audit log (protocol §6): what proofs, exports and the verifier routes need. */
export interface AuditLogReader {
  treeSize(): Promise<number>;
  entries(start: number, end: number): Promise<StoredEntry[]>;
  /** The stored hashes at `coords`, in the same order (see `withNodes` in merkle.ts). */
  nodesAt(coords: readonly NodeCoord[]): Promise<Buffer[]>;
}

/** The audit log's storage: one gap-free, append-only sequence of entries. */
export interface AuditLog extends AuditLogReader {
  append(draft: AuditDraft): Promise<StoredEntry>;
}

/** Signed checkpoints: every one is kept, so old tree heads stay provable. */
export interface CheckpointStore {
  latestCheckpoint(): Promise<Checkpoint | undefined>;
  checkpointAt(size: number): Promise<Checkpoint | undefined>;
  checkpoints(fromSize: number, toSize: number): Promise<Checkpoint[]>;
  /** Keeps `cp`; a second checkpoint of the same size is ignored. */
  addCheckpoint(cp: Checkpoint): Promise<void>;
}
