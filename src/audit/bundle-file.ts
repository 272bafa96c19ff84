/**
 * The CLI-facing side of offline verification (protocol §6.5, §7 `audit verify`):
 * reading a bundle file line by line. The only file-system code of src/audit.
 */
import { createReadStream } from 'node:fs';
import {
  createBundleVerifier,
  type TrustReport,
  type VerifyFailure,
  type VerifyOptions,
  type VerifyReport,
} from './verify.js';

const NEWLINE = 0x0a;

/**
 * The file's lines (without their newline; a trailing CR is left for the verifier
 * to drop), in batches of one 1 MiB chunk. Memory is bounded by the chunk and the
 * longest line, and a long line is joined once, not re-copied per chunk.
 */
async function* lineBatches(path: string): AsyncGenerator<string[], void, undefined> {
  const input = createReadStream(path, { highWaterMark: 1 << 20 });
  let pending: Buffer[] = [];
  for await (const chunk of input as AsyncIterable<Buffer>) {
    const batch: string[] = [];
    let start = 0;
    let nl = chunk.indexOf(NEWLINE, start);
    while (nl >= 0) {
      if (pending.length > 0) {
        pending.push(chunk.subarray(start, nl));
        batch.push(Buffer.concat(pending).toString('utf8'));
        pending = [];
      } else {
        batch.push(chunk.toString('utf8', start, nl));
      }
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
    if (batch.length > 0) yield batch;
  }
  if (pending.length > 0) yield [Buffer.concat(pending).toString('utf8')];
}

/** The lines of an ndjson bundle file, streamed. */
export async function* readBundleLines(path: string): AsyncGenerator<string, void, undefined> {
  for await (const batch of lineBatches(path)) yield* batch;
}

/** Verifies the bundle at `path`, streaming. File errors (missing, unreadable) are thrown, not reported. */
export async function verifyBundleFile(path: string, opts?: VerifyOptions): Promise<VerifyReport> {
  const v = createBundleVerifier(opts);
  for await (const batch of lineBatches(path)) for (const line of batch) v.line(line);
  return v.finish();
}

/**
 * protocol §7: 0 when every check holds against the auditor's own key and anchors;
 * 1 when one failed, or when the result rests on what the bundle says of itself.
 */
export function exitCodeFor(report: VerifyReport): 0 | 1 {
  return report.ok && report.trust?.unpinned === false ? 0 : 1;
}

/** Where a failure is, in words: an entry, a range of entries, or the bundle. */
export function describeFailure(f: VerifyFailure): string {
  if (f.range !== undefined) {
    const { start, end } = f.range;
    const entries = end - start <= 1 ? `entry ${start}` : `entries ${start} to ${end - 1}`;
    const bounds =
      start === 0
        ? `no checkpoint before it matches; the first failing one has size ${end}`
        : `the last matching checkpoint has size ${start}, the first failing one size ${end}`;
    const pinned =
      f.pinnedEntry === undefined
        ? ''
        : `; entry ${f.pinnedEntry} disagrees with its receipt or message`;
    return `${f.reason} in ${entries} (${f.detail}; ${bounds})${pinned}`;
  }
  const where = f.index === undefined ? 'bundle' : `entry ${f.index}`;
  return `${f.reason} at ${where} (${f.detail})`;
}

function describeTrust(t: TrustReport): string {
  const key = `log key ${t.keyName}+${t.keyId} (${t.key === 'pinned' ? 'pinned' : 'from the bundle'})`;
  if (t.anchors === 'unchecked') return `${key}; signatures not checked`;
  const from = t.anchors === 'pinned' ? 'pinned' : 'from the bundle';
  return `${key}; anchors (${from}): ${t.anchorSubjects.join(' | ') || 'none'}`;
}

/** One line for stdout, e.g. `OK 24 entries, …; log key casebridge/GW-DEMO+1a2b3c4d (pinned); …`. */
export function summarize(report: VerifyReport): string {
  // Redacted entries: the tree over them is checked, their contents could not be.
  const hidden =
    report.redacted > 0
      ? ` (${report.redacted} as leaf hashes only, checked in the tree alone)`
      : '';
  const counts = `${report.entries} entries${hidden}, ${report.checkpoints} checkpoints, ${report.messages} messages/receipts`;
  const f = report.firstFailure;
  const trust = report.trust === undefined ? '' : `; ${describeTrust(report.trust)}`;
  if (f !== undefined) {
    // A root failure bounds what the exact finding may not cover: name it too.
    const ranged = report.failures.find((x) => x.range !== undefined);
    const also = ranged !== undefined && ranged !== f ? `; also ${describeFailure(ranged)}` : '';
    return `FAIL ${describeFailure(f)}${also}; ${counts}${trust}`;
  }
  if (report.trust?.unpinned !== false) {
    return `UNPINNED ${counts}, root ${report.root}${trust}; the bundle vouched for itself, so this proves nothing about who signed it`;
  }
  return `OK ${counts}, root ${report.root}${trust}`;
}
