/**
 * protocol §9.1 upload over tus 1.0 (core, creation, termination, checksum) under
 * `/v1/files`. The tus protocol is @tus/server's; what is decided here is who may
 * upload, what is declared, the limits, the answer for a file already kept, and
 * the mapping of every refusal to a problem+json code.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import type { Upload } from '@tus/server';
import { ERRORS, Metadata, Server, Uid } from '@tus/server';
import type { AuditActor } from '../audit/types.js';
import { NodeRequest, sendNodeResponse } from 'srvx/node';
import { CasebridgeError, isCasebridgeError, type ErrorCode } from '../errors.js';
import { isSha256Hex } from './digest.js';
import { FileLocker } from './file-lock.js';
import { ObjectStore } from './objects.js';
import type { FileIndex } from './types.js';
import {
  CHECKSUM_ALGORITHMS,
  EvidenceUploadStore,
  isDiskFull,
  WRITE_BUFFER,
  type ChecksumAlgorithm,
  type UploadMeta,
} from './upload-store.js';

export const UPLOAD_PATH = '/v1/files';
export const TUS_VERSION = '1.0.0';

export interface FileLimits {
  /** CASEBRIDGE_FILE_MAX_BYTES */
  maxBytes: number;
  /** CASEBRIDGE_FILE_QUOTA_BYTES, per agency */
  quotaBytes: number;
}

export interface UploadServiceOptions {
  /** CASEBRIDGE_FILES_DIR */
  directory: string;
  index: FileIndex;
  limits: FileLimits;
  /** Maps an unexpected error to a log line; returns nothing. */
  onInternalError: (e: unknown) => void;
  /** How long a request waits for an upload's lock that another request holds. Default 20 s. */
  lockTimeoutMs?: number;
}

/**
 * A refusal, as the HTTP layer turns it into problem+json. The tus headers of
 * the answer (`Tus-Resumable`, and `Connection: close` when the body was not
 * read to its end) are already set on the response.
 */
export interface UploadProblem {
  code: ErrorCode;
  detail: string;
  /** Seconds for `Retry-After` (a lock another request holds). */
  retryAfterS?: number;
  /** A status tus 1.0 fixes where it differs from the code's (412 for the version). */
  status?: number;
}

type TusError = { status_code: number; body: string };

/** Another request holds the upload's lock past the wait: 503, try again shortly. */
const LOCK_HELD: UploadProblem = {
  code: 'UNAVAILABLE',
  detail: 'another request is using this upload; try again shortly (HEAD gives its offset)',
  retryAfterS: 1,
};

/** tus errors by the status @tus/server gives them, as our codes. */
function codeForTusStatus(status: number): ErrorCode {
  switch (status) {
    case 404:
    case 410:
      return 'NOT_FOUND';
    case 409:
      return 'OFFSET_MISMATCH';
    case 413:
      return 'TOO_LARGE';
    case 423:
    case 503:
      return 'UNAVAILABLE';
    case 460:
      return 'CHECKSUM_MISMATCH';
    default:
      return status >= 400 && status < 500 ? 'INVALID_PARAMETER' : 'INTERNAL';
  }
}

/** How long a PATCH that holds an upload's lock goes on once another request asks for it. */
const LOCK_DRAIN_MS = 3_000;

const PATCH_CONTENT_TYPE = 'application/offset+octet-stream';

/** The methods of tus 1.0 core, creation and termination (protocol §9.1); no GET. */
const TUS_METHODS: readonly string[] = ['OPTIONS', 'POST', 'HEAD', 'PATCH', 'DELETE'];

/** Request headers of tus features the lean PATCH leaves to @tus/server. */
const NOT_PLAIN = [
  'upload-length',
  'upload-defer-length',
  'upload-metadata',
  'upload-concat',
  'tus-version',
  'x-forwarded-proto',
  'x-http-method-override',
];

export class UploadService {
  readonly objects: ObjectStore;
  readonly store: EvidenceUploadStore;
  private readonly tus: Server;
  private readonly locker: FileLocker;
  private readonly principals = new WeakMap<IncomingMessage, AuditActor>();
  /** The refusal @tus/server reported for a request, answered by the HTTP layer. */
  private readonly refusals = new WeakMap<IncomingMessage, UploadProblem>();

