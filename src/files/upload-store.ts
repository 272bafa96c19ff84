/**
 * The tus data store for evidence files (protocol §9.1): @tus/file-store's
 * partial files, with the SHA-256 computed while the bytes are written.
 *
 * The hash of a partial upload lives in memory only while this process wrote
 * its last bytes. After a restart, a `kill -9`, or bytes written by another
 * gateway process, it is recomputed from the partial file on disk (streamed,
 * constant memory): the disk is the truth, so a resumed upload always hashes
 * what was stored. On the last byte the hash is compared with the declared one;
 * a match is fsynced and renamed into the content-addressed store, a mismatch
 * removes everything.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync } from 'node:fs';
import { readdir, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileStore } from '@tus/file-store';
import { ERRORS, Upload, type KvStore } from '@tus/server';
import type { AuditActor } from '../audit/types.js';
import { CasebridgeError, isCasebridgeError } from '../errors.js';
import type { ObjectStore } from './objects.js';
import type { FileIndex } from './types.js';

/** Upload-Metadata members the gateway keeps; every other one (a file name…) is dropped. */
export interface UploadMeta {
  sha256: string;
  agency: string;
  role: string;
  subject: string;
  /** Set once the upload is complete and stored. */
  complete?: 'true';
}

/** tus 1.0 checksum extension: the algorithms a client may name in Upload-Checksum. */
export const CHECKSUM_ALGORITHMS = ['sha1', 'sha256'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export interface UploadStoreOptions {
  directory: string;
  objects: ObjectStore;
  index: FileIndex;
}

/** An upload's record as kept on disk (JSON, next to its partial bytes). */
export interface UploadRecord {
  id: string;
  size: number;
  offset: number;
  metadata: UploadMeta;
  creation_date?: string;
}

interface HashState {
  offset: number;
  hash: Hash;
}

/** How many in-progress hash states one process keeps; older ones are recomputed if resumed. */
const MAX_HASH_STATES = 256;

/**
 * Bytes buffered between the socket and the partial file (each of the hasher and
 * the file stream). Large enough that the file is written in big `writev` calls
 * while the next TLS records arrive; small against the 64 MiB RSS budget.
 */
export const WRITE_BUFFER = 1024 * 1024;

const DISK_FULL = new Set(['ENOSPC', 'EDQUOT']);

export function isDiskFull(e: unknown): boolean {
  const code = (e as { code?: string } | undefined)?.code;
  // SQLite reports a full disk as SQLITE_FULL.
  return code !== undefined && (DISK_FULL.has(code) || code === 'SQLITE_FULL');
}

/** The tus configuration records, written atomically (temp file + rename). */
class AtomicKvStore {
  constructor(private readonly directory: string) {}

  private path(key: string): string {
    if (!/^[0-9a-f]{32}$/.test(key)) throw ERRORS.FILE_NOT_FOUND;
    return join(this.directory, `${key}.json`);
  }

  async get(key: string): Promise<UploadRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.path(key), 'utf8')) as UploadRecord;
    } catch {
      return undefined;
    }
  }

  async set(key: string, value: UploadRecord | Upload): Promise<void> {
    const path = this.path(key);
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(value));
    await rename(tmp, path);
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async list(): Promise<string[]> {
    const names = await readdir(this.directory);
    return names.filter((n) => /^[0-9a-f]{32}\.json$/.test(n)).map((n) => n.slice(0, 32));
  }
}

export class EvidenceUploadStore extends FileStore {
  private readonly objects: ObjectStore;
  private readonly index: FileIndex;
  private readonly kv: AtomicKvStore;
  private readonly hashes = new Map<string, HashState>();
  /** Upload-Checksum of the PATCH about to write each upload (taken under the upload's lock). */
  private readonly checksums = new Map<string, { alg: ChecksumAlgorithm; digest: Buffer }>();
  /**
   * Why the last write of an upload failed. tus reports the broken pipeline, not
   * the cause, when a write fails midway (a full disk); the cause is taken from here.
   */
  private readonly failures = new Map<string, { error: CasebridgeError; cleanup: Promise<void> }>();

