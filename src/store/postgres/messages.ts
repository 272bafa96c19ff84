/**
 * Messages in PostgreSQL: the small mutable row, the sealed body written once, the
 * history, and the lifecycle steps of review/lifecycle.ts applied inside a write
 * transaction, each with its history row and audit entry (protocol §5).
 */
import type { AuditActor, AuditDraft } from '../../audit/types.js';
import { envelopeOf } from '../../envelope/payload.js';
import { auditActor, decodeCursor, encodeCursor, messageRowValues } from '../rows.js';
import type { DecisionStatus, MessageType, Priority } from '../../envelope/types.js';
import { handlingOf, type HandlingCode } from '../../messages/handling.js';
import type { RecordedMessage } from '../../messages/replay.js';
import type {
  HistoryActor,
  HistoryEvent,
  HistoryItem,
  ListPage,
  ListQuery,
  MessageChange,
  MessageRecord,
  MessageStatus,
} from '../../messages/types.js';
import {
  deliverySteps,
  review,
  type Claim,
  type ReviewAction,
  type ReviewState,
  type Transition,
} from '../../review/lifecycle.js';
import type { ReviewOutcome } from '../../review/ports.js';
import type { MessageVault } from '../../retention/vault.js';
import type {
  AcceptOutcome,
  AcceptResponse,
  NewMessage,
  ReceiptMaker,
} from '../../submission/ports.js';
import { run, type Queryable } from './pool.js';
import type { DeferredStatement, Tx } from './tx.js';

const REVIEW_AUDIT = {
  claimed: 'message.claimed',
  released: 'message.released',
  lapsed: 'message.claim-lapsed',
  decided: 'message.decided',
} as const;

export interface MessageRow {
  seq: number;
  id: string;
  digest: string;
  envelope_digest: string;
  case_ref: string;
  type: string;
  from_agency: string;
  to_agency: string;
  priority: string;
  priority_rank: number;
  respond_by: string | null;
  deadline_key: number;
  in_reply_to: string | null;
  created_at: string;
  accepted_at: string;
  log_index: number;
  status: string;
  decision: string | null;
  claimed_by: string | null;
  deadline: string | null;
  due_soon_key: number;
  claimed_name: string | null;
  claimed_at: string | null;
  claim_expires_at: number | null;
  overdue_noted: boolean;
}

export interface SealedColumns {
  sealed: Buffer | null;
  wrapped_key: Buffer | null;
  epoch: string | null;
}

interface FullRow extends MessageRow, SealedColumns {
  handling: string;
  response: string;
  shredded_at: string | null;
}

/** Columns of a message with its body. */
const FULL = `m.*, b.sealed, b.wrapped_key, b.epoch, b.handling, b.response, b.shredded_at
  FROM messages m JOIN message_bodies b ON b.seq = m.seq`;

/** New messages of a transaction, one row per element of the column arrays (see Tx.defer). */
const ACCEPT: DeferredStatement = {
  name: 'msg_accept_many',
  everyRow: true,
  sql: `WITH v AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
      $7::text[], $8::text[], $9::integer[], $10::text[], $11::text[], $12::bigint[],
      $13::bigint[], $14::text[], $15::text[], $16::text[], $17::bigint[], $18::bytea[],
      $19::bytea[], $20::text[], $21::text[], $22::text[]) WITH ORDINALITY AS v (id, digest,
      envelope_digest, case_ref, type, from_agency, to_agency, priority, priority_rank,
      respond_by, deadline, deadline_key, due_soon_key, in_reply_to, created_at, accepted_at,
      log_index, sealed, wrapped_key, epoch, handling, response, k)),
  m AS (
    INSERT INTO messages (id, digest, envelope_digest, case_ref, type, from_agency, to_agency,
      priority, priority_rank, respond_by, deadline, deadline_key, due_soon_key, in_reply_to,
      created_at, accepted_at, log_index, status)
    SELECT id, digest, envelope_digest, case_ref, type, from_agency, to_agency, priority,
      priority_rank, respond_by, deadline, deadline_key, due_soon_key, in_reply_to, created_at,
      accepted_at, log_index, 'accepted' FROM v ORDER BY k
    ON CONFLICT (id) DO NOTHING
    RETURNING seq, id),
  b AS (INSERT INTO message_bodies (seq, sealed, wrapped_key, epoch, handling, response)
    SELECT m.seq, v.sealed, v.wrapped_key, v.epoch, v.handling, v.response
    FROM m JOIN v ON v.id = m.id)
INSERT INTO outbox (message_id, next_attempt_at)
  SELECT m.id, now() FROM m JOIN v ON v.id = m.id ORDER BY v.k`,
};

