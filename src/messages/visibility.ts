/**
 * Who may see what of a message (protocol §1.4, §5.3, §6.4). Rules only, no I/O.
 */
import { isParty, mayExportContent, type HandlingCode, type Parties } from './handling.js';

/** A message's content, as far as an export needs it. */
export interface ExportCandidate extends Parties {
  handling: HandlingCode;
  jws: string | null;
}

/**
 * protocol §6.4 `messages=true`: an auditor of a party (with the export grant,
 * checked by the caller) gets the message's JWS, unless it is H3 or shredded.
 */
export function exportableTo(
  m: ExportCandidate,
  agency: string,
): m is ExportCandidate & { jws: string } {
  return isParty(m, agency) && mayExportContent(m.handling) && m.jws !== null;
}

/** protocol §5.3: only the sender's and the recipient's agency ever see a message. */
export function visibleTo<M extends Parties>(m: M | undefined, agency: string): m is M {
  return m !== undefined && isParty(m, agency);
}
