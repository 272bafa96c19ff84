/** Review (protocol §5.4, §5.5): the lifecycle rules, deadlines, and the use cases on them. */
export {
  assertReviewer,
  authorizeDecision,
  claimMessage,
  personOf,
  refusalError,
  releaseMessage,
  type ReviewDeps,
} from './claim.js';
export { decide, parseDecisionRequest, type DecideDeps, type DecisionRequest } from './decide.js';
export { reviewView, type ReviewView } from './view.js';
export {
  FINAL_DECISIONS,
  LIFECYCLE_STATUSES,
  isFinal,
  type Claim,
  type LifecycleStatus,
} from './lifecycle.js';
export { deadlineOf, deadlineFlags, DUE_SOON_SHARE } from './deadlines.js';
