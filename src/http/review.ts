import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { CasebridgeError } from '../errors.js';
import {
  authorizeDecision,
  claimMessage,
  decide,
  parseDecisionRequest,
  releaseMessage,
} from '../review/index.js';
import { requireRole } from './auth.js';
import type { HttpContext } from './context.js';
import { findVisible, summary } from './messages.js';
import { messageId } from './params.js';

const DECISION_LIMIT = 64 * 1024;

/** protocol §5.4: officers of the recipient agency claim, release and decide. */
export function reviewRoutes(ctx: HttpContext): Router {
  const r = Router();

  const target = async (req: Request, res: Response) => {
    const officer = requireRole(res, ['officer'], 'reviewing messages');
    const m = await findVisible(ctx, messageId(req.params['id']), officer);
    return { officer, m };
  };

  r.post('/v1/messages/:id/claim', async (req: Request, res: Response) => {
    const { officer, m } = await target(req, res);
    res.json(summary(ctx, await claimMessage(m, officer, ctx.review)));
  });

  r.post('/v1/messages/:id/release', async (req: Request, res: Response) => {
    const { officer, m } = await target(req, res);
    res.json(summary(ctx, await releaseMessage(m, officer, ctx.review)));
  });

  const readBody = express.text({ type: () => true, limit: DECISION_LIMIT });
  r.post(
    '/v1/messages/:id/decision',
    // Role, recipient agency and the caller's own claim hold before a byte of the body is read.
    async (req: Request, res: Response, next: NextFunction) => {
      const { officer, m } = await target(req, res);
      authorizeDecision(m, officer, ctx.now());
      if (!req.is('application/json')) {
        throw new CasebridgeError(
          'UNSUPPORTED_MEDIA_TYPE',
          'send the decision as application/json',
        );
      }
      res.locals['review'] = { officer, m };
      readBody(req, res, next);
    },
    async (req: Request, res: Response) => {
      const { officer, m } = res.locals['review'] as Awaited<ReturnType<typeof target>>;
      const request = parseDecisionRequest(
        ctx.submission.parseJson(typeof req.body === 'string' ? req.body : ''),
        ctx.review,
      );
      const { outcome, update, record } = await decide(m, request, officer, ctx.review);
      res
        .status(202)
        .location(`/v1/messages/${update.id}`)
        .json({ ...outcome.response, decided: summary(ctx, record) });
    },
  );

  return r;
}
