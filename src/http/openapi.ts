/**
 * The OpenAPI 3.1 description of the HTTP API (docs/protocol.md §8: "generated from … the
 * same JSON Schemas the gateway validates with"). The message schemas are not
 * copied: each document handed in becomes a component, and every `$ref` in it
 * is rewritten from its `$id`-based target to the component that now holds it.
 * Error codes come from `STATUS_BY_CODE`, so a new code shows up here unaided.
 *
 * Pure: no I/O. Built once by the HTTP app at start.
 */
import { DECISION_STATUSES, MESSAGE_TYPES } from '../envelope/types.js';
import { STATUS_BY_CODE, type ErrorCode } from '../errors.js';
import { CONTEXT_PATH } from '../files/case-export.js';
import { CHECKSUM_ALGORITHMS } from '../files/upload-store.js';
import { TUS_VERSION, UPLOAD_PATH } from '../files/uploads.js';
import { ROLES } from '../pki/types.js';
import { STREAM_EVENTS } from '../review/events.js';
import { LIFECYCLE_STATUSES } from '../review/lifecycle.js';
import { ENVELOPE_SCHEMA_FILE } from '../schema/index.js';
import { PROBLEM_TYPE_PREFIX } from './problem.js';

type Json = Record<string, unknown>;

/** OpenAPI 3.1 §4.8.1: JSON Schema 2020-12 is the native dialect. */
const JSON_SCHEMA_DIALECT = 'https://json-schema.org/draft/2020-12/schema';
const SCHEMA_FILE_SUFFIX = '.schema.json';
const COMPONENT_PREFIX = '#/components/schemas/';
const ENVELOPE = 'Envelope';

/** Refused on every operation (docs/protocol.md §1.2) or possible on any of them. */
const COMMON_CODES: readonly ErrorCode[] = [
  'CLIENT_CERT_REQUIRED',
  'CLIENT_CERT_UNTRUSTED',
  'INTERNAL',
];

const ref = (name: string): Json => ({ $ref: COMPONENT_PREFIX + name });
const envelopePart = (pointer: string): Json => ({
  $ref: `${COMPONENT_PREFIX}${ENVELOPE}${pointer}`,
});
const nullable = (schema: Json): Json => ({ anyOf: [schema, { type: 'null' }] });

/** The deadline members of a message in list and single responses (docs/protocol.md §5.5). */
const DEADLINE_PROPERTIES: Record<string, Json> = {
  deadline: {
    ...nullable(envelopePart('/$defs/dateTime')),
    description: 'The earliest of `respondBy` and, for `funds.freeze`, `body.executeBy`.',
  },
  overdue: { type: 'boolean', description: 'The deadline passed without a final decision.' },
  dueSoon: {
    type: 'boolean',
    description:
      'Not overdue, undecided, and under 25 % of the time from `createdAt` to the deadline left.',
  },
};

// ---------------------------------------------------------------------------
// Schema documents → components

/** `evidence.request.schema.json` → `EvidenceRequestBody`; the envelope → `Envelope`. */
export function componentName(file: string): string {
  if (file === ENVELOPE_SCHEMA_FILE) return ENVELOPE;
  const stem = file.endsWith(SCHEMA_FILE_SUFFIX)
    ? file.slice(0, -SCHEMA_FILE_SUFFIX.length)
    : file.replace(/\.json$/, '');
  const pascal = stem
    .split(/[^A-Za-z0-9]+/)
    .filter((s) => s.length > 0)
    .map((s) => s[0]!.toUpperCase() + s.slice(1))
    .join('');
  return (MESSAGE_TYPES as readonly string[]).includes(stem) ? `${pascal}Body` : pascal;
}

/** JSON Schema 2020-12 keywords whose value is a schema, an array of schemas, or a map of them. */
const SUBSCHEMA = new Set([
  'additionalProperties',
  'contains',
  'contentSchema',
  'else',
  'if',
  'items',
  'not',
  'propertyNames',
  'then',
  'unevaluatedItems',
  'unevaluatedProperties',
]);
const SUBSCHEMA_ARRAY = new Set(['allOf', 'anyOf', 'oneOf', 'prefixItems']);
const SUBSCHEMA_MAP = new Set([
  '$defs',
  'definitions',
  'dependentSchemas',
  'patternProperties',
  'properties',
]);

function withoutFragment(uri: string): string {
  const hash = uri.indexOf('#');
  return hash < 0 ? uri : uri.slice(0, hash);
}

/**
 * Rewrites, in place, every `$ref` of one schema document to a reference into
 * `components.schemas`. Only schema positions are walked (not `enum`, `const`,
 * `default`, `examples`), so data that happens to hold a `$ref` member is left
 * alone. Anything it cannot map — an external document, an `$anchor`
 * fragment, a nested `$id` that would move the base URI — throws: a
 * description with dangling references is worse than none.
 */
function rewriteRefs(
  schema: unknown,
  base: string,
  names: ReadonlyMap<string, string>,
  where: string,
): void {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return; // boolean schemas
  const s = schema as Json;
  if ('$id' in s) throw new Error(`${where}: nested $id is not supported`);
  if ('$dynamicRef' in s || '$recursiveRef' in s)
    throw new Error(`${where}: dynamic references are not supported`);
  if (typeof s['$ref'] === 'string') {
    const target = new URL(s['$ref'], base);
    const name = names.get(withoutFragment(target.href));
    if (name === undefined) throw new Error(`${where}: $ref to an unknown document`);
    // RFC 6901 §6: a JSON Pointer in a URI fragment; an empty fragment is the whole document.
    const fragment = target.hash.slice(1);
    if (fragment !== '' && !fragment.startsWith('/'))
      throw new Error(`${where}: $ref to a plain-name fragment`);
    s['$ref'] = COMPONENT_PREFIX + name + fragment;
  }
  for (const [key, value] of Object.entries(s)) {
    if (SUBSCHEMA.has(key)) {
      rewriteRefs(value, base, names, `${where}/${key}`);
    } else if (SUBSCHEMA_ARRAY.has(key) && Array.isArray(value)) {
      value.forEach((v, i) => rewriteRefs(v, base, names, `${where}/${key}/${i}`));
    } else if (SUBSCHEMA_MAP.has(key) && typeof value === 'object' && value !== null) {
      for (const [k, v] of Object.entries(value))
        rewriteRefs(v, base, names, `${where}/${key}/${k}`);
    }
  }
}

/**
 * Turns `$id`-identified schema documents into `components.schemas` entries.
 * `$id` and `$schema` are dropped from each (the document's `jsonSchemaDialect`
 * covers the latter; keeping `$id` would make `#/components/…` refs resolve
 * against the schema's own URI) and the original `$id` is kept in `$comment`.
 */
export function schemaComponents(schemas: Record<string, object>): Record<string, Json> {
  const names = new Map<string, string>();
  const docs: [string, string, Json][] = [];
  const taken = new Set<string>();
  for (const file of Object.keys(schemas).sort()) {
    const doc = structuredClone(schemas[file]) as Json;
    const id = doc['$id'];
    if (typeof id !== 'string') throw new Error(`schema ${file} has no $id`);
    const base = new URL(id).href;
    const name = componentName(file);
    if (taken.has(name) || names.has(withoutFragment(base)))
      throw new Error(`schema ${file} duplicates ${name}`);
    taken.add(name);
    names.set(withoutFragment(base), name);
    docs.push([file, base, doc]);
  }
  const out: Record<string, Json> = {};
  for (const [file, base, doc] of docs) {
    delete doc['$id'];
    delete doc['$schema'];
    rewriteRefs(doc, base, names, file);
    out[names.get(withoutFragment(base))!] = { $comment: `generated from ${base}`, ...doc };
  }
  if (!(ENVELOPE in out)) throw new Error(`no ${ENVELOPE_SCHEMA_FILE} among the schemas`);
  return out;
}

