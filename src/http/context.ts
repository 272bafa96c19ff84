import type { KeyObject } from 'node:crypto';
import type { DisclosurePolicy } from '../audit/disclosure.js';
import type { SigningIdentity } from '../envelope/sign.js';
import type { Metrics } from '../ops/metrics.js';
import type { Logger } from '../ops/logger.js';
import type { EventHub } from '../review/events.js';
import type { DecideDeps } from '../review/index.js';
import type { AuditLog, AuditLogReader, CheckpointStore } from '../audit/types.js';
import type { MessageReader } from '../messages/types.js';
import type { SubmissionDeps } from '../submission/submit.js';
import type { ChainVerifier } from './auth.js';
import type { InFlightLimits } from './limits.js';
import type { RateLimiter } from './rate.js';
import type { FileRoutesDeps } from './files.js';
import type { X509Certificate } from 'node:crypto';

/** What the routes read directly; every change goes through a use case. */
export type HttpStore = MessageReader & AuditLogReader & CheckpointStore & Pick<AuditLog, 'append'>;

/** Everything the HTTP layer needs, built once by the composition root. */
export interface HttpContext {
  store: HttpStore;
  submission: SubmissionDeps;
  /** Claims and decisions (protocol §5.4, §5.5). */
  review: DecideDeps;
  /** Subscribers of `GET /v1/events`. */
  events: EventHub;
  /** A reader met a claim past its lapse time: wake the sweep that records it. */
  claimExpiredSeen(): void;
  /** Period of `: ping` comments on the event stream. */
  heartbeatMs: number;
  verifyClient: ChainVerifier;
  gateway: SigningIdentity & { id: string };
  log: {
    origin: string;
    vkey: string;
    publicKey: KeyObject;
  };
  trustAnchors: () => X509Certificate[];
  metrics: Metrics;
  logger: Logger;
  maxBytes: number;
  /** protocol §12 bounds in flight. */
  limits: InFlightLimits;
  /** protocol §12 submissions per principal. */
  rateLimiter: RateLimiter;
  /** Agencies whose auditors may export message contents (protocol §6.4 `messages=true`). */
  exportGrant: ReadonlySet<string>;
  /** Who reads which audit entries' metadata (docs/auditing.md, "Who sees what"). */
  disclosure: DisclosurePolicy;
  now: () => Date;
  /** The configured listen address, for the OpenAPI `servers` entry (port 0: the bound one). */
  listen: { host: string; port: number };
  /** Evidence files (protocol §9). */
  files: FileRoutesDeps;
  /** JSON Schema documents by file name, for the OpenAPI document. */
  schemas: Record<string, object>;
}
