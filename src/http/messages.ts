import { Router, type NextFunction, type Request, type Response } from 'express';
import { seesAllEntries } from '../audit/disclosure.js';
import { inclusionProof, withNodes } from '../audit/merkle.js';
import { isParty } from '../messages/handling.js';
import { DECISION_STATUSES, MESSAGE_TYPES, PRIORITIES } from '../envelope/types.js';
import { CasebridgeError } from '../errors.js';
import type { Principal } from '../pki/types.js';
import { LIFECYCLE_STATUSES, reviewView } from '../review/index.js';
import { threadOf } from '../messages/thread.js';
import type { ListQuery, MessageRecord } from '../messages/types.js';
import { visibleTo } from '../messages/visibility.js';
import { submitMessage } from '../submission/submit.js';
import { principalOf, requireRole } from './auth.js';
import type { HttpContext } from './context.js';
import { messageId, optEnum, optInt, optString } from './params.js';
import { rawBody } from './limits.js';
import { jwsFromBody, looksLikeJson, refusals, UNSIGNED_HINT } from './refusals.js';
import { proofSize } from './audit.js';

/** `status=`: a lifecycle status, `open` (all but decided) or `all` (protocol §5.1, §5.3). */
const STATUS_FILTERS = [...LIFECYCLE_STATUSES, 'open', 'all'] as const;
/** `decision=`: a decision, or `none` for messages without one. */
const DECISION_FILTERS = [...DECISION_STATUSES, 'none'] as const;
const READER_ROLES = ['system', 'officer'] as const;
const DEFAULT_PAGE = 50;
const MAX_PAGE = 200;

/**
 * The review state a reader sees at `now`; an expired claim shows as lapsed at
 * once, and the sweep is woken to record the lapse.
 */
export function reviewFields(ctx: HttpContext, m: MessageRecord) {
  const { stale, ...view } = reviewView(m, ctx.now());
  if (stale) ctx.claimExpiredSeen();
  return view;
}

/** A list item: routing metadata and review state, without the body. */
export function summary(ctx: HttpContext, m: MessageRecord) {
  const view = reviewFields(ctx, m);
  return {
    id: m.id,
    type: m.type,
    from: m.from,
    to: m.to,
    priority: m.priority,
    respondBy: m.respondBy,
    deadline: view.deadline,
    overdue: view.overdue,
    dueSoon: view.dueSoon,
    caseRef: m.caseRef,
    inReplyTo: m.inReplyTo,
    createdAt: m.createdAt,
    acceptedAt: m.acceptedAt,
    status: view.status,
    decision: view.decision,
    claim: view.claim,
    digest: m.digest,
    logIndex: m.logIndex,
    content: m.jws === null ? 'shredded' : 'available',
  };
}

/** The message `id` if the principal's agency may see it (protocol §5.3); else 404. */
export async function findVisible(
  ctx: HttpContext,
  id: string,
  p: Principal,
): Promise<MessageRecord> {
  const m = await ctx.store.getMessage(id);
  if (!visibleTo(m, p.agency)) throw new CasebridgeError('NOT_FOUND', 'no such message');
  return m;
}

