/**
 * Strict JSON parsing for signed payloads (protocol §2.2): RFC 8259 JSON, but a
 * document with a duplicate member name anywhere is refused, because a signed
 * document must mean one thing to every reader (RFC 8259 §4 leaves duplicates
 * to the implementation; readers disagree on which value wins).
 *
 * How it works, and why it is fast (see test/schema/strict-json.bench.ts):
 *  1. one pass over the text outside strings counts `:` tokens and the nesting
 *     depth, jumping over string literals with indexOf;
 *  2. the native JSON.parse checks the grammar and builds the value;
 *  3. a walk over the result counts own keys.
 * In a valid JSON text every member has exactly one `:` outside strings. The
 * parsed tree holds each surviving object's *distinct* names, and a duplicate
 * also drops the subtree of the overwritten value, so the key count equals the
 * `:` count if and only if no object anywhere had a duplicate name. Names are
 * compared after unescaping (JSON.parse decodes them), so "a" and "\u0061"
 * collide.
 *
 * Lone surrogates (raw, or escaped as `\uD800`) are REFUSED: they cannot be
 * encoded as UTF-8, so readers would disagree on what such a string says.
 *
 * Error details never quote the input (protocol §4); they give a reason and, where
 * the scanner knows it, a character offset.
 */
import { CasebridgeError } from '../errors.js';

/** Deepest nesting of arrays/objects accepted. An envelope needs about 6. */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \
const COLON = 0x3a; // :
const OPEN_BRACE = 0x7b; // {
const CLOSE_BRACE = 0x7d; // }
const OPEN_BRACKET = 0x5b; // [
const CLOSE_BRACKET = 0x5d; // ]

/** An escaped UTF-16 surrogate code unit, `\uD800`..`\uDFFF` (may be a false positive after `\\`). */
const ESCAPED_SURROGATE = /\\u[dD][89a-fA-F]/;

interface WellFormed {
  isWellFormed(): boolean;
}
/** No lone surrogate (ES2024 String.prototype.isWellFormed, which Node 20 has but lib ES2023 does not type). */
export const isWellFormed = (s: string): boolean => (s as unknown as WellFormed).isWellFormed();

function malformed(detail: string, cause?: unknown): CasebridgeError {
  return new CasebridgeError('MALFORMED', detail, cause === undefined ? undefined : { cause });
}

/**
 * Parses `text` as strict JSON. Throws `CasebridgeError('MALFORMED')` for a syntax
 * error, a duplicate member name at any depth, nesting deeper than
 * {@link MAX_JSON_DEPTH}, or a lone surrogate. A leading BOM is a syntax error.
 */
export function parseStrictJson(text: string): unknown {
  if (typeof text !== 'string') throw malformed('JSON text must be a string');

  // Pass 1: members and depth, outside string literals.
  const n = text.length;
  let members = 0;
  let depth = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // Jump to the closing quote: the next '"' preceded by an even run of '\'.
      let j = i;
      for (;;) {
        j = text.indexOf('"', j + 1);
        if (j < 0) throw malformed(`unterminated string starting at offset ${i}`);
        let k = j - 1;
        while (text.charCodeAt(k) === BACKSLASH) k--;
        if ((j - 1 - k) % 2 === 0) break;
      }
      i = j;
    } else if (c === COLON) {
      members++;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > MAX_JSON_DEPTH) {
        throw malformed(`nesting deeper than ${MAX_JSON_DEPTH} at offset ${i}`);
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }

  // Pass 2: grammar and value. V8's messages quote the input, so they are dropped.
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed('not a valid JSON text (RFC 8259)');
  }

  if (!isWellFormed(text)) throw malformed('lone surrogate in JSON text');
  // Escaped surrogates are rare (JSON.stringify writes non-ASCII raw), so the
  // string walk only runs when the text has one.
  const checkStrings = text.includes('\\u') && ESCAPED_SURROGATE.test(text);

  // Pass 3: distinct names in the tree. Depth is ≤ MAX_JSON_DEPTH here, so recursion is safe.
  const found = countKeys(value, checkStrings);
  if (found !== members) throw malformed('duplicate member name in JSON text');
  return value;
}

/** Own keys of every object in `v`; with `checkStrings`, also refuses ill-formed strings. */
function countKeys(v: unknown, checkStrings: boolean): number {
  if (typeof v !== 'object' || v === null) {
    if (checkStrings && typeof v === 'string' && !isWellFormed(v)) {
      throw malformed('lone surrogate escape in JSON string');
    }
    return 0;
  }
  let count = 0;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const e: unknown = v[i];
      if (typeof e === 'object' && e !== null) count += countKeys(e, checkStrings);
      else if (checkStrings) countKeys(e, checkStrings);
    }
    return count;
  }
  const obj = v as Record<string, unknown>;
  // for-in is about twice as fast as Object.keys here. JSON.parse objects inherit
  // only from Object.prototype; were it polluted with an enumerable member, the
  // count would exceed the `:` count and the text would be refused (fail closed).
  for (const key in obj) {
    count++;
    if (checkStrings && !isWellFormed(key))
      throw malformed('lone surrogate escape in JSON member name');
    const e = obj[key];
    if (typeof e === 'object' && e !== null) count += countKeys(e, checkStrings);
    else if (checkStrings) countKeys(e, checkStrings);
  }
  return count;
}

