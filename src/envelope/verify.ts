import type { X509Certificate } from 'node:crypto';
import type { ChainFailure, Principal } from '../pki/types.js';
import { CasebridgeError, type ValidationIssue } from '../errors.js';
import { nonPlainIntegerIssues } from '../schema/integers.js';
import { digestOf } from './jws.js';
import { verifySigned } from './profile.js';
import { MESSAGE_TYP, type AllowedAlg, type Envelope } from './types.js';

/** What the envelope checks need from the outside world; injected, so this stays pure. */
export interface VerifyDeps {
  parseJson(text: string): unknown;
  validateEnvelope(value: unknown): ValidationIssue[] | null;
  /** Parses x5c (base64 DER, leaf first); may reuse earlier parses. Throws on garbage. */
  parseChain(x5c: readonly string[]): X509Certificate[];
  /** Throws an error carrying `failure: ChainFailure` when the chain is refused. */
  verifyChain(chain: X509Certificate[], at: Date): Principal;
  now: () => Date;
}

export interface VerifiedMessage {
  envelope: Envelope;
  signer: Principal;
  digest: string;
  alg: AllowedAlg;
}

/**
 * The message checks of protocol §3 that need nothing but the JWS itself, in the
 * protocol's order: syntax, header rules, signer certificate (valid now), signature,
 * schema. The signing time is checked later, at the freshness step (submit.ts).
 */
export function verifyMessageJws(jws: string, deps: VerifyDeps): VerifiedMessage {
  const { decoded, alg, signer } = verifySigned(jws, MESSAGE_TYP, (x5c) =>
    resolveSigner(deps, x5c),
  );
  const payload = decoded.payload;
  const issues =
    deps.validateEnvelope(payload) ??
    nonPlainIntegerIssues(payload, decoded.nonPlainNumbers, deps.validateEnvelope);
  if (issues.length > 0) {
    throw new CasebridgeError('SCHEMA_INVALID', 'the envelope does not match its schema', {
      errors: issues,
    });
  }
  return { envelope: payload as Envelope, signer, digest: digestOf(jws), alg };
}

function resolveSigner(
  deps: VerifyDeps,
  x5c: string[],
): Principal & { key: Principal['certificate']['publicKey'] } {
  let chain: X509Certificate[];
  try {
    chain = deps.parseChain(x5c);
  } catch (e) {
    throw new CasebridgeError('CERT_INVALID', 'signer certificate refused: malformed', {
      cause: e,
    });
  }
  try {
    const p = deps.verifyChain(chain, deps.now());
    return { ...p, key: p.certificate.publicKey };
  } catch (e) {
    const failure = failureOf(e);
    if (failure === undefined) throw e;
    throw new CasebridgeError('CERT_INVALID', `signer certificate refused: ${failure}`, {
      cause: e,
    });
  }
}

/** The refusal reason of a chain error; undefined for anything else (a bug, not a refusal). */
export function failureOf(e: unknown): ChainFailure | undefined {
  if (e !== null && typeof e === 'object' && 'failure' in e)
    return (e as { failure: ChainFailure }).failure;
  return undefined;
}
