/**
 * The casebridge SDK (`import { CasebridgeClient } from 'casebridge/sdk'`): a typed
 * client for the HTTPS API and the checks an integrator runs on its answers.
 */
export {
  CasebridgeClient,
  type AcceptResponse,
  type BatchOutcome,
  type ClientOptions,
  type HistoryItem,
  type HttpResult,
  type ListQuery,
  type MessageDetail,
  type MessagePage,
  type MessageSummary,
  type SubmitResult,
} from './client.js';
export {
  ApiError,
  TransportError,
  VerificationError,
  type CheckFailure,
  type ProblemBody,
} from './errors.js';
export { verifyInclusionProof, verifyReceipt, type InclusionProof } from './verify.js';
export type { Envelope, MessageType, Priority, ReceiptPayload } from '../envelope/types.js';
