/**
 * protocol §9.1: a file no accepted message references expires after
 * CASEBRIDGE_FILE_TTL_H (a `file.expired` entry, then its bytes go), and so does an
 * upload left unfinished. The sweep also reconciles the directory with the records
 * after a crash: a file renamed into place whose record was not yet written is
 * adopted from its upload; anything else on disk that no record accounts for is
 * removed once it is older than `graceMs` (another gateway may be finishing it).
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditActor } from '../audit/types.js';
import type { ObjectStore } from './objects.js';
import type { FileIndex } from './types.js';
import type { EvidenceUploadStore } from './upload-store.js';

export interface SweepOptions {
  index: FileIndex;
  objects: ObjectStore;
  uploads: EvidenceUploadStore;
  ttlMs: number;
  /** Untracked bytes younger than this are left alone. */
  graceMs: number;
  gatewayActor: AuditActor;
  now: () => Date;
}

export interface SweepReport {
  expired: number;
  abandoned: number;
  adopted: number;
  orphansRemoved: number;
}

const BATCH = 500;

export async function sweepFiles(o: SweepOptions): Promise<SweepReport> {
  const now = o.now().getTime();
  const report: SweepReport = { expired: 0, abandoned: 0, adopted: 0, orphansRemoved: 0 };

  for (;;) {
    const gone = await o.index.expireUnbound(new Date(now - o.ttlMs), o.gatewayActor, BATCH);
    for (const f of gone) await o.objects.remove(f.agency, f.sha256);
    report.expired += gone.length;
    if (gone.length < BATCH) break;
  }

  const records = await o.uploads.records();
  const pending = new Map<string, (typeof records)[number]>();
  for (const r of records) {
    const age = now - Date.parse(r.creation_date ?? '1970-01-01T00:00:00Z');
    if (age > o.ttlMs) {
      await o.uploads.discard(r.id);
      report.abandoned++;
      continue;
    }
    if (r.metadata.complete !== 'true') pending.set(`${r.metadata.agency}/${r.metadata.sha256}`, r);
  }

  for await (const obj of o.objects.list()) {
    if ((await o.index.storedFile(obj.agency, obj.sha256)) !== undefined) continue;
    const rec = pending.get(`${obj.agency}/${obj.sha256}`);
    const partialGone =
      rec !== undefined && (await exists(join(o.uploads.directory, rec.id))) === false;
    if (rec !== undefined && partialGone && rec.size === obj.size) {
      // The rename happened, the record did not: the upload was verified before the rename.
      const m = rec.metadata;
      await o.index.recordStored(
        { agency: m.agency, sha256: m.sha256, size: obj.size },
        { agency: m.agency, role: m.role, subject: m.subject },
      );
      await o.uploads.markComplete(rec.id);
      report.adopted++;
      continue;
    }
    if (await olderThan(o.objects.pathOf(obj.agency, obj.sha256), now - o.graceMs)) {
      await o.objects.remove(obj.agency, obj.sha256);
      report.orphansRemoved++;
    }
  }

  // Partial files whose record is gone (a crash between the two writes of a creation).
  const known = new Set(records.map((r) => r.id));
  for (const name of await readdir(o.uploads.directory)) {
    const path = join(o.uploads.directory, name);
    const id = /^([0-9a-f]{32})(\.json\.\d+\.tmp)?$/.exec(name);
    if (id === null) continue;
    if (id[2] === undefined && known.has(id[1]!)) continue;
    if (await olderThan(path, now - o.graceMs)) {
      await rm(path, { force: true });
      report.orphansRemoved++;
    }
  }
  return report;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  try {
    return (await stat(path)).mtimeMs < ms;
  } catch {
    return false;
  }
}
