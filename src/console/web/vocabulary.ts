/**
 * The protocol's closed vocabularies the page shows in words (protocol §2.2, §2.3,
 * §4, §5.1): each value has a catalog entry `<family>.<value>` in every locale.
 */
export const MESSAGE_TYPES = [
  'evidence.request',
  'evidence.transfer',
  'funds.freeze',
  'suspect.handover',
  'status.update',
];
export const PRIORITIES = ['emergency', 'urgent', 'routine'];
export const LIFECYCLE = [
  'open',
  'all',
  'accepted',
  'queued',
  'delivered',
  'claimed',
  'decided',
  'released',
  'lapsed',
];
export const DECISIONS = [
  'received',
  'accepted',
  'in-progress',
  'needs-info',
  'rejected',
  'executed',
  'partially-executed',
];
export const ROLES = ['system', 'officer', 'auditor', 'gateway'];
export const HANDLING = ['H0', 'H1', 'H2', 'H3'];
export const OFFENCES = ['telecom-fraud', 'online-fraud', 'money-laundering', 'other'];
export const ITEM_KINDS = [
  'call-records',
  'subscriber-info',
  'bank-transactions',
  'account-info',
  'entry-exit-records',
  'device-data',
  'ip-logs',
  'other',
];
export const IDENTIFIER_TYPES = [
  'msisdn',
  'imei',
  'imsi',
  'ip',
  'email',
  'account',
  'iban',
  'passport',
  'national-id',
  'other',
];
export const CUSTODY_ACTIONS = [
  'collected',
  'acquired',
  'sealed',
  'transferred',
  'received',
  'copied',
];
export const DOCUMENT_TYPES = ['passport', 'national-id', 'other'];
/** The problem codes (protocol §4) an officer or auditor can meet in the console. */
export const CONSOLE_ERRORS = [
  'CLIENT_CERT_REQUIRED',
  'CLIENT_CERT_UNTRUSTED',
  'FORBIDDEN_ROLE',
  'NOT_FOUND',
  'ALREADY_CLAIMED',
  'NOT_CLAIMED',
  'ALREADY_DECIDED',
  'NOT_DELIVERED',
  'SCHEMA_INVALID',
  'INVALID_PARAMETER',
  'CROSS_SITE_REFUSED',
  'RATE_LIMITED',
  'UNAVAILABLE',
  'INTERNAL',
];