  constructor(private readonly opts: UploadServiceOptions) {
    this.objects = new ObjectStore(join(opts.directory, 'objects'));
    this.store = new EvidenceUploadStore({
      directory: join(opts.directory, 'uploads'),
      objects: this.objects,
      index: opts.index,
    });
    this.locker = new FileLocker({
      directory: join(opts.directory, 'locks'),
      ...(opts.lockTimeoutMs === undefined ? {} : { acquireTimeoutMs: opts.lockTimeoutMs }),
    });
    this.tus = new Server({
      path: UPLOAD_PATH,
      datastore: this.store,
      locker: this.locker,
      relativeLocation: true,
      maxSize: opts.limits.maxBytes,
      lockDrainTimeout: LOCK_DRAIN_MS,
      // No cross-origin access: the API is for agency systems with client certificates.
      allowedOrigins: [],
      onUploadCreate: async (req, upload) => ({ metadata: this.metadataFor(req, upload) }),
      onResponseError: (req, err) => this.mapError(req, err),
    });
  }

  /**
   * Serves one tus request of an authenticated `system` or `officer` principal:
   * answers it, or returns the refusal for the HTTP layer to answer.
   */
  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    actor: AuditActor,
  ): Promise<UploadProblem | undefined> {
    // Only tus's own methods are served here. @tus/server would answer a GET of a
    // completed upload by streaming a partial file that no longer exists, an error
    // event nothing listens to, which ends the process.
    if (!TUS_METHODS.includes(req.method ?? '')) {
      return this.refuse(req, res, { code: 'NOT_FOUND', detail: 'no such resource' });
    }
    if (req.method !== 'OPTIONS') res.setHeader('Tus-Resumable', TUS_VERSION);
    if (req.method !== 'OPTIONS' && !speaksTus(req)) {
      // tus 1.0: an unsupported (or missing) version is 412 and names the one served.
      res.setHeader('Tus-Version', TUS_VERSION);
      return this.refuse(req, res, {
        code: 'INVALID_PARAMETER',
        status: 412,
        detail: `send Tus-Resumable: ${TUS_VERSION}`,
      });
    }
    let id: string | undefined;
    try {
      if (await this.before(req, res, actor)) return undefined;
      id = uploadIdOf(req.url ?? '');
    } catch (e) {
      return this.refuse(req, res, this.problemOf(e));
    }
    if (id !== undefined && isPlainPatch(req)) return this.patch(req, res, id);
    this.principals.set(req, actor);
    const response = await this.tus.handleWeb(new NodeRequest({ req, res }));
    const refusal = this.refusals.get(req);
    if (refusal !== undefined) return this.refuse(req, res, refusal);
    if (response.status >= 400) {
      // Refused by tus before any handler ran (a missing Tus-Resumable, a malformed header).
      const detail = (await response.text()).trim();
      return this.refuse(req, res, { code: 'INVALID_PARAMETER', detail });
    }
    await sendNodeResponse(res, response);
    return undefined;
  }

  /**
   * tus 1.0 PATCH without @tus/server's web-stream bridge: the request stream is
   * piped straight through the running SHA-256 into the partial file, under the
   * upload's cross-process lock, with large buffers and one fsync at the end (in
   * the commit after the last byte). The rules are tus's: the offset must match
   * (409), no byte past the declared length (413), Upload-Checksum per chunk
   * (460). A dropped connection keeps the bytes that arrived; a request asking
   * for the lock ends this one after LOCK_DRAIN_MS at the offset it reached.
   */
  private async patch(
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
  ): Promise<UploadProblem | undefined> {
    const offset = Number(req.headers['upload-offset']);
    const gone = new AbortController();
    const onClose = () => {
      if (!req.complete) gone.abort();
    };
    req.once('close', onClose);
    let body: BodyLimit | undefined;
    let drain: NodeJS.Timeout | undefined;
    const stop = () => {
      if (body === undefined || body.writableEnded) return;
      req.unpipe(body);
      body.end();
    };
    gone.signal.addEventListener('abort', stop, { once: true });
    const lock = this.locker.newLock(id);
    try {
      try {
        await lock.lock(gone.signal, () => {
          drain ??= setTimeout(stop, LOCK_DRAIN_MS);
        });
      } catch (e) {
        if (e !== ERRORS.ERR_LOCK_TIMEOUT) throw e;
        return this.refuse(req, res, LOCK_HELD);
      }
      let newOffset: number;
      try {
        const upload = await this.store.getUpload(id);
        if (upload.offset !== offset) throw ERRORS.INVALID_OFFSET;
        const room = (upload.size ?? 0) - offset;
        const declared = req.headers['content-length'];
        if (declared !== undefined && Number(declared) > room) {
          throw new CasebridgeError('TOO_LARGE', "the chunk runs past the upload's length");
        }
        body = new BodyLimit(room);
        if (gone.signal.aborted) body.end();
        else req.pipe(body);
        newOffset = await this.store.write(body, id, offset);
      } finally {
        if (drain !== undefined) clearTimeout(drain);
        if (body !== undefined) req.unpipe(body);
        await lock.unlock();
      }
      if (gone.signal.aborted || res.headersSent) return undefined;
      // Ended early for another request: the rest of the body is not read.
      if (!req.complete) res.setHeader('Connection', 'close');
      res.writeHead(204, { 'Upload-Offset': String(newOffset) });
      res.end();
      return undefined;
    } catch (e) {
      const cause = await this.store.takeFailure(id);
      return this.refuse(req, res, this.problemOf(cause ?? e));
    } finally {
      req.off('close', onClose);
    }
  }

  /** A refusal: when the body is not read to its end, the connection ends with the answer. */
  private refuse(req: IncomingMessage, res: ServerResponse, p: UploadProblem): UploadProblem {
    if (!req.complete && !res.headersSent) res.setHeader('Connection', 'close');
    return p;
  }

  /** Checks that come before tus: ownership, declarations, limits, a file already kept. */
  private async before(
    req: IncomingMessage,
    res: ServerResponse,
    actor: AuditActor,
  ): Promise<boolean> {
    const id = uploadIdOf(req.url ?? '');
    if (req.method === 'POST') {
      if (id !== undefined) throw new CasebridgeError('NOT_FOUND', 'create uploads at /v1/files');
      return this.beforeCreate(req, res, actor);
    }
    if (req.method === 'OPTIONS') {
      res.setHeader('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','));
      return false;
    }
    if (id === undefined) throw new CasebridgeError('NOT_FOUND', 'no such upload');
    const rec = await this.store.record(id);
    // Another agency's upload does not exist, as far as this caller can tell.
    if (rec === undefined || rec.metadata.agency !== actor.agency) {
      throw new CasebridgeError('NOT_FOUND', 'no such upload');
    }
    if (req.method === 'PATCH') this.takeChecksum(req, id);
    return false;
  }

  private async beforeCreate(
    req: IncomingMessage,
    res: ServerResponse,
    actor: AuditActor,
  ): Promise<boolean> {
    if (req.headers['upload-defer-length'] !== undefined) {
      throw new CasebridgeError('INVALID_PARAMETER', 'declare Upload-Length when creating');
    }
    const lengthText = header(req, 'upload-length');
    if (lengthText === undefined || !/^\d{1,16}$/.test(lengthText)) {
      throw new CasebridgeError(
        'INVALID_PARAMETER',
        'Upload-Length must be a non-negative integer',
      );
    }
    const length = Number(lengthText);
    const { maxBytes, quotaBytes } = this.opts.limits;
    if (length > maxBytes) {
      throw new CasebridgeError('TOO_LARGE', `a file may have at most ${maxBytes} bytes`);
    }
    const sha256 = declaredSha256(header(req, 'upload-metadata'));

    // A file the agency already keeps is answered at once: a completed upload.
    const kept = await this.opts.index.storedFile(actor.agency, sha256);
    if (kept !== undefined && kept.size === length) {
      const id = Uid.rand();
      await this.store.createComplete(id, length, metaOf(sha256, actor));
      res.writeHead(200, {
        'Tus-Resumable': TUS_VERSION,
        Location: `${UPLOAD_PATH}/${id}`,
        'Upload-Offset': String(length),
        'Upload-Length': String(length),
        'Cache-Control': 'no-store',
      });
      res.end();
      return true;
    }

    const reserved = await this.inProgressBytes(actor.agency);
    if ((await this.opts.index.usage(actor.agency)) + reserved + length > quotaBytes) {
      throw new CasebridgeError('QUOTA_EXCEEDED', "the agency's file quota would be exceeded");
    }
    const fs = await statfs(this.store.directory);
    if (fs.bavail * fs.bsize < length) {
      throw new CasebridgeError('INSUFFICIENT_STORAGE', 'the gateway has no room for the file');
    }
    return false;
  }

  /** Bytes declared by the agency's uploads still in progress (they count against its quota). */
  private async inProgressBytes(agency: string): Promise<number> {
    let n = 0;
    for (const r of await this.store.records()) {
      if (r.metadata.agency === agency && r.metadata.complete !== 'true') n += r.size ?? 0;
    }
    return n;
  }

  /** tus checksum extension: `Upload-Checksum: <algorithm> <base64 digest>`. */
  private takeChecksum(req: IncomingMessage, id: string): void {
    const value = header(req, 'upload-checksum');
    if (value === undefined) return;
    const m = /^([a-z0-9]+) ([A-Za-z0-9+/]+={0,2})$/.exec(value);
    if (!m || !(CHECKSUM_ALGORITHMS as readonly string[]).includes(m[1]!)) {
      throw new CasebridgeError(
        'INVALID_PARAMETER',
        `Upload-Checksum must name one of ${CHECKSUM_ALGORITHMS.join(', ')} with a base64 digest`,
      );
    }
    this.store.expectChecksum(id, m[1] as ChecksumAlgorithm, Buffer.from(m[2]!, 'base64'));
  }

  /** The upload's metadata: the declared hash and who uploads, nothing the client named. */
  private metadataFor(req: unknown, upload: Upload): Record<string, string> {
    const node = nodeRequestOf(req);
    const actor = node === undefined ? undefined : this.principals.get(node);
    if (actor === undefined) throw ERRORS.FILE_NOT_FOUND;
    const sha256 = declaredSha256(upload.metadata ? Metadata.stringify(upload.metadata) : '');
    return metaOf(sha256, actor) as unknown as Record<string, string>;
  }

  private problemOf(e: unknown): UploadProblem {
    if (isCasebridgeError(e)) return { code: e.code, detail: e.message };
    // The lock stayed held by another request (HEAD, DELETE or a creation's body).
    if (e === ERRORS.ERR_LOCK_TIMEOUT) return LOCK_HELD;
    if (isDiskFull(e)) return { code: 'INSUFFICIENT_STORAGE', detail: 'the gateway has no room' };
    const t = e as Partial<TusError>;
    if (typeof t?.status_code === 'number') {
      return { code: codeForTusStatus(t.status_code), detail: (t.body ?? '').trim() };
    }
    this.opts.onInternalError(e);
    return { code: 'INTERNAL', detail: 'an internal error occurred; it has been logged' };
  }

  /** Keeps tus's error as the request's refusal; the HTTP layer answers it (see handle). */
  private async mapError(req: Request, err: unknown): Promise<TusError> {
    const id = uploadIdOf(new URL(req.url, 'https://gateway').pathname);
    const cause = id === undefined ? undefined : await this.store.takeFailure(id);
    const p = this.problemOf(cause ?? err);
    const node = nodeRequestOf(req);
    if (node !== undefined) this.refusals.set(node, p);
    return { status_code: 400, body: '' };
  }
}

