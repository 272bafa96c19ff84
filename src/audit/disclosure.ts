/**
 * Who may read an entry's metadata (docs/auditing.md, "Who sees what"). The tree is
 * public to every auditor: leaf hashes, proofs and checkpoints. Who sent what to
 * whom, and when, is not: an entry's metadata goes to the auditors of the agencies
 * it names, to the gateway operator's auditors, and to auditors with the audit grant.
 * Everyone else gets the leaf hash alone, which is all a proof needs.
 */
import { parseEntry } from './entry.js';
import type { AuditEntry, StoredEntry } from './types.js';

export interface DisclosurePolicy {
  /** The gateway id: `O` of the operator's own certificates. */
  operatorId: string;
  /** Agencies whose auditors see every entry (`CASEBRIDGE_AUDIT_GRANT`). */
  auditGrant: ReadonlySet<string>;
}

/** An auditor sees everything when it is the operator's or holds the grant. */
export function seesAllEntries(agency: string, policy: DisclosurePolicy): boolean {
  return agency === policy.operatorId || policy.auditGrant.has(agency);
}

/** The agencies an entry tells something about: its parties and its actor, not the gateway. */
export function agenciesOf(e: AuditEntry, operatorId: string): Set<string> {
  const out = new Set<string>();
  for (const a of [e.from, e.to, e.actor.agency])
    if (a !== undefined && a !== operatorId) out.add(a);
  return out;
}

/**
 * May an auditor of `agency` read this entry? Entries that name no agency (the
 * gateway's administrative events) are for every auditor.
 */
export function mayReadEntry(e: AuditEntry, agency: string, policy: DisclosurePolicy): boolean {
  if (seesAllEntries(agency, policy)) return true;
  const named = agenciesOf(e, policy.operatorId);
  return named.size === 0 || named.has(agency);
}

/** The same question of stored bytes; an entry that does not parse is shown to no one but the operator. */
export function mayReadStored(e: StoredEntry, agency: string, policy: DisclosurePolicy): boolean {
  if (seesAllEntries(agency, policy)) return true;
  try {
    return mayReadEntry(parseEntry(e.bytes), agency, policy);
  } catch {
    return false;
  }
}