// ---------------------------------------------------------------------------
// API-only schemas

function apiSchemas(): Record<string, Json> {
  const codes = Object.keys(STATUS_BY_CODE) as ErrorCode[];
  const base64Hash = {
    description: 'A SHA-256 hash (RFC 9162 §2.1), base64.',
    type: 'string',
    contentEncoding: 'base64',
    pattern: '^[A-Za-z0-9+/]{43}=$',
  };
  return {
    Problem: {
      description:
        'RFC 9457 problem details (docs/protocol.md §4). Clients switch on `code`, never on text.',
      type: 'object',
      required: ['type', 'title', 'status', 'code', 'detail'],
      properties: {
        type: { type: 'string', format: 'uri', description: `\`${PROBLEM_TYPE_PREFIX}\` + code.` },
        title: { type: 'string' },
        status: { type: 'integer', minimum: 400, maximum: 599 },
        code: { type: 'string', enum: codes, description: 'Stable error code.' },
        detail: { type: 'string', description: 'What to fix. Never echoes message content.' },
        errors: {
          type: 'array',
          items: ref('ValidationIssue'),
          maxItems: 20,
          description: 'Schema failures (`SCHEMA_INVALID`), up to 20.',
        },
        digest: {
          ...ref('Sha256'),
          description: '`ID_CONFLICT`: the digest of the message on record under this id.',
        },
        location: {
          type: 'string',
          format: 'uri-reference',
          description: '`ID_CONFLICT`: the message on record (also sent as `Location`).',
        },
      },
    },
    ValidationIssue: {
      type: 'object',
      required: ['path', 'keyword', 'message'],
      properties: {
        path: {
          type: 'string',
          description: 'JSON Pointer (RFC 6901) into the validated document.',
        },
        keyword: { type: 'string', description: 'The JSON Schema keyword that failed.' },
        message: { type: 'string' },
        allowedValues: {
          type: 'array',
          description: '`enum`: the values the member may take.',
        },
      },
    },
    Sha256: {
      description: '`sha256:` + lowercase hex SHA-256.',
      type: 'string',
      pattern: '^sha256:[0-9a-f]{64}$',
    },
    CompactJws: {
      description: 'A JWS in compact serialization (RFC 7515 §7.1).',
      type: 'string',
      pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$',
    },
    MessageStatus: {
      description:
        'docs/protocol.md §5.1 lifecycle. A released or lapsed claim returns the message to `delivered`; a final decision makes it `decided`.',
      type: 'string',
      enum: [...LIFECYCLE_STATUSES],
    },
    DecisionStatus: {
      description:
        'The `body.status` of the latest `status.update` answering the message (docs/protocol.md §5.1). `rejected`, `executed` and `partially-executed` are final.',
      type: 'string',
      enum: [...DECISION_STATUSES],
    },
    Claim: {
      description:
        'Who reviews the message, until when (docs/protocol.md §5.4, §5.5). Shown to the two agencies only.',
      type: 'object',
      required: ['subject', 'name', 'at', 'expiresAt'],
      properties: {
        subject: { ...ref('Sha256'), description: 'SHA-256 of the officer certificate (DER).' },
        name: { type: 'string', description: 'The officer certificate’s CN.' },
        at: { ...envelopePart('/$defs/dateTime'), description: 'When the claim was taken.' },
        expiresAt: {
          ...envelopePart('/$defs/dateTime'),
          description:
            'When it lapses (`CASEBRIDGE_CLAIM_TTL_S` after the claim or the holder’s latest non-final decision).',
        },
      },
    },
    StreamEventData: {
      description:
        'The `data:` of each `GET /v1/events` event: these four members and nothing else (docs/protocol.md §5.5).',
      type: 'object',
      additionalProperties: false,
      required: ['id', 'type', 'priority', 'status'],
      properties: {
        id: envelopePart('/$defs/uuid'),
        type: envelopePart('/properties/type'),
        priority: envelopePart('/properties/priority'),
        status: ref('MessageStatus'),
      },
    },
    ReceiptPayload: {
      description:
        'Payload of a receipt JWS (`typ: casebridge-receipt+jws`, signed by the gateway; docs/protocol.md §3).',
      type: 'object',
      required: ['messageId', 'digest', 'logIndex', 'acceptedAt', 'from', 'to', 'type'],
      properties: {
        messageId: envelopePart('/$defs/uuid'),
        digest: ref('Sha256'),
        logIndex: { type: 'integer', minimum: 0 },
        acceptedAt: envelopePart('/$defs/dateTime'),
        from: envelopePart('/$defs/agencyId'),
        to: envelopePart('/$defs/agencyId'),
        type: envelopePart('/properties/type'),
      },
    },
    AcceptResponse: {
      description: 'The message is durably stored and in the audit log (docs/protocol.md §3).',
      type: 'object',
      required: ['id', 'digest', 'logIndex', 'status', 'receipt'],
      properties: {
        id: envelopePart('/$defs/uuid'),
        digest: { ...ref('Sha256'), description: 'Digest of the exact JWS bytes received.' },
        logIndex: {
          type: 'integer',
          minimum: 0,
          description: 'Index of the `message.accepted` audit entry.',
        },
        status: { const: 'accepted' },
        receipt: {
          ...ref('CompactJws'),
          description: 'Receipt JWS signed by the gateway; its payload is a `ReceiptPayload`.',
          'x-jws-payload': ref('ReceiptPayload'),
        },
      },
    },
    BatchAnswerLine: {
      description:
        'One line of a batch answer (docs/protocol.md §3.1): the outcome of input line `line` (from 1), ' +
        'with the status and body the line would have had as a single submission.',
      type: 'object',
      required: ['line', 'status', 'body'],
      properties: {
        line: { type: 'integer', minimum: 1, maximum: 1000 },
        status: {
          type: 'integer',
          description: '202 accepted, 200 replay, or the problem’s status.',
          anyOf: [{ enum: [200, 202] }, { minimum: 400, maximum: 599 }],
        },
        body: { oneOf: [ref('AcceptResponse'), ref('Problem')] },
      },
    },
    MessageSummary: {
      description: 'Routing metadata of a message, without its body.',
      type: 'object',
      required: [
        'id',
        'type',
        'from',
        'to',
        'priority',
        'respondBy',
        'deadline',
        'overdue',
        'dueSoon',
        'caseRef',
        'inReplyTo',
        'createdAt',
        'acceptedAt',
        'status',
        'decision',
        'claim',
        'digest',
        'logIndex',
        'content',
      ],
      properties: {
        id: envelopePart('/$defs/uuid'),
        type: envelopePart('/properties/type'),
        from: envelopePart('/$defs/agencyId'),
        to: envelopePart('/$defs/agencyId'),
        priority: envelopePart('/properties/priority'),
        respondBy: nullable(envelopePart('/$defs/dateTime')),
        ...DEADLINE_PROPERTIES,
        caseRef: envelopePart('/properties/caseRef'),
        inReplyTo: nullable(envelopePart('/$defs/uuid')),
        createdAt: envelopePart('/$defs/dateTime'),
        acceptedAt: envelopePart('/$defs/dateTime'),
        status: ref('MessageStatus'),
        decision: nullable(ref('DecisionStatus')),
        claim: nullable(ref('Claim')),
        digest: ref('Sha256'),
        logIndex: { type: 'integer', minimum: 0 },
        content: ref('ContentState'),
      },
    },
    ContentState: {
      description:
        '`available`, or `shredded` once the retention period has destroyed the content ' +
        '(the record, its history and its proofs stay; docs/operations.md).',
      enum: ['available', 'shredded'],
    },
    MessagePage: {
      type: 'object',
      required: ['items', 'nextCursor'],
      properties: {
        items: { type: 'array', items: ref('MessageSummary') },
        nextCursor: {
          type: ['string', 'null'],
          description: 'Pass as `cursor` for the next page; `null` on the last page.',
        },
      },
    },
    Thread: {
      description: 'Every message linked through `inReplyTo` that the caller may see, root first.',
      type: 'object',
      required: ['items'],
      properties: { items: { type: 'array', items: ref('MessageSummary') } },
    },
    Actor: {
      description: 'Who did something (docs/protocol.md §6.1).',
      type: 'object',
      required: ['agency', 'role', 'subject'],
      properties: {
        agency: { type: 'string', description: 'Agency id, or the gateway id.' },
        role: { type: 'string', enum: [...ROLES] },
        subject: { ...ref('Sha256'), description: 'SHA-256 of the actor certificate (DER).' },
      },
    },
    HistoryItem: {
      type: 'object',
      required: ['status', 'event', 'at', 'by'],
      properties: {
        status: { ...ref('MessageStatus'), description: 'The lifecycle status after the event.' },
        event: {
          type: 'string',
          enum: ['accepted', 'queued', 'delivered', 'claimed', 'released', 'lapsed', 'decided'],
        },
        decision: { ...ref('DecisionStatus'), description: 'Present on `decided`.' },
        at: envelopePart('/$defs/dateTime'),
        by: {
          allOf: [ref('Actor')],
          properties: {
            name: {
              type: 'string',
              description:
                'The actor certificate’s CN when it acted; absent for the gateway. Never in the audit log.',
            },
          },
        },
      },
    },
    MessageDetail: {
      type: 'object',
      description:
        'With `content: available`, `envelope` and `jws`; with `content: shredded`, `shreddedAt` instead.',
      required: [
        'id',
        'content',
        'digest',
        'logIndex',
        'status',
        'decision',
        'claim',
        'deadline',
        'overdue',
        'dueSoon',
        'acceptedAt',
        'receipt',
        'history',
      ],
      if: { properties: { content: { const: 'available' } } },
      then: { required: ['envelope', 'jws'] },
      else: { required: ['shreddedAt'] },
      properties: {
        id: envelopePart('/$defs/uuid'),
        content: ref('ContentState'),
        shreddedAt: envelopePart('/$defs/dateTime'),
        envelope: ref(ENVELOPE),
        jws: {
          ...ref('CompactJws'),
          description: 'The exact JWS the sender submitted.',
          'x-jws-payload': ref(ENVELOPE),
        },
        digest: ref('Sha256'),
        logIndex: { type: 'integer', minimum: 0 },
        status: ref('MessageStatus'),
        decision: nullable(ref('DecisionStatus')),
        claim: nullable(ref('Claim')),
        ...DEADLINE_PROPERTIES,
        acceptedAt: envelopePart('/$defs/dateTime'),
        receipt: { ...ref('CompactJws'), 'x-jws-payload': ref('ReceiptPayload') },
        history: { type: 'array', items: ref('HistoryItem') },
      },
    },
    DecisionRequest: {
      description:
        'An officer decision; the gateway issues it as a signed `status.update` (docs/protocol.md §5.4). ' +
        'Validated with `schemas/decision.schema.json`.',
      $ref: `${COMPONENT_PREFIX}${componentName('decision.schema.json')}`,
    },
    DecisionResponse: {
      description: 'The acceptance of the gateway-issued `status.update`, and what it decided.',
      allOf: [
        ref('AcceptResponse'),
        {
          type: 'object',
          required: ['decided'],
          properties: {
            decided: {
              ...ref('MessageSummary'),
              description:
                'The decided message as it is now: `claimed` after a non-final decision, `decided` after a final one.',
            },
          },
        },
      ],
    },
    Base64Hash: base64Hash,
    InclusionProof: {
      description: 'RFC 9162 §2.1.3 inclusion proof.',
      type: 'object',
      required: ['index', 'size', 'hashes'],
      properties: {
        index: { type: 'integer', minimum: 0 },
        size: { type: 'integer', minimum: 1 },
        hashes: { type: 'array', items: ref('Base64Hash') },
        checkpoint: {
          type: 'string',
          contentMediaType: 'text/plain',
          description:
            'The signed checkpoint of tree size `size` (C2SP tlog-checkpoint), when one exists.',
        },
        leaf: {
          type: 'string',
          contentEncoding: 'base64',
          description:
            "For a message's proof: the exact bytes of its `message.accepted` entry, so the client hashes the leaf itself.",
        },
      },
    },
    ConsistencyProof: {
      description: 'RFC 9162 §2.1.4 consistency proof.',
      type: 'object',
      required: ['from', 'to', 'hashes'],
      properties: {
        from: { type: 'integer', minimum: 1 },
        to: { type: 'integer', minimum: 1 },
        hashes: { type: 'array', items: ref('Base64Hash') },
      },
    },
    AuditEntry: {
      description: 'One audit log entry (docs/protocol.md §6.1): digests and metadata only.',
      type: 'object',
      required: ['v', 'index', 'ts', 'event', 'actor'],
      properties: {
        v: { const: 1 },
        index: { type: 'integer', minimum: 0 },
        ts: { ...envelopePart('/$defs/dateTime'), description: 'RFC 3339 UTC with milliseconds.' },
        event: {
          type: 'string',
          description:
            'e.g. `message.accepted`, `message.refused`, `message.decided`, `pki.crl-loaded`.',
        },
        actor: ref('Actor'),
        messageId: envelopePart('/$defs/uuid'),
        digest: ref('Sha256'),
        from: envelopePart('/$defs/agencyId'),
        to: envelopePart('/$defs/agencyId'),
        type: envelopePart('/properties/type'),
        inReplyTo: envelopePart('/$defs/uuid'),
        detail: {
          type: 'object',
          description: 'Codes, counts, statuses, digests: never personal data.',
          additionalProperties: { type: ['string', 'number', 'boolean'] },
        },
      },
    },
    AuditEntryLine: {
      description:
        'One line of `GET /v1/audit/entries`: the entry, or only its leaf hash when the ' +
        'caller may not read its metadata (docs/auditing.md, "Who sees what").',
      type: 'object',
      oneOf: [{ required: ['index', 'leaf', 'entry'] }, { required: ['index', 'leafHash'] }],
      properties: {
        leafHash: {
          type: 'string',
          contentEncoding: 'base64',
          description: 'SHA-256(0x00 || entry bytes), RFC 6962 §2.1.',
        },
        index: { type: 'integer', minimum: 0 },
        leaf: {
          type: 'string',
          contentEncoding: 'base64',
          contentMediaType: 'application/json',
          contentSchema: ref('AuditEntry'),
          description:
            'The exact entry bytes that were hashed (leaf hash = SHA-256(0x00 || bytes)).',
        },
        entry: ref('AuditEntry'),
      },
    },
  };
}

