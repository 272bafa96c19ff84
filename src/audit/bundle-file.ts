/**
 * The CLI-facing side of offline verification (protocol §6.5, §7 `audit verify`):
 * reading a bundle file line by line. The only file-system code of src/audit.
 */
import { createReadStream } from 'node:fs';
import { createBundleVerifier, type VerifyOptions, type VerifyReport } from './verify.js';

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

/** protocol §7: 0 when every check holds, 1 when one failed. */
export function exitCodeFor(report: VerifyReport): 0 | 1 {
  return report.ok ? 0 : 1;
}

/** One line for stdout/stderr, e.g. `FAIL entry 41: root-mismatch (...)`. */
export function summarize(report: VerifyReport): string {
  const counts = `${report.entries} entries, ${report.checkpoints} checkpoints, ${report.messages} messages/receipts`;
  const f = report.firstFailure;
  if (f === undefined) return `OK ${counts}, root ${report.root}`;
  const where = f.index === undefined ? 'bundle' : `entry ${f.index}`;
  return `FAIL ${where}: ${f.reason} (${f.detail}); ${counts}`;
}
