/**
 * The verification panel's checks for one message (protocol §10), each computed here
 * from the bytes fetched: the message JWS, its receipt, its log entry and the proof.
 */
import type { Api, MessageView } from './api.js';
import { attr, equalBytes, fromBase64, OID } from './der.js';
import type { Trust } from './trust.js';
import {
  checkChain,
  checkJwsSignature,
  decodeJws,
  digestOf,
  leafHash,
  openCheckpoint,
  rootFromInclusion,
  type Check,
} from './verify.js';

export type CheckName = 'signature' | 'chain' | 'receipt' | 'inclusion' | 'logKey';

export interface MessageVerdict {
  checks: Array<{ name: CheckName; check: Check }>;
  /** The envelope decoded from the signed payload, the only one the page shows. */
  envelope: Record<string, unknown> | undefined;
  digest: string;
}

const MESSAGE_TYP = 'casebridge-message+jws';
const RECEIPT_TYP = 'casebridge-receipt+jws';

function parseJson(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The envelope inside the signed bytes (protocol §2.1), whatever the checks say. */
export function signedEnvelope(jws: string): Record<string, unknown> | undefined {
  const d = decodeJws(jws);
  return d ? parseJson(d.payload) : undefined;
}

export async function verifyMessage(
  api: Api,
  m: MessageView,
  trust: Trust,
  now = new Date(),
): Promise<MessageVerdict> {
  const digest = await digestOf(m.jws);
  const jws = decodeJws(m.jws);
  const envelope = jws ? parseJson(jws.payload) : undefined;
  const checks: MessageVerdict['checks'] = [];

  checks.push({ name: 'signature', check: await checkJwsSignature(jws, MESSAGE_TYP) });
  checks.push({ name: 'chain', check: await signerChain(jws, envelope, trust, now) });
  checks.push({ name: 'receipt', check: await receipt(m, envelope, digest, trust, now) });
  checks.push({ name: 'inclusion', check: await inclusion(api, m, digest, trust) });
  checks.push({ name: 'logKey', check: logKeyCheck(trust) });
  return { checks, envelope, digest };
}

async function signerChain(
  jws: ReturnType<typeof decodeJws>,
  envelope: Record<string, unknown> | undefined,
  trust: Trust,
  now: Date,
): Promise<Check> {
  if (!jws || !envelope) return { ok: false, reason: 'verify.jws.malformed' };
  const createdAt = new Date(String(envelope['createdAt']));
  if (Number.isNaN(createdAt.getTime())) return { ok: false, reason: 'verify.chain.atCreated' };
  const chain = await checkChain(jws.x5c, trust.anchors, createdAt, now);
  if (!chain.ok) return chain;
  const leaf = jws.x5c[0]!;
  const o = attr(leaf.subject, OID.organizationName);
  const ou = attr(leaf.subject, OID.organizationalUnitName);
  // protocol §5.4: a decision is signed by the gateway on the officer's behalf.
  const byGateway =
    envelope['type'] === 'status.update' &&
    ou === 'gateway' &&
    o === trust.gatewayId &&
    equalBytes(leaf.der, trust.gateway[0]?.der ?? new Uint8Array());
  if (o !== envelope['from'] && !byGateway) {
    return { ok: false, reason: 'verify.chain.notSender', params: { o: o ?? '' } };
  }
  return chain;
}

async function receipt(
  m: MessageView,
  envelope: Record<string, unknown> | undefined,
  digest: string,
  trust: Trust,
  now: Date,
): Promise<Check> {
  const r = decodeJws(m.receipt ?? '');
  const sig = await checkJwsSignature(r, RECEIPT_TYP);
  if (!sig.ok) return { ok: false, reason: 'verify.receipt.badSig' };
  // The receipt must come from this gateway's own certificate, not any key in x5c.
  const pinned = trust.gateway[0];
  if (!pinned || !equalBytes(r!.x5c[0]!.der, pinned.der))
    return { ok: false, reason: 'verify.receipt.notGateway' };
  const chain = await checkChain(r!.x5c, trust.anchors, now, now);
  if (!chain.ok) return { ok: false, reason: 'verify.receipt.notGateway' };
  const p = parseJson(r!.payload);
  if (!p) return { ok: false, reason: 'verify.receipt.badSig' };
  if (p['digest'] !== digest) return { ok: false, reason: 'verify.receipt.digest' };
  if (
    p['messageId'] !== envelope?.['id'] ||
    p['logIndex'] !== m.logIndex ||
    p['from'] !== envelope?.['from'] ||
    p['to'] !== envelope?.['to'] ||
    p['type'] !== envelope?.['type']
  ) {
    return { ok: false, reason: 'verify.receipt.fields' };
  }
  return { ok: true, reason: 'verify.receipt.ok', params: { index: String(m.logIndex) } };
}

async function inclusion(api: Api, m: MessageView, digest: string, trust: Trust): Promise<Check> {
  if (!trust.logKey) return { ok: false, reason: 'verify.key.missing' };
  let proof;
  try {
    proof = await api.proof(m.id);
  } catch {
    return { ok: false, reason: 'verify.inclusion.unavailable' };
  }
  if (!proof.checkpoint || !proof.leaf)
    return { ok: false, reason: 'verify.inclusion.unavailable' };
  const opened = await openCheckpoint(proof.checkpoint, trust.logKey);
  if (!opened.checkpoint) return opened.check;
  const cp = opened.checkpoint;
  if (cp.size !== proof.size) return { ok: false, reason: 'verify.inclusion.size' };
  let leafBytes: Uint8Array;
  try {
    leafBytes = fromBase64(proof.leaf);
  } catch {
    return { ok: false, reason: 'verify.inclusion.entry' };
  }
  // The entry must be this message's acceptance, with the digest of the bytes we hold.
  const entry = parseJson(leafBytes);
  if (
    !entry ||
    entry['event'] !== 'message.accepted' ||
    entry['messageId'] !== m.id ||
    entry['index'] !== m.logIndex ||
    entry['digest'] !== digest
  ) {
    return { ok: false, reason: 'verify.inclusion.entry' };
  }
  let hashes: Uint8Array[];
  try {
    hashes = proof.hashes.map((h) => fromBase64(h));
  } catch {
    return { ok: false, reason: 'verify.inclusion.bad' };
  }
  const root = await rootFromInclusion(m.logIndex, cp.size, await leafHash(leafBytes), hashes);
  if (!root || !equalBytes(root, cp.root)) return { ok: false, reason: 'verify.inclusion.bad' };
  return {
    ok: true,
    reason: 'verify.inclusion.ok',
    params: { index: String(m.logIndex), size: String(cp.size) },
  };
}

function logKeyCheck(trust: Trust): Check {
  if (!trust.logKey) return { ok: false, reason: 'verify.key.missing' };
  if (trust.pin === 'changed')
    return { ok: false, reason: 'verify.key.changed', params: { key: trust.pinnedId ?? '' } };
  return {
    ok: true,
    reason: trust.pin === 'first' ? 'verify.key.first' : 'verify.key.same',
    params: { key: trust.logKey.keyIdHex },
  };
}