// ---------------------------------------------------------------------------
// Operations

/** The HTTP methods the gateway serves, as OpenAPI path item keys. */
export const METHODS = ['get', 'head', 'options', 'post', 'patch', 'delete'] as const;
type Method = (typeof METHODS)[number];
/** Methods the cross-site guard passes (src/console/csrf.ts); every other one may be refused. */
const SAFE_METHODS: readonly Method[] = ['get', 'head', 'options'];

interface Op {
  method: Method;
  path: string;
  operationId: string;
  tag?: 'messages' | 'review' | 'audit' | 'files';
  summary: string;
  description?: string;
  roles: readonly string[];
  parameters?: Json[];
  requestBody?: Json;
  responses: Record<string, Json>;
  codes: readonly ErrorCode[];
  /** Headers sent with the problem answers of a status, beside the problem (`Content-Range` of a 416). */
  problemHeaders?: Record<string, Record<string, Json>>;
  /**
   * Problem answers at a status other than their code's: tus 1.0 fixes 412 for a
   * missing or other `Tus-Resumable`, which the gateway sends with `INVALID_PARAMETER`.
   */
  otherProblems?: {
    status: number;
    codes: ErrorCode[];
    why: string;
    headers?: Record<string, Json>;
  }[];
}

const json = (schema: Json): Json => ({ 'application/json': { schema } });