  constructor(opts: UploadStoreOptions) {
    mkdirSync(opts.directory, { recursive: true });
    const kv = new AtomicKvStore(opts.directory);
    super({ directory: opts.directory, configstore: kv as unknown as KvStore<Upload> });
    this.kv = kv;
    this.objects = opts.objects;
    this.index = opts.index;
    // tus 1.0 extensions served: length is always declared up front (no defer-length).
    this.extensions = ['creation', 'creation-with-upload', 'termination', 'checksum'];
  }

  /** The upload record, or undefined (never a path outside the upload directory). */
  async record(id: string): Promise<UploadRecord | undefined> {
    if (!/^[0-9a-f]{32}$/.test(id)) return undefined;
    return this.kv.get(id);
  }

  /** Every upload record (complete or not). */
  async records(): Promise<UploadRecord[]> {
    const out: UploadRecord[] = [];
    for (const id of await this.kv.list()) {
      const r = await this.record(id);
      if (r !== undefined) out.push(r);
    }
    return out;
  }

  /** An upload resource for a file the agency already keeps: complete from the start. */
  async createComplete(id: string, size: number, metadata: UploadMeta): Promise<void> {
    await this.kv.set(id, {
      id,
      size,
      offset: size,
      metadata: { ...metadata, complete: 'true' },
      creation_date: new Date().toISOString(),
    });
  }

  /** Marks an upload whose file is already stored (see the sweep's reconciliation). */
  async markComplete(id: string): Promise<void> {
    const rec = await this.record(id);
    if (rec === undefined) return;
    await rm(join(this.directory, id), { force: true });
    await this.kv.set(id, {
      ...rec,
      offset: rec.size,
      metadata: { ...rec.metadata, complete: 'true' },
    });
  }

  expectChecksum(id: string, alg: ChecksumAlgorithm, digest: Buffer): void {
    this.checksums.set(id, { alg, digest });
  }

  /**
   * The upload as tus reports it (HEAD's `Upload-Metadata`): its declared hash
   * only, never who uploaded it (a certificate subject may name a person).
   */
  override async getUpload(id: string): Promise<Upload> {
    const rec = await this.record(id);
    if (rec === undefined) throw ERRORS.FILE_NOT_FOUND;
    const metadata = { sha256: rec.metadata.sha256 };
    if (rec.metadata.complete === 'true') {
      return new Upload({
        id,
        size: rec.size,
        offset: rec.size,
        metadata,
        ...(rec.creation_date === undefined ? {} : { creation_date: rec.creation_date }),
      });
    }
    const upload = await super.getUpload(id);
    upload.metadata = metadata;
    return upload;
  }

  override async create(file: Upload): Promise<Upload> {
    try {
      return await super.create(file);
    } catch (e) {
      if (isDiskFull(e)) {
        await this.discard(file.id);
        throw new CasebridgeError('INSUFFICIENT_STORAGE', 'the gateway has no room for the file');
      }
      throw e;
    }
  }

  override async remove(id: string): Promise<void> {
    const rec = await this.record(id);
    if (rec === undefined) throw ERRORS.FILE_NOT_FOUND;
    // Terminating a completed upload drops the upload resource; the stored file
    // stays until it expires unbound (protocol §9.1) or forever once bound.
    await this.discard(id);
  }

  /** Removes the partial bytes and the record, whatever state they are in. */
  async discard(id: string): Promise<void> {
    this.hashes.delete(id);
    this.checksums.delete(id);
    await rm(join(this.directory, id), { force: true });
    await this.kv.delete(id);
  }

  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    const rec = await this.record(id);
    if (rec === undefined) throw ERRORS.FILE_NOT_FOUND;
    if (rec.metadata.complete === 'true') throw ERRORS.INVALID_OFFSET;
    const path = join(this.directory, id);
    const state = await this.hashAt(id, path, offset);
    const checksum = this.checksums.get(id);
    this.checksums.delete(id);
    const chunkHash = checksum === undefined ? undefined : createHash(checksum.alg);

