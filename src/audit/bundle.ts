/**
 * The audit export bundle (protocol §6.4 `GET /v1/audit/export`, §6.5): ndjson, one
 * JSON object per line.
 *
 *   header      {"kind":"casebridge-audit-export","version":1,"origin","vkey",
 *                "gatewayChain":[PEM…],"trustAnchors":[PEM…],"start","end","exportedAt"}
 *   entry       {"kind":"entry","index","leaf":<base64 of the exact entry bytes>}
 *               or {"kind":"entry","index","leafHash":<base64 of SHA-256(0x00 || bytes)>}
 *               when the exporting auditor may not read the entry (docs/auditing.md)
 *   message     {"kind":"message","id","jws"}          (optional)
 *   receipt     {"kind":"receipt","id","jws"}          (optional)
 *   checkpoint  {"kind":"checkpoint","text":<signed note>}
 *
 * The header comes first. The exporter writes entries in index order, each page's
 * messages and receipts after the page, then the checkpoints; the verifier accepts
 * the non-header lines in any order.
 */

export const BUNDLE_KIND = 'casebridge-audit-export';
export const BUNDLE_VERSION = 1;
export const BUNDLE_MEDIA_TYPE = 'application/x-ndjson';

export interface BundleHeader {
  kind: typeof BUNDLE_KIND;
  version: typeof BUNDLE_VERSION;
  /** The checkpoint origin line (protocol §6.3). */
  origin: string;
  /** The log's signed-note verifier key. */
  vkey: string;
  /** The gateway's certificate chain, leaf first, PEM. */
  gatewayChain: string[];
  /** The trust anchors (CA certificates) the gateway is configured with, PEM. */
  trustAnchors: string[];
  /** First entry index in the bundle (inclusive). */
  start: number;
  /** Entry index after the last one (exclusive): the bundle holds [start, end). */
  end: number;
  /** RFC 3339 UTC. */
  exportedAt: string;
}

export type EntryLine =
  | { kind: 'entry'; index: number; leaf: string }
  /** A redacted entry: its RFC 6962 leaf hash only, enough for the tree and proofs. */
  | { kind: 'entry'; index: number; leafHash: string };

export interface CheckpointLine {
  kind: 'checkpoint';
  text: string;
}

export interface MessageLine {
  kind: 'message';
  id: string;
  jws: string;
}

export interface ReceiptLine {
  kind: 'receipt';
  id: string;
  jws: string;
}

export type BundleLine = BundleHeader | EntryLine | CheckpointLine | MessageLine | ReceiptLine;