const header = (description: string, schema: Json, required = true): Json => ({
  description,
  required,
  schema,
});

/** protocol §4: every 503 and 429 says how long to wait. */
const RETRY_AFTER = {
  'Retry-After': header('Seconds to wait before trying again.', { type: 'integer', minimum: 1 }),
};

function problemResponse(
  group: readonly ErrorCode[],
  description: string,
  headers: Record<string, Json> | undefined,
): Json {
  return {
    description,
    ...(headers === undefined ? {} : { headers }),
    content: {
      'application/problem+json': {
        schema: { allOf: [ref('Problem'), { properties: { code: { enum: [...group] } } }] },
      },
    },
  };
}

/** Error responses grouped by status; each narrows `code` to what that status carries here. */
function problemResponses(
  codes: readonly ErrorCode[],
  extraHeaders: Record<string, Record<string, Json>> = {},
): Record<string, Json> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = STATUS_BY_CODE[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<string, Json> = {};
  for (const [status, group] of [...byStatus].sort(([a], [b]) => a - b)) {
    const headers = {
      ...(status === 503 || status === 429 ? RETRY_AFTER : {}),
      ...extraHeaders[String(status)],
    };
    out[String(status)] = problemResponse(
      group,
      group.map((c) => `\`${c}\``).join(', '),
      Object.keys(headers).length === 0 ? undefined : headers,
    );
  }
  return out;
}

const param = (name: string): Json => ({ $ref: `#/components/parameters/${name}` });

