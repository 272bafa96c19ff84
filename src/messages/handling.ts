/**
 * Handling codes (protocol §2.2, docs/handling.md): what the recipient may do with a
 * message's content. The one copy of these rules; the submission path, the audit
 * export and the store's callers ask here.
 */
import type { Envelope } from '../envelope/types.js';

export type HandlingCode = NonNullable<Envelope['handling']>;

export const HANDLING_CODES: readonly HandlingCode[] = ['H0', 'H1', 'H2', 'H3'];

/** protocol §2.2: H1 when the envelope names none. */
export const DEFAULT_HANDLING: HandlingCode = 'H1';

export function handlingOf(env: Pick<Envelope, 'handling'>): HandlingCode {
  return env.handling ?? DEFAULT_HANDLING;
}

/** The parties of a message: who sent it and who received it. */
export interface Parties {
  from: string;
  to: string;
}

/** Is `agency` one of the two parties? */
export function isParty(m: Parties, agency: string): boolean {
  return m.from === agency || m.to === agency;
}

/** Do two messages join the same two agencies, in either direction? */
export function sameParties(a: Parties, b: Parties): boolean {
  return (a.from === b.from && a.to === b.to) || (a.from === b.to && a.to === b.from);
}

/** H2 and H3 content may not be passed to a third party (protocol §2.2). */
export function keptFromThirdParties(code: HandlingCode): boolean {
  return code === 'H2' || code === 'H3';
}

/** H3 content never leaves the recipient agency's systems: never in an export with messages. */
export function mayExportContent(code: HandlingCode): boolean {
  return code !== 'H3';
}

/** Why a reply may not name `parent` as its `inReplyTo`, or undefined when it may. */
export type ReplyRefusal = 'unknown' | 'not-a-party' | 'third-party-handling' | 'other-parties';

/**
 * protocol §2.2 `inReplyTo`: the parent must exist and the sender must be one of its
 * parties (else it is unknown to them); an H2/H3 parent never names a message to a
 * third agency; and any parent names a message between the same two agencies.
 * The handling rule comes before the same-parties rule, so it holds on its own
 * should the same-parties rule ever be relaxed (e.g. for forwarding with consent).
 */
export function replyRefusal(
  parent: (Parties & { handling: HandlingCode }) | undefined,
  reply: Parties,
): ReplyRefusal | undefined {
  if (parent === undefined) return 'unknown';
  if (!isParty(parent, reply.from)) return 'not-a-party';
  const third = !isParty(parent, reply.to);
  if (third && keptFromThirdParties(parent.handling)) return 'third-party-handling';
  if (!sameParties(parent, reply)) return 'other-parties';
  return undefined;
}