const SET_REVIEW_SQL = `UPDATE messages SET status = $2, decision = $3, claimed_by = $4,
  claimed_name = $5, claimed_at = $6, claim_expires_at = $7 WHERE id = $1`;

/** What the message operations need of the store. */
export interface MessageHost {
  vault: MessageVault;
  gatewayActor: AuditActor | undefined;
  /** Binds an evidence.transfer's files in the acceptance transaction. */
  bindFiles(tx: Tx, messageId: string, msg: NewMessage, at: Date): Promise<void>;
}

export class PgMessages {
  constructor(private readonly host: MessageHost) {}

  // ---- reads ---------------------------------------------------------------

  async getMessage(db: Queryable, id: string): Promise<MessageRecord | undefined> {
    const rows = await run<FullRow>(db, 'msg_full', `SELECT ${FULL} WHERE m.id = $1`, [id]);
    return rows[0] && this.toRecord(rows[0]);
  }

  async row(db: Queryable, id: string): Promise<MessageRow | undefined> {
    const rows = await run<MessageRow>(db, 'msg_row', 'SELECT * FROM messages WHERE id = $1', [id]);
    return rows[0];
  }

  async rows(db: Queryable, ids: readonly string[]): Promise<Map<string, MessageRow>> {
    const rows = await run<MessageRow>(
      db,
      'msg_rows',
      'SELECT * FROM messages WHERE id = ANY($1::text[])',
      [ids],
    );
    return new Map(rows.map((r) => [r.id, r]));
  }

  async recorded(
    db: Queryable,
    id: string,
  ): Promise<(RecordedMessage & { response: AcceptResponse }) | undefined> {
    const rows = await run<{ digest: string; envelope_digest: string; response: string }>(
      db,
      'msg_recorded',
      `SELECT m.digest, m.envelope_digest, b.response
       FROM messages m JOIN message_bodies b ON b.seq = m.seq WHERE m.id = $1`,
      [id],
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      digest: row.digest,
      envelopeDigest: row.envelope_digest,
      response: JSON.parse(row.response) as AcceptResponse,
    };
  }

  async history(db: Queryable, id: string): Promise<HistoryItem[]> {
    const rows = await run<{
      status: MessageStatus;
      event: HistoryEvent;
      decision: DecisionStatus | null;
      at: string;
      actor_agency: string;
      actor_role: string;
      actor_subject: string;
      actor_name: string | null;
    }>(
      db,
      'msg_history',
      `SELECT status, event, decision, at, actor_agency, actor_role, actor_subject, actor_name
       FROM message_history WHERE message_id = $1 ORDER BY n`,
      [id],
    );
    return rows.map((r) => ({
      status: r.status,
      event: r.event,
      ...(r.decision === null ? {} : { decision: r.decision }),
      at: r.at,
      by: {
        agency: r.actor_agency,
        role: r.actor_role,
        subject: r.actor_subject,
        ...(r.actor_name === null ? {} : { name: r.actor_name }),
      },
    }));
  }

