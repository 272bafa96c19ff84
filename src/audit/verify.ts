/**
 * Offline verification of an audit export bundle (protocol §6.5, format in bundle.ts).
 *
 * The verifier trusts nothing in the bundle: the log key and the trust anchors are
 * the auditor's own (`vkey`, `trustAnchors`). Only when the caller explicitly asks
 * (`trustBundleKey`, `trustBundleAnchors`) are the header's used, and the report
 * then says so (`trust.unpinned`): a bundle never vouches for itself. It
 *
 *  1. recomputes the Merkle tree from the leaves (each entry parsed and hashed once);
 *  2. checks every checkpoint's signature and that its root equals the recomputed
 *     root at its size;
 *  3. checks consistency between the checkpoints with RFC 9162 proofs computed from
 *     the recomputed tree;
 *  4. checks the entries: positions, canonical form, message chains;
 *  5. checks each message and receipt present: digest, signature, certificate chain.
 *
 * It requires the bundle to start at index 0: a bundle starting later would need a
 * trusted checkpoint of its start plus a proof over the missing prefix, which the
 * bundle format does not carry. Failures are data (`VerifyFailure`), never thrown.
 */
import { digestOf } from '../envelope/jws.js';
import { signingTimeOf } from '../envelope/profile.js';
import { MESSAGE_TYP, RECEIPT_TYP, type ReceiptPayload } from '../envelope/types.js';
import type { AuditEntry } from './types.js';
import { BUNDLE_KIND, BUNDLE_VERSION, type BundleHeader } from './bundle.js';
import { parseEntry } from './entry.js';
import { isAuditError } from './errors.js';
import { MemoryTree, consistencyProof, leafHash, verifyConsistency } from './merkle.js';
import {
  parseVkey,
  verifyCheckpoint,
  type CheckpointBody,
  type NoteVerifier,
} from './checkpoint.js';
import { SignatureChecker, parsePemCertificates, type SignedResult } from './signatures.js';
import { FileCustodyCheck } from './verify-files.js';

/** Stable failure codes. Tests and tools switch on these, never on `detail`. */
export type VerifyFailureReason =
  // The bundle itself
  | 'header-invalid'
  | 'key-unpinned'
  | 'anchors-unpinned'
  | 'unsupported-start'
  | 'vkey-mismatch'
  | 'line-malformed'
  // Entries
  | 'entry-malformed'
  | 'entry-missing'
  | 'entry-reordered'
  | 'entry-duplicate'
  | 'entries-truncated'
  | 'entry-out-of-range'
  | 'unsigned-entries'
  | 'log-truncated'
  // Checkpoints
  | 'no-checkpoint'
  | 'checkpoint-malformed'
  | 'checkpoint-unknown-key'
  | 'checkpoint-bad-signature'
  | 'checkpoint-origin-mismatch'
  | 'root-mismatch'
  | 'checkpoint-fork'
  | 'checkpoint-inconsistent'
  // Chains (entries alone)
  | 'broken-chain'
  // Messages and receipts
  | 'message-unknown'
  | 'message-digest-mismatch'
  | 'message-malformed'
  | 'message-signature-invalid'
  | 'message-certificate-invalid'
  | 'message-mismatch'
  | 'receipt-unknown'
  | 'receipt-malformed'
  | 'receipt-signature-invalid'
  | 'receipt-certificate-invalid'
  | 'receipt-mismatch'
  // Evidence files (protocol §9.4)
  | 'file-unstored';

export interface VerifyFailure {
  /** The first entry index the failure concerns; absent for failures of the bundle as a whole. */
  index?: number;
  reason: VerifyFailureReason;
  /** Human-readable; never switch on it. */
  detail: string;
  /**
   * For root failures: the entries [start, end) known to contain the first
   * difference. Its precision is the spacing of the checkpoints.
   */
  range?: { start: number; end: number };
  /** For checkpoint failures: the checkpoint's tree size, when readable. */
  checkpointSize?: number;
  /**
   * For root failures: an entry inside `range` that a receipt or a message JWS of
   * the bundle shows to differ from what the gateway signed for it.
   */
  pinnedEntry?: number;
}

/** What the verification trusted, so the auditor can say what the result rests on. */
export interface TrustReport {
  /** The log key's name and 8-hex key id (signed-note vkey, protocol §6.3). */
  keyName: string;
  keyId: string;
  /** `pinned`: the auditor's own; `bundle`: taken from the bundle on request. */
  key: 'pinned' | 'bundle';
  /** `unchecked`: message and receipt signatures were not verified. */
  anchors: 'pinned' | 'bundle' | 'unchecked';
  /** Subject of each trust anchor used. */
  anchorSubjects: string[];
  /** True when the key or the anchors came from the bundle itself. */
  unpinned: boolean;
}

