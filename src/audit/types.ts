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
