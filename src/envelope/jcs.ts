/**
 * The JSON Canonicalization Scheme, RFC 8785: one byte sequence per JSON value, so
 * two envelopes mean the same thing exactly when their canonical bytes are equal
 * (protocol §3, replay by meaning). Pure: no I/O.
 *
 * - literals and strings as ECMAScript JSON.stringify writes them (RFC 8785 §3.2.2.2);
 * - numbers as ECMAScript Number.prototype.toString (RFC 8785 §3.2.2.3); NaN and
 *   the infinities have no JSON form and are refused;
 * - object members sorted by their names as arrays of UTF-16 code units
 *   (RFC 8785 §3.2.3), arrays in order, no whitespace.
 */

import { isWellFormed } from '../schema/strict-json.js';

export class CanonicalizationError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'CanonicalizationError';
  }
}

/** RFC 8785 §3.2.2.3: ECMAScript's shortest round-trip form; -0 serializes as 0. */
function serializeNumber(n: number): string {
  if (!Number.isFinite(n)) throw new CanonicalizationError('NaN and Infinity have no JSON form');
  return Object.is(n, -0) ? '0' : String(n);
}

/**
 * RFC 8785 §3.2.3: names in the order of their UTF-16 code units, not code points
 * or locale, which is what `<` on strings compares. Envelopes have a dozen names
 * per object, where an insertion sort in place beats Array.prototype.sort and the
 * comparator calls and copies it makes; larger objects take the library sort.
 */
const INSERTION_SORT_MAX = 24;

function sortedNames(obj: object): string[] {
  const names = Object.keys(obj);
  if (names.length > INSERTION_SORT_MAX) return names.sort(byCodeUnits);
  for (let i = 1; i < names.length; i++) {
    const name = names[i] as string;
    let j = i - 1;
    while (j >= 0 && (names[j] as string) > name) {
      names[j + 1] = names[j] as string;
      j--;
    }
    names[j + 1] = name;
  }
  return names;
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** RFC 8785 §3.2.2.2 refuses lone surrogates: the value would not be valid I-JSON (RFC 7493 §2.1). */
function serializeString(s: string): string {
  if (!isWellFormed(s)) throw new CanonicalizationError('a string holds a lone surrogate');
  return JSON.stringify(s);
}

/**
 * The RFC 8785 canonical text of a parsed JSON value, built by concatenation
 * (V8 ropes), not an array of parts.
 */
export function canonicalize(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      return serializeNumber(value);
    case 'string':
      return serializeString(value);
    case 'object':
      break;
    default:
      throw new CanonicalizationError(`a ${typeof value} has no JSON form`);
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += canonicalize(value[i]);
    }
    return out + ']';
  }
  const obj = value as Record<string, unknown>;
  const names = sortedNames(obj);
  let out = '{';
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    if (i > 0) out += ',';
    out += serializeString(name) + ':' + canonicalize(obj[name]);
  }
  return out + '}';
}

/** The RFC 8785 canonical bytes (UTF-8, RFC 8785 §3.2.4). */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}
