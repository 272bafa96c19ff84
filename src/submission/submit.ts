import { verifyMessageJws, type SigningIdentity, type VerifyDeps } from '../envelope/index.js';
import { signReceipt } from '../envelope/sign.js';
import { signingTimeDetail, signingTimeOf, signingTimeProblem } from '../envelope/profile.js';
import { CasebridgeError, type ErrorCode } from '../errors.js';
import type { Principal } from '../pki/types.js';
import type { AuditLog } from '../audit/types.js';
import type { MessageReader } from '../messages/types.js';
import type { AcceptPort, AcceptResponse, ReceiptFields, ReceiptMaker } from './ports.js';
import type { Envelope } from '../envelope/types.js';
import type { AuditActor } from '../audit/types.js';
import { classifyResubmission, envelopeDigest, messageLocation } from '../messages/replay.js';
import { replyRefusal } from '../messages/handling.js';
import { requireUploadedFiles } from '../files/binding.js';
import type { FileBinding, FileIndex } from '../files/types.js';

/** The registry questions submission asks (protocol §1.3). */
export interface AgreementPolicy {
  hasAgency(id: string): boolean;
  permits(from: string, to: string, type: string, at: Date): boolean;
}

export interface SubmissionDeps extends VerifyDeps {
  store: AcceptPort & Pick<MessageReader, 'getMessage'>;
  registry: AgreementPolicy;
  gateway: SigningIdentity;
  /** protocol §2.2 `createdAt` may be at most this far in the future. */
  clockSkewMs: number;
  /** protocol §2.2 `createdAt` may be at most this far in the past (CASEBRIDGE_MAX_AGE_S). */
  maxAgeMs: number;
  /** Completed uploads, which evidence.transfer items must name (protocol §9.2). */
  files: Pick<FileIndex, 'storedFile'>;
  /** Wakes the transport after a commit. */
  onAccepted?: (messageId: string) => void;
}

export interface SubmitResult {
  status: 200 | 202;
  body: AcceptResponse;
  type: Envelope['type'];
}

const SUBMITTER_ROLES = new Set(['system', 'officer']);

export function actorOf(p: Principal): AuditActor {
  return { agency: p.agency, role: p.role, subject: p.subject };
}

/** The receipt for an accepted message, signed inside the acceptance transaction. */
export function receiptMaker(
  env: Pick<Envelope, 'id' | 'from' | 'to' | 'type'>,
  digest: string,
  gateway: SigningIdentity,
): ReceiptMaker {
  return receiptMakerOf(
    { messageId: env.id, digest, from: env.from, to: env.to, type: env.type },
    gateway,
  );
}

export function receiptMakerOf(fields: ReceiptFields, gateway: SigningIdentity): ReceiptMaker {
  const make = (logIndex: number, acceptedAt: string) =>
    signReceipt(
      {
        messageId: fields.messageId,
        digest: fields.digest,
        logIndex,
        acceptedAt,
        from: fields.from,
        to: fields.to,
        type: fields.type,
      },
      gateway,
    );
  return Object.assign(make, { fields });
}

/**
 * protocol §3: every check in the the protocol's order, then a durable accept. `client` is the
 * principal of the TLS connection.
 */
/**
 * Where a submission takes its place in the store's queue of writes. Lines of one
 * batch are checked concurrently, and their checks read the store, which may answer
 * out of order; a turn makes their acceptances reach the store in input order, so
 * of two lines with one id the earlier is the one accepted.
 */
export interface AcceptTurn {
  /** Resolves when every earlier line has handed its write to the store, or failed. */
  wait(): Promise<void>;
  /** This line has handed its write to the store, or will not. */
  done(): void;
}

