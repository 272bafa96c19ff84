import type { DecisionStatus } from '../envelope/types.js';
import type { MessageRecord } from '../messages/types.js';
import { deadlineFlags } from './deadlines.js';
import { effectiveState, type Claim } from './lifecycle.js';

/** What a reader sees of a message's review at `now` (protocol §5.1, §5.5). */
export interface ReviewView {
  status: MessageRecord['status'];
  decision: DecisionStatus | null;
  claim: Claim | null;
  deadline: string | null;
  overdue: boolean;
  dueSoon: boolean;
}

/** An expired claim is shown as lapsed even before the sweep has recorded it. */
export function reviewView(m: MessageRecord, now: Date): ReviewView & { stale: boolean } {
  const state = effectiveState(m, now);
  const flags = deadlineFlags({ ...m, status: state.status }, now);
  return {
    status: state.status,
    decision: state.decision,
    claim: state.claim,
    deadline: m.deadline,
    ...flags,
    stale: state !== m,
  };
}
