/**
 * The audit log core (protocol §6): entry bytes, RFC 6962/9162 Merkle tree and proofs,
 * C2SP signed checkpoints, the export bundle and its offline verifier. Pure: no
 * HTTP, broker or database code; the file reader lives apart in bundle-file.ts.
 */
export type {
  AuditActor,
  AuditDraft,
  AuditEntry,
  AuditEvent,
  AuditLog,
  AuditLogReader,
  Checkpoint,
  CheckpointStore,
  NodeCoord,
  NodeSource,
  StoredEntry,
  TreeNode,
} from './types.js';
export { AuditError, isAuditError, type AuditErrorReason } from './errors.js';
export { ENTRY_VERSION, isAuditEvent, parseEntry, serializeEntry } from './entry.js';
export {
  CompactRange,
  EMPTY_ROOT,
  HASH_SIZE,
  LEAF_PREFIX,
  MemoryTree,
  NODE_PREFIX,
  consistencyProof,
  inclusionProof,
  leafHash,
  nodeHash,
  nodesCompletedBy,
  rootHash,
  verifyConsistency,
  verifyInclusion,
  withNodes,
} from './merkle.js';
export {
  SIGNATURE_LINE_PREFIX,
  SIG_TYPE_ED25519,
  checkpointText,
  keyIdFor,
  openNote,
  parseVkey,
  signCheckpoint,
  signNote,
  verifyCheckpoint,
  vkeyFor,
  type CheckpointBody,
  type NoteVerifier,
} from './checkpoint.js';
export {
  BUNDLE_KIND,
  BUNDLE_MEDIA_TYPE,
  BUNDLE_VERSION,
  type BundleHeader,
  type BundleLine,
  type CheckpointLine,
  type EntryLine,
  type MessageLine,
  type ReceiptLine,
} from './bundle.js';
export {
  exportBundle,
  type ExportLog,
  type BundleMessage,
  type ExportOptions,
  type ExportSource,
} from './export.js';
export {
  createBundleVerifier,
  verifyBundle,
  type LineVerifier,
  type TrustReport,
  type VerifyFailure,
  type VerifyFailureReason,
  type VerifyOptions,
  type VerifyReport,
} from './verify.js';
// The file reader for the CLI (`casebridge audit verify`) is src/audit/bundle-file.ts,
// kept out of this index so that importing the core never pulls in node:fs.
