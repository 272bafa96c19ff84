/**
 * The one strict decoder of a compact JWS (RFC 7515 §7.1) for casebridge, used by
 * the gateway and by the offline verifier alike (protocol §2.1: one signed message
 * has one meaning). Pure: node:buffer and the strict JSON parser only.
 *
 * - Every segment is canonical base64url (RFC 7515 §2, RFC 4648 §5 and §3.5): no
 *   padding, no characters outside the alphabet, no non-zero trailing bits. A
 *   decoder that ignores trailing bits would let two texts carry one value.
 * - Header and payload are strict UTF-8 (RFC 3629) and strict JSON: no duplicate
 *   member names, no lone surrogates, no byte order mark.
 * Every failure is `MALFORMED`; details never quote the input.
 */
import { CasebridgeError } from '../errors.js';
import { nonPlainNumberPointers, parseStrictJson } from '../schema/strict-json.js';

export interface DecodedJws {
  /** The three segments as received. */
  protectedB64: string;
  payloadB64: string;
  signatureB64: string;
  header: Record<string, unknown>;
  /** The payload bytes, exactly as signed. */
  payloadBytes: Buffer;
  /** The parsed payload (any JSON value). */
  payload: unknown;
  /** JSON Pointers of payload numbers not written as plain integers (`1.0`, `1e2`, `-0`). */
  nonPlainNumbers: string[];
  signature: Buffer;
}

const B64URL = /^[A-Za-z0-9_-]*$/;
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

function malformed(detail: string): CasebridgeError {
  return new CasebridgeError('MALFORMED', detail);
}

/** Canonical base64url to bytes; undefined when `s` is not the one encoding of its bytes. */
export function canonicalBase64url(s: string): Buffer | undefined {
  if (!B64URL.test(s) || s.length % 4 === 1) return undefined;
  const bytes = Buffer.from(s, 'base64url');
  return bytes.toString('base64url') === s ? bytes : undefined;
}

/** Canonical padded base64 (RFC 4648 §4), as `x5c` members are (RFC 7515 §4.1.6). */
export function canonicalBase64(s: string): Buffer | undefined {
  if (s.length % 4 !== 0 || !B64.test(s)) return undefined;
  const bytes = Buffer.from(s, 'base64');
  return bytes.toString('base64') === s ? bytes : undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function strictText(bytes: Buffer, what: string): string {
  try {
    // ignoreBOM keeps a BOM in the text, where the JSON parser refuses it.
    return utf8.decode(bytes);
  } catch {
    throw malformed(`${what} is not valid UTF-8`);
  }
}

function strictJson(text: string, what: string): unknown {
  try {
    return parseStrictJson(text);
  } catch (e) {
    throw new CasebridgeError('MALFORMED', `${what}: ${(e as Error).message}`, { cause: e });
  }
}

/** Decodes a compact JWS strictly; throws `CasebridgeError('MALFORMED')`. */
export function decodeJws(jws: string): DecodedJws {
  if (typeof jws !== 'string') throw malformed('a compact JWS is a string');
  const parts = jws.split('.');
  if (parts.length !== 3) throw malformed('a compact JWS has three parts');
  const [protectedB64, payloadB64, signatureB64] = parts as [string, string, string];
  if (protectedB64 === '') throw malformed('the JWS protected header is empty');
  const [h, p, s] = parts.map(canonicalBase64url);
  if (h === undefined || p === undefined || s === undefined)
    throw malformed('JWS parts must be canonical base64url, without padding');

  const header = strictJson(strictText(h, 'protected header'), 'protected header');
  if (header === null || typeof header !== 'object' || Array.isArray(header))
    throw malformed('protected header must be a JSON object');
  const payloadText = strictText(p, 'payload');
  const payload = strictJson(payloadText, 'payload');
  return {
    protectedB64,
    payloadB64,
    signatureB64,
    header: header as Record<string, unknown>,
    payloadBytes: p,
    payload,
    nonPlainNumbers: nonPlainNumberPointers(payloadText),
    signature: s,
  };
}
