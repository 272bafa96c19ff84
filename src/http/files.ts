/**
 * protocol §9 routes: the tus upload mount, the download of a bound file, the
 * CASE/UCO export of a transfer and the JSON-LD context it names.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Router, type Request, type Response } from 'express';
import { CasebridgeError } from '../errors.js';
import { caseBundle, CONTEXT_FILE, CONTEXT_PATH } from '../files/case-export.js';
import { isSha256Hex } from '../files/digest.js';
import type { FileIndex, StoredFile } from '../files/types.js';
import type { UploadService } from '../files/uploads.js';
import { actorOf } from '../submission/submit.js';
import { requireRole } from './auth.js';
import type { HttpContext } from './context.js';
import { findVisible } from './messages.js';
import { messageId } from './params.js';
import { problemOf, sendProblem } from './problem.js';

const FILE_ROLES = ['system', 'officer'] as const;

export interface FileRoutesDeps {
  uploads: UploadService;
  files: FileIndex;
  /** Directory holding the CASE/UCO context document. */
  schemaDir: string;
}

export function fileRoutes(ctx: HttpContext, deps: FileRoutesDeps): Router {
  const r = Router();

  // tus 1.0 under /v1/files (protocol §9.1). No body parser runs before it: the
  // bytes stream from the socket to the partial file.
  r.all(/^\/v1\/files(\/[^/]*)?$/, async (req: Request, res: Response) => {
    const p = requireRole(res, FILE_ROLES, 'uploading files');
    const refused = await deps.uploads.handle(req, res, actorOf(p));
    // Already answered when the body guard cut a body that did not arrive in time.
    if (refused === undefined || res.headersSent) return;
    if (refused.retryAfterS !== undefined)
      res.setHeader('retry-after', String(refused.retryAfterS));
    const problem = problemOf(refused.code, refused.detail);
    sendProblem(
      res,
      refused.status === undefined ? problem : { ...problem, status: refused.status },
    );
  });

  r.get('/v1/messages/:id/files/:sha256', async (req: Request, res: Response) => {
    const p = requireRole(res, FILE_ROLES, 'downloading files');
    const id = messageId(req.params['id']);
    const sha256 = req.params['sha256'];
    if (!isSha256Hex(sha256)) {
      throw new CasebridgeError('INVALID_PARAMETER', 'the file is named by 64 lowercase hex');
    }
    const m = await findVisible(ctx, id, p);
    const file = await deps.files.boundFile(m.id, sha256);
    if (file === undefined) throw new CasebridgeError('NOT_FOUND', 'no such file in this message');
    const range = requestedRange(req, file);
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      etag: `"${file.sha256}"`,
      'accept-ranges': 'bytes',
      // RFC 9530: the digest of the whole representation, whatever range is sent.
      'repr-digest': `sha-256=:${Buffer.from(file.sha256, 'hex').toString('base64')}:`,
    };
    if (range === 'unsatisfiable') {
      res.setHeader('content-range', `bytes */${file.size}`);
      throw new CasebridgeError('RANGE_NOT_SATISFIABLE', 'the range lies outside the file');
    }
    const span = range ?? { start: 0, end: file.size - 1 };
    const length = file.size === 0 ? 0 : span.end - span.start + 1;
    headers['content-length'] = String(length);
    if (range !== undefined)
      headers['content-range'] = `bytes ${span.start}-${span.end}/${file.size}`;
    if (req.method === 'GET') {
      await deps.files.recordDownload(m.id, file, actorOf(p), {
        start: span.start,
        end: span.end + 1,
      });
    }
    res.writeHead(range === undefined ? 200 : 206, headers);
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    await pipeline(deps.uploads.objects.read(file.agency, file.sha256, span), res).catch(() =>
      res.destroy(),
    );
  });

  r.get('/v1/messages/:id/case.jsonld', async (req: Request, res: Response) => {
    const p = requireRole(res, FILE_ROLES, 'reading messages');
    const m = await findVisible(ctx, messageId(req.params['id']), p);
    if (m.type !== 'evidence.transfer' || m.envelope === null) {
      throw new CasebridgeError('NOT_FOUND', 'only an evidence.transfer has a CASE export');
    }
    const bundle = caseBundle({
      envelope: m.envelope,
      digest: m.digest,
      logIndex: m.logIndex,
      acceptedAt: m.acceptedAt,
      gatewayId: ctx.gateway.id,
      custody: await deps.files.custody(m.id),
    });
    res.type('application/ld+json').send(JSON.stringify(bundle));
  });

  const context = readFileSync(join(deps.schemaDir, CONTEXT_FILE), 'utf8');
  r.get(CONTEXT_PATH, (_req: Request, res: Response) => {
    res.type('application/ld+json').send(context);
  });

  return r;
}

/**
 * RFC 9110 §14: one `bytes` range; several ranges or another unit are ignored
 * (the whole file is sent), and `If-Range` with another validator sends it whole too.
 */
function requestedRange(
  req: Request,
  file: StoredFile,
): { start: number; end: number } | undefined | 'unsatisfiable' {
  const header = req.headers.range;
  if (header === undefined) return undefined;
  const ifRange = req.headers['if-range'];
  if (ifRange !== undefined && ifRange !== `"${file.sha256}"`) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  const size = file.size;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return undefined;
  }
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}