export interface VerifyReport {
  ok: boolean;
  /** Entry lines read. */
  entries: number;
  /**
   * Of those, entries given as their leaf hash only (not disclosed to the exporting
   * auditor): they count in the tree and its checkpoints, not in the entry checks.
   */
  redacted: number;
  /** Checkpoints whose signature verified. */
  checkpoints: number;
  /** Message and receipt lines read. */
  messages: number;
  /** Base64 root of the recomputed tree over all entries read. */
  root: string;
  /** Absent when the header could not be read or nothing was pinned. */
  trust?: TrustReport;
  firstFailure?: VerifyFailure;
  /** Every failure found, most significant first, at most `maxFailures`. */
  failures: VerifyFailure[];
}

export interface VerifyOptions {
  /** Verify message and receipt JWS signatures and certificate chains. Default true. */
  checkSignatures: boolean;
  /** When the verification runs; reserved for time-dependent checks. Default: now. */
  now?: Date;
  /** The log key the auditor trusts (signed-note vkey); the header's must match. */
  vkey?: string;
  /** Without `vkey`: use the bundle header's key, and report the result as unpinned. */
  trustBundleKey?: boolean;
  /** The CA certificates (PEM) the auditor trusts, for message and receipt chains. */
  trustAnchors?: readonly string[];
  /** Without `trustAnchors`: use the bundle header's anchors, and report as unpinned. */
  trustBundleAnchors?: boolean;
  /** Checkpoints the auditor kept from earlier (signed notes); checked like the bundle's. */
  trustedCheckpoints?: readonly string[];
  /** Failures kept in the report; default 100. */
  maxFailures?: number;
}

/** Order of failures at the same index: the most specific explanation first. */
const RANK: Record<VerifyFailureReason, number> = {
  'header-invalid': 0,
  'key-unpinned': 0,
  'anchors-unpinned': 0,
  'unsupported-start': 1,
  'vkey-mismatch': 2,
  'line-malformed': 3,
  'no-checkpoint': 4,
  'checkpoint-malformed': 5,
  'checkpoint-unknown-key': 6,
  'checkpoint-bad-signature': 7,
  'checkpoint-origin-mismatch': 8,
  'entry-malformed': 10,
  'entry-missing': 11,
  'entry-reordered': 12,
  'entry-duplicate': 13,
  'entries-truncated': 14,
  'entry-out-of-range': 15,
  'message-digest-mismatch': 20,
  'message-malformed': 21,
  'message-signature-invalid': 22,
  'message-certificate-invalid': 23,
  'message-mismatch': 24,
  'message-unknown': 25,
  'receipt-malformed': 26,
  'receipt-signature-invalid': 27,
  'receipt-certificate-invalid': 28,
  'receipt-mismatch': 29,
  'receipt-unknown': 30,
  'checkpoint-fork': 40,
  'checkpoint-inconsistent': 41,
  'root-mismatch': 42,
  'log-truncated': 43,
  'broken-chain': 50,
  'unsigned-entries': 51,
  'file-unstored': 52,
};

/** Failures where a signed receipt or message shows exactly which entry differs. */
const PINNING: ReadonlySet<VerifyFailureReason> = new Set([
  'message-digest-mismatch',
  'message-mismatch',
  'receipt-mismatch',
]);

/** What the verifier remembers of a `message.accepted` entry. */
interface AcceptedInfo {
  index: number;
  ts: string;
  digest: string | undefined;
  from: string | undefined;
  to: string | undefined;
  type: string | undefined;
  inReplyTo: string | undefined;
}

interface SignedLine {
  kind: 'message' | 'receipt';
  id: string;
  jws: string;
}

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);
const isIndex = (x: unknown): x is number =>
  typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** Standard padded base64 only: Buffer.from would silently skip junk characters. */
function decodeLeaf(b64: string): Buffer | undefined {
  return b64.length % 4 === 0 && BASE64_RE.test(b64) ? Buffer.from(b64, 'base64') : undefined;
}

