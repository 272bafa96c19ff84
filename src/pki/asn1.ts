/** DER building blocks on node-forge's ASN.1 model, with Buffers at the edges. */
import forge from 'node-forge';
import { PkiError } from './errors.js';
import type { SignatureAlgorithm } from './keys.js';

const { asn1 } = forge;
type Node = forge.asn1.Asn1;
const U = asn1.Class.UNIVERSAL;
const T = asn1.Type;

const bin = (b: Uint8Array): string => Buffer.from(b).toString('binary');

export const seq = (items: Node[]): Node => asn1.create(U, T.SEQUENCE, true, items);
export const set = (items: Node[]): Node => asn1.create(U, T.SET, true, items);
export const oid = (o: string): Node => asn1.create(U, T.OID, false, asn1.oidToDer(o).getBytes());
export const nul = (): Node => asn1.create(U, T.NULL, false, '');
export const bool = (v: boolean): Node =>
  asn1.create(U, T.BOOLEAN, false, String.fromCharCode(v ? 0xff : 0x00));
export const octets = (b: Uint8Array): Node => asn1.create(U, T.OCTETSTRING, false, bin(b));
export const utf8 = (s: string): Node => asn1.create(U, T.UTF8, false, forge.util.encodeUtf8(s));
export const printable = (s: string): Node => asn1.create(U, T.PRINTABLESTRING, false, s);
/** `[n]` EXPLICIT. */
export const explicit = (n: number, inner: Node): Node =>
  asn1.create(asn1.Class.CONTEXT_SPECIFIC, n, true, [inner]);
/** `[n]` IMPLICIT on a primitive value. */
export const implicitPrimitive = (n: number, b: Uint8Array): Node =>
  asn1.create(asn1.Class.CONTEXT_SPECIFIC, n, false, bin(b));

/** A BIT STRING with no unused bits (signatures, keys). */
export const bitString = (b: Uint8Array): Node =>
  asn1.create(U, T.BITSTRING, false, String.fromCharCode(0) + bin(b));

/** A named-bit BIT STRING (X.690 §11.2.2: trailing zero bits removed). */
export function namedBits(bits: number[]): Node {
  const max = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(max / 8) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  const unused = 7 - (max & 7);
  return asn1.create(U, T.BITSTRING, false, String.fromCharCode(unused) + bin(bytes));
}

/** A non-negative INTEGER from its big-endian magnitude. */
export function uint(magnitude: Uint8Array | bigint | number): Node {
  let hex =
    typeof magnitude === 'bigint' || typeof magnitude === 'number'
      ? BigInt(magnitude).toString(16)
      : Buffer.from(magnitude).toString('hex');
  hex = hex.replace(/^(00)+/, '');
  if (hex.length % 2) hex = `0${hex}`;
  if (hex === '' || parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`;
  return asn1.create(U, T.INTEGER, false, bin(Buffer.from(hex, 'hex')));
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; seconds, Z. */
export function time(d: Date): Node {
  if (Number.isNaN(d.getTime())) throw new RangeError('invalid date');
  const y = d.getUTCFullYear();
  const rest = `${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return asn1.create(U, T.UTCTIME, false, `${pad(y % 100)}${rest}`);
  return asn1.create(U, T.GENERALIZEDTIME, false, `${pad(y, 4)}${rest}`);
}

export function algorithmIdentifier(alg: SignatureAlgorithm): Node {
  return seq(alg.nullParams ? [oid(alg.oid), nul()] : [oid(alg.oid)]);
}

export function toDer(node: Node): Buffer {
  return Buffer.from(asn1.toDer(node).getBytes(), 'binary');
}

/**
 * Embeds existing DER (a Name, a SubjectPublicKeyInfo) as a node. BIT STRINGs are
 * kept opaque, and the round trip is checked so the bytes stay exactly as given.
 */
export function embed(der: Buffer): Node {
  const fromDer = asn1.fromDer as unknown as (bytes: string, options: object) => Node;
  const node = fromDer(bin(der), { strict: true, decodeBitStrings: false, parseAllBytes: true });
  if (!toDer(node).equals(der))
    throw new PkiError('malformed', 'DER does not round-trip (not canonical)');
  return node;
}

export type { Node as Asn1Node };
