/**
 * What `inbox`, `get` and `thread` print for a person at a terminal (protocol §7):
 * tables and views. Pure functions of the API's JSON, so they are snapshot-tested;
 * fields a gateway does not send yet (deadline, claim, decision) degrade to "-".
 */
import type { HistoryItem, MessageDetail, MessageSummary } from '../sdk/index.js';

const NONE = '-';

/** `2026-12-02 06:45Z`: UTC to the minute, the same on every machine. */
export function shortTime(iso: string | null | undefined): string {
  if (!iso) return NONE;
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return NONE;
  return `${t.toISOString().slice(0, 16).replace('T', ' ')}Z`;
}

function deadlineOf(m: MessageSummary): string {
  const at = shortTime(m.deadline ?? m.respondBy ?? null);
  if (at === NONE) return NONE;
  if (m.overdue === true) return `${at} OVERDUE`;
  if (m.dueSoon === true) return `${at} due soon`;
  return at;
}

function claimOf(m: MessageSummary): string {
  const c = m.claim;
  if (c) return c.name ?? `${c.subject.slice(0, 15)}…`;
  return m.status === 'claimed' ? 'someone' : NONE;
}

const PRIORITY_MARK: Record<string, string> = { emergency: '!!!', urgent: '!!', routine: '' };

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The inbox or a thread as a table, most urgent first as the gateway sorted it. */
export function messageTable(
  items: readonly MessageSummary[],
  opts: { thread?: boolean } = {},
): string {
  if (items.length === 0) return '(no messages)';
  const head = [
    'PRIORITY',
    'TYPE',
    opts.thread ? 'FROM → TO' : 'FROM',
    'STATUS',
    'DECISION',
    'DEADLINE',
    'CLAIMED BY',
    'CASE',
    'ID',
  ];
  const rows = items.map((m) => [
    `${m.priority}${PRIORITY_MARK[m.priority] ? ' ' + PRIORITY_MARK[m.priority] : ''}`,
    m.type,
    opts.thread ? `${m.from} → ${m.to}` : m.from,
    m.status,
    m.decision ?? NONE,
    deadlineOf(m),
    claimOf(m),
    m.caseRef ?? NONE,
    m.id,
  ]);
  return table(head, rows);
}

function actor(by: HistoryItem['by']): string {
  return `${by.agency} ${by.role}${by.name ? ` (${by.name})` : ''}`;
}

/** One message: routing, lifecycle, history, and the body it carries. */
export function messageView(m: MessageDetail): string {
  const env = m.envelope;
  const type = m.type ?? env?.type ?? NONE;
  const priority = m.priority ?? env?.priority ?? NONE;
  const from = m.from ?? env?.from ?? NONE;
  const to = m.to ?? env?.to ?? NONE;
  const out: string[] = [
    `Message   ${m.id}`,
    `Type      ${type}, ${priority}${env?.handling ? `, handling ${env.handling}` : ''}`,
    `Route     ${from} → ${to}`,
    `Case      ${m.caseRef ?? env?.caseRef ?? NONE}${env?.inReplyTo ? `   in reply to ${env.inReplyTo}` : ''}`,
    `Created   ${shortTime(m.createdAt ?? env?.createdAt)}   accepted ${shortTime(m.acceptedAt)}`,
    `Status    ${m.status}   decision ${m.decision ?? NONE}`,
    `Deadline  ${deadlineOf({ ...m, respondBy: m.respondBy ?? env?.respondBy ?? null })}`,
  ];
  if (m.claim) {
    out.push(
      `Claimed   by ${claimOf(m)} since ${shortTime(m.claim.at)}${m.claim.expiresAt ? `, until ${shortTime(m.claim.expiresAt)}` : ''}`,
    );
  }
  out.push(`Digest    ${m.digest ?? NONE}   log index ${m.logIndex ?? NONE}`);
  if (m.history.length > 0) {
    out.push('', 'History');
    for (const h of m.history)
      out.push(`  ${shortTime(h.at)}  ${h.status.padEnd(18)} ${actor(h.by)}`);
  }
  out.push('', 'Body');
  if (env === null || env === undefined) out.push('  (content no longer held by the gateway)');
  else
    out.push(
      ...JSON.stringify(env.body, null, 2)
        .split('\n')
        .map((l) => `  ${l}`),
    );
  return out.join('\n');
}

/** What goes to a pipe or with --json: the API's JSON as it came, indented. */
export function asJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