class BundleVerifier {
  private readonly tree = new MemoryTree();
  private readonly failures: VerifyFailure[] = [];
  private failureCount = 0;
  private header: BundleHeader | undefined;
  private noteVerifier: NoteVerifier | undefined;
  private signatures: SignatureChecker | undefined;
  private readonly checkpointTexts: string[] = [];
  private readonly accepted = new Map<string, AcceptedInfo>();
  private readonly delivered = new Set<string>();
  private readonly deferred: SignedLine[] = [];
  private order: { position: number; found: number; reappeared: boolean } | undefined;
  private outOfRangeReported = false;
  private lineNo = 0;
  private messageLines = 0;
  private redactedLines = 0;
  private validCheckpoints = 0;
  private fatal = false;
  private trust: TrustReport | undefined;
  /** protocol §9.4 phase: files stored before their transfer was accepted. */
  private readonly fileCustody = new FileCustodyCheck();

  constructor(private readonly opts: VerifyOptions) {}

  line(raw: string): void {
    this.lineNo++;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (text.length === 0 || this.fatal) return;
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch {
      if (this.header === undefined) return this.failHeader('first line is not JSON');
      this.fail({ reason: 'line-malformed', detail: `line ${this.lineNo} is not JSON` });
      return;
    }
    if (this.header === undefined) return this.readHeader(obj);
    if (!isObject(obj)) {
      this.fail({ reason: 'line-malformed', detail: `line ${this.lineNo} is not an object` });
      return;
    }
    switch (obj['kind']) {
      case 'entry':
        return this.entry(obj);
      case 'checkpoint':
        if (typeof obj['text'] === 'string') this.checkpointTexts.push(obj['text']);
        else
          this.fail({
            reason: 'line-malformed',
            detail: `line ${this.lineNo}: checkpoint without text`,
          });
        return;
      case 'message':
      case 'receipt':
        if (typeof obj['id'] !== 'string' || typeof obj['jws'] !== 'string') {
          this.fail({
            reason: 'line-malformed',
            detail: `line ${this.lineNo}: ${obj['kind']} without id or jws`,
          });
          return;
        }
        this.messageLines++;
        return this.signed({ kind: obj['kind'], id: obj['id'], jws: obj['jws'] });
      default:
        this.fail({ reason: 'line-malformed', detail: `line ${this.lineNo}: unknown kind` });
    }
  }

  finish(): VerifyReport {
    if (this.header === undefined && !this.fatal) this.failHeader('empty bundle');
    if (!this.fatal) {
      for (const s of this.deferred.splice(0)) this.signed(s, true);
      this.finishEntries();
      this.checkCheckpoints();
      this.pinRootFailures();
    }
    const sorted = [...this.failures].sort(compareFailures);
    const report: VerifyReport = {
      ok: this.failureCount === 0,
      entries: this.tree.size,
      redacted: this.redactedLines,
      checkpoints: this.validCheckpoints,
      messages: this.messageLines,
      root: this.tree.root().toString('base64'),
      failures: sorted,
    };
    if (this.trust !== undefined) report.trust = this.trust;
    if (sorted[0] !== undefined) report.firstFailure = sorted[0];
    return report;
  }

  // -------------------------------------------------------------------------
  // Header

  private failHeader(detail: string): void {
    this.fail({ reason: 'header-invalid', detail });
    this.fatal = true;
  }

  private readHeader(obj: unknown): void {
    if (!isObject(obj) || obj['kind'] !== BUNDLE_KIND)
      return this.failHeader('first line is not a casebridge-audit-export header');
    if (obj['version'] !== BUNDLE_VERSION) return this.failHeader('unsupported bundle version');
    const { origin, vkey, gatewayChain, trustAnchors, start, end, exportedAt } = obj;
    const pemList = (x: unknown): x is string[] =>
      Array.isArray(x) && x.every((p) => typeof p === 'string');
    if (
      typeof origin !== 'string' ||
      typeof vkey !== 'string' ||
      !pemList(gatewayChain) ||
      !pemList(trustAnchors) ||
      !isIndex(start) ||
      !isIndex(end) ||
      start > end ||
      typeof exportedAt !== 'string'
    ) {
      return this.failHeader('header members missing or of the wrong type');
    }
    this.header = {
      kind: BUNDLE_KIND,
      version: BUNDLE_VERSION,
      origin,
      vkey,
      gatewayChain,
      trustAnchors,
      start,
      end,
      exportedAt,
    };
    if (start !== 0) {
      this.fail({
        reason: 'unsupported-start',
        detail: 'offline verification needs a bundle that starts at index 0',
      });
      this.fatal = true;
      return;
    }
    this.pinTrust(vkey, trustAnchors);
  }

