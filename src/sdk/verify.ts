/**
 * Checks an integrator runs on what the gateway hands back, trusting only what the
 * caller pinned: the gateway certificate for receipts (protocol §3), the log key for
 * checkpoints and inclusion proofs (protocol §6.3, §6.4). Never the key a JWS carries.
 */
import { X509Certificate } from 'node:crypto';
import { verifyCheckpoint } from '../audit/checkpoint.js';
import { leafHash, verifyInclusion } from '../audit/merkle.js';
import { verifyCompactJws } from '../envelope/jws.js';
import { RECEIPT_TYP, type AllowedAlg, type ReceiptPayload } from '../envelope/types.js';
import { VerificationError } from './errors.js';

const ALGS: ReadonlySet<string> = new Set(['ES256', 'ES384', 'PS256', 'EdDSA']);

function decodeJson(b64url: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(Buffer.from(b64url, 'base64url').toString('utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v))
      return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new VerificationError('malformed', 'not a JSON object');
}

/**
 * Verifies a receipt against the gateway certificate the caller pinned (PEM or
 * X509Certificate): its x5c leaf must be that certificate, and its signature must
 * verify with that certificate's key. Returns the receipt's payload.
 */
export function verifyReceipt(
  receipt: string,
  pinnedGateway: string | X509Certificate,
  expect?: Partial<ReceiptPayload>,
): ReceiptPayload {
  const pinned =
    typeof pinnedGateway === 'string' ? new X509Certificate(pinnedGateway) : pinnedGateway;
  const parts = receipt.split('.');
  if (parts.length !== 3) throw new VerificationError('malformed', 'a compact JWS has three parts');
  const header = decodeJson(parts[0] as string);
  if (header['typ'] !== RECEIPT_TYP) throw new VerificationError('wrong-type', 'not a receipt');
  const alg = header['alg'];
  if (typeof alg !== 'string' || !ALGS.has(alg))
    throw new VerificationError('malformed', 'alg not allowed');
  const x5c = header['x5c'];
  const leaf = Array.isArray(x5c) && typeof x5c[0] === 'string' ? x5c[0] : undefined;
  if (leaf === undefined || !Buffer.from(leaf, 'base64').equals(pinned.raw)) {
    throw new VerificationError(
      'certificate-not-pinned',
      'the receipt is not signed with the pinned gateway certificate',
    );
  }
  if (verifyCompactJws(receipt, pinned.publicKey, alg as AllowedAlg) === undefined)
    throw new VerificationError('signature-invalid', 'the receipt signature does not verify');
  const payload = decodeJson(parts[1] as string) as unknown as ReceiptPayload;
  for (const [k, v] of Object.entries(expect ?? {})) {
    if ((payload as unknown as Record<string, unknown>)[k] !== v)
      throw new VerificationError('mismatch', `the receipt's ${k} is not the expected one`);
  }
  return payload;
}

export interface InclusionProof {
  index: number;
  size: number;
  hashes: string[];
  checkpoint?: string;
}

/**
 * Verifies that `entry` (the exact bytes of an audit entry, protocol §6.1) is at
 * `proof.index` of the log whose signed checkpoint (the proof's own, or `checkpoint`)
 * verifies with the pinned `vkey`. Returns the checkpoint's size and root.
 */
export function verifyInclusionProof(
  proof: InclusionProof,
  entry: Uint8Array,
  vkey: string,
  checkpoint: string | undefined = proof.checkpoint,
): { size: number; root: string } {
  if (checkpoint === undefined)
    throw new VerificationError('checkpoint-invalid', 'no checkpoint to verify against');
  let body;
  try {
    body = verifyCheckpoint(checkpoint, vkey);
  } catch (e) {
    throw new VerificationError('checkpoint-invalid', (e as Error).message);
  }
  if (body.size !== proof.size)
    throw new VerificationError('mismatch', 'the proof is for another tree size');
  const hashes = proof.hashes.map((h) => Buffer.from(h, 'base64'));
  if (!verifyInclusion(leafHash(entry), proof.index, proof.size, hashes, body.root))
    throw new VerificationError('proof-invalid', 'the inclusion proof does not verify');
  return { size: body.size, root: body.root.toString('base64') };
}
