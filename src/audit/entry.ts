/**
 * protocol §6.1 audit entries: the exact bytes that are hashed into the log.
 *
 * The serialization is fixed (member order, no whitespace, `JSON.stringify`
 * escaping), so `parseEntry` can insist on it: a stored entry must re-serialize to
 * the very bytes it came from, which rules out duplicate members, reordering and
 * any second reading of the same signed bytes.
 */
import type { AuditActor, AuditDraft, AuditEntry, AuditEvent } from './types.js';
import { AuditError } from './errors.js';

/** protocol §6.1 `v`. */
export const ENTRY_VERSION = 1;

/** Every event the log may carry; a `Record` so a new `AuditEvent` member fails to compile here. */
const EVENTS: Record<AuditEvent, true> = {
  'message.accepted': true,
  'message.refused': true,
  'message.queued': true,
  'message.delivered': true,
  'message.claimed': true,
  'message.released': true,
  'message.claim-lapsed': true,
  'message.decided': true,
  'message.dead-lettered': true,
  'message.shredded': true,
  'pki.crl-loaded': true,
  'registry.loaded': true,
  'gateway.started': true,
  'clock.stepped': true,
  'file.stored': true,
  'file.bound': true,
  'file.downloaded': true,
  'file.expired': true,
};

export function isAuditEvent(s: unknown): s is AuditEvent {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(EVENTS, s);
}

/** The optional members, in their fixed serialization order (protocol §6.1). */
const OPTIONAL_STRINGS = ['messageId', 'digest', 'from', 'to', 'type', 'inReplyTo'] as const;
type OptionalString = (typeof OPTIONAL_STRINGS)[number];

const TOP_MEMBERS = new Set<string>([
  'v',
  'index',
  'ts',
  'event',
  'actor',
  ...OPTIONAL_STRINGS,
  'detail',
]);
const ACTOR_MEMBERS = new Set<string>(['agency', 'role', 'subject']);

/** RFC 3339 UTC with milliseconds, exactly as `Date.prototype.toISOString` writes it. */
const TS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const SHA256_RE = /^sha256:[0-9a-f]{64}$/;

type DetailValue = string | number | boolean;

/** Printable ASCII but `"` and `\`: the strings `JSON.stringify` writes unchanged between quotes. */
const PLAIN_STRING = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** Exactly `JSON.stringify(s)`; a plain string is quoted without a call into it. */
function jsonString(s: string): string {
  return PLAIN_STRING.test(s) ? `"${s}"` : JSON.stringify(s);
}

/**
 * The entry's JSON text, written member by member in the order docs/auditing.md
 * fixes. It equals `JSON.stringify` of an object built in that order (the
 * entry tests hold it to that), without building and walking the object.
 */
function entryJson(e: AuditDraft, index: number, ts: string): string {
  const a = e.actor;
  let s =
    `{"v":${ENTRY_VERSION},"index":${index},"ts":${jsonString(ts)},"event":${jsonString(e.event)},` +
    `"actor":{"agency":${jsonString(a.agency)},"role":${jsonString(a.role)},"subject":${jsonString(a.subject)}}`;
  for (const k of OPTIONAL_STRINGS) {
    const val = e[k];
    if (val !== undefined) s += `,"${k}":${jsonString(val)}`;
  }
  if (e.detail !== undefined) s += `,"detail":${detailJson(e.detail)}`;
  return s + '}';
}

function detailJson(detail: Record<string, DetailValue>): string {
  let s = '';
  for (const [k, val] of Object.entries(detail)) {
    // The entry object this text replaces took members by assignment, and
    // `o.__proto__ = primitive` adds none; the bytes stay as they were.
    if (k === '__proto__') continue;
    const v = typeof val === 'string' ? jsonString(val) : JSON.stringify(val);
    s += `${s === '' ? '{' : ','}${jsonString(k)}:${v}`;
  }
  return s === '' ? '{}' : s + '}';
}