  /**
   * protocol §6.5: the key and the anchors are the auditor's. The bundle's own are
   * used only on explicit request, and the report then says the result is unpinned.
   */
  private pinTrust(bundleVkey: string, bundleAnchors: readonly string[]): void {
    const { vkey, trustBundleKey, trustAnchors, trustBundleAnchors, checkSignatures } = this.opts;
    if (vkey === undefined && trustBundleKey !== true) {
      this.fail({
        reason: 'key-unpinned',
        detail: 'no log key was given: a bundle cannot vouch for itself',
      });
      this.fatal = true;
      return;
    }
    if (checkSignatures && trustAnchors === undefined && trustBundleAnchors !== true) {
      this.fail({
        reason: 'anchors-unpinned',
        detail: 'no trust anchors were given: a bundle cannot vouch for itself',
      });
      this.fatal = true;
      return;
    }
    if (vkey !== undefined && vkey !== bundleVkey) {
      this.fail({
        reason: 'vkey-mismatch',
        detail: 'the bundle names another log key than the trusted one',
      });
    }
    try {
      this.noteVerifier = parseVkey(vkey ?? bundleVkey);
    } catch {
      return this.failHeader('the log vkey is malformed');
    }
    const anchorsUsed = trustAnchors ?? bundleAnchors;
    let subjects: string[] = [];
    if (checkSignatures) {
      try {
        const anchors = parsePemCertificates(anchorsUsed);
        subjects = anchors.map((c) => c.subject.replace(/\n/g, ', '));
        this.signatures = new SignatureChecker(anchors);
      } catch {
        return this.failHeader('a trust anchor is not a readable certificate');
      }
    }
    const key = vkey === undefined ? 'bundle' : 'pinned';
    const anchors = !checkSignatures
      ? 'unchecked'
      : trustAnchors === undefined
        ? 'bundle'
        : 'pinned';
    this.trust = {
      keyName: this.noteVerifier.name,
      keyId: this.noteVerifier.keyId.toString('hex'),
      key,
      anchors,
      anchorSubjects: subjects,
      unpinned: key === 'bundle' || anchors === 'bundle',
    };
  }

  // -------------------------------------------------------------------------
  // Entries

  private entry(obj: Record<string, unknown>): void {
    if (obj['leaf'] === undefined && obj['leafHash'] !== undefined) return this.redactedEntry(obj);
    const position = this.tree.size;
    const lineIndex = obj['index'];
    const leaf = typeof obj['leaf'] === 'string' ? decodeLeaf(obj['leaf']) : undefined;
    if (leaf === undefined || !isIndex(lineIndex)) {
      // Keep positions aligned with the log: hash what we have so later roots still localize.
      this.tree.appendLeafHash(leafHash(leaf ?? Buffer.alloc(0)));
      this.fail({
        index: position,
        reason: 'line-malformed',
        detail: `line ${this.lineNo}: entry without index or base64 leaf`,
      });
      return;
    }
    this.tree.appendLeafHash(leafHash(leaf));
    const end = (this.header as BundleHeader).end;
    if (position >= end && !this.outOfRangeReported) {
      this.outOfRangeReported = true;
      this.fail({
        index: position,
        reason: 'entry-out-of-range',
        detail: `the header says the bundle ends at ${end}`,
      });
    }
    let entry: AuditEntry | undefined;
    try {
      entry = parseEntry(leaf);
    } catch (e) {
      if (!isAuditError(e)) throw e;
      this.fail({ index: position, reason: 'entry-malformed', detail: e.message });
    }
    if (entry !== undefined && entry.index !== lineIndex) {
      this.fail({
        index: position,
        reason: 'line-malformed',
        detail: 'the line index differs from the entry index',
      });
    }
    this.checkPosition(position, entry?.index ?? lineIndex);
    if (entry !== undefined) this.checkChain(entry, position);
    if (entry !== undefined) this.fileCustody.entry(entry, position).forEach((f) => this.fail(f));
  }

  /** An entry the exporter did not disclose: its leaf hash keeps the tree whole. */
  private redactedEntry(obj: Record<string, unknown>): void {
    const position = this.tree.size;
    const lineIndex = obj['index'];
    const hash = typeof obj['leafHash'] === 'string' ? decodeLeaf(obj['leafHash']) : undefined;
    if (hash === undefined || hash.length !== 32 || !isIndex(lineIndex)) {
      this.tree.appendLeafHash(leafHash(Buffer.alloc(0)));
      this.fail({
        index: position,
        reason: 'line-malformed',
        detail: `line ${this.lineNo}: entry without index or 32-byte leafHash`,
      });
      return;
    }
    this.redactedLines++;
    this.tree.appendLeafHash(hash);
    const end = (this.header as BundleHeader).end;
    if (position >= end && !this.outOfRangeReported) {
      this.outOfRangeReported = true;
      this.fail({
        index: position,
        reason: 'entry-out-of-range',
        detail: `the header says the bundle ends at ${end}`,
      });
    }
    this.checkPosition(position, lineIndex);
  }