function parameters(): Record<string, Json> {
  const query = (name: string, schema: Json, description: string, required = false): Json => ({
    name,
    in: 'query',
    required,
    description,
    schema,
  });
  const index = { type: 'integer', minimum: 0 };
  return {
    MessageId: {
      name: 'id',
      in: 'path',
      required: true,
      description: 'Message id.',
      schema: envelopePart('/$defs/uuid'),
    },
    Status: query(
      'status',
      { type: 'string', enum: [...LIFECYCLE_STATUSES, 'open', 'all'] },
      'A lifecycle status; `open` = every status but `decided`; `all` = no filter. ' +
        'Default: `open` for `/v1/inbox`, `all` for `/v1/messages`.',
    ),
    Decision: query(
      'decision',
      { type: 'string', enum: [...DECISION_STATUSES, 'none'] },
      'Only messages whose latest decision is this; `none` = no decision yet.',
    ),
    Type: query('type', envelopePart('/properties/type'), 'Only messages of this type.'),
    Priority: query(
      'priority',
      envelopePart('/properties/priority'),
      'Only messages of this priority.',
    ),
    Limit: query('limit', { type: 'integer', minimum: 1, maximum: 200, default: 50 }, 'Page size.'),
    Cursor: query('cursor', { type: 'string' }, 'Opaque `nextCursor` of the previous page.'),
    Direction: query(
      'direction',
      { type: 'string', enum: ['received', 'sent'], default: 'received' },
      'Messages sent to, or sent by, the caller’s agency.',
    ),
    ProofSize: query(
      'size',
      { type: 'integer', minimum: 1 },
      'Tree size to prove against (at most the latest signed size). Default: the latest signed checkpoint, returned with the proof.',
    ),
    CheckpointSize: query(
      'size',
      { type: 'integer', minimum: 0 },
      'Tree size of an earlier checkpoint (docs/protocol.md §6.5); 404 NOT_FOUND when none was signed at that size.',
    ),
    UploadId: {
      name: 'uploadId',
      in: 'path',
      required: true,
      description:
        'Upload id, from the `Location` of `createUpload` (docs/protocol.md §9.1). Another agency’s upload, ' +
        'an expired one and anything not of this form answer 404 `NOT_FOUND`.',
      schema: { type: 'string', pattern: '^[0-9a-f]{32}$' },
    },
    FileSha256: {
      name: 'sha256',
      in: 'path',
      required: true,
      description:
        'The file’s SHA-256 as the transfer item names it; anything else is 400 `INVALID_PARAMETER`.',
      schema: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    },
    TusResumable: {
      name: 'Tus-Resumable',
      in: 'header',
      required: true,
      description: `tus 1.0: the protocol version. Without it, or with another, the answer is 412.`,
      schema: { type: 'string', enum: [TUS_VERSION] },
    },
    UploadLength: {
      name: 'Upload-Length',
      in: 'header',
      required: true,
      description:
        'The file’s size in bytes, at most `CASEBRIDGE_FILE_MAX_BYTES` (413 `TOO_LARGE`). ' +
        '`Upload-Defer-Length` is refused: the length is always declared.',
      schema: { type: 'integer', minimum: 0 },
    },
    UploadMetadata: {
      name: 'Upload-Metadata',
      in: 'header',
      required: true,
      description:
        'tus metadata, comma-separated `key base64(value)` pairs. `sha256` (64 lowercase hex digits, ' +
        'base64-encoded as the tus format wants) is required and is the only key read; every other key ' +
        '(a file name…) is dropped and never stored.',
      schema: { type: 'string' },
      example: `sha256 ${Buffer.from('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855').toString('base64')}`,
    },
    UploadOffset: {
      name: 'Upload-Offset',
      in: 'header',
      required: true,
      description:
        'The upload’s offset now (ask `getUploadOffset`); another is 409 `OFFSET_MISMATCH`.',
      schema: { type: 'integer', minimum: 0 },
    },
    UploadChecksum: {
      name: 'Upload-Checksum',
      in: 'header',
      required: false,
      description:
        'tus checksum extension: `<algorithm> <base64 digest of this request’s bytes>`, algorithm one of ' +
        `${CHECKSUM_ALGORITHMS.map((a) => `\`${a}\``).join(', ')}. A chunk that does not match is discarded (460).`,
      schema: {
        type: 'string',
        pattern: `^(${CHECKSUM_ALGORITHMS.join('|')}) [A-Za-z0-9+/]+={0,2}$`,
      },
    },
    Range: {
      name: 'Range',
      in: 'header',
      required: false,
      description:
        'One byte range (RFC 9110 §14.2): `bytes=a-b`, `bytes=a-` or `bytes=-n`, answered 206. Several ' +
        'ranges or another unit send the whole file with 200.',
      schema: { type: 'string' },
    },
    IfRange: {
      name: 'If-Range',
      in: 'header',
      required: false,
      description:
        'With `Range`: `"<sha256>"` (the `ETag`) resumes; any other validator sends the whole file.',
      schema: { type: 'string' },
    },
    Start: query('start', { ...index, default: 0 }, 'First entry index (inclusive).'),
    End: query(
      'end',
      index,
      'Entry index to stop before (exclusive). Default: the current tree size.',
    ),
  };
}

const LIST_PARAMS = [
  param('Status'),
  param('Decision'),
  param('Type'),
  param('Priority'),
  param('Limit'),
  param('Cursor'),
];
const READERS = ['system', 'officer'] as const;
/** Every client role; `gateway` certificates are the gateway's own, not clients. */
const ANYONE = ROLES.filter((r) => r !== 'gateway');
const LIST_CODES: readonly ErrorCode[] = ['FORBIDDEN_ROLE', 'INVALID_PARAMETER'];
const ORDER =
  'Most urgent first (`emergency`, `urgent`, `routine`), then earliest `deadline` (`respondBy`, or a freeze’s earlier `executeBy`), then oldest (docs/protocol.md §5.3, §5.5).';

function operations(): Op[] {
  const locationHeader = {
    Location: {
      description: 'The message resource.',
      schema: { type: 'string', format: 'uri-reference' },
    },
  };
  const textPlain = (description: string): Json => ({
    'text/plain': { schema: { type: 'string', description } },
  });
  const ndjson = (description: string, line?: string): Json => ({
    'application/x-ndjson': {
      schema: {
        type: 'string',
        description,
        ...(line === undefined ? {} : { 'x-ndjson-line': ref(line) }),
      },
    },
  });
  return [
    {
      method: 'post',
      path: '/v1/messages',
      operationId: 'submitMessage',
      tag: 'messages',
      summary: 'Submit a signed message',
      description:
        'Checks run in docs/protocol.md §3 order; the first failure is returned. On success the message is stored and its ' +
        '`message.accepted` audit entry appended before the response is sent. Resubmitting the same id with the ' +
        'same bytes replays the original response with 200.',
      roles: READERS,
      requestBody: {
        required: true,
        description:
          'A compact JWS (`typ: casebridge-message+jws`, `alg` ES256/ES384/PS256/EdDSA, `x5c` leaf first) whose ' +
          'payload is an `Envelope` (`#/components/schemas/Envelope`).',
        content: {
          'application/jose': {
            schema: { ...ref('CompactJws'), 'x-jws-payload': ref(ENVELOPE) },
          },
        },
      },
      responses: {
        '202': {
          description: 'Accepted.',
          headers: locationHeader,
          content: json(ref('AcceptResponse')),
        },
        '200': {
          description:
            'Idempotent replay: this id was accepted before with the same digest; the original body.',
          headers: locationHeader,
          content: json(ref('AcceptResponse')),
        },
      },
      codes: [
        'TOO_LARGE',
        'UNSUPPORTED_MEDIA_TYPE',
        'MALFORMED',
        'BAD_HEADER',
        'CERT_INVALID',
        'SIGNATURE_INVALID',
        'SCHEMA_INVALID',
        'SENDER_MISMATCH',
        'FORBIDDEN_ROLE',
        'NOT_PERMITTED',
        'STALE',
        'UNKNOWN_REFERENCE',
        'ID_CONFLICT',
      ],
    },
    {
      method: 'post',
      path: '/v1/messages/batch',
      operationId: 'submitBatch',
      tag: 'messages',
      summary: 'Submit up to 1,000 signed messages at once',
      description:
        'One compact JWS per line. Each line goes through the checks of `submitMessage` on its own and gets its own ' +
        'receipt or problem; a refused line never affects another. Every accepted line is stored, with its receipt ' +
        'and audit entry, before the answer is sent. At most 1,000 lines and 16 × `CASEBRIDGE_MAX_BYTES` in all, ' +
        'else `TOO_LARGE` for the whole request; a single line over `CASEBRIDGE_MAX_BYTES` is `TOO_LARGE` for ' +
        'that line (docs/protocol.md §3.1).',
      roles: READERS,
      requestBody: {
        required: true,
        content: ndjson(
          'One compact JWS per line, each as in `submitMessage`; `\\n` or `\\r\\n` line ends.',
          'CompactJws',
        ),
      },
      responses: {
        '200': {
          description: 'One `BatchAnswerLine` per input line, in input order.',
          content: ndjson('One `BatchAnswerLine` per input line.', 'BatchAnswerLine'),
        },
      },
      codes: ['TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'MALFORMED', 'UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/inbox',
      operationId: 'listInbox',
      tag: 'messages',
      summary: 'Messages addressed to the caller’s agency',
      description: ORDER,
      roles: READERS,
      parameters: LIST_PARAMS,
      responses: {
        '200': { description: 'A page of messages.', content: json(ref('MessagePage')) },
      },
      codes: LIST_CODES,
    },
    {
      method: 'get',
      path: '/v1/messages',
      operationId: 'listMessages',
      tag: 'messages',
      summary: 'Messages the caller’s agency received or sent',
      description: ORDER,
      roles: READERS,
      parameters: [param('Direction'), ...LIST_PARAMS],
      responses: {
        '200': { description: 'A page of messages.', content: json(ref('MessagePage')) },
      },
      codes: LIST_CODES,
    },
    {
      method: 'get',
      path: '/v1/messages/{id}',
      operationId: 'getMessage',
      tag: 'messages',
      summary: 'One message, with its JWS, receipt and history',
      description:
        'Only for the sender’s or recipient’s agency; anyone else gets 404 (docs/protocol.md §5.3).',
      roles: READERS,
      parameters: [param('MessageId')],
      responses: { '200': { description: 'The message.', content: json(ref('MessageDetail')) } },
      codes: ['FORBIDDEN_ROLE', 'NOT_FOUND'],
    },
    {
      method: 'get',
      path: '/v1/messages/{id}/thread',
      operationId: 'getThread',
      tag: 'messages',
      summary: 'The reply chain of a message',
      roles: READERS,
      parameters: [param('MessageId')],
      responses: {
        '200': { description: 'The thread, root first.', content: json(ref('Thread')) },
      },
      codes: ['FORBIDDEN_ROLE', 'NOT_FOUND'],
    },
    {
      method: 'get',
      path: '/v1/messages/{id}/proof',
      operationId: 'getMessageProof',
      tag: 'audit',
      summary: 'Inclusion proof of the message’s `message.accepted` entry',
      description:
        'For the sender’s and recipient’s agencies, and auditors (docs/protocol.md §6.4).',
      roles: [...READERS, 'auditor'],
      parameters: [param('MessageId'), param('ProofSize')],
      responses: { '200': { description: 'The proof.', content: json(ref('InclusionProof')) } },
      codes: ['NOT_FOUND', 'INVALID_PARAMETER', 'UNAVAILABLE'],
    },
    {
      method: 'post',
      path: '/v1/messages/{id}/claim',
      operationId: 'claimMessage',
      tag: 'review',
      summary: 'Take a delivered message for review',
      description:
        'Officers of the recipient agency. Claiming again by the holder renews the claim; a claim lapses after ' +
        '`CASEBRIDGE_CLAIM_TTL_S` (docs/protocol.md §5.4, §5.5), and an expired claim never blocks another officer.',
      roles: ['officer'],
      parameters: [param('MessageId')],
      responses: {
        '200': { description: 'Claimed; the message now.', content: json(ref('MessageSummary')) },
      },
      codes: ['FORBIDDEN_ROLE', 'NOT_FOUND', 'ALREADY_CLAIMED', 'NOT_DELIVERED', 'ALREADY_DECIDED'],
    },
    {
      method: 'post',
      path: '/v1/messages/{id}/release',
      operationId: 'releaseMessage',
      tag: 'review',
      summary: 'Give a claim back',
      roles: ['officer'],
      parameters: [param('MessageId')],
      responses: {
        '200': {
          description: 'Released (`delivered` again); the message now.',
          content: json(ref('MessageSummary')),
        },
      },
      codes: ['FORBIDDEN_ROLE', 'NOT_FOUND', 'NOT_CLAIMED'],
    },
    {
      method: 'post',
      path: '/v1/messages/{id}/decision',
      operationId: 'decideMessage',
      tag: 'review',
      summary: 'Decide a claimed message',
      description:
        'The gateway issues a `status.update` from the recipient agency to the sender (`inReplyTo` = this ' +
        'message), signed with its own certificate on the officer’s behalf, and delivers it (docs/protocol.md §5.4). ' +
        'A non-final decision keeps the claim; a final one ends it. Role, agency and claim are checked before the body is read.',
      roles: ['officer'],
      parameters: [param('MessageId')],
      requestBody: { required: true, content: json(ref('DecisionRequest')) },
      responses: {
        '202': {
          description: 'The status.update was accepted; `Location` names it.',
          headers: locationHeader,
          content: json(ref('DecisionResponse')),
        },
      },
      codes: [
        'FORBIDDEN_ROLE',
        'NOT_FOUND',
        'TOO_LARGE',
        'UNSUPPORTED_MEDIA_TYPE',
        'MALFORMED',
        'NOT_CLAIMED',
        'ALREADY_DECIDED',
        'SCHEMA_INVALID',
        'NOT_PERMITTED',
      ],
    },
    {
      method: 'get',
      path: '/v1/events',
      operationId: 'streamEvents',
      tag: 'review',
      summary: 'Server-sent events of the caller agency’s queue changes',
      description:
        'Events `' +
        STREAM_EVENTS.join('`, `') +
        '`, each `data:` a `StreamEventData` (ids, type, priority, status; never content). ' +
        '`arrived` and `replied` (about the earlier message a delivered reply answers) go to the recipient ' +
        'agency; claim and decision events to both agencies of the message. `: ping` comments every ' +
        '`CASEBRIDGE_EVENTS_HEARTBEAT_S`. No replay: after a reconnect, read the list again (docs/protocol.md §5.5).',
      roles: READERS,
      responses: {
        '200': {
          description: 'An endless `text/event-stream` (WHATWG HTML §9.2).',
          content: {
            'text/event-stream': {
              schema: { type: 'string', 'x-sse-data': ref('StreamEventData') },
            },
          },
        },
      },
      codes: ['FORBIDDEN_ROLE', 'RATE_LIMITED', 'UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/audit/checkpoint',
      operationId: 'getCheckpoint',
      tag: 'audit',
      summary: 'The latest signed checkpoint, or the one signed at `size`',
      roles: ANYONE,
      parameters: [param('CheckpointSize')],
      responses: {
        '200': {
          description:
            'C2SP tlog-checkpoint (origin, tree size, base64 root) with a C2SP signed-note signature.',
          content: textPlain('A signed note.'),
        },
      },
      codes: ['UNAVAILABLE', 'NOT_FOUND', 'INVALID_PARAMETER'],
    },
    {
      method: 'get',
      path: '/v1/audit/key',
      operationId: 'getLogKey',
      tag: 'audit',
      summary: 'The checkpoint verifier key',
      roles: ANYONE,
      responses: {
        '200': {
          description:
            'C2SP signed-note vkey: `<name>+<8 hex key id>+<base64(0x01 || 32-byte Ed25519 key)>`.',
          content: textPlain('A signed-note verifier key.'),
        },
      },
      codes: [],
    },
    {
      method: 'get',
      path: '/v1/audit/entries',
      operationId: 'listAuditEntries',
      tag: 'audit',
      summary: 'Audit log entries',
      roles: ['auditor'],
      parameters: [param('Start'), param('End')],
      responses: {
        '200': {
          description: 'Newline-delimited JSON, one `AuditEntryLine` per entry, in index order.',
          content: ndjson(
            'One `AuditEntryLine` (`{ index, leaf, entry }`) per line.',
            'AuditEntryLine',
          ),
        },
      },
      codes: ['FORBIDDEN_ROLE', 'INVALID_PARAMETER'],
    },
    {
      method: 'get',
      path: '/v1/audit/proof/inclusion',
      operationId: 'getInclusionProof',
      tag: 'audit',
      summary: 'Inclusion proof of an entry by index',
      roles: ['auditor'],
      parameters: [
        {
          name: 'index',
          in: 'query',
          required: true,
          description: 'Entry index.',
          schema: { type: 'integer', minimum: 0 },
        },
        param('ProofSize'),
      ],
      responses: { '200': { description: 'The proof.', content: json(ref('InclusionProof')) } },
      codes: ['FORBIDDEN_ROLE', 'INVALID_PARAMETER', 'UNAVAILABLE'],
    },
    {
      method: 'get',
      path: '/v1/audit/proof/consistency',
      operationId: 'getConsistencyProof',
      tag: 'audit',
      summary: 'Consistency proof between two tree sizes',
      roles: ANYONE,
      parameters: [
        {
          name: 'from',
          in: 'query',
          required: true,
          description: 'Earlier tree size.',
          schema: { type: 'integer', minimum: 1 },
        },
        {
          name: 'to',
          in: 'query',
          required: false,
          description: 'Later tree size. Default: the latest signed checkpoint.',
          schema: { type: 'integer', minimum: 1 },
        },
      ],
      responses: { '200': { description: 'The proof.', content: json(ref('ConsistencyProof')) } },
      codes: ['INVALID_PARAMETER'],
    },
    {
      method: 'get',
      path: '/v1/audit/export',
      operationId: 'exportAudit',
      tag: 'audit',
      summary: 'An offline-verifiable audit bundle',
      description:
        'For `casebridge audit verify` (docs/protocol.md §6.5). With `messages=true` (auditors with that grant only) the ' +
        'bundle also carries the JWS of each message and its receipt.',
      roles: ['auditor'],
      parameters: [
        param('Start'),
        param('End'),
        {
          name: 'messages',
          in: 'query',
          required: false,
          description: 'Include message JWSs and receipts.',
          schema: { type: 'string', enum: ['true', 'false'], default: 'false' },
        },
      ],
      responses: {
        '200': {
          description: 'Newline-delimited JSON bundle.',
          content: ndjson(
            'A header line (gateway certificate chain, log vkey, trust anchors), then one line per entry ' +
              '(as `AuditEntryLine`), the checkpoint(s) covering them, and with `messages=true` message and ' +
              'receipt lines.',
          ),
        },
      },
      codes: ['FORBIDDEN_ROLE', 'INVALID_PARAMETER'],
    },
    ...fileOperations(),
    {
      method: 'get',
      path: '/v1/openapi.json',
      operationId: 'getOpenApi',
      summary: 'This document',
      roles: ANYONE,
      responses: {
        '200': { description: 'OpenAPI 3.1 document.', content: json({ type: 'object' }) },
      },
      codes: [],
    },
  ];
}

