/**
 * protocol §9.2: each evidence.transfer item must name, by hash and size, a
 * completed upload of the sending agency. Checked after `inReplyTo`; the binding
 * itself happens in the acceptance transaction.
 */
import type { Envelope } from '../envelope/types.js';
import { CasebridgeError, type ValidationIssue } from '../errors.js';
import type { FileBinding, FileIndex, FileRef } from './types.js';

/** protocol §4: at most this many items are named in `errors`. */
const MAX_REPORTED = 20;

/** The files a transfer names, in item order (an exhibit hash listed twice is bound once). */
export function transferFiles(env: Envelope): FileRef[] {
  if (env.type !== 'evidence.transfer') return [];
  const items = (env.body as { items?: { sha256: string; size: number }[] }).items ?? [];
  return items.map((i) => ({ sha256: i.sha256, size: i.size }));
}

/** Throws UNKNOWN_FILE naming every item without its upload; returns what to bind. */
export async function requireUploadedFiles(
  env: Envelope,
  files: Pick<FileIndex, 'storedFile'>,
): Promise<FileBinding | undefined> {
  const refs = transferFiles(env);
  if (refs.length === 0) return undefined;
  const errors: ValidationIssue[] = [];
  const stored = await Promise.all(refs.map((f) => files.storedFile(env.from, f.sha256)));
  refs.forEach((f, k) => {
    const kept = stored[k];
    if (kept === undefined || kept.size !== f.size) {
      errors.push({
        path: `/body/items/${k}`,
        keyword: 'uploadedFile',
        message: 'must name a completed upload of the sending agency (sha256 and size)',
      });
    }
  });
  if (errors.length > 0) {
    throw new CasebridgeError('UNKNOWN_FILE', 'an item names no completed upload of the sender', {
      errors: errors.slice(0, MAX_REPORTED),
    });
  }
  return { agency: env.from, files: refs };
}
