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

/** RFC 8785 §3.2.3: compares names as sequences of UTF-16 code units, not code points or locale. */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** RFC 8785 §3.2.2.2 refuses lone surrogates: the value would not be valid I-JSON (RFC 7493 §2.1). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function serializeString(s: string): string {
  if (LONE_SURROGATE.test(s)) throw new CanonicalizationError('a string holds a lone surrogate');
  return JSON.stringify(s);
}

function write(value: unknown, out: string[]): void {
  if (value === null) {
    out.push('null');
    return;
  }
  switch (typeof value) {
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'number':
      out.push(serializeNumber(value));
      return;
    case 'string':
      out.push(serializeString(value));
      return;
    case 'object':
      break;
    default:
      throw new CanonicalizationError(`a ${typeof value} has no JSON form`);
  }
  if (Array.isArray(value)) {
    out.push('[');
    value.forEach((item, i) => {
      if (i > 0) out.push(',');
      write(item, out);
    });
    out.push(']');
    return;
  }
  const obj = value as Record<string, unknown>;
  out.push('{');
  Object.keys(obj)
    .sort(byCodeUnits)
    .forEach((name, i) => {
      if (i > 0) out.push(',');
      out.push(serializeString(name), ':');
      write(obj[name], out);
    });
  out.push('}');
}

/** The RFC 8785 canonical text of a parsed JSON value. */
export function canonicalize(value: unknown): string {
  const out: string[] = [];
  write(value, out);
  return out.join('');
}

/** The RFC 8785 canonical bytes (UTF-8, RFC 8785 §3.2.4). */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}