export function messageRoutes(ctx: HttpContext): Router {
  const r = Router();

  const readJws = rawBody(ctx.maxBytes);
  r.post(
    '/v1/messages',
    (req: Request, res: Response, next: NextFunction) => {
      // protocol §3 check order: size first (the body parser), then the media type.
      readJws(req, res, (err?: unknown) => {
        if (err) return next(err);
        if (!req.is('application/jose')) {
          return next(
            new CasebridgeError(
              'UNSUPPORTED_MEDIA_TYPE',
              looksLikeJson(req.body)
                ? `${UNSIGNED_HINT}, and send the compact JWS as application/jose`
                : 'send the compact JWS as application/jose',
            ),
          );
        }
        next();
      });
    },
    async (req: Request, res: Response) => {
      const client = principalOf(res);
      const started = process.hrtime.bigint();
      const jws = jwsFromBody(req.body);
      const result = await submitMessage(jws, client, ctx.submission);
      if (result.status === 202) {
        ctx.metrics.accepted.inc({ type: result.type });
        ctx.metrics.acceptLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
      }
      res.status(result.status).location(`/v1/messages/${result.body.id}`).json(result.body);
    },
  );
  r.use('/v1/messages', refusals(ctx));

  const listHandler = (direction?: 'received' | 'sent') => async (req: Request, res: Response) => {
    const p = requireRole(res, READER_ROLES, 'reading messages');
    const q = req.query as Record<string, unknown>;
    const dir = direction ?? optEnum(q, 'direction', ['received', 'sent'] as const) ?? 'received';
    const query: ListQuery = {
      agency: p.agency,
      direction: dir,
      limit: optInt(q, 'limit', 1, MAX_PAGE) ?? DEFAULT_PAGE,
    };
    // The inbox shows what is still open unless asked otherwise; the general list shows all.
    const status = optEnum(q, 'status', STATUS_FILTERS) ?? (direction ? 'open' : 'all');
    const decision = optEnum(q, 'decision', DECISION_FILTERS);
    const type = optEnum(q, 'type', MESSAGE_TYPES);
    const priority = optEnum(q, 'priority', PRIORITIES);
    const cursor = optString(q, 'cursor');
    if (status !== 'all') query.status = status;
    if (decision) query.decision = decision;
    if (type) query.type = type;
    if (priority) query.priority = priority;
    if (cursor) query.cursor = cursor;
    const page = await ctx.store.list(query);
    res.json({ items: page.items.map((m) => summary(ctx, m)), nextCursor: page.nextCursor });
  };
  r.get('/v1/inbox', listHandler('received'));
  r.get('/v1/messages', listHandler());

  r.get('/v1/messages/:id', async (req: Request, res: Response) => {
    const p = requireRole(res, READER_ROLES, 'reading messages');
    const m = await findVisible(ctx, messageId(req.params['id']), p);
    const view = reviewFields(ctx, m);
    res.json({
      id: m.id,
      // Past the retention period the content is gone; the record and its proofs stay.
      ...(m.jws === null
        ? { content: 'shredded', shreddedAt: m.shreddedAt }
        : { content: 'available', envelope: m.envelope, jws: m.jws }),
      digest: m.digest,
      logIndex: m.logIndex,
      status: view.status,
      decision: view.decision,
      claim: view.claim,
      deadline: view.deadline,
      overdue: view.overdue,
      dueSoon: view.dueSoon,
      acceptedAt: m.acceptedAt,
      receipt: (JSON.parse(m.response) as { receipt: string }).receipt,
      history: await ctx.store.history(m.id),
    });
  });

  r.get('/v1/messages/:id/thread', async (req: Request, res: Response) => {
    const p = requireRole(res, READER_ROLES, 'reading messages');
    const start = await findVisible(ctx, messageId(req.params['id']), p);
    const items = await threadOf(ctx.store, start, p.agency);
    res.json({ items: items.map((m) => summary(ctx, m)) });
  });

  r.get('/v1/messages/:id/proof', async (req: Request, res: Response) => {
    const p = principalOf(res);
    const id = messageId(req.params['id']);
    const m = await ctx.store.getMessage(id);
    // Agencies see proofs of their own messages; auditors those whose entries they may read.
    const auditorMay =
      p.role === 'auditor' &&
      m !== undefined &&
      (seesAllEntries(p.agency, ctx.disclosure) || isParty(m, p.agency));
    if (!m || (!auditorMay && !visibleTo(m, p.agency))) {
      throw new CasebridgeError('NOT_FOUND', 'no such message');
    }
    const { size, checkpoint } = await proofSize(
      ctx,
      req.query as Record<string, unknown>,
      m.logIndex + 1,
    );
    const hashes = await withNodes(
      (src) => inclusionProof(m.logIndex, size, src),
      (c) => ctx.store.nodesAt(c),
    );
    const [leaf] = await ctx.store.entries(m.logIndex, m.logIndex + 1);
    res.json({
      index: m.logIndex,
      size,
      hashes: hashes.map((h) => h.toString('base64')),
      // The exact bytes of the message.accepted entry, so a client can hash the leaf itself.
      leaf: leaf?.bytes.toString('base64'),
      ...(checkpoint ? { checkpoint } : {}),
    });
  });

  return r;
}
