import { randomUUID } from 'node:crypto';
import { digestOf } from '../envelope/jws.js';
import { signMessage } from '../envelope/sign.js';
import { DECISION_STATUSES, type DecisionStatus, type Envelope } from '../envelope/types.js';
import { CasebridgeError, type ValidationIssue } from '../errors.js';
import type { Principal } from '../pki/types.js';
import type { AcceptOutcome, MessageRecord } from '../store/types.js';
import { actorOf, receiptMaker, type SubmissionDeps } from '../submission/submit.js';

export interface DecisionRequest {
  status: DecisionStatus;
  reason?: string;
}

const MAX_REASON = 4000;

/** Validates the body of `POST /v1/messages/{id}/decision`; problems are data. */
export function parseDecisionRequest(value: unknown): DecisionRequest {
  const issues: ValidationIssue[] = [];
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CasebridgeError('SCHEMA_INVALID', 'the decision must be a JSON object', {
      errors: [{ path: '', keyword: 'type', message: 'must be object' }],
    });
  }
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) {
    if (k !== 'status' && k !== 'reason') {
      issues.push({
        path: '',
        keyword: 'additionalProperties',
        message: 'must NOT have additional properties',
      });
    }
  }
  const status = v['status'];
  if (typeof status !== 'string' || !(DECISION_STATUSES as readonly string[]).includes(status)) {
    issues.push({
      path: '/status',
      keyword: 'enum',
      message: `must be one of ${DECISION_STATUSES.join(', ')}`,
    });
  }
  const reason = v['reason'];
  if (
    reason !== undefined &&
    (typeof reason !== 'string' || reason.length === 0 || reason.length > MAX_REASON)
  ) {
    issues.push({
      path: '/reason',
      keyword: 'maxLength',
      message: `must be a string of 1..${MAX_REASON}`,
    });
  }
  if ((status === 'rejected' || status === 'needs-info') && reason === undefined) {
    issues.push({
      path: '/reason',
      keyword: 'required',
      message: 'is required when rejecting or asking for information',
    });
  }
  if (issues.length > 0) {
    throw new CasebridgeError('SCHEMA_INVALID', 'the decision is not valid', { errors: issues });
  }
  return { status: status as DecisionStatus, ...(typeof reason === 'string' ? { reason } : {}) };
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
  deps: SubmissionDeps,
): Promise<{ original: MessageRecord; outcome: AcceptOutcome; update: Envelope }> {
  const now = deps.now();
  const update: Envelope = {
    id: randomUUID(),
    type: 'status.update',
    version: 1,
    from: original.to,
    to: original.from,
    createdAt: now.toISOString(),
    caseRef: original.envelope.caseRef,
    inReplyTo: original.id,
    priority: original.priority,
    body: {
      status: request.status,
      ...(request.reason === undefined ? {} : { reason: request.reason }),
      decidedBy: { subject: officer.subject, name: officer.name },
    },
  };
  const issues = deps.validateEnvelope(update);
  if (issues)
    throw new CasebridgeError(
      'SCHEMA_INVALID',
      'the decision does not make a valid status.update',
      { errors: issues },
    );
  if (!deps.registry.permits(update.from, update.to, update.type, now)) {
    throw new CasebridgeError(
      'NOT_PERMITTED',
      'no valid agreement covers a status.update between these agencies',
    );
  }
  const jws = signMessage(update, deps.gateway);
  const digest = digestOf(jws);
  const outcome = await deps.store.decide(
    original.id,
    request.status,
    actorOf(officer),
    { id: update.id, digest, jws, envelope: update, actor: actorOf(officer) },
    receiptMaker(update, digest, deps.gateway),
  );
  if (outcome.kind === 'accepted') deps.onAccepted?.(update.id);
  return { original, outcome, update };
}