/** protocol §9: the tus 1.0 upload, the download of bound files, the CASE/UCO export. */
function fileOperations(): Op[] {
  const upload = `${UPLOAD_PATH}/{uploadId}`;
  const tusResumable = {
    'Tus-Resumable': header('The tus version served.', { type: 'string', enum: [TUS_VERSION] }),
  };
  const offset = (description: string, required = true): Json =>
    header(description, { type: 'integer', minimum: 0 }, required);
  const noStore = {
    'Cache-Control': header('Never cached.', { type: 'string', enum: ['no-store'] }),
  };
  const location = header('The upload: `/v1/files/<32 hex>`, relative.', {
    type: 'string',
    format: 'uri-reference',
    pattern: '^/v1/files/[0-9a-f]{32}$',
  });
  /** tus 1.0 fixes 412 for the version; the gateway answers it with INVALID_PARAMETER. */
  const wrongVersion = {
    status: 412,
    codes: ['INVALID_PARAMETER'] as ErrorCode[],
    why:
      `no \`Tus-Resumable\`, or another version than ${TUS_VERSION}. tus 1.0 fixes the status; the ` +
      'problem’s `status` member is 412 too, its `code` the one of a malformed header.',
    headers: {
      ...tusResumable,
      'Tus-Version': header('The versions served.', { type: 'string', enum: [TUS_VERSION] }),
    },
  };
  const tusRules =
    `tus 1.0 (https://tus.io/protocols/resumable-upload): answers carry \`Tus-Resumable: ${TUS_VERSION}\`, ` +
    'refusals included, except those made before the upload is looked at (no or an untrusted certificate, ' +
    'the role, a cross-site request, a compressed body, too many bodies in flight). ' +
    'Only the uploading agency sees an upload: another agency’s id is 404.';
  const binary = (description: string): Json => ({
    'application/offset+octet-stream': { schema: { type: 'string', description } },
  });
  const fileHeaders = (length: string): Record<string, Json> => ({
    'Content-Length': header(length, { type: 'integer', minimum: 0 }),
    ETag: header('`"<sha256>"`.', { type: 'string', pattern: '^"[0-9a-f]{64}"$' }),
    'Accept-Ranges': header('One range of bytes.', { type: 'string', enum: ['bytes'] }),
    'Repr-Digest': header(
      'RFC 9530: `sha-256=:<base64 digest>:` of the whole file, whatever range is sent.',
      { type: 'string', pattern: '^sha-256=:[A-Za-z0-9+/]{43}=:$' },
    ),
  });
  const contentRange = header('`bytes a-b/size`.', {
    type: 'string',
    pattern: '^bytes \\d+-\\d+/\\d+$',
  });
  const unsatisfiable = {
    '416': {
      'Content-Range': header('`bytes */size`.', { type: 'string', pattern: '^bytes \\*/\\d+$' }),
    },
  };
  const downloadDescription =
    'For `system` and `officer` principals of the sender’s and the recipient’s agencies; anyone else, and a ' +
    'hash the message does not bind, gets 404 (docs/protocol.md §9.3). To resume, send ' +
    '`Range: bytes=<bytes held>-` with `If-Range: "<sha256>"`, and check the SHA-256 of the whole file.';
  const downloadParams = [
    param('MessageId'),
    param('FileSha256'),
    param('Range'),
    param('IfRange'),
  ];
  const downloadCodes: ErrorCode[] = [
    'FORBIDDEN_ROLE',
    'INVALID_PARAMETER',
    'NOT_FOUND',
    'RANGE_NOT_SATISFIABLE',
  ];
  const fileBytes = { 'application/octet-stream': {} };
  return [
    {
      method: 'options',
      path: UPLOAD_PATH,
      operationId: 'getUploadOptions',
      tag: 'files',
      summary: 'What the tus endpoint supports',
      description: `No \`Tus-Resumable\` needed. Answered alike at \`${UPLOAD_PATH}/{uploadId}\`.`,
      roles: READERS,
      responses: {
        '204': {
          description: 'The tus configuration.',
          headers: {
            'Tus-Version': header('Versions served.', { type: 'string', enum: [TUS_VERSION] }),
            'Tus-Extension': header(
              'Extensions served: `creation,creation-with-upload,termination,checksum` (no defer-length, ' +
                'no concatenation, no expiration).',
              { type: 'string' },
            ),
            'Tus-Max-Size': header('`CASEBRIDGE_FILE_MAX_BYTES`.', { type: 'integer', minimum: 0 }),
            'Tus-Checksum-Algorithm': header('Algorithms `Upload-Checksum` may name.', {
              type: 'string',
              enum: [CHECKSUM_ALGORITHMS.join(',')],
            }),
          },
        },
      },
      codes: ['FORBIDDEN_ROLE'],
    },
    {
      method: 'post',
      path: UPLOAD_PATH,
      operationId: 'createUpload',
      tag: 'files',
      summary: 'Create an upload, declaring the file’s length and SHA-256',
      description:
        `${tusRules} A file this agency already keeps (same sha256 and length) is answered 200 at once, ` +
        'nothing to send. A body (creation-with-upload, `Content-Type: application/offset+octet-stream`) is ' +
        'written from offset 0 as by `uploadChunk`. Stored plus in-progress bytes count against the agency’s ' +
        '`CASEBRIDGE_FILE_QUOTA_BYTES` (docs/protocol.md §9.1).',
      roles: READERS,
      parameters: [param('TusResumable'), param('UploadLength'), param('UploadMetadata')],
      requestBody: {
        required: false,
        description: 'creation-with-upload: the first bytes of the file.',
        content: binary('The file from offset 0.'),
      },
      responses: {
        '201': {
          description: 'Created; send the bytes with `uploadChunk` to `Location`.',
          headers: {
            ...tusResumable,
            Location: location,
            'Upload-Offset': offset('With a body: the offset it reached.', false),
          },
        },
        '200': {
          description:
            'The agency already keeps this file: the upload is complete (`Upload-Offset` = `Upload-Length`); go on to the transfer.',
          headers: {
            ...tusResumable,
            ...noStore,
            Location: location,
            'Upload-Offset': offset('= `Upload-Length`.'),
            'Upload-Length': offset('The declared length.'),
          },
        },
      },
      codes: [
        'FORBIDDEN_ROLE',
        'INVALID_PARAMETER',
        'TOO_LARGE',
        'UNSUPPORTED_MEDIA_TYPE',
        'DIGEST_MISMATCH',
        'QUOTA_EXCEEDED',
        'INSUFFICIENT_STORAGE',
        'UNAVAILABLE',
      ],
      otherProblems: [wrongVersion],
    },
    {
      method: 'head',
      path: upload,
      operationId: 'getUploadOffset',
      tag: 'files',
      summary: 'Where to resume an upload',
      description: `${tusRules} Waits for a running \`uploadChunk\` of the upload, which stops within 3 s.`,
      roles: READERS,
      parameters: [param('UploadId'), param('TusResumable')],
      responses: {
        '200': {
          description: 'The upload’s state.',
          headers: {
            ...tusResumable,
            ...noStore,
            'Upload-Offset': offset('Bytes the gateway holds; the next `uploadChunk` starts here.'),
            'Upload-Length': offset('The declared length.'),
            'Upload-Metadata': header(
              '`sha256 <base64>`: the declared hash only, never who uploaded or a file name.',
              { type: 'string' },
            ),
          },
        },
      },
      codes: ['FORBIDDEN_ROLE', 'INVALID_PARAMETER', 'NOT_FOUND'],
      otherProblems: [wrongVersion],
    },
    {
      method: 'patch',
      path: upload,
      operationId: 'uploadChunk',
      tag: 'files',
      summary: 'Send bytes of an upload from its offset',
      description:
        `${tusRules} The whole file or a chunk; each request must arrive within \`CASEBRIDGE_BODY_TIMEOUT_S\`. ` +
        'After a dropped connection every byte that arrived is kept: ask `getUploadOffset`. One request at a ' +
        'time per upload across all gateways: a request of the same upload arriving meanwhile makes this one ' +
        'stop within 3 s with 204, its offset and `Connection: close`; one that waits 20 s for the upload gets ' +
        '503 `UNAVAILABLE`. The 204 of the last byte means the SHA-256 matched and the file is stored; ' +
        '422 `DIGEST_MISMATCH` means the upload and its bytes are gone, and so does 507 `INSUFFICIENT_STORAGE` ' +
        '(the disk filled during the write).',
      roles: READERS,
      parameters: [
        param('UploadId'),
        param('TusResumable'),
        param('UploadOffset'),
        param('UploadChecksum'),
      ],
      requestBody: {
        required: true,
        description: '`Content-Length`, or a chunked body; no byte past the declared length.',
        content: binary('Bytes from `Upload-Offset` on.'),
      },
      responses: {
        '204': {
          description: 'Written; on the last byte, hashed, matched and stored.',
          headers: { ...tusResumable, 'Upload-Offset': offset('The new offset.') },
        },
      },
      codes: [
        'FORBIDDEN_ROLE',
        'INVALID_PARAMETER',
        'NOT_FOUND',
        'OFFSET_MISMATCH',
        'TOO_LARGE',
        'UNSUPPORTED_MEDIA_TYPE',
        'DIGEST_MISMATCH',
        'CHECKSUM_MISMATCH',
        'UNAVAILABLE',
        'INSUFFICIENT_STORAGE',
      ],
      otherProblems: [wrongVersion],
    },
    {
      method: 'delete',
      path: upload,
      operationId: 'terminateUpload',
      tag: 'files',
      summary: 'Give an upload up',
      description: `${tusRules} A file already stored stays until it expires unbound, or forever once bound.`,
      roles: READERS,
      parameters: [param('UploadId'), param('TusResumable')],
      responses: {
        '204': { description: 'The upload is gone.', headers: tusResumable },
      },
      codes: ['FORBIDDEN_ROLE', 'INVALID_PARAMETER', 'NOT_FOUND'],
      otherProblems: [wrongVersion],
    },
    {
      method: 'get',
      path: '/v1/messages/{id}/files/{sha256}',
      operationId: 'downloadFile',
      tag: 'files',
      summary: 'Download a file bound to a transfer',
      description: `${downloadDescription} Each \`GET\` appends a \`file.downloaded\` audit entry with its range.`,
      roles: READERS,
      parameters: downloadParams,
      responses: {
        '200': {
          description: 'The whole file.',
          headers: fileHeaders('The file’s size.'),
          content: fileBytes,
        },
        '206': {
          description: 'The range asked for.',
          headers: { ...fileHeaders('The range’s size.'), 'Content-Range': contentRange },
          content: fileBytes,
        },
      },
      codes: downloadCodes,
      problemHeaders: unsatisfiable,
    },
    {
      method: 'head',
      path: '/v1/messages/{id}/files/{sha256}',
      operationId: 'headFile',
      tag: 'files',
      summary: 'The headers of a download, without the bytes',
      description: `${downloadDescription} No audit entry.`,
      roles: READERS,
      parameters: downloadParams,
      responses: {
        '200': {
          description: 'As `downloadFile`, no body.',
          headers: fileHeaders('The file’s size.'),
        },
        '206': {
          description: 'As `downloadFile`, no body.',
          headers: { ...fileHeaders('The range’s size.'), 'Content-Range': contentRange },
        },
      },
      codes: downloadCodes,
      problemHeaders: unsatisfiable,
    },
    {
      method: 'get',
      path: '/v1/messages/{id}/case.jsonld',
      operationId: 'exportCase',
      tag: 'files',
      summary: 'A transfer as a CASE/UCO JSON-LD bundle',
      description:
        'Only an `evidence.transfer` whose content is kept (not shredded) has one; for the sender’s and the ' +
        'recipient’s agencies (docs/protocol.md §9.5). A `uco-core:Bundle`: each exhibit a `uco-observable:File` ' +
        'with its size and SHA-256, its declared custody as provenance records, and the gateway’s own custody ' +
        `entries with their log index. Its context is \`${CONTEXT_PATH}\`, named relatively.`,
      roles: READERS,
      parameters: [param('MessageId')],
      responses: {
        '200': {
          description: 'The bundle.',
          content: {
            'application/ld+json': {
              schema: {
                type: 'object',
                required: ['@context', '@id', '@type', 'uco-core:object'],
                properties: {
                  '@context': { const: CONTEXT_PATH },
                  '@type': { const: 'uco-core:Bundle' },
                  'uco-core:object': { type: 'array', items: { type: 'object' } },
                },
              },
            },
          },
        },
      },
      codes: ['FORBIDDEN_ROLE', 'NOT_FOUND'],
    },
    {
      method: 'get',
      path: CONTEXT_PATH,
      operationId: 'getCaseContext',
      tag: 'files',
      summary: 'The JSON-LD context of the CASE/UCO export',
      roles: ANYONE,
      responses: {
        '200': {
          description:
            'The context document the gateway ships (`schemas/case-uco-1.context.jsonld`).',
          content: {
            'application/ld+json': {
              schema: { type: 'object', required: ['@context'] },
            },
          },
        },
      },
      codes: [],
    },
  ];
}

