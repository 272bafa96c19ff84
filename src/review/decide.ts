import { randomUUID } from 'node:crypto';
import { digestOf } from '../envelope/jws.js';
import { envelopeDigest } from '../messages/replay.js';
import { signMessage } from '../envelope/sign.js';
import type { DecisionStatus, Envelope } from '../envelope/types.js';
import { CasebridgeError, type ValidationIssue } from '../errors.js';
import type { Principal } from '../pki/types.js';
import type { MessageRecord } from '../messages/types.js';
import type { AcceptOutcome } from '../submission/ports.js';
import { actorOf, receiptMaker, type SubmissionDeps } from '../submission/submit.js';
import { refusalError, type ReviewDeps } from './claim.js';

/** The body of `POST /v1/messages/{id}/decision`, as schemas/decision.schema.json admits it. */
export interface DecisionRequest {
  status: DecisionStatus;
  reason?: string;
  partnerCaseRef?: string;
  expectedBy?: string;
}

export interface DecideDeps extends ReviewDeps {
  submission: SubmissionDeps;
  /** schemas/decision.schema.json, compiled at start. */
  validateDecision(value: unknown): ValidationIssue[] | null;
}

/** Validates a parsed decision body; problems are data (protocol §4 `errors`). */
export function parseDecisionRequest(value: unknown, deps: DecideDeps): DecisionRequest {
  const issues = deps.validateDecision(value);
  if (issues) {
    throw new CasebridgeError('SCHEMA_INVALID', 'the decision is not valid', { errors: issues });
  }
  return value as DecisionRequest;
}

/**
 * protocol §5.4: the gateway issues a status.update from the recipient agency to the
 * sender, signed with its own certificate on the officer's behalf, and records the
 * decision and the new message in one transaction.
 */
export async function decide(
  original: MessageRecord,
  request: DecisionRequest,
  officer: Principal,
  deps: DecideDeps,
): Promise<{
  outcome: Extract<AcceptOutcome, { kind: 'accepted' }>;
  update: Envelope;
  record: MessageRecord;
}> {
  const sub = deps.submission;
  const now = sub.now();
  const update: Envelope = {
    id: randomUUID(),
    type: 'status.update',
    version: 1,
    from: original.to,
    to: original.from,
    createdAt: now.toISOString(),
    caseRef: original.caseRef,
    inReplyTo: original.id,
    priority: original.priority,
    body: {
      status: request.status,
      ...(request.reason === undefined ? {} : { reason: request.reason }),
      ...(request.partnerCaseRef === undefined ? {} : { partnerCaseRef: request.partnerCaseRef }),
      ...(request.expectedBy === undefined ? {} : { expectedBy: request.expectedBy }),
      decidedBy: { subject: officer.subject, name: officer.name },
    },
  };
  const issues = sub.validateEnvelope(update);
  if (issues)
    throw new CasebridgeError(
      'SCHEMA_INVALID',
      'the decision does not make a valid status.update',
      { errors: issues },
    );
  if (!sub.registry.permits(update.from, update.to, update.type, now)) {
    throw new CasebridgeError(
      'NOT_PERMITTED',
      'no valid agreement covers a status.update between these agencies',
    );
  }
  const jws = signMessage(update, sub.gateway);
  const digest = digestOf(jws);
  const actor = { ...actorOf(officer), name: officer.name };
  const { review, accept } = await deps.store.decide(
    original.id,
    {
      kind: 'decide',
      officer: { subject: officer.subject, name: officer.name },
      decision: request.status,
      ttlMs: deps.claimTtlMs,
    },
    actor,
    { id: update.id, digest, envelopeDigest: envelopeDigest(update), jws, envelope: update, actor },
    receiptMaker(update, digest, sub.gateway),
  );
  if (review.kind === 'unknown') throw new CasebridgeError('NOT_FOUND', 'no such message');
  if (review.kind === 'refused') throw refusalError(review.refusal);
  if (accept === undefined || accept.kind !== 'accepted') {
    throw new CasebridgeError('INTERNAL', 'the decision could not be recorded');
  }
  sub.onAccepted?.(update.id);
  return { outcome: accept, update, record: review.record };
}
