/** protocol §2.2 */
export const MESSAGE_TYPES = [
  'evidence.request',
  'evidence.transfer',
  'funds.freeze',
  'suspect.handover',
  'status.update',
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

export const PRIORITIES = ['emergency', 'urgent', 'routine'] as const;
export type Priority = (typeof PRIORITIES)[number];

/** Message types whose envelope must carry `inReplyTo` (protocol §2.2). */
export const REPLY_TYPES: readonly MessageType[] = ['evidence.transfer', 'status.update'];

/** protocol §2.3 `status.update` statuses: the decision on the message it answers (protocol §5.1). */
export const DECISION_STATUSES = [
  'received',
  'accepted',
  'rejected',
  'needs-info',
  'in-progress',
  'executed',
  'partially-executed',
] as const;
export type DecisionStatus = (typeof DECISION_STATUSES)[number];

export interface Envelope {
  id: string;
  type: MessageType;
  version: 1;
  from: string;
  to: string;
  createdAt: string;
  caseRef: string;
  inReplyTo?: string;
  priority: Priority;
  respondBy?: string;
  handling?: 'H0' | 'H1' | 'H2' | 'H3';
  body: Record<string, unknown>;
}

/** JWS `typ` values (protocol §2.1, §3). */
export const MESSAGE_TYP = 'casebridge-message+jws';
export const RECEIPT_TYP = 'casebridge-receipt+jws';

/** protocol §2.1: the only signature algorithms accepted. */
export const ALLOWED_ALGS = ['ES256', 'ES384', 'PS256', 'EdDSA'] as const;
export type AllowedAlg = (typeof ALLOWED_ALGS)[number];

/** protocol §3: the payload of a receipt. */
export interface ReceiptPayload {
  messageId: string;
  digest: string;
  logIndex: number;
  acceptedAt: string;
  from: string;
  to: string;
  type: MessageType;
}
