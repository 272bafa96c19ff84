import { once } from 'node:events';
import { Router, type Request, type Response } from 'express';
import { exportBundle, type BundleMessage } from '../audit/export.js';
import { mayReadStored } from '../audit/disclosure.js';
import { consistencyProof, inclusionProof, leafHash, withNodes } from '../audit/merkle.js';
import { CasebridgeError } from '../errors.js';
import { exportableTo } from '../messages/visibility.js';
import { principalOf, requireRole } from './auth.js';
import type { HttpContext } from './context.js';
import { optEnum, optInt, reqInt } from './params.js';

const MAX_ENTRIES_PER_REQUEST = 10_000;
const MAX_INDEX = Number.MAX_SAFE_INTEGER;

/**
 * The tree size a proof is made against: `size` if given (1..latest signed size),
 * else the latest signed checkpoint, whose text is returned with the proof.
 */
export async function proofSize(
  ctx: HttpContext,
  q: Record<string, unknown>,
  minSize: number,
): Promise<{ size: number; checkpoint?: string }> {
  const latest = await ctx.store.latestCheckpoint();
  const given = optInt(q, 'size', 1, MAX_INDEX);
  if (given === undefined) {
    if (!latest || latest.size < minSize) {
      throw new CasebridgeError(
        'UNAVAILABLE',
        'no signed checkpoint covers this entry yet; retry in a second',
      );
    }
    return { size: latest.size, checkpoint: latest.text };
  }
  if (!latest || given > latest.size) {
    throw new CasebridgeError(
      'INVALID_PARAMETER',
      'size must not exceed the latest signed checkpoint',
    );
  }
  if (given < minSize)
    throw new CasebridgeError('INVALID_PARAMETER', 'size must be greater than index');
  const cp = await ctx.store.checkpointAt(given);
  return cp ? { size: given, checkpoint: cp.text } : { size: given };
}