  async list(db: Queryable, q: ListQuery): Promise<ListPage> {
    const column = q.direction === 'received' ? 'm.to_agency' : 'm.from_agency';
    const args: unknown[] = [q.agency];
    const where = [`${column} = $1`];
    const arg = (v: unknown): string => {
      args.push(v);
      return `$${args.length}`;
    };
    if (q.status === 'open') where.push("m.status <> 'decided'");
    else if (q.status) where.push(`m.status = ${arg(q.status)}`);
    if (q.decision === 'none') where.push('m.decision IS NULL');
    else if (q.decision) where.push(`m.decision = ${arg(q.decision)}`);
    if (q.type) where.push(`m.type = ${arg(q.type)}`);
    if (q.priority) where.push(`m.priority = ${arg(q.priority)}`);
    if (q.cursor !== undefined) {
      const [rank, key, seq] = decodeCursor(q.cursor);
      where.push(
        `(m.priority_rank, m.deadline_key, m.seq) > (${arg(rank)}, ${arg(key)}, ${arg(seq)})`,
      );
    }
    const limit = arg(q.limit + 1);
    const sql = `SELECT ${FULL} WHERE ${where.join(' AND ')}
      ORDER BY m.priority_rank, m.deadline_key, m.seq LIMIT ${limit}`;
    // One prepared statement per shape of query (a few dozen at most).
    const name = `list_${shapeName(sql)}`;
    const rows = await run<FullRow>(db, name, sql, args);
    const more = rows.length > q.limit;
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r) => this.toRecord(r)),
      nextCursor:
        more && last ? encodeCursor([last.priority_rank, last.deadline_key, last.seq]) : null,
    };
  }

  async replies(db: Queryable, id: string): Promise<MessageRecord[]> {
    const rows = await run<FullRow>(
      db,
      'msg_replies',
      `SELECT ${FULL} WHERE m.in_reply_to = $1 ORDER BY m.seq`,
      [id],
    );
    return rows.map((r) => this.toRecord(r));
  }

  /** The JWS of a row, opened; null once shredded. */
  openJws(id: string, r: SealedColumns): string | null {
    if (r.sealed === null || r.wrapped_key === null || r.epoch === null) return null;
    return this.host.vault.open(id, {
      sealed: r.sealed,
      wrappedKey: r.wrapped_key,
      epoch: r.epoch,
    });
  }

  private toRecord(r: FullRow): MessageRecord {
    const jws = this.openJws(r.id, r);
    return {
      id: r.id,
      digest: r.digest,
      jws,
      envelope: jws === null ? null : envelopeOf(jws),
      shreddedAt: r.shredded_at,
      type: r.type as MessageType,
      caseRef: r.case_ref,
      handling: r.handling as HandlingCode,
      from: r.from_agency,
      to: r.to_agency,
      priority: r.priority as Priority,
      respondBy: r.respond_by,
      deadline: r.deadline,
      inReplyTo: r.in_reply_to,
      createdAt: r.created_at,
      acceptedAt: r.accepted_at,
      logIndex: r.log_index,
      status: r.status as MessageStatus,
      decision: r.decision as DecisionStatus | null,
      claim: r.status === 'claimed' ? claimOf(r) : null,
      response: r.response,
    };
  }

  // ---- writes, inside a transaction ------------------------------------------

  /** Decides again here whether `msg` is new, a replay or a conflict: copies may share a batch. */
  async acceptInTx(tx: Tx, msg: NewMessage, makeReceipt: ReceiptMaker): Promise<AcceptOutcome> {
    const existing = tx.mayExist(msg.id) ? await this.recorded(tx, msg.id) : undefined;
    if (existing) {
      // protocol §3: compared by meaning (RFC 8785 envelope digest), never by signature bytes.
      if (existing.envelopeDigest !== msg.envelopeDigest)
        return { kind: 'conflict', digest: existing.digest };
      return { kind: 'replay', response: existing.response };
    }
    const at = tx.stamp();
    const acceptedAt = at.toISOString();
    const env = msg.envelope;
    const draft: AuditDraft = {
      event: 'message.accepted',
      actor: auditActor(msg.actor),
      messageId: env.id,
      digest: msg.digest,
      from: env.from,
      to: env.to,
      type: env.type,
      ...(env.inReplyTo === undefined ? {} : { inReplyTo: env.inReplyTo }),
    };
    const { index } = tx.append(draft, at);
    const response: AcceptResponse = {
      id: env.id,
      digest: msg.digest,
      logIndex: index,
      status: 'accepted',
      receipt: makeReceipt(index, acceptedAt),
    };
    const sealed = this.host.vault.seal(env.id, msg.jws, at);
    tx.defer(ACCEPT, [
      ...messageRowValues(msg, acceptedAt, index),
      sealed.sealed,
      sealed.wrappedKey,
      sealed.epoch,
      handlingOf(env),
      JSON.stringify(response),
    ]);
    tx.insertedMessage(env.id);
    tx.addHistory(env.id, 'accepted', 'accepted', null, acceptedAt, msg.actor);
    if (msg.files !== undefined) await this.host.bindFiles(tx, env.id, msg, at);
    return { kind: 'accepted', response };
  }

  /**
   * protocol §5.1: a status.update from the recipient of the message it answers
   * sets that message's decision (a gateway-issued one was applied by `decide`).
   */
  async answerInTx(tx: Tx, msg: NewMessage): Promise<void> {
    const env = msg.envelope;
    const status = env.body['status'];
    if (env.type !== 'status.update' || env.inReplyTo === undefined) return;
    if (typeof status !== 'string') return;
    const row = await this.row(tx, env.inReplyTo);
    if (!row || row.to_agency !== env.from) return;
    await this.applyReview(
      tx,
      row,
      { kind: 'answer', decision: status as DecisionStatus },
      msg.actor,
    );
  }

  /** Delivery lifecycle steps of lifecycle.ts; returns the status written, if any. */
  deliveryStepsInTx(
    tx: Tx,
    row: MessageRow,
    event: 'confirmed' | 'delivered',
    actor: AuditActor,
  ): MessageStatus | undefined {
    const steps = deliverySteps(row.status as MessageStatus, event);
    if (steps.length === 0) return undefined;
    const at = tx.stamp();
    for (const status of steps) {
      tx.addHistory(row.id, status, status, null, at.toISOString(), actor);
      tx.append(messageDraft(row, `message.${status}`, actor), at);
      if (status === 'delivered') {
        tx.changed({ event: 'delivered', message: changeView({ ...row, status }) });
      }
    }
    return steps[steps.length - 1];
  }

  /** The rules of lifecycle.ts applied to the row read in this transaction. */
  async applyReview(
    tx: Tx,
    row: MessageRow,
    action: ReviewAction,
    actor: HistoryActor,
  ): Promise<ReviewOutcome> {
    const at = tx.stamp();
    const result = review(stateOf(row), action, at);
    let cur = row;
    for (const t of result.transitions) cur = await this.applyTransition(tx, cur, t, actor, at);
    const record = (await this.getMessage(tx, row.id))!;
    return result.refusal === undefined
      ? { kind: 'done', record }
      : { kind: 'refused', refusal: result.refusal, record };
  }

  private async applyTransition(
    tx: Tx,
    row: MessageRow,
    t: Transition,
    caller: HistoryActor,
    at: Date,
  ): Promise<MessageRow> {
    const next = t.next;
    const expires = next.claim === null ? null : Date.parse(next.claim.expiresAt);
    await run(tx, 'msg_set_review', SET_REVIEW_SQL, [
      row.id,
      next.status,
      next.decision,
      next.claim?.subject ?? null,
      next.claim?.name ?? null,
      next.claim?.at ?? null,
      expires,
    ]);
    const updated: MessageRow = {
      ...row,
      status: next.status,
      decision: next.decision,
      claimed_by: next.claim?.subject ?? null,
      claimed_name: next.claim?.name ?? null,
      claimed_at: next.claim?.at ?? null,
      claim_expires_at: expires,
    };
    tx.changed({ event: t.event, message: changeView(updated) });
    if (t.event === 'noted') return updated;
    const actor = t.by === 'gateway' ? (this.host.gatewayActor ?? caller) : caller;
    tx.addHistory(row.id, next.status, t.event, t.decision ?? null, at.toISOString(), actor);
    const draft = messageDraft(row, REVIEW_AUDIT[t.event], actor);
    if (t.decision !== undefined) draft.detail = { status: t.decision };
    tx.append(draft, at);
    return updated;
  }
}