function checkDraft(draft: AuditDraft, index: number): void {
  if (!Number.isSafeInteger(index) || index < 0)
    throw new AuditError('draft-invalid', 'index must be a non-negative integer');
  if (!isAuditEvent(draft.event)) throw new AuditError('draft-invalid', 'unknown event');
  const a = draft.actor as Partial<AuditActor> | undefined;
  if (
    a === undefined ||
    typeof a.agency !== 'string' ||
    typeof a.role !== 'string' ||
    typeof a.subject !== 'string'
  ) {
    throw new AuditError('draft-invalid', 'actor must have string agency, role and subject');
  }
  for (const k of OPTIONAL_STRINGS) {
    const val: unknown = draft[k];
    if (val !== undefined && typeof val !== 'string')
      throw new AuditError('draft-invalid', `${k} must be a string`);
  }
  if (draft.detail !== undefined) {
    if (typeof draft.detail !== 'object' || draft.detail === null || Array.isArray(draft.detail)) {
      throw new AuditError('draft-invalid', 'detail must be an object');
    }
    for (const [k, val] of Object.entries(draft.detail)) {
      const ok =
        typeof val === 'string' ||
        typeof val === 'boolean' ||
        (typeof val === 'number' && Number.isFinite(val));
      if (!ok)
        throw new AuditError(
          'draft-invalid',
          `detail.${k} must be a string, finite number or boolean`,
        );
    }
  }
}

/**
 * The exact UTF-8 bytes of the protocol §6.1 entry for `draft` at `index`, stamped `ts`.
 * Members outside the entry format are dropped, never serialized.
 */
export function serializeEntry(draft: AuditDraft, index: number, ts: Date): Buffer {
  checkDraft(draft, index);
  let iso: string;
  try {
    iso = ts.toISOString();
  } catch (cause) {
    throw new AuditError('draft-invalid', 'ts is not a valid date', { cause });
  }
  if (!TS_RE.test(iso))
    throw new AuditError('draft-invalid', 'ts is outside the RFC 3339 four-digit-year range');
  return Buffer.from(entryJson(draft, index, iso), 'utf8');
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function malformed(detail: string, cause?: unknown): AuditError {
  return new AuditError('entry-malformed', detail, cause === undefined ? undefined : { cause });
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/**
 * Parses and validates entry bytes. Throws `AuditError('entry-malformed')` on
 * anything that is not exactly what `serializeEntry` would have written.
 */
export function parseEntry(bytes: Uint8Array): AuditEntry {
  let text: string;
  let raw: unknown;
  try {
    text = utf8.decode(bytes);
    raw = JSON.parse(text);
  } catch (cause) {
    throw malformed('entry is not UTF-8 JSON', cause);
  }
  if (!isPlainObject(raw)) throw malformed('entry is not a JSON object');
  for (const k of Object.keys(raw)) if (!TOP_MEMBERS.has(k)) throw malformed(`unknown member ${k}`);
  if (raw['v'] !== ENTRY_VERSION) throw malformed('unsupported version');
  const index = raw['index'];
  if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0)
    throw malformed('bad index');
  const ts = raw['ts'];
  if (typeof ts !== 'string' || !TS_RE.test(ts) || Number.isNaN(Date.parse(ts)))
    throw malformed('bad ts');
  const event = raw['event'];
  if (!isAuditEvent(event)) throw malformed('unknown event');
  const actor = raw['actor'];
  if (!isPlainObject(actor)) throw malformed('bad actor');
  for (const k of Object.keys(actor))
    if (!ACTOR_MEMBERS.has(k)) throw malformed(`unknown actor member ${k}`);
  const { agency, role, subject } = actor;
  if (
    typeof agency !== 'string' ||
    typeof role !== 'string' ||
    typeof subject !== 'string' ||
    !SHA256_RE.test(subject)
  ) {
    throw malformed('bad actor');
  }
  const entry: AuditEntry = {
    v: ENTRY_VERSION,
    index,
    ts,
    event,
    actor: { agency, role, subject },
  };
  for (const k of OPTIONAL_STRINGS) {
    const val = raw[k];
    if (val === undefined) continue;
    if (typeof val !== 'string') throw malformed(`${k} must be a string`);
    entry[k as OptionalString] = val;
  }
  if (entry.digest !== undefined && !SHA256_RE.test(entry.digest)) throw malformed('bad digest');
  const detail = raw['detail'];
  if (detail !== undefined) {
    if (!isPlainObject(detail)) throw malformed('detail must be an object');
    const d: Record<string, DetailValue> = {};
    for (const [k, val] of Object.entries(detail)) {
      if (typeof val !== 'string' && typeof val !== 'number' && typeof val !== 'boolean') {
        throw malformed(`detail.${k} must be a string, number or boolean`);
      }
      d[k] = val;
    }
    entry.detail = d;
  }
  // Canonical form: the bytes must be exactly what serializeEntry writes for this entry.
  if (entryJson(entry, index, ts) !== text) throw malformed('entry is not in canonical form');
  return entry;
}