export async function submitMessage(
  jws: string,
  client: Principal,
  deps: SubmissionDeps,
  turn?: AcceptTurn,
): Promise<SubmitResult> {
  const { envelope: env, signer, digest } = verifyMessageJws(jws, deps);

  if (env.to === env.from) {
    throw new CasebridgeError('SCHEMA_INVALID', 'to must differ from from', {
      errors: [{ path: '/to', keyword: 'not', message: 'must differ from /from' }],
    });
  }
  if (env.type === 'status.update' && 'decidedBy' in env.body) {
    // decidedBy names an officer on whose behalf the gateway signed (protocol §5.4).
    throw new CasebridgeError('SCHEMA_INVALID', 'decidedBy is set only by the gateway', {
      errors: [{ path: '/body/decidedBy', keyword: 'gatewayOnly', message: 'must not be present' }],
    });
  }

  if (signer.agency !== env.from) {
    throw new CasebridgeError('SENDER_MISMATCH', 'from must equal the signer certificate O');
  }
  if (client.agency !== env.from) {
    throw new CasebridgeError('SENDER_MISMATCH', 'from must equal the TLS client certificate O');
  }
  if (!SUBMITTER_ROLES.has(client.role) || !SUBMITTER_ROLES.has(signer.role)) {
    throw new CasebridgeError('FORBIDDEN_ROLE', 'only system and officer principals may submit');
  }

  const envDigest = envelopeDigest(env);
  let files: FileBinding | undefined;
  try {
    files = await checkDeliverable(env, signer, deps);
  } catch (e) {
    // protocol §3: a replay is answered once identity and role hold, whatever has
    // expired or gone stale since, so a retrying client always gets its receipt back.
    // Asked only when a check refuses: otherwise the acceptance transaction tells a
    // replay by the same rule, and a new message costs no extra store read.
    const prior = await deps.store.recorded(env.id);
    if (prior !== undefined && classifyResubmission(prior, envDigest) === 'replay') {
      return { status: 200, body: prior.response, type: env.type };
    }
    throw e;
  }

  // Idempotency (the last check) is decided inside the acceptance transaction, so
  // two copies of one message racing each other are accepted once.
  await turn?.wait();
  const accepting = deps.store.accept(
    // The CN goes to the message history, shown to the two agencies; never to the audit log.
    {
      id: env.id,
      digest,
      envelopeDigest: envDigest,
      jws,
      envelope: env,
      actor: { ...actorOf(client), name: client.name },
      ...(files === undefined ? {} : { files }),
    },
    receiptMaker(env, digest, deps.gateway),
  );
  turn?.done();
  const outcome = await accepting;
  switch (outcome.kind) {
    case 'accepted':
      deps.onAccepted?.(env.id);
      return { status: 202, body: outcome.response, type: env.type };
    case 'replay':
      return { status: 200, body: outcome.response, type: env.type };
    case 'conflict':
      throw new CasebridgeError(
        'ID_CONFLICT',
        'this id was already used for a different envelope; choose a new id',
        { members: { digest: outcome.digest, location: messageLocation(env.id) } },
      );
  }
}

/**
 * The checks after identity and role, in the protocol's order: a registered
 * recipient, an agreement, a fresh signing time, a known parent, uploaded files.
 * Returns the files an evidence.transfer binds.
 */
async function checkDeliverable(
  env: Envelope,
  signer: Principal,
  deps: SubmissionDeps,
): Promise<FileBinding | undefined> {
  const now = deps.now();
  if (!deps.registry.hasAgency(env.to)) {
    throw new CasebridgeError('NOT_PERMITTED', 'the recipient is not a registered agency');
  }
  if (!deps.registry.permits(env.from, env.to, env.type, now)) {
    throw new CasebridgeError(
      'NOT_PERMITTED',
      'no agreement between these two agencies covers this message type now',
    );
  }
  // protocol §2.2: the signer chain was valid at createdAt too, and createdAt is fresh.
  const late = signingTimeProblem(signingTimeOf(env.createdAt), signer.validity, {
    now: now.getTime(),
    skewMs: deps.clockSkewMs,
    maxAgeMs: deps.maxAgeMs,
  });
  if (late !== undefined) throw new CasebridgeError('STALE', signingTimeDetail(late));
  if (env.inReplyTo !== undefined) await checkReference(env, deps.store);
  return requireUploadedFiles(env, deps.files);
}

/**
 * protocol §2.2: `inReplyTo` names a message between the same two agencies, and an
 * H2 or H3 message is never the parent of a message to a third agency. Every
 * refusal is UNKNOWN_REFERENCE; only a party of the parent learns more from `detail`.
 */
async function checkReference(
  env: Envelope,
  store: Pick<MessageReader, 'getMessage'>,
): Promise<void> {
  const refusal = replyRefusal(await store.getMessage(env.inReplyTo!), env);
  if (refusal === undefined) return;
  throw new CasebridgeError(
    'UNKNOWN_REFERENCE',
    refusal === 'third-party-handling'
      ? 'inReplyTo names an H2 or H3 message, which may not reach a third agency'
      : 'inReplyTo names no message between these agencies',
  );
}

/** protocol §3: a refusal from an authenticated principal becomes an audit entry, content-free. */
export async function recordRefusal(
  store: Pick<AuditLog, 'append'>,
  client: Principal,
  code: ErrorCode,
  digest: string | undefined,
): Promise<void> {
  await store.append({
    event: 'message.refused',
    actor: actorOf(client),
    ...(digest === undefined ? {} : { digest }),
    detail: { code },
  });
}
