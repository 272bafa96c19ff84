/**
 * What the SQLite and PostgreSQL adapters write the same way: the columns of a
 * new message row, its deadline keys, the actor of an audit entry and the list
 * cursor. Both hold one schema (protocol §11), so they share its encodings here.
 */
import type { AuditActor } from '../audit/types.js';
import type { Envelope, Priority } from '../envelope/types.js';
import { CasebridgeError } from '../errors.js';
import type { HistoryActor } from '../messages/types.js';
import { deadlineOf, dueSoonFrom } from '../review/deadlines.js';
import type { NewMessage } from '../submission/ports.js';

export const PRIORITY_RANK: Record<Priority, number> = { emergency: 0, urgent: 1, routine: 2 };
/** Sorts messages without a deadline after every dated one. */
export const NO_DEADLINE = Number.MAX_SAFE_INTEGER;

/** The deadline columns of a message (protocol §5.5). */
export function deadlineKeys(
  env: Envelope,
  createdAt: string,
): { deadline: string | null; deadlineKey: number; dueSoonKey: number } {
  const deadline = deadlineOf(env);
  if (deadline === null) return { deadline, deadlineKey: NO_DEADLINE, dueSoonKey: NO_DEADLINE };
  return {
    deadline,
    deadlineKey: Date.parse(deadline),
    dueSoonKey: dueSoonFrom(createdAt, deadline),
  };
}

/**
 * The values of a new row of `messages`, in the column order both adapters'
 * INSERT names: id, digest, envelope_digest, case_ref, type, from_agency,
 * to_agency, priority, priority_rank, respond_by, deadline, deadline_key,
 * due_soon_key, in_reply_to, created_at, accepted_at, log_index. Positional:
 * binding by name looks each name up on an object.
 */
export function messageRowValues(
  msg: NewMessage,
  acceptedAt: string,
  logIndex: number,
): (string | number | null)[] {
  const env = msg.envelope;
  const d = deadlineKeys(env, env.createdAt);
  return [
    env.id,
    msg.digest,
    msg.envelopeDigest,
    env.caseRef,
    env.type,
    env.from,
    env.to,
    env.priority,
    PRIORITY_RANK[env.priority],
    env.respondBy ?? null,
    d.deadline,
    d.deadlineKey,
    d.dueSoonKey,
    env.inReplyTo ?? null,
    env.createdAt,
    acceptedAt,
    logIndex,
  ];
}

/** Audit entries name the actor by certificate fingerprint only (protocol §6.1). */
export function auditActor(a: HistoryActor): AuditActor {
  return { agency: a.agency, role: a.role, subject: a.subject };
}

/** A list cursor: the sort keys of the last row of a page, opaque to clients. */
export function encodeCursor(parts: [number, number, number]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

export function decodeCursor(cursor: string): [number, number, number] {
  try {
    const v: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 3 && v.every((n) => Number.isSafeInteger(n))) {
      return v as [number, number, number];
    }
  } catch {
    // fall through
  }
  throw new CasebridgeError('INVALID_PARAMETER', 'cursor is not one this server issued');
}