export function auditRoutes(ctx: HttpContext): Router {
  const r = Router();

  // protocol §6.5: `size=N` serves the checkpoint signed at size N, when one was.
  r.get('/v1/audit/checkpoint', async (req: Request, res: Response) => {
    principalOf(res);
    const size = optInt(req.query as Record<string, unknown>, 'size', 0, MAX_INDEX);
    const cp =
      size === undefined ? await ctx.store.latestCheckpoint() : await ctx.store.checkpointAt(size);
    if (!cp && size !== undefined)
      throw new CasebridgeError('NOT_FOUND', 'no checkpoint was signed at this size');
    if (!cp) throw new CasebridgeError('UNAVAILABLE', 'no checkpoint has been signed yet');
    res.type('text/plain; charset=utf-8').send(cp.text);
  });

  r.get('/v1/audit/key', (_req: Request, res: Response) => {
    res.type('text/plain; charset=utf-8').send(ctx.log.vkey + '\n');
  });

  r.get('/v1/audit/entries', async (req: Request, res: Response) => {
    const auditor = requireRole(res, ['auditor'], 'the audit log');
    const q = req.query as Record<string, unknown>;
    const size = await ctx.store.treeSize();
    const start = optInt(q, 'start', 0, MAX_INDEX) ?? 0;
    const end = Math.min(
      optInt(q, 'end', 0, MAX_INDEX) ?? size,
      size,
      start + MAX_ENTRIES_PER_REQUEST,
    );
    if (start > size)
      throw new CasebridgeError('INVALID_PARAMETER', 'start is beyond the end of the log');
    res.type('application/x-ndjson');
    const lines: string[] = [];
    for (const e of await ctx.store.entries(start, Math.max(start, end))) {
      if (!mayReadStored(e, auditor.agency, ctx.disclosure)) {
        // Another pair's traffic: the leaf hash proves its place, and says nothing else.
        lines.push(`{"index":${e.index},"leafHash":"${leafHash(e.bytes).toString('base64')}"}\n`);
        continue;
      }
      lines.push(
        `{"index":${e.index},"leaf":"${e.bytes.toString('base64')}","entry":${e.bytes.toString('utf8')}}\n`,
      );
    }
    res.send(lines.join(''));
  });

  r.get('/v1/audit/proof/inclusion', async (req: Request, res: Response) => {
    requireRole(res, ['auditor'], 'proofs by index');
    const q = req.query as Record<string, unknown>;
    const index = reqInt(q, 'index', 0, MAX_INDEX);
    const { size, checkpoint } = await proofSize(ctx, q, index + 1);
    const hashes = await withNodes(
      (src) => inclusionProof(index, size, src),
      (c) => ctx.store.nodesAt(c),
    );
    res.json({
      index,
      size,
      hashes: hashes.map((h) => h.toString('base64')),
      ...(checkpoint ? { checkpoint } : {}),
    });
  });

  r.get('/v1/audit/proof/consistency', async (req: Request, res: Response) => {
    principalOf(res);
    const q = req.query as Record<string, unknown>;
    const latest = (await ctx.store.latestCheckpoint())?.size ?? 0;
    const from = reqInt(q, 'from', 1, MAX_INDEX);
    const to = optInt(q, 'to', 1, MAX_INDEX) ?? latest;
    if (to > latest)
      throw new CasebridgeError(
        'INVALID_PARAMETER',
        'to must not exceed the latest signed checkpoint',
      );
    if (from > to) throw new CasebridgeError('INVALID_PARAMETER', 'from must not exceed to');
    const hashes = await withNodes(
      (src) => consistencyProof(from, to, src),
      (c) => ctx.store.nodesAt(c),
    );
    res.json({
      from,
      to,
      hashes: hashes.map((h) => h.toString('base64')),
    });
  });

  r.get('/v1/audit/export', async (req: Request, res: Response) => {
    const auditor = requireRole(res, ['auditor'], 'the audit export');
    const q = req.query as Record<string, unknown>;
    const messages = optEnum(q, 'messages', ['true', 'false'] as const) === 'true';
    if (messages && !ctx.exportGrant.has(auditor.agency)) {
      throw new CasebridgeError(
        'FORBIDDEN_ROLE',
        'exporting message contents needs the export grant',
      );
    }
    const start = optInt(q, 'start', 0, MAX_INDEX);
    const end = optInt(q, 'end', 0, MAX_INDEX);
    const lines = exportBundle(
      {
        store: ctx.store,
        origin: ctx.log.origin,
        vkey: ctx.log.vkey,
        gatewayChain: ctx.gateway.chain.map((c) => c.toString()),
        trustAnchors: ctx.trustAnchors().map((c) => c.toString()),
        redact: (e) => !mayReadStored(e, auditor.agency, ctx.disclosure),
        // Even with the grant, an auditor sees only its own agency's messages (protocol §1.4),
        // and never an H3 or shredded one (protocol §2.2).
        messagesFor: async (ids) => {
          const out: BundleMessage[] = [];
          for (const id of ids) {
            const m = await ctx.store.getMessage(id);
            if (!m || !exportableTo(m, auditor.agency)) continue;
            const { receipt } = JSON.parse(m.response) as { receipt: string };
            out.push({ id: m.id, jws: m.jws, receipt });
          }
          return out;
        },
      },
      {
        messages,
        now: ctx.now,
        ...(start === undefined ? {} : { start }),
        ...(end === undefined ? {} : { end }),
      },
    );
    // A bad range throws here (INVALID_PARAMETER), before any byte is sent.
    const first = await lines.next();
    res.status(200).type('application/x-ndjson');
    res.setHeader('content-disposition', 'attachment; filename="casebridge-audit-export.ndjson"');
    for (let next = first; !next.done; next = await lines.next()) {
      if (!res.write(next.value + '\n')) await once(res, 'drain');
    }
    res.end();
  });

  return r;
}