  /**
   * The entry at position p must carry index p. Only the first mismatch is a
   * finding (the rest follow from it); whether the expected index shows up later
   * tells a reordering from a deletion.
   */
  private checkPosition(position: number, found: number): void {
    if (this.order !== undefined) {
      if (found === this.order.position) this.order.reappeared = true;
      return;
    }
    if (found !== position) this.order = { position, found, reappeared: false };
  }

  private finishEntries(): void {
    const header = this.header as BundleHeader;
    if (this.order !== undefined) {
      const { position, found, reappeared } = this.order;
      if (found < position) {
        this.fail({
          index: position,
          reason: 'entry-duplicate',
          detail: `position ${position} repeats index ${found}`,
        });
      } else if (reappeared) {
        this.fail({
          index: position,
          reason: 'entry-reordered',
          detail: `index ${position} appears out of order`,
        });
      } else {
        this.fail({
          index: position,
          reason: 'entry-missing',
          detail: `entries from index ${position} to ${found - 1} are missing`,
        });
      }
    }
    if (this.tree.size < header.end) {
      this.fail({
        index: this.tree.size,
        reason: 'entries-truncated',
        detail: `the header promises entries up to ${header.end}`,
      });
    }
  }

  /** protocol §6.5 chains, from the entries alone. */
  private checkChain(e: AuditEntry, index: number): void {
    const id = e.messageId;
    switch (e.event) {
      case 'message.accepted': {
        if (
          id === undefined ||
          e.digest === undefined ||
          e.from === undefined ||
          e.to === undefined
        ) {
          this.fail({
            index,
            reason: 'entry-malformed',
            detail: 'message.accepted needs messageId, digest, from and to',
          });
          return;
        }
        if (this.accepted.has(id)) {
          this.fail({ index, reason: 'broken-chain', detail: 'message accepted twice' });
          return;
        }
        if (e.inReplyTo !== undefined) {
          const parent = this.accepted.get(e.inReplyTo);
          if (parent === undefined) {
            this.fail({
              index,
              reason: 'broken-chain',
              detail: 'inReplyTo names no earlier accepted message',
            });
          } else if (!sameParties(parent, e)) {
            this.fail({
              index,
              reason: 'broken-chain',
              detail: 'inReplyTo names a message between other agencies',
            });
          }
        }
        this.accepted.set(id, {
          index,
          ts: e.ts,
          digest: e.digest,
          from: e.from,
          to: e.to,
          type: e.type,
          inReplyTo: e.inReplyTo,
        });
        return;
      }
      case 'message.delivered':
        if (id === undefined || !this.accepted.has(id)) {
          this.fail({
            index,
            reason: 'broken-chain',
            detail: 'delivery of a message that was not accepted before',
          });
          return;
        }
        this.delivered.add(id);
        return;
      case 'message.decided':
        if (id === undefined || !this.delivered.has(id)) {
          this.fail({
            index,
            reason: 'broken-chain',
            detail: 'decision on a message that was not delivered before',
          });
        }
        return;
      default:
        return;
    }
  }

  // -------------------------------------------------------------------------
  // Checkpoints