export function messageDraft(
  row: MessageRow,
  event: AuditDraft['event'],
  actor: AuditActor,
): AuditDraft {
  return {
    event,
    actor: auditActor(actor),
    messageId: row.id,
    digest: row.digest,
    from: row.from_agency,
    to: row.to_agency,
    type: row.type,
  };
}

function claimOf(r: MessageRow): Claim | null {
  if (r.claimed_by === null) return null;
  return {
    subject: r.claimed_by,
    name: r.claimed_name ?? '',
    at: r.claimed_at ?? '',
    expiresAt: new Date(r.claim_expires_at ?? 0).toISOString(),
  };
}

function stateOf(r: MessageRow): ReviewState {
  return {
    status: r.status as MessageStatus,
    decision: r.decision as DecisionStatus | null,
    claim: r.status === 'claimed' ? claimOf(r) : null,
  };
}

export function changeView(r: MessageRow): MessageChange['message'] {
  return {
    id: r.id,
    type: r.type as MessageType,
    priority: r.priority as Priority,
    from: r.from_agency,
    to: r.to_agency,
    status: r.status as MessageStatus,
    decision: r.decision as DecisionStatus | null,
    inReplyTo: r.in_reply_to,
  };
}

function shapeName(sql: string): string {
  let h = 0;
  for (let i = 0; i < sql.length; i++) h = (Math.imul(h, 31) + sql.charCodeAt(i)) | 0;
  return (h >>> 0).toString(36);
}