    let written = 0;
    const hasher = new Transform({
      highWaterMark: WRITE_BUFFER,
      transform(chunk: Buffer, _enc, cb) {
        state.hash.update(chunk);
        chunkHash?.update(chunk);
        written += chunk.length;
        cb(null, chunk);
      },
    });
    // The state is only trusted again once this write has fully succeeded.
    this.hashes.delete(id);
    try {
      await pipeline(
        readable,
        hasher,
        createWriteStream(path, { flags: 'r+', start: offset, highWaterMark: WRITE_BUFFER }),
      );
    } catch (e) {
      if (isDiskFull(e)) {
        // protocol §9.1: a full disk leaves no half-written file behind. Recorded
        // before the first await: tus may already be answering the broken pipeline.
        const error = new CasebridgeError(
          'INSUFFICIENT_STORAGE',
          'the gateway ran out of disk space',
        );
        const cleanup = this.discard(id);
        this.failures.set(id, { error, cleanup });
        await cleanup;
        throw error;
      }
      // A refusal raised by the body's source (bytes past the declared length).
      if (isCasebridgeError(e)) throw e;
      throw ERRORS.FILE_WRITE_ERROR;
    }
    if (chunkHash !== undefined && !chunkHash.digest().equals(checksum!.digest)) {
      // tus checksum extension: the chunk is discarded, the offset stays where it was.
      await truncate(path, offset);
      throw new CasebridgeError('CHECKSUM_MISMATCH', 'the chunk does not match Upload-Checksum');
    }
    const newOffset = offset + written;
    if (newOffset < rec.size) {
      this.remember(id, { offset: newOffset, hash: state.hash });
      return newOffset;
    }
    await this.finish(id, path, rec, state.hash.digest('hex'));
    return newOffset;
  }

  /** The last byte arrived: compare, then store once per agency (protocol §9.1). */
  private async finish(
    id: string,
    path: string,
    rec: UploadRecord,
    computed: string,
  ): Promise<void> {
    const meta = rec.metadata;
    if (computed !== meta.sha256) {
      await this.discard(id);
      throw new CasebridgeError('DIGEST_MISMATCH', 'the bytes do not hash to the declared sha256');
    }
    const actor: AuditActor = { agency: meta.agency, role: meta.role, subject: meta.subject };
    try {
      await this.objects.commit(path, meta.agency, meta.sha256);
      await this.index.recordStored(
        { agency: meta.agency, sha256: meta.sha256, size: rec.size },
        actor,
      );
      await this.kv.set(id, { ...rec, offset: rec.size, metadata: { ...meta, complete: 'true' } });
    } catch (e) {
      if (!isDiskFull(e)) throw e;
      if ((await this.index.storedFile(meta.agency, meta.sha256)) === undefined) {
        await this.objects.remove(meta.agency, meta.sha256);
      }
      await this.discard(id);
      throw new CasebridgeError('INSUFFICIENT_STORAGE', 'the gateway ran out of disk space');
    }
  }

  /** The cause of the write of `id` that just failed, once its clean-up is done. */
  async takeFailure(id: string): Promise<CasebridgeError | undefined> {
    const f = this.failures.get(id);
    if (f === undefined) return undefined;
    this.failures.delete(id);
    await f.cleanup.catch(() => undefined);
    return f.error;
  }

  /** The hash of the first `offset` bytes: from memory when this process wrote them last. */
  private async hashAt(id: string, path: string, offset: number): Promise<HashState> {
    const known = this.hashes.get(id);
    if (known !== undefined && known.offset === offset) return known;
    const hash = createHash('sha256');
    if (offset > 0) {
      await pipeline(createReadStream(path, { start: 0, end: offset - 1 }), async (src) => {
        for await (const chunk of src) hash.update(chunk as Buffer);
      });
    }
    return { offset, hash };
  }

  private remember(id: string, state: HashState): void {
    this.hashes.delete(id);
    this.hashes.set(id, state);
    if (this.hashes.size > MAX_HASH_STATES) {
      const oldest = this.hashes.keys().next().value as string;
      this.hashes.delete(oldest);
    }
  }
}