  private checkCheckpoints(): void {
    const header = this.header as BundleHeader;
    const verifier = this.noteVerifier as NoteVerifier;
    const size = this.tree.size;
    const valid: CheckpointBody[] = [];
    const trusted = new Set<CheckpointBody>();
    const sources = [
      ...this.checkpointTexts.map((text) => ({ text, kept: false })),
      ...(this.opts.trustedCheckpoints ?? []).map((text) => ({ text, kept: true })),
    ];
    for (const { text, kept } of sources) {
      let body: CheckpointBody;
      try {
        body = verifyCheckpoint(text, verifier);
      } catch (e) {
        if (!isAuditError(e)) throw e;
        const reason: VerifyFailureReason =
          e.reason === 'checkpoint-unknown-key' || e.reason === 'checkpoint-bad-signature'
            ? e.reason
            : 'checkpoint-malformed';
        const failure: VerifyFailure = { reason, detail: e.message };
        const claimed = /^[^\n]*\n(0|[1-9][0-9]*)\n/.exec(text);
        if (claimed?.[1] !== undefined) failure.checkpointSize = Number(claimed[1]);
        this.fail(failure);
        continue;
      }
      if (body.origin !== header.origin) {
        this.fail({
          reason: 'checkpoint-origin-mismatch',
          detail: 'checkpoint of another log',
          checkpointSize: body.size,
        });
        continue;
      }
      valid.push(body);
      if (kept) trusted.add(body);
    }
    this.validCheckpoints = valid.length;
    if (valid.length === 0) {
      this.fail({
        reason: 'no-checkpoint',
        detail: 'no checkpoint signed by the log key: nothing authenticates the entries',
      });
      return;
    }

    // Checkpoints beyond the entries read cannot be checked here (a later one may be
    // the latest of a partial export); within them, each root must be the recomputed one.
    const covered = valid.filter((c) => c.size <= size).sort((a, b) => a.size - b.size);
    const rootAt = new Map<number, Buffer>();
    const recomputed = (n: number): Buffer => {
      let r = rootAt.get(n);
      if (r === undefined) {
        r = this.tree.root(n);
        rootAt.set(n, r);
      }
      return r;
    };
    const agrees = (c: CheckpointBody): boolean => c.root.equals(recomputed(c.size));
    const agreeing = covered.filter(agrees);

    // Each root that matches the recomputed tree makes every earlier matching one a
    // prefix of it: they all come from one leaf sequence, so they are pairwise
    // consistent. Consecutive consistency proofs from the recomputed tree (and
    // transitivity) still check that explicitly.
    for (let i = 1; i < agreeing.length; i++) {
      const a = agreeing[i - 1] as CheckpointBody;
      const b = agreeing[i] as CheckpointBody;
      if (
        !verifyConsistency(
          a.size,
          b.size,
          consistencyProof(a.size, b.size, this.tree),
          a.root,
          b.root,
        )
      ) {
        this.fail({
          index: a.size,
          reason: 'checkpoint-inconsistent',
          detail: 'consistency proof failed',
          checkpointSize: b.size,
        });
      }
    }

    // A disagreeing checkpoint: the first differing leaf lies after the largest
    // agreeing checkpoint below it. Report the first of each kind; later ones follow.
    const reported = new Set<VerifyFailureReason>();
    let next = 0; // first agreeing checkpoint with size >= c.size; both lists are sorted
    for (const c of covered) {
      while (next < agreeing.length && (agreeing[next] as CheckpointBody).size < c.size) next++;
      if (agrees(c)) continue;
      const start = next > 0 ? (agreeing[next - 1] as CheckpointBody).size : 0;
      const range = { start, end: c.size };
      let later = next;
      while (later < agreeing.length && (agreeing[later] as CheckpointBody).size === c.size)
        later++;
      let reason: VerifyFailureReason;
      let detail: string;
      if (later > next) {
        reason = 'checkpoint-fork';
        detail = `two checkpoints of size ${c.size} with different roots`;
      } else {
        const after = agreeing[later];
        if (
          after !== undefined &&
          !verifyConsistency(
            c.size,
            after.size,
            consistencyProof(c.size, after.size, this.tree),
            c.root,
            after.root,
          )
        ) {
          reason = 'checkpoint-inconsistent';
          detail = `checkpoint ${c.size} is not a prefix of checkpoint ${after.size}: history was rewritten or truncated and regrown`;
        } else {
          reason = 'root-mismatch';
          detail = `the entries do not hash to the signed root of size ${c.size}`;
        }
      }
      if (reported.has(reason)) continue;
      reported.add(reason);
      this.fail({ index: start, reason, detail, range, checkpointSize: c.size });
    }
    // Same size, different roots, neither matching the entries: still a fork.
    const bySize = new Map<number, string>();
    for (const c of valid) {
      const root = c.root.toString('base64');
      const prior = bySize.get(c.size);
      if (prior !== undefined && prior !== root && !reported.has('checkpoint-fork')) {
        reported.add('checkpoint-fork');
        this.fail({
          reason: 'checkpoint-fork',
          detail: `two checkpoints of size ${c.size} with different roots`,
          checkpointSize: c.size,
        });
      }
      bySize.set(c.size, root);
    }

    // A checkpoint the auditor kept that is larger than anything the log signs now:
    // the log went back (truncated), whatever it grew into since.
    let bundleLatest = -1;
    for (const c of valid) if (!trusted.has(c) && c.size > bundleLatest) bundleLatest = c.size;
    const kept = [...trusted]
      .filter((c) => c.size > bundleLatest)
      .sort((a, b) => a.size - b.size)[0];
    if (kept !== undefined) {
      const at = Math.max(0, Math.min(bundleLatest, size));
      this.fail({
        index: at,
        reason: 'log-truncated',
        detail: `a kept checkpoint of size ${kept.size} is beyond the log's latest`,
        checkpointSize: kept.size,
      });
    }

    const largest = covered.length > 0 ? (covered[covered.length - 1] as CheckpointBody).size : 0;
    if (largest < size) {
      this.fail({
        index: largest,
        reason: 'unsigned-entries',
        detail: `entries from ${largest} on are covered by no checkpoint`,
      });
    }
  }

