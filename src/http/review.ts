import express, { Router, type Request, type Response } from 'express';
import { CasebridgeError } from '../errors.js';
import { decide, parseDecisionRequest } from '../review/decide.js';
import { actorOf } from '../submission/submit.js';
import { requireRole } from './auth.js';
import type { HttpContext } from './context.js';
import { findVisible } from './messages.js';
import { messageId } from './params.js';

const DECISION_LIMIT = 64 * 1024;

/** protocol §5.4: officers of the recipient agency claim, release and decide. */
export function reviewRoutes(ctx: HttpContext): Router {
  const r = Router();

  const recipientMessage = (req: Request, res: Response) => {
    const officer = requireRole(res, ['officer'], 'reviewing messages');
    const m = findVisible(ctx, messageId(req.params['id']), officer);
    if (m.to !== officer.agency) {
      throw new CasebridgeError(
        'FORBIDDEN_ROLE',
        'only officers of the recipient agency review a message',
      );
    }
    return { officer, m };
  };

  r.post('/v1/messages/:id/claim', async (req: Request, res: Response) => {
    const { officer, m } = recipientMessage(req, res);
    const outcome = await ctx.store.claim(m.id, actorOf(officer));
    switch (outcome) {
      case 'claimed':
        break;
      case 'already-claimed':
        if (m.claimedBy === officer.subject) break;
        throw new CasebridgeError('ALREADY_CLAIMED', 'another officer holds this message');
      case 'not-delivered':
        throw new CasebridgeError('NOT_DELIVERED', 'the message has not reached the inbox yet');
      case 'decided':
        throw new CasebridgeError('ALREADY_DECIDED', 'the message has a final decision');
      case 'unknown':
        throw new CasebridgeError('NOT_FOUND', 'no such message');
    }
    res.json({ id: m.id, status: 'claimed', claimedBy: officer.subject });
  });

  r.post('/v1/messages/:id/release', async (req: Request, res: Response) => {
    const { officer, m } = recipientMessage(req, res);
    const outcome = await ctx.store.release(m.id, actorOf(officer));
    if (outcome === 'not-claimed')
      throw new CasebridgeError('NOT_CLAIMED', 'you do not hold a claim on this message');
    res.json({ id: m.id, status: ctx.store.getMessage(m.id)?.status });
  });

  r.post(
    '/v1/messages/:id/decision',
    express.text({ type: () => true, limit: DECISION_LIMIT }),
    async (req: Request, res: Response) => {
      const { officer, m } = recipientMessage(req, res);
      if (!req.is('application/json')) {
        throw new CasebridgeError(
          'UNSUPPORTED_MEDIA_TYPE',
          'send the decision as application/json',
        );
      }
      if (m.claimedBy !== officer.subject) {
        throw new CasebridgeError('NOT_CLAIMED', 'claim the message before deciding');
      }
      const request = parseDecisionRequest(
        ctx.submission.parseJson(typeof req.body === 'string' ? req.body : ''),
      );
      const { outcome, update } = await decide(m, request, officer, ctx.submission);
      if (outcome.kind !== 'accepted')
        throw new CasebridgeError('INTERNAL', 'the decision could not be recorded');
      res
        .status(202)
        .location(`/v1/messages/${update.id}`)
        .json({ ...outcome.response, decided: { id: m.id, status: request.status } });
    },
  );

  return r;
}
