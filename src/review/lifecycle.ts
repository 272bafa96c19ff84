/**
 * The review lifecycle of a received message (protocol §5.1, §5.4, §5.5) as a pure
 * state machine: which states may be claimed, released or decided, who holds a
 * claim, when it lapses, and which decisions end it. No I/O; the store applies
 * the transitions this module returns, each with its history row and audit entry.
 */
import type { DecisionStatus } from '../envelope/types.js';

/** protocol §5.1: the state of a message at the gateway. */
export const LIFECYCLE_STATUSES = [
  'accepted',
  'queued',
  'delivered',
  'claimed',
  'decided',
] as const;
export type LifecycleStatus = (typeof LIFECYCLE_STATUSES)[number];

/** Decisions that end the review; the others keep the claim (protocol §5.4). */
export const FINAL_DECISIONS: readonly DecisionStatus[] = [
  'rejected',
  'executed',
  'partially-executed',
];

export function isFinal(decision: DecisionStatus): boolean {
  return FINAL_DECISIONS.includes(decision);
}

/** An officer, by certificate fingerprint and CN. */
export interface Person {
  subject: string;
  name: string;
}

export interface Claim extends Person {
  /** When the claim was taken. */
  at: string;
  /** When it lapses unless renewed (protocol §5.5). */
  expiresAt: string;
}

export interface ReviewState {
  status: LifecycleStatus;
  decision: DecisionStatus | null;
  claim: Claim | null;
}

export type ReviewAction =
  | { kind: 'claim'; officer: Person; ttlMs: number }
  | { kind: 'release'; officer: Person }
  | { kind: 'decide'; officer: Person; decision: DecisionStatus; ttlMs: number }
  /** The gateway's sweep: an expired claim lapses. */
  | { kind: 'lapse' }
  /** A `status.update` from the recipient agency answered the message (protocol §3, §5.1). */
  | { kind: 'answer'; decision: DecisionStatus };

/**
 * What happened. `noted` records a decision on a message the gateway never saw
 * delivered (an agency reading its broker queue itself): the decision field is
 * kept, the lifecycle and the audit log are untouched.
 */
export type ReviewEvent = 'claimed' | 'released' | 'lapsed' | 'decided' | 'noted';

export interface Transition {
  event: ReviewEvent;
  /** Who acts: the caller, or the gateway itself (a lapse). */
  by: 'caller' | 'gateway';
  decision?: DecisionStatus;
  next: ReviewState;
}

export type Refusal = 'not-delivered' | 'already-claimed' | 'not-claimed' | 'decided';

export interface ReviewResult {
  /** In order; a lapse found on the way comes first, even when the action is refused. */
  transitions: Transition[];
  refusal?: Refusal;
}

/** The claim as a reader should see it at `now`: an expired claim holds nothing. */
export function effectiveState(state: ReviewState, now: Date): ReviewState {
  return lapseOf(state, now)?.next ?? state;
}

export function claimExpired(claim: Claim, now: Date): boolean {
  return Date.parse(claim.expiresAt) <= now.getTime();
}

function lapseOf(state: ReviewState, now: Date): Transition | undefined {
  if (state.status !== 'claimed' || state.claim === null || !claimExpired(state.claim, now)) {
    return undefined;
  }
  return {
    event: 'lapsed',
    by: 'gateway',
    next: { status: 'delivered', decision: state.decision, claim: null },
  };
}

function holds(state: ReviewState, officer: Person): boolean {
  return state.status === 'claimed' && state.claim?.subject === officer.subject;
}

function claimFor(officer: Person, now: Date, ttlMs: number, since?: string): Claim {
  return {
    subject: officer.subject,
    name: officer.name,
    at: since ?? now.toISOString(),
    expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
  };
}

/** Applies `action` to `state` at `now`. */
export function review(state: ReviewState, action: ReviewAction, now: Date): ReviewResult {
  const lapse = lapseOf(state, now);
  const cur = lapse?.next ?? state;
  const before = lapse ? [lapse] : [];
  const refuse = (refusal: Refusal): ReviewResult => ({ transitions: before, refusal });
  const then = (t: Transition): ReviewResult => ({ transitions: [...before, t] });

  switch (action.kind) {
    case 'lapse':
      return { transitions: before };

    case 'claim':
      if (cur.status === 'decided') return refuse('decided');
      if (cur.status === 'accepted' || cur.status === 'queued') return refuse('not-delivered');
      if (cur.status === 'claimed' && !holds(cur, action.officer)) return refuse('already-claimed');
      // Claiming again by the holder renews the claim.
      return then({
        event: 'claimed',
        by: 'caller',
        next: {
          status: 'claimed',
          decision: cur.decision,
          claim: claimFor(action.officer, now, action.ttlMs),
        },
      });

    case 'release':
      if (!holds(cur, action.officer)) return refuse('not-claimed');
      return then({
        event: 'released',
        by: 'caller',
        next: { status: 'delivered', decision: cur.decision, claim: null },
      });

    case 'decide': {
      if (cur.status === 'decided') return refuse('decided');
      if (!holds(cur, action.officer)) return refuse('not-claimed');
      const final = isFinal(action.decision);
      return then({
        event: 'decided',
        by: 'caller',
        decision: action.decision,
        next: final
          ? { status: 'decided', decision: action.decision, claim: null }
          : {
              status: 'claimed',
              decision: action.decision,
              // A non-final decision keeps the claim, renewed: the officer is at work on it.
              claim: claimFor(action.officer, now, action.ttlMs, cur.claim?.at),
            },
      });
    }

    case 'answer': {
      const decision = action.decision;
      if (cur.status === 'accepted' || cur.status === 'queued') {
        return then({ event: 'noted', by: 'caller', decision, next: { ...cur, decision } });
      }
      // The latest answer is the decision; a final one ends any claim.
      const final = cur.status === 'decided' || isFinal(decision);
      return then({
        event: 'decided',
        by: 'caller',
        decision,
        next: final
          ? { status: 'decided', decision, claim: null }
          : { status: cur.status, decision, claim: cur.claim },
      });
    }
  }
}

/**
 * The delivery steps (protocol §5.2) a message in `status` takes when the broker
 * confirms it (`confirmed`) or its inbox records it (`delivered`). The broker's
 * confirm and the consumer race, so each event brings the steps still missing,
 * in order, and nothing once the message is past them.
 */
export function deliverySteps(
  status: LifecycleStatus,
  event: 'confirmed' | 'delivered',
): ('queued' | 'delivered')[] {
  if (event === 'confirmed') return status === 'accepted' ? ['queued'] : [];
  if (status === 'accepted') return ['queued', 'delivered'];
  return status === 'queued' ? ['delivered'] : [];
}