  /**
   * A root failure only bounds the changed entry by checkpoints. A receipt or message
   * JWS that disagrees with an entry inside that range names the entry exactly.
   */
  private pinRootFailures(): void {
    const pins = this.failures
      .filter((f) => f.index !== undefined && PINNING.has(f.reason))
      .map((f) => f.index as number);
    for (const f of this.failures) {
      if (f.range === undefined) continue;
      const { start, end } = f.range;
      const inside = pins.filter((i) => i >= start && i < end);
      if (inside.length > 0) f.pinnedEntry = Math.min(...inside);
    }
  }

  // -------------------------------------------------------------------------
  // Messages and receipts

  private signed(s: SignedLine, final = false): void {
    if (s.kind === 'message') {
      const acc = this.accepted.get(s.id);
      if (acc === undefined) {
        if (final)
          this.fail({
            reason: 'message-unknown',
            detail: 'a message with no message.accepted entry',
          });
        else this.deferred.push(s);
        return;
      }
      if (digestOf(s.jws) !== acc.digest) {
        this.fail({
          index: acc.index,
          reason: 'message-digest-mismatch',
          detail: 'the JWS does not hash to the logged digest',
        });
        return;
      }
      this.fileCustody.transfer(s.id, unverifiedPayload(s.jws)).forEach((f) => this.fail(f));
      if (this.signatures !== undefined) this.checkMessage(s, acc);
      return;
    }
    const payload = receiptPayload(s.jws);
    if (payload === undefined) {
      this.fail({ reason: 'receipt-malformed', detail: 'receipt payload is not a receipt' });
      return;
    }
    const acc = this.accepted.get(payload.messageId);
    if (acc === undefined) {
      if (final) {
        const f: VerifyFailure = {
          reason: 'receipt-unknown',
          detail: 'a receipt for a message with no message.accepted entry',
        };
        if (payload.logIndex < this.tree.size) f.index = payload.logIndex;
        this.fail(f);
      } else this.deferred.push(s);
      return;
    }
    if (
      payload.messageId !== s.id ||
      payload.logIndex !== acc.index ||
      payload.acceptedAt !== acc.ts ||
      payload.digest !== acc.digest ||
      payload.from !== acc.from ||
      payload.to !== acc.to ||
      payload.type !== acc.type
    ) {
      this.fail({
        index: acc.index,
        reason: 'receipt-mismatch',
        detail: 'the receipt does not match the logged entry',
      });
      return;
    }
    if (this.signatures !== undefined) this.checkReceipt(s, acc, payload.acceptedAt);
  }

  private checkMessage(s: SignedLine, acc: AcceptedInfo): void {
    const envelope = unverifiedPayload(s.jws);
    // The gateway's reading of createdAt (envelope/profile.ts), so both agree on the instant.
    const t = isObject(envelope) ? signingTimeOf(envelope['createdAt']) : undefined;
    const createdAt = t === undefined ? undefined : new Date(t);
    if (createdAt === undefined) {
      this.fail({
        index: acc.index,
        reason: 'message-malformed',
        detail: 'the envelope has no valid createdAt',
      });
      return;
    }
    const result = (this.signatures as SignatureChecker).verify(s.jws, MESSAGE_TYP, createdAt);
    if (!result.ok) {
      this.fail({
        index: acc.index,
        reason: signedReason('message', result),
        detail: result.detail,
      });
      return;
    }
    const env = parseJson(result.payload);
    if (!isObject(env)) {
      this.fail({
        index: acc.index,
        reason: 'message-malformed',
        detail: 'the payload is not a JSON envelope',
      });
      return;
    }
    if (
      env['id'] !== s.id ||
      env['from'] !== acc.from ||
      env['to'] !== acc.to ||
      env['type'] !== acc.type ||
      env['inReplyTo'] !== acc.inReplyTo
    ) {
      this.fail({
        index: acc.index,
        reason: 'message-mismatch',
        detail: 'the envelope does not match the logged entry',
      });
      return;
    }
    // protocol §5.4: the signer is the sending agency, or the gateway signing a decision.
    const { agency, role } = result.signer;
    const bound = agency === env['from'] || (role === 'gateway' && env['type'] === 'status.update');
    if (!bound)
      this.fail({
        index: acc.index,
        reason: 'message-mismatch',
        detail: 'the signer is not the sending agency',
      });
  }