function nodeRequestOf(req: unknown): IncomingMessage | undefined {
  return (req as { runtime?: { node?: { req?: IncomingMessage } } }).runtime?.node?.req;
}

function speaksTus(req: IncomingMessage): boolean {
  return req.headers['tus-resumable'] === TUS_VERSION;
}

/** A PATCH the lean path serves: tus 1.0, the offset stream type, a well-formed offset, no extension headers. */
function isPlainPatch(req: IncomingMessage): boolean {
  const h = req.headers;
  return (
    req.method === 'PATCH' &&
    speaksTus(req) &&
    h['content-type'] === PATCH_CONTENT_TYPE &&
    typeof h['upload-offset'] === 'string' &&
    /^(0|[1-9]\d{0,15})$/.test(h['upload-offset']) &&
    NOT_PLAIN.every((name) => h[name] === undefined)
  );
}

/** Passes the body on, refusing any byte past the upload's declared length. */
class BodyLimit extends Transform {
  private seen = 0;

  constructor(private readonly room: number) {
    super({ highWaterMark: WRITE_BUFFER });
    // Bytes may flow (and be refused) before the store's pipeline takes the stream;
    // the pipeline then reports the error it was destroyed with.
    this.on('error', () => undefined);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.room) {
      cb(new CasebridgeError('TOO_LARGE', "the chunk runs past the upload's length"));
      return;
    }
    cb(null, chunk);
  }
}

function metaOf(sha256: string, actor: AuditActor): UploadMeta {
  return { sha256, agency: actor.agency, role: actor.role, subject: actor.subject };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? undefined : v;
}

/** protocol §9.1: Upload-Metadata must carry `sha256`, 64 lowercase hex. */
function declaredSha256(metadata: string | undefined): string {
  let parsed: Record<string, string | null>;
  try {
    parsed = Metadata.parse(metadata ?? '');
  } catch {
    throw new CasebridgeError('INVALID_PARAMETER', 'Upload-Metadata is not tus metadata');
  }
  const sha256 = parsed['sha256'];
  if (!isSha256Hex(sha256)) {
    throw new CasebridgeError(
      'INVALID_PARAMETER',
      'Upload-Metadata must declare sha256 as 64 lowercase hex',
    );
  }
  return sha256;
}

/** The upload id of `/v1/files/<id>`, undefined for `/v1/files` itself. */
function uploadIdOf(url: string): string | undefined {
  const path = url.split('?')[0] ?? '';
  if (path === UPLOAD_PATH || path === `${UPLOAD_PATH}/`) return undefined;
  const id = path.slice(UPLOAD_PATH.length + 1);
  return /^[0-9a-f]{32}$/.test(id) ? id : 'invalid';
}