/**
 * Decodes UTF-8 bytes (a JWS payload) and parses them strictly. Invalid UTF-8
 * and a byte order mark are refused (RFC 8259 §8.1).
 */
export function parseStrictJsonBytes(bytes: Uint8Array): unknown {
  let text: string;
  try {
    // ignoreBOM keeps a BOM in the text, where the parser refuses it.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw malformed('JSON text is not valid UTF-8');
  }
  return parseStrictJson(text);
}

const PLAIN_INTEGER = /^-?(?:0|[1-9]\d*)$/;

/**
 * JSON Pointers (RFC 6901) of every number in `text` that is not written as a
 * plain integer: a fraction (`1.0`), an exponent (`1e2`) or `-0`. JSON.parse
 * forgets the lexical form, and `1.0` and `1` are the same value to it, so a
 * member the schema types as integer needs this to refuse `1.0` (protocol §2.1).
 * `text` must already have passed {@link parseStrictJson}.
 */
export function nonPlainNumberPointers(text: string): string[] {
  // Fast pass: most documents have no such number, and then no pointer is built.
  if (!hasNonPlainNumber(text)) return [];
  const out: string[] = [];
  new PointerWalker(text, out).value('');
  return out;
}

function isNumberStart(c: number): boolean {
  return c === 0x2d || (c >= 0x30 && c <= 0x39);
}

function numberEnd(text: string, i: number): number {
  let j = i;
  while (j < text.length && /[-+.eE0-9]/.test(text[j]!)) j++;
  return j;
}

function hasNonPlainNumber(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i);
    } else if (isNumberStart(c)) {
      const j = numberEnd(text, i);
      const token = text.slice(i, j);
      if (!PLAIN_INTEGER.test(token) || token === '-0') return true;
      i = j - 1;
    }
  }
  return false;
}

/** Index of the closing quote of the string literal opening at `i`. */
function stringEnd(text: string, i: number): number {
  let j = i;
  for (;;) {
    j = text.indexOf('"', j + 1);
    if (j < 0) throw malformed(`unterminated string starting at offset ${i}`);
    let k = j - 1;
    while (text.charCodeAt(k) === BACKSLASH) k--;
    if ((j - 1 - k) % 2 === 0) return j;
  }
}

/** A walk over an already valid JSON text that knows where it is. */
class PointerWalker {
  private i = 0;
  constructor(
    private readonly text: string,
    private readonly out: string[],
  ) {}

  private skipWs(): void {
    while (/[ \t\r\n]/.test(this.text[this.i] ?? '')) this.i++;
  }

  value(pointer: string): void {
    this.skipWs();
    const c = this.text.charCodeAt(this.i);
    if (c === OPEN_BRACE) {
      this.i++;
      this.skipWs();
      if (this.text.charCodeAt(this.i) === CLOSE_BRACE) {
        this.i++;
        return;
      }
      for (;;) {
        this.skipWs();
        const end = stringEnd(this.text, this.i);
        const name = JSON.parse(this.text.slice(this.i, end + 1)) as string;
        this.i = end + 1;
        this.skipWs();
        this.i++; // ':'
        this.value(`${pointer}/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`);
        this.skipWs();
        if (this.text.charCodeAt(this.i++) === CLOSE_BRACE) return;
      }
    }
    if (c === OPEN_BRACKET) {
      this.i++;
      this.skipWs();
      if (this.text.charCodeAt(this.i) === CLOSE_BRACKET) {
        this.i++;
        return;
      }
      for (let n = 0; ; n++) {
        this.value(`${pointer}/${n}`);
        this.skipWs();
        if (this.text.charCodeAt(this.i++) === CLOSE_BRACKET) return;
      }
    }
    if (c === QUOTE) {
      this.i = stringEnd(this.text, this.i) + 1;
      return;
    }
    if (isNumberStart(c)) {
      const j = numberEnd(this.text, this.i);
      const token = this.text.slice(this.i, j);
      if (!PLAIN_INTEGER.test(token) || token === '-0') this.out.push(pointer);
      this.i = j;
      return;
    }
    // true, false, null
    while (/[a-z]/.test(this.text[this.i] ?? '')) this.i++;
  }
}