  private checkReceipt(s: SignedLine, acc: AcceptedInfo, acceptedAt: string): void {
    const at = new Date(acceptedAt);
    const result = (this.signatures as SignatureChecker).verify(s.jws, RECEIPT_TYP, at);
    if (!result.ok) {
      this.fail({
        index: acc.index,
        reason: signedReason('receipt', result),
        detail: result.detail,
      });
      return;
    }
    if (result.signer.role !== 'gateway') {
      this.fail({
        index: acc.index,
        reason: 'receipt-signature-invalid',
        detail: 'the receipt is not signed by a gateway certificate',
      });
    }
  }

  // -------------------------------------------------------------------------

  private fail(f: VerifyFailure): void {
    this.failureCount++;
    if (this.failures.length < (this.opts.maxFailures ?? 100)) this.failures.push(f);
  }
}

function sameParties(
  a: { from: string | undefined; to: string | undefined },
  b: { from?: string; to?: string },
): boolean {
  return (a.from === b.from && a.to === b.to) || (a.from === b.to && a.to === b.from);
}

function signedReason(
  kind: 'message' | 'receipt',
  r: Exclude<SignedResult, { ok: true }>,
): VerifyFailureReason {
  switch (r.problem) {
    case 'malformed':
    case 'bad-header':
      return kind === 'message' ? 'message-malformed' : 'receipt-malformed';
    case 'signature':
      return kind === 'message' ? 'message-signature-invalid' : 'receipt-signature-invalid';
    default:
      return kind === 'message' ? 'message-certificate-invalid' : 'receipt-certificate-invalid';
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(utf8.decode(bytes));
  } catch {
    return undefined;
  }
}

/** The payload of a compact JWS, before any signature check. */
function unverifiedPayload(jws: string): unknown {
  const parts = jws.split('.');
  if (parts.length !== 3) return undefined;
  return parseJson(Buffer.from(parts[1] as string, 'base64url'));
}

/** protocol §3 receipt members; `type` is read as any string, the verifier compares it. */
type ReceiptFields = Omit<ReceiptPayload, 'type'> & { type: string };

function receiptPayload(jws: string): ReceiptFields | undefined {
  const p = unverifiedPayload(jws);
  if (!isObject(p)) return undefined;
  const { messageId, digest, logIndex, acceptedAt, from, to, type } = p;
  if (
    typeof messageId !== 'string' ||
    typeof digest !== 'string' ||
    !isIndex(logIndex) ||
    typeof acceptedAt !== 'string' ||
    typeof from !== 'string' ||
    typeof to !== 'string' ||
    typeof type !== 'string'
  ) {
    return undefined;
  }
  return { messageId, digest, logIndex, acceptedAt, from, to, type };
}

/**
 * Most significant first: bundle-wide failures, then by entry index, then by RANK.
 * A root failure only bounds the difference to its range, so it sorts at the
 * range's last entry: an exact finding inside the range comes first.
 */
function sortKey(f: VerifyFailure): number {
  if (f.range !== undefined) return f.range.end - 1;
  if (f.index !== undefined) return f.index;
  // A message or receipt with no entry is usually the echo of a missing entry: after those.
  return f.reason === 'message-unknown' || f.reason === 'receipt-unknown'
    ? Number.MAX_SAFE_INTEGER
    : -1;
}

function compareFailures(a: VerifyFailure, b: VerifyFailure): number {
  const ka = sortKey(a);
  const kb = sortKey(b);
  return ka !== kb ? ka - kb : RANK[a.reason] - RANK[b.reason];
}

/** A push-style verifier: feed it every line of a bundle, then call finish() once. */
export interface LineVerifier {
  line(text: string): void;
  finish(): VerifyReport;
}

export function createBundleVerifier(
  opts: VerifyOptions = { checkSignatures: true },
): LineVerifier {
  return new BundleVerifier(opts);
}

/**
 * Verifies an export bundle given as its lines (ndjson, newlines stripped or not).
 * Never throws on bundle content; every problem is a failure in the report.
 */
export async function verifyBundle(
  lines: AsyncIterable<string> | Iterable<string>,
  opts: VerifyOptions = { checkSignatures: true },
): Promise<VerifyReport> {
  const v = new BundleVerifier(opts);
  if (Symbol.iterator in lines) {
    for (const line of lines) v.line(line);
  } else {
    for await (const line of lines) v.line(line);
  }
  return v.finish();
}
