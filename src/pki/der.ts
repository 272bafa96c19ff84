/**
 * A strict, minimal DER reader (ITU-T X.690 §8, §10) for hostile input: certificates
 * and CRLs. It hands out exact byte slices, so signatures are checked over the bytes
 * that were signed, never over a re-encoding. Building DER is done with node-forge.
 */
import { PkiError } from './errors.js';

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  TELETEX_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Context-specific, constructed `[n]`. */
export const ctx = (n: number): number => 0xa0 | n;

export interface DerNode {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

function malformed(detail: string): PkiError {
  return new PkiError('malformed', `DER: ${detail}`);
}

/** Reads one TLV at `offset`, which must end at or before `limit`. */
export function readNode(buf: Uint8Array, offset: number, limit: number = buf.length): DerNode {
  if (offset + 2 > limit) throw malformed('truncated header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw malformed('high tag numbers are not used here');
  let len = buf[offset + 1]!;
  let p = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    // X.690 §10.1: definite form, minimal length octets.
    if (n === 0) throw malformed('indefinite length');
    if (n > 4) throw malformed('length too large');
    if (p + n > limit) throw malformed('truncated length');
    if (buf[p] === 0) throw malformed('non-minimal length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
    if (len < 0x80) throw malformed('non-minimal length');
  }
  if (p + len > limit) throw malformed('truncated content');
  return { tag, start: offset, contentStart: p, end: p + len };
}

/** Parses a buffer holding exactly one TLV. */
export function readRoot(buf: Uint8Array): DerNode {
  const node = readNode(buf, 0);
  if (node.end !== buf.length) throw malformed('trailing bytes');
  return node;
}

export function children(buf: Uint8Array, node: DerNode): DerNode[] {
  if ((node.tag & 0x20) === 0) throw malformed('expected a constructed value');
  const out: DerNode[] = [];
  let p = node.contentStart;
  while (p < node.end) {
    const c = readNode(buf, p, node.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

export function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (!node || node.tag !== tag) throw malformed(`expected ${what}`);
  return node;
}

export const content = (buf: Buffer, n: DerNode): Buffer => buf.subarray(n.contentStart, n.end);
export const whole = (buf: Buffer, n: DerNode): Buffer => buf.subarray(n.start, n.end);

export function decodeOid(bytes: Uint8Array): string {
  if (bytes.length === 0) throw malformed('empty OID');
  const arcs: number[] = [];
  let v = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (v === 0 && b === 0x80) throw malformed('non-minimal OID arc');
    v = v * 128 + (b & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER / 128) throw malformed('OID arc too large');
    if ((b & 0x80) === 0) {
      arcs.push(v);
      v = 0;
    } else if (i === bytes.length - 1) {
      throw malformed('truncated OID');
    }
  }
  const first = arcs.shift()!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs].join('.');
}

/** An INTEGER's magnitude as lowercase hex without leading zeros ("0" for zero). */
export function integerHex(bytes: Uint8Array): string {
  if (bytes.length === 0) throw malformed('empty INTEGER');
  return normalizeSerialHex(Buffer.from(bytes).toString('hex'));
}

/** Serial numbers compare as lowercase hex without leading zeros or separators. */
export function normalizeSerialHex(hex: string): string {
  const h = hex.replace(/[:\s]/g, '').toLowerCase().replace(/^0+/, '');
  if (!/^[0-9a-f]*$/.test(h)) throw new PkiError('malformed', 'serial is not hex');
  return h === '' ? '0' : h;
}

/** RFC 5280 §4.1.2.5.1 UTCTime `YYMMDDHHMMSSZ` and §4.1.2.5.2 GeneralizedTime `YYYYMMDDHHMMSSZ`. */
export function decodeTime(buf: Buffer, node: DerNode): Date {
  const s = content(buf, node).toString('latin1');
  let m: RegExpExecArray | null;
  let year: number;
  if (node.tag === TAG.UTC_TIME) {
    m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
    if (!m) throw malformed('bad UTCTime');
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (node.tag === TAG.GENERALIZED_TIME) {
    m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
    if (!m) throw malformed('bad GeneralizedTime');
    year = Number(m[1]);
  } else {
    throw malformed('expected a time');
  }
  const [mo, d, h, mi, se] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const t = Date.UTC(year, mo - 1, d, h, mi, se);
  const back = new Date(t);
  if (back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) {
    throw malformed('time out of range');
  }
  return back;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A directory string (RFC 5280 §4.1.2.4) as a JS string. */
export function decodeString(buf: Buffer, node: DerNode): string {
  const c = content(buf, node);
  switch (node.tag) {
    case TAG.UTF8_STRING:
      try {
        return utf8.decode(c);
      } catch (e) {
        throw new PkiError('malformed', 'DER: bad UTF8String', { cause: e });
      }
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
      if (c.some((b) => b > 0x7f)) throw malformed('non-ASCII in an ASCII string');
      return c.toString('latin1');
    case TAG.TELETEX_STRING:
      return c.toString('latin1');
    case TAG.BMP_STRING: {
      if (c.length % 2 !== 0) throw malformed('odd BMPString');
      return Buffer.from(c).swap16().toString('utf16le');
    }
    default:
      throw malformed('unsupported string type');
  }
}
