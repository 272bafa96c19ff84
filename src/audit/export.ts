/**
 * Writes the audit export bundle (protocol §6.4, format in bundle.ts) as a stream of
 * lines. The HTTP layer and the CLI own the transport; this only reads through the
 * small interfaces below.
 */
import type { Checkpoint, StoredEntry } from './types.js';
import { AuditError } from './errors.js';
import { parseEntry } from './entry.js';
import { leafHash } from './merkle.js';
import {
  BUNDLE_KIND,
  BUNDLE_VERSION,
  type BundleHeader,
  type CheckpointLine,
  type EntryLine,
  type MessageLine,
  type ReceiptLine,
} from './bundle.js';

type MaybePromise<T> = T | Promise<T>;

/** The part of the log the exporter reads: a store's ports, or entries already in memory. */
export interface ExportLog {
  /** Entries [start, end), in index order. */
  entries(start: number, end: number): MaybePromise<StoredEntry[]>;
  /** Signed checkpoints with fromSize <= size <= toSize. */
  checkpoints(fromSize: number, toSize: number): MaybePromise<Checkpoint[]>;
  latestCheckpoint(): MaybePromise<Checkpoint | undefined>;
}

/** A message as exported: the sender's exact JWS and, when kept, the gateway's receipt. */
export interface BundleMessage {
  id: string;
  jws: string;
  receipt?: string;
}

export interface ExportSource {
  store: ExportLog;
  origin: string;
  vkey: string;
  /** Gateway certificate chain, leaf first, PEM. */
  gatewayChain: readonly string[];
  /** Trust anchors, PEM. */
  trustAnchors: readonly string[];
  /** Entries the reader may not see: exported as their leaf hash only. Default: none. */
  redact?(e: StoredEntry): boolean;
  /** The JWS (and receipt) of the given message ids that exist; only called with `messages: true`. */
  messagesFor?(ids: readonly string[]): MaybePromise<BundleMessage[]>;
}

export interface ExportOptions {
  /** First entry index; default 0. The offline verifier needs 0. */
  start?: number;
  /**
   * Entry index after the last; default and maximum: the latest checkpoint's size.
   * Rounded down to the largest checkpoint size in range, so that a signed
   * checkpoint covers every exported entry; the header states the actual end.
   */
  end?: number;
  /** Include each accepted message's JWS and receipt (auditors with that grant only). */
  messages?: boolean;
  /** The clock, for `exportedAt`. */
  now?: () => Date;
  /** Entries read per store call; default 1000. */
  pageSize?: number;
}

function checkIndex(n: number | undefined, what: string): void {
  if (n !== undefined && (!Number.isSafeInteger(n) || n < 0)) {
    throw new AuditError('range-invalid', `${what} must be a non-negative integer`);
  }
}

/**
 * Yields the bundle's lines (JSON text without the newline), header first.
 * Throws AuditError('range-invalid') before yielding anything if the range is bad.
 */
export async function* exportBundle(
  src: ExportSource,
  opts: ExportOptions = {},
): AsyncGenerator<string, void, undefined> {
  checkIndex(opts.start, 'start');
  checkIndex(opts.end, 'end');
  const pageSize = opts.pageSize ?? 1000;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1)
    throw new AuditError('range-invalid', 'pageSize must be positive');
  const latest = await src.store.latestCheckpoint();
  const signedSize = latest?.size ?? 0;
  const start = opts.start ?? 0;
  const wanted = Math.min(opts.end ?? signedSize, signedSize);
  if (start > wanted) {
    throw new AuditError(
      'range-invalid',
      'start must not exceed end (or the latest checkpoint size)',
    );
  }
  // Every checkpoint whose size lies in the range. The range ends on a checkpoint
  // (the latest, or the largest in range) so that a signed root covers every entry.
  const inRange = [...(await src.store.checkpoints(start, wanted))]
    .filter((c) => c.size >= start && c.size <= wanted)
    .sort((a, b) => a.size - b.size);
  const end =
    latest !== undefined && wanted === signedSize
      ? signedSize
      : (inRange[inRange.length - 1]?.size ?? start);
  const withMessages = opts.messages === true && src.messagesFor !== undefined;

  const header: BundleHeader = {
    kind: BUNDLE_KIND,
    version: BUNDLE_VERSION,
    origin: src.origin,
    vkey: src.vkey,
    gatewayChain: [...src.gatewayChain],
    trustAnchors: [...src.trustAnchors],
    start,
    end,
    exportedAt: (opts.now ?? (() => new Date()))().toISOString(),
  };
  yield JSON.stringify(header);

  for (let from = start; from < end; from += pageSize) {
    const to = Math.min(end, from + pageSize);
    const page = await src.store.entries(from, to);
    const accepted: string[] = [];
    for (const e of page) {
      const line: EntryLine =
        src.redact?.(e) === true
          ? { kind: 'entry', index: e.index, leafHash: leafHash(e.bytes).toString('base64') }
          : { kind: 'entry', index: e.index, leaf: e.bytes.toString('base64') };
      yield JSON.stringify(line);
      if (withMessages) {
        const id = acceptedMessageId(e);
        if (id !== undefined) accepted.push(id);
      }
    }
    if (withMessages && accepted.length > 0 && src.messagesFor !== undefined) {
      for (const m of await src.messagesFor(accepted)) {
        const message: MessageLine = { kind: 'message', id: m.id, jws: m.jws };
        yield JSON.stringify(message);
        if (m.receipt !== undefined) {
          const receipt: ReceiptLine = { kind: 'receipt', id: m.id, jws: m.receipt };
          yield JSON.stringify(receipt);
        }
      }
    }
  }

  // The checkpoints in range, then the latest (which may lie beyond a partial range).
  const seen = new Set<string>();
  for (const cp of latest === undefined ? inRange : [...inRange, latest]) {
    if (seen.has(cp.text)) continue;
    seen.add(cp.text);
    const line: CheckpointLine = { kind: 'checkpoint', text: cp.text };
    yield JSON.stringify(line);
  }
}

/** The message id of a `message.accepted` entry; a stored entry that does not parse is left to the verifier. */
function acceptedMessageId(e: StoredEntry): string | undefined {
  try {
    const entry = parseEntry(e.bytes);
    return entry.event === 'message.accepted' ? entry.messageId : undefined;
  } catch {
    return undefined;
  }
}
