/**
 * Review use cases (protocol §5.4, §5.5): claim and release, and the checks a
 * decision passes before its body is read. The store applies the rules of
 * lifecycle.ts atomically and answers with an outcome; this module picks the code.
 */
import { CasebridgeError } from '../errors.js';
import type { Principal } from '../pki/types.js';
import type { HistoryActor, MessageRecord } from '../messages/types.js';
import type { ReviewOutcome, ReviewPort } from './ports.js';
import { actorOf } from '../submission/submit.js';
import { effectiveState, type Refusal } from './lifecycle.js';

export interface ReviewDeps {
  store: Pick<ReviewPort, 'review' | 'decide'>;
  /** protocol §5.5 `CASEBRIDGE_CLAIM_TTL_S`, in ms. */
  claimTtlMs: number;
  now: () => Date;
}

/** The caller as a history actor: certificate fingerprint and CN. */
export function personOf(p: Principal): HistoryActor {
  return { ...actorOf(p), name: p.name };
}

/** protocol §1.4, §5.4: only officers of the recipient agency review a message. */
export function assertReviewer(m: MessageRecord, p: Principal): void {
  if (p.role !== 'officer' || m.to !== p.agency) {
    throw new CasebridgeError(
      'FORBIDDEN_ROLE',
      'only officers of the recipient agency review a message',
    );
  }
}

export function refusalError(refusal: Refusal): CasebridgeError {
  switch (refusal) {
    case 'not-delivered':
      return new CasebridgeError('NOT_DELIVERED', 'the message has not reached the inbox yet');
    case 'already-claimed':
      return new CasebridgeError('ALREADY_CLAIMED', 'another officer holds this message');
    case 'not-claimed':
      return new CasebridgeError('NOT_CLAIMED', 'you do not hold a claim on this message');
    case 'decided':
      return new CasebridgeError('ALREADY_DECIDED', 'the message has a final decision');
  }
}

function settled(outcome: ReviewOutcome): MessageRecord {
  switch (outcome.kind) {
    case 'done':
      return outcome.record;
    case 'refused':
      throw refusalError(outcome.refusal);
    case 'unknown':
      throw new CasebridgeError('NOT_FOUND', 'no such message');
  }
}

export async function claimMessage(
  m: MessageRecord,
  officer: Principal,
  deps: ReviewDeps,
): Promise<MessageRecord> {
  assertReviewer(m, officer);
  const person = personOf(officer);
  const outcome = await deps.store.review(
    m.id,
    {
      kind: 'claim',
      officer: { subject: person.subject, name: officer.name },
      ttlMs: deps.claimTtlMs,
    },
    person,
  );
  return settled(outcome);
}

export async function releaseMessage(
  m: MessageRecord,
  officer: Principal,
  deps: ReviewDeps,
): Promise<MessageRecord> {
  assertReviewer(m, officer);
  const person = personOf(officer);
  const outcome = await deps.store.review(
    m.id,
    { kind: 'release', officer: { subject: person.subject, name: officer.name } },
    person,
  );
  return settled(outcome);
}

/**
 * Everything a decision needs before its body is read: the role, the recipient
 * agency and the caller's own live claim (protocol §5.4).
 */
export function authorizeDecision(m: MessageRecord, officer: Principal, now: Date): void {
  assertReviewer(m, officer);
  const state = effectiveState(m, now);
  if (state.status === 'decided') throw refusalError('decided');
  if (state.status !== 'claimed' || state.claim?.subject !== officer.subject) {
    throw refusalError('not-claimed');
  }
}
