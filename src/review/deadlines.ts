/**
 * Deadlines (protocol §5.5): when a message must be answered, and whether it is
 * overdue or due soon. Pure.
 */
import type { Envelope } from '../envelope/types.js';
import type { LifecycleStatus } from './lifecycle.js';

/** Due soon: less than this share of the time between `createdAt` and the deadline is left. */
export const DUE_SOON_SHARE = 0.25;

/**
 * The earliest of `respondBy` and, for a freeze, `body.executeBy`: a 4-hour
 * `executeBy` must not hide behind a 6-hour `respondBy`.
 */
export function deadlineOf(env: Envelope): string | null {
  const candidates: string[] = [];
  if (env.respondBy !== undefined) candidates.push(env.respondBy);
  const executeBy = env.type === 'funds.freeze' ? env.body['executeBy'] : undefined;
  if (typeof executeBy === 'string') candidates.push(executeBy);
  let best: string | null = null;
  for (const c of candidates) {
    if (Number.isNaN(Date.parse(c))) continue;
    if (best === null || Date.parse(c) < Date.parse(best)) best = new Date(c).toISOString();
  }
  return best;
}

/** The instant from which a message is due soon (ms since the epoch). */
export function dueSoonFrom(createdAt: string, deadline: string): number {
  const end = Date.parse(deadline);
  const span = Math.max(0, end - Date.parse(createdAt));
  return end - Math.floor(span * DUE_SOON_SHARE);
}

export interface DeadlineFlags {
  overdue: boolean;
  dueSoon: boolean;
}

/** Only undecided messages are overdue or due soon; a final decision answers the deadline. */
export function deadlineFlags(
  m: { status: LifecycleStatus; createdAt: string; deadline: string | null },
  now: Date,
): DeadlineFlags {
  if (m.deadline === null || m.status === 'decided') return { overdue: false, dueSoon: false };
  const t = now.getTime();
  const overdue = t >= Date.parse(m.deadline);
  return { overdue, dueSoon: !overdue && t >= dueSoonFrom(m.createdAt, m.deadline) };
}
