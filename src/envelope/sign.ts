import type { KeyObject, X509Certificate } from 'node:crypto';
import { algForKey, signCompactSync, x5cOf } from './jws.js';
import { MESSAGE_TYP, RECEIPT_TYP, type Envelope, type ReceiptPayload } from './types.js';

/** A private key and the certificate chain (leaf first) that names it. */
export interface SigningIdentity {
  key: KeyObject;
  chain: readonly X509Certificate[];
}

function sign(typ: string, payload: unknown, id: SigningIdentity): string {
  const header = { alg: algForKey(id.key), typ, x5c: x5cOf(id.chain) };
  return signCompactSync(header, JSON.stringify(payload), id.key);
}

/** A message JWS (protocol §2.1). */
export function signMessage(envelope: Envelope, id: SigningIdentity): string {
  return sign(MESSAGE_TYP, envelope, id);
}

/** A receipt JWS (protocol §3), signed with the gateway's certificate. */
export function signReceipt(payload: ReceiptPayload, id: SigningIdentity): string {
  return sign(RECEIPT_TYP, payload, id);
}
