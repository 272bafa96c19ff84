/**
 * protocol §9.1 upload over tus 1.0 (core, creation, termination, checksum) under
 * `/v1/files`. The tus protocol is @tus/server's; what is decided here is who may
 * upload, what is declared, the limits, the answer for a file already kept, and
 * the mapping of every refusal to a problem+json code.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Upload } from '@tus/server';
import { ERRORS, Metadata, Server, Uid } from '@tus/server';
import type { AuditActor } from '../audit/types.js';
import { NodeRequest, sendNodeResponse } from 'srvx/node';
import { CasebridgeError, isCasebridgeError, STATUS_BY_CODE, type ErrorCode } from '../errors.js';
import { problemOf } from '../http/problem.js';
import { isSha256Hex } from './digest.js';
import { FileLocker } from './file-lock.js';
import { ObjectStore } from './objects.js';
import type { FileIndex } from './types.js';
import {
  CHECKSUM_ALGORITHMS,
  EvidenceUploadStore,
  isDiskFull,
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
}

/** A refusal as the HTTP layer turns it into problem+json. */
export interface UploadProblem {
  code: ErrorCode;
  detail: string;
}

type TusError = { status_code: number; body: string };

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

export class UploadService {
  readonly objects: ObjectStore;
  readonly store: EvidenceUploadStore;
  private readonly tus: Server;
  private readonly principals = new WeakMap<IncomingMessage, AuditActor>();

  constructor(private readonly opts: UploadServiceOptions) {
    this.objects = new ObjectStore(join(opts.directory, 'objects'));
    this.store = new EvidenceUploadStore({
      directory: join(opts.directory, 'uploads'),
      objects: this.objects,
      index: opts.index,
    });
    this.tus = new Server({
      path: UPLOAD_PATH,
      datastore: this.store,
      locker: new FileLocker({ directory: join(opts.directory, 'locks') }),
      relativeLocation: true,
      maxSize: opts.limits.maxBytes,
      // No cross-origin access: the API is for agency systems with client certificates.
      allowedOrigins: [],
      onUploadCreate: async (req, upload) => ({ metadata: this.metadataFor(req, upload) }),
      onResponseError: (req, err) => this.mapError(req.url, err),
    });
  }

  /**
   * Serves one tus request of an authenticated `system` or `officer` principal.
   * Problems are answered as problem+json through `sendProblem`.
   */
  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    actor: AuditActor,
    sendProblem: (p: UploadProblem) => void,
  ): Promise<void> {
    try {
      const done = await this.before(req, res, actor);
      if (done) return;
    } catch (e) {
      sendProblem(this.problemOf(e));
      return;
    }
    this.principals.set(req, actor);
    const response = await this.tus.handleWeb(new NodeRequest({ req, res }));
    await sendNodeResponse(res, asProblemJson(response));
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
    const node = (req as { runtime?: { node?: { req?: IncomingMessage } } }).runtime?.node?.req;
    const actor = node === undefined ? undefined : this.principals.get(node);
    if (actor === undefined) throw ERRORS.FILE_NOT_FOUND;
    const sha256 = declaredSha256(upload.metadata ? Metadata.stringify(upload.metadata) : '');
    return metaOf(sha256, actor) as unknown as Record<string, string>;
  }

  private problemOf(e: unknown): UploadProblem {
    if (isCasebridgeError(e)) return { code: e.code, detail: e.message };
    if (isDiskFull(e)) return { code: 'INSUFFICIENT_STORAGE', detail: 'the gateway has no room' };
    const t = e as Partial<TusError>;
    if (typeof t?.status_code === 'number') {
      return { code: codeForTusStatus(t.status_code), detail: (t.body ?? '').trim() };
    }
    this.opts.onInternalError(e);
    return { code: 'INTERNAL', detail: 'an internal error occurred; it has been logged' };
  }

  private async mapError(url: string, err: unknown): Promise<TusError> {
    const id = uploadIdOf(new URL(url, 'https://gateway').pathname);
    const cause = id === undefined ? undefined : await this.store.takeFailure(id);
    const p = this.problemOf(cause ?? err);
    return { status_code: statusOf(p.code), body: problemBody(p) };
  }
}

/** tus refusals carry our problem document as body; they go out as problem+json. */
function asProblemJson(response: Response): Response {
  if (response.status < 400) return response;
  const headers = new Headers(response.headers);
  headers.set('content-type', 'application/problem+json');
  return new Response(response.body, { status: response.status, headers });
}

function statusOf(code: ErrorCode): number {
  return STATUS_BY_CODE[code];
}

function problemBody(p: UploadProblem): string {
  return JSON.stringify(problemOf(p.code, p.detail));
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