function operationObject(op: Op): Json {
  const common: readonly ErrorCode[] = SAFE_METHODS.includes(op.method)
    ? COMMON_CODES
    : [...COMMON_CODES, 'CROSS_SITE_REFUSED'];
  const codes = [...op.codes, ...common.filter((c) => !op.codes.includes(c))];
  const other: Record<string, Json> = {};
  for (const p of op.otherProblems ?? []) {
    other[String(p.status)] = problemResponse(
      p.codes,
      `${p.codes.map((c) => `\`${c}\``).join(', ')}: ${p.why}`,
      p.headers,
    );
  }
  return {
    operationId: op.operationId,
    ...(op.tag === undefined ? {} : { tags: [op.tag] }),
    summary: op.summary,
    description: [
      op.description,
      `Roles: ${op.roles.join(', ')}.`,
      `Error codes: ${codes.join(', ')}.`,
    ]
      .filter((s) => s !== undefined)
      .join('\n\n'),
    ...(op.parameters === undefined ? {} : { parameters: op.parameters }),
    ...(op.requestBody === undefined ? {} : { requestBody: op.requestBody }),
    security: [{ mtls: [] }],
    responses: { ...op.responses, ...problemResponses(codes, op.problemHeaders), ...other },
    'x-casebridge-roles': [...op.roles],
    'x-casebridge-codes': codes,
  };
}

function mergeDisjoint(a: Record<string, Json>, b: Record<string, Json>): Record<string, Json> {
  for (const name of Object.keys(b))
    if (name in a) throw new Error(`a schema file would replace component ${name}`);
  return { ...a, ...b };
}

// ---------------------------------------------------------------------------

/**
 * The OpenAPI 3.1.0 document of the HTTP API. `schemas` maps schema file names
 * to parsed JSON Schema 2020-12 documents, each with an `$id` (as from
 * `SchemaSet.documents()`); they are not modified. Throws if a schema has a
 * reference that cannot be mapped into the document.
 */
export function buildOpenApi(
  schemas: Record<string, object>,
  opts: { serverUrl: string } = { serverUrl: 'https://127.0.0.1:8443' },
): object {
  const paths: Record<string, Json> = {};
  for (const op of operations()) {
    paths[op.path] = { ...(paths[op.path] ?? {}), [op.method]: operationObject(op) };
  }
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: JSON_SCHEMA_DIALECT,
    info: {
      title: 'casebridge',
      version: '1.0.0',
      description:
        'Signed-message gateway for cross-border case cooperation. Every request needs a client certificate ' +
        '(mutual TLS); every error is `application/problem+json` with a stable `code`.',
    },
    servers: [{ url: opts.serverUrl }],
    security: [{ mtls: [] }],
    tags: [
      {
        name: 'messages',
        description: 'Submit and read signed messages (docs/protocol.md §3, §5.3).',
      },
      {
        name: 'review',
        description: 'Claim and decide received messages (docs/protocol.md §5.4).',
      },
      { name: 'audit', description: 'The verifiable audit log (docs/protocol.md §6).' },
      {
        name: 'files',
        description:
          'Evidence files: tus 1.0 upload, download of bound files, CASE/UCO export (docs/protocol.md §9).',
      },
    ],
    paths,
    components: {
      schemas: mergeDisjoint(schemaComponents(schemas), apiSchemas()),
      parameters: parameters(),
      securitySchemes: {
        mtls: {
          type: 'mutualTLS',
          description:
            'A client certificate chained to a configured trust anchor (docs/protocol.md §1.2).',
        },
      },
    },
  };
}
