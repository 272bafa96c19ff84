import type { X509Certificate } from 'node:crypto';
import type { ChainFailure, Principal } from '../pki/types.js';
import { CasebridgeError, type ValidationIssue } from '../errors.js';
import { digestOf, splitCompact, verifyCompactJws } from './jws.js';
import { ALLOWED_ALGS, MESSAGE_TYP, type AllowedAlg, type Envelope } from './types.js';

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

/** Header members whose presence would let a key come from somewhere other than x5c. */
const FORBIDDEN_HEADER_MEMBERS = ['jku', 'jwk', 'x5u'];
const MAX_CHAIN = 8;

/**
 * The message checks of protocol §3 that need nothing but the JWS itself, in the
 * the protocol's order: syntax, header rules, signer certificate, signature, schema.
 */
export function verifyMessageJws(jws: string, deps: VerifyDeps): VerifiedMessage {
  const parts = splitCompact(jws);
  const header = parseObject(deps, parts.protectedB64, 'protected header');
  const payloadText = Buffer.from(parts.payloadB64, 'base64url').toString('utf8');
  const payload = parseJson(deps, payloadText, 'payload');

  const alg = checkHeader(header);
  const chain = parseX5c(deps, header['x5c'] as string[]);
  let signer: Principal;
  try {
    signer = deps.verifyChain(chain, deps.now());
  } catch (e) {
    const failure = failureOf(e);
    if (failure === undefined) throw e;
    throw new CasebridgeError('CERT_INVALID', `signer certificate refused: ${failure}`, {
      cause: e,
    });
  }

  if (verifyCompactJws(jws, signer.certificate.publicKey, alg) === undefined) {
    throw new CasebridgeError(
      'SIGNATURE_INVALID',
      'the signature does not verify with the x5c leaf key',
    );
  }

  const issues = deps.validateEnvelope(payload);
  if (issues) {
    throw new CasebridgeError('SCHEMA_INVALID', 'the envelope does not match its schema', {
      errors: issues,
    });
  }
  return { envelope: payload as Envelope, signer, digest: digestOf(jws), alg };
}

function parseJson(deps: VerifyDeps, text: string, what: string): unknown {
  try {
    return deps.parseJson(text);
  } catch (e) {
    if (e instanceof CasebridgeError) {
      throw new CasebridgeError('MALFORMED', `${what}: ${e.message}`, { cause: e });
    }
    throw new CasebridgeError('MALFORMED', `${what} is not JSON`, { cause: e });
  }
}

function parseObject(deps: VerifyDeps, b64: string, what: string): Record<string, unknown> {
  const v = parseJson(deps, Buffer.from(b64, 'base64url').toString('utf8'), what);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new CasebridgeError('MALFORMED', `${what} must be a JSON object`);
  }
  return v as Record<string, unknown>;
}

/** protocol §2.1 header rules; returns the algorithm to verify with. */
function checkHeader(h: Record<string, unknown>): AllowedAlg {
  const alg = h['alg'];
  if (typeof alg !== 'string' || !(ALLOWED_ALGS as readonly string[]).includes(alg)) {
    throw new CasebridgeError('BAD_HEADER', `alg must be one of ${ALLOWED_ALGS.join(', ')}`);
  }
  if (h['typ'] !== MESSAGE_TYP) {
    throw new CasebridgeError('BAD_HEADER', `typ must be ${MESSAGE_TYP}`);
  }
  if ('b64' in h) {
    // RFC 7797 unencoded payloads are refused; b64: true is the default and harmless
    // only without crit, which we refuse anyway below when it names b64.
    if (h['b64'] !== true) throw new CasebridgeError('BAD_HEADER', 'b64: false is not accepted');
  }
  if ('crit' in h) {
    throw new CasebridgeError('BAD_HEADER', 'no crit extensions are understood');
  }
  for (const m of FORBIDDEN_HEADER_MEMBERS) {
    if (m in h)
      throw new CasebridgeError('BAD_HEADER', `${m} is not accepted; the key comes from x5c`);
  }
  const x5c = h['x5c'];
  if (
    !Array.isArray(x5c) ||
    x5c.length === 0 ||
    x5c.length > MAX_CHAIN ||
    !x5c.every((c) => typeof c === 'string' && c.length > 0)
  ) {
    throw new CasebridgeError('BAD_HEADER', 'x5c must be a non-empty array of base64 certificates');
  }
  return alg as AllowedAlg;
}

function parseX5c(deps: VerifyDeps, x5c: string[]): X509Certificate[] {
  try {
    return deps.parseChain(x5c);
  } catch (e) {
    throw new CasebridgeError('CERT_INVALID', 'signer certificate refused: malformed', {
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
